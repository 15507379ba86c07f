package showapi_test

import (
	"context"
	"fmt"
	"math"
	"sort"
	"testing"
	"time"

	"github.com/picbot/picbot/engine"
	"github.com/picbot/picbot/engine/showapi"
	"github.com/picbot/picbot/engine/showapi/showapitest"
)

// pollRun plays the engine's schedule on a shared clock: n jobs arriving
// one every task/inflight, each polled first after Timing.First, then after
// Every growing by half (up to Max), until its task ends. It returns the
// fake's billed calls per image and the mean wait past each task's end.
func pollRun(t *testing.T, cfg showapi.Config, n, inflight, side int) (float64, time.Duration) {
	t.Helper()
	const task = 8 * time.Second
	fake, v, clk := setup(t, showapitest.Options{Duration: task, NoSeedTask: true}, cfg)
	ctx := context.Background()
	type ev struct {
		at    time.Time
		job   *engine.Job
		polls int
	}
	var queue []ev
	start := clk.Now()
	interval := task / time.Duration(inflight)
	created := map[string]time.Time{}
	for i := range n {
		queue = append(queue, ev{at: start.Add(time.Duration(i) * interval), job: nil, polls: -1 - i})
	}
	// A wake (engine.Waker) makes the job's next poll due now, as the engine does.
	woken := map[string]bool{}
	if w, ok := any(v).(engine.Waker); ok {
		w.SetWake(func(id string) { woken[id] = true })
	}
	var late time.Duration
	done := 0
	for len(queue) > 0 {
		for i := range queue {
			if queue[i].job != nil && woken[queue[i].job.ID] && queue[i].at.After(clk.Now()) {
				queue[i].at = clk.Now()
			}
		}
		clear(woken)
		sort.SliceStable(queue, func(a, b int) bool { return queue[a].at.Before(queue[b].at) })
		e := queue[0]
		queue = queue[1:]
		if d := e.at.Sub(clk.Now()); d > 0 {
			clk.Add(d)
		}
		if e.job == nil { // an arrival
			j := drawJob(fmt.Sprintf("fox %d", -e.polls))
			j.ID = fmt.Sprintf("J%d", -e.polls)
			j.Request.Seed = int64(-e.polls)
			j.Request.Width, j.Request.Height = side, side
			submit(t, v, j, "")
			created[j.TaskID] = clk.Now()
			tm := v.Timing(&j.Request)
			queue = append(queue, ev{at: clk.Now().Add(tm.First), job: j})
			continue
		}
		out, err := v.Query(ctx, e.job)
		if err != nil {
			t.Fatal(err)
		}
		if out.State == engine.TaskDone || out.State == engine.TaskFailed {
			done++
			late += clk.Now().Sub(created[e.job.TaskID].Add(task))
			continue
		}
		tm := v.Timing(&e.job.Request)
		wait := time.Duration(float64(tm.Every) * math.Pow(1.5, float64(e.polls)))
		queue = append(queue, ev{at: clk.Now().Add(min(wait, tm.Max)), job: e.job, polls: e.polls + 1})
	}
	if done != n {
		t.Fatalf("%d of %d done", done, n)
	}
	return float64(fake.Billed()) / float64(n), late / time.Duration(n)
}

// With 20 polled tasks in flight, polling by list costs at most 1.4 billed
// calls an image (the creation included), against 2.0 task by task.
func TestPollByList(t *testing.T) {
	alone, lateAlone := pollRun(t, showapi.Config{ListPollMin: -1}, 100, 20, 768)
	byList, lateList := pollRun(t, showapi.Config{}, 100, 20, 768)
	t.Logf("billed calls an image: %.2f task by task (%.1fs late), %.2f by list (%.1fs late)", alone, lateAlone.Seconds(), byList, lateList.Seconds())
	if alone < 1.9 {
		t.Errorf("task by task %.2f: the run does not poll as the engine does", alone)
	}
	if byList > 1.4 {
		t.Errorf("by list %.2f billed calls an image, want at most 1.4", byList)
	}
	if lateList > lateAlone+3*time.Second {
		t.Errorf("results %.1fs late on average, %.1fs task by task", lateList.Seconds(), lateAlone.Seconds())
	}
	// Few tasks in flight: task by task, as before.
	few, _ := pollRun(t, showapi.Config{}, 10, 1, 512)
	if few < 1.9 || few > 2.1 {
		t.Errorf("one in flight: %.2f", few)
	}
}

// When the first poll falls due just as the task ends (512×512, the typical
// duration), polling by list still costs less than task by task.
func TestPollByListOnTime(t *testing.T) {
	alone, _ := pollRun(t, showapi.Config{ListPollMin: -1}, 100, 20, 512)
	byList, late := pollRun(t, showapi.Config{}, 100, 20, 512)
	t.Logf("billed calls an image: %.2f task by task, %.2f by list (%.1fs late)", alone, byList, late.Seconds())
	if byList > 1.4 || byList >= alone {
		t.Errorf("by list %.2f, task by task %.2f", byList, alone)
	}
}

// A list read that finds other polled tasks finished answers them at once
// (a wake), and a read waits for the page's tasks to be due, not merely
// soon due: at 512×512, where the first poll falls as the task ends, the
// polling costs about one read in five and a result waits well under the
// defer (before: 1.47 calls an image, each result the whole defer late).
func TestPollByListPromptly(t *testing.T) {
	byList, late := pollRun(t, showapi.Config{}, 100, 20, 512)
	t.Logf("by list: %.2f billed calls an image, %.2fs late on average", byList, late.Seconds())
	if byList > 1.3 {
		t.Errorf("by list %.2f billed calls an image, want at most 1.3", byList)
	}
	if late > 1500*time.Millisecond {
		t.Errorf("results %.2fs late on average, want under 1.5s (the defer is 3s)", late.Seconds())
	}
}
