package tokens

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/tokenlease/tokenlease/db"
)

// Generate creates n new tokens in pool with values from crypto/rand.
func (s *Service) Generate(ctx context.Context, pool string, n int) ([]string, error) {
	ref, err := s.resolve(ctx, pool)
	if err != nil {
		return nil, err
	}
	if n < 1 || n > MaxBatch {
		return nil, invalid("count must be an integer between 1 and %d", MaxBatch)
	}
	var created []string
	err = s.growPool(ctx, ref, func(q *db.Queries) error {
		// A collision of 128-bit values is not expected; the loop only keeps
		// the promise of n tokens if one ever happens.
		for len(created) < n {
			values := make([]string, n-len(created))
			for i := range values {
				values[i] = newTokenValue()
			}
			got, err := q.InsertTokens(ctx, s.insertParams(ctx, ref, values, false))
			if err != nil {
				return err
			}
			created = append(created, got...)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return created, nil
}

// Import adds values an operator already owns to pool. Values that are live
// in the pool already are left untouched and returned in existing; a value
// whose token has died but is not swept yet is imported afresh.
func (s *Service) Import(ctx context.Context, pool string, values []string) (imported, existing []string, err error) {
	ref, err := s.resolve(ctx, pool)
	if err != nil {
		return nil, nil, err
	}
	if len(values) < 1 || len(values) > MaxBatch {
		return nil, nil, invalid("tokens must hold between 1 and %d values", MaxBatch)
	}
	seen := make(map[string]bool, len(values))
	for i, v := range values {
		if err := ValidateValue(v); err != nil {
			return nil, nil, fmt.Errorf("tokens[%d]: %w", i, err)
		}
		if seen[v] {
			return nil, nil, invalid("tokens[%d] repeats an earlier value", i)
		}
		seen[v] = true
	}
	// Growth must never wait for a row the hot path holds: a claim or
	// release holds its token rows until it commits, and may wait meanwhile
	// for a counter slot. So growth first reads, without locking, which
	// values a row of the pool holds; live ones are left alone (existing),
	// dead ones are removed (the hot path never locks a dead row), and only
	// values no row holds are inserted, so the insert never meets a row
	// another transaction has locked.
	err = s.growPool(ctx, ref, func(q *db.Queries) error {
		held, err := q.LiveValues(ctx, db.LiveValuesParams{PoolID: ref.id, Tokens: values})
		if err != nil {
			return err
		}
		alive := make(map[string]bool, len(held))
		var dead []string
		for _, h := range held {
			if h.Alive {
				alive[h.Value] = true
			} else {
				dead = append(dead, h.Value)
			}
		}
		if len(dead) > 0 {
			if err := q.RemoveDeadByValue(ctx, db.RemoveDeadByValueParams{
				PoolID: ref.id, Tokens: dead, Pod: s.settings.Pod, Slot: growthSlot,
			}); err != nil {
				return err
			}
		}
		fresh := make([]string, 0, len(values)-len(alive))
		for _, v := range values {
			if !alive[v] {
				fresh = append(fresh, v)
			}
		}
		if len(fresh) == 0 {
			return nil
		}
		imported, err = q.InsertTokens(ctx, s.insertParams(ctx, ref, fresh, true))
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	if imported == nil {
		imported = []string{} // the API lists none as [], not null
	}
	isNew := make(map[string]bool, len(imported))
	for _, v := range imported {
		isNew[v] = true
	}
	existing = []string{}
	for _, v := range values {
		if !isNew[v] {
			existing = append(existing, v)
		}
	}
	return imported, existing, nil
}

func (s *Service) insertParams(ctx context.Context, ref poolRef, values []string, imported bool) db.InsertTokensParams {
	return db.InsertTokensParams{
		PoolID:         ref.id,
		Actor:          actorArg(callerOf(ctx)),
		Imported:       imported,
		KeepaliveTtlMs: millis(ref.keepaliveTTL),
		Tokens:         values,
		Pod:            s.settings.Pod,
		Slot:           growthSlot,
	}
}

// growPool runs insert in a transaction that holds the pool's size lock
// (and its row, against deletion) and checks the pool's max_tokens after the
// insert, so that a refused request changes nothing. Everything it writes
// counts on growthSlot, never on a hot-path slot: see migration 00003.
func (s *Service) growPool(ctx context.Context, ref poolRef, insert func(q *db.Queries) error) error {
	err := pgx.BeginFunc(ctx, s.conns, func(tx pgx.Tx) error {
		q := s.q.WithTx(tx)
		if _, err := q.LockPoolSize(ctx, ref.id); err != nil {
			if errors.Is(err, pgx.ErrNoRows) {
				s.pools.forget(ref.name)
				return fmt.Errorf("%w: %q", ErrPoolNotFound, ref.name)
			}
			return err
		}
		if err := insert(q); err != nil {
			return err
		}
		stats, err := q.PoolCounts(ctx, ref.id)
		if err != nil {
			return err
		}
		if stats.Total > ref.maxTokens {
			return fmt.Errorf("%w: pool %s may hold at most %d tokens", ErrPoolFull, ref.name, ref.maxTokens)
		}
		return nil
	})
	if err != nil {
		return wrapDomain(err)
	}
	s.changed()
	return nil
}

// Delete removes a live token of pool, whatever its lease.
func (s *Service) Delete(ctx context.Context, pool, token string) error {
	ref, err := s.resolve(ctx, pool)
	if err != nil {
		return err
	}
	if err := ValidateValue(token); err != nil {
		return err
	}
	_, err = s.q.DeleteToken(ctx, db.DeleteTokenParams{
		PoolID: ref.id, Token: token, Actor: actorArg(callerOf(ctx)), Pod: s.settings.Pod,
	})
	if err != nil {
		return notFoundIfNoRows(err)
	}
	s.changed()
	return nil
}

func newTokenValue() string {
	var b [generatedTokenLen]byte
	rand.Read(b[:]) // never fails (crypto/rand panics rather than return an error)
	return base64.RawURLEncoding.EncodeToString(b[:])
}
