-- Fixed-window request counters shared by every node on the database.
--
-- One row per (rate_key, window_start_ms), counted up by an upsert in a
-- single statement. Rows are not tied to a pool: keys are opaque to the
-- store. Windows long over are purged a few rows at a time, oldest first,
-- through the index on window_start_ms (which, the table having no rowid,
-- also holds the key and so covers the purge's search).
-- TEXT compares with BINARY collation (byte order).

CREATE TABLE rate_windows (
    rate_key        TEXT    NOT NULL,
    window_start_ms INTEGER NOT NULL,
    hits            INTEGER NOT NULL,
    PRIMARY KEY (rate_key, window_start_ms)
) STRICT, WITHOUT ROWID;

CREATE INDEX rate_windows_by_start ON rate_windows (window_start_ms);
