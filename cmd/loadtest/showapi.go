package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"runtime"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/picbot/picbot/engine"
	"github.com/picbot/picbot/engine/showapi"
	"github.com/picbot/picbot/engine/showapi/showapitest"
)

var (
	showOnly = flag.Bool("showapi", false, "only the ShowAPI polling figures: jobs through the ShowAPI fake without callbacks, by list and task by task (default 20 in flight, 3 runs)")
	showJobs = flag.Int("showapi-jobs", 100, "jobs in each ShowAPI run")
	showSide = flag.Int("showapi-side", 512, "the ShowAPI images' side (512: the first poll falls when the task ends; 768: well after)")
)

// showRow is one ShowAPI run's figures.
type showRow struct {
	name       string
	byList     bool
	delivered  int
	peak       int // most jobs in flight seen at an arrival
	fake, bot  int // billed calls: the fake's own count (showapi_fee_num), the engine's record
	listCalls  int // calls to /yourtasklist
	p50, p99   time.Duration
	perImage   float64 // the fake's billed calls per delivered image
	botPerImg  float64
	resultWait []time.Duration
}

// showFlow runs jobs through the real engine and the real ShowAPI adapter,
// polling (no callbacks), against the ShowAPI fake on loopback, arriving
// one every task/inflight so that about o.inflight are at the vendor at
// once. byList false turns polling by /yourtasklist off (list_poll_min -1).
// The adapter's timing is its defaults scaled to the fake's task time
// (equal to them at the default 8 s).
func showFlow(o options, jobs, side int, byList bool) (showRow, error) {
	r := showRow{byList: byList}
	w, err := newWorld(o)
	if err != nil {
		return r, err
	}
	defer w.close()
	const code = "load-appcode"
	fake := showapitest.Start(showapitest.Options{AppCode: code, Duration: o.task, NoSeedTask: true})
	defer fake.Close()
	off := false
	cfg := showapi.Config{BaseURL: fake.URL, AppCode: code, Callbacks: &off,
		Typical: o.task, PollEvery: o.task * 3 / 8, PollMax: o.task * 20 / 8, ListDefer: o.task * 3 / 8}
	if !byList {
		cfg.ListPollMin = -1
	}
	discard := slog.New(slog.DiscardHandler)
	vendor, err := showapi.New(cfg, &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}, discard)
	if err != nil {
		return r, err
	}
	obs := &observer{}
	done := make(chan struct{})
	notify := &countingNotifier{want: int64(jobs), done: done, posted: make(map[string]time.Time, jobs)}
	e := engine.New(engine.Config{
		Workers: o.workers, Routes: map[engine.Kind][]string{engine.KindDraw: {vendor.Name()}},
		Observer: obs, JobTimeout: max(10*o.task, time.Minute), Logger: discard,
	}, w.db, w.quota, w.blobs, notify, vendor)
	if err := e.Start(context.Background()); err != nil {
		return r, err
	}
	defer e.Stop(context.Background())

	interval := o.task / time.Duration(o.inflight)
	next := time.Now()
	for i := range jobs {
		if d := time.Until(next); d > 0 {
			time.Sleep(d)
		}
		next = next.Add(interval)
		r.peak = max(r.peak, e.Outstanding(""))
		req := draw(i)
		req.Width, req.Height = side, side
		if _, err := e.Submit(context.Background(), user(i), room, req); err != nil {
			return r, err
		}
	}
	limit := max(20*o.task, time.Minute)
	select {
	case <-done:
	case <-time.After(limit):
		return r, fmt.Errorf("%d of %d jobs delivered within %s of the last arrival", notify.n.Load(), jobs, limit)
	}
	r.delivered = int(notify.n.Load())
	r.fake, r.bot, r.listCalls = fake.Billed(), int(obs.billed.Load()), fake.Calls("/yourtasklist")
	r.perImage, r.botPerImg = float64(r.fake)/float64(r.delivered), float64(r.bot)/float64(r.delivered)
	// The result's added delay: from the task's end on the fake's clock to
	// the moment the job's post starts, so the wait for a poll counts.
	notify.mu.Lock()
	for id, at := range notify.posted {
		if end, ok := fake.Ended(id); ok {
			r.resultWait = append(r.resultWait, at.Sub(end))
		}
	}
	notify.mu.Unlock()
	if len(r.resultWait) != r.delivered {
		return r, fmt.Errorf("%d deliveries matched to the fake's tasks, want %d", len(r.resultWait), r.delivered)
	}
	r.p50, r.p99 = pct(r.resultWait, 50), pct(r.resultWait, 99)
	return r, nil
}

// showRuns runs both modes o.runs times, alternating so that a disturbed
// stretch of a shared machine falls on both.
func showRuns(o options, jobs, side int) (task, list []showRow, err error) {
	for i := range o.runs {
		for _, byList := range []bool{false, true} {
			r, err := showFlow(o, jobs, side, byList)
			if err != nil {
				return nil, nil, fmt.Errorf("run %d (by list %v): %w", i+1, byList, err)
			}
			r.name = fmt.Sprintf("run %d", i+1)
			if byList {
				list = append(list, r)
			} else {
				task = append(task, r)
			}
		}
	}
	return task, list, nil
}

// showMedian is the median of each figure over rows.
func showMedian(rows []showRow) showRow {
	f := func(get func(showRow) float64) float64 {
		v := make([]float64, len(rows))
		for i, r := range rows {
			v[i] = get(r)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	d := func(get func(showRow) time.Duration) time.Duration {
		return time.Duration(f(func(r showRow) float64 { return float64(get(r)) }))
	}
	m := showRow{name: "median", byList: rows[0].byList}
	m.delivered = int(f(func(r showRow) float64 { return float64(r.delivered) }))
	m.peak = int(f(func(r showRow) float64 { return float64(r.peak) }))
	m.fake = int(f(func(r showRow) float64 { return float64(r.fake) }))
	m.bot = int(f(func(r showRow) float64 { return float64(r.bot) }))
	m.listCalls = int(f(func(r showRow) float64 { return float64(r.listCalls) }))
	m.perImage = f(func(r showRow) float64 { return r.perImage })
	m.botPerImg = f(func(r showRow) float64 { return r.botPerImg })
	m.p50, m.p99 = d(func(r showRow) time.Duration { return r.p50 }), d(func(r showRow) time.Duration { return r.p99 })
	return m
}

func runShowAPI(o options) error {
	task, list, err := showRuns(o, *showJobs, *showSide)
	if err != nil {
		return err
	}
	fmt.Printf("ShowAPI polling (no callbacks): %d jobs a run, %d in flight, %dx%d images, vendor task %s, %d workers, %d CPUs, fsync %v\n\n",
		*showJobs, o.inflight, *showSide, *showSide, o.task, o.workers, runtime.NumCPU(), !o.noSync)
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "mode\trun\timages\tpeak in flight\tbilled (fake / bot)\tlist calls\tbilled/image (fake / bot)\tresult delay p50\tp99\t")
	line := func(r showRow) {
		mode := "task by task"
		if r.byList {
			mode = "by list"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d / %d\t%d\t%.2f / %.2f\t%s\t%s\t\n", mode, r.name, r.delivered, r.peak, r.fake, r.bot, r.listCalls,
			r.perImage, r.botPerImg, r.p50.Round(10*time.Millisecond), r.p99.Round(10*time.Millisecond))
	}
	for _, rows := range [][]showRow{task, list} {
		for _, r := range rows {
			line(r)
		}
		if len(rows) > 1 {
			line(showMedian(rows))
		}
	}
	tw.Flush()
	mt, ml := showMedian(task), showMedian(list)
	fmt.Printf("\nby list / task by task, billed calls per image (fake): %.2f / %.2f = %.2f; target by list ≤ 1.4: ", ml.perImage, mt.perImage, ml.perImage/mt.perImage)
	if ml.perImage <= 1.4 {
		fmt.Println("met")
	} else {
		fmt.Println("missed")
	}
	return nil
}
