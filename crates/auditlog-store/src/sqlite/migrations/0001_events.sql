-- Version 1: tenants, events, tiles, checkpoints, dictionaries, tokens.
CREATE TABLE IF NOT EXISTS tenants (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    tree_size INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);
-- body: zstd frame of the client part of the canonical event (codec.rs); dict: its
-- dictionary (0 = none); received_at: unix nanoseconds.
-- idem/idem_hash: the client's idempotency key and a fingerprint of the body it sent.
CREATE TABLE IF NOT EXISTS events (
    tenant INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    idem TEXT,
    idem_hash BLOB,
    dict INTEGER NOT NULL,
    body BLOB NOT NULL,
    PRIMARY KEY (tenant, seq)
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS events_idem ON events (tenant, idem) WHERE idem IS NOT NULL;
-- C2SP tlog-tiles: the newest content of each tile (a partial tile is a prefix of its full form).
CREATE TABLE IF NOT EXISTS tiles (
    tenant INTEGER NOT NULL,
    level INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (tenant, level, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS checkpoints (
    tenant INTEGER NOT NULL,
    size INTEGER NOT NULL,
    signed_at INTEGER NOT NULL,
    note TEXT NOT NULL,
    PRIMARY KEY (tenant, size)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS dicts (
    id INTEGER PRIMARY KEY,
    tenant INTEGER NOT NULL,
    data BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS tokens (
    id INTEGER PRIMARY KEY,
    tenant INTEGER NOT NULL,
    name TEXT NOT NULL,
    hash BLOB NOT NULL UNIQUE,
    scopes TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at INTEGER
);
