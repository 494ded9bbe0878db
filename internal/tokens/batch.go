package tokens

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
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

// podBatchers are the pod's batchers, one per kind, over all pools. A round
// takes up to batchMax requests of each pool with requests waiting, so a
// busy pool never crowds a quiet one out, and sends one statement per pool
// (no hot statement touches two pools), all in one pipeline: see roundRows.
type podBatchers struct {
	assigns    *batcher[claimReq, Lease]
	unblocks   *batcher[leaseRef, struct{}]
	keepAlives *batcher[leaseRef, TokenState]
}

func claimPool(r claimReq) int32 { return r.ref.id }
func refPool(r leaseRef) int32   { return r.ref.id }

// initBatchers sets up batching when it is on: concurrent assigns of one
// pool share one ClaimBatch statement, concurrent unblocks one ReleaseBatch
// statement and concurrent keep-alives one KeepAliveBatch statement (never
// two requests for one token in an unblock or keep-alive batch); a round's
// statements of several pools share one round trip and one commit.
//
// The batched statements run on a few connections of their own (each
// batcher has at most one round in flight) whose sessions use
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
	s.batchers = podBatchers{
		assigns:    newBatcher(s.batchMax, nil, claimPool, s.runAssignBatch),
		unblocks:   newBatcher(s.batchMax, leaseRef.key, refPool, s.runUnblockBatch),
		keepAlives: newBatcher(s.batchMax, leaseRef.key, refPool, s.runKeepAliveBatch),
	}
	cfg := s.conns.Config()
	// One round in flight per kind.
	cfg.MaxConns, cfg.MinConns = min(max(cfg.MaxConns/2, 2), batchConnsMax), 0
	cfg.ConnConfig.RuntimeParams["plan_cache_mode"] = "force_generic_plan"
	if bp, err := pgxpool.NewWithConfig(context.Background(), cfg); err == nil {
		s.batchConns = bp
		s.batchQ = db.New(bp)
	}
}

// batchConnsMax bounds the batched statements' own connections: one per
// batcher.
const batchConnsMax = 3

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

// runAssignBatch serves a round of assigns (TTLs already resolved): a lone
// request takes the one-token statement; otherwise each pool's requests
// share one ClaimBatch. A request left without a token goes again in the
// next round, with a fresh snapshot (see claimAttempts), and answers
// no_free_token after claimAttempts rounds; the round's other requests are
// answered meanwhile.
func (s *Service) runAssignBatch(calls []*batchCall[claimReq, Lease]) {
	live := runnable(calls)
	switch len(live) {
	case 0:
		return
	case 1:
		c := live[0]
		metrics.BatchSize(metrics.BatchAssign, 1)
		var err error
		c.res, err = s.claimOnce(c.ctx, c.req)
		if errors.Is(err, pgx.ErrNoRows) {
			s.unserved(c)
			return
		}
		c.err = err
		if err == nil {
			s.changed()
		}
		return
	}
	pools := byPool(live, claimPool)
	params := make([]db.ClaimBatchParams, len(pools))
	for i, p := range pools {
		ttls, holders, actors := make([]int64, len(p)), make([]string, len(p)), make([]string, len(p))
		for k, c := range p {
			ttls[k], holders[k], actors[k] = millis(c.req.ttl), c.req.holder, c.req.caller.Actor
		}
		params[i] = db.ClaimBatchParams{
			PoolID: p[0].req.ref.id, TtlMs: ttls, Holders: holders, Actors: actors,
			Probe: rand.Float64(), Pod: s.settings.Pod,
		}
		metrics.BatchSize(metrics.BatchAssign, len(p))
	}
	ctx, cancel := batchContext(live)
	defer cancel()
	res := s.batchQ.ClaimBatch(ctx, params)
	rows, err := roundRows(len(pools), res.Query, res.Close)
	if err != nil {
		err = storageError("assign", err)
		for _, c := range live {
			c.err = err
		}
		return
	}
	changed := false
	for i, p := range pools {
		served := make([]bool, len(p))
		for _, row := range rows[i] {
			k := int(row.Ord) - 1
			if k < 0 || k >= len(p) || served[k] {
				// Cannot happen with the statement as written; refuse to guess.
				err := fmt.Errorf("tokens: assign batch returned ordinal %d of %d", row.Ord, len(p))
				for _, c := range p {
					c.res, c.err = Lease{}, err
				}
				served = nil
				break
			}
			served[k] = true
			l := Lease{Token: row.Value, LeaseID: row.LeaseID, LeaseExpiresAt: row.LeaseExpiresAt, AliveUntil: row.AliveUntil}
			if row.Holder != nil {
				l.Holder = *row.Holder
			}
			p[k].res = l
			changed = true
		}
		for k, c := range p {
			if served != nil && !served[k] {
				s.unserved(c)
			}
		}
	}
	if changed {
		s.changed()
	}
}

// unserved handles an assign a claim found no token for: once more in the
// next round, or no_free_token.
func (s *Service) unserved(c *batchCall[claimReq, Lease]) {
	if c.tries < claimAttempts {
		c.again = true
		return
	}
	c.err = ErrNoFreeToken
}

// byPool groups calls by pool, in pool id order: a round's statements take
// their locks pool by pool in the same order in every pod, so that two
// rounds (one transaction each) cannot deadlock across pools.
func byPool[Req, Res any](calls []*batchCall[Req, Res], pool func(Req) int32) [][]*batchCall[Req, Res] {
	slices.SortStableFunc(calls, func(a, b *batchCall[Req, Res]) int { return cmp.Compare(pool(a.req), pool(b.req)) })
	var out [][]*batchCall[Req, Res]
	for start := 0; start < len(calls); {
		end := start + 1
		for end < len(calls) && pool(calls[end].req) == pool(calls[start].req) {
			end++
		}
		out = append(out, calls[start:end:end])
		start = end
	}
	return out
}

// roundRows reads the rows of a round's n statements, sent in one pipeline
// (pgx SendBatch, sqlc's :batchmany). The pipeline ends with one Sync, so
// PostgreSQL runs the statements as one implicit transaction: one commit
// for the round, and an error in any statement, or at the commit, undoes
// all of them. Hence the round's answer is all its rows or one error, and
// only once close has read past the commit.
func roundRows[Row any](n int, query func(func(int, []Row, error)), close func() error) ([][]Row, error) {
	rows := make([][]Row, n)
	var first error
	query(func(i int, r []Row, err error) {
		rows[i] = r
		if first == nil {
			first = err
		}
	})
	if err := close(); first == nil {
		first = err
	}
	if first != nil {
		return nil, first
	}
	return rows, nil
}

// runUnblockBatch serves a batch of unblocks of distinct tokens of one pool.
func (s *Service) runUnblockBatch(calls []*batchCall[leaseRef, struct{}]) {
	runRefBatch(s, calls, "unblock", metrics.BatchUnblock,
		func(ctx context.Context, r leaseRef) (struct{}, error) {
			return struct{}{}, s.unblockOne(ctx, r)
		},
		func(ctx context.Context, refs []poolRef, as []refArrays) ([][]db.ReleaseBatchRow, error) {
			params := make([]db.ReleaseBatchParams, len(refs))
			for i, a := range as {
				params[i] = db.ReleaseBatchParams{
					PoolID: refs[i].id, Tokens: a.tokens, LeaseIds: a.leaseIDs, Actors: a.actors, OwnOnly: a.ownOnly,
					Pod: s.settings.Pod,
				}
			}
			res := s.batchQ.ReleaseBatch(ctx, params)
			return roundRows(len(params), res.Query, res.Close)
		},
		func(row db.ReleaseBatchRow) (int64, struct{}, error) {
			return row.Ord, struct{}{}, releaseOutcome(row.Released, row.Forbidden, row.HasLiveLease)
		})
}

// runKeepAliveBatch serves a batch of keep-alives of distinct tokens of one
// pool.
func (s *Service) runKeepAliveBatch(calls []*batchCall[leaseRef, TokenState]) {
	runRefBatch(s, calls, "keep-alive", metrics.BatchKeepalive,
		func(ctx context.Context, r leaseRef) (TokenState, error) {
			return s.keepAliveOne(ctx, r)
		},
		func(ctx context.Context, refs []poolRef, as []refArrays) ([][]db.KeepAliveBatchRow, error) {
			params := make([]db.KeepAliveBatchParams, len(refs))
			for i, a := range as {
				params[i] = db.KeepAliveBatchParams{
					PoolID: refs[i].id, Tokens: a.tokens, LeaseIds: a.leaseIDs, Actors: a.actors, OwnOnly: a.ownOnly,
					KeepaliveTtlMs: millis(refs[i].keepaliveTTL), Pod: s.settings.Pod,
				}
			}
			res := s.batchQ.KeepAliveBatch(ctx, params)
			return roundRows(len(params), res.Query, res.Close)
		},
		func(row db.KeepAliveBatchRow) (int64, TokenState, error) {
			st, err := keptState(row.Value, row.Updated, row.Forbidden, row.HasLiveLease, row.AliveUntil, row.LeaseID, row.LeaseExpiresAt, row.Holder)
			return row.Ord, st, err
		})
}

// runRefBatch serves a round of requests that each name a distinct token
// (unblocks, keep-alives): a lone request takes the one-token statement
// (one); otherwise each pool's requests share one statement, all pools'
// statements one pipeline (many), whose rows each answer the request at
// their ordinal within their pool (answer). A request no row answers is
// ErrNotFound.
func runRefBatch[Res, Row any](s *Service, calls []*batchCall[leaseRef, Res], what, kind string,
	one func(context.Context, leaseRef) (Res, error),
	many func(ctx context.Context, refs []poolRef, as []refArrays) ([][]Row, error),
	answer func(Row) (ord int64, res Res, err error),
) {
	live := runnable(calls)
	switch len(live) {
	case 0:
		return
	case 1:
		c := live[0]
		metrics.BatchSize(kind, 1)
		c.res, c.err = one(c.ctx, c.req)
		return
	}
	pools := byPool(live, refPool)
	refs, as := make([]poolRef, len(pools)), make([]refArrays, len(pools))
	for i, p := range pools {
		refs[i], as[i] = p[0].req.ref, leaseArrays(p)
		metrics.BatchSize(kind, len(p))
	}
	ctx, cancel := batchContext(live)
	defer cancel()
	rows, err := many(ctx, refs, as)
	if err != nil {
		err = storageError(what, err)
		for _, c := range live {
			c.err = err
		}
		return
	}
	changed := false
	for i, p := range pools {
		for _, c := range p {
			c.err = ErrNotFound // unless a row says otherwise
		}
		for _, row := range rows[i] {
			ord, res, err := answer(row)
			k := int(ord) - 1
			if k < 0 || k >= len(p) {
				// Cannot happen with the statements as written; refuse to guess.
				err := fmt.Errorf("tokens: %s batch returned ordinal %d of %d", what, ord, len(p))
				var zero Res
				for _, c := range p {
					c.res, c.err = zero, err
				}
				break
			}
			p[k].res, p[k].err = res, err
			changed = changed || err == nil
		}
	}
	if changed {
		s.changed()
	}
}
