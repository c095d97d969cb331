-- User pool groups and their members.
--
-- Groups belong to a pool, and a membership to both a group and a user, all
-- with ON DELETE CASCADE: deleting a pool, a group or a user takes the rows
-- hanging off it in the same statement. As in 0002, secondary indexes do not
-- lead with pool_id, so a lookup by a full key has exactly one index
-- matching it.
-- TEXT compares with BINARY collation (byte order), the order listings use.

-- O(1) group count, checked against the caller's limit and bumped by the
-- last statement of a group insert (dropped by the last of a delete).
ALTER TABLE user_pools ADD COLUMN group_count INTEGER NOT NULL DEFAULT 0;

CREATE TABLE user_groups (
    pool_id     TEXT    NOT NULL REFERENCES user_pools (id) ON DELETE CASCADE,
    name        TEXT    NOT NULL,
    created_ms  INTEGER NOT NULL,
    modified_ms INTEGER NOT NULL,
    version     INTEGER NOT NULL,
    precedence  INTEGER,
    doc         TEXT    NOT NULL,
    PRIMARY KEY (pool_id, name)
) STRICT;

-- The primary key pages a group's members in username_key order and serves
-- the cascade from the group; the secondary index pages a user's groups in
-- name order, counts them, and serves the cascade from the user.
CREATE TABLE group_members (
    pool_id      TEXT NOT NULL,
    group_name   TEXT NOT NULL,
    username_key TEXT NOT NULL,
    PRIMARY KEY (pool_id, group_name, username_key),
    FOREIGN KEY (pool_id, group_name)
        REFERENCES user_groups (pool_id, name) ON DELETE CASCADE,
    FOREIGN KEY (pool_id, username_key)
        REFERENCES users (pool_id, username_key) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;

CREATE INDEX group_members_by_user ON group_members (username_key, pool_id, group_name);
