package showapi_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/picbot/picbot/engine"
	"github.com/picbot/picbot/engine/showapi"
	"github.com/picbot/picbot/engine/showapi/showapitest"
	"github.com/picbot/picbot/internal/testclock"
)

// deadTasks makes n tasks through v, gap(i) after the i-th, as processes
// that then died did; the one at index lostAt is the lost job's, whose
// answer was lost (made) or whose request never arrived (not made). It
// returns the lost job and its task ("" if not made). With noted, each
// task made is polled once done (its record seen, as a callback shows it
// too), and the lost job's marker carries v's note as the engine stores it.
func deadTasks(t *testing.T, v *showapi.Vendor, clk *testclock.Clock, n, lostAt int, made, noted bool, gap func(i int) time.Duration) (*engine.Job, string) {
	t.Helper()
	lost := drawJob("a lost fox")
	var want string
	for i := range n {
		if i == lostAt {
			lost.Submitting = &engine.Submitting{Vendor: showapi.Name, TaskID: "J1-1", Attempt: 1, At: clk.Now(), Host: engine.HostName()}
			if noted {
				lost.Submitting.Note = v.MarkNote()
			}
			if made {
				id, err := v.Submit(context.Background(), lost, engine.Task{ID: "J1-1"})
				if err != nil {
					t.Fatal(err)
				}
				want = id
			}
		} else {
			other := drawJob("a fox of before")
			other.Request.Seed = int64(100 + i)
			submit(t, v, other, "")
			if noted {
				if _, err := v.Query(context.Background(), other); err != nil {
					t.Fatal(err)
				}
			}
		}
		clk.Add(gap(i))
	}
	return lost, want
}

// every is a gap for deadTasks: d after each task.
func every(d time.Duration) func(int) time.Duration {
	return func(int) time.Duration { return d }
}

// restartedSearch starts a new adapter for fake's account, as a restarted
// bot does, which sends its queued jobs (n, gap apart), then looks for
// lost's task. It returns the pages it read.
func restartedSearch(t *testing.T, fake *showapitest.Server, clk *testclock.Clock, cfg showapi.Config, n int, gap time.Duration, lost *engine.Job) (id string, found bool, read []string) {
	t.Helper()
	cfg.BaseURL, cfg.AppCode, cfg.FindGather = fake.URL, testCode, -1
	v, err := showapi.New(cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	v.Now = clk.Now
	for i := range n {
		queued := drawJob("a queued fox")
		queued.Request.Seed = int64(i)
		queued.Submitting = &engine.Submitting{Vendor: showapi.Name, At: clk.Now(), Host: engine.HostName()}
		submit(t, v, queued, "")
		clk.Add(gap)
	}
	before := len(fake.Requests())
	id, found, err = v.FindTask(context.Background(), lost, engine.Task{ID: "J1-1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range fake.Requests()[before:] {
		if r.Path == "/yourtasklist" {
			read = append(read, r.Query.Get("page"))
		}
	}
	return id, found, read
}

// A search among tasks made fast (25 a second, as a run of crashes left
// them) reads the pages near its submission by the ct of the tasks this
// process made (calibration), not every page within date_skew of it; a
// task never made costs 3 pages at most, and one made is still found.
func TestFindTaskCalibrated(t *testing.T) {
	fewerPages(t, "calibrated", func(t *testing.T, made, on bool) int {
		return searchPages(t, made, false, showapi.Config{FindCalibrate: &on}, 3)
	})
}

// fewerPages runs pages(made, on) for a task made and one never made,
// with a feature off and on: on, at most 3 list pages, and fewer than off.
func fewerPages(t *testing.T, feature string, pages func(t *testing.T, made, on bool) int) {
	for _, made := range []bool{false, true} {
		t.Run(fmt.Sprintf("made=%v", made), func(t *testing.T) {
			off, on := pages(t, made, false), pages(t, made, true)
			if on > 3 || on >= off {
				t.Errorf("%d list pages read %s, %d without: want at most 3, and fewer", on, feature, off)
			}
		})
	}
}

// searchPages makes 30 tasks 40 ms apart through a process that then died,
// the 16th the lost job's (made or not, its marker noted or not), and
// looks for it from a process restarted 300 ms later with cfg, which first
// makes newTasks tasks 40 ms apart; it returns the list pages read.
func searchPages(t *testing.T, made, noted bool, cfg showapi.Config, newTasks int) int {
	t.Helper()
	fake, v, clk := setup(t, showapitest.Options{NoSeedTask: true}, showapi.Config{})
	lost, want := deadTasks(t, v, clk, 30, 15, made, noted, every(40*time.Millisecond))
	if noted && lost.Submitting.Note == "" {
		t.Fatal("no note on the marker after 15 tasks' records")
	}
	clk.Add(300 * time.Millisecond)
	id, found, read := restartedSearch(t, fake, clk, cfg, newTasks, 40*time.Millisecond, lost)
	if found != made || id != want {
		t.Fatalf("found %q (%v), want %q (%v)", id, found, want, made)
	}
	t.Logf("noted %v, calibrate %v: pages %v", noted, cfg.FindCalibrate == nil || *cfg.FindCalibrate, read)
	return len(read)
}

// After a restart the new process's first tasks come faster than the old
// ones did (its queued jobs at once), and a lost creation stands on page
// 5 behind them. Calibrated, page 1 is wholly newer than the submission,
// so the search may read find_deep_pages. The submission was marked before
// this process made any task, so the new tasks' pace says nothing of the
// time between (the bot was down): the search reads just below them (page
// 2, the dead process's tasks), then aims by those tasks' pace: found in 3
// pages. Reckoned at the new tasks' pace the task seemed far deeper than
// it is: pages 1, 13, 7, 6, 5. Before that (Date header alone): pages
// 1-4, every task within date_skew, and the task not found: sent again.
func TestFindTaskAfterFastRestart(t *testing.T) {
	fake, v, clk := setup(t, showapitest.Options{NoSeedTask: true}, showapi.Config{})
	lost, want := deadTasks(t, v, clk, 60, 40, true, false, every(40*time.Millisecond))
	clk.Add(500 * time.Millisecond)
	id, found, read := restartedSearch(t, fake, clk, showapi.Config{}, 5, 2*time.Millisecond, lost)
	t.Logf("pages %v", read)
	if !found || id != want {
		t.Fatalf("found %q (%v), want %q", id, found, want)
	}
	if len(read) > 3 {
		t.Errorf("%d list pages read, want at most 3", len(read))
	}
}

// A kill as the dead process sent its last task's creation (never made):
// the newest pages hold the new process's tasks, just below them the dead
// process's last ones. The window lies right there; every page that can
// hold the task is read, and no more (seen in the crash suite before:
// pages 1, 8, 5, 6, 7, the oldest first, then back).
func TestFindTaskNeverMadeAfterRestart(t *testing.T) {
	for _, n := range []int{8, 23} {
		t.Run(fmt.Sprint(n, " new tasks"), func(t *testing.T) {
			fake, v, clk := setup(t, showapitest.Options{NoSeedTask: true}, showapi.Config{})
			lost, _ := deadTasks(t, v, clk, 40, 39, false, false, every(40*time.Millisecond))
			clk.Add(700 * time.Millisecond)
			neverFound(t, fake, clk, n, 3*time.Millisecond, lost, 3)
		})
	}
}

// neverFound looks for lost's task, never made, from a process restarted
// now that first makes n tasks gap apart, and wants at most most list
// pages read.
func neverFound(t *testing.T, fake *showapitest.Server, clk *testclock.Clock, n int, gap time.Duration, lost *engine.Job, most int) {
	t.Helper()
	_, found, read := restartedSearch(t, fake, clk, showapi.Config{}, n, gap, lost)
	t.Logf("pages %v", read)
	if found {
		t.Fatal("found a task never made")
	}
	if len(read) > most {
		t.Errorf("%d list pages read, want at most %d", len(read), most)
	}
}

// A submission another machine marked (a replica that died) is looked for
// by the Date header's window: this machine's clock, which the calibration
// ties to the vendor's, is not that machine's.
func TestFindTaskCalibratedOnlyHere(t *testing.T) {
	fake, v, clk := setup(t, showapitest.Options{NoSeedTask: true}, showapi.Config{})
	lost, _ := deadTasks(t, v, clk, 30, 15, false, true, every(40*time.Millisecond))
	lost.Submitting.Host = "another-machine"
	clk.Add(300 * time.Millisecond)
	_, found, read := restartedSearch(t, fake, clk, showapi.Config{}, 3, 40*time.Millisecond, lost)
	if found || len(read) != 4 {
		t.Errorf("found %v in pages %v, want none in the 4 (find_pages) the Date header's window gives", found, read)
	}
}

// A restarted process that has made no task yet calibrates a dead
// process's search by the note on its marker: what that process's tasks'
// records told of the vendor's clock. Without it the search reads every
// page within the Date header's window (find_pages, four); with it, the
// pages near the submission, found or not.
func TestFindTaskCalibratedByNote(t *testing.T) {
	fewerPages(t, "with the note", func(t *testing.T, made, on bool) int {
		return searchPages(t, made, on, showapi.Config{}, 0)
	})
}

// A burst (tasks 10 ms apart, as the commands a crash left queued go at
// once): a search for a task never made reads the pages its calibrated
// window holds, and that window is the clocks' tie and a call's time with
// 20 ms each side: 3 pages, where 100 ms each side read 6 (pages of a
// burst the crash suite read for nothing).
func TestFindTaskCalibratedBurst(t *testing.T) {
	fake, v, clk := setup(t, showapitest.Options{NoSeedTask: true}, showapi.Config{})
	lost, _ := deadTasks(t, v, clk, 60, 30, false, true, every(10*time.Millisecond))
	clk.Add(time.Second)
	neverFound(t, fake, clk, 0, 0, lost, 3)
}

// Bursts (six tasks 5 ms apart, 300 ms between, as a crash run's commands
// come): a dead process's task never made, 40 tasks deep, after a
// restart that made two tasks. Reckoned at a burst's pace the submission
// seems deeper than the whole list; the search then aims between the
// oldest page and the newest by time, not back a page at a time from the
// oldest, which a burst's pace took for the sign of an idle spell: 4 pages
// (1, 13, 9, 8), where it read 6 (1, 13, 12, 11, 8, 9; seen in the crash
// suite: 1, 10, 9, 4, 8, 7, 6).
func TestFindTaskBurstyDeep(t *testing.T) {
	for _, made := range []bool{false, true} {
		t.Run(fmt.Sprintf("made=%v", made), func(t *testing.T) {
			fake, v, clk := setup(t, showapitest.Options{NoSeedTask: true}, showapi.Config{})
			lost, want := deadTasks(t, v, clk, 60, 20, made, true, func(i int) time.Duration {
				if i%6 == 5 {
					return 305 * time.Millisecond // a burst's last, then a pause
				}
				return 5 * time.Millisecond
			})
			clk.Add(700 * time.Millisecond)
			id, found, read := restartedSearch(t, fake, clk, showapi.Config{}, 2, 3*time.Millisecond, lost)
			t.Logf("pages %v", read)
			if found != made || id != want {
				t.Fatalf("found %q (%v), want %q (%v)", id, found, want, made)
			}
			if len(read) > 4 {
				t.Errorf("%d list pages read, want at most 4", len(read))
			}
		})
	}
}
