-- Fixed-window request counters shared by every node on the database.
--
-- One row per (rate_key, window_start_ms), counted up by an upsert in a
-- single statement (the row lock serialises concurrent hits). Rows are not
-- tied to a pool: keys are opaque to the store. Windows long over are purged
-- a few rows at a time, oldest first, through the index on window_start_ms.
-- Key columns use COLLATE "C": byte order, like SQLite.

CREATE TABLE rate_windows (
    rate_key        TEXT COLLATE "C" NOT NULL,
    window_start_ms BIGINT NOT NULL,
    hits            BIGINT NOT NULL,
    PRIMARY KEY (rate_key, window_start_ms)
);

CREATE INDEX rate_windows_by_start ON rate_windows (window_start_ms);
