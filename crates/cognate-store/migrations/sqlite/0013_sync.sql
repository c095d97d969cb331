-- Cognito Sync: an identity's datasets, their records, and usage counters
-- kept exact as they change (no scan of datasets or records on reads).
--
-- A dataset belongs to its identity and a record to its dataset, both with
-- ON DELETE CASCADE: deleting an identity (or its pool) takes its datasets
-- and their records in the same statement. A deleted dataset stays as a
-- tombstone row (deleted = 1, no records) so that its sync count keeps rising
-- when it is revived. As in 0002, secondary indexes do not lead with the
-- pool's id. TEXT compares with BINARY collation (byte order), the order
-- listings use.

-- The primary key lists an identity's datasets by name and serves the
-- cascade from the identity. Every dataset write locks this row first.
CREATE TABLE sync_datasets (
    identity_pool_id TEXT    NOT NULL,
    identity_id      TEXT    NOT NULL,
    name             TEXT    NOT NULL,
    created_ms       INTEGER NOT NULL,
    modified_ms      INTEGER NOT NULL,
    last_modified_by TEXT    NOT NULL,
    sync_count       INTEGER NOT NULL,
    num_records      INTEGER NOT NULL,
    data_bytes       INTEGER NOT NULL,
    deleted          INTEGER NOT NULL,
    PRIMARY KEY (identity_pool_id, identity_id, name),
    FOREIGN KEY (identity_pool_id, identity_id)
        REFERENCES identities (identity_pool_id, identity_id) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;

-- A removed record stays with a NULL value so that incremental reads see the
-- removal. The primary key finds a record by key (and serves the cascade from
-- the dataset); the by-count index pages a dataset's records changed after a
-- sync count, in (sync_count, key) order, as one range scan.
CREATE TABLE sync_records (
    identity_pool_id   TEXT    NOT NULL,
    identity_id        TEXT    NOT NULL,
    dataset            TEXT    NOT NULL,
    key                TEXT    NOT NULL,
    value              TEXT,
    sync_count         INTEGER NOT NULL,
    modified_ms        INTEGER NOT NULL,
    last_modified_by   TEXT    NOT NULL,
    device_modified_ms INTEGER,
    PRIMARY KEY (identity_pool_id, identity_id, dataset, key),
    FOREIGN KEY (identity_pool_id, identity_id, dataset)
        REFERENCES sync_datasets (identity_pool_id, identity_id, name) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;

CREATE INDEX sync_records_by_count ON sync_records (identity_id, identity_pool_id, dataset, sync_count, key);

-- An identity's usage: live datasets and their bytes, updated (and, when a
-- dataset comes to life, locked and checked against the dataset limit) in
-- the transaction that changes a dataset, after the dataset row's lock.
CREATE TABLE sync_identity_usage (
    identity_pool_id TEXT    NOT NULL,
    identity_id      TEXT    NOT NULL,
    datasets         INTEGER NOT NULL,
    data_bytes       INTEGER NOT NULL,
    modified_ms      INTEGER NOT NULL,
    PRIMARY KEY (identity_pool_id, identity_id),
    FOREIGN KEY (identity_pool_id, identity_id)
        REFERENCES identities (identity_pool_id, identity_id) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;

-- The pool's usage (identities with a live dataset, their bytes, the last
-- change), spread over up to 16 shard rows as the identity count is (0012):
-- a write bumps the shard its identity id hashes to, last in its
-- transaction. The usage is the sum over the pool's shards, one primary-key
-- range read.
CREATE TABLE sync_pool_usage_shards (
    identity_pool_id TEXT    NOT NULL REFERENCES identity_pools (id) ON DELETE CASCADE,
    shard            INTEGER NOT NULL,
    identities       INTEGER NOT NULL,
    data_bytes       INTEGER NOT NULL,
    modified_ms      INTEGER NOT NULL,
    PRIMARY KEY (identity_pool_id, shard)
) STRICT, WITHOUT ROWID;
