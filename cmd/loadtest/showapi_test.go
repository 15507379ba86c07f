package main

import (
	"testing"
	"time"
)

// The ShowAPI mode runs end to end on tiny numbers: every job delivered in
// both modes, the engine's billed count equal to the fake's, task by task
// a creation and at least one poll an image, and the list mode really
// reading /yourtasklist.
func TestShowAPIMode(t *testing.T) {
	o := options{inflight: 5, task: 400 * time.Millisecond, workers: 4, runs: 1}
	task, list, err := showRuns(o, 12, 512)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range append(task, list...) {
		t.Logf("by list %v: %d images, billed %d (bot %d), %d list calls, delay p50 %s p99 %s", r.byList, r.delivered, r.fake, r.bot, r.listCalls, r.p50, r.p99)
		if r.delivered != 12 {
			t.Errorf("by list %v: %d images delivered, want 12", r.byList, r.delivered)
		}
		if r.fake != r.bot {
			t.Errorf("by list %v: the fake billed %d calls, the engine recorded %d", r.byList, r.fake, r.bot)
		}
		if r.p50 < 0 || r.p99 < r.p50 {
			t.Errorf("by list %v: delay p50 %s p99 %s", r.byList, r.p50, r.p99)
		}
	}
	if tb := task[0]; tb.listCalls != 0 || tb.perImage < 2 {
		t.Errorf("task by task: %d list calls, %.2f billed calls an image (want 0 and at least 2)", tb.listCalls, tb.perImage)
	}
	if list[0].listCalls == 0 {
		t.Error("by list: /yourtasklist never read")
	}
	if m := showMedian(list); m.delivered != 12 || m.perImage != list[0].perImage {
		t.Errorf("median of one run %+v, want the run", m)
	}
}
