package engine_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/picbot/picbot/engine"
)

// gpu is a fake self-hosted backend: it works on one task at a time, in
// the order they came, holds the others, and wakes the engine when one ends.
type gpu struct {
	name  string
	slots int
	dur   time.Duration

	mu      sync.Mutex
	wake    func(string)
	queue   []string // task ids waiting, in order
	done    map[string]bool
	owner   map[string]string // task id → job id
	started []string          // job ids in the order the GPU started them
	ends    []time.Time
	starts  []time.Time
	maxHeld int
	busy    bool
}

func newGPU(name string, slots int, dur time.Duration) *gpu {
	return &gpu{name: name, slots: slots, dur: dur, done: map[string]bool{}, owner: map[string]string{}}
}

func (g *gpu) Name() string                          { return g.name }
func (g *gpu) Check(*engine.Request) error           { return nil }
func (g *gpu) Slots() int                            { return g.slots }
func (g *gpu) Running() int                          { return 1 }
func (g *gpu) Typical(*engine.Request) time.Duration { return g.dur }
func (g *gpu) SetWake(f func(string))                { g.mu.Lock(); g.wake = f; g.mu.Unlock() }
func (g *gpu) Timing(*engine.Request) engine.Timing {
	return engine.Timing{First: time.Hour, Every: time.Hour, Max: time.Hour}
}

func (g *gpu) Submit(ctx context.Context, j *engine.Job, t engine.Task) (string, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.queue = append(g.queue, t.ID)
	g.owner[t.ID] = j.ID
	held := len(g.queue)
	if g.busy {
		held++
	}
	g.maxHeld = max(g.maxHeld, held)
	if !g.busy {
		g.next()
	}
	return t.ID, nil
}

// next starts the first waiting task; g.mu held.
func (g *gpu) next() {
	if len(g.queue) == 0 {
		g.busy = false
		return
	}
	id := g.queue[0]
	g.queue = g.queue[1:]
	g.busy = true
	g.started = append(g.started, g.owner[id])
	g.starts = append(g.starts, time.Now())
	time.AfterFunc(g.dur, func() {
		g.mu.Lock()
		g.done[id] = true
		g.ends = append(g.ends, time.Now())
		g.next()
		wake, job := g.wake, g.owner[id]
		g.mu.Unlock()
		wake(job)
	})
}

func (g *gpu) Query(ctx context.Context, j *engine.Job) (*engine.Outcome, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.done[j.TaskID] {
		return done(), nil
	}
	return &engine.Outcome{State: engine.TaskQueued, Progress: 0}, nil
}

var bob = engine.UserRef{Platform: "test", ID: "bob"}

// TestLimitedVendorRoundRobin: a backend with two slots (one running,
// one waiting there) never holds more; the jobs waiting in the engine
// go in turn between users, not first come first served; and the GPU
// never waits for the bot between jobs.
func TestLimitedVendorRoundRobin(t *testing.T) {
	g := newGPU("gpu", 2, 60*time.Millisecond)
	h := newHarness(t, engine.Config{JobTimeout: time.Minute}, g)
	ctx := context.Background()
	var ids []string
	who := map[string]string{}
	add := func(u engine.UserRef) {
		j, err := h.engine.Submit(ctx, u, engine.ChatRef{Platform: "test", ChatID: "c1"}, engine.Request{Kind: engine.KindDraw, Prompt: "p", Seed: -1})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, j.ID)
		who[j.ID] = u.ID
	}
	for range 6 {
		add(alice)
	}
	// Wait until alice's first two hold the slots, so the line is known.
	deadline := time.Now().Add(10 * time.Second)
	for {
		g.mu.Lock()
		n := len(g.owner)
		g.mu.Unlock()
		if n == 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	add(bob)
	add(bob)
	for range ids {
		h.notify.wait(t)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	var order []string
	for _, id := range g.started {
		order = append(order, who[id])
	}
	want := []string{"alice", "alice", "alice", "bob", "alice", "bob", "alice", "alice"}
	if !slices.Equal(order, want) {
		t.Fatalf("GPU order %v, want %v", order, want)
	}
	if g.maxHeld > 2 {
		t.Fatalf("the backend held %d tasks at once, the limit is 2", g.maxHeld)
	}
	for i := 1; i < len(g.starts); i++ {
		if gap := g.starts[i].Sub(g.ends[i-1]); gap > 20*time.Millisecond {
			t.Errorf("GPU idle %s before job %d", gap, i+1)
		}
	}
}

// TestLimitedVendorQueuePosition: a job waiting for a slot reports its
// place and an ETA from the backend's own timing; a cancelled waiting job
// leaves the line.
func TestLimitedVendorQueuePosition(t *testing.T) {
	g := newGPU("gpu", 1, 300*time.Millisecond)
	h := newHarness(t, engine.Config{JobTimeout: time.Minute}, g)
	first := h.submit(t)
	second := h.submit(t)
	third := h.submit(t)
	var q engine.QueueInfo
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if q = h.engine.Queue(third.ID); q.Position == 2 {
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	// Ahead of it: the first at the GPU and the second in line.
	if q.Position != 2 || q.Vendor != "gpu" || q.ETA != 2*300*time.Millisecond {
		t.Fatalf("third job's place %+v, want 2nd in line, ETA 600ms", q)
	}
	if _, err := h.engine.Cancel(context.Background(), second.ID, alice, false); err != nil {
		t.Fatal(err)
	}
	if q = h.engine.Queue(third.ID); q.Position != 1 {
		t.Fatalf("after the cancel: %+v, want 1st", q)
	}
	for _, id := range []string{first.ID, third.ID} {
		deadline := time.Now().Add(10 * time.Second)
		for h.job(t, id).State != engine.StateDelivered {
			if time.Now().After(deadline) {
				t.Fatalf("job %s: %s", id, h.job(t, id).State)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}
