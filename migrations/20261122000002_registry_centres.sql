-- Registry centres the console manages. `local`, the embedded centre, exists from the start.
CREATE TABLE registry_centres (
    id                 INTEGER PRIMARY KEY,
    name               TEXT    NOT NULL UNIQUE,
    kind               TEXT    NOT NULL CHECK (kind IN ('embedded', 'zookeeper')),
    connect            TEXT    NOT NULL DEFAULT '',
    namespace          TEXT    NOT NULL,
    -- `user:password`; write-only through the UI and API, never sent back to a client.
    digest             TEXT,
    session_timeout_ms INTEGER NOT NULL,
    color              TEXT    NOT NULL,
    production         INTEGER NOT NULL DEFAULT 0,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL
);

INSERT INTO registry_centres
    (name, kind, connect, namespace, digest, session_timeout_ms, color, production, created_at, updated_at)
VALUES
    ('local', 'embedded', '', 'capstan', NULL, 60000, '#0d9488', 0,
     CAST(unixepoch('subsec') * 1000 AS INTEGER), CAST(unixepoch('subsec') * 1000 AS INTEGER));
