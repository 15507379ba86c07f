package quota

import (
	"context"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Keyed holds one token bucket per key (a user, a chat), made on first use
// and dropped once idle long enough to be full again. The quota uses it for
// users' command rates; platform adapters for flood control.
type Keyed struct {
	every time.Duration
	burst int
	now   func() time.Time

	mu    sync.Mutex
	m     map[string]*keyedEntry
	swept time.Time
}

type keyedEntry struct {
	lim  *rate.Limiter
	seen time.Time
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
	now := k.now()
	r := k.entry(key, now).ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// Reserve is Allow for a caller that needs more than one limiter to agree:
// when it takes a token it also returns undo, which gives the token back.
// It never waits and, when it says wait, takes nothing.
func (k *Keyed) Reserve(key string) (wait time.Duration, undo func()) {
	now := k.now()
	r := k.entry(key, now).ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return d, nil
	}
	return 0, func() { r.CancelAt(k.now()) }
}

// Wait takes a token for key, waiting for one if needed, or fails when ctx
// ends first (or would end before the token is free).
func (k *Keyed) Wait(ctx context.Context, key string) error {
	k.mu.Lock()
	lim := k.entryLocked(key, k.now())
	k.mu.Unlock()
	return lim.Wait(ctx)
}

// Len is how many keys hold a bucket.
func (k *Keyed) Len() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.m)
}

func (k *Keyed) entry(key string, now time.Time) *rate.Limiter {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.entryLocked(key, now)
}

func (k *Keyed) entryLocked(key string, now time.Time) *rate.Limiter {
	k.sweep(now)
	e, ok := k.m[key]
	if !ok {
		e = &keyedEntry{lim: rate.NewLimiter(rate.Every(k.every), k.burst)}
		k.m[key] = e
	}
	e.seen = now
	return e.lim
}

// sweep drops buckets idle long enough to have refilled; at most once a minute.
func (k *Keyed) sweep(now time.Time) {
	if now.Sub(k.swept) < time.Minute {
		return
	}
	k.swept = now
	full := time.Duration(k.burst) * k.every
	for key, e := range k.m {
		if now.Sub(e.seen) > full {
			delete(k.m, key)
		}
	}
}

// Peek says whether Allow would take a token for key now, taking nothing.
func (k *Keyed) Peek(key string) (bool, time.Duration) {
	k.mu.Lock()
	e, ok := k.m[key]
	k.mu.Unlock()
	if !ok {
		return true, 0
	}
	now := k.now()
	if e.lim.TokensAt(now) >= 1 {
		return true, 0
	}
	r := e.lim.ReserveN(now, 1)
	d := r.DelayFrom(now)
	r.CancelAt(now)
	return false, d
}
