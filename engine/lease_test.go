package engine_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/picbot/picbot/engine"
	"github.com/picbot/picbot/quota"
	"github.com/picbot/picbot/store"
)

// leases is the lease table replicas share, kept in memory: the engine's
// side of engine.Leaser, tested apart from any database.
type leases struct {
	mu      sync.Mutex
	holder  map[string]string    // job id → replica
	until   map[string]time.Time // job id → lease end
	db      *store.DB
	ttl     time.Duration
	woken   []chan string   // one per replica listening
	wakes   map[string]bool // job ids asked to wake since their holder's last renewal
	renewed map[string]int
}

// replicaStore is one replica's view: the shared bbolt store plus leases.
type replicaStore struct {
	*store.DB
	l       *leases
	name    string
	leasing bool
	dead    atomic.Bool // a killed replica renews, claims and releases nothing
	deaf    atomic.Bool // the replica's listener misses every notice (reconnecting)
	// failUpdates and failWakes make that many of the replica's job writes
	// and wake-ups fail, as a database that drops a connection would.
	failUpdates, failWakes atomic.Int32
}

func (r *replicaStore) UpdateJob(ctx context.Context, id string, fn func(*engine.Job, engine.Counters) error) (*engine.Job, error) {
	if r.failUpdates.Add(-1) >= 0 {
		return nil, fmt.Errorf("update job %s: connection reset", id)
	}
	return r.DB.UpdateJob(ctx, id, fn)
}

var _ engine.Leaser = (*replicaStore)(nil)

func (r *replicaStore) CreateJob(ctx context.Context, j *engine.Job, reserve func(engine.Counters) error) error {
	if err := r.DB.CreateJob(ctx, j, reserve); err != nil {
		return err
	}
	if r.leasing {
		r.l.mu.Lock()
		r.l.holder[j.ID], r.l.until[j.ID] = r.name, time.Now().Add(r.l.ttl)
		r.l.mu.Unlock()
	}
	return nil
}

func (r *replicaStore) Leasing()                  { r.leasing = true }
func (r *replicaStore) LeaseEvery() time.Duration { return r.l.ttl / 4 }
func (r *replicaStore) Woken(ctx context.Context, fn func(string)) {
	ch := make(chan string, 16)
	r.l.mu.Lock()
	r.l.woken = append(r.l.woken, ch)
	r.l.mu.Unlock()
	for {
		select {
		case <-ctx.Done():
			return
		case id := <-ch:
			if !r.deaf.Load() {
				fn(id)
			}
		}
	}
}

func (r *replicaStore) Wake(_ context.Context, id string) error {
	if r.failWakes.Add(-1) >= 0 {
		return fmt.Errorf("wake %s: connection reset", id)
	}
	r.l.mu.Lock()
	defer r.l.mu.Unlock()
	if r.l.holder[id] != "" {
		r.l.wakes[id] = true
	}
	for _, ch := range r.l.woken {
		ch <- id
	}
	return nil
}

func (r *replicaStore) Claim(ctx context.Context, limit int) ([]*engine.Job, error) {
	if r.dead.Load() {
		return nil, context.Canceled
	}
	jobs, err := r.DB.Unfinished(ctx)
	if err != nil {
		return nil, err
	}
	r.l.mu.Lock()
	defer r.l.mu.Unlock()
	var out []*engine.Job
	for _, j := range jobs {
		if h, ok := r.l.holder[j.ID]; ok && h != "" && time.Now().Before(r.l.until[j.ID]) {
			continue
		}
		r.l.holder[j.ID], r.l.until[j.ID] = r.name, time.Now().Add(r.l.ttl)
		out = append(out, j)
	}
	return out, nil
}

func (r *replicaStore) Renew(ctx context.Context) (held, woken []string, err error) {
	if r.dead.Load() {
		return nil, nil, context.Canceled
	}
	r.l.mu.Lock()
	defer r.l.mu.Unlock()
	for id, h := range r.l.holder {
		if h == r.name {
			r.l.until[id] = time.Now().Add(r.l.ttl)
			held = append(held, id)
			if r.l.wakes[id] {
				woken = append(woken, id)
				delete(r.l.wakes, id)
			}
		}
	}
	r.l.renewed[r.name]++
	return held, woken, nil
}

func (r *replicaStore) Release(_ context.Context, ids []string) error {
	if r.dead.Load() {
		return nil
	}
	r.l.mu.Lock()
	defer r.l.mu.Unlock()
	for _, id := range ids {
		if r.l.holder[id] == r.name {
			delete(r.l.holder, id)
		}
	}
	return nil
}

func (l *leases) holderOf(id string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.holder[id]
}

type replica struct {
	store  *replicaStore
	engine *engine.Engine
	notify *notifier
}

func newReplicas(t *testing.T, n int, vendor engine.Vendor, obs ...engine.Observer) ([]*replica, *leases) {
	t.Helper()
	dir := t.TempDir()
	db, err := store.Open(filepath.Join(dir, "db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	blobs, err := store.OpenBlobs(filepath.Join(dir, "blobs"), 0)
	if err != nil {
		t.Fatal(err)
	}
	l := &leases{holder: map[string]string{}, until: map[string]time.Time{}, db: db, ttl: 400 * time.Millisecond, wakes: map[string]bool{}, renewed: map[string]int{}}
	var out []*replica
	for i := range n {
		rs := &replicaStore{DB: db, l: l, name: string(rune('a' + i))}
		qc := quota.DefaultConfig()
		qc.Default = quota.Tier{Daily: 20, Concurrent: 10}
		q, err := quota.New(qc, rs, nil)
		if err != nil {
			t.Fatal(err)
		}
		r := &replica{store: rs, notify: newNotifier()}
		var o engine.Observer
		if len(obs) > 0 {
			o = obs[0]
		}
		r.engine = engine.New(engine.Config{Observer: o, PublicURL: "http://bot.example", Routes: map[engine.Kind][]string{engine.KindDraw: {vendor.Name()}}},
			rs, q, blobs, r.notify, vendor)
		if err := r.engine.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		e := r.engine
		t.Cleanup(func() { e.Stop(context.Background()) })
		out = append(out, r)
	}
	return out, l
}

// TestLeaseCallbackElsewhere: a vendor's callback lands on the replica that
// does not hold the job. It is applied there and the holder, woken, posts
// the picture, long before its safety-net poll.
func TestLeaseCallbackElsewhere(t *testing.T) {
	v := newVendor("v")
	v.timing = engine.Timing{First: time.Hour, Every: time.Hour, Max: time.Hour, Billed: true}
	img := pngBytes(t, 8, 8)
	v.parse = func(j *engine.Job, body []byte) (*engine.Outcome, error) {
		return &engine.Outcome{State: engine.TaskDone, Images: []engine.Remote{{Data: img}}}, nil
	}
	rs, l := newReplicas(t, 2, callbackVendor{v})
	a, b := rs[0], rs[1]
	j, err := a.engine.Submit(context.Background(), alice, engine.ChatRef{Platform: "test", ChatID: "c1"}, engine.Request{Kind: engine.KindDraw, Prompt: "a fox", Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if got := l.holderOf(j.ID); got != "a" {
		t.Fatalf("job held by %q, want its creator a", got)
	}
	waitState(t, a.store.DB, j.ID, engine.StateSubmitted)
	stored, _ := a.store.Job(context.Background(), j.ID)
	if _, _, err := b.engine.HandleCallback(context.Background(), "v", j.ID, stored.CallbackToken, []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	got := a.notify.wait(t)
	if got.ID != j.ID || b.notify.count(j.ID) != 0 {
		t.Fatalf("posted by the wrong replica: a %d, b %d", a.notify.count(j.ID), b.notify.count(j.ID))
	}
	if n := v.queries.Load(); n != 0 {
		t.Fatalf("%d polls: the holder was not woken", n)
	}
}

// callbackElsewhere submits a job on a, waits for it at the vendor, and
// returns it with its callback token, for a callback delivered to b.
func callbackElsewhere(t *testing.T) (v *fakeVendor, a, b *replica, j *engine.Job) {
	t.Helper()
	v = newVendor("v")
	// Only a wake-up posts the picture before the test ends: no poll is due for an hour.
	v.timing = engine.Timing{First: time.Hour, Every: time.Hour, Max: time.Hour, Billed: true}
	v.parse = func(j *engine.Job, body []byte) (*engine.Outcome, error) { return done(), nil }
	rs, l := newReplicas(t, 2, callbackVendor{v})
	a, b = rs[0], rs[1]
	j, err := a.engine.Submit(context.Background(), alice, engine.ChatRef{Platform: "test", ChatID: "c1"}, engine.Request{Kind: engine.KindDraw, Prompt: "a fox", Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if got := l.holderOf(j.ID); got != "a" {
		t.Fatalf("job held by %q, want its creator a", got)
	}
	waitState(t, a.store.DB, j.ID, engine.StateSubmitted)
	j, _ = a.store.Job(context.Background(), j.ID)
	return v, a, b, j
}

// TestLeaseCallbackElsewhereWriteFails: the replica a callback lands on
// cannot record the verdict (its database write fails). The holder is
// woken anyway and asks the vendor at once, instead of waiting for its
// timer with the verdict lost.
func TestLeaseCallbackElsewhereWriteFails(t *testing.T) {
	v, a, b, j := callbackElsewhere(t)
	b.store.failUpdates.Store(1)
	if _, _, err := b.engine.HandleCallback(context.Background(), "v", j.ID, j.CallbackToken, []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if got := a.notify.wait(t); got.ID != j.ID || b.notify.count(j.ID) != 0 {
		t.Fatalf("posted by the wrong replica: a %d, b %d", a.notify.count(j.ID), b.notify.count(j.ID))
	}
	if n := v.queries.Load(); n != 1 {
		t.Fatalf("%d polls, want the holder's one", n)
	}
}

// TestLeaseCallbackElsewhereNoticeLost: the holder's listener misses the
// notice (it was reconnecting). Its next lease renewal learns of the
// wake-up, and it posts the picture without a poll.
func TestLeaseCallbackElsewhereNoticeLost(t *testing.T) {
	v, a, b, j := callbackElsewhere(t)
	a.store.deaf.Store(true)
	if _, _, err := b.engine.HandleCallback(context.Background(), "v", j.ID, j.CallbackToken, []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if got := a.notify.wait(t); got.ID != j.ID || b.notify.count(j.ID) != 0 {
		t.Fatalf("posted by the wrong replica: a %d, b %d", a.notify.count(j.ID), b.notify.count(j.ID))
	}
	if n := v.queries.Load(); n != 0 {
		t.Fatalf("%d polls: the holder was not woken", n)
	}
}

// TestLeaseCallbackElsewhereWakeFails: the wake-up itself fails. The
// callback is refused, so the vendor calls again, and the repeated call
// (the verdict is stored already) wakes the holder.
func TestLeaseCallbackElsewhereWakeFails(t *testing.T) {
	v, a, b, j := callbackElsewhere(t)
	b.store.failWakes.Store(1)
	if _, _, err := b.engine.HandleCallback(context.Background(), "v", j.ID, j.CallbackToken, []byte(`{}`)); err == nil {
		t.Fatal("callback acknowledged though its holder was not woken")
	}
	if _, _, err := b.engine.HandleCallback(context.Background(), "v", j.ID, j.CallbackToken, []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if got := a.notify.wait(t); got.ID != j.ID || b.notify.count(j.ID) != 0 {
		t.Fatalf("posted by the wrong replica: a %d, b %d", a.notify.count(j.ID), b.notify.count(j.ID))
	}
	if n := v.queries.Load(); n != 0 {
		t.Fatalf("%d polls: the holder was not woken", n)
	}
}

// TestLeaseTakeover: a replica dies with a job at the vendor; another
// claims it once the lease runs out and carries it on to the post.
func TestLeaseTakeover(t *testing.T) {
	v := newVendor("v")
	hold := make(chan struct{})
	var first atomic.Bool
	v.query = func(j *engine.Job) (*engine.Outcome, error) {
		if first.CompareAndSwap(false, true) {
			<-hold // the first replica's poll never returns in time
		}
		return done(), nil
	}
	rs, l := newReplicas(t, 2, v)
	defer close(hold)
	a, b := rs[0], rs[1]
	j, err := a.engine.Submit(context.Background(), alice, engine.ChatRef{Platform: "test", ChatID: "c1"}, engine.Request{Kind: engine.KindDraw, Prompt: "a fox", Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	for v.queries.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	a.store.dead.Store(true) // a stops renewing: it was killed
	killed := time.Now()
	got := b.notify.wait(t)
	if got.ID != j.ID {
		t.Fatalf("b posted %s", got.ID)
	}
	if d := time.Since(killed); d > 5*time.Second {
		t.Fatalf("taken over after %s", d)
	}
	if h := l.holderOf(j.ID); h != "b" && h != "" {
		t.Fatalf("holder %q after the takeover", h)
	}
	if n := a.notify.count(j.ID); n != 0 {
		t.Fatalf("the dead replica posted %d times", n)
	}
}

func waitState(t *testing.T, db *store.DB, id string, s engine.State) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if j, err := db.Job(context.Background(), id); err == nil && j.State == s {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatalf("job %s never %s", id, s)
}

// TestLeaseClaimWhileWorking: jobs claimed while the workers run (jobs no
// replica holds, due at once) are all carried on, none dropped by a worker
// that took it before it was tracked.
func TestLeaseClaimWhileWorking(t *testing.T) {
	v := newVendor("v")
	rs, _ := newReplicas(t, 1, v, slowObserver{})
	r := rs[0]
	const n = 60
	ids := map[string]bool{}
	for i := range n {
		j := &engine.Job{ID: fmt.Sprintf("orphan%02d", i), Owner: alice, Chat: engine.ChatRef{Platform: "test", ChatID: "c1"},
			Request: engine.Request{Kind: engine.KindDraw, Prompt: "a fox", Seed: 1}, State: engine.StateQueued,
			CreatedAt: time.Now(), Deadline: time.Now().Add(time.Minute), CallbackToken: "t"}
		// Written straight to the store, unleased: a dead replica's jobs.
		if err := r.store.DB.CreateJob(context.Background(), j, nil); err != nil {
			t.Fatal(err)
		}
		ids[j.ID] = true
	}
	deadline := time.After(15 * time.Second)
	for len(ids) > 0 {
		select {
		case j := <-r.notify.ended:
			delete(ids, j.ID)
		case <-deadline:
			t.Fatalf("%d of %d claimed jobs never delivered", len(ids), n)
		}
	}
}

// slowObserver takes its time over each admitted job, as a busy process may.
type slowObserver struct{}

func (slowObserver) Admitted(*engine.Job)                       { time.Sleep(time.Millisecond) }
func (slowObserver) Refused(string)                             {}
func (slowObserver) Moved(*engine.Job, engine.State)            {}
func (slowObserver) Billed(string, int)                         {}
func (slowObserver) DeliveryStarted(*engine.Job, time.Duration) {}

// TestLeaseHeldNotStepped: a replica holds the lease of a job it does not
// step (it forgot the job: a step that gave up, a takeover race), so its
// renewals keep every other replica off the job for good. Seen in
// TestReplicasKill and TestReplicasRandomKills: jobs left unfinished, their
// lease renewed by a live replica. A lease held and not stepped at two
// renewals in a row is given back, and the job is carried on.
func TestLeaseHeldNotStepped(t *testing.T) {
	v := newVendor("v")
	var ready atomic.Bool
	v.query = func(*engine.Job) (*engine.Outcome, error) {
		if !ready.Load() {
			return &engine.Outcome{State: engine.TaskRunning}, nil
		}
		return done(), nil
	}
	rs, l := newReplicas(t, 2, v)
	a, b := rs[0], rs[1]
	j, err := b.engine.Submit(context.Background(), alice, engine.ChatRef{Platform: "test", ChatID: "c1"}, engine.Request{Kind: engine.KindDraw, Prompt: "a fox", Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	waitState(t, b.store.DB, j.ID, engine.StateSubmitted)
	// The lease moves to a, which never tracked the job; b, at its next
	// renewal, drops the job as lost to another replica.
	l.mu.Lock()
	l.holder[j.ID], l.until[j.ID] = "a", time.Now().Add(l.ttl)
	l.mu.Unlock()
	time.Sleep(2 * l.ttl) // b's renewals have passed: it stepped the job last while it held it
	ready.Store(true)
	deadline := time.Now().Add(10 * time.Second)
	for a.notify.count(j.ID)+b.notify.count(j.ID) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("job %s never delivered: held by %q, renewed and not stepped", j.ID, l.holderOf(j.ID))
		}
		time.Sleep(5 * time.Millisecond)
	}
	if n := a.notify.count(j.ID) + b.notify.count(j.ID); n != 1 {
		t.Fatalf("posted %d times", n)
	}
}

// TestLeaseCallbackNamesDeadHoldersTask: a replica dies after the vendor
// took its submission and before the answer was recorded; the vendor's
// callback for the task lands on another replica while the dead one's lease
// still runs. The callback is answered once, so the task it names is noted
// on the job's marker and the replica that takes the job over records it,
// with no second task. Before, the callback was dropped there (a queued job
// is at no vendor) and the taker, unable to find the task, made another
// (replicasResubmitFixed in TestReplicasRandomKills: the list search ran
// 40 s after the task, beyond the pages it reads).
func TestLeaseCallbackNamesDeadHoldersTask(t *testing.T) {
	v := newVendor("v")
	v.timing = engine.Timing{First: 10 * time.Millisecond, Every: time.Hour, Max: 10 * time.Millisecond, Billed: true}
	lost := make(chan struct{})
	defer close(lost)
	var first atomic.Bool
	v.submit = func(j *engine.Job, _ engine.Task) (string, error) {
		if first.CompareAndSwap(false, true) {
			<-lost // the vendor made the task; its answer never comes back
			return "", context.Canceled
		}
		return "second-task", nil
	}
	v.parse = func(j *engine.Job, body []byte) (*engine.Outcome, error) {
		return &engine.Outcome{TaskID: "vendor-task-1", State: engine.TaskRunning}, nil
	}
	rs, l := newReplicas(t, 2, callbackVendor{v})
	a, b := rs[0], rs[1]
	j, err := a.engine.Submit(context.Background(), alice, engine.ChatRef{Platform: "test", ChatID: "c1"}, engine.Request{Kind: engine.KindDraw, Prompt: "a fox", Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	for v.submits.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	a.store.dead.Store(true) // killed with the call under way
	stored, _ := a.store.Job(context.Background(), j.ID)
	if stored.Submitting == nil || l.holderOf(j.ID) != "a" {
		t.Fatalf("marker %v, holder %q: want a's marker and lease", stored.Submitting, l.holderOf(j.ID))
	}
	if _, _, err := b.engine.HandleCallback(context.Background(), "v", j.ID, stored.CallbackToken, []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, _ := b.store.Job(context.Background(), j.ID)
		if got.TaskID != "" {
			if got.TaskID != "vendor-task-1" || v.submits.Load() != 1 {
				t.Fatalf("recorded task %q after %d submissions, want the callback's vendor-task-1 after 1", got.TaskID, v.submits.Load())
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no task recorded; %d submissions", v.submits.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
}
