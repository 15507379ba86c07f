package postlane

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/picbot/picbot/internal/testclock"
)

// TestBound: no more holds than lanes; one delivery per lane waits in line
// and gets the lane the moment it is released; the others are told to come
// back, those told later after longer, and never before the engine's floor.
func TestBound(t *testing.T) {
	l := New(1, time.Now)
	release, _ := l.Take(context.Background(), "a")
	if release == nil {
		t.Fatal("a free lane was not taken")
	}
	got := make(chan func(), 1)
	go func() {
		r, _ := l.Take(context.Background(), "b") // first in line: waits
		got <- r
	}()
	for {
		l.mu.Lock()
		n := l.line
		l.mu.Unlock()
		if n == 1 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	r, c := l.Take(context.Background(), "c")
	if r != nil {
		t.Fatal("a second hold of one lane")
	}
	r, d := l.Take(context.Background(), "d")
	if r != nil {
		t.Fatal("a second hold of one lane")
	}
	if c < minLaneRetry || d < c {
		t.Errorf("told to come back after %s and %s: want at least %s, the later no sooner", c, d, minLaneRetry)
	}
	select {
	case <-got:
		t.Fatal("b got a lane still held")
	case <-time.After(20 * time.Millisecond):
	}
	release()
	release() // twice is once
	rb := <-got
	if rb == nil {
		t.Fatal("b, in line, did not get the lane released")
	}
	short, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if r, _ := l.Take(short, "c"); r != nil { // first in line now: waits, then gives up
		t.Fatal("c took the lane b holds")
	}
	rb()
	if r, _ := l.Take(context.Background(), "c"); r == nil {
		t.Fatal("c did not get the free lane")
	} else {
		r()
	}
}

// TestLineEndsWithContext: a delivery in line leaves it when its context
// ends, taking nothing.
func TestLineEndsWithContext(t *testing.T) {
	l := New(1, time.Now)
	release, _ := l.Take(context.Background(), "a")
	defer release()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	r, later := l.Take(ctx, "b")
	if r != nil || later <= 0 {
		t.Fatalf("release %v, later %s: want nothing taken and a wait", r != nil, later)
	}
	if l.line != 0 {
		t.Fatalf("%d left in line", l.line)
	}
}

// TestSlowHoldsKeepLineShort: once holds are known to be slow, only the
// first in line for each lane waits; the rest come back later, in turn.
func TestSlowHoldsKeepLineShort(t *testing.T) {
	now := time.Unix(0, 0)
	clock := func() time.Time { return now }
	l := New(2, clock)
	for range 2 {
		r, _ := l.Take(context.Background(), "warm")
		now = now.Add(time.Second) // a one-second upload
		r()
	}
	r1, _ := l.Take(context.Background(), "a")
	r2, _ := l.Take(context.Background(), "b")
	if r1 == nil || r2 == nil {
		t.Fatal("two lanes, two holds")
	}
	l.mu.Lock()
	l.line = 2 // two in line already, one per lane
	l.mu.Unlock()
	if r, d := l.Take(context.Background(), "c"); r != nil || d != 2*time.Second {
		t.Errorf("third in line: held %v, back after %s; want told to come back after 2s (two ahead, two lanes, 1s each)", r != nil, d)
	}
	if r, d := l.Take(context.Background(), "d"); r != nil || d != 2*time.Second {
		t.Errorf("fourth: held %v, back after %s; want 2s (three ahead, the second lane's)", r != nil, d)
	}
	if r, d := l.Take(context.Background(), "e"); r != nil || d != 3*time.Second {
		t.Errorf("fifth: held %v, back after %s; want 3s", r != nil, d)
	}
	if _, d := l.Take(context.Background(), "c"); d != 2*time.Second {
		t.Errorf("c again: back after %s; want 2s, its place kept", d)
	}
}

// TestReleaseCallsBackTold: a lane released with nobody in line calls back
// the first delivery told to come back, once, rather than standing idle
// for the wait it was told (guessed from slow holds before: here 2 s, for
// a hold that took none); one in line takes the lane itself, and nobody is
// called back for it.
func TestReleaseCallsBackTold(t *testing.T) {
	now := time.Unix(0, 0)
	clock := func() time.Time { return now }
	l := New(1, clock)
	var woken []string
	l.SetWake(func(id string) { woken = append(woken, id) })
	r, _ := l.Take(context.Background(), "warm")
	now = now.Add(time.Second) // a one-second upload
	r()
	if len(woken) != 0 {
		t.Fatalf("called back %q with nobody told to come back", woken)
	}

	ra, _ := l.Take(context.Background(), "a")
	done, cancel := context.WithCancel(context.Background())
	cancel()
	// b is first in line: it would wait; with its context ended it is told to come back.
	for _, id := range []string{"b", "c"} {
		if r, d := l.Take(done, id); r != nil || d < time.Second {
			t.Fatalf("%s: held %v, back after %s; want told to come back after a hold's time at least", id, r != nil, d)
		}
	}
	ra() // a quick post after all
	if want := []string{"b"}; !slices.Equal(woken, want) {
		t.Fatalf("lane released: called back %q, want %q (the first told)", woken, want)
	}
	rb, _ := l.Take(context.Background(), "b")
	if rb == nil {
		t.Fatal("b, called back, did not get the free lane")
	}
	rb()
	if want := []string{"b", "c"}; !slices.Equal(woken, want) {
		t.Fatalf("lane released again: called back %q, want %q", woken, want)
	}

	// One waiting in line gets the lane; the first told is called back for
	// the place in line it leaves, so the line does not run dry.
	rc, _ := l.Take(context.Background(), "c")
	got := make(chan func(), 1)
	go func() {
		r, _ := l.Take(context.Background(), "d")
		got <- r
	}()
	waitLine(t, l, 1)
	if r, _ := l.Take(done, "e"); r != nil {
		t.Fatal("e took a held lane")
	}
	rc()
	rd := <-got
	if rd == nil {
		t.Fatal("d, in line, did not get the lane")
	}
	if want := []string{"b", "c", "e"}; !slices.Equal(woken, want) {
		t.Errorf("lane released to one in line: called back %q, want %q (e, for the place in line)", woken, want)
	}
	rd()
	if want := []string{"b", "c", "e"}; !slices.Equal(woken, want) {
		t.Errorf("lane released, e called back already: called back %q, want %q", woken, want)
	}
}

// waitLine waits until n deliveries wait in l's line.
func waitLine(t *testing.T, l *Lanes, n int) {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		l.mu.Lock()
		got := l.line
		l.mu.Unlock()
		if got == n {
			return
		}
		if time.Now().After(end) {
			t.Fatalf("%d in line, want %d", got, n)
		}
	}
}

// TestStalledHoldKeepsWorkers: after quick holds, one stalls (a slow
// upload, a slow store write) while many deliveries come for the lane. One
// waits in line; every other is told to come back at once, so the workers
// that bring them are free for other chats' jobs (before, the line took
// up to 100 ms of holds' worth of deliveries: all sixteen workers, for up
// to 30 s). As the lane frees, the first told is called back for the place
// in line the waiter leaves.
func TestStalledHoldKeepsWorkers(t *testing.T) {
	clock := testclock.New(time.Unix(0, 0))
	l := New(1, clock.Now)
	var (
		mu    sync.Mutex
		woken []string
	)
	l.SetWake(func(id string) { mu.Lock(); woken = append(woken, id); mu.Unlock() })
	for range 8 {
		r, _ := l.Take(context.Background(), "warm")
		clock.Add(time.Millisecond) // quick posts
		r()
	}
	stalled, _ := l.Take(context.Background(), "stalled")
	if stalled == nil {
		t.Fatal("a free lane was not taken")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const deliveries = 16
	type took struct {
		id      string
		release func()
	}
	back := make(chan took, deliveries)
	for i := range deliveries {
		id := fmt.Sprint("d", i)
		go func() {
			r, _ := l.Take(ctx, id)
			back <- took{id, r}
		}()
	}
	var told []string
	for len(told) < deliveries-1 {
		select {
		case tk := <-back:
			if tk.release != nil {
				t.Fatalf("%s took a lane the stalled hold has", tk.id)
			}
			told = append(told, tk.id)
		case <-time.After(10 * time.Second):
			l.mu.Lock()
			n := l.line
			l.mu.Unlock()
			t.Fatalf("%d deliveries told to come back and %d waiting in line for a stalled hold: want one in line, %d told", len(told), n, deliveries-1)
		}
	}
	waitLine(t, l, 1)
	clock.Add(40 * time.Millisecond) // the stalled hold ends, before those told come back
	stalled()
	tk := <-back
	if tk.release == nil {
		t.Fatalf("%s, in line, did not get the lane", tk.id)
	}
	mu.Lock()
	n := len(woken)
	mu.Unlock()
	if n != 1 || !slices.Contains(told, woken[0]) {
		t.Errorf("lane passed to the one in line: called back %q, want one of those told", woken)
	}
	tk.release()
}
