-- Initial schema. Each record keeps its configuration in `doc`, an opaque
-- JSON text owned by the server; the other columns exist for lookups,
-- ordering and compare-and-set updates (`version`). Times are unix epoch ms.
-- Key columns use COLLATE "C" so that ORDER BY and the `> after_id` paging
-- compare bytes, exactly like SQLite, whatever the database's locale.

CREATE TABLE user_pools (
    id          TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    name        TEXT   NOT NULL,
    created_ms  BIGINT NOT NULL,
    modified_ms BIGINT NOT NULL,
    version     BIGINT NOT NULL,
    doc         TEXT   NOT NULL
);

CREATE TABLE app_clients (
    pool_id     TEXT COLLATE "C" NOT NULL REFERENCES user_pools (id) ON DELETE CASCADE,
    client_id   TEXT COLLATE "C" NOT NULL,
    name        TEXT   NOT NULL,
    created_ms  BIGINT NOT NULL,
    modified_ms BIGINT NOT NULL,
    version     BIGINT NOT NULL,
    doc         TEXT   NOT NULL,
    PRIMARY KEY (pool_id, client_id)
);

CREATE TABLE client_secrets (
    pool_id       TEXT COLLATE "C" NOT NULL,
    client_id     TEXT COLLATE "C" NOT NULL,
    secret_id     TEXT COLLATE "C" NOT NULL,
    sealed_secret TEXT   NOT NULL,
    created_ms    BIGINT NOT NULL,
    PRIMARY KEY (pool_id, client_id, secret_id),
    FOREIGN KEY (pool_id, client_id)
        REFERENCES app_clients (pool_id, client_id) ON DELETE CASCADE
);

CREATE TABLE identity_pools (
    id          TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    name        TEXT   NOT NULL,
    created_ms  BIGINT NOT NULL,
    modified_ms BIGINT NOT NULL,
    version     BIGINT NOT NULL,
    doc         TEXT   NOT NULL
);
