package quota

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Keyed holds one token bucket per key (a user, a chat), made on first use
// and dropped once full again. The quota uses it for users' command rates;
// platform adapters for flood control.
//
// Every call reads the clock under one lock, and never earlier than the
// reading before: a rate.Limiter given a time earlier than its last one
// sets itself back to it, so that the time between is refilled twice, and
// callers that read the clock before the lock reach it out of order.
type Keyed struct {
	every time.Duration
	burst int
	now   func() time.Time

	mu    sync.Mutex
	m     map[string]*keyedEntry
	last  time.Time // the latest clock reading
	swept time.Time
}

type keyedEntry struct {
	lim *rate.Limiter
}

// NewKeyed allows one event per every for each key, in bursts of up to burst.
// now may be nil (time.Now).
func NewKeyed(every time.Duration, burst int, now func() time.Time) *Keyed {
	if now == nil {
		now = time.Now
	}
	return &Keyed{every: every, burst: max(burst, 1), now: now, m: make(map[string]*keyedEntry)}
}

// Allow takes a token for key if one is free; otherwise it takes nothing and
// says how long until one is.
func (k *Keyed) Allow(key string) (bool, time.Duration) {
	wait, _ := k.take(key)
	return wait == 0, wait
}

// Reserve is Allow for a caller that needs more than one limiter to agree:
// when it takes a token it also returns undo, which gives the token back.
// It never waits and, when it says wait, takes nothing.
//
// An undo leaves the bucket as if the token had never been taken: the time
// since refilled it as it would have anyway. One limit: if meanwhile the
// bucket came within a token of its burst (where refilling stops) and was
// drawn on again, the undo gives back up to that part of a token more than
// the reservation kept from it; and a try the token made others refuse
// cannot be taken back. A second call of undo does nothing.
func (k *Keyed) Reserve(key string) (wait time.Duration, undo func()) {
	wait, e := k.take(key)
	if wait > 0 {
		return wait, nil
	}
	var once sync.Once
	return 0, func() { once.Do(func() { k.giveBack(key, e) }) }
}

// take takes a token from key's bucket if it holds one, else says how long
// until it does; it returns the bucket's entry.
func (k *Keyed) take(key string) (time.Duration, *keyedEntry) {
	k.mu.Lock()
	defer k.mu.Unlock()
	now := k.clock()
	e := k.entryLocked(key, now)
	if d := k.wait(e.lim, now); d > 0 {
		return d, e
	}
	e.lim.ReserveN(now, 1)
	return 0, e
}

// giveBack puts one token back in e's bucket as of now, up to its burst.
// x/time/rate has no call that adds a token: Reservation.CancelAt restores
// one only while the reservation's moment has not passed (for a token taken
// at once it has, by the time anyone undoes it), less the time of any
// reservation made since, and sets the bucket's time back to the moment it
// is given. So the bucket is made again, holding one token more.
func (k *Keyed) giveBack(key string, e *keyedEntry) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.m[key] != e {
		return // dropped once full: it holds its burst anyway
	}
	now := k.clock()
	e.lim = k.holding(min(e.lim.TokensAt(now)+1, float64(k.burst)), now)
}

// holding returns a bucket that holds tokens at now; below zero, what
// callers of Wait are owed, in whole tokens reserved at now.
func (k *Keyed) holding(tokens float64, now time.Time) *rate.Limiter {
	lim := rate.NewLimiter(rate.Every(k.every), k.burst)
	owed := math.Ceil(max(-tokens, 0))
	// Emptied at the moment from which it refills to tokens+owed by now.
	lim.ReserveN(now.Add(-time.Duration((tokens+owed)*float64(k.every))), k.burst)
	for ; owed > 0; owed -= float64(k.burst) {
		lim.ReserveN(now, int(min(owed, float64(k.burst))))
	}
	return lim
}

// Wait takes a token for key, waiting for one if needed, or fails when ctx
// ends first (or would end before the token is free).
func (k *Keyed) Wait(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	k.mu.Lock()
	now := k.clock()
	e := k.entryLocked(key, now)
	lim := e.lim
	if dl, ok := ctx.Deadline(); ok {
		if d := k.wait(lim, now); d > time.Until(dl) {
			k.mu.Unlock()
			return fmt.Errorf("quota: a token for %q is %s away, after the context's deadline", key, d)
		}
	}
	r := lim.ReserveN(now, 1)
	k.mu.Unlock()
	d := r.DelayFrom(now)
	if d == 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		// Given back as x/time/rate allows: all of it while no one reserved
		// after. A bucket made again since (giveBack) carries this
		// reservation as owed, which stays taken.
		k.mu.Lock()
		if k.m[key] == e && e.lim == lim {
			r.CancelAt(k.clock())
		}
		k.mu.Unlock()
		return ctx.Err()
	}
}

// Peek says whether Allow would take a token for key now, taking nothing.
func (k *Keyed) Peek(key string) (bool, time.Duration) {
	k.mu.Lock()
	defer k.mu.Unlock()
	e, ok := k.m[key]
	if !ok {
		return true, 0
	}
	d := k.wait(e.lim, k.clock())
	return d == 0, d
}

// Len is how many keys hold a bucket.
func (k *Keyed) Len() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.m)
}

// clock reads the time, never earlier than the last reading. k.mu is held.
func (k *Keyed) clock() time.Time {
	now := k.now()
	if now.Before(k.last) {
		return k.last
	}
	k.last = now
	return now
}

// wait is how long until lim holds a token at now: 0 if it does. Rounded
// up, so that a caller back after it finds the token. Reading it takes
// nothing: a refused reservation given back with CancelAt would leave the
// bucket's last event in the future, which later CancelAts count against.
func (k *Keyed) wait(lim *rate.Limiter, now time.Time) time.Duration {
	tokens := lim.TokensAt(now)
	if tokens >= 1 {
		return 0
	}
	return time.Duration(math.Ceil((1 - tokens) * float64(k.every)))
}

// entryLocked returns key's bucket, made on first use. k.mu is held.
func (k *Keyed) entryLocked(key string, now time.Time) *keyedEntry {
	k.sweep(now)
	e, ok := k.m[key]
	if !ok {
		e = &keyedEntry{lim: rate.NewLimiter(rate.Every(k.every), k.burst)}
		k.m[key] = e
	}
	return e
}

// sweep drops buckets that are full again (a new one is the same); at most
// once a minute.
func (k *Keyed) sweep(now time.Time) {
	if now.Sub(k.swept) < time.Minute {
		return
	}
	k.swept = now
	for key, e := range k.m {
		if e.lim.TokensAt(now) >= float64(k.burst) {
			delete(k.m, key)
		}
	}
}
