-- Cognito Sync's notifications: silent pushes and Kinesis stream records.
--
-- The outbox now also holds identity pools' messages (Cognito Sync's
-- pushes, channel PUSH: pool_id is the identity pool, username the
-- identity), so its rows no longer reference user_pools: deleting either
-- kind of pool deletes its messages in the same transaction (the store does
-- it, after the pool row, so that an append holding the pool's lock commits
-- first and is deleted with the rest).
ALTER TABLE outbox DROP CONSTRAINT outbox_pool_id_fkey;

-- A dataset change that someone is to hear of (a subscribed device, the
-- pool's Kinesis stream), written in the transaction of the change itself,
-- so that none is lost to a crash; a worker on any node claims a batch
-- (lease_until_ms: until when its claim holds; 0 unclaimed), delivers it and
-- deletes it. The records are read from sync_records at the change's sync
-- count when it is delivered. Deleting the identity pool deletes its changes.
CREATE TABLE sync_changes (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    identity_pool_id TEXT COLLATE "C" NOT NULL REFERENCES identity_pools (id) ON DELETE CASCADE,
    identity_id      TEXT COLLATE "C" NOT NULL,
    dataset          TEXT COLLATE "C" NOT NULL,
    sync_count       BIGINT NOT NULL,
    modified_by      TEXT   NOT NULL,
    created_ms       BIGINT NOT NULL,
    lease_until_ms   BIGINT NOT NULL,
    attempts         INTEGER NOT NULL
);

CREATE INDEX sync_changes_by_pool ON sync_changes (identity_pool_id);
CREATE INDEX sync_changes_due ON sync_changes (lease_until_ms, id);
