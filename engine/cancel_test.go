package engine_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/picbot/picbot/engine"
)

// TestCancelAtVendor: a job a billing vendor holds is not refunded on
// cancel (the vendor bills the task); one at a vendor that charges nothing is.
func TestCancelAtVendor(t *testing.T) {
	for _, billed := range []bool{true, false} {
		v := newVendor("v")
		v.timing = engine.Timing{First: time.Hour, Every: time.Hour, Max: time.Hour, Billed: billed}
		v.query = func(*engine.Job) (*engine.Outcome, error) { return &engine.Outcome{State: engine.TaskRunning}, nil }
		h := newHarness(t, engine.Config{}, v)
		j := h.submit(t)
		deadline := time.Now().Add(5 * time.Second)
		for {
			got, _ := h.engine.Job(context.Background(), j.ID)
			if got.State.AtVendor() {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("job still %s", got.State)
			}
			time.Sleep(5 * time.Millisecond)
		}
		got, err := h.engine.Cancel(context.Background(), j.ID, alice, false)
		if err != nil {
			t.Fatal(err)
		}
		want := engine.ChargeRefunded
		if billed {
			want = engine.ChargeCommitted
		}
		if got.Charge.Settled != want {
			t.Errorf("billed %v: charge %s, want %s", billed, got.Charge.Settled, want)
		}
	}
}

// TestUpscaleHint: the hint for a result too large names a --scale that fits, or none.
func TestUpscaleHint(t *testing.T) {
	lim := engine.DefaultLimits()
	for _, tc := range []struct {
		side, scale int
		want        string
	}{
		{3000, 4, "Try --scale 2."},
		{5000, 2, "too large to upscale even ×2"},
	} {
		r := engine.Request{Kind: engine.KindUpscale, Scale: tc.scale, N: 1, Inputs: []engine.Input{{Blob: "b", Width: tc.side, Height: tc.side}}}
		err := r.Validate(lim)
		if e := engine.AsError(err); !strings.Contains(e.EN, tc.want) || strings.Contains(e.EN, "smaller --scale") {
			t.Errorf("%d ×%d: %v", tc.side, tc.scale, err)
		}
	}
}
