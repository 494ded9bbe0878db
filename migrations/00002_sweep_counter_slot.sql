-- +goose Up

-- A counter slot of its own for the sweeps. A sweep statement frees or
-- deletes thousands of rows and holds its counter row locked from its
-- counter update until it commits, tens of milliseconds under load. On one
-- of the 16 hot-path slots, every claim or release batch that drew the same
-- slot meanwhile waited for it, and with one batch statement in flight per
-- pod and kind, that stalled all of the pod's assigns or unblocks. Stats sum
-- every slot, so nothing else changes.
INSERT INTO token_counters (slot) VALUES (16) ON CONFLICT (slot) DO NOTHING;

-- +goose Down
UPDATE token_counters c
SET total = c.total + s.total, assigned = c.assigned + s.assigned
FROM token_counters s
WHERE c.slot = 0 AND s.slot = 16;
DELETE FROM token_counters WHERE slot = 16;
