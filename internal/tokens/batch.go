package tokens

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
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

func leaseArrays[Req, Res any](calls []*batchCall[Req, Res], refOf func(Req) leaseRef) refArrays {
	a := refArrays{
		tokens: make([]string, len(calls)), leaseIDs: make([]int64, len(calls)),
		actors: make([]string, len(calls)), ownOnly: make([]bool, len(calls)),
	}
	for i, c := range calls {
		r := refOf(c.req)
		a.tokens[i] = r.token
		if r.leaseID != nil {
			a.leaseIDs[i] = *r.leaseID
		}
		a.actors[i], a.ownOnly[i] = r.caller.Actor, r.caller.OwnLeasesOnly
	}
	return a
}

// podBatchers are the pod's batchers, over all pools. A round takes up to
// batchMax requests of each pool and kind with requests waiting, so a busy
// pool never crowds a quiet one out. Its assigns go out as one statement
// for all its pools, and so do its unblocks (each pool probed by its own
// index inside the statement); with BatchPerPool, one statement per pool and
// kind, so that no statement touches two pools. Keep-alives go out one
// statement per pool. A round's statements share one pipeline.
//
// Assigns and unblocks share one batcher (cycles): a round sends the
// unblocks and the assigns that queued while the previous round was in
// flight together, in one pipeline and one transaction (see
// runCycleBatch). A pod thus has one assign/unblock round in flight, not one
// per kind: under load twice the requests share each round, so the
// database commits half as often per request, and more pods (each with
// smaller shares of the load) cost it less than two concurrent rounds per
// pod would. An idle pod still sends a lone request at once.
type podBatchers struct {
	cycles     *batcher[cycleReq, Lease]
	keepAlives *batcher[leaseRef, TokenState]
}

// cycleReq is a request of the cycles batcher: an assign (claim) or, with
// unblock set, an unblock (ref). An unblock's answer is its error alone.
type cycleReq struct {
	unblock bool
	claim   claimReq
	ref     leaseRef
}

func (r cycleReq) pool() int32 {
	if r.unblock {
		return r.ref.ref.id
	}
	return r.claim.ref.id
}

// cycleGroup caps a round per pool and kind.
func cycleGroup(r cycleReq) int64 {
	g := int64(r.pool()) << 1
	if r.unblock {
		g |= 1
	}
	return g
}

// cycleKind names a request's statement when a round's statements span its
// pools: one for the unblocks, one for the assigns.
func cycleKind(r cycleReq) int64 {
	if r.unblock {
		return 1
	}
	return 0
}

// cycleKey keeps two unblocks of one token out of one round; assigns name
// no token.
func cycleKey(r cycleReq) string {
	if r.unblock {
		return r.ref.key()
	}
	return ""
}

func refPool(r leaseRef) int32    { return r.ref.id }
func refGroup(r leaseRef) int64   { return int64(r.ref.id) }
func sameRef(r leaseRef) leaseRef { return r }

// initBatchers sets up batching when it is on: concurrent assigns share
// one ClaimBatch statement, concurrent unblocks one ReleaseBatch statement
// (of all pools, or of one with BatchPerPool) and concurrent keep-alives of
// one pool one KeepAliveBatch statement (never two requests for one token in
// an unblock or keep-alive batch); a round's statements share one round
// trip and one commit, and so do a round's unblocks and assigns.
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
		cycles:     newBatcher(s.batchMax, cycleKey, cycleGroup, s.runCycleBatch),
		keepAlives: newBatcher(s.batchMax, leaseRef.key, refGroup, s.runKeepAliveBatch),
	}
	s.batchers.cycles.maxWindow = s.settings.BatchWindow
	if !s.settings.BatchPerPool {
		s.batchers.cycles.statement = cycleKind
	}
	s.batchers.keepAlives.maxWindow = s.settings.BatchWindow
	cfg := s.conns.Config()
	// One round in flight per batcher.
	cfg.MaxConns, cfg.MinConns = min(max(cfg.MaxConns/2, batchConnsMax), batchConnsMax), 0
	cfg.ConnConfig.RuntimeParams["plan_cache_mode"] = "force_generic_plan"
	if bp, err := pgxpool.NewWithConfig(context.Background(), cfg); err == nil {
		s.batchConns = bp
		s.batchQ = db.New(bp)
	}
}

// batchSender is where a round's pipeline goes: the batched statements'
// own connections.
func (s *Service) batchSender() sender {
	if s.batchConns != nil {
		return s.batchConns
	}
	return s.conns
}

// batchConnsMax is the number of the batched statements' own connections:
// one per batcher, and one more for the second part of a large round.
const batchConnsMax = roundPartsMax + 1

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

// runCycleBatch serves a round of assigns (TTLs already resolved) and
// unblocks: a lone request takes its one-token statement; otherwise the
// round's unblocks share one ReleaseBatch and then its assigns one
// ClaimBatch (with BatchPerPool, pool by pool in pool id order, each pool's
// pair), all in one pipeline: one implicit transaction, one commit. An
// assign may so take a token an unblock of its round frees.
// A request left without a token goes again in the next round, with a
// fresh snapshot (see claimAttempts), and answers no_free_token after
// claimAttempts rounds; the round's other requests are answered meanwhile.
//
// Why one transaction cannot deadlock with another (another pod's round, a
// keep-alive round or a one-token statement): every statement that waits
// for row locks (ReleaseBatch, KeepAliveBatch, the one-token statements)
// takes them in (pool id, token id) order, a round's ReleaseBatch statements
// come in pool id order, and a ClaimBatch never waits for a row (SKIP
// LOCKED); counters are rows of the writing backend (migration 00030),
// which no other transaction writes.
func (s *Service) runCycleBatch(calls []*batchCall[cycleReq, Lease]) {
	live := runnable(calls)
	switch len(live) {
	case 0:
		return
	case 1:
		c := live[0]
		if c.req.unblock {
			metrics.BatchSize(metrics.BatchUnblock, 1)
			c.err = s.unblockOne(c.ctx, c.req.ref)
			return
		}
		metrics.BatchSize(metrics.BatchAssign, 1)
		var err error
		c.res, err = s.claimOnce(c.ctx, c.req.claim)
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
	ctx, cancel := batchContext(live)
	defer cancel()
	rounds := s.roundStatements(byPool(live, cycleReq.pool))
	statements := 0
	for _, r := range rounds {
		statements += r.statements()
	}
	// A round of many statements (one pair per pool, BATCH_ACROSS_POOLS=off)
	// goes out as parts, each its own pipeline and transaction on its own
	// connection, at the same time: one pipeline runs on one backend, and a
	// round of many small statements would otherwise use one of the
	// database's cores. The parts hold disjoint pools (no row in common, and
	// counter rows are per backend: they never wait for each other).
	parts := max(1, min(statements/roundPartStatements, roundPartsMax))
	var wg sync.WaitGroup
	for k, from := 0, 0; k < parts; k++ {
		to := from
		for n := 0; to < len(rounds) && (k == parts-1 || n < statements/parts); to++ {
			n += rounds[to].statements()
		}
		part := rounds[from:to]
		from = to
		if len(part) == 0 {
			continue
		}
		if k == parts-1 {
			s.runRoundPart(ctx, part)
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.runRoundPart(ctx, part)
		}()
	}
	wg.Wait()
	changed := false
	for _, r := range rounds {
		if r.err != nil {
			for _, c := range append(slices.Clip(r.unblocks), r.assigns...) {
				what := "assign"
				if c.req.unblock {
					what = "unblock"
				}
				c.res, c.err = Lease{}, storageError(what, r.err)
			}
			continue
		}
		if answerUnblocks(r.unblocks, r.released) {
			changed = true
		}
		if s.answerClaims(r.assigns, r.claimed) {
			changed = true
		}
	}
	if changed {
		s.changed()
	}
}

// roundStatements lays a round's calls, grouped by pool in pool id order,
// out as statement pairs: one ReleaseBatch for the unblocks and one
// ClaimBatch for the assigns of all the round's pools (across pools), or
// of each pool (BATCH_ACROSS_POOLS=off: no statement touches two pools).
// Either way a pair's calls stay in pool id order, so that its statements
// lock rows pool by pool in the same order in every pod.
func (s *Service) roundStatements(pools [][]*batchCall[cycleReq, Lease]) []roundPair {
	n := 1
	if s.settings.BatchPerPool {
		n = len(pools)
	}
	rounds := make([]roundPair, n)
	for i, p := range pools {
		r := &rounds[min(i, n-1)]
		for _, c := range p {
			if c.req.unblock {
				r.unblocks = append(r.unblocks, c)
			} else {
				r.assigns = append(r.assigns, c)
			}
		}
	}
	return rounds
}

// roundPartStatements is the fewest statements of a round part;
// roundPartsMax the most parts of a round (see runCycleBatch).
const (
	roundPartStatements = 4
	roundPartsMax       = 2
)

// roundPair is one statement pair of a round: its unblocks and its
// assigns (of one pool or of several, in pool id order), then their rows or
// its part's error.
type roundPair struct {
	unblocks, assigns []*batchCall[cycleReq, Lease]
	released          []db.ReleaseBatchRow
	claimed           []db.ClaimBatchRow
	err               error
}

// statements counts the statements the pair sends (none for an empty kind).
func (r *roundPair) statements() int {
	return min(len(r.unblocks), 1) + min(len(r.assigns), 1)
}

// runRoundPart sends the statements of rounds in one pipeline, one
// transaction, and sets their rows, or the first error of the transaction
// (later statements of a failed transaction fail too) on every one of them.
func (s *Service) runRoundPart(ctx context.Context, rounds []roundPair) {
	var pl pipeline
	q := db.New(&pl)
	type queued struct {
		released *db.ReleaseBatchBatchResults
		claimed  *db.ClaimBatchBatchResults
	}
	qs := make([]queued, len(rounds))
	for i := range rounds {
		r := &rounds[i]
		if len(r.unblocks) > 0 {
			a := leaseArrays(r.unblocks, func(r cycleReq) leaseRef { return r.ref })
			qs[i].released = q.ReleaseBatch(ctx, []db.ReleaseBatchParams{{
				PoolIds: poolIDs(r.unblocks), Tokens: a.tokens, LeaseIds: a.leaseIDs, Actors: a.actors, OwnOnly: a.ownOnly,
				Pod: s.settings.Pod,
			}})
			metrics.BatchSize(metrics.BatchUnblock, len(r.unblocks))
		}
		if len(r.assigns) > 0 {
			n := len(r.assigns)
			ttls, holders, actors := make([]int64, n), make([]string, n), make([]string, n)
			for k, c := range r.assigns {
				ttls[k], holders[k], actors[k] = millis(c.req.claim.ttl), c.req.claim.holder, c.req.claim.caller.Actor
			}
			qs[i].claimed = q.ClaimBatch(ctx, []db.ClaimBatchParams{{
				PoolIds: poolIDs(r.assigns), TtlMs: ttls, Holders: holders, Actors: actors, Pod: s.settings.Pod,
			}})
			metrics.BatchSize(metrics.BatchAssign, n)
		}
	}
	pl.send(ctx, s.batchSender())
	var first error
	keep := func(err error) {
		if first == nil && err != nil {
			first = err
		}
	}
	for i := range rounds {
		r := &rounds[i]
		if qs[i].released != nil {
			qs[i].released.Query(func(_ int, rows []db.ReleaseBatchRow, err error) { r.released = rows; keep(err) })
		}
		if qs[i].claimed != nil {
			qs[i].claimed.Query(func(_ int, rows []db.ClaimBatchRow, err error) { r.claimed = rows; keep(err) })
		}
	}
	keep(pl.close())
	if first != nil {
		for i := range rounds {
			rounds[i].err = first
		}
	}
}

// poolIDs lists the pool of each call, for a statement's pool_ids.
func poolIDs(calls []*batchCall[cycleReq, Lease]) []int32 {
	ids := make([]int32, len(calls))
	for i, c := range calls {
		ids[i] = c.req.pool()
	}
	return ids
}

// answerUnblocks answers a pool's unblocks from its ReleaseBatch rows; it
// reports whether any token was released.
func answerUnblocks(calls []*batchCall[cycleReq, Lease], rows []db.ReleaseBatchRow) (changed bool) {
	return answerByOrdinal(calls, rows, "unblock", func(row db.ReleaseBatchRow) (int64, Lease, error) {
		return row.Ord, Lease{}, releaseOutcome(row.Released, row.Forbidden, row.HasLiveLease)
	})
}

// answerByOrdinal answers calls, requests that each name a distinct token,
// from their statement's rows: each row answers the request at its ordinal
// (answer); a request no row answers is ErrNotFound. It reports whether any
// request succeeded.
func answerByOrdinal[Req, Res, Row any](calls []*batchCall[Req, Res], rows []Row, what string,
	answer func(Row) (ord int64, res Res, err error),
) (changed bool) {
	for _, c := range calls {
		c.err = ErrNotFound // unless a row says otherwise
	}
	for _, row := range rows {
		ord, res, err := answer(row)
		k := int(ord) - 1
		if k < 0 || k >= len(calls) {
			// Cannot happen with the statements as written; refuse to guess.
			err := fmt.Errorf("tokens: %s batch returned ordinal %d of %d", what, ord, len(calls))
			var zero Res
			for _, c := range calls {
				c.res, c.err = zero, err
			}
			return changed
		}
		calls[k].res, calls[k].err = res, err
		changed = changed || err == nil
	}
	return changed
}

// answerClaims answers a pool's assigns from its ClaimBatch rows (an assign
// without a row goes again, see unserved); it reports whether any token
// was assigned.
func (s *Service) answerClaims(calls []*batchCall[cycleReq, Lease], rows []db.ClaimBatchRow) (changed bool) {
	if len(calls) == 0 {
		return false
	}
	served := make([]bool, len(calls))
	for _, row := range rows {
		k := int(row.Ord) - 1
		if k < 0 || k >= len(calls) || served[k] {
			// Cannot happen with the statement as written; refuse to guess.
			err := fmt.Errorf("tokens: assign batch returned ordinal %d of %d", row.Ord, len(calls))
			for _, c := range calls {
				c.res, c.err = Lease{}, err
			}
			return changed
		}
		served[k] = true
		l := Lease{Token: row.Value, LeaseID: row.LeaseID, LeaseExpiresAt: row.LeaseExpiresAt, AliveUntil: row.AliveUntil}
		if row.Holder != nil {
			l.Holder = *row.Holder
		}
		calls[k].res = l
		changed = true
	}
	for k, c := range calls {
		if !served[k] {
			s.unserved(c)
		}
	}
	return changed
}

// unserved handles an assign a claim found no token for: once more in the
// next round, or no_free_token.
func (s *Service) unserved(c *batchCall[cycleReq, Lease]) {
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
// (keep-alives; unblocks ride with assigns, see runCycleBatch): a lone request takes the one-token statement
// (one); otherwise each pool's requests share one statement, all pools'
// statements one pipeline (many), whose rows each answer the request at
// their ordinal within their pool (answerByOrdinal).
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
		refs[i], as[i] = p[0].req.ref, leaseArrays(p, sameRef)
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
		if answerByOrdinal(p, rows[i], what, answer) {
			changed = true
		}
	}
	if changed {
		s.changed()
	}
}
