package engine_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/picbot/picbot/engine"
	"github.com/picbot/picbot/internal/testclock"
)

// flakyStore fails the first write that records a job as submitted, after
// the vendor took the task: the answer the bot must not lose.
type flakyStore struct {
	engine.Store
	armed atomic.Bool
}

var errDisk = errors.New("disk full")

func (s *flakyStore) UpdateJob(ctx context.Context, id string, fn func(j *engine.Job, c engine.Counters) error) (*engine.Job, error) {
	return s.Store.UpdateJob(ctx, id, func(j *engine.Job, c engine.Counters) error {
		if err := fn(j, c); err != nil {
			return err
		}
		if j.State == engine.StateSubmitted && s.armed.CompareAndSwap(true, false) {
			return errDisk
		}
		return nil
	})
}

// finderVendor keeps the tasks it made, as ShowAPI's task list and
// Zhiqite's own ids let the bot find them again.
type finderVendor struct {
	*fakeVendor
	mu    sync.Mutex
	tasks map[string]string // Task.ID → the vendor's id
	finds atomic.Int32
}

func newFinder(name string) *finderVendor {
	v := &finderVendor{fakeVendor: newVendor(name), tasks: map[string]string{}}
	v.submit = func(j *engine.Job, t engine.Task) (string, error) {
		v.mu.Lock()
		defer v.mu.Unlock()
		v.tasks[t.ID] = "vt-" + t.ID
		return "vt-" + t.ID, nil
	}
	return v
}

// loseFirstSubmit makes the first call of *submit fail with err, as a call
// whose answer is lost: the vendor made its task first when arrived.
func loseFirstSubmit(submit *func(*engine.Job, engine.Task) (string, error), arrived bool, err error) {
	made := *submit
	var once atomic.Bool
	*submit = func(j *engine.Job, task engine.Task) (string, error) {
		if once.CompareAndSwap(false, true) {
			if arrived {
				made(j, task)
			}
			return "", err
		}
		return made(j, task)
	}
}

// waitUncertain waits until job id's first submission, its answer lost,
// has left the job's marker (submits counts the vendor's calls).
func waitUncertain(t *testing.T, h *harness, id string, submits *atomic.Int32) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for j := h.job(t, id); j.Submitting == nil || submits.Load() != 1; j = h.job(t, id) {
		if time.Now().After(deadline) {
			t.Fatalf("no uncertain submission (%d calls): %+v", submits.Load(), j)
		}
		time.Sleep(time.Millisecond)
	}
}

func (v *finderVendor) FindTask(ctx context.Context, j *engine.Job, t engine.Task) (string, bool, error) {
	v.finds.Add(1)
	v.mu.Lock()
	defer v.mu.Unlock()
	id, ok := v.tasks[t.ID]
	return id, ok, nil
}

func (v *finderVendor) made() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.tasks)
}

// flakyHarness is a harness whose store fails one submitted write.
func flakyHarness(t *testing.T, cfg engine.Config, v engine.Vendor) (*harness, *flakyStore) {
	t.Helper()
	h := newHarness(t, cfg)
	h.engine.Stop(context.Background())
	fs := &flakyStore{Store: h.db}
	fs.armed.Store(true)
	h.cfg.Routes = map[engine.Kind][]string{engine.KindDraw: {v.Name()}}
	h.engine = engine.New(h.cfg, fs, h.quota, h.blobs, h.notify, v)
	if err := h.engine.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	e := h.engine
	t.Cleanup(func() { e.Stop(context.Background()) })
	return h, fs
}

// A store write that fails after the vendor took the task must not make a
// second task: the vendor is asked, and the job goes on with the first.
func TestStoreFailsAfterSubmit(t *testing.T) {
	v := newFinder("finder")
	h, fs := flakyHarness(t, engine.Config{}, v)
	j := h.submit(t)
	h.notify.wait(t)
	got := h.waitFinished(t, j.ID)
	if fs.armed.Load() {
		t.Fatal("the store never failed: the test tested nothing")
	}
	if n := v.submits.Load(); n != 1 || v.made() != 1 {
		t.Fatalf("%d submissions, %d tasks at the vendor; want 1 and 1", n, v.made())
	}
	if v.finds.Load() != 1 || got.State != engine.StateDelivered || got.TaskID != "vt-"+j.ID+"-1" || got.Attempts != 1 || got.Submitting != nil {
		t.Fatalf("finds %d; job %s task %q attempts %d marker %+v", v.finds.Load(), got.State, got.TaskID, got.Attempts, got.Submitting)
	}
}

// A vendor that cannot be asked follows the uncertain_submit policy.
func TestStoreFailsAfterSubmitNoFinder(t *testing.T) {
	t.Run("fail", func(t *testing.T) {
		v := newVendor("blind")
		h, _ := flakyHarness(t, engine.Config{UncertainSubmit: engine.UncertainFail}, v)
		j := h.submit(t)
		ended := h.notify.wait(t)
		got := h.waitFinished(t, j.ID)
		if v.submits.Load() != 1 || ended.State != engine.StateFailed || got.Charge.Settled != engine.ChargeRefunded || got.Err.Code != engine.EVENDOR {
			t.Fatalf("submits %d; job %s %+v %+v", v.submits.Load(), got.State, got.Charge, got.Err)
		}
	})
	t.Run("resubmit", func(t *testing.T) {
		v := newVendor("blind")
		h, _ := flakyHarness(t, engine.Config{}, v)
		j := h.submit(t)
		h.notify.wait(t)
		got := h.waitFinished(t, j.ID)
		if v.submits.Load() != 2 || got.State != engine.StateDelivered || got.Attempts != 1 {
			t.Fatalf("submits %d (want 2: the policy's one resubmission); job %s attempts %d", v.submits.Load(), got.State, got.Attempts)
		}
	})
}

// ctxVendor signals each submission and answers once the step's context ends.
type ctxVendor struct {
	*finderVendor
	submitted chan struct{}
}

func (v *ctxVendor) Submit(ctx context.Context, j *engine.Job, t engine.Task) (string, error) {
	id, err := v.finderVendor.Submit(ctx, j, t)
	v.submitted <- struct{}{}
	<-ctx.Done() // a shutdown past its timeout: the vendor took the task already
	return id, err
}

// A shutdown that cancels a step right after the vendor took the task must
// record the task, so the next start does not submit again.
func TestShutdownAfterSubmit(t *testing.T) {
	v := &ctxVendor{finderVendor: newFinder("slow"), submitted: make(chan struct{}, 1)}
	h := newHarness(t, engine.Config{}, v)
	j := h.submit(t)
	<-v.submitted
	expired, cancel := context.WithCancel(context.Background())
	cancel()
	h.engine.Stop(expired)
	if got := h.job(t, j.ID); got.State != engine.StateSubmitted || got.TaskID == "" {
		t.Fatalf("after the shutdown: %s task %q", got.State, got.TaskID)
	}
	plain := v.finderVendor.fakeVendor
	h.start(t, plain) // the same vendor name, answering at once
	h.notify.wait(t)
	got := h.waitFinished(t, j.ID)
	if n := v.submits.Load(); n != 1 || v.made() != 1 || got.State != engine.StateDelivered {
		t.Fatalf("%d submissions, %d tasks; job %s", n, v.made(), got.State)
	}
}

// A submission whose answer is lost in transit (the vendor made the task,
// the bot saw an error) is found before the job is sent again.
func TestLostAnswerFound(t *testing.T) {
	v := newFinder("finder")
	made := v.submit
	var once atomic.Bool
	v.submit = func(j *engine.Job, task engine.Task) (string, error) {
		id, _ := made(j, task)
		if once.CompareAndSwap(false, true) {
			return "", errors.New("connection reset by peer")
		}
		return id, nil
	}
	h := newHarness(t, engine.Config{}, v)
	j := h.submit(t)
	h.notify.wait(t)
	got := h.waitFinished(t, j.ID)
	if v.submits.Load() != 1 || v.finds.Load() != 1 || got.State != engine.StateDelivered || got.Attempts != 1 {
		t.Fatalf("submits %d finds %d; job %s attempts %d", v.submits.Load(), v.finds.Load(), got.State, got.Attempts)
	}
}

// pagedFinder searches by reading two billed list pages, as ShowAPI's
// FindTask does, and reports them (engine.ReportBilled).
type pagedFinder struct{ *finderVendor }

func (v pagedFinder) FindTask(ctx context.Context, j *engine.Job, t engine.Task) (string, bool, error) {
	engine.ReportBilled(ctx, 2)
	return v.finderVendor.FindTask(ctx, j, t)
}

// The search for a lost answer is billed, found or not, under the vendor
// searched: the job's record equals the vendor's own count of its calls.
func TestSearchBilled(t *testing.T) {
	for _, lost := range []bool{true, false} {
		v := pagedFinder{newFinder("finder")}
		loseFirstSubmit(&v.submit, lost, errors.New("connection reset by peer"))
		h := newHarness(t, engine.Config{}, v)
		j := h.submit(t)
		h.notify.wait(t)
		got := h.waitFinished(t, j.ID)
		// The vendor bills each task made, each search page, each query.
		billed := v.made() + 2*int(v.finds.Load()) + int(v.queries.Load())
		if got.State != engine.StateDelivered || v.finds.Load() != 1 || got.BilledCalls != billed || got.BilledBy["finder"] != billed {
			t.Fatalf("lost %v: job %s, %d searches; billed %d (%v), the vendor billed %d", lost, got.State, v.finds.Load(), got.BilledCalls, got.BilledBy, billed)
		}
	}
}

// idempotentVendor takes each task id once, as Zhiqite does: a repeat
// answers with the task it holds.
type idempotentVendor struct{ *finderVendor }

func (v *idempotentVendor) SubmitIdempotent() bool { return true }

func newIdempotent(name string) *idempotentVendor {
	v := &idempotentVendor{newFinder(name)}
	v.submit = func(j *engine.Job, t engine.Task) (string, error) {
		v.mu.Lock()
		defer v.mu.Unlock()
		if id, ok := v.tasks[t.ID]; ok {
			return id, nil // refused as a duplicate: this is the task
		}
		v.tasks[t.ID] = "vt-" + t.ID
		return "vt-" + t.ID, nil
	}
	return v
}

// A lost answer at a vendor that takes each id once is sent again under the
// same id, without a lookup first: one call, one task, whether the first
// submission arrived or not.
func TestLostAnswerSentAgainSameID(t *testing.T) {
	for _, arrived := range []bool{true, false} {
		v := newIdempotent("sameid")
		loseFirstSubmit(&v.submit, arrived, context.DeadlineExceeded) // the answer, or the call, is lost
		h := newHarness(t, engine.Config{}, v)
		j := h.submit(t)
		h.notify.wait(t)
		got := h.waitFinished(t, j.ID)
		if v.submits.Load() != 2 || v.finds.Load() != 0 || v.made() != 1 || got.State != engine.StateDelivered ||
			got.TaskID != "vt-"+j.ID+"-1" || got.Attempts != 1 {
			t.Fatalf("arrived %v: submits %d (want 2) finds %d (want 0) tasks %d; job %s task %q attempts %d",
				arrived, v.submits.Load(), v.finds.Load(), v.made(), got.State, got.TaskID, got.Attempts)
		}
	}
}

// askingVendor takes each id once and would rather be asked about a lost
// submission's task (engine.LookupFirst), as Zhiqite is by default.
type askingVendor struct{ *idempotentVendor }

func (v askingVendor) LookupFirst(*engine.Job) bool { return true }

// A lost answer a dead process left, at a vendor that would rather be
// asked, is asked about first: found, the job goes on with one lookup and
// no second submission; absent, it is sent under the same id. Before
// LookupFirst: sent again without asking (two submissions, no lookup,
// whether the first arrived).
func TestLostAnswerAskedFirst(t *testing.T) {
	for _, arrived := range []bool{true, false} {
		v := askingVendor{newIdempotent("asking")}
		loseFirstSubmit(&v.submit, arrived, context.DeadlineExceeded) // the process dies with the call
		h := newHarness(t, engine.Config{}, v)
		id := h.submit(t).ID
		waitUncertain(t, h, id, &v.submits)
		h.engine.Stop(context.Background())
		h.start(t, v)
		got := h.waitFinished(t, id)
		submits := int32(1)
		if !arrived {
			submits = 2
		}
		if v.submits.Load() != submits || v.finds.Load() != 1 || v.made() != 1 || got.State != engine.StateDelivered ||
			got.TaskID != "vt-"+id+"-1" || got.Attempts != 1 {
			t.Fatalf("arrived %v: submits %d (want %d) finds %d (want 1) tasks %d; job %s task %q attempts %d",
				arrived, v.submits.Load(), submits, v.finds.Load(), v.made(), got.State, got.TaskID, got.Attempts)
		}
		h.engine.Stop(context.Background())
	}
}

// A dead process's submission is asked about only once its task's first
// poll would be due, from when it was sent: a restart at once after the
// crash asks nothing yet (a task made would most likely still be running,
// and the answer would only prove it). Before: asked at the restart.
func TestLostAnswerAskedWhenDue(t *testing.T) {
	clock := testclock.New(time.Unix(1_700_000_000, 0))
	v := askingVendor{newIdempotent("asking")}
	v.timing = engine.Timing{First: time.Minute, Every: time.Minute, Max: time.Hour, Billed: true}
	loseFirstSubmit(&v.submit, true, context.DeadlineExceeded) // the process dies with the call
	h := newHarness(t, engine.Config{Now: clock.Now, JobTimeout: 24 * time.Hour}, v)
	id := h.submit(t).ID
	waitUncertain(t, h, id, &v.submits)
	h.engine.Stop(context.Background())
	clock.Set(clock.Now().Add(10 * time.Second))
	h.start(t, v)
	waitIdle(t, h, clock, id)
	if n := v.finds.Load(); n != 0 {
		t.Fatalf("%d lookups right after the restart, want none before the first poll is due", n)
	}
	clock.Set(h.job(t, id).Submitting.At.Add(v.timing.First))
	h.engine.WakeScheduler()
	deadline := time.Now().Add(10 * time.Second)
	for j := h.job(t, id); j.State != engine.StateSubmitted; j = h.job(t, id) {
		if time.Now().After(deadline) {
			t.Fatalf("not asked once due: %+v", j)
		}
		time.Sleep(time.Millisecond)
	}
	if v.finds.Load() != 1 || v.submits.Load() != 1 {
		t.Fatalf("finds %d (want 1), submits %d (want 1)", v.finds.Load(), v.submits.Load())
	}
	h.engine.Stop(context.Background())
}

// lateVendor times out every first submission at the bot, and makes the
// task only later, as a vendor still working on a call its client gave up
// on: the task exists from late after the timeout.
type lateVendor struct {
	*finderVendor
	late     time.Duration
	timedOut atomic.Int64 // unix nanoseconds of the first timeout
}

func (v *lateVendor) Submit(ctx context.Context, j *engine.Job, t engine.Task) (string, error) {
	if v.submits.Add(1) == 1 {
		<-ctx.Done()
		v.timedOut.Store(time.Now().UnixNano())
		return "", fmt.Errorf("lateVendor: %w", ctx.Err())
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.tasks[t.ID+"/again"] = "vt2-" + t.ID
	return "vt2-" + t.ID, nil
}

func (v *lateVendor) FindTask(ctx context.Context, j *engine.Job, t engine.Task) (string, bool, error) {
	v.finds.Add(1)
	if at := v.timedOut.Load(); at != 0 && time.Since(time.Unix(0, at)) >= v.late {
		v.mu.Lock()
		v.tasks[t.ID] = "vt-" + t.ID
		v.mu.Unlock()
	}
	return v.finderVendor.FindTask(ctx, j, t)
}

// A submission that timed out may still make its task: the vendor is asked
// only once it has had as long again as the bot waited, so a task made
// late is found, not orphaned beside a second one.
func TestTimedOutSubmitNotOrphaned(t *testing.T) {
	const timeout = 2 * time.Second
	v := &lateVendor{finderVendor: newFinder("late"), late: timeout * 4 / 5}
	h := newHarness(t, engine.Config{VendorTimeout: timeout}, v)
	j := h.submit(t)
	h.notify.wait(t)
	got := h.waitFinished(t, j.ID)
	// The late task exists whatever the bot did; a second submission is a second task.
	if n := v.submits.Load(); n != 1 || got.TaskID != "vt-"+j.ID+"-1" || got.State != engine.StateDelivered {
		t.Fatalf("%d submissions (want 1: the late task found, not made again); job %s task %q after %d finds", n, got.State, got.TaskID, v.finds.Load())
	}
}

// idempotentCallback is Zhiqite as the engine sees it: each task id taken
// once, and a callback that names the task by the id the bot chose (the
// body, here).
type idempotentCallback struct{ *idempotentVendor }

func (v idempotentCallback) ParseCallback(j *engine.Job, body []byte) (*engine.Outcome, error) {
	out := done()
	out.TaskID = string(body)
	return out, nil
}
func (v idempotentCallback) WantsCallback() bool { return true }
func (v idempotentCallback) CallbackReply() (string, []byte) {
	return "application/json", []byte(`{"code":"200"}`)
}

// A submission a dead process left uncertain at a vendor that calls back
// is not sent again at once after the restart: the vendor's callback for
// the task proves it for free, where the same-id resend costs a billed
// refusal. The bot was down for most of the task's safety-net time, and
// the vendor's retries of the callbacks that failed meanwhile come on its
// own schedule: the wait runs from the restart, not the submission (the
// crash suite saw lookups sent a few milliseconds before the retry that
// told the same for free). With no callback, it goes again once that wait is past.
func TestLostAnswerCallbackRecordsTask(t *testing.T) {
	for _, arrived := range []bool{true, false} {
		clock := testclock.New(time.Unix(1_700_000_000, 0))
		v := idempotentCallback{newIdempotent("zq")}
		v.timing = engine.Timing{First: time.Minute, Every: time.Minute, Max: time.Hour, Billed: true}
		safety := 2*v.timing.First + v.timing.Max
		loseFirstSubmit(&v.submit, arrived, context.DeadlineExceeded) // the process dies with the call
		h := newHarness(t, engine.Config{Now: clock.Now, PublicURL: "http://bot.example", JobTimeout: 24 * time.Hour}, v)
		id := h.submit(t).ID
		waitUncertain(t, h, id, &v.submits)
		h.engine.Stop(context.Background())
		restart := h.job(t, id).Submitting.At.Add(safety - time.Second)
		clock.Set(restart)
		h.start(t, v)
		waitIdle(t, h, clock, id)               // the resumed step, which must not resend yet
		clock.Set(restart.Add(2 * time.Second)) // the submission's wait is over, the restart's is not
		h.engine.WakeScheduler()
		waitIdle(t, h, clock, id)
		if n := v.submits.Load(); n != 1 {
			t.Fatalf("arrived %v: %d submissions after the restart, want 1 (the callback's chance first)", arrived, n)
		}
		j := h.job(t, id)
		if arrived {
			if _, _, err := h.engine.HandleCallback(context.Background(), "zq", id, j.CallbackToken, []byte(j.Submitting.TaskID)); err != nil {
				t.Fatal(err)
			}
		} else {
			clock.Set(restart.Add(safety))
			h.engine.WakeScheduler()
			deadline := time.Now().Add(10 * time.Second)
			for j = h.job(t, id); j.State != engine.StateSubmitted; j = h.job(t, id) {
				if time.Now().After(deadline) {
					t.Fatalf("not sent again after the task's time: %+v", j)
				}
				time.Sleep(time.Millisecond)
			}
			if _, _, err := h.engine.HandleCallback(context.Background(), "zq", id, j.CallbackToken, []byte(j.TaskID)); err != nil {
				t.Fatal(err)
			}
		}
		deadline := time.Now().Add(10 * time.Second)
		for j := h.job(t, id); !j.Finished(); j = h.job(t, id) {
			if time.Now().After(deadline) {
				t.Fatalf("arrived %v: not finished: %+v (%d submissions)", arrived, j, v.submits.Load())
			}
			time.Sleep(time.Millisecond)
		}
		got := h.job(t, id)
		wantSubmits := int32(1)
		if !arrived {
			wantSubmits = 2
		}
		if n := v.submits.Load(); n != wantSubmits || v.finds.Load() != 0 || v.made() != 1 || got.State != engine.StateDelivered || got.BilledCalls != 1 || got.TaskID != id+"-1" && arrived {
			t.Fatalf("arrived %v: %d submissions (want %d), %d finds, %d tasks; job %s task %q billed %d (want 1)",
				arrived, n, wantSubmits, v.finds.Load(), v.made(), got.State, got.TaskID, got.BilledCalls)
		}
		h.engine.Stop(context.Background())
	}
}

// finderCallback is ShowAPI as the engine sees it: the vendor names its
// tasks, can be asked (a billed search), and calls back naming the task.
type finderCallback struct{ *finderVendor }

func (v finderCallback) ParseCallback(j *engine.Job, body []byte) (*engine.Outcome, error) {
	out := done()
	out.TaskID = string(body)
	return out, nil
}
func (v finderCallback) WantsCallback() bool { return true }
func (v finderCallback) CallbackReply() (string, []byte) {
	return "application/json", []byte(`{"code":"200"}`)
}

// notingFinder is a finderVendor that keeps a note on each marker.
type notingFinder struct {
	*finderVendor
	note string
	seen chan string // the note FindTask found on the marker
}

func (v notingFinder) MarkNote() string { return v.note }

func (v notingFinder) FindTask(ctx context.Context, j *engine.Job, t engine.Task) (string, bool, error) {
	v.seen <- j.Submitting.Note
	return v.finderVendor.FindTask(ctx, j, t)
}

// A vendor's note (MarkNoter) is stored on the submission's marker, and
// its search for a lost answer's task reads it there.
func TestMarkerNote(t *testing.T) {
	v := notingFinder{finderVendor: newFinder("sa"), note: "clock 3 -5 2 7", seen: make(chan string, 1)}
	loseFirstSubmit(&v.submit, true, context.DeadlineExceeded)
	h := newHarness(t, engine.Config{VendorTimeout: 20 * time.Millisecond}, v) // the timed-out call's grace
	id := h.submit(t).ID
	select {
	case note := <-v.seen:
		if note != v.note {
			t.Fatalf("the search found note %q on the marker, want %q", note, v.note)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no search for the lost answer's task: %+v", h.job(t, id))
	}
	if got := h.waitFinished(t, id); got.State != engine.StateDelivered || v.submits.Load() != 1 {
		t.Fatalf("job %s after %d submissions, want delivered after 1", got.State, v.submits.Load())
	}
}

// At a vendor that names its tasks, the callback of a first submission a
// dead process left uncertain records the task it names: no billed search.
func TestLostAnswerCallbackNamesVendorTask(t *testing.T) {
	clock := testclock.New(time.Unix(1_700_000_000, 0))
	v := finderCallback{newFinder("sa")}
	v.timing = engine.Timing{First: time.Minute, Every: time.Minute, Max: time.Hour, Billed: true}
	loseFirstSubmit(&v.submit, true, context.DeadlineExceeded)
	h := newHarness(t, engine.Config{Now: clock.Now, PublicURL: "http://bot.example", JobTimeout: 24 * time.Hour}, v)
	id := h.submit(t).ID
	waitUncertain(t, h, id, &v.submits)
	h.engine.Stop(context.Background())
	clock.Set(clock.Now().Add(10 * time.Second))
	h.start(t, v)
	waitIdle(t, h, clock, id)
	j := h.job(t, id)
	if _, _, err := h.engine.HandleCallback(context.Background(), "sa", id, j.CallbackToken, []byte("vt-"+j.Submitting.TaskID)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for j = h.job(t, id); !j.Finished(); j = h.job(t, id) {
		if time.Now().After(deadline) {
			t.Fatalf("not finished: %+v", j)
		}
		time.Sleep(time.Millisecond)
	}
	if v.submits.Load() != 1 || v.finds.Load() != 0 || j.State != engine.StateDelivered || j.TaskID != "vt-"+id+"-1" || j.BilledCalls != 1 {
		t.Fatalf("%d submissions, %d searches; job %s task %q billed %d; want 1, 0, delivered, vt-%s-1, 1",
			v.submits.Load(), v.finds.Load(), j.State, j.TaskID, j.BilledCalls, id)
	}
}

// A callback that beats this process's own submission answer (a quick
// task) leaves the recording to the submission: the submission billed
// once, not twice.
func TestCallbackBeforeOwnSubmitAnswer(t *testing.T) {
	v := finderCallback{newFinder("sa")}
	made := v.submit
	release := make(chan struct{})
	sent := make(chan string, 1)
	v.submit = func(j *engine.Job, task engine.Task) (string, error) {
		id, err := made(j, task)
		sent <- id
		<-release
		return id, err
	}
	h := newHarness(t, engine.Config{PublicURL: "http://bot.example"}, v)
	j := h.submit(t)
	task := <-sent
	if _, _, err := h.engine.HandleCallback(context.Background(), "sa", j.ID, h.job(t, j.ID).CallbackToken, []byte(task)); err != nil {
		t.Fatal(err)
	}
	close(release)
	deadline := time.Now().Add(10 * time.Second)
	got := h.job(t, j.ID)
	for ; got.State != engine.StateSubmitted && !got.Finished(); got = h.job(t, j.ID) {
		if time.Now().After(deadline) {
			t.Fatalf("not submitted: %+v", got)
		}
		time.Sleep(time.Millisecond)
	}
	got = h.waitFinished(t, j.ID)
	// The vendor bills the one submission and any safety-net poll.
	if billed := int(v.submits.Load() + v.queries.Load()); got.BilledCalls != billed || v.submits.Load() != 1 || got.TaskID != task {
		t.Fatalf("job %s task %q billed %d, %d submissions; want task %q billed %d (what the vendor billed)", got.State, got.TaskID, got.BilledCalls, v.submits.Load(), task, billed)
	}
}

// waitIdle waits until job id's step is over and its next one is scheduled.
func waitIdle(t *testing.T, h *harness, clock *testclock.Clock, id string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if due, ok := h.engine.DueAt(id); ok && due.After(clock.Now()) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s never became idle: %+v", id, h.job(t, id))
		}
		time.Sleep(time.Millisecond)
	}
}

// searchingCallback is finderCallback whose search waits for the test and
// then misses (a task past the pages it reads), as ShowAPI's can.
type searchingCallback struct {
	finderCallback
	searching chan struct{} // a search began
	release   chan struct{} // lets it answer "no such task"
}

func (v searchingCallback) FindTask(ctx context.Context, j *engine.Job, t engine.Task) (string, bool, error) {
	v.finds.Add(1)
	v.searching <- struct{}{}
	select {
	case <-v.release:
	case <-ctx.Done():
		return "", false, ctx.Err()
	}
	return "", false, nil
}

// The vendor's callback for a dead process's submission that arrives while
// the restarted process searches for the task (the search's gather, its
// pages) is not lost: it is noted on the marker and acknowledged, and the
// search's miss does not send the job again; the task it names is recorded.
// Before: the callback was acknowledged and dropped ("this process's own
// submission in flight"), and the job was sent again (crash suite, ShowAPI:
// a second task at the vendor).
func TestCallbackDuringLostAnswerSearch(t *testing.T) {
	clock := testclock.New(time.Unix(1_700_000_000, 0))
	v := searchingCallback{finderCallback: finderCallback{newFinder("sa")}, searching: make(chan struct{}, 1), release: make(chan struct{})}
	v.timing = engine.Timing{First: time.Minute, Every: time.Minute, Max: time.Hour, Billed: true}
	loseFirstSubmit(&v.submit, true, context.DeadlineExceeded) // the process dies with the call
	h := newHarness(t, engine.Config{Now: clock.Now, PublicURL: "http://bot.example", JobTimeout: 24 * time.Hour}, v)
	var released sync.Once
	letGo := func() { released.Do(func() { close(v.release) }) }
	id := h.submit(t).ID
	waitUncertain(t, h, id, &v.submits)
	h.engine.Stop(context.Background())
	h.start(t, v)    // a new process: the marker is a dead one's
	t.Cleanup(letGo) // before that engine stops (cleanups run last first)
	waitIdle(t, h, clock, id)
	j := h.job(t, id)
	clock.Set(j.Submitting.At.Add(2*v.timing.First + v.timing.Max)) // no callback came in the wait
	h.engine.WakeScheduler()
	select {
	case <-v.searching:
	case <-time.After(10 * time.Second):
		t.Fatalf("no search: %+v", h.job(t, id))
	}
	if _, _, err := h.engine.HandleCallback(context.Background(), "sa", id, j.CallbackToken, []byte("vt-"+j.Submitting.TaskID)); err != nil {
		t.Fatal(err)
	}
	if got := h.job(t, id); got.Submitting == nil || got.Submitting.CalledBack != "vt-"+id+"-1" {
		t.Fatalf("the callback during the search was not noted on the marker: %+v", got.Submitting)
	}
	letGo() // the search misses
	got := h.waitFinished(t, id)
	if v.submits.Load() != 1 || v.made() != 1 || got.State != engine.StateDelivered || got.TaskID != "vt-"+id+"-1" || got.BilledCalls != 1+int(v.queries.Load()) {
		t.Fatalf("%d submissions, %d tasks; job %s task %q billed %d (%d polls); want 1, 1, delivered, vt-%s-1, the submission and the polls",
			v.submits.Load(), v.made(), got.State, got.TaskID, got.BilledCalls, v.queries.Load(), id)
	}
}

// A callback for the task of this process's own submission that timed out
// (the call gave up, the vendor made the task), arriving after that step,
// records the task at once: no search, no wait of vendor_timeout, nothing
// sent again. Before: it was taken for the submission in flight and dropped.
func TestCallbackAfterOwnTimedOutSubmit(t *testing.T) {
	clock := testclock.New(time.Unix(1_700_000_000, 0))
	v := finderCallback{newFinder("sa")}
	v.timing = engine.Timing{First: time.Minute, Every: time.Minute, Max: time.Hour, Billed: true}
	loseFirstSubmit(&v.submit, true, context.DeadlineExceeded)
	h := newHarness(t, engine.Config{Now: clock.Now, PublicURL: "http://bot.example", JobTimeout: 24 * time.Hour}, v)
	id := h.submit(t).ID
	waitIdle(t, h, clock, id) // the timed-out step is over
	j := h.job(t, id)
	if j.Submitting == nil || v.submits.Load() != 1 {
		t.Fatalf("no uncertain submission: %+v", j)
	}
	if _, _, err := h.engine.HandleCallback(context.Background(), "sa", id, j.CallbackToken, []byte("vt-"+j.Submitting.TaskID)); err != nil {
		t.Fatal(err)
	}
	got := h.waitFinished(t, id) // on the stopped clock: no vendor_timeout passes
	if v.submits.Load() != 1 || v.finds.Load() != 0 || got.State != engine.StateDelivered || got.TaskID != "vt-"+id+"-1" || got.BilledCalls != 1 {
		t.Fatalf("%d submissions, %d searches; job %s task %q billed %d; want 1, 0, delivered, vt-%s-1, 1",
			v.submits.Load(), v.finds.Load(), got.State, got.TaskID, got.BilledCalls, id)
	}
}
