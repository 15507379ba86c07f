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
