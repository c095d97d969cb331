-- Managed login branding styles: one per app client at most (the unique
-- index), each with an id unique in its pool. Their documents hold the
-- style's image files (megabytes), so they live here rather than in the
-- pool's document. Deleting the app client (or its pool, which deletes the
-- client) deletes its style.
CREATE TABLE managed_login_brandings (
    pool_id     TEXT    NOT NULL,
    branding_id TEXT    NOT NULL,
    client_id   TEXT    NOT NULL,
    created_ms  INTEGER NOT NULL,
    modified_ms INTEGER NOT NULL,
    version     INTEGER NOT NULL,
    doc         TEXT    NOT NULL,
    PRIMARY KEY (pool_id, branding_id),
    FOREIGN KEY (pool_id, client_id)
        REFERENCES app_clients (pool_id, client_id) ON DELETE CASCADE
) STRICT;

CREATE UNIQUE INDEX managed_login_brandings_by_client ON managed_login_brandings (pool_id, client_id);
