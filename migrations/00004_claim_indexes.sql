-- +goose NO TRANSACTION
-- +goose Up

-- The free-token index carries alive_until as a second key column, so that a
-- claim's `alive_until > now()` is checked on the index entry: a dead but
-- unswept free row costs the probe one index tuple, never a heap fetch, and
-- the ordered probe stays the cheapest plan whatever the share of dead rows
-- (with the deadline only a filter on the heap, a generic plan of ClaimBatch
-- turned into a sort of every live row once most of the pool was dead).
-- Built concurrently: a live pool keeps serving while the index builds.
CREATE INDEX CONCURRENTLY IF NOT EXISTS tokens_free_live ON tokens (sort_key, alive_until) WHERE lease_id IS NULL;
DROP INDEX CONCURRENTLY IF EXISTS tokens_free_by_sort_key;

-- The same for lapsed leases: a claim's lapsed branch skips the leases of
-- dead rows on the index entry. It also reads no further than the 256th
-- earliest lapsed lease (see ClaimBatch), so that dead rows, whose leases
-- lapse first, never make it read in proportion to them.
CREATE INDEX CONCURRENTLY IF NOT EXISTS tokens_lapse_live ON tokens (lease_expires_at, alive_until) WHERE lease_id IS NOT NULL;
DROP INDEX CONCURRENTLY IF EXISTS tokens_lease_expiry;

-- +goose Down
CREATE INDEX CONCURRENTLY IF NOT EXISTS tokens_lease_expiry ON tokens (lease_expires_at) WHERE lease_id IS NOT NULL;
DROP INDEX CONCURRENTLY IF EXISTS tokens_lapse_live;
CREATE INDEX CONCURRENTLY IF NOT EXISTS tokens_free_by_sort_key ON tokens (sort_key) WHERE lease_id IS NULL;
DROP INDEX CONCURRENTLY IF EXISTS tokens_free_live;
