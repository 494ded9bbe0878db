-- +goose Up

-- The free-token index carries alive_until as a second key column, so that a
-- claim's `alive_until > now()` is checked on the index entry: a dead but
-- unswept free row costs the probe one index tuple, never a heap fetch, and
-- the ordered probe stays the cheapest plan whatever the share of dead rows
-- (with the deadline only a filter on the heap, a generic plan of ClaimBatch
-- turned into a sort of every live row once most of the pool was dead).
-- Not built CONCURRENTLY: pods that start together wait for the migration
-- in a transaction (goose's session lock), and CREATE INDEX CONCURRENTLY
-- waits for every such transaction, which waits for it in turn. The build
-- blocks writes to tokens for its duration (seconds on a pool of millions):
-- for a large live pool, run these CREATE INDEX CONCURRENTLY statements by
-- hand first; IF NOT EXISTS then makes the migration a quick no-op.
CREATE INDEX IF NOT EXISTS tokens_free_live ON tokens (sort_key, alive_until) WHERE lease_id IS NULL;
DROP INDEX IF EXISTS tokens_free_by_sort_key;

-- The same for lapsed leases: a claim's lapsed branch skips the leases of
-- dead rows on the index entry. It also reads no further than the 256th
-- earliest lapsed lease (see ClaimBatch), so that dead rows, whose leases
-- lapse first, never make it read in proportion to them.
CREATE INDEX IF NOT EXISTS tokens_lapse_live ON tokens (lease_expires_at, alive_until) WHERE lease_id IS NOT NULL;
DROP INDEX IF EXISTS tokens_lease_expiry;

-- +goose Down
CREATE INDEX IF NOT EXISTS tokens_lease_expiry ON tokens (lease_expires_at) WHERE lease_id IS NOT NULL;
DROP INDEX IF EXISTS tokens_lapse_live;
CREATE INDEX IF NOT EXISTS tokens_free_by_sort_key ON tokens (sort_key) WHERE lease_id IS NULL;
DROP INDEX IF EXISTS tokens_free_live;
