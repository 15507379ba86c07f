package quota_test

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/picbot/picbot/internal/testclock"
	"github.com/picbot/picbot/quota"
)

// near reports whether wait is want, give or take the nanoseconds that the
// limiter's floating-point arithmetic rounds.
func near(wait, want time.Duration) bool {
	return wait >= want-time.Microsecond && wait <= want+time.Microsecond
}

// takes counts how many tokens key's bucket gives at once now, and the
// wait the first refusal names.
func takes(k *quota.Keyed, key string) (n int, wait time.Duration) {
	for {
		ok, d := k.Allow(key)
		if !ok {
			return n, d
		}
		n++
	}
}

// TestKeyedUndoAfterTimePassed: an undo made once the clock has moved on
// (as a real clock always has, by the time a second limiter answers) gives
// the token back, and exactly as if it had not been taken: the time since
// refilled the bucket as it would have anyway. Before: the undo called
// rate.Reservation.CancelAt at the undo's time, which restores nothing once
// the reservation's moment has passed; the token was lost.
func TestKeyedUndoAfterTimePassed(t *testing.T) {
	clk := testclock.New(time.Unix(1000, 0))
	k := quota.NewKeyed(time.Second, 4, clk.Now)
	if ok, _ := k.Allow("a"); !ok { // 3 left
		t.Fatal("first token refused")
	}
	wait, undo := k.Reserve("a") // 2 left
	if wait != 0 || undo == nil {
		t.Fatalf("reserve: wait %s", wait)
	}
	clk.Add(300 * time.Millisecond) // 2.3
	undo()                          // as if never taken: 3.3
	undo()                          // a second undo gives nothing more
	if n, wait := takes(k, "a"); n != 3 || !near(wait, 700*time.Millisecond) {
		t.Fatalf("after the undo: %d tokens, then wait %s; want 3, then 700ms", n, wait)
	}
}

// TestKeyedUndoAfterOthersTook: the key's bucket was drawn on between the
// reservation and its undo; the undo still gives back one whole token.
func TestKeyedUndoAfterOthersTook(t *testing.T) {
	clk := testclock.New(time.Unix(1000, 0))
	k := quota.NewKeyed(time.Second, 4, clk.Now)
	k.Allow("a")                    // 3
	_, undo := k.Reserve("a")       // 2
	clk.Add(100 * time.Millisecond) // 2.1
	if ok, _ := k.Allow("a"); !ok { // 1.1
		t.Fatal("a token was free")
	}
	if ok, d := k.Allow("a"); !ok { // 0.1
		t.Fatalf("a token was free: wait %s", d)
	}
	clk.Add(100 * time.Millisecond) // 0.2
	undo()                          // 1.2, as if not taken
	if n, wait := takes(k, "a"); n != 1 || !near(wait, 800*time.Millisecond) {
		t.Fatalf("after the undo: %d tokens, then wait %s; want 1, then 800ms", n, wait)
	}
}

// TestKeyedClockReadOutOfOrder: callers read the clock before the
// limiter's lock, so under load one with an earlier reading reaches the
// bucket after one with a later reading. The bucket must not go back in
// time: had it, the time between the two readings would be refilled twice.
// Before: the late caller's refused try set the bucket's time back, and the
// next caller got a token the rate did not allow.
func TestKeyedClockReadOutOfOrder(t *testing.T) {
	base := time.Unix(1000, 0)
	readings := []time.Duration{0, time.Second, 500 * time.Millisecond, 1600 * time.Millisecond}
	var mu sync.Mutex
	now := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		d := readings[0]
		if len(readings) > 1 {
			readings = readings[1:]
		}
		return base.Add(d)
	}
	k := quota.NewKeyed(time.Second, 1, now)
	if ok, _ := k.Allow("a"); !ok { // at 0: 0 left
		t.Fatal("first token refused")
	}
	if ok, _ := k.Allow("a"); !ok { // at 1s: refilled, 0 left
		t.Fatal("token after a second refused")
	}
	if ok, _ := k.Allow("a"); ok { // read at 0.5s, reaching the bucket after the 1s caller
		t.Fatal("a token with none left")
	}
	if ok, d := k.Allow("a"); ok || !near(d, 400*time.Millisecond) { // at 1.6s: 0.6 refilled
		t.Fatalf("at 1.6s, 0.6 s after the last token: allowed %v, wait %s; want refused, 400ms", ok, d)
	}
}

// TestKeyedReserveUndoConcurrent: many callers reserving and undoing at once,
// on a clock that moves at every reading, leave the bucket whole.
func TestKeyedReserveUndoConcurrent(t *testing.T) {
	clk := testclock.New(time.Unix(1000, 0))
	ticking := func() time.Time { clk.Add(time.Nanosecond); return clk.Now() }
	k := quota.NewKeyed(time.Hour, 5, ticking) // no refill worth counting
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			for range 50 {
				if wait, undo := k.Reserve("a"); wait == 0 {
					undo()
				}
			}
		})
	}
	wg.Wait()
	if n, _ := takes(k, "a"); n != 5 {
		t.Fatalf("after every reservation was undone: %d tokens, want the burst of 5", n)
	}
}

// TestKeyedWaitCancelled: a Wait that gives up gives its place back, and
// Wait reads the Keyed's clock, not the wall's.
func TestKeyedWaitCancelled(t *testing.T) {
	clk := testclock.New(time.Unix(1000, 0))
	k := quota.NewKeyed(time.Hour, 1, clk.Now)
	if err := k.Wait(context.Background(), "a"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	if err := k.Wait(ctx, "a"); err == nil {
		t.Fatal("waited an hour in 20ms")
	}
	clk.Add(time.Hour)
	if n, _ := takes(k, "a"); n != 1 {
		t.Fatalf("an hour after the first token: %d free, want 1 (the given-up wait took none)", n)
	}
}

// BenchmarkKeyedAllow: commands from many users at once, each key's bucket
// behind the Keyed's one lock.
func BenchmarkKeyedAllow(b *testing.B) {
	k := quota.NewKeyed(time.Millisecond, 1<<20, nil)
	var n atomic.Int64
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			k.Allow(strconv.FormatInt(n.Add(1)%5000, 10))
		}
	})
}
