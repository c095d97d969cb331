-- Outbox at rest (issue 9, item 13).
--
-- From this version the server seals code, subject and body under the master
-- key and prunes the outbox on every append: messages older than the
-- retention period, oldest first, which needs an index on created_ms (a full
-- scan per append otherwise), and a pool's oldest beyond its count limit,
-- found through outbox_by_pool.
--
-- Rows written before hold live codes and temporary passwords in plain text:
-- they are deleted (the codes in them no longer verify anyway: code hashes
-- are keyed from this version on). The dead tuples stay in the table's
-- files until (auto)vacuum reuses their space.
DELETE FROM outbox;

CREATE INDEX outbox_by_created ON outbox (created_ms);
