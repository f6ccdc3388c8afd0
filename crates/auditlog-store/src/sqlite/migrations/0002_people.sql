-- Version 2: people, sessions, the trail outbox.
-- People who sign in to the UI; password: argon2id PHC string.
CREATE TABLE IF NOT EXISTS people (
    id INTEGER PRIMARY KEY,
    tenant INTEGER NOT NULL,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    password TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    password_changed_at INTEGER NOT NULL,
    disabled_at INTEGER,
    last_sign_in_at INTEGER,
    UNIQUE (tenant, name)
);
-- Sessions by the SHA-256 of their secret; ended_at set by sign-out, disable, new password.
CREATE TABLE IF NOT EXISTS sessions (
    id INTEGER PRIMARY KEY,
    person INTEGER NOT NULL,
    hash BLOB NOT NULL UNIQUE,
    csrf TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    ended_at INTEGER
);
-- Trail records waiting for the writer (RFC 8785 JSON of the event as a client sends it).
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY,
    tenant TEXT NOT NULL,
    event BLOB NOT NULL
);
