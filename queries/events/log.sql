-- The change log reader of package events: internal/events/log.go argues why
-- reading below a horizon in (xid, id) order is gap-free.

-- name: ReadEvents :many
-- Up to max_rows final rows after the cursor (after_xid, after_id), in
-- (xid, id) order: only rows below the xmin horizon of this statement's own
-- snapshot (ahead false). The cursor and the horizon are conditions on the
-- index token_log_xid_id. Then, from the same snapshot, the rows of the
-- same tokens among the next lookahead rows past the chunk (ahead true; held
-- back or past the limit) that changed their token before a row of the chunk
-- (a smaller id): the reader withholds that row until they can be delivered
-- first (internal/events/order.go). horizon is the read's horizon.
-- A row without a value (migration 00031) takes its token's: from tokens by
-- key while the token lives, else from the token's ending row (it is gone,
-- and that row committed with its removal, so this snapshot sees it). Each
-- lookup is a scalar subquery, an index probe per row that needs it.
WITH chunk AS MATERIALIZED (
    SELECT e.id, e.xid, e.at, e.kind, e.token_id, e.token, e.lease_id, e.holder, e.pool_id, e.version, e.actor_id
    FROM token_log e
    WHERE (e.xid, e.id) > (sqlc.arg('after_xid')::bigint, sqlc.arg('after_id')::bigint)
      AND e.xid < pg_snapshot_xmin(pg_current_snapshot())::text::bigint
    ORDER BY e.xid, e.id
    LIMIT sqlc.arg('max_rows')::int
),
chunk_end AS MATERIALIZED (
    SELECT c.xid, c.id FROM chunk c ORDER BY c.xid DESC, c.id DESC LIMIT 1
),
ahead AS (
    SELECT a.id, a.xid, a.at, a.kind, a.token_id, a.token, a.lease_id, a.holder, a.pool_id, a.version, a.actor_id
    FROM token_log a
    WHERE (a.xid, a.id) > ((SELECT xid FROM chunk_end), (SELECT id FROM chunk_end))
    ORDER BY a.xid, a.id
    LIMIT sqlc.arg('lookahead')::int
),
found AS (
    SELECT c.*, false AS ahead FROM chunk c
    UNION ALL
    SELECT a.*, true AS ahead FROM ahead a
    WHERE a.id < (SELECT max(c.id) FROM chunk c)
      AND EXISTS (SELECT 1 FROM chunk c WHERE c.token_id = a.token_id)
)
SELECT f.id, f.xid, f.at,
       (CASE f.kind WHEN 'g' THEN 'generated' WHEN 'i' THEN 'imported' WHEN 'a' THEN 'assigned'
                    WHEN 'u' THEN 'unblocked' WHEN 'r' THEN 'released' WHEN 'k' THEN 'kept_alive'
                    WHEN 'd' THEN 'deleted' ELSE 'expired' END)::text AS kind,
       COALESCE(f.token,
                (SELECT t.value FROM tokens t WHERE t.pool_id = f.pool_id AND t.id = f.token_id),
                (SELECT v.token FROM token_log v WHERE v.token_id = f.token_id AND v.token IS NOT NULL LIMIT 1),
                '')::text AS token,
       f.lease_id, f.holder, p.name AS pool, f.version, n.name AS actor, f.ahead,
       pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS horizon
FROM found f
JOIN pools p ON p.id = f.pool_id
LEFT JOIN audit_names n ON n.id = f.actor_id
ORDER BY f.ahead, f.xid, f.id;

-- name: ReadEventsUpTo :many
-- Up to max_rows rows after (after_xid, after_id) and not past
-- (until_xid, until_id), in (xid, id) order (ahead false). The caller knows
-- that every row up to until is final: a position a reader has reached, or
-- (h, 0) for a horizon h from OwnDatabaseHorizon (a horizon stays valid).
-- Then, as in ReadEvents, the rows of the same tokens among the next
-- lookahead rows past the chunk and not past (ahead_xid, ahead_id) that
-- changed their token before a row of the chunk (ahead true).
WITH chunk AS MATERIALIZED (
    SELECT e.id, e.xid, e.at, e.kind, e.token_id, e.token, e.lease_id, e.holder, e.pool_id, e.version, e.actor_id
    FROM token_log e
    WHERE (e.xid, e.id) > (sqlc.arg('after_xid')::bigint, sqlc.arg('after_id')::bigint)
      AND (e.xid, e.id) <= (sqlc.arg('until_xid')::bigint, sqlc.arg('until_id')::bigint)
    ORDER BY e.xid, e.id
    LIMIT sqlc.arg('max_rows')::int
),
chunk_end AS MATERIALIZED (
    SELECT c.xid, c.id FROM chunk c ORDER BY c.xid DESC, c.id DESC LIMIT 1
),
ahead AS (
    SELECT a.id, a.xid, a.at, a.kind, a.token_id, a.token, a.lease_id, a.holder, a.pool_id, a.version, a.actor_id
    FROM token_log a
    WHERE (a.xid, a.id) > ((SELECT xid FROM chunk_end), (SELECT id FROM chunk_end))
      AND (a.xid, a.id) <= (sqlc.arg('ahead_xid')::bigint, sqlc.arg('ahead_id')::bigint)
    ORDER BY a.xid, a.id
    LIMIT sqlc.arg('lookahead')::int
),
found AS (
    SELECT c.*, false AS ahead FROM chunk c
    UNION ALL
    SELECT a.*, true AS ahead FROM ahead a
    WHERE a.id < (SELECT max(c.id) FROM chunk c)
      AND EXISTS (SELECT 1 FROM chunk c WHERE c.token_id = a.token_id)
)
SELECT f.id, f.xid, f.at,
       (CASE f.kind WHEN 'g' THEN 'generated' WHEN 'i' THEN 'imported' WHEN 'a' THEN 'assigned'
                    WHEN 'u' THEN 'unblocked' WHEN 'r' THEN 'released' WHEN 'k' THEN 'kept_alive'
                    WHEN 'd' THEN 'deleted' ELSE 'expired' END)::text AS kind,
       COALESCE(f.token,
                (SELECT t.value FROM tokens t WHERE t.pool_id = f.pool_id AND t.id = f.token_id),
                (SELECT v.token FROM token_log v WHERE v.token_id = f.token_id AND v.token IS NOT NULL LIMIT 1),
                '')::text AS token,
       f.lease_id, f.holder, p.name AS pool, f.version, n.name AS actor, f.ahead
FROM found f
JOIN pools p ON p.id = f.pool_id
LEFT JOIN audit_names n ON n.id = f.actor_id
ORDER BY f.ahead, f.xid, f.id;

-- name: EventsHeldBack :one
-- Whether committed rows after the cursor (after_xid, after_id) are still
-- unread, asked after a read that delivered none: they wait behind the
-- horizon (a transaction older than theirs still runs), or the transaction
-- that held them back has ended since that read's snapshot. Either way the
-- reader looks again soon, since that end may ring no doorbell. The question
-- is not whether rows lie past this statement's own horizon: that horizon
-- may already have passed rows the read could not see, which would then wait
-- for the next ring or poll. It compares the log's last row with the
-- cursor: one backward probe of token_log_xid_id per partition, whatever
-- the generic plan guesses of how many rows lie after the cursor.
SELECT COALESCE((
    SELECT (e.xid, e.id) > (sqlc.arg('after_xid')::bigint, sqlc.arg('after_id')::bigint)
    FROM token_log e
    ORDER BY e.xid DESC, e.id DESC
    LIMIT 1
), false)::boolean AS held_back;

-- name: OwnDatabaseHorizon :one
-- The head of the log, and the horizon for when the snapshot's xmin is held
-- back by a long transaction of another database (xids are cluster-wide, but
-- such a transaction can never write this database's token_events): the
-- oldest running xid not known to belong to another database, or the
-- snapshot's xmax when there is none. A running xid belongs to another
-- database when its lock is held by a backend connected to one (a backend
-- never changes database); every doubt keeps the xid, and the horizon with it.
WITH snap AS MATERIALIZED (
    SELECT pg_current_snapshot() AS s
),
foreign_xact AS (
    SELECT l.transactionid AS xid
    FROM pg_catalog.pg_locks l
    JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
    WHERE l.locktype = 'transactionid' AND l.mode = 'ExclusiveLock' AND l.granted
      AND a.datid IS DISTINCT FROM (SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname = current_database())
)
SELECT COALESCE(
    (SELECT min(x)::text::bigint
       FROM snap, pg_snapshot_xip(snap.s) AS x
      WHERE NOT EXISTS (SELECT 1 FROM foreign_xact f WHERE f.xid = xid(x))),
    (SELECT pg_snapshot_xmax(snap.s)::text::bigint FROM snap))::bigint AS horizon;

-- name: RingDoorbell :exec
-- Wakes every pod's listener; the payload is empty, the log says what changed.
SELECT pg_notify('tokenlease_events', '');
