package showapi_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/picbot/picbot/engine"
	"github.com/picbot/picbot/engine/showapi"
	"github.com/picbot/picbot/engine/showapi/showapitest"
)

// A search among tasks made fast (25 a second, as a run of crashes left
// them) reads the pages near its submission by the ct of the tasks this
// process made (calibration), not every page within date_skew of it; a
// task never made costs 3 pages at most, and one made is still found.
func TestFindTaskCalibrated(t *testing.T) {
	for _, made := range []bool{false, true} {
		t.Run(fmt.Sprintf("made=%v", made), func(t *testing.T) {
			pages := map[bool]int{}
			for _, calibrate := range []bool{false, true} {
				fake, v, clk := setup(t, showapitest.Options{NoSeedTask: true}, showapi.Config{})
				ctx := context.Background()
				lost := drawJob("a lost fox")
				var want string
				for i := range 30 { // the dead processes' tasks, 40 ms apart
					if i == 15 {
						lost.Submitting = &engine.Submitting{Vendor: showapi.Name, TaskID: "J1-1", Attempt: 1, At: clk.Now(), Host: engine.HostName()}
						if made {
							id, err := v.Submit(ctx, lost, engine.Task{ID: "J1-1"}) // its answer is "lost"
							if err != nil {
								t.Fatal(err)
							}
							want = id
						}
					} else {
						other := drawJob("a fox of before")
						other.Request.Seed = int64(100 + i)
						submit(t, v, other, "")
					}
					clk.Add(40 * time.Millisecond)
				}
				clk.Add(300 * time.Millisecond)
				// The restarted process sends its queued jobs, then searches.
				v2, err := showapi.New(showapi.Config{BaseURL: fake.URL, AppCode: testCode, FindGather: -1, FindCalibrate: &calibrate}, nil, nil)
				if err != nil {
					t.Fatal(err)
				}
				v2.Now = clk.Now
				for i := range 3 {
					queued := drawJob("a queued fox")
					queued.Request.Seed = int64(i)
					queued.Submitting = &engine.Submitting{Vendor: showapi.Name, At: clk.Now()}
					submit(t, v2, queued, "")
					clk.Add(40 * time.Millisecond)
				}
				before := len(fake.Requests())
				id, found, err := v2.FindTask(ctx, lost, engine.Task{ID: "J1-1"})
				if err != nil || found != made || id != want {
					t.Fatalf("calibrate=%v: found %q (%v), want %q (%v); err %v", calibrate, id, found, want, made, err)
				}
				var read []string
				for _, r := range fake.Requests()[before:] {
					if r.Path == "/yourtasklist" {
						read = append(read, r.Query.Get("page"))
					}
				}
				pages[calibrate] = len(read)
				t.Logf("calibrate=%v: pages %v", calibrate, read)
			}
			if pages[true] > 3 || pages[true] >= pages[false] {
				t.Errorf("%d list pages read calibrated, %d by the Date header alone: want at most 3, and fewer", pages[true], pages[false])
			}
		})
	}
}

// After a restart the new process's first tasks come faster than the old
// ones did (its queued jobs at once), and a lost creation stands on page
// 5 behind them. Calibrated, page 1 is wholly newer than the submission,
// so the search may read find_deep_pages; reckoned at the new tasks' pace
// the task seems far deeper than it is, the search reads a page past it
// (13), then aims between the two by time, not back a page at a time:
// found in 5 pages. Before (Date header alone): pages 1-4, every task
// within date_skew, and the task not found: sent again. Calibrated but
// stepping back: pages 1, 13, 12, ..., 7, not found either.
func TestFindTaskAfterFastRestart(t *testing.T) {
	fake, v, clk := setup(t, showapitest.Options{NoSeedTask: true}, showapi.Config{})
	ctx := context.Background()
	lost := drawJob("a lost fox")
	var want string
	for i := range 60 { // the dead processes' tasks, 40 ms apart
		if i == 40 {
			lost.Submitting = &engine.Submitting{Vendor: showapi.Name, TaskID: "J1-1", Attempt: 1, At: clk.Now(), Host: engine.HostName()}
			id, err := v.Submit(ctx, lost, engine.Task{ID: "J1-1"}) // its answer is "lost"
			if err != nil {
				t.Fatal(err)
			}
			want = id
		} else {
			other := drawJob("a fox of before")
			other.Request.Seed = int64(100 + i)
			submit(t, v, other, "")
		}
		clk.Add(40 * time.Millisecond)
	}
	clk.Add(500 * time.Millisecond)
	v2, err := showapi.New(showapi.Config{BaseURL: fake.URL, AppCode: testCode, FindGather: -1}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	v2.Now = clk.Now
	for i := range 5 { // queued jobs, 2 ms apart
		queued := drawJob("a queued fox")
		queued.Request.Seed = int64(i)
		queued.Submitting = &engine.Submitting{Vendor: showapi.Name, At: clk.Now(), Host: engine.HostName()}
		submit(t, v2, queued, "")
		clk.Add(2 * time.Millisecond)
	}
	before := len(fake.Requests())
	id, found, err := v2.FindTask(ctx, lost, engine.Task{ID: "J1-1"})
	var read []string
	for _, r := range fake.Requests()[before:] {
		if r.Path == "/yourtasklist" {
			read = append(read, r.Query.Get("page"))
		}
	}
	t.Logf("pages %v", read)
	if err != nil || !found || id != want {
		t.Fatalf("found %q (%v), want %q; err %v", id, found, want, err)
	}
	if len(read) > 5 {
		t.Errorf("%d list pages read, want at most 5", len(read))
	}
}
