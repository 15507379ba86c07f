package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/picbot/picbot/engine"
	"github.com/picbot/picbot/engine/a1111"
	"github.com/picbot/picbot/engine/a1111/a1111test"
)

var (
	gpuOnly  = flag.Bool("gpu", false, "only the self-hosted GPU figures: a backlog at the AUTOMATIC1111 fake")
	gpuJobs  = flag.Int("gpu-jobs", 200, "jobs in the GPU backlog")
	gpuSteps = flag.Int("gpu-steps", 25, "sampling steps per GPU job")
	gpuStep  = flag.Duration("gpu-step", 2*time.Millisecond, "the fake GPU's time per step")
	gpuRuns  = flag.Int("gpu-runs", 3, "GPU backlog runs")
	gpuAhead = flag.Int("gpu-ahead", 1, "jobs kept waiting at the backend beside the one running (the adapter's 1; 0 to compare)")
)

// ahead is the adapter with another number of jobs kept waiting at the
// backend, to compare: 0 is a bot that hands the next job over only when
// the last one is done, as the peers do.
type ahead struct {
	*a1111.Vendor
	n int
}

func (a ahead) Slots() int { return a.Running() + a.n }

type gpuRow struct {
	name             string
	jobs             int
	idleP50, idleP99 time.Duration // between one job's end and the next one's start, at the fake
	idleMax          time.Duration
	util             float64 // busy time over the span from the first start to the last end
	addedP50         time.Duration
	addedP99         time.Duration // the engine's DeliveryStarted: vendor seen done → post starts
	resultP99        time.Duration // at the fake: generation ended → post starts (encoding, HTTP, store included)
}

// gpuNotifier records when each job's post starts.
type gpuNotifier struct {
	mu     sync.Mutex
	posted map[string]time.Time
	done   chan struct{}
	want   int
}

func (n *gpuNotifier) Progress(context.Context, *engine.Job, engine.Progress) {}
func (n *gpuNotifier) Deliver(ctx context.Context, j *engine.Job) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, ok := n.posted[j.ID]; !ok {
		n.posted[j.ID] = time.Now()
		if len(n.posted) == n.want {
			close(n.done)
		}
	}
	return nil
}

type addedObserver struct {
	engine.Observer
	mu    sync.Mutex
	added []time.Duration
}

func (o *addedObserver) DeliveryStarted(j *engine.Job, d time.Duration) {
	o.mu.Lock()
	o.added = append(o.added, d)
	o.mu.Unlock()
}

// gpuBacklog submits a backlog of jobs from 20 users at once to one GPU
// (the AUTOMATIC1111 fake, one job at a time), through the real engine,
// store and adapter, and measures the GPU's idle time between jobs.
func gpuBacklog(o options, name string) (gpuRow, error) {
	r := gpuRow{name: name, jobs: *gpuJobs}
	w, err := newWorld(o)
	if err != nil {
		return r, err
	}
	defer w.close()
	fake := a1111test.New(a1111test.Options{StepTime: *gpuStep, NoLivePreviews: true})
	defer fake.Close()
	v, err := a1111.New(a1111.Config{BaseURL: fake.URL}, nil, w.blobs, nil)
	if err != nil {
		return r, err
	}
	n := &gpuNotifier{posted: map[string]time.Time{}, done: make(chan struct{}), want: *gpuJobs}
	obs := &addedObserver{Observer: &observer{}}
	var vendor engine.Vendor = v
	if *gpuAhead != 1 {
		vendor = ahead{Vendor: v, n: *gpuAhead}
	}
	e := engine.New(engine.Config{Routes: map[engine.Kind][]string{engine.KindDraw: {a1111.Name}}, Workers: o.workers,
		Observer: obs, JobTimeout: 3 * time.Hour, Logger: slog.New(slog.DiscardHandler)}, w.db, w.quota, w.blobs, n, vendor)
	if err := e.Start(context.Background()); err != nil {
		return r, err
	}
	defer e.Stop(context.Background())
	ids := map[string]string{} // task id → job id
	for i := range *gpuJobs {
		req := engine.Request{Kind: engine.KindDraw, Prompt: fmt.Sprintf("a red fox number %d", i), Width: 64, Height: 64, Steps: *gpuSteps, Seed: -1}
		j, err := e.Submit(context.Background(), engine.UserRef{Platform: "load", ID: fmt.Sprint(i % 20)}, room, req)
		if err != nil {
			return r, err
		}
		ids[j.ID+"-1"] = j.ID
	}
	limit := time.Duration(*gpuJobs) * time.Duration(*gpuSteps) * *gpuStep * 20
	select {
	case <-n.done:
	case <-time.After(limit):
		return r, fmt.Errorf("only %d of %d jobs posted in %s", len(n.posted), *gpuJobs, limit)
	}
	jobs := fake.Jobs()
	slices.SortFunc(jobs, func(a, b a1111test.Job) int { return a.Started.Compare(b.Started) })
	var idle, result []time.Duration
	var busy time.Duration
	for i, j := range jobs {
		busy += j.Ended.Sub(j.Started)
		if i > 0 {
			idle = append(idle, max(j.Started.Sub(jobs[i-1].Ended), 0))
		}
		if at, ok := n.posted[ids[j.TaskID]]; ok {
			result = append(result, at.Sub(j.Ended))
		}
	}
	span := jobs[len(jobs)-1].Ended.Sub(jobs[0].Started)
	r.util = float64(busy) / float64(span)
	r.idleP50, r.idleP99, r.idleMax = pct(idle, 50), pct(idle, 99), slices.Max(idle)
	obs.mu.Lock()
	r.addedP50, r.addedP99 = pct(obs.added, 50), pct(obs.added, 99)
	obs.mu.Unlock()
	r.resultP99 = pct(result, 99)
	return r, nil
}

func pct(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)*p/100, len(s)-1)]
}

func runGPU(o options) error {
	var rows []gpuRow
	for i := range *gpuRuns {
		r, err := gpuBacklog(o, fmt.Sprintf("run %d", i+1))
		if err != nil {
			return err
		}
		rows = append(rows, r)
	}
	med := func(f func(gpuRow) time.Duration) time.Duration {
		var ds []time.Duration
		for _, r := range rows {
			ds = append(ds, f(r))
		}
		return pct(ds, 50)
	}
	var utils []float64
	for _, r := range rows {
		utils = append(utils, r.util)
	}
	slices.Sort(utils)
	rows = append(rows, gpuRow{name: "median", jobs: *gpuJobs,
		idleP50: med(func(r gpuRow) time.Duration { return r.idleP50 }), idleP99: med(func(r gpuRow) time.Duration { return r.idleP99 }),
		idleMax: med(func(r gpuRow) time.Duration { return r.idleMax }), util: utils[len(utils)/2],
		addedP50: med(func(r gpuRow) time.Duration { return r.addedP50 }), addedP99: med(func(r gpuRow) time.Duration { return r.addedP99 }),
		resultP99: med(func(r gpuRow) time.Duration { return r.resultP99 })})
	fmt.Printf("GPU backlog: %d jobs from 20 users at once, %d steps × %s each, one AUTOMATIC1111 fake (concurrency 1), %d kept waiting there\n", *gpuJobs, *gpuSteps, *gpuStep, *gpuAhead)
	tw := tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\tjobs\tGPU idle p50\tGPU idle p99\tidle max\tutilisation\tbot-added p50\tbot-added p99\tresult→post p99\t")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%.2f%%\t%s\t%s\t%s\t\n", r.name, r.jobs, r.idleP50.Round(time.Microsecond), r.idleP99.Round(time.Microsecond),
			r.idleMax.Round(time.Microsecond), 100*r.util, r.addedP50.Round(time.Microsecond), r.addedP99.Round(time.Microsecond), r.resultP99.Round(time.Microsecond))
	}
	return tw.Flush()
}
