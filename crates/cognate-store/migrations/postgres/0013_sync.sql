-- Cognito Sync: an identity's datasets, their records, and usage counters
-- kept exact as they change (no scan of datasets or records on reads).
--
-- A dataset belongs to its identity and a record to its dataset, both with
-- ON DELETE CASCADE: deleting an identity (or its pool) takes its datasets
-- and their records in the same statement. A deleted dataset stays as a
-- tombstone row (deleted, no records) so that its sync count keeps rising
-- when it is revived. As in 0002, secondary indexes do not lead with the
-- pool's id. Key columns use COLLATE "C": byte order, like SQLite, for
-- ORDER BY and paging.

-- The primary key lists an identity's datasets by name and serves the
-- cascade from the identity. Every dataset write locks this row first
-- (FOR UPDATE), so writers of one dataset on several nodes serialise on it.
CREATE TABLE sync_datasets (
    identity_pool_id TEXT COLLATE "C" NOT NULL,
    identity_id      TEXT COLLATE "C" NOT NULL,
    name             TEXT COLLATE "C" NOT NULL,
    created_ms       BIGINT  NOT NULL,
    modified_ms      BIGINT  NOT NULL,
    last_modified_by TEXT    NOT NULL,
    sync_count       BIGINT  NOT NULL,
    num_records      BIGINT  NOT NULL,
    data_bytes       BIGINT  NOT NULL,
    deleted          BOOLEAN NOT NULL,
    PRIMARY KEY (identity_pool_id, identity_id, name),
    FOREIGN KEY (identity_pool_id, identity_id)
        REFERENCES identities (identity_pool_id, identity_id) ON DELETE CASCADE
);

-- A removed record stays with a NULL value so that incremental reads see the
-- removal. The primary key finds a record by key (and serves the cascade from
-- the dataset); the by-count index pages a dataset's records changed after a
-- sync count, in (sync_count, key) order, as one range scan.
CREATE TABLE sync_records (
    identity_pool_id   TEXT COLLATE "C" NOT NULL,
    identity_id        TEXT COLLATE "C" NOT NULL,
    dataset            TEXT COLLATE "C" NOT NULL,
    key                TEXT COLLATE "C" NOT NULL,
    value              TEXT,
    sync_count         BIGINT NOT NULL,
    modified_ms        BIGINT NOT NULL,
    last_modified_by   TEXT   NOT NULL,
    device_modified_ms BIGINT,
    PRIMARY KEY (identity_pool_id, identity_id, dataset, key),
    FOREIGN KEY (identity_pool_id, identity_id, dataset)
        REFERENCES sync_datasets (identity_pool_id, identity_id, name) ON DELETE CASCADE
);

CREATE INDEX sync_records_by_count ON sync_records (identity_id, identity_pool_id, dataset, sync_count, key);

-- An identity's usage: live datasets and their bytes, updated (and, when a
-- dataset comes to life, locked and checked against the dataset limit) in
-- the transaction that changes a dataset, after the dataset row's lock.
CREATE TABLE sync_identity_usage (
    identity_pool_id TEXT COLLATE "C" NOT NULL,
    identity_id      TEXT COLLATE "C" NOT NULL,
    datasets         BIGINT NOT NULL,
    data_bytes       BIGINT NOT NULL,
    modified_ms      BIGINT NOT NULL,
    PRIMARY KEY (identity_pool_id, identity_id),
    FOREIGN KEY (identity_pool_id, identity_id)
        REFERENCES identities (identity_pool_id, identity_id) ON DELETE CASCADE
);

-- The pool's usage (identities with a live dataset, their bytes, the last
-- change), spread over up to 16 shard rows as the identity count is (0012):
-- a write bumps the shard its identity id hashes to, last in its
-- transaction, so that sync writers on several nodes rarely wait on one row.
-- The usage is the sum over the pool's shards, one primary-key range read.
CREATE TABLE sync_pool_usage_shards (
    identity_pool_id TEXT COLLATE "C" NOT NULL REFERENCES identity_pools (id) ON DELETE CASCADE,
    shard            INTEGER NOT NULL,
    identities       BIGINT  NOT NULL,
    data_bytes       BIGINT  NOT NULL,
    modified_ms      BIGINT  NOT NULL,
    PRIMARY KEY (identity_pool_id, shard)
);
