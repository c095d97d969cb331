-- Managed login branding styles: one per app client at most (the unique
-- index), each with an id unique in its pool. Their documents hold the
-- style's image files (megabytes), so they live here rather than in the
-- pool's document. Deleting the app client (or its pool, which deletes the
-- client) deletes its style.
CREATE TABLE managed_login_brandings (
    pool_id     TEXT COLLATE "C" NOT NULL,
    branding_id TEXT COLLATE "C" NOT NULL,
    client_id   TEXT COLLATE "C" NOT NULL,
    created_ms  BIGINT NOT NULL,
    modified_ms BIGINT NOT NULL,
    version     BIGINT NOT NULL,
    doc         TEXT   NOT NULL,
    PRIMARY KEY (pool_id, branding_id),
    FOREIGN KEY (pool_id, client_id)
        REFERENCES app_clients (pool_id, client_id) ON DELETE CASCADE
);

CREATE UNIQUE INDEX managed_login_brandings_by_client ON managed_login_brandings (pool_id, client_id);
