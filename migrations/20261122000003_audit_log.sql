-- Every mutating action, successful or not.
CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY,
    at          INTEGER NOT NULL,
    actor       TEXT,
    source_ip   TEXT,
    action      TEXT    NOT NULL,
    target_kind TEXT    NOT NULL,
    target      TEXT    NOT NULL,
    before_json TEXT,
    after_json  TEXT,
    result      TEXT    NOT NULL CHECK (result IN ('ok', 'denied', 'failed')),
    detail      TEXT
);
-- The audit page filters by these and always sorts newest first.
CREATE INDEX audit_by_time ON audit_log (at DESC, id DESC);
CREATE INDEX audit_by_actor ON audit_log (actor, at DESC);
CREATE INDEX audit_by_action ON audit_log (action, at DESC);
