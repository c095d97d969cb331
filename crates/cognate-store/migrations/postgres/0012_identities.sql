-- Identities of identity pools (what GetId hands out), the logins linked to
-- them, and a per-pool identity count.
--
-- An identity belongs to its pool, and its logins to the identity, both with
-- ON DELETE CASCADE: deleting an identity takes its logins, and deleting a
-- pool takes its identities (and so their logins) and its count, in the same
-- statement. As in 0002, secondary indexes do not lead with the pool's id, so
-- a lookup by a full key has exactly one index matching it.
-- Key columns use COLLATE "C": byte order, like SQLite, for ORDER BY and
-- paging.

-- The primary key pages a pool's identities in identity_id order and serves
-- the cascade from the pool. Identity ids are unique among all pools (they
-- embed a UUID), which the unique index enforces: an insert that repeats one
-- in another pool is refused like a duplicate in the same pool.
CREATE TABLE identities (
    identity_pool_id TEXT COLLATE "C" NOT NULL REFERENCES identity_pools (id) ON DELETE CASCADE,
    identity_id      TEXT COLLATE "C" NOT NULL,
    created_ms       BIGINT NOT NULL,
    modified_ms      BIGINT NOT NULL,
    version          BIGINT NOT NULL,
    doc              TEXT   NOT NULL,
    PRIMARY KEY (identity_pool_id, identity_id)
);

CREATE UNIQUE INDEX identities_by_id ON identities (identity_id);

-- A login (provider, subject) is linked to at most one identity per pool: the
-- primary key, which concurrent first sign-ins with one login race on. The
-- secondary index lists an identity's logins in (provider, subject) order and
-- serves the cascade from the identity.
CREATE TABLE identity_logins (
    identity_pool_id TEXT COLLATE "C" NOT NULL,
    provider         TEXT COLLATE "C" NOT NULL,
    subject          TEXT COLLATE "C" NOT NULL,
    identity_id      TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (identity_pool_id, provider, subject),
    FOREIGN KEY (identity_pool_id, identity_id)
        REFERENCES identities (identity_pool_id, identity_id) ON DELETE CASCADE
);

CREATE INDEX identity_logins_by_identity ON identity_logins (identity_id, identity_pool_id, provider, subject);

-- The pool's identity count, spread over up to 16 shard rows as the user
-- count is (0009): an identity write bumps the shard its identity id hashes
-- to, so that first sign-ins on several nodes rarely wait on one row (a
-- single counter row would be locked by every identity insert until its
-- commit). A shard row appears with its first identity; the count is the sum
-- over the pool's shards, one primary-key range read.
CREATE TABLE identity_count_shards (
    identity_pool_id TEXT COLLATE "C" NOT NULL REFERENCES identity_pools (id) ON DELETE CASCADE,
    shard            INTEGER NOT NULL,
    identities       BIGINT  NOT NULL,
    PRIMARY KEY (identity_pool_id, shard)
);
