package engine_test

import (
	"errors"
	"sync"
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
