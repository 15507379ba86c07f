package engine_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/png"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/picbot/picbot/engine"
	"github.com/picbot/picbot/quota"
	"github.com/picbot/picbot/store"
)

// fakeVendor is a vendor whose behaviour each test sets through function fields.
type fakeVendor struct {
	name    string
	submit  func(j *engine.Job, t engine.Task) (string, error)
	query   func(j *engine.Job) (*engine.Outcome, error)
	parse   func(j *engine.Job, body []byte) (*engine.Outcome, error)
	timing  engine.Timing
	submits atomic.Int32
	queries atomic.Int32
}

func (v *fakeVendor) Name() string                         { return v.name }
func (v *fakeVendor) Check(r *engine.Request) error        { return nil }
func (v *fakeVendor) Timing(*engine.Request) engine.Timing { return v.timing }
func (v *fakeVendor) Submit(ctx context.Context, j *engine.Job, t engine.Task) (string, error) {
	v.submits.Add(1)
	if v.submit == nil {
		return "task-" + j.ID, nil
	}
	return v.submit(j, t)
}
func (v *fakeVendor) Query(ctx context.Context, j *engine.Job) (*engine.Outcome, error) {
	v.queries.Add(1)
	return v.query(j)
}

// callbackVendor adds callbacks to fakeVendor.
type callbackVendor struct{ *fakeVendor }

func (v callbackVendor) ParseCallback(j *engine.Job, body []byte) (*engine.Outcome, error) {
	return v.parse(j, body)
}
func (v callbackVendor) WantsCallback() bool { return true }
func (v callbackVendor) CallbackReply() (string, []byte) {
	return "application/json", []byte(`{"code":"200"}`)
}

func newVendor(name string) *fakeVendor {
	return &fakeVendor{
		name:   name,
		timing: engine.Timing{First: 5 * time.Millisecond, Every: 5 * time.Millisecond, Max: 20 * time.Millisecond, Billed: true},
		query:  func(j *engine.Job) (*engine.Outcome, error) { return done(), nil },
	}
}

func pngBytes(t testing.TB, w, h int) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, image.NewRGBA(image.Rect(0, 0, w, h))); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

var tinyPNG = func() []byte {
	var b bytes.Buffer
	png.Encode(&b, image.NewGray(image.Rect(0, 0, 4, 4)))
	return b.Bytes()
}()

func done() *engine.Outcome {
	return &engine.Outcome{State: engine.TaskDone, Images: []engine.Remote{{Data: tinyPNG, Seed: 1}}}
}

// notifier records what the engine asks the chat to show.
type notifier struct {
	mu        sync.Mutex
	delivered map[string]int
	ended     chan *engine.Job
	fail      func(j *engine.Job) error
	watching  atomic.Bool
}

func (n *notifier) Watching(*engine.Job) bool { return n.watching.Load() }

func newNotifier() *notifier {
	return &notifier{delivered: map[string]int{}, ended: make(chan *engine.Job, 100)}
}

func (n *notifier) Progress(ctx context.Context, j *engine.Job, p engine.Progress) {}
func (n *notifier) Deliver(ctx context.Context, j *engine.Job) error {
	if n.fail != nil {
		if err := n.fail(j); err != nil {
			return err
		}
	}
	n.mu.Lock()
	n.delivered[j.ID]++
	n.mu.Unlock()
	select {
	case n.ended <- j:
	default: // a benchmark's thousands of deliveries: counted, not queued
	}
	return nil
}

func (n *notifier) count(id string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.delivered[id]
}

func (n *notifier) wait(t *testing.T) *engine.Job {
	t.Helper()
	select {
	case j := <-n.ended:
		return j
	case <-time.After(10 * time.Second):
		t.Fatal("no delivery within 10 s")
		return nil
	}
}

type harness struct {
	db     *store.DB
	blobs  *store.Blobs
	quota  *quota.Quota
	notify *notifier
	engine *engine.Engine
	cfg    engine.Config
	dir    string
}

func newHarness(t testing.TB, cfg engine.Config, vendors ...engine.Vendor) *harness {
	t.Helper()
	qc := quota.DefaultConfig()
	qc.Default = quota.Tier{Daily: 20, Concurrent: 10}
	return newHarnessQuota(t, cfg, qc, vendors...)
}

// newHarnessQuota is newHarness under quota configuration qc.
func newHarnessQuota(t testing.TB, cfg engine.Config, qc quota.Config, vendors ...engine.Vendor) *harness {
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
	q, err := quota.New(qc, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Routes == nil {
		var names []string
		for _, v := range vendors {
			names = append(names, v.Name())
		}
		cfg.Routes = map[engine.Kind][]string{engine.KindDraw: names}
	}
	h := &harness{db: db, blobs: blobs, quota: q, notify: newNotifier(), cfg: cfg, dir: dir}
	h.start(t, vendors...)
	return h
}

func (h *harness) start(t testing.TB, vendors ...engine.Vendor) {
	h.engine = engine.New(h.cfg, h.db, h.quota, h.blobs, h.notify, vendors...)
	if err := h.engine.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	e := h.engine
	t.Cleanup(func() { e.Stop(context.Background()) })
}

var alice = engine.UserRef{Platform: "test", ID: "alice"}

func (h *harness) submit(t *testing.T) *engine.Job {
	t.Helper()
	j, err := h.engine.Submit(context.Background(), alice, engine.ChatRef{Platform: "test", ChatID: "c1"}, engine.Request{Kind: engine.KindDraw, Prompt: "a red fox", Seed: -1})
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func (h *harness) job(t testing.TB, id string) *engine.Job {
	t.Helper()
	j, err := h.db.Job(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func (h *harness) used(t *testing.T) (used, running int64) {
	t.Helper()
	st, err := h.quota.Status(context.Background(), alice)
	if err != nil {
		t.Fatal(err)
	}
	return st.Used, st.Running
}

// waitFinished waits until the job is finished in the store.
func (h *harness) waitFinished(t *testing.T, id string) *engine.Job {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if j := h.job(t, id); j.Finished() {
			return j
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("job %s not finished: %+v", id, h.job(t, id))
	return nil
}

func TestSubmit(t *testing.T) {
	t.Run("PersistedBeforeAck", func(t *testing.T) {
		v := newVendor("v")
		hold := make(chan struct{})
		v.submit = func(j *engine.Job, _ engine.Task) (string, error) { <-hold; return "t", nil }
		h := newHarness(t, engine.Config{}, v)
		defer close(hold)
		j := h.submit(t)
		stored := h.job(t, j.ID)
		if stored.Charge.Cost != 1 || stored.Request.Seed < 0 {
			t.Fatalf("stored job: %+v", stored)
		}
		if used, running := h.used(t); used != 1 || running != 1 {
			t.Fatalf("used %d running %d, want 1 1", used, running)
		}
	})
	t.Run("ErrInvalid", func(t *testing.T) {
		h := newHarness(t, engine.Config{}, newVendor("v"))
		_, err := h.engine.Submit(context.Background(), alice, engine.ChatRef{Platform: "test", ChatID: "c1"}, engine.Request{Kind: engine.KindDraw, Prompt: "x", Width: 13, Height: 13})
		if got, want := engine.ErrorCode(err), engine.EINVALID; got != want {
			t.Fatalf("code %q, want %q (%v)", got, want, err)
		}
		if used, _ := h.used(t); used != 0 {
			t.Fatalf("charged %d for an invalid command", used)
		}
	})
}

func TestDeliveredOnceAndCommitted(t *testing.T) {
	v := newVendor("v")
	h := newHarness(t, engine.Config{}, v)
	j := h.submit(t)
	h.notify.wait(t)
	got := h.waitFinished(t, j.ID)
	if got.State != engine.StateDelivered || len(got.Results) != 1 || got.Charge.Settled != engine.ChargeCommitted {
		t.Fatalf("job: %+v", got)
	}
	if got.BilledCalls != 2 { // submit + one poll
		t.Fatalf("billed calls %d, want 2", got.BilledCalls)
	}
	if used, running := h.used(t); used != 1 || running != 0 {
		t.Fatalf("used %d running %d, want 1 0", used, running)
	}
	if n := h.notify.count(j.ID); n != 1 {
		t.Fatalf("delivered %d times", n)
	}
}

func TestPollBackoff(t *testing.T) {
	v := newVendor("v")
	var polls atomic.Int32
	v.query = func(j *engine.Job) (*engine.Outcome, error) {
		if polls.Add(1) < 4 {
			return &engine.Outcome{State: engine.TaskRunning, Progress: -1}, nil
		}
		return done(), nil
	}
	h := newHarness(t, engine.Config{}, v)
	j := h.submit(t)
	h.notify.wait(t)
	got := h.waitFinished(t, j.ID)
	if got.BilledCalls != 5 || got.State != engine.StateDelivered {
		t.Fatalf("billed %d state %s, want 5 delivered", got.BilledCalls, got.State)
	}
}

func TestVendorFailure(t *testing.T) {
	t.Run("FailoverToNext", func(t *testing.T) {
		a, b := newVendor("a"), newVendor("b")
		a.query = func(j *engine.Job) (*engine.Outcome, error) {
			return &engine.Outcome{State: engine.TaskFailed, Err: errors.New("gpu on fire")}, nil
		}
		h := newHarness(t, engine.Config{}, a, b)
		j := h.submit(t)
		h.notify.wait(t)
		got := h.waitFinished(t, j.ID)
		if got.State != engine.StateDelivered || got.Vendor != "b" || len(got.Tried) != 1 || got.Tried[0] != "a" {
			t.Fatalf("job: state %s vendor %s tried %v", got.State, got.Vendor, got.Tried)
		}
		if a.submits.Load() != 1 || b.submits.Load() != 1 {
			t.Fatalf("submits a=%d b=%d, want one each", a.submits.Load(), b.submits.Load())
		}
	})
	t.Run("UnsafeRefunded", func(t *testing.T) {
		a, b := newVendor("a"), newVendor("b")
		a.query = func(j *engine.Job) (*engine.Outcome, error) {
			return &engine.Outcome{State: engine.TaskDone, Dropped: 1}, nil
		}
		h := newHarness(t, engine.Config{}, a, b)
		j := h.submit(t)
		ended := h.notify.wait(t)
		got := h.waitFinished(t, j.ID)
		if ended.State != engine.StateFailed || got.Err.Code != engine.EUNSAFE || got.Charge.Settled != engine.ChargeRefunded {
			t.Fatalf("job: %+v err %+v", got, got.Err)
		}
		if b.submits.Load() != 0 {
			t.Fatal("an unsafe job must not be retried at another vendor")
		}
		if used, running := h.used(t); used != 0 || running != 0 {
			t.Fatalf("used %d running %d after refund", used, running)
		}
	})
	t.Run("SubmitDownUsesNext", func(t *testing.T) {
		a, b := newVendor("a"), newVendor("b")
		a.submit = func(*engine.Job, engine.Task) (string, error) { return "", errors.New("503") }
		h := newHarness(t, engine.Config{BreakerFailures: 1, BreakerCooldown: time.Minute}, a, b)
		j := h.submit(t)
		h.notify.wait(t)
		if got := h.waitFinished(t, j.ID); got.Vendor != "b" || got.State != engine.StateDelivered {
			t.Fatalf("vendor %s state %s", got.Vendor, got.State)
		}
	})
	t.Run("DeadlineRefunds", func(t *testing.T) {
		v := newVendor("v")
		v.query = func(*engine.Job) (*engine.Outcome, error) {
			return &engine.Outcome{State: engine.TaskRunning, Progress: 0.5}, nil
		}
		h := newHarness(t, engine.Config{JobTimeout: 100 * time.Millisecond}, v)
		j := h.submit(t)
		ended := h.notify.wait(t)
		if ended.State != engine.StateFailed || ended.Err.Code != engine.ETIMEOUT {
			t.Fatalf("ended %s %+v", ended.State, ended.Err)
		}
		h.waitFinished(t, j.ID)
		if used, _ := h.used(t); used != 0 {
			t.Fatalf("used %d after timeout", used)
		}
	})
	t.Run("DeadlineBeforeFirstPoll", func(t *testing.T) {
		// A task whose first poll is due long after the job's deadline: the
		// job fails at its deadline, not at that poll.
		v := newVendor("v")
		v.timing.First = time.Hour
		h := newHarness(t, engine.Config{JobTimeout: 200 * time.Millisecond}, v)
		j := h.submit(t)
		ended := h.notify.wait(t)
		if ended.State != engine.StateFailed || ended.Err.Code != engine.ETIMEOUT {
			t.Fatalf("ended %s %+v", ended.State, ended.Err)
		}
		h.waitFinished(t, j.ID)
	})
}

func TestCallback(t *testing.T) {
	v := callbackVendor{newVendor("cb")}
	v.timing.First = time.Hour // no safety poll during the test
	v.query = func(*engine.Job) (*engine.Outcome, error) { t.Error("polled in callback mode"); return done(), nil }
	v.parse = func(j *engine.Job, body []byte) (*engine.Outcome, error) {
		if string(body) != "ok" {
			return nil, errors.New("bad body")
		}
		return done(), nil
	}
	h := newHarness(t, engine.Config{PublicURL: "http://bot.example"}, v)
	j := h.submit(t)
	deadline := time.Now().Add(5 * time.Second)
	for h.job(t, j.ID).State != engine.StateSubmitted && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	ctx := context.Background()

	t.Run("ErrWrongToken", func(t *testing.T) {
		if _, _, err := h.engine.HandleCallback(ctx, "cb", j.ID, "forged", []byte("ok")); engine.ErrorCode(err) != engine.ENOTFOUND {
			t.Fatalf("err %v, want not found", err)
		}
		if got := h.job(t, j.ID); got.State != engine.StateSubmitted {
			t.Fatalf("forged callback moved the job to %s", got.State)
		}
	})
	t.Run("TenTimesOneDelivery", func(t *testing.T) {
		for range 10 {
			ct, reply, err := h.engine.HandleCallback(ctx, "cb", j.ID, j.CallbackToken, []byte("ok"))
			if err != nil || ct != "application/json" || string(reply) != `{"code":"200"}` {
				t.Fatalf("reply %q %q %v", ct, reply, err)
			}
		}
		h.notify.wait(t)
		got := h.waitFinished(t, j.ID)
		time.Sleep(50 * time.Millisecond)
		if n := h.notify.count(j.ID); n != 1 || got.BilledCalls != 1 {
			t.Fatalf("delivered %d times, billed %d; want 1 and 1", n, got.BilledCalls)
		}
		if !bytes.Contains([]byte(engine.New(engine.Config{PublicURL: "http://bot.example/"}, nil, nil, nil, nil).CallbackURL("cb", got)), []byte("http://bot.example/callback/cb/"+j.ID+"/"+j.CallbackToken)) {
			t.Fatal("callback URL has not the documented form")
		}
	})
}

func TestCancel(t *testing.T) {
	v := newVendor("v")
	block := make(chan struct{})
	v.submit = func(j *engine.Job, _ engine.Task) (string, error) { <-block; return "", errors.New("down") }
	h := newHarness(t, engine.Config{}, v)
	j := h.submit(t)
	ctx := context.Background()
	// The job's vendor call is blocked, holding the job; cancel waits for it.
	go func() { time.Sleep(20 * time.Millisecond); close(block) }()
	if _, err := h.engine.Cancel(ctx, j.ID, engine.UserRef{Platform: "test", ID: "mallory"}, false); engine.ErrorCode(err) != engine.EFORBIDDEN {
		t.Fatalf("someone else cancelled: %v", err)
	}
	got, err := h.engine.Cancel(ctx, j.ID, alice, false)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != engine.StateCancelled || got.Charge.Settled != engine.ChargeRefunded {
		t.Fatalf("cancelled job: %s %+v", got.State, got.Charge)
	}
	if ended := h.notify.wait(t); ended.State != engine.StateCancelled {
		t.Fatalf("told %s", ended.State)
	}
	if _, err := h.engine.Cancel(ctx, j.ID, alice, false); engine.ErrorCode(err) != engine.ECONFLICT {
		t.Fatalf("second cancel: %v", err)
	}
}

func TestResume(t *testing.T) {
	v := newVendor("v")
	release := make(chan struct{})
	v.query = func(*engine.Job) (*engine.Outcome, error) {
		select {
		case <-release:
			return done(), nil
		default:
			return &engine.Outcome{State: engine.TaskRunning, Progress: 0.3}, nil
		}
	}
	h := newHarness(t, engine.Config{}, v)
	j := h.submit(t)
	for h.job(t, j.ID).State == engine.StateQueued {
		time.Sleep(time.Millisecond)
	}
	h.engine.Stop(context.Background())
	close(release)
	// A new engine on the same store picks the job up without submitting it again.
	h.start(t, v)
	h.notify.wait(t)
	got := h.waitFinished(t, j.ID)
	if got.State != engine.StateDelivered || v.submits.Load() != 1 {
		t.Fatalf("state %s submits %d", got.State, v.submits.Load())
	}
}

func TestDeliveryRetried(t *testing.T) {
	v := newVendor("v")
	h := newHarness(t, engine.Config{}, v)
	var tries atomic.Int32
	h.notify.fail = func(j *engine.Job) error {
		if tries.Add(1) < 2 {
			return errors.New("platform 502")
		}
		return nil
	}
	j := h.submit(t)
	h.notify.wait(t)
	if got := h.waitFinished(t, j.ID); got.State != engine.StateDelivered || got.DeliveryAttempts != 1 {
		t.Fatalf("state %s attempts %d", got.State, got.DeliveryAttempts)
	}
}

// BenchmarkHandleCallback is a vendor's first callback for a job: token
// check, parse, and the job's move stored (the download runs afterwards on a worker).
func BenchmarkHandleCallback(b *testing.B) {
	v := callbackVendor{newVendor("cb")}
	v.timing.First = time.Hour
	v.parse = func(*engine.Job, []byte) (*engine.Outcome, error) { return done(), nil }
	h := newHarness(b, engine.Config{PublicURL: "http://bot.example", Workers: 4}, v)
	jobs := make([]*engine.Job, b.N)
	for i := range jobs {
		j, err := h.engine.Submit(context.Background(), engine.UserRef{Platform: "test", ID: fmt.Sprint(i)}, engine.ChatRef{Platform: "test", ChatID: "c"}, engine.Request{Kind: engine.KindDraw, Prompt: "x", Seed: -1})
		if err != nil {
			b.Fatal(err)
		}
		jobs[i] = j
	}
	for _, j := range jobs {
		for h.job(b, j.ID).State != engine.StateSubmitted {
			time.Sleep(time.Millisecond)
		}
	}
	var next atomic.Int64
	b.SetParallelism(32) // vendors call back over many connections at once
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			j := jobs[next.Add(1)-1]
			if _, _, err := h.engine.HandleCallback(context.Background(), "cb", j.ID, j.CallbackToken, []byte("ok")); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func TestProgressPollsOnlyWhileWatched(t *testing.T) {
	for _, watched := range []bool{false, true} {
		t.Run(fmt.Sprint("watched=", watched), func(t *testing.T) {
			v := callbackVendor{newVendor("cb")}
			v.timing = engine.Timing{First: time.Hour, Every: time.Hour, Max: time.Hour, Billed: true, Progress: true}
			v.query = func(*engine.Job) (*engine.Outcome, error) {
				return &engine.Outcome{State: engine.TaskRunning, Progress: 0.5}, nil
			}
			h := newHarness(t, engine.Config{PublicURL: "http://bot.example", ProgressEvery: 20 * time.Millisecond}, v)
			h.notify.watching.Store(watched)
			h.submit(t)
			time.Sleep(300 * time.Millisecond)
			n := v.queries.Load()
			if watched && n < 3 {
				t.Fatalf("%d progress polls while watched", n)
			}
			if !watched && n != 0 {
				t.Fatalf("%d polls while nobody watched, in callback mode", n)
			}
		})
	}
}
