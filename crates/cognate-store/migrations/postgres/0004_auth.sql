-- Token signing keys, revoked token families and single-use values.
--
-- Keys and revocations belong to a pool (ON DELETE CASCADE: deleting the
-- pool deletes them in the same statement); their primary keys lead with
-- pool_id, which the cascade uses. As in 0002, secondary indexes do not lead
-- with pool_id, so a lookup by a full primary key has exactly one index
-- matching it.
-- Key columns use COLLATE "C": byte order, like SQLite.

-- At most one key per (pool, purpose) (`id` or `access`, opaque to the
-- store); the first writer wins and later writers read its key. A kid is
-- unique within its pool (it names the key in the pool's JWKS).
CREATE TABLE signing_keys (
    pool_id            TEXT COLLATE "C" NOT NULL REFERENCES user_pools (id) ON DELETE CASCADE,
    purpose            TEXT COLLATE "C" NOT NULL,
    kid                TEXT COLLATE "C" NOT NULL,
    sealed_private_key TEXT   NOT NULL,
    public_jwk         TEXT   NOT NULL,
    created_ms         BIGINT NOT NULL,
    PRIMARY KEY (pool_id, purpose)
);

CREATE UNIQUE INDEX signing_keys_by_kid ON signing_keys (kid, pool_id);

-- Revoked token families, named by the jti of the token that started the
-- family; kept until expires_ms, then purged a few rows at a time.
CREATE TABLE token_revocations (
    pool_id    TEXT COLLATE "C" NOT NULL REFERENCES user_pools (id) ON DELETE CASCADE,
    origin_jti TEXT COLLATE "C" NOT NULL,
    expires_ms BIGINT NOT NULL,
    PRIMARY KEY (pool_id, origin_jti)
);

CREATE INDEX token_revocations_by_expiry ON token_revocations (expires_ms);

-- Values that may be used once (challenge sessions, SRP secret blocks),
-- live until expires_ms; expired rows count as unused and are purged a few
-- at a time.
CREATE TABLE single_use_keys (
    use_key    TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    expires_ms BIGINT NOT NULL
);

CREATE INDEX single_use_keys_by_expiry ON single_use_keys (expires_ms);
