-- +goose Up

-- A counter slot of its own for pool growth (generate, import), as 00002
-- gave the sweeps one. Growth holds its counter row from its first write
-- until it commits; on one of the 16 hot-path slots every claim or release
-- batch that drew the same slot waited for the whole growth transaction, and
-- a growth statement that itself waited for a token row such a batch held
-- (import's ON CONFLICT) closed a deadlock. Growth is serialised by its
-- advisory lock, so one slot never makes two growths wait for each other.
INSERT INTO token_counters (slot) VALUES (17) ON CONFLICT (slot) DO NOTHING;

-- +goose Down
UPDATE token_counters c
SET total = c.total + s.total, assigned = c.assigned + s.assigned
FROM token_counters s
WHERE c.slot = 0 AND s.slot = 17;
DELETE FROM token_counters WHERE slot = 17;
