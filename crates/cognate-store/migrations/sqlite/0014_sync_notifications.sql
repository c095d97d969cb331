-- Cognito Sync's notifications: silent pushes and Kinesis stream records.
--
-- The outbox now also holds identity pools' messages (Cognito Sync's
-- pushes, channel PUSH: pool_id is the identity pool, username the
-- identity), so its rows no longer reference user_pools: deleting either
-- kind of pool deletes its messages in the same transaction (the store does
-- it, after the pool row, so that an append holding the pool's lock commits
-- first and is deleted with the rest). SQLite cannot drop a foreign key in
-- place: the table is rebuilt, its AUTOINCREMENT high-water mark carried
-- over so that no id is handed out twice (readers poll with `after`).
CREATE TABLE outbox_new (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    pool_id     TEXT    NOT NULL,
    username    TEXT    NOT NULL,
    channel     TEXT    NOT NULL,
    destination TEXT    NOT NULL,
    code        TEXT,
    subject     TEXT,
    body        TEXT    NOT NULL,
    created_ms  INTEGER NOT NULL
) STRICT;

INSERT INTO outbox_new (id, pool_id, username, channel, destination, code, subject, body, created_ms)
    SELECT id, pool_id, username, channel, destination, code, subject, body, created_ms FROM outbox;
DELETE FROM sqlite_sequence WHERE name = 'outbox_new';
INSERT INTO sqlite_sequence (name, seq) SELECT 'outbox_new', seq FROM sqlite_sequence WHERE name = 'outbox';
DROP TABLE outbox;
ALTER TABLE outbox_new RENAME TO outbox;

CREATE INDEX outbox_by_pool ON outbox (pool_id, id);
CREATE INDEX outbox_by_user ON outbox (pool_id, username, id);
CREATE INDEX outbox_by_created ON outbox (created_ms);

-- A dataset change that someone is to hear of (a subscribed device, the
-- pool's Kinesis stream), written in the transaction of the change itself,
-- so that none is lost to a crash; a worker on any node claims a batch
-- (lease_until_ms: until when its claim holds; 0 unclaimed), delivers it and
-- deletes it. The records are read from sync_records at the change's sync
-- count when it is delivered. Deleting the identity pool deletes its changes.
CREATE TABLE sync_changes (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    identity_pool_id TEXT    NOT NULL REFERENCES identity_pools (id) ON DELETE CASCADE,
    identity_id      TEXT    NOT NULL,
    dataset          TEXT    NOT NULL,
    sync_count       INTEGER NOT NULL,
    modified_by      TEXT    NOT NULL,
    created_ms       INTEGER NOT NULL,
    lease_until_ms   INTEGER NOT NULL,
    attempts         INTEGER NOT NULL
) STRICT;

CREATE INDEX sync_changes_by_pool ON sync_changes (identity_pool_id);
CREATE INDEX sync_changes_due ON sync_changes (lease_until_ms, id);
