-- +goose Up

-- Counter rows per backend (issue 14). Each write used to add to one of a
-- pool's 16 hot-path slots, drawn at random per statement, and held that
-- row locked until it committed (a durable commit: a WAL flush). With 64
-- statements in flight four or more drew each slot and queued behind one
-- another's commits: the design's statements ran at a third of their 16-client
-- rate at 64 clients. Now every write adds to the row of its own backend,
-- slot = -pg_backend_pid(): a backend runs one transaction at a time, so no
-- two transactions ever write the same counter row, whatever the number of
-- pods, connections or pools. A backend makes its row in a pool at its first
-- write there; the sweep folds the rows of backends that have exited into
-- its own (tokens.Service.FoldCounterRows), so a pool has about one row per
-- live connection that wrote to it, plus the fixed ones: its stats stay a
-- sum of a bounded number of rows, whatever the pool's size.
--
-- Slots 0..17 stay as they are: their counts are part of every sum, and pods
-- of the previous version (a rolling upgrade) keep writing to them. New pools
-- still get them (PutPool) for those pods' sake. Pids exceed smallint, hence
-- the wider column; the table is tiny, so the rewrite is instant.
ALTER TABLE token_counters ALTER COLUMN slot TYPE integer;

COMMENT ON COLUMN token_counters.slot IS
    'slot >= 0: fixed rows (0..15 hot-path slots of earlier versions, 16 sweeps, 17 growth); '
    'slot < 0: the row of the backend whose pid is -slot (folded by the sweep once it exits)';

-- +goose Down
-- The backends' rows go into slot 0 of their pool.
INSERT INTO token_counters AS c (pool_id, slot, total, assigned)
SELECT pool_id, 0, sum(total), sum(assigned) FROM token_counters WHERE slot < 0 GROUP BY pool_id
ON CONFLICT (pool_id, slot) DO UPDATE
SET total = c.total + EXCLUDED.total, assigned = c.assigned + EXCLUDED.assigned;
DELETE FROM token_counters WHERE slot < 0;
COMMENT ON COLUMN token_counters.slot IS NULL;
ALTER TABLE token_counters ALTER COLUMN slot TYPE smallint;
