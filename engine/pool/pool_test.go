package pool_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/picbot/picbot/engine"
	"github.com/picbot/picbot/engine/pool"
	"github.com/picbot/picbot/engine/showapi"
	"github.com/picbot/picbot/engine/zhiqite"
	"github.com/picbot/picbot/engine/zhiqite/zhiqitetest"
	"github.com/picbot/picbot/quota"
	"github.com/picbot/picbot/store"
)

type notifier struct{ done chan *engine.Job }

func (n notifier) Progress(context.Context, *engine.Job, engine.Progress) {}
func (n notifier) Deliver(_ context.Context, j *engine.Job) error         { n.done <- j; return nil }

type obs struct {
	mu     sync.Mutex
	billed map[string]int
	parked []string
}

func (o *obs) AccountBilled(v, a string, n int) { o.mu.Lock(); o.billed[v+"/"+a] += n; o.mu.Unlock() }
func (o *obs) AccountParked(v, a, r string) {
	o.mu.Lock()
	o.parked = append(o.parked, a+":"+r)
	o.mu.Unlock()
}

// rig is the real engine, store and quota over a pool of two Zhiqite
// accounts, each a fake of its own that knows only its own app code.
type rig struct {
	fakes  map[string]*zhiqitetest.Server
	db     *store.DB
	engine *engine.Engine
	done   chan *engine.Job
	obs    *obs
	now    atomic.Pointer[time.Time]
	pick   atomic.Int64 // what Rand returns
	pv     engine.Vendor
}

func newRig(t *testing.T, limits map[string]int) *rig { return newRigConc(t, limits, 0) }

// newRigConc is newRig with each account's concurrency conc.
func newRigConc(t *testing.T, limits map[string]int, conc int) *rig {
	t.Helper()
	r := &rig{fakes: map[string]*zhiqitetest.Server{}, done: make(chan *engine.Job, 20), obs: &obs{billed: map[string]int{}}}
	start := time.Now()
	r.now.Store(&start)
	dir := t.TempDir()
	var err error
	if r.db, err = store.Open(filepath.Join(dir, "db"), store.Options{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.db.Close() })
	blobs, err := store.OpenBlobs(filepath.Join(dir, "blobs"), 0)
	if err != nil {
		t.Fatal(err)
	}
	qc := quota.DefaultConfig()
	qc.Default = quota.Tier{Daily: 100, Concurrent: 20}
	q, err := quota.New(qc, r.db, nil)
	if err != nil {
		t.Fatal(err)
	}
	no := false
	var accounts []pool.Account
	for _, name := range []string{"a", "b"} {
		f := zhiqitetest.New(zhiqitetest.Options{AppCode: "code-" + name, Duration: 150 * time.Millisecond})
		t.Cleanup(f.Close)
		r.fakes[name] = f
		v, err := zhiqite.New(zhiqite.Config{BaseURL: f.URL, AppCode: "code-" + name, Callbacks: &no,
			DrawDuration: 100 * time.Millisecond, PollEvery: 50 * time.Millisecond, PollMax: 100 * time.Millisecond}, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		accounts = append(accounts, pool.Account{Name: name, Vendor: v, Weight: 1, DailyLimit: limits[name], Concurrency: conc})
	}
	pv, err := pool.New(pool.Config{
		Exhausted: func(err error) bool { return errors.Is(err, zhiqite.ErrQuotaExhausted) },
		Store:     r.db, Obs: r.obs, ExhaustedFor: time.Hour,
		Now:  func() time.Time { return *r.now.Load() },
		Rand: func(n int) int { return int(r.pick.Load()) % n },
	}, accounts...)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := pv.(engine.IdempotentSubmitter); !ok {
		t.Fatal("a pool of Zhiqite accounts lost SubmitIdempotent")
	}
	if _, ok := pv.(engine.TaskFinder); !ok {
		t.Fatal("a pool of Zhiqite accounts lost FindTask")
	}
	if l, ok := pv.(engine.LookupFirst); !ok || !l.LookupFirst(&engine.Job{Account: "b", Submitting: &engine.Submitting{Account: "a"}}) {
		t.Fatal("a pool of Zhiqite accounts lost LookupFirst: a lost submission would be sent again, not looked up")
	}
	r.engine = engine.New(engine.Config{Workers: 4, Routes: map[engine.Kind][]string{engine.KindDraw: {zhiqite.Name}},
		BreakerFailures: 100}, r.db, q, blobs, notifier{r.done}, pv)
	if err := r.engine.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.engine.Stop(context.Background()) })
	r.pv = pv
	return r
}

func (r *rig) draw(t *testing.T, prompt string) *engine.Job {
	t.Helper()
	j, err := r.engine.Submit(context.Background(), engine.UserRef{Platform: "t", ID: "u"}, engine.ChatRef{Platform: "t", ChatID: "c"},
		engine.Request{Kind: engine.KindDraw, Prompt: prompt, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func (r *rig) wait(t *testing.T) *engine.Job {
	t.Helper()
	select {
	case j := <-r.done:
		return j
	case <-time.After(30 * time.Second):
		t.Fatal("no job ended in 30s")
	}
	return nil
}

// calledWith reports whether fake f was sent anything naming id.
func calledWith(f *zhiqitetest.Server, id string) (submits, queries int) {
	for _, c := range f.Calls() {
		if !bytes.Contains(c.Body, []byte(id)) {
			continue
		}
		switch c.Endpoint {
		case "saas/sd/v2/text2image":
			submits++
		case "saas/sd/v2/queryTaskInfo":
			queries++
		}
	}
	return
}

// Each task is created, queried and billed on the account picked for it,
// and the account is stored on the job.
func TestTasksFollowTheirAccount(t *testing.T) {
	r := newRig(t, nil)
	want := map[string]string{}
	for i, acct := range []string{"a", "b", "b", "a"} {
		r.pick.Store(map[string]int64{"a": 0, "b": 1}[acct])
		j := r.draw(t, "fox")
		want[j.ID] = acct
		// One at a time, so each submission sees the pick meant for it.
		got := r.wait(t)
		if got.State != engine.StateSucceeded || got.Account != acct {
			t.Fatalf("job %d: state %s on account %q, want succeeded on %q (%+v)", i, got.State, got.Account, acct, got.Err)
		}
	}
	for id, acct := range want {
		other := map[string]string{"a": "b", "b": "a"}[acct]
		if s, q := calledWith(r.fakes[acct], id); s != 1 || q == 0 {
			t.Errorf("job %s on %s: %d submissions and %d queries there", id, acct, s, q)
		}
		if s, q := calledWith(r.fakes[other], id); s+q != 0 {
			t.Errorf("job %s reached the other account %s: %d submissions, %d queries", id, other, s, q)
		}
		stored, _ := r.engine.Job(context.Background(), id)
		if stored.Account != acct {
			t.Errorf("job %s stored account %q, want %q", id, stored.Account, acct)
		}
	}
	st := pool.Stats(r.pv)
	if len(st) != 2 || st[0].Billed != int64(r.fakes["a"].Billed()) || st[1].Billed != int64(r.fakes["b"].Billed()) {
		t.Fatalf("spend %+v, fakes billed a %d b %d", st, r.fakes["a"].Billed(), r.fakes["b"].Billed())
	}
	if r.obs.billed["zhiqite/a"] != r.fakes["a"].Billed() {
		t.Fatalf("observer %v, fake a billed %d", r.obs.billed, r.fakes["a"].Billed())
	}
}

// An account answering 403 Quota Exhausted is parked: the job goes to the
// other; past the park, the account is tried again and used once it answers.
func TestParkOnExhaustionAndReturn(t *testing.T) {
	r := newRig(t, nil)
	r.fakes["a"].SetQuota(0)
	r.pick.Store(0) // always a, while a can take it
	j := r.draw(t, "fox")
	got := r.wait(t)
	if got.ID != j.ID || got.State != engine.StateSucceeded || got.Account != "b" {
		t.Fatalf("job on %q in state %s, want succeeded on b", got.Account, got.State)
	}
	if len(r.obs.parked) != 1 || r.obs.parked[0] != "a:exhausted" {
		t.Fatalf("parked %v", r.obs.parked)
	}
	if st := pool.Stats(r.pv); st[0].Reason != pool.ReasonExhausted || st[0].ParkedUntil.IsZero() {
		t.Fatalf("stats %+v", st)
	}
	// Still parked: the next job goes to b without asking a.
	before := len(r.fakes["a"].Calls())
	r.draw(t, "cat")
	if got := r.wait(t); got.Account != "b" || len(r.fakes["a"].Calls()) != before {
		t.Fatalf("parked account asked (%d calls) or job on %q", len(r.fakes["a"].Calls())-before, got.Account)
	}
	// The package is topped up and the park ends: a takes work again.
	r.fakes["a"].SetQuota(-1)
	later := r.now.Load().Add(2 * time.Hour)
	r.now.Store(&later)
	r.draw(t, "owl")
	if got := r.wait(t); got.State != engine.StateSucceeded || got.Account != "a" {
		t.Fatalf("after the park: on %q, %s", got.Account, got.State)
	}
	if st := pool.Stats(r.pv); !st[0].ParkedUntil.IsZero() {
		t.Fatalf("a still parked: %+v", st[0])
	}
}

// An account past its daily limit takes no new task until the day ends.
func TestDailyLimit(t *testing.T) {
	r := newRig(t, map[string]int{"a": 1})
	r.pick.Store(0)
	r.draw(t, "fox")
	if got := r.wait(t); got.Account != "a" {
		t.Fatalf("first on %q", got.Account)
	}
	r.draw(t, "cat") // a has spent its 1 call (and more: the polls)
	if got := r.wait(t); got.Account != "b" {
		t.Fatalf("second on %q, want b: a is past its limit", got.Account)
	}
	if r.obs.parked[len(r.obs.parked)-1] != "a:daily_limit" {
		t.Fatalf("parked %v", r.obs.parked)
	}
}

// The weighted choice, and none when every account is parked.
func TestPickByWeight(t *testing.T) {
	v := func(name string) engine.Vendor {
		z, _ := zhiqite.New(zhiqite.Config{AppCode: name}, nil, nil)
		return z
	}
	var n int
	p, err := pool.New(pool.Config{Rand: func(total int) int {
		if total != 4 {
			t.Fatalf("total weight %d, want 4", total)
		}
		return n
	}}, pool.Account{Name: "a", Vendor: v("a"), Weight: 1}, pool.Account{Name: "b", Vendor: v("b"), Weight: 3})
	if err != nil {
		t.Fatal(err)
	}
	for n = 0; n < 4; n++ {
		got, err := p.(engine.AccountPool).PickAccount(&engine.Job{})
		if want := map[int]string{0: "a", 1: "b", 2: "b", 3: "b"}[n]; err != nil || got != want {
			t.Errorf("rand %d: %q %v, want %s", n, got, err, want)
		}
	}
	if _, err := pool.New(pool.Config{}, pool.Account{Name: "a", Vendor: v("a")}, pool.Account{Name: "a", Vendor: v("b")}); err == nil {
		t.Error("two accounts of one name accepted")
	}
}

// A park outlives a restart: the pool built again over the same store
// still keeps the exhausted account out until its park ends.
func TestParkSurvivesRestart(t *testing.T) {
	db, err := store.Open(filepath.Join(t.TempDir(), "db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	f := zhiqitetest.New(zhiqitetest.Options{AppCode: "code-a", MoreAppCodes: []string{"code-b"}})
	defer f.Close()
	f.SetQuota(0)
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	build := func() engine.Vendor {
		var accts []pool.Account
		for _, n := range []string{"a", "b"} {
			v, err := zhiqite.New(zhiqite.Config{BaseURL: f.URL, AppCode: "code-" + n}, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			accts = append(accts, pool.Account{Name: n, Vendor: v})
		}
		p, err := pool.New(pool.Config{Store: db, Now: func() time.Time { return now }, Rand: func(int) int { return 0 },
			Exhausted: func(err error) bool { return errors.Is(err, zhiqite.ErrQuotaExhausted) }}, accts...)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	p := build()
	j := &engine.Job{ID: "j1", Account: "a", Request: engine.Request{Kind: engine.KindDraw, Prompt: "fox", Width: 512, Height: 512, Steps: 20, N: 1, Seed: 1, Guidance: 7}}
	if _, err := p.Submit(context.Background(), j, engine.Task{ID: "j1-1"}); !errors.Is(err, engine.ErrNotTaken) {
		t.Fatalf("exhausted submit: %v", err)
	}
	p = build()
	if got, err := p.(engine.AccountPool).PickAccount(j); err != nil || got != "b" {
		t.Fatalf("after a restart: %q %v, want b (a parked)", got, err)
	}
	now = now.Add(2 * time.Hour)
	p = build()
	if got, _ := p.(engine.AccountPool).PickAccount(j); got != "a" {
		t.Fatalf("after the park: %q, want a", got)
	}
}

// TestAccountConcurrency: two accounts of concurrency 1 each hold at most
// one task each, two in all; the pool picks the account with a free slot,
// and every job is done in the end.
func TestAccountConcurrency(t *testing.T) {
	r := newRigConc(t, nil, 1)
	if n := r.pv.(engine.AccountLimits).AccountSlots(); n != 2 {
		t.Fatalf("pool slots %d, want 2", n)
	}
	var ids []string
	for range 6 {
		ids = append(ids, r.draw(t, "fox").ID)
	}
	ctx := context.Background()
	stop := make(chan struct{})
	worst := make(chan map[string]int, 1)
	go func() {
		// The jobs as stored: each account's tasks not finished yet.
		most := map[string]int{}
		for {
			at := map[string]int{}
			for _, id := range ids {
				if j, err := r.engine.Job(ctx, id); err == nil && j.State.AtVendor() && len(j.Pending) == 0 {
					at[j.Account]++
				}
			}
			for a, n := range at {
				most[a] = max(most[a], n)
			}
			for _, q := range r.engine.Queues() {
				most["held"] = max(most["held"], q.Held)
			}
			select {
			case <-stop:
				worst <- most
				return
			case <-time.After(3 * time.Millisecond):
			}
		}
	}()
	used := map[string]bool{}
	for range ids {
		j := r.wait(t)
		if j.State != engine.StateSucceeded {
			t.Fatalf("job %s: %s %+v", j.ID, j.State, j.Err)
		}
		used[j.Account] = true
	}
	close(stop)
	most := <-worst
	if most["a"] > 1 || most["b"] > 1 || most["held"] > 2 {
		t.Fatalf("tasks at once: %v, want at most 1 an account, 2 in all", most)
	}
	if most["held"] < 2 || !used["a"] || !used["b"] {
		t.Fatalf("tasks at once %v, accounts used %v: both accounts should have worked together", most, used)
	}
}

// TestPickFreeAccount: an account with its slot taken is not picked; a
// released slot is picked again; with none free the answer is EUNAVAILABLE.
func TestPickFreeAccount(t *testing.T) {
	var accts []pool.Account
	for _, name := range []string{"a", "b"} {
		v, err := zhiqite.New(zhiqite.Config{BaseURL: "http://127.0.0.1:1/", AppCode: "code-" + name}, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		accts = append(accts, pool.Account{Name: name, Vendor: v, Concurrency: 1})
	}
	pv, err := pool.New(pool.Config{Rand: func(int) int { return 0 }}, accts...)
	if err != nil {
		t.Fatal(err)
	}
	p := pv.(engine.AccountPool)
	pick := func(id string) (string, error) { return p.PickAccount(&engine.Job{ID: id}) }
	if a, _ := pick("j1"); a != "a" {
		t.Fatalf("first pick %q, want a", a)
	}
	if a, _ := pick("j2"); a != "b" {
		t.Fatalf("second pick %q, want b (a is busy)", a)
	}
	if _, err := pick("j3"); engine.ErrorCode(err) != engine.EUNAVAILABLE {
		t.Fatalf("third pick: %v, want EUNAVAILABLE", err)
	}
	pv.(engine.AccountLimits).Released("j1")
	if a, _ := pick("j3"); a != "a" {
		t.Fatalf("after a's release: %q, want a", a)
	}
	// A restart finds j2's task at b, then j4 at a: both busy again.
	pv.(engine.AccountLimits).Released("j2")
	pv.(engine.AccountLimits).Holding("j2", "b")
	if _, err := pick("j4"); engine.ErrorCode(err) != engine.EUNAVAILABLE {
		t.Fatalf("with both held: %v, want EUNAVAILABLE", err)
	}
	if _, err := pool.New(pool.Config{}, accts[0], pool.Account{Name: "c", Vendor: accts[1].Vendor}); err == nil {
		t.Fatal("a pool with one account limited and one not was accepted")
	}
}

// wakerVendor is a ShowAPI account that records the wake it is handed.
type wakerVendor struct {
	*showapi.Vendor
	wake func(string)
}

func (w *wakerVendor) SetWake(f func(string)) { w.wake = f }

// A pool hands the engine's wake to each account that takes one (ShowAPI's
// list reads wake the jobs they settle), or their results wait for a poll.
func TestPoolPassesWake(t *testing.T) {
	v, err := showapi.New(showapi.Config{BaseURL: "http://127.0.0.1:1", AppCode: "x"}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	a, b := &wakerVendor{Vendor: v}, &wakerVendor{Vendor: v}
	pv, err := pool.New(pool.Config{}, pool.Account{Name: "a", Vendor: a, Weight: 1}, pool.Account{Name: "b", Vendor: b, Weight: 1})
	if err != nil {
		t.Fatal(err)
	}
	w, ok := pv.(engine.Waker)
	if !ok {
		t.Fatal("the pool is no engine.Waker")
	}
	var woke []string
	w.SetWake(func(id string) { woke = append(woke, id) })
	if a.wake == nil || b.wake == nil {
		t.Fatal("an account was not handed the wake")
	}
	a.wake("j1")
	b.wake("j2")
	if len(woke) != 2 || woke[0] != "j1" || woke[1] != "j2" {
		t.Errorf("woke %v", woke)
	}
}
