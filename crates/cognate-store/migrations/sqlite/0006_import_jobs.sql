-- User import jobs and the CSV uploaded for each.
--
-- A job belongs to a pool, and its CSV to the job, both with ON DELETE
-- CASCADE: deleting a pool takes its jobs and their CSVs in the same
-- statement. As in 0002, secondary indexes do not lead with pool_id, so a
-- lookup by a full key has exactly one index matching it.
-- TEXT compares with BINARY collation (byte order).

-- O(1) job count, checked against the caller's limit and bumped by the last
-- statement of a job insert.
ALTER TABLE user_pools ADD COLUMN import_job_count INTEGER NOT NULL DEFAULT 0;

-- The primary key pages a pool's jobs newest first (scanned backwards) and
-- serves the cascade from the pool; the unique index finds a job by
-- (pool_id, job_id) or by job_id alone (upload URLs name the job only), and
-- is the key the CSVs reference. created_ms never changes once inserted.
CREATE TABLE import_jobs (
    pool_id     TEXT    NOT NULL REFERENCES user_pools (id) ON DELETE CASCADE,
    job_id      TEXT    NOT NULL,
    created_ms  INTEGER NOT NULL,
    modified_ms INTEGER NOT NULL,
    version     INTEGER NOT NULL,
    doc         TEXT    NOT NULL,
    PRIMARY KEY (pool_id, created_ms, job_id)
) STRICT;

CREATE UNIQUE INDEX import_jobs_by_id ON import_jobs (job_id, pool_id);

-- At most one CSV per job, replaced by a later upload. Kept apart from the
-- job row so that job updates and listings never touch the (large) blob.
-- The primary key serves the cascade from the job.
CREATE TABLE import_job_csvs (
    pool_id TEXT NOT NULL,
    job_id  TEXT NOT NULL,
    csv     BLOB NOT NULL,
    PRIMARY KEY (pool_id, job_id),
    FOREIGN KEY (job_id, pool_id)
        REFERENCES import_jobs (job_id, pool_id) ON DELETE CASCADE
) STRICT;
