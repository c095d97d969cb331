-- Users, their index rows, one-time codes and the outbox.
--
-- Every user-owned table references `users` with ON DELETE CASCADE, and
-- `users` references `user_pools` the same way, so deleting a user or a pool
-- takes everything hanging off it in the same statement. Each such child has
-- an index on (username_key, pool_id) (or a primary key leading with
-- (pool_id, username_key)), which the cascade uses.
--
-- Secondary indexes deliberately do not lead with pool_id: then a lookup by
-- (pool_id, username_key) has exactly one index matching it, and no other
-- index that merely narrows it down to the pool. Plans made before any
-- statistics exist (PostgreSQL keeps its foreign-key check plans for the
-- life of a connection) would otherwise be free to pick the latter, and
-- cost a scan of the whole pool per check.
-- Key and searched columns use COLLATE "C": byte order, like SQLite, for
-- ORDER BY, paging and the prefix ranges of search.

-- O(1) user count, maintained in the same transaction as inserts/deletes.
ALTER TABLE user_pools ADD COLUMN user_count BIGINT NOT NULL DEFAULT 0;

CREATE TABLE users (
    pool_id      TEXT COLLATE "C" NOT NULL REFERENCES user_pools (id) ON DELETE CASCADE,
    username_key TEXT COLLATE "C" NOT NULL,
    username     TEXT    NOT NULL,
    sub          TEXT COLLATE "C" NOT NULL,
    status       TEXT    NOT NULL,
    enabled      BOOLEAN NOT NULL,
    created_ms   BIGINT  NOT NULL,
    modified_ms  BIGINT  NOT NULL,
    version      BIGINT  NOT NULL,
    attributes   TEXT    NOT NULL,
    password     TEXT,
    doc          TEXT    NOT NULL,
    PRIMARY KEY (pool_id, username_key)
);

CREATE UNIQUE INDEX users_by_sub ON users (sub, pool_id);

-- (attribute, value) pairs ListUsers filters on. The primary key is the
-- search index: equality and prefix (range) lookups on value, already in
-- (value, username_key) order for paging.
CREATE TABLE user_search (
    pool_id      TEXT COLLATE "C" NOT NULL,
    attribute    TEXT COLLATE "C" NOT NULL,
    value        TEXT COLLATE "C" NOT NULL,
    username_key TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (pool_id, attribute, value, username_key),
    FOREIGN KEY (pool_id, username_key)
        REFERENCES users (pool_id, username_key) ON DELETE CASCADE
);

CREATE INDEX user_search_by_user ON user_search (username_key, pool_id);

-- Keys that must be unique among all users of a pool (verified email or
-- phone number used as an alias, preferred_username...).
CREATE TABLE user_aliases (
    pool_id      TEXT COLLATE "C" NOT NULL,
    kind         TEXT COLLATE "C" NOT NULL,
    alias_key    TEXT COLLATE "C" NOT NULL,
    username_key TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (pool_id, kind, alias_key),
    FOREIGN KEY (pool_id, username_key)
        REFERENCES users (pool_id, username_key) ON DELETE CASCADE
);

CREATE INDEX user_aliases_by_user ON user_aliases (username_key, pool_id);

-- At most one live code per (user, purpose). The primary key leads with
-- (pool_id, username_key), so the cascade needs no extra index.
CREATE TABLE user_codes (
    pool_id       TEXT COLLATE "C" NOT NULL,
    username_key  TEXT COLLATE "C" NOT NULL,
    purpose       TEXT COLLATE "C" NOT NULL,
    code_hash     TEXT   NOT NULL,
    expires_ms    BIGINT NOT NULL,
    attempts_left BIGINT NOT NULL,
    created_ms    BIGINT NOT NULL,
    PRIMARY KEY (pool_id, username_key, purpose),
    FOREIGN KEY (pool_id, username_key)
        REFERENCES users (pool_id, username_key) ON DELETE CASCADE
);

-- A log of sent messages: not tied to the user (it survives the user), only
-- to the pool. Ids come from a sequence: increasing in allocation order.
CREATE TABLE outbox (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    pool_id     TEXT COLLATE "C" NOT NULL REFERENCES user_pools (id) ON DELETE CASCADE,
    username    TEXT COLLATE "C" NOT NULL,
    channel     TEXT   NOT NULL,
    destination TEXT   NOT NULL,
    code        TEXT,
    subject     TEXT,
    body        TEXT   NOT NULL,
    created_ms  BIGINT NOT NULL
);

CREATE INDEX outbox_by_pool ON outbox (pool_id, id);
CREATE INDEX outbox_by_user ON outbox (pool_id, username, id);
