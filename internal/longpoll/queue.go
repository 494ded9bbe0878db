package longpoll

import (
	"container/list"
	"sync"

	"github.com/tokenlease/tokenlease/internal/events"
)

// waitQueue orders the waiting assigns of one pod, first come first served,
// and hands out wake-ups without a stampede: when the log shows n tokens
// freed, the first n idle waiters are woken, one each, and the rest stay
// asleep. A waiter is busy from its wake-up (or its arrival) until its assign
// attempt fails; then it becomes idle again at its old place in the queue,
// which is at or near the head, so it is the next to be woken.
//
// A waiter that arrives while others wait does not try to assign ahead of
// them: it starts asleep at the tail. A token freed while every waiter is
// busy is not lost: it is kept as a spare, and the next waiter whose assign
// fails retries at once instead of sleeping. Spares never exceed the number
// of waiters, and there are none while a waiter sleeps.
//
// A poke (the doorbell rang but the log cannot show what changed yet) wakes
// only the first idle waiter, as a probe: if its assign succeeds, the probe
// passes on to the next idle waiter, since the ring may have announced more
// than one freed token; the first assign that fails ends the chain. So a
// ring costs each pod's queue one failed assign at most.
type waitQueue struct {
	mu    sync.Mutex
	l     list.List // of *queued, oldest first
	spare int
}

// queued is one waiting assign.
type queued struct {
	wake  chan struct{} // receives one value per wake-up; empty while idle
	busy  bool
	probe bool // woken by a poke, and no assign has failed since
	elem  *list.Element
}

// join adds a waiter at the tail. It reports whether the waiter should try
// to assign at once: when no one waits ahead of it (or a spare wake-up is
// there to take). Otherwise it starts asleep, behind the earlier waiters,
// which the next freed tokens go to first.
func (q *waitQueue) join() (w *queued, assignNow bool) {
	w = &queued{wake: make(chan struct{}, 1)}
	q.mu.Lock()
	defer q.mu.Unlock()
	switch {
	case q.l.Len() == 0:
		w.busy = true
	case q.spare > 0:
		q.spare--
		w.busy = true
	}
	w.elem = q.l.PushBack(w)
	return w, w.busy
}

// idle is called when w's assign found no free token. It reports true when a
// spare wake-up was waiting, so that w should retry at once; otherwise w is
// idle and waits for its wake channel.
func (q *waitQueue) idle(w *queued) (retry bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.spare > 0 {
		q.spare--
		return true
	}
	w.busy, w.probe = false, false
	return false
}

// leave removes w. A wake-up w was given but did not use passes on to the
// next idle waiter, and so do the spares (which wait for a failed assign that
// may now never come) and a probe (w assigned, or never tried).
func (q *waitQueue) leave(w *queued) {
	q.mu.Lock()
	q.l.Remove(w.elem)
	pass := q.spare
	q.spare = 0
	select {
	case <-w.wake:
		if !w.probe {
			pass++
		}
	default:
	}
	probe := w.probe
	q.mu.Unlock()
	if pass > 0 {
		q.wakeUp(pass)
	}
	if probe {
		q.poke()
	}
}

// poke wakes the first idle waiter as a probe. When every waiter is busy it
// leaves a spare instead: an assign under way may have missed the change.
func (q *waitQueue) poke() {
	q.mu.Lock()
	defer q.mu.Unlock()
	for e := q.l.Front(); e != nil; e = e.Next() {
		w := e.Value.(*queued)
		if w.busy {
			continue
		}
		w.busy, w.probe = true, true
		w.wake <- struct{}{} // never blocks: an idle waiter's channel is empty
		return
	}
	if q.l.Len() > 0 {
		q.spare = min(q.spare+1, q.l.Len())
	}
}

// wakeUp wakes the first n idle waiters, oldest first; what is left over
// becomes spare while there are waiters.
func (q *waitQueue) wakeUp(n int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for e := q.l.Front(); e != nil && n > 0; e = e.Next() {
		w := e.Value.(*queued)
		if w.busy {
			continue
		}
		w.busy = true
		w.wake <- struct{}{} // never blocks: an idle waiter's channel is empty
		n--
	}
	if n > 0 && q.l.Len() > 0 {
		q.spare = min(q.spare+n, q.l.Len())
	}
}

// asleep returns the number of idle waiters: those waiting for a wake-up.
func (q *waitQueue) asleep() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := 0
	for e := q.l.Front(); e != nil; e = e.Next() {
		if !e.Value.(*queued).busy {
			n++
		}
	}
	return n
}

// len returns the number of waiters.
func (q *waitQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.l.Len()
}

// freedIn counts, per pool, the tokens a batch of events leaves free: those generated,
// imported, unblocked or released and not assigned, deleted or expired again
// later in the same batch.
func freedIn(batch []events.Event) map[string]int {
	type key struct{ pool, token string }
	var free map[key]bool
	for _, ev := range batch {
		k := key{ev.Pool, ev.Token}
		switch ev.Kind {
		case events.KindUnblocked, events.KindReleased, events.KindGenerated, events.KindImported:
			if free == nil {
				free = make(map[key]bool)
			}
			free[k] = true
		case events.KindAssigned, events.KindDeleted, events.KindExpired:
			delete(free, k) // a no-op on a nil map
		}
	}
	if len(free) == 0 {
		return nil
	}
	perPool := make(map[string]int)
	for k := range free {
		perPool[k.pool]++
	}
	return perPool
}
