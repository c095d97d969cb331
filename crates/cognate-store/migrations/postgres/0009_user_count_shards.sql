-- A pool's user count moves off the pool row into shards.
--
-- Every user insert and delete bumped user_pools.user_count: on PostgreSQL
-- that made the pool row (wide: it holds the pool's JSON) a hot row, locked
-- by every concurrent user write until its commit and rewritten, whole,
-- each time. The count is now the sum of up to 16 narrow shard rows; a user
-- write bumps the shard its username key hashes to, so concurrent writes
-- rarely wait on each other and a dead row version is a few dozen bytes.
-- A shard row appears with its first user; the sum over a pool's shards is
-- one primary-key range read.

CREATE TABLE user_count_shards (
    pool_id TEXT COLLATE "C" NOT NULL REFERENCES user_pools (id) ON DELETE CASCADE,
    shard   INTEGER NOT NULL,
    users   BIGINT  NOT NULL,
    PRIMARY KEY (pool_id, shard)
);

INSERT INTO user_count_shards (pool_id, shard, users)
    SELECT id, 0, user_count FROM user_pools WHERE user_count <> 0;

ALTER TABLE user_pools DROP COLUMN user_count;
