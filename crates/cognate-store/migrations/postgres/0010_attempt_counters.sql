-- Failed-attempt counters with lockout (sign-in failures, challenge answers,
-- codes), shared by every node on the database.
--
-- One row per opaque key. An attempt is reserved by one upsert statement
-- before the guess is evaluated (the row lock serialises concurrent guesses),
-- so each counts and at most the free attempts are ever evaluated before the
-- lock. last_nonce names the call that last counted (a refused call leaves
-- it), which is how that call learns it was counted. Rows expire (expires_ms)
-- and are purged a few at a time, oldest first.
-- Key columns use COLLATE "C": byte order, like SQLite.
CREATE TABLE attempt_counters (
    attempt_key     TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    attempts        BIGINT NOT NULL,
    locked_until_ms BIGINT,
    last_nonce      TEXT   NOT NULL,
    expires_ms      BIGINT NOT NULL
);

CREATE INDEX attempt_counters_by_expiry ON attempt_counters (expires_ms);
