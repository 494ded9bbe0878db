package events

import "slices"

// Per token, the log's (xid, id) order is not always the order of its
// changes: a transaction that takes its xid and then waits for a token's row
// lock held by a younger transaction commits its change of that token after
// the younger one, yet comes first in (xid, id) order. The row id does follow
// each token's changes: a change inserts its row while it holds the token's
// row lock (or, for an insert, its value's index entry), and the change
// before it inserted its own row before it committed and let that lock go.
// The sequence hands out ids in call order (no per-session cache). So the
// reader delivers each token's rows in id order (for one token's lifetime
// that is version order; a value imported again after a delete starts a new
// lifetime at version 1, after the old one's last row), and withholds a row
// while a row of its token with a smaller id is not yet in the read.

// tokenKey names a token as a consumer sees it: its pool and its value.
type tokenKey struct{ pool, token string }

func keyOf(e *Event) tokenKey { return tokenKey{e.Pool, e.Token} }

// deliverable returns how many of rows (one read, in log order) can be
// delivered now: the longest prefix that holds, for each of its rows, every
// row of the same token with a smaller id after the read's start. ahead are
// the rows past the read that the database found for the read's tokens with
// a smaller id than one of its rows. wait reports that a withheld row waits
// for a row that is not final yet (held back behind the horizon; final
// tells): the horizon will move, so reading again later delivers it. Else a
// withheld row waits for a row past the read's limit, which a larger read
// finds. inOrder reports that no token's rows in the prefix need reordering.
func deliverable(rows, ahead []Event, final func(Position) bool) (n int, wait, inOrder bool) {
	inOrder = true
	if len(ahead) == 0 && len(rows) > 0 {
		// The common case: every token's rows are already in id order.
		last := make(map[tokenKey]int64, len(rows))
		ordered := true
		for i := range rows {
			k := keyOf(&rows[i])
			if prev, ok := last[k]; ok && prev > rows[i].Pos.ID {
				ordered = false
				break
			}
			last[k] = rows[i].Pos.ID
		}
		if ordered {
			return len(rows), false, true
		}
	}
	groups := make(map[tokenKey][]int)
	for i := range rows {
		k := keyOf(&rows[i])
		groups[k] = append(groups[k], i)
	}
	aheadOf := make(map[tokenKey][]Event)
	for _, a := range ahead {
		k := keyOf(&a)
		aheadOf[k] = append(aheadOf[k], a)
	}
	const never = int(^uint(0) >> 1)
	// need[i]: the last index the prefix must reach for row i to go (-1: none).
	need := make([]int, len(rows))
	for k, idx := range groups {
		for gi, i := range idx {
			need[i] = -1
			for _, j := range slices.Backward(idx[gi+1:]) {
				if rows[j].Pos.ID < rows[i].Pos.ID {
					need[i] = j
					inOrder = false
					break
				}
			}
			for _, a := range aheadOf[k] {
				if a.Pos.ID < rows[i].Pos.ID {
					need[i] = never
					if !final(a.Pos) {
						wait = true
					}
				}
			}
		}
	}
	reach := -1
	for i := range rows {
		reach = max(reach, need[i])
		if reach <= i {
			n = i + 1
		}
	}
	return n, wait, inOrder
}

// arrange puts rows (a deliverable prefix of a read after after, in log
// order) in delivery order: each token's rows, in id order, into the slots
// that token occupies, so that other tokens' rows keep their places. Each
// event's Mark becomes the watermark after it: the last position up to which
// every row has been delivered by then (after, while the first row has
// not). A stream hands out marks as its ids, so a resume from any of them
// re-reads every row not yet delivered, and only rows of the same read.
func arrange(after Position, rows []Event) []Event {
	slots := make(map[tokenKey][]int)
	for i := range rows {
		k := keyOf(&rows[i])
		slots[k] = append(slots[k], i)
	}
	byID := make(map[tokenKey][]int, len(slots))
	for k, idx := range slots {
		sorted := slices.Clone(idx)
		slices.SortStableFunc(sorted, func(a, b int) int { return cmpInt(rows[a].Pos.ID, rows[b].Pos.ID) })
		byID[k] = sorted
	}
	out := make([]Event, len(rows))
	done := make([]bool, len(rows))
	w := 0
	for i := range rows {
		k := keyOf(&rows[i])
		q := byID[k][0]
		byID[k] = byID[k][1:]
		done[q] = true
		for w < len(rows) && done[w] {
			w++
		}
		ev := rows[q]
		ev.Mark = after
		if w > 0 {
			ev.Mark = rows[w-1].Pos
		}
		out[i] = ev
	}
	return out
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
