package engine_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/picbot/picbot/engine"
)

// billObserver counts billed calls per vendor as the engine reports them.
type billObserver struct {
	mu     sync.Mutex
	billed map[string]int
}

func (o *billObserver) Admitted(*engine.Job)                       {}
func (o *billObserver) Refused(string)                             {}
func (o *billObserver) Moved(*engine.Job, engine.State)            {}
func (o *billObserver) DeliveryStarted(*engine.Job, time.Duration) {}
func (o *billObserver) Billed(vendor string, n int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.billed[vendor] += n
}

// The engine's bill per vendor matches the calls each vendor saw: a vendor
// that failed the task is billed under its own name, and polls that
// returned an error are billed too.
func TestBilledMatchesVendorCalls(t *testing.T) {
	a, b := newVendor("a"), newVendor("b")
	a.query = func(j *engine.Job) (*engine.Outcome, error) {
		if a.queries.Load() < 3 {
			return nil, errors.New("vendor answered 500")
		}
		return &engine.Outcome{State: engine.TaskFailed, Err: errors.New("gpu on fire")}, nil
	}
	obs := &billObserver{billed: map[string]int{}}
	h := newHarness(t, engine.Config{Observer: obs}, a, b)
	j := h.submit(t)
	h.notify.wait(t)
	got := h.waitFinished(t, j.ID)
	if got.State != engine.StateDelivered || got.Vendor != "b" {
		t.Fatalf("job: state %s vendor %s", got.State, got.Vendor)
	}
	obs.mu.Lock()
	defer obs.mu.Unlock()
	want := map[string]int{
		"a": int(a.submits.Load() + a.queries.Load()),
		"b": int(b.submits.Load() + b.queries.Load()),
	}
	for v, n := range want {
		if obs.billed[v] != n {
			t.Errorf("vendor %s: engine billed %d, vendor saw %d calls (all billed: %v)", v, obs.billed[v], n, obs.billed)
		}
	}
	if n := obs.billed[""]; n != 0 {
		t.Errorf("%d calls billed under an empty vendor name", n)
	}
	if total := want["a"] + want["b"]; got.BilledCalls != total {
		t.Errorf("job billed %d calls, vendors saw %d", got.BilledCalls, total)
	}
}

// statsCalls is today's billed calls per vendor in /admin stats.
func statsCalls(t *testing.T, h *harness) map[string]int64 {
	t.Helper()
	st, err := h.quota.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	calls := map[string]int64{}
	for _, v := range st.Vendors {
		if v.Calls != 0 {
			calls[v.Vendor] = v.Calls
		}
	}
	return calls
}

// /admin stats files each billed call under the vendor that billed it: a
// job that failed over from a to b counts a's calls (its submission, a
// poll that failed, the poll that told of the task's failure) at a, and
// b's at b, each equal to the vendor's own count of its calls.
func TestStatsPerVendorAfterFailover(t *testing.T) {
	a, b := newVendor("a"), newVendor("b")
	a.query = func(j *engine.Job) (*engine.Outcome, error) {
		if a.queries.Load() == 1 {
			return nil, errors.New("vendor answered 500")
		}
		return &engine.Outcome{State: engine.TaskFailed, Err: errors.New("gpu on fire")}, nil
	}
	h := newHarness(t, engine.Config{}, a, b)
	j := h.submit(t)
	h.notify.wait(t)
	got := h.waitFinished(t, j.ID)
	if got.State != engine.StateDelivered || got.Vendor != "b" {
		t.Fatalf("job: state %s vendor %s", got.State, got.Vendor)
	}
	want := map[string]int64{"a": int64(a.submits.Load() + a.queries.Load()), "b": int64(b.submits.Load() + b.queries.Load())}
	if want["a"] != 3 {
		t.Fatalf("vendor a saw %d calls, want 3", want["a"])
	}
	if calls := statsCalls(t, h); len(calls) != 2 || calls["a"] != want["a"] || calls["b"] != want["b"] {
		t.Errorf("stats: billed calls by vendor %v, the vendors saw %v", calls, want)
	}
}

// A submission the vendor refused (and billed) counts at that vendor, not
// under "none": the job never held a task there.
func TestStatsRefusedSubmit(t *testing.T) {
	a := newVendor("a")
	a.submit = func(*engine.Job, engine.Task) (string, error) {
		return "", engine.Errorf(engine.EINVALID, "refused", "拒绝")
	}
	h := newHarness(t, engine.Config{}, a)
	j := h.submit(t)
	h.notify.wait(t)
	if got := h.waitFinished(t, j.ID); got.State != engine.StateFailed || got.BilledCalls != 1 {
		t.Fatalf("job %s billed %d, want failed and 1", got.State, got.BilledCalls)
	}
	if calls := statsCalls(t, h); len(calls) != 1 || calls["a"] != 1 {
		t.Errorf("stats: billed calls by vendor %v, want a:1", calls)
	}
}

// reportingVendor says what each call was billed (engine.ReportBilled), as
// ShowAPI's showapi_fee_num does, and counts what it billed.
type reportingVendor struct {
	*fakeVendor
	fee    func(call string, n int32) int // the bill of the n-th (from 1) call of a kind
	billed atomic.Int32
}

func (v *reportingVendor) report(ctx context.Context, call string, n int32) {
	fee := v.fee(call, n)
	v.billed.Add(int32(fee))
	engine.ReportBilled(ctx, fee)
}

func (v *reportingVendor) Submit(ctx context.Context, j *engine.Job, t engine.Task) (string, error) {
	id, err := v.fakeVendor.Submit(ctx, j, t)
	v.report(ctx, "submit", v.submits.Load())
	return id, err
}

func (v *reportingVendor) Query(ctx context.Context, j *engine.Job) (*engine.Outcome, error) {
	out, err := v.fakeVendor.Query(ctx, j)
	v.report(ctx, "query", v.queries.Load())
	return out, err
}

// A vendor that says what each call cost (engine.ReportBilled) is
// believed: a failed submission it billed counts, at that vendor, and so
// does a failed poll; a refusal it says was free counts nothing.
func TestReportedBill(t *testing.T) {
	for _, fee := range []int{1, 0} {
		a := &reportingVendor{fakeVendor: newVendor("a"), fee: func(string, int32) int { return fee }}
		a.submit = func(*engine.Job, engine.Task) (string, error) {
			if a.submits.Load() == 1 {
				return "", errors.New("vendor answered 503")
			}
			return "task-a", nil
		}
		a.query = func(*engine.Job) (*engine.Outcome, error) {
			if a.queries.Load() == 1 {
				return nil, errors.New("vendor answered 500")
			}
			return &engine.Outcome{State: engine.TaskFailed, Err: errors.New("gpu on fire")}, nil
		}
		b := newVendor("b")
		obs := &billObserver{billed: map[string]int{}}
		h := newHarness(t, engine.Config{Observer: obs}, a, b)
		j := h.submit(t)
		h.notify.wait(t)
		got := h.waitFinished(t, j.ID)
		if got.State != engine.StateDelivered || got.Vendor != "b" {
			t.Fatalf("fee %d: job %s at %s", fee, got.State, got.Vendor)
		}
		want := map[string]int{"a": int(a.billed.Load()), "b": int(b.submits.Load() + b.queries.Load())}
		if want["a"] != 4*fee {
			t.Fatalf("fee %d: vendor a billed %d, want %d (two submissions, two polls)", fee, want["a"], 4*fee)
		}
		if got.BilledBy["a"] != want["a"] || got.BilledBy["b"] != want["b"] || got.BilledCalls != want["a"]+want["b"] {
			t.Errorf("fee %d: job billed %d by %v, the vendors billed %v", fee, got.BilledCalls, got.BilledBy, want)
		}
		if calls := statsCalls(t, h); calls["a"] != int64(want["a"]) || calls["b"] != int64(want["b"]) {
			t.Errorf("fee %d: stats %v, the vendors billed %v", fee, calls, want)
		}
		obs.mu.Lock()
		if obs.billed["a"] != want["a"] || obs.billed["b"] != want["b"] {
			t.Errorf("fee %d: observer %v, the vendors billed %v", fee, obs.billed, want)
		}
		obs.mu.Unlock()
	}
}
