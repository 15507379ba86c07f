package engine_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/picbot/picbot/engine"
)

// blockingQuery makes v's first poll block until release is closed, and
// tells polling when it has started. Later polls say the task runs.
func blockingQuery(v *fakeVendor) (polling, release chan struct{}) {
	polling, release = make(chan struct{}), make(chan struct{})
	var once sync.Once
	v.query = func(*engine.Job) (*engine.Outcome, error) {
		first := false
		once.Do(func() { first = true })
		if !first {
			return &engine.Outcome{State: engine.TaskRunning}, nil
		}
		close(polling)
		<-release
		return done(), nil // stale by then: must change nothing
	}
	return polling, release
}

// promptly runs f and fails the test if it has not returned within a
// generous bound while the job's poll is blocked; then it unblocks the poll.
func promptly(t *testing.T, release chan struct{}, what string, f func()) {
	t.Helper()
	finished := make(chan struct{})
	go func() { defer close(finished); f() }()
	select {
	case <-finished:
	case <-time.After(5 * time.Second):
		close(release)
		<-finished
		t.Fatalf("%s waited for the job's blocked poll", what)
	}
}

// A callback for a job whose poll is blocked at the vendor is applied at
// once; the poll's result, arriving later, is dropped but its bill kept.
func TestCallbackNotBehindPoll(t *testing.T) {
	v := callbackVendor{newVendor("cb")}
	v.timing.First, v.timing.Max = time.Millisecond, time.Millisecond // a safety poll soon
	polling, release := blockingQuery(v.fakeVendor)
	v.parse = func(*engine.Job, []byte) (*engine.Outcome, error) { return done(), nil }
	h := newHarness(t, engine.Config{PublicURL: "http://bot.example"}, v)
	j := h.submit(t)
	<-polling
	promptly(t, release, "HandleCallback", func() {
		if _, _, err := h.engine.HandleCallback(context.Background(), "cb", j.ID, j.CallbackToken, []byte("ok")); err != nil {
			t.Error(err)
		}
	})
	if got := h.job(t, j.ID); len(got.Pending) != 1 || got.State != engine.StateRunning {
		t.Fatalf("callback not applied while the poll is blocked: %s pending %d", got.State, len(got.Pending))
	}
	close(release)
	h.notify.wait(t)
	h.waitFinished(t, j.ID)
	h.engine.Stop(context.Background()) // the stale poll's step has ended
	got := h.job(t, j.ID)
	if n := h.notify.count(j.ID); n != 1 || got.State != engine.StateDelivered {
		t.Fatalf("delivered %d times, state %s; want once, delivered", n, got.State)
	}
	if got.BilledCalls != 2 { // the submit and the stale poll
		t.Fatalf("billed %d, want 2", got.BilledCalls)
	}
}

// Cancel of a job whose poll is blocked returns at once; the poll's result
// afterwards does not bring the job back.
func TestCancelNotBehindPoll(t *testing.T) {
	v := newVendor("v")
	polling, release := blockingQuery(v)
	h := newHarness(t, engine.Config{}, v)
	j := h.submit(t)
	<-polling
	var got *engine.Job
	promptly(t, release, "Cancel", func() {
		var err error
		if got, err = h.engine.Cancel(context.Background(), j.ID, alice, false); err != nil {
			t.Error(err)
		}
	})
	if got == nil || got.State != engine.StateCancelled || got.Charge.Settled != engine.ChargeCommitted {
		t.Fatalf("cancelled: %+v", got)
	}
	close(release)
	if ended := h.notify.wait(t); ended.State != engine.StateCancelled {
		t.Fatalf("told %s", ended.State)
	}
	h.waitFinished(t, j.ID)
	h.engine.Stop(context.Background())
	final := h.job(t, j.ID)
	if n := h.notify.count(j.ID); n != 1 || final.State != engine.StateCancelled || len(final.Pending) != 0 || len(final.Results) != 0 {
		t.Fatalf("after the stale poll: told %d times, %s, pending %d, results %d", n, final.State, len(final.Pending), len(final.Results))
	}
	if final.BilledCalls != 2 {
		t.Fatalf("billed %d, want 2 (submit and the stale poll)", final.BilledCalls)
	}
}

// fakeClock is wall time plus an offset a test moves forward.
type fakeClock struct{ offset atomic.Int64 }

func (c *fakeClock) Now() time.Time      { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *fakeClock) Add(d time.Duration) { c.offset.Add(int64(d)) }

// A platform that asks to wait (Later) has the post tried again after that
// wait, with no attempt counted, and the only worker meanwhile delivers others.
func TestDeliverLater(t *testing.T) {
	clock := &fakeClock{}
	v := newVendor("v")
	h := newHarness(t, engine.Config{Workers: 1, Now: clock.Now}, v)
	var slowID atomic.Value
	slowID.Store("")
	told := make(chan struct{})
	var calls atomic.Int32
	h.notify.fail = func(j *engine.Job) error {
		if j.ID != slowID.Load().(string) {
			return nil
		}
		if calls.Add(1) == 1 {
			close(told)
			return &engine.Later{After: time.Hour}
		}
		return nil
	}
	a := h.submit(t)
	slowID.Store(a.ID)
	<-told
	b := h.submit(t)
	if first := h.notify.wait(t); first.ID != b.ID {
		t.Fatalf("first delivered %s, want the second job %s", first.ID, b.ID)
	}
	if got := h.job(t, a.ID); got.State != engine.StateSucceeded || got.DeliveryAttempts != 0 {
		t.Fatalf("waiting job: %s, %d attempts; want succeeded, 0", got.State, got.DeliveryAttempts)
	}
	if calls.Load() != 1 {
		t.Fatalf("tried again before the wait: %d calls", calls.Load())
	}
	clock.Add(time.Hour + time.Second)
	h.engine.WakeScheduler()
	if again := h.notify.wait(t); again.ID != a.ID {
		t.Fatalf("delivered %s, want %s", again.ID, a.ID)
	}
	if got := h.waitFinished(t, a.ID); got.State != engine.StateDelivered || got.DeliveryAttempts != 0 {
		t.Fatalf("%s with %d attempts; want delivered with 0", got.State, got.DeliveryAttempts)
	}
}

// A restart leaves jobs waiting for a callback on their own schedule: no
// poll at once, each due when its last step said.
func TestResumeKeepsSchedule(t *testing.T) {
	clock := &fakeClock{}
	v := callbackVendor{newVendor("cb")}
	v.timing.First = time.Hour // the safety poll is far away
	v.query = func(*engine.Job) (*engine.Outcome, error) { return &engine.Outcome{State: engine.TaskRunning}, nil }
	h := newHarness(t, engine.Config{PublicURL: "http://bot.example", Now: clock.Now, JobTimeout: 24 * time.Hour}, v)
	var ids []string
	for range 5 {
		ids = append(ids, h.submit(t).ID)
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, id := range ids {
		for j := h.job(t, id); j.State != engine.StateSubmitted || j.NextAt.IsZero(); j = h.job(t, id) {
			if time.Now().After(deadline) {
				t.Fatalf("job %s not submitted with a next step: %+v", id, j)
			}
			time.Sleep(time.Millisecond)
		}
	}
	h.engine.Stop(context.Background())
	h.start(t, v)
	for _, id := range ids {
		// Due when stored, or as much later as the restart came after the
		// submission: the safety net starts afresh (TestResumeCallbackWaitsGrace).
		want := h.job(t, id).NextAt
		if got, ok := h.engine.DueAt(id); !ok || got.Before(want) || got.Sub(want) > 10*time.Second {
			t.Fatalf("job %s due at %v (%v), want its stored %v", id, got, ok, want)
		}
	}
	h.engine.Stop(context.Background())
	if n := v.queries.Load(); n != 0 {
		t.Fatalf("%d polls after the restart, want 0", n)
	}
}

// Jobs at a vendor that are overdue, or from records without a schedule,
// are spread over the window; others go at once.
func TestResumeSpreadsOverdue(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	var jobs []*engine.Job
	for i := range 100 {
		j := &engine.Job{ID: fmt.Sprint("late", i), State: engine.StateSubmitted}
		if i%2 == 0 {
			j.NextAt = now.Add(-time.Minute) // overdue; the others are older records
		}
		jobs = append(jobs, j)
	}
	jobs = append(jobs,
		&engine.Job{ID: "queued", State: engine.StateQueued, NextAt: now.Add(time.Hour)},
		&engine.Job{ID: "post", State: engine.StateSucceeded},
		&engine.Job{ID: "fetch", State: engine.StateRunning, Pending: []engine.Remote{{URL: "x"}}, NextAt: now.Add(time.Hour)},
		&engine.Job{ID: "future", State: engine.StateRunning, NextAt: now.Add(time.Hour)})
	at := engine.ResumeTimes(jobs, now, 30*time.Second)
	for _, id := range []string{"queued", "post", "fetch"} {
		if !at[id].Equal(now) {
			t.Fatalf("%s at %v, want now", id, at[id].Sub(now))
		}
	}
	if !at["future"].Equal(now.Add(time.Hour)) {
		t.Fatalf("future at %v", at["future"].Sub(now))
	}
	seen := map[time.Time]bool{}
	for i := range 100 {
		d := at[fmt.Sprint("late", i)].Sub(now)
		if d < 0 || d >= time.Second {
			t.Fatalf("late%d at %v, want within the 1 s window", i, d)
		}
		seen[at[fmt.Sprint("late", i)]] = true
	}
	if len(seen) != 100 {
		t.Fatalf("100 overdue jobs at %d distinct times", len(seen))
	}
	if at := engine.ResumeTimes(jobs[:100], now, 200*time.Millisecond); at["late99"].Sub(now) >= 200*time.Millisecond {
		t.Fatalf("window not capped: %v", at["late99"].Sub(now))
	}
}

// A job waiting for a callback whose safety-net poll falls due just after
// a restart waits the grace first: its vendor's retry of a callback that
// failed while the bot was down comes on the vendor's schedule, and a poll
// a few milliseconds before it is billed for nothing (the crash suite saw
// ShowAPI's restart polls answered, then the retry 100 ms later). A job
// polling keeps its schedule, as does a callback job due after the grace.
func TestResumeCallbackWaitsGrace(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	const grace = 900 * time.Millisecond
	jobs := []*engine.Job{
		{ID: "soon", State: engine.StateSubmitted, Callback: true, NextAt: now.Add(10 * time.Millisecond)},
		{ID: "later", State: engine.StateSubmitted, Callback: true, NextAt: now.Add(time.Hour)},
		{ID: "overdue", State: engine.StateSubmitted, Callback: true, NextAt: now.Add(-time.Minute)},
		{ID: "polling", State: engine.StateSubmitted, NextAt: now.Add(10 * time.Millisecond)},
	}
	at := engine.ResumeTimesGrace(jobs, now, 30*time.Second, grace)
	for _, id := range []string{"soon", "overdue"} {
		if d := at[id].Sub(now); d < grace || d >= grace+time.Second {
			t.Errorf("%s due %v after the start, want from the grace %v on", id, d, grace)
		}
	}
	if at["soon"].Equal(at["overdue"]) {
		t.Errorf("soon and overdue at the same instant %v: not spread", at["soon"].Sub(now))
	}
	if !at["later"].Equal(now.Add(time.Hour)) {
		t.Errorf("later due %v after the start, want its stored hour", at["later"].Sub(now))
	}
	if !at["polling"].Equal(now.Add(10 * time.Millisecond)) {
		t.Errorf("polling job due %v after the start, want its stored 10ms", at["polling"].Sub(now))
	}
}

// countingObserver counts the bot-added latency reports.
type countingObserver struct {
	engine.Observer
	started atomic.Int32
}

func (o *countingObserver) DeliveryStarted(*engine.Job, time.Duration) { o.started.Add(1) }

// A post tried again after a Later is the same delivery: the bot-added
// latency is reported once, not once per try.
func TestDeliveryStartedOnceAcrossLater(t *testing.T) {
	clock := &fakeClock{}
	obs := &countingObserver{Observer: nopObserver{}}
	h := newHarness(t, engine.Config{Workers: 1, Now: clock.Now, Observer: obs}, newVendor("v"))
	var calls atomic.Int32
	h.notify.fail = func(j *engine.Job) error {
		if calls.Add(1) <= 3 {
			clock.Add(2 * time.Second)
			return &engine.Later{After: time.Second}
		}
		return nil
	}
	j := h.submit(t)
	if got := h.waitFinished(t, j.ID); got.State != engine.StateDelivered {
		t.Fatalf("job %s, want delivered", got.State)
	}
	if calls.Load() != 4 || obs.started.Load() != 1 {
		t.Fatalf("%d posts, %d latency reports; want 4 posts, 1 report", calls.Load(), obs.started.Load())
	}
}

type nopObserver struct{}

func (nopObserver) Admitted(*engine.Job)                       {}
func (nopObserver) Refused(string)                             {}
func (nopObserver) Moved(*engine.Job, engine.State)            {}
func (nopObserver) Billed(string, int)                         {}
func (nopObserver) DeliveryStarted(*engine.Job, time.Duration) {}
