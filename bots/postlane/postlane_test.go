package postlane

import (
	"context"
	"testing"
	"time"
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
