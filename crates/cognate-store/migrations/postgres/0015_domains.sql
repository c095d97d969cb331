-- User pool domains: where a pool's hosted pages and OAuth 2.0 endpoints are
-- served. A domain name belongs to one pool (the primary key, across every
-- pool); a pool has at most one prefix domain and one custom domain (the
-- unique index). Deleting the pool deletes its domains.
CREATE TABLE user_pool_domains (
    domain      TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    pool_id     TEXT COLLATE "C" NOT NULL REFERENCES user_pools (id) ON DELETE CASCADE,
    custom      BOOLEAN NOT NULL,
    created_ms  BIGINT  NOT NULL,
    modified_ms BIGINT  NOT NULL,
    version     BIGINT  NOT NULL,
    doc         TEXT    NOT NULL
);

CREATE UNIQUE INDEX user_pool_domains_by_pool ON user_pool_domains (pool_id, custom);
