package showapi_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/picbot/picbot/engine"
	"github.com/picbot/picbot/engine/showapi"
	"github.com/picbot/picbot/engine/showapi/showapitest"
)

// restarted is an adapter for fake's account made afresh, as a restarted
// bot makes it: it tracks none of the tasks made before.
func restarted(t *testing.T, fake *showapitest.Server, now func() time.Time, cfg showapi.Config) *showapi.Vendor {
	t.Helper()
	cfg.BaseURL, cfg.AppCode = fake.URL, testCode
	v, err := showapi.New(cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	v.Now = now
	return v
}

// callbackJobs makes n tasks that report by callback (to an address that
// refuses, as a bot that is down), each job recording its task as the
// engine does.
func callbackJobs(t *testing.T, v *showapi.Vendor, now time.Time, n int, prompt string) []*engine.Job {
	t.Helper()
	var jobs []*engine.Job
	for i := range n {
		j := drawJob(prompt)
		j.ID = fmt.Sprintf("%s-%d", prompt, i)
		j.Request.Seed = int64(2000 + i)
		j.Callback = true
		submit(t, v, j, "http://127.0.0.1:1/callback/"+j.ID)
		j.SubmittedAt = now
		jobs = append(jobs, j)
	}
	return jobs
}

// pollAll polls every job at once, each on a metered context as the
// engine's, and returns the outcomes and the billed calls they reported.
func pollAll(t *testing.T, v *showapi.Vendor, jobs []*engine.Job) ([]*engine.Outcome, []error, int) {
	t.Helper()
	outs, errs, bills := make([]*engine.Outcome, len(jobs)), make([]error, len(jobs)), make([]int, len(jobs))
	var wg sync.WaitGroup
	for i, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, reported := engine.Metered(context.Background())
			outs[i], errs[i] = v.Query(ctx, j)
			bills[i], _ = reported()
		}()
	}
	wg.Wait()
	sum := 0
	for _, b := range bills {
		sum += b
	}
	return outs, errs, sum
}

// After a restart, the jobs whose callbacks came while the bot was down
// poll at once (the engine's grace over): seven finished tasks behind three
// later ones cost the two list pages that show them, not seven queries.
// Before the shared poll: seven billed /yourtaskresult calls.
func TestSharedPollAfterRestart(t *testing.T) {
	fake, v, clk := setup(t, showapitest.Options{NoSeedTask: true}, showapi.Config{})
	jobs := callbackJobs(t, v, clk.Now(), 7, "a called-back fox")
	for i := range 3 {
		other := drawJob("a later fox")
		other.Request.Seed = int64(i)
		submit(t, v, other, "")
	}
	clk.Add(time.Minute) // every task finished; no callback got through
	v2 := restarted(t, fake, clk.Now, showapi.Config{PollGather: 200 * time.Millisecond})
	billed, lists, results := fake.Billed(), fake.Calls("/yourtasklist"), fake.Calls("/yourtaskresult")
	outs, errs, reported := pollAll(t, v2, jobs)
	for i, out := range outs {
		if errs[i] != nil || out.State != engine.TaskDone || len(out.Images) == 0 || out.TaskID != jobs[i].TaskID {
			t.Fatalf("poll %d: %+v, %v", i, out, errs[i])
		}
	}
	if n := fake.Calls("/yourtaskresult") - results; n != 0 {
		t.Errorf("%d tasks asked for alone, want 0", n)
	}
	if n := fake.Calls("/yourtasklist") - lists; n != 2 {
		t.Errorf("%d list pages read for seven polls on pages 1 and 2, want 2", n)
	}
	if n := fake.Billed() - billed; n != reported || n != 2 {
		t.Errorf("the fake billed %d calls, the polls reported %d, want 2 each", n, reported)
	}
}

// A shared read that finds none of its polls' tasks (the vendor forgot
// them) costs one page, then each asks alone.
func TestSharedPollMissCostsOnePage(t *testing.T) {
	fake, v, clk := setup(t, showapitest.Options{NoSeedTask: true}, showapi.Config{})
	jobs := callbackJobs(t, v, clk.Now(), 3, "a forgotten fox")
	for _, j := range jobs {
		fake.Forget(j.TaskID)
	}
	for i := range 12 {
		other := drawJob("another fox")
		other.Request.Seed = int64(i)
		submit(t, v, other, "")
	}
	clk.Add(time.Minute)
	v2 := restarted(t, fake, clk.Now, showapi.Config{PollGather: 200 * time.Millisecond})
	billed, lists, results := fake.Billed(), fake.Calls("/yourtasklist"), fake.Calls("/yourtaskresult")
	_, errs, reported := pollAll(t, v2, jobs)
	for i, err := range errs {
		if engine.ErrorCode(err) != engine.ENOTFOUND {
			t.Errorf("poll %d: %v, want ENOTFOUND", i, err)
		}
	}
	if n := fake.Calls("/yourtasklist") - lists; n != 1 {
		t.Errorf("%d list pages read, want 1", n)
	}
	if n := fake.Calls("/yourtaskresult") - results; n != 3 {
		t.Errorf("%d tasks asked for alone, want 3", n)
	}
	// The document's "no such task" answer bills nothing: the page only.
	if n := fake.Billed() - billed; n != reported || n != 1 {
		t.Errorf("the fake billed %d calls, the polls reported %d, want 1 each", n, reported)
	}
}

// A poll alone reads no list: it waits poll_gather for company, then asks.
func TestSharedPollAlone(t *testing.T) {
	fake, v, clk := setup(t, showapitest.Options{NoSeedTask: true}, showapi.Config{})
	jobs := callbackJobs(t, v, clk.Now(), 1, "a lone fox")
	clk.Add(time.Minute)
	v2 := restarted(t, fake, clk.Now, showapi.Config{PollGather: 50 * time.Millisecond})
	lists, results := fake.Calls("/yourtasklist"), fake.Calls("/yourtaskresult")
	outs, errs, reported := pollAll(t, v2, jobs)
	if errs[0] != nil || outs[0].State != engine.TaskDone {
		t.Fatalf("poll: %+v, %v", outs[0], errs[0])
	}
	if fake.Calls("/yourtasklist") != lists || fake.Calls("/yourtaskresult")-results != 1 || reported != 1 {
		t.Errorf("list pages %d, queries %d, reported %d; want 0, 1, 1",
			fake.Calls("/yourtasklist")-lists, fake.Calls("/yourtaskresult")-results, reported)
	}
}

// This process's own tasks are asked for alone: a callback that did not
// come is most often a task the vendor lost, whose query alone bills nothing.
func TestSharedPollNotForOwnTasks(t *testing.T) {
	fake, _, clk := setup(t, showapitest.Options{NoSeedTask: true}, showapi.Config{})
	v := restarted(t, fake, clk.Now, showapi.Config{PollGather: 50 * time.Millisecond})
	jobs := callbackJobs(t, v, clk.Now(), 3, "an own fox")
	clk.Add(time.Minute)
	lists, results := fake.Calls("/yourtasklist"), fake.Calls("/yourtaskresult")
	_, errs, _ := pollAll(t, v, jobs)
	for i, err := range errs {
		if err != nil {
			t.Fatalf("poll %d: %v", i, err)
		}
	}
	if n, m := fake.Calls("/yourtasklist")-lists, fake.Calls("/yourtaskresult")-results; n != 0 || m != 3 {
		t.Errorf("%d list pages read and %d tasks asked for alone, want 0 and 3", n, m)
	}
}

// Two polls ask alone: a shared read would save one call at best and cost
// one on a miss (seen after restarts: two tasks behind page 1's newer ones).
func TestSharedPollNotForTwo(t *testing.T) {
	fake, v, clk := setup(t, showapitest.Options{NoSeedTask: true}, showapi.Config{})
	jobs := callbackJobs(t, v, clk.Now(), 2, "a paired fox")
	clk.Add(time.Minute)
	v2 := restarted(t, fake, clk.Now, showapi.Config{PollGather: 50 * time.Millisecond})
	lists, results := fake.Calls("/yourtasklist"), fake.Calls("/yourtaskresult")
	if _, errs, _ := pollAll(t, v2, jobs); errs[0] != nil || errs[1] != nil {
		t.Fatal(errs)
	}
	if n, m := fake.Calls("/yourtasklist")-lists, fake.Calls("/yourtaskresult")-results; n != 0 || m != 2 {
		t.Errorf("%d list pages read and %d tasks asked for alone, want 0 and 2", n, m)
	}
}

// After a long outage twenty overdue polls lie behind twelve tasks made
// since: the read goes past the newer pages to where the twenty were made
// and answers them all in no more pages than one per five and two more
// (pages 1, then 3-7), not twenty queries.
func TestSharedPollAfterLongOutage(t *testing.T) {
	fake, v, clk := setup(t, showapitest.Options{NoSeedTask: true}, showapi.Config{})
	var jobs []*engine.Job
	for range 20 { // one a second
		jobs = append(jobs, callbackJobs(t, v, clk.Now(), 1, fmt.Sprintf("an overdue fox %d", len(jobs)))...)
		clk.Add(time.Second)
	}
	clk.Add(5 * time.Minute)
	for i := range 12 {
		other := drawJob("a newer fox")
		other.Request.Seed = int64(i)
		submit(t, v, other, "")
		clk.Add(time.Second)
	}
	clk.Add(time.Minute)
	v2 := restarted(t, fake, clk.Now, showapi.Config{PollGather: 200 * time.Millisecond})
	billed, lists, results := fake.Billed(), fake.Calls("/yourtasklist"), fake.Calls("/yourtaskresult")
	outs, errs, reported := pollAll(t, v2, jobs)
	for i, out := range outs {
		if errs[i] != nil || out.State != engine.TaskDone {
			t.Fatalf("poll %d: %+v, %v", i, out, errs[i])
		}
	}
	pages, alone := fake.Calls("/yourtasklist")-lists, fake.Calls("/yourtaskresult")-results
	if pages > 6 || alone != 0 {
		t.Errorf("%d list pages read and %d tasks asked for alone, want at most 6 and 0", pages, alone)
	}
	if n := fake.Billed() - billed; n != reported || n != pages {
		t.Errorf("the fake billed %d calls, the polls reported %d, %d pages were read", n, reported, pages)
	}
	var read []string
	for _, r := range fake.Requests() {
		if r.Path == "/yourtasklist" {
			read = append(read, r.Query.Get("page"))
		}
	}
	t.Logf("twenty polls: %d pages (pages read, the first since the start: %v)", pages, read)
}
