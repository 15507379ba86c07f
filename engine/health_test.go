package engine_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/picbot/picbot/engine"
)

func TestRetryDelivery(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, engine.Config{}, newVendor("v"))
	var failing atomic.Bool
	failing.Store(true)
	failed := make(chan struct{}, 10)
	h.notify.fail = func(j *engine.Job) error {
		if failing.Load() {
			failed <- struct{}{}
			return errors.New("chat down")
		}
		return nil
	}
	j := h.submit(t)
	select {
	case <-failed:
	case <-time.After(10 * time.Second):
		t.Fatal("no delivery attempt")
	}
	// The engine now waits seconds before the next try; the retry goes now.
	deadline := time.Now().Add(5 * time.Second)
	for h.job(t, j.ID).DeliveryAttempts == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond) // the failed try is being recorded
	}
	failing.Store(false)
	if _, err := h.engine.RetryDelivery(ctx, j.ID); err != nil {
		t.Fatal(err)
	}
	got := h.notify.wait(t)
	for h.job(t, j.ID).State != engine.StateDelivered {
		time.Sleep(5 * time.Millisecond)
	}
	// Reset by the retry: a try made by the backoff would have found 1.
	if n := h.job(t, got.ID).DeliveryAttempts; n != 0 {
		t.Fatalf("delivery attempts %d: delivered by the backoff, not the retry", n)
	}
	if _, err := h.engine.RetryDelivery(ctx, j.ID); engine.ErrorCode(err) != engine.ECONFLICT {
		t.Fatalf("retry of a delivered job: %v, want ECONFLICT", err)
	}
}

func TestHealth(t *testing.T) {
	bad := newVendor("bad")
	bad.submit = func(*engine.Job, engine.Task) (string, error) { return "", errors.New("down") }
	good := newVendor("good")
	h := newHarness(t, engine.Config{BreakerFailures: 2, BreakerCooldown: time.Hour}, bad, good)
	for range 2 {
		h.submit(t)
		h.notify.wait(t)
	}
	hs := h.engine.Health()
	if len(hs) != 2 || hs[0].Name != "bad" || !hs[0].Open || hs[0].OpenUntil.IsZero() || hs[1].Name != "good" || hs[1].Open || !hs[1].Billed {
		t.Fatalf("health %+v", hs)
	}
	if _, ok := h.engine.Progress("nope"); ok {
		t.Fatal("progress of a job not in hand")
	}
}

func TestRetryDeliveryAfterFailure(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, engine.Config{}, newVendor("v"))
	var failing atomic.Bool
	failing.Store(true)
	h.notify.fail = func(j *engine.Job) error {
		if failing.Load() {
			return engine.Errorf(engine.EUNDELIVERED, "chat gone", "chat gone")
		}
		return nil
	}
	j := h.submit(t)
	deadline := time.Now().Add(10 * time.Second)
	for !h.job(t, j.ID).Finished() {
		if time.Now().After(deadline) {
			t.Fatalf("job never failed: %+v", h.job(t, j.ID))
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got := h.job(t, j.ID); got.State != engine.StateFailed || got.Charge.Settled != engine.ChargeRefunded || len(got.Results) != 1 {
		t.Fatalf("after the failed post: %s, charge %s, %d results", got.State, got.Charge.Settled, len(got.Results))
	}
	failing.Store(false)
	if _, err := h.engine.RetryDelivery(ctx, j.ID); err != nil {
		t.Fatal(err)
	}
	h.notify.wait(t)
	for h.job(t, j.ID).State != engine.StateDelivered {
		time.Sleep(5 * time.Millisecond)
	}
	got := h.job(t, j.ID)
	if got.Err != nil || got.Charge.Settled != engine.ChargeRefunded || h.notify.count(j.ID) != 1 {
		t.Fatalf("after the retry: err %v, charge %s, posted %d times", got.Err, got.Charge.Settled, h.notify.count(j.ID))
	}
	if st, _ := h.quota.Status(ctx, alice); st.Used != 0 || st.Running != 0 {
		t.Fatalf("quota after the retry: %+v", st)
	}
	if un, _ := h.db.Unfinished(ctx); len(un) != 0 {
		t.Fatalf("unfinished after the retry: %d", len(un))
	}
	// A job failed otherwise (no images) cannot be taken back.
	bad := newVendor("bad")
	bad.query = func(*engine.Job) (*engine.Outcome, error) {
		return &engine.Outcome{State: engine.TaskFailed, Err: engine.Errorf(engine.EUNSAFE, "unsafe", "unsafe")}, nil
	}
	h2 := newHarness(t, engine.Config{}, bad)
	j2 := h2.submit(t)
	h2.notify.wait(t)
	if _, err := h2.engine.RetryDelivery(ctx, j2.ID); engine.ErrorCode(err) != engine.ECONFLICT {
		t.Fatalf("retry of an unsafe job: %v, want ECONFLICT", err)
	}
}
