-- Import job leases: while a node imports a job it holds the job until
-- lease_until_ms (ms since the epoch), renewed with every batch it commits.
-- NULL when no node should be importing it (not started, or finished). A job
-- whose lease ran out was left by a node that stopped; another node finds it
-- through the partial index (only running jobs are in it) and resumes it.

ALTER TABLE import_jobs ADD COLUMN lease_until_ms INTEGER;

CREATE INDEX import_jobs_by_lease ON import_jobs (lease_until_ms) WHERE lease_until_ms IS NOT NULL;
