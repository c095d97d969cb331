-- Initial schema. Each record keeps its configuration in `doc`, an opaque
-- JSON text owned by the server; the other columns exist for lookups,
-- ordering and compare-and-set updates (`version`). Times are unix epoch ms.
-- STRICT makes SQLite enforce the declared column types.

CREATE TABLE user_pools (
    id          TEXT    NOT NULL PRIMARY KEY,
    name        TEXT    NOT NULL,
    created_ms  INTEGER NOT NULL,
    modified_ms INTEGER NOT NULL,
    version     INTEGER NOT NULL,
    doc         TEXT    NOT NULL
) STRICT;

CREATE TABLE app_clients (
    pool_id     TEXT    NOT NULL REFERENCES user_pools (id) ON DELETE CASCADE,
    client_id   TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    created_ms  INTEGER NOT NULL,
    modified_ms INTEGER NOT NULL,
    version     INTEGER NOT NULL,
    doc         TEXT    NOT NULL,
    PRIMARY KEY (pool_id, client_id)
) STRICT;

CREATE TABLE client_secrets (
    pool_id       TEXT    NOT NULL,
    client_id     TEXT    NOT NULL,
    secret_id     TEXT    NOT NULL,
    sealed_secret TEXT    NOT NULL,
    created_ms    INTEGER NOT NULL,
    PRIMARY KEY (pool_id, client_id, secret_id),
    FOREIGN KEY (pool_id, client_id)
        REFERENCES app_clients (pool_id, client_id) ON DELETE CASCADE
) STRICT;

CREATE TABLE identity_pools (
    id          TEXT    NOT NULL PRIMARY KEY,
    name        TEXT    NOT NULL,
    created_ms  INTEGER NOT NULL,
    modified_ms INTEGER NOT NULL,
    version     INTEGER NOT NULL,
    doc         TEXT    NOT NULL
) STRICT;
