-- Console users and their sessions.
CREATE TABLE users (
    id                   INTEGER PRIMARY KEY,
    username             TEXT    NOT NULL UNIQUE COLLATE NOCASE,
    -- PHC string (argon2id); the password itself is never stored.
    password_hash        TEXT    NOT NULL,
    role                 TEXT    NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
    must_change_password INTEGER NOT NULL DEFAULT 0,
    locale               TEXT    NOT NULL DEFAULT 'en',
    theme                TEXT    NOT NULL DEFAULT 'auto',
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL
);

CREATE TABLE sessions (
    -- SHA-256 of the bearer token or cookie value; a stolen database yields no usable token.
    token_hash BLOB    PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind       TEXT    NOT NULL CHECK (kind IN ('browser', 'api')),
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX sessions_by_user ON sessions (user_id);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);
