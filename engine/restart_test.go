package engine_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/picbot/picbot/engine"
	"github.com/picbot/picbot/internal/testclock"
)

// pollSchedule submits one job to v, then lets it be polled polls times,
// each at the moment the engine has it due, and returns those moments as
// offsets from the submission, with the billed calls the job records after
// each poll. With restart, the engine is stopped after every poll and a
// new one started on the same store, as a restarted bot would be.
func pollSchedule(t *testing.T, v engine.Vendor, queries *atomic.Int32, polls int, restart bool) (at []time.Duration, billed []int) {
	t.Helper()
	clock := testclock.New(time.Unix(1_700_000_000, 0))
	start := clock.Now()
	h := newHarness(t, engine.Config{Now: clock.Now, PublicURL: "http://bot.example", JobTimeout: 24 * time.Hour}, v)
	id := h.submit(t).ID
	// idle waits until the job's step is over and its next one scheduled.
	idle := func() time.Time {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			if due, ok := h.engine.DueAt(id); ok && due.After(clock.Now()) {
				return due
			}
			if time.Now().After(deadline) {
				t.Fatalf("job %s never became idle: %+v", id, h.job(t, id))
			}
			time.Sleep(time.Millisecond)
		}
	}
	due := idle()
	for n := 1; n <= polls; n++ {
		clock.Set(due)
		h.engine.WakeScheduler()
		at = append(at, due.Sub(start))
		deadline := time.Now().Add(10 * time.Second)
		for int(queries.Load()) < n {
			if time.Now().After(deadline) {
				t.Fatalf("poll %d never came", n)
			}
			time.Sleep(time.Millisecond)
		}
		due = idle()
		if got := int(queries.Load()); got != n {
			t.Fatalf("%d polls by %v, want %d", got, clock.Now().Sub(start), n)
		}
		billed = append(billed, h.job(t, id).BilledCalls)
		if restart {
			h.engine.Stop(context.Background())
			h.start(t, v)
			due = idle()
			if got := int(queries.Load()); got != n {
				t.Fatalf("after the restart following poll %d: %d polls, want %d (a restart polled before the job was due)", n, got, n)
			}
		}
	}
	h.engine.Stop(context.Background())
	return at, billed
}

// A restarted engine on the same store goes on with each job's poll
// schedule, backoff included: it polls nothing before it is due and bills
// no poll a bot that never stopped would not have made. Waits shorter than
// a couple of seconds too, and jobs waiting for a callback, whose polls
// are only a safety net.
func TestRestartKeepsPollSchedule(t *testing.T) {
	for _, tc := range []struct {
		name     string
		timing   engine.Timing
		callback bool
	}{
		// Waits of a minute and more: the backoff grows past a restart.
		{"Backoff", engine.Timing{First: time.Minute, Every: time.Minute, Max: time.Hour, Billed: true}, false},
		// Waits under a second: each one survives a restart too.
		{"ShortWaits", engine.Timing{First: 400 * time.Millisecond, Every: 150 * time.Millisecond, Max: 600 * time.Millisecond, Billed: true}, false},
		// A callback's safety-net poll, due in under 2 s.
		{"Callback", engine.Timing{First: 300 * time.Millisecond, Every: 150 * time.Millisecond, Max: 600 * time.Millisecond, Billed: true}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			run := func(restart bool) ([]time.Duration, []int) {
				f := newVendor("v")
				f.timing = tc.timing
				f.query = func(*engine.Job) (*engine.Outcome, error) {
					return &engine.Outcome{State: engine.TaskRunning, Progress: -1}, nil
				}
				var v engine.Vendor = f
				if tc.callback {
					v = callbackVendor{f}
				}
				return pollSchedule(t, v, &f.queries, 5, restart)
			}
			want, wantBilled := run(false)
			got, gotBilled := run(true)
			for i := range want {
				if got[i] != want[i] || gotBilled[i] != wantBilled[i] {
					t.Fatalf("poll %d with a restart after each poll at %v (billed %d), without restarts at %v (billed %d)\nwith restarts: %v\nwithout:       %v",
						i+1, got[i], gotBilled[i], want[i], wantBilled[i], got, want)
				}
			}
			// The schedule itself: the first poll after the vendor's typical
			// time (a callback's much later), then growing waits.
			if tc.callback && want[0] < 2*tc.timing.First+tc.timing.Max {
				t.Fatalf("a callback job polled at %v, before its safety-net wait", want[0])
			}
			if !tc.callback && (want[0] != tc.timing.First || want[2]-want[1] <= want[1]-want[0] && want[1]-want[0] < tc.timing.Max) {
				t.Fatalf("poll times %v: want the first at %v, then waits that grow", want, tc.timing.First)
			}
		})
	}
}

// A job waiting for a callback whose safety-net poll fell due while the bot
// was down is not polled at the restart: the vendor's calls back failed
// meanwhile and the vendor retries them, so the job waits its safety-net
// time again, and a callback in that time costs no poll at all.
func TestRestartAwaitsCallback(t *testing.T) {
	clock := testclock.New(time.Unix(1_700_000_000, 0))
	f := newVendor("cb")
	f.timing = engine.Timing{First: 300 * time.Millisecond, Every: 150 * time.Millisecond, Max: 600 * time.Millisecond, Billed: true}
	f.query = func(*engine.Job) (*engine.Outcome, error) {
		return &engine.Outcome{State: engine.TaskRunning, Progress: -1}, nil
	}
	f.parse = func(*engine.Job, []byte) (*engine.Outcome, error) { return done(), nil }
	v := callbackVendor{f}
	h := newHarness(t, engine.Config{Now: clock.Now, PublicURL: "http://bot.example", JobTimeout: 24 * time.Hour}, v)
	id := h.submit(t).ID
	deadline := time.Now().Add(10 * time.Second)
	for j := h.job(t, id); j.State != engine.StateSubmitted || j.NextAt.IsZero(); j = h.job(t, id) {
		if time.Now().After(deadline) {
			t.Fatalf("job not submitted with a next step: %+v", j)
		}
		time.Sleep(time.Millisecond)
	}
	h.engine.Stop(context.Background())
	// Down for a minute: the safety-net poll is long overdue.
	clock.Set(h.job(t, id).NextAt.Add(time.Minute))
	h.start(t, v)
	safety := 2*f.timing.First + f.timing.Max
	if due, ok := h.engine.DueAt(id); !ok || due.Before(clock.Now().Add(safety)) {
		t.Fatalf("after the restart the job is due in %v (%v), want no sooner than its safety-net wait %v", due.Sub(clock.Now()), ok, safety)
	}
	j := h.job(t, id)
	if _, _, err := h.engine.HandleCallback(context.Background(), "cb", id, j.CallbackToken, []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	h.notify.wait(t)
	got := h.waitFinished(t, id)
	if n := f.queries.Load(); n != 0 || got.State != engine.StateDelivered || got.BilledCalls != 1 {
		t.Fatalf("%d polls, %s, billed %d; want 0 polls, delivered, billed 1 (the submission)", n, got.State, got.BilledCalls)
	}
}
