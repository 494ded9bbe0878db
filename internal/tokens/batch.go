package tokens

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tokenlease/tokenlease/db"
	"github.com/tokenlease/tokenlease/internal/metrics"
)

// DefaultBatchMax caps how many requests one batched statement serves when
// Settings.BatchMax is not set.
const DefaultBatchMax = 64

// batchTimeout bounds one batched statement. It does not follow a single
// caller's context: the statement serves every caller in the batch, and one
// client hanging up must not fail the others.
const batchTimeout = 30 * time.Second

// refArrays are the requests of an unblock or keep-alive batch, laid out
// for the batched statement.
type refArrays struct {
	tokens   []string
	leaseIDs []int64  // 0 where a request named none
	actors   []string // '' where the caller has none
	ownOnly  []bool
}

func leaseArrays[Res any](calls []*batchCall[leaseRef, Res]) refArrays {
	a := refArrays{
		tokens: make([]string, len(calls)), leaseIDs: make([]int64, len(calls)),
		actors: make([]string, len(calls)), ownOnly: make([]bool, len(calls)),
	}
	for i, c := range calls {
		a.tokens[i] = c.req.token
		if c.req.leaseID != nil {
			a.leaseIDs[i] = *c.req.leaseID
		}
		a.actors[i], a.ownOnly[i] = c.req.caller.Actor, c.req.caller.OwnLeasesOnly
	}
	return a
}

// poolBatchers are the batchers of one pool: a batched statement serves one
// pool only (every hot statement names one pool), and each pool's batchers
// lead their own statements, so a busy pool never holds a quiet one's
// requests back, nor does one pool's empty answer delay another's.
type poolBatchers struct {
	assigns    *batcher[claimReq, Lease]
	unblocks   *batcher[leaseRef, struct{}]
	keepAlives *batcher[leaseRef, TokenState]
}

// batchersOf returns the batchers of pool id, making them at its first use.
func (s *Service) batchersOf(id int32) *poolBatchers {
	if b, ok := s.batchers.Load(id); ok {
		return b.(*poolBatchers)
	}
	b, _ := s.batchers.LoadOrStore(id, &poolBatchers{
		assigns:    newBatcher(metrics.BatchAssign, s.batchMax, nil, s.runAssignBatch),
		unblocks:   newBatcher(metrics.BatchUnblock, s.batchMax, leaseRef.key, s.runUnblockBatch),
		keepAlives: newBatcher(metrics.BatchKeepalive, s.batchMax, leaseRef.key, s.runKeepAliveBatch),
	})
	return b.(*poolBatchers)
}

// initBatchers sets up batching when it is on: concurrent assigns of one
// pool share one ClaimBatch statement, concurrent unblocks one ReleaseBatch
// statement and concurrent keep-alives one KeepAliveBatch statement (never
// two requests for one token in an unblock or keep-alive batch).
//
// The batched statements run on a few connections of their own (each
// batcher has at most one statement in flight) whose sessions use
// generic plans. PostgreSQL would otherwise plan them afresh on every
// execution: their LIMIT is the batch size, a parameter, which makes the
// generic plan look costlier than any custom one, and planning the statement
// costs more than running it. The generic plan is the one wanted (the same
// index probes, see docs/BENCHMARKS.md); other statements keep the default.
func (s *Service) initBatchers() {
	if !s.settings.Batching {
		return
	}
	s.batching = true
	s.batchMax = s.settings.BatchMax
	if s.batchMax <= 0 {
		s.batchMax = DefaultBatchMax
	}
	s.batchQ = s.q
	cfg := s.conns.Config()
	// Several pools' batchers may each have a statement in flight.
	cfg.MaxConns, cfg.MinConns = min(max(cfg.MaxConns/2, 2), batchConnsMax), 0
	cfg.ConnConfig.RuntimeParams["plan_cache_mode"] = "force_generic_plan"
	if bp, err := pgxpool.NewWithConfig(context.Background(), cfg); err == nil {
		s.batchConns = bp
		s.batchQ = db.New(bp)
	}
}

// batchConnsMax bounds the batched statements' own connections.
const batchConnsMax = 6

// Close releases what the service holds besides the connections it was
// given (the batched statements' own). The service must not be used after.
func (s *Service) Close() {
	if s.batchConns != nil {
		s.batchConns.Close()
	}
}

// batchContext is the context of a batched statement: the first caller's
// values, no caller's cancellation, and a bound of its own.
func batchContext[Req, Res any](calls []*batchCall[Req, Res]) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(calls[0].ctx), batchTimeout)
}

// runAssignBatch serves a batch of assigns of one pool (TTLs already
// resolved): a lone request takes the one-token statement; more share one
// ClaimBatch.
func (s *Service) runAssignBatch(calls []*batchCall[claimReq, Lease]) {
	live := runnable(calls)
	switch len(live) {
	case 0:
		return
	case 1:
		c := live[0]
		c.res, c.err = s.claimOne(c.ctx, c.req)
		return
	}
	// A request left without a token gets one more statement, with a fresh
	// snapshot: see claimAttempts.
	pending := live
	for attempt := 0; attempt < claimAttempts && len(pending) > 0; attempt++ {
		pending = s.claimBatchOnce(pending)
	}
	for _, c := range pending {
		c.err = ErrNoFreeToken
	}
}

// claimBatchOnce runs one ClaimBatch for calls, sets the result or error of
// every call it served (or that failed), and returns the calls it found no
// token for.
func (s *Service) claimBatchOnce(calls []*batchCall[claimReq, Lease]) (unserved []*batchCall[claimReq, Lease]) {
	ttls := make([]int64, len(calls))
	holders := make([]string, len(calls))
	actors := make([]string, len(calls))
	for i, c := range calls {
		ttls[i] = millis(c.req.ttl)
		holders[i] = c.req.holder
		actors[i] = c.req.caller.Actor
	}
	ctx, cancel := batchContext(calls)
	defer cancel()
	rows, err := s.batchQ.ClaimBatch(ctx, db.ClaimBatchParams{
		PoolID: calls[0].req.ref.id, TtlMs: ttls, Holders: holders, Actors: actors,
		Probe: rand.Float64(), Pod: s.settings.Pod, Slot: randomSlot(),
	})
	if err != nil {
		err = storageError("assign", err)
		for _, c := range calls {
			c.err = err
		}
		return nil
	}
	served := make([]bool, len(calls))
	for _, row := range rows {
		i := int(row.Ord) - 1
		if i < 0 || i >= len(calls) || served[i] {
			// Cannot happen with the statement as written; refuse to guess.
			err := fmt.Errorf("tokens: assign batch returned ordinal %d of %d", row.Ord, len(calls))
			for _, c := range calls {
				c.res, c.err = Lease{}, err
			}
			return nil
		}
		served[i] = true
		l := Lease{Token: row.Value, LeaseID: row.LeaseID, LeaseExpiresAt: row.LeaseExpiresAt, AliveUntil: row.AliveUntil}
		if row.Holder != nil {
			l.Holder = *row.Holder
		}
		calls[i].res = l
	}
	if len(rows) > 0 {
		s.changed()
	}
	for i, c := range calls {
		if !served[i] {
			unserved = append(unserved, c)
		}
	}
	return unserved
}

// runUnblockBatch serves a batch of unblocks of distinct tokens of one pool.
func (s *Service) runUnblockBatch(calls []*batchCall[leaseRef, struct{}]) {
	runRefBatch(s, calls, "unblock",
		func(ctx context.Context, r leaseRef) (struct{}, error) {
			return struct{}{}, s.unblockOne(ctx, r)
		},
		func(ctx context.Context, ref poolRef, a refArrays) ([]db.ReleaseBatchRow, error) {
			return s.batchQ.ReleaseBatch(ctx, db.ReleaseBatchParams{
				PoolID: ref.id, Tokens: a.tokens, LeaseIds: a.leaseIDs, Actors: a.actors, OwnOnly: a.ownOnly,
				Pod: s.settings.Pod, Slot: randomSlot(),
			})
		},
		func(row db.ReleaseBatchRow) (int64, struct{}, error) {
			return row.Ord, struct{}{}, releaseOutcome(row.Released, row.Forbidden, row.HasLiveLease)
		})
}

// runKeepAliveBatch serves a batch of keep-alives of distinct tokens of one
// pool.
func (s *Service) runKeepAliveBatch(calls []*batchCall[leaseRef, TokenState]) {
	runRefBatch(s, calls, "keep-alive",
		func(ctx context.Context, r leaseRef) (TokenState, error) {
			return s.keepAliveOne(ctx, r)
		},
		func(ctx context.Context, ref poolRef, a refArrays) ([]db.KeepAliveBatchRow, error) {
			return s.batchQ.KeepAliveBatch(ctx, db.KeepAliveBatchParams{
				PoolID: ref.id, Tokens: a.tokens, LeaseIds: a.leaseIDs, Actors: a.actors, OwnOnly: a.ownOnly,
				KeepaliveTtlMs: millis(ref.keepaliveTTL), Pod: s.settings.Pod,
			})
		},
		func(row db.KeepAliveBatchRow) (int64, TokenState, error) {
			st, err := keptState(row.Value, row.Updated, row.Forbidden, row.HasLiveLease, row.AliveUntil, row.LeaseID, row.LeaseExpiresAt, row.Holder)
			return row.Ord, st, err
		})
}

// runRefBatch serves a batch of requests that each name a distinct token
// (unblocks, keep-alives): a lone request takes the one-token statement
// (one); more share one statement (many), whose rows each answer the request
// at their ordinal (answer). A request no row answers is ErrNotFound.
func runRefBatch[Res, Row any](s *Service, calls []*batchCall[leaseRef, Res], what string,
	one func(context.Context, leaseRef) (Res, error),
	many func(ctx context.Context, ref poolRef, a refArrays) ([]Row, error),
	answer func(Row) (ord int64, res Res, err error),
) {
	live := runnable(calls)
	switch len(live) {
	case 0:
		return
	case 1:
		c := live[0]
		c.res, c.err = one(c.ctx, c.req)
		return
	}
	ctx, cancel := batchContext(live)
	defer cancel()
	// Every call of a batch is of one pool: the batchers are per pool.
	rows, err := many(ctx, live[0].req.ref, leaseArrays(live))
	if err != nil {
		err = storageError(what, err)
		for _, c := range live {
			c.err = err
		}
		return
	}
	for _, c := range live {
		c.err = ErrNotFound // unless a row says otherwise
	}
	changed := false
	for _, row := range rows {
		ord, res, err := answer(row)
		i := int(ord) - 1
		if i < 0 || i >= len(live) {
			// Cannot happen with the statements as written; refuse to guess.
			err := fmt.Errorf("tokens: %s batch returned ordinal %d of %d", what, ord, len(live))
			var zero Res
			for _, c := range live {
				c.res, c.err = zero, err
			}
			return
		}
		live[i].res, live[i].err = res, err
		changed = changed || err == nil
	}
	if changed {
		s.changed()
	}
}
