package engine_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/picbot/picbot/engine"
	"github.com/picbot/picbot/quota"
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
	running string            // the task being worked on, "" when idle
	maxHeld int
	busy    bool
	// blocked keeps a started task from ending until unblock.
	blocked bool
	paused  []func()
	// manual: a task ends only when the test calls end, so what the
	// backend holds at each end does not depend on the machine's speed.
	manual bool
}

func (g *gpu) block() { g.mu.Lock(); g.blocked = true; g.mu.Unlock() }

func (g *gpu) unblock() {
	g.mu.Lock()
	g.blocked = false
	fs := g.paused
	g.paused = nil
	g.mu.Unlock()
	for _, f := range fs {
		f()
	}
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
	g.maxHeld = max(g.maxHeld, g.heldLocked())
	if !g.busy {
		g.next()
	}
	return t.ID, nil
}

// heldLocked is how many tasks the backend holds, running or waiting; g.mu held.
func (g *gpu) heldLocked() int {
	if g.busy {
		return len(g.queue) + 1
	}
	return len(g.queue)
}

// next starts the first waiting task; g.mu held.
func (g *gpu) next() {
	if len(g.queue) == 0 {
		g.busy, g.running = false, ""
		return
	}
	id := g.queue[0]
	g.queue = g.queue[1:]
	g.busy, g.running = true, id
	g.started = append(g.started, g.owner[id])
	if g.manual {
		return
	}
	end := func() { time.AfterFunc(g.dur, g.finish(id)) }
	if g.blocked {
		g.paused = append(g.paused, end)
		return
	}
	end()
}

// finish ends task id.
func (g *gpu) finish(id string) func() {
	return func() {
		g.mu.Lock()
		g.done[id] = true
		g.next()
		wake, job := g.wake, g.owner[id]
		g.mu.Unlock()
		wake(job)
	}
}

// end ends the running task (a manual fake's) and reports whether the
// backend held the next one already, so started it at once.
func (g *gpu) end(t *testing.T) (nextHeld bool) {
	t.Helper()
	g.mu.Lock()
	id := g.running
	nextHeld = len(g.queue) > 0
	g.mu.Unlock()
	if id == "" {
		t.Fatal("end: no task is running")
	}
	g.finish(id)()
	return nextHeld
}

// held is how many tasks the backend holds, running or waiting.
func (g *gpu) held() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.heldLocked()
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
// never waits for the bot between jobs. The fake GPU ends a task only
// when the test says so, so nothing here depends on the machine's speed.
func TestLimitedVendorRoundRobin(t *testing.T) {
	g := newGPU("gpu", 2, time.Minute)
	g.manual = true
	// The engine's clock stands still: no timer of its comes due (a
	// waiting job's look at its place, a poll), so only the GPU's wake at
	// each end can move the next job to the backend, as it must for the
	// GPU not to wait for the bot.
	still := time.Now()
	h := newHarness(t, engine.Config{JobTimeout: time.Minute, Now: func() time.Time { return still }}, g)
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
	// placed: every job so far holds a slot (and is at the GPU) or waits.
	placed := func() bool {
		q := h.engine.Queues()
		return len(q) == 1 && q[0].Held+q[0].Waiting == len(ids) && g.held() == q[0].Held
	}
	for range 6 {
		add(alice)
	}
	if !eventually(placed) {
		t.Fatalf("alice's jobs not placed: %+v, the GPU holds %d", h.engine.Queues(), g.held())
	}
	add(bob)
	add(bob)
	if !eventually(placed) {
		t.Fatalf("bob's jobs not placed: %+v, the GPU holds %d", h.engine.Queues(), g.held())
	}
	for i := range ids {
		// The engine fills the slot the last end freed while this job
		// runs, so at its end the next is at the backend already. The
		// deadline is only for a broken engine; the check is that the
		// next was held, not how soon.
		want := min(2, len(ids)-i)
		eventually(func() bool { return g.held() >= want })
		if !g.end(t) && i < len(ids)-1 {
			t.Fatalf("job %d of %d ended with nothing behind it at the backend: the GPU waits for the bot", i+1, len(ids))
		}
	}
	for range ids {
		h.notify.wait(t)
	}
	if g.maxHeld > 2 {
		t.Fatalf("the backend held %d tasks at once, the limit is 2", g.maxHeld)
	}
	// gate.go: alice's first two take the free slots (no one waits); her
	// other four wait, and she takes a place in the rotation; bob's two
	// then wait, and he takes the place after hers. Each freed slot goes
	// to the oldest job of the owner at the head of the rotation, who
	// goes to its back while jobs of theirs still wait: alice, bob,
	// alice, bob, then alice's last two. The GPU starts them in the order
	// it got them.
	want := []string{"alice", "alice", "alice", "bob", "alice", "bob", "alice", "alice"}
	if order := g.startOrder(who); !slices.Equal(order, want) {
		t.Fatalf("GPU order %v, want %v", order, want)
	}
}

// eventually reports whether cond holds within a deadline generous
// enough for a loaded machine: it waits for the engine, never bounds it.
func eventually(cond func() bool) bool {
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(2 * time.Millisecond)
	}
	return true
}

// TestLimitedVendorQueuePosition: a job waiting for a slot reports its
// place and an ETA from the backend's own timing; a cancelled waiting job
// leaves the line.
func TestLimitedVendorQueuePosition(t *testing.T) {
	g := newGPU("gpu", 1, 300*time.Millisecond)
	h := newHarness(t, engine.Config{JobTimeout: time.Minute}, g)
	// The first holds the slot until the places are checked: unblocked, it
	// could end (300 ms) before a loaded machine looked.
	g.block()
	jobs := []string{h.submit(t).ID, h.submit(t).ID, h.submit(t).ID}
	waitLine(t, h.engine, 2)
	// The engine's workers take the three in any order: which holds the
	// slot and which waits where is read, not assumed.
	var atGPU, front, back string
	for _, id := range jobs {
		switch h.engine.Queue(id).Position {
		case 0:
			atGPU = id
		case 1:
			front = id
		case 2:
			back = id
		}
	}
	if atGPU == "" || front == "" || back == "" {
		t.Fatalf("places %+v, want one at the GPU, one 1st and one 2nd in line", h.engine.Queues())
	}
	// Ahead of the back one: the one at the GPU and the front one.
	if q := h.engine.Queue(back); q.Vendor != "gpu" || q.ETA != 2*300*time.Millisecond {
		t.Fatalf("the 2nd in line's place %+v, want ETA 600ms at gpu", q)
	}
	if _, err := h.engine.Cancel(context.Background(), front, alice, false); err != nil {
		t.Fatal(err)
	}
	if q := h.engine.Queue(back); q.Position != 1 {
		t.Fatalf("after the cancel: %+v, want 1st", q)
	}
	g.unblock()
	for _, id := range []string{atGPU, back} {
		deadline := time.Now().Add(10 * time.Second)
		for h.job(t, id).State != engine.StateDelivered {
			if time.Now().After(deadline) {
				t.Fatalf("job %s: %s", id, h.job(t, id).State)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// vendorAPI is the GPU fake seen as a vendor that says nothing of its
// limits (as the seed vendors): only the configured concurrency bounds it.
type vendorAPI struct{ g *gpu }

func (v vendorAPI) Name() string                           { return v.g.name }
func (v vendorAPI) Check(r *engine.Request) error          { return v.g.Check(r) }
func (v vendorAPI) Timing(r *engine.Request) engine.Timing { return v.g.Timing(r) }
func (v vendorAPI) SetWake(f func(string))                 { v.g.SetWake(f) }
func (v vendorAPI) Submit(ctx context.Context, j *engine.Job, t engine.Task) (string, error) {
	return v.g.Submit(ctx, j, t)
}
func (v vendorAPI) Query(ctx context.Context, j *engine.Job) (*engine.Outcome, error) {
	return v.g.Query(ctx, j)
}

// startOrder is who the GPU started jobs for, in order.
func (g *gpu) startOrder(who map[string]string) []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	var order []string
	for _, id := range g.started {
		order = append(order, who[id])
	}
	return order
}

// waitHeld waits until the fake holds n tasks.
func (g *gpu) waitHeld(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		g.mu.Lock()
		got := len(g.owner)
		g.mu.Unlock()
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the vendor got %d tasks, want %d", got, n)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// waitLine waits until n jobs wait for a slot.
func waitLine(t *testing.T, e *engine.Engine, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := 0
		for _, q := range e.Queues() {
			got += q.Waiting
		}
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d jobs wait, want %d", got, n)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestVendorConcurrencyFair: a vendor with concurrency 1 (configured, not
// its own) holds one task at a time; user A queues 20 jobs, then user B
// queues 1, and B's job starts before A's third.
func TestVendorConcurrencyFair(t *testing.T) {
	g := newGPU("api", 100, 100*time.Millisecond)
	qc := quota.DefaultConfig()
	qc.Default = quota.Tier{Daily: 100, Concurrent: 50}
	h := newHarnessQuota(t, engine.Config{JobTimeout: time.Minute, Concurrency: map[string]int{"api": 1}}, qc, vendorAPI{g})
	ctx := context.Background()
	who := map[string]string{}
	add := func(u engine.UserRef) string {
		j, err := h.engine.Submit(ctx, u, engine.ChatRef{Platform: "test", ChatID: "c1"}, engine.Request{Kind: engine.KindDraw, Prompt: "p", Seed: -1})
		if err != nil {
			t.Fatal(err)
		}
		who[j.ID] = u.ID
		return j.ID
	}
	g.block()
	for range 20 {
		add(alice)
	}
	waitLine(t, h.engine, 19) // A's first holds the slot; the other 19 wait
	b := add(bob)
	waitLine(t, h.engine, 20)
	if q := h.engine.Queue(b); q.Position != 2 || q.Vendor != "api" {
		t.Errorf("B's job's place: %+v, want 2nd at api", q)
	}
	g.unblock()
	for range who {
		h.notify.wait(t)
	}
	order := g.startOrder(who)
	if i := slices.Index(order, "bob"); i < 0 || i > 2 {
		t.Fatalf("start order %v: B's job is not before A's third", order)
	}
	if g.maxHeld > 1 {
		t.Fatalf("the vendor held %d tasks at once, the limit is 1", g.maxHeld)
	}
}

// TestTierPriority: among users waiting for a busy vendor, a higher tier's
// priority goes first; equal priorities take turns.
func TestTierPriority(t *testing.T) {
	g := newGPU("api", 100, 150*time.Millisecond)
	qc := quota.DefaultConfig()
	qc.Default = quota.Tier{Daily: 100, Concurrent: 50}
	qc.Tiers = map[string]quota.Tier{"gold": {Daily: 100, Concurrent: 50, Priority: 5}}
	qc.Users = map[string]string{"test:carol": "gold"}
	h := newHarnessQuota(t, engine.Config{JobTimeout: time.Minute, Concurrency: map[string]int{"api": 1}}, qc, vendorAPI{g})
	ctx := context.Background()
	carol := engine.UserRef{Platform: "test", ID: "carol"}
	who := map[string]string{}
	var ids []string
	add := func(u engine.UserRef) {
		j, err := h.engine.Submit(ctx, u, engine.ChatRef{Platform: "test", ChatID: "c1"}, engine.Request{Kind: engine.KindDraw, Prompt: "p", Seed: -1})
		if err != nil {
			t.Fatal(err)
		}
		who[j.ID] = u.ID
		ids = append(ids, j.ID)
	}
	g.block()
	for range 3 {
		add(alice)
	}
	waitLine(t, h.engine, 2)
	add(bob)
	add(carol)
	add(carol)
	waitLine(t, h.engine, 5)
	g.unblock()
	for range ids {
		h.notify.wait(t)
	}
	want := []string{"alice", "carol", "carol", "alice", "bob", "alice"}
	if order := g.startOrder(who); !slices.Equal(order, want) {
		t.Fatalf("start order %v, want %v", order, want)
	}
}

// TestVendorConcurrencyRestart: after a restart the task still at the
// vendor keeps its slot (counted again from the store), so the jobs that
// waited still wait, and the vendor never holds two.
func TestVendorConcurrencyRestart(t *testing.T) {
	g := newGPU("api", 100, 50*time.Millisecond)
	cfg := engine.Config{JobTimeout: time.Minute, Concurrency: map[string]int{"api": 1}}
	h := newHarness(t, cfg, vendorAPI{g})
	g.block()
	for range 3 {
		h.submit(t)
	}
	waitLine(t, h.engine, 2)
	h.engine.Stop(context.Background())
	h.start(t, vendorAPI{g})
	waitLine(t, h.engine, 2)
	for _, q := range h.engine.Queues() {
		if q.Held != 1 {
			t.Fatalf("after the restart %+v, want the task at the vendor holding the one slot", q)
		}
	}
	g.unblock()
	for range 3 {
		h.notify.wait(t)
	}
	if g.maxHeld > 1 {
		t.Fatalf("the vendor held %d tasks at once, the limit is 1", g.maxHeld)
	}
}
