-- Failed-attempt counters with lockout (sign-in failures, challenge answers,
-- codes), shared by every node on the database.
--
-- One row per opaque key. An attempt is reserved by one upsert statement
-- before the guess is evaluated, so concurrent guesses each count and at most
-- the free attempts are ever evaluated before the lock. last_nonce names the
-- call that last counted (a refused call leaves it), which is how that call
-- learns it was counted. Rows expire (expires_ms) and are purged a few at a
-- time, oldest first.
CREATE TABLE attempt_counters (
    attempt_key     TEXT    NOT NULL PRIMARY KEY,
    attempts        INTEGER NOT NULL,
    locked_until_ms INTEGER,
    last_nonce      TEXT    NOT NULL,
    expires_ms      INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE INDEX attempt_counters_by_expiry ON attempt_counters (expires_ms);
