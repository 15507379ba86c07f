// Command loadtest measures the bot's own performance: the real engine,
// store and quota code against the APISpace fake vendor on loopback (in
// callback mode and in polling mode), with simulated users on a
// console-like notifier. It prints one table, a row per run and a median.
//
//	go run ./cmd/loadtest          # short run, well under a minute
//	go run ./cmd/loadtest -full    # 1,000 jobs in flight, 3 runs
//	go run ./cmd/loadtest -gpu     # a 200-job backlog at one self-hosted GPU (the AUTOMATIC1111 fake)
//	go run ./cmd/loadtest -showapi # ShowAPI polled without callbacks: by list against task by task
//	go run ./cmd/loadtest -postgres postgres://... -replicas 2 # callbacks to a replica not holding the job
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/picbot/picbot/engine"
	"github.com/picbot/picbot/engine/apispace"
	"github.com/picbot/picbot/engine/apispace/apispacetest"
	"github.com/picbot/picbot/httpapi"
	"github.com/picbot/picbot/quota"
	"github.com/picbot/picbot/store"
)

type options struct {
	inflight  int           // jobs at the vendor at once, in the steady state
	task      time.Duration // how long the fake vendor takes per task
	admitFor  time.Duration // how long the admission run lasts
	resume    int           // unfinished jobs for the resume run
	heapJobs  int           // in-flight jobs for the heap measurement
	runs      int
	ramps     int // arrivals last this many task durations: 1 reaches the in-flight figure once, more hold it
	workers   int
	noSync    bool
	keepFiles bool
}

func main() {
	var o options
	full := flag.Bool("full", false, "the full run: 1,000 in flight, 3 runs")
	flag.IntVar(&o.inflight, "inflight", 0, "jobs in flight in the steady state (default 300, full 1000)")
	flag.DurationVar(&o.task, "task", 8*time.Second, "the fake vendor's time per task")
	flag.DurationVar(&o.admitFor, "admit", 0, "length of the admission run (default 2s, full 5s)")
	flag.IntVar(&o.resume, "resume", 10000, "unfinished jobs to resume")
	flag.IntVar(&o.heapJobs, "heap-jobs", 0, "in-flight jobs for the heap figure (default 5000, full 20000)")
	flag.IntVar(&o.runs, "runs", 0, "runs (default 1, full 3)")
	flag.IntVar(&o.workers, "workers", 16, "engine workers")
	flag.BoolVar(&o.noSync, "nosync", false, "skip fsync (not a real figure; for comparison)")
	serveFake := flag.Bool("serve-fake", false, "internal: serve the APISpace fake, print its base URL and token, stop at stdin's end")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the run to this file (go tool pprof)")
	flag.Parse()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "loadtest:", err)
			os.Exit(1)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "loadtest:", err)
			os.Exit(1)
		}
		// Stopped on every way out that returns from main; os.Exit skips it.
		defer pprof.StopCPUProfile()
	}
	if *serveFake {
		serve(o.task)
		return
	}
	if *showOnly {
		if o.inflight == 0 {
			o.inflight = 20
		}
		if o.runs == 0 {
			o.runs = 3
		}
		if err := runShowAPI(o); err != nil {
			fmt.Fprintln(os.Stderr, "loadtest: showapi:", err)
			os.Exit(1)
		}
		return
	}
	pick := func(v *int, short, long int) {
		if *v == 0 {
			*v = short
			if *full {
				*v = long
			}
		}
	}
	if *callbackReplicas > 0 && o.runs == 0 {
		o.runs = 3 // a median for the one figure
	}
	pick(&o.inflight, 300, 1000)
	pick(&o.heapJobs, 5000, 20000)
	pick(&o.runs, 1, 3)
	pick(&o.ramps, 1, 2)
	if o.admitFor == 0 {
		o.admitFor = 2 * time.Second
		if *full {
			o.admitFor = 5 * time.Second
		}
	}
	if *gpuOnly {
		if err := runGPU(o); err != nil {
			fmt.Fprintln(os.Stderr, "loadtest: gpu:", err)
			os.Exit(1)
		}
		return
	}
	if *sizeOnly {
		o.runs = 0
	}
	if *postgresURL != "" && *callbackReplicas > 0 {
		if err := runReplicaLatency(o, *postgresURL, *callbackReplicas); err != nil {
			fmt.Fprintln(os.Stderr, "loadtest: replicas:", err)
			os.Exit(1)
		}
		return
	}
	if *postgresURL != "" && *admissionOnly {
		if err := admissionCompare(o, *postgresURL); err != nil {
			fmt.Fprintln(os.Stderr, "loadtest:", err)
			os.Exit(1)
		}
		return
	}
	var rows []row
	for i := range o.runs {
		r, err := run(o)
		if err != nil {
			fmt.Fprintln(os.Stderr, "loadtest:", err)
			os.Exit(1)
		}
		r.name = fmt.Sprintf("run %d", i+1)
		rows = append(rows, r)
	}
	if len(rows) > 0 {
		print(o, rows)
	}
	if *postgresURL != "" {
		if err := admissionCompare(o, *postgresURL); err != nil {
			fmt.Fprintln(os.Stderr, "loadtest:", err)
			os.Exit(1)
		}
	}
	if err := storeSize(o, *full); err != nil {
		fmt.Fprintln(os.Stderr, "loadtest: store size:", err)
		os.Exit(1)
	}
}

// row is one run's figures.
type row struct {
	name             string
	admitted         float64 // commands/s
	callsCallback    float64 // billed calls per delivered image
	callsPolling     float64
	fakeCallback     float64 // the same, as the fake vendor counted them
	fakePolling      float64
	p50, p99         time.Duration // bot-added latency, callback mode
	heapPerJob       float64       // bytes
	resume           time.Duration
	deliveredCB      int
	deliveredPolling int
}

func run(o options) (row, error) {
	var r row
	var err error
	if r.admitted, err = admission(o); err != nil {
		return r, fmt.Errorf("admission: %w", err)
	}
	cb, err := flow(o, true)
	if err != nil {
		return r, fmt.Errorf("callback run: %w", err)
	}
	r.callsCallback, r.fakeCallback, r.p50, r.p99, r.deliveredCB = cb.callsPerImage, cb.fakePerImage, cb.p50, cb.p99, cb.delivered
	poll, err := flow(o, false)
	if err != nil {
		return r, fmt.Errorf("polling run: %w", err)
	}
	r.callsPolling, r.fakePolling, r.deliveredPolling = poll.callsPerImage, poll.fakePerImage, poll.delivered
	if r.heapPerJob, err = heapPerJob(o); err != nil {
		return r, fmt.Errorf("heap run: %w", err)
	}
	if r.resume, err = resume(o); err != nil {
		return r, fmt.Errorf("resume run: %w", err)
	}
	return r, nil
}

// world is a store, blob directory and quota in a fresh temporary directory.
type world struct {
	dir   string
	db    *store.DB
	blobs *store.Blobs
	quota *quota.Quota
}

func newWorld(o options) (*world, error) {
	dir, err := os.MkdirTemp("", "picbot-load")
	if err != nil {
		return nil, err
	}
	db, err := store.Open(filepath.Join(dir, "picbot.db"), store.Options{NoSync: o.noSync})
	if err != nil {
		return nil, err
	}
	blobs, err := store.OpenBlobs(filepath.Join(dir, "blobs"), 0)
	if err != nil {
		return nil, err
	}
	qc := quota.DefaultConfig()
	// Users are limited, but not below what the load asks: the checks still run.
	qc.Default = quota.Tier{Daily: 1 << 20, Concurrent: 1 << 20, Every: time.Millisecond, Burst: 1000}
	q, err := quota.New(qc, db, nil)
	if err != nil {
		return nil, err
	}
	return &world{dir: dir, db: db, blobs: blobs, quota: q}, nil
}

func (w *world) close() {
	w.db.Close()
	os.RemoveAll(w.dir)
}

var room = engine.ChatRef{Platform: "load", ChatID: "room"}

func user(i int) engine.UserRef { return engine.UserRef{Platform: "load", ID: fmt.Sprint(i % 5000)} }

func draw(i int) engine.Request {
	return engine.Request{Kind: engine.KindDraw, Prompt: fmt.Sprintf("a red fox number %d", i), Width: 64, Height: 64, Seed: -1}
}

// admission: commands from many users at once, each rate-checked, reserved
// and persisted with fsync, for o.admitFor.
func admission(o options) (float64, error) {
	rate, _, _, err := admissionCPU(o)
	return rate, err
}

// admissionCPU is admission, with the CPU time this process spent per
// admitted command and each command's time to its acknowledgement.
func admissionCPU(o options) (float64, time.Duration, []time.Duration, error) {
	w, err := newWorld(o)
	if err != nil {
		return 0, 0, nil, err
	}
	defer w.close()
	e := engine.New(engine.Config{Routes: map[engine.Kind][]string{engine.KindDraw: {"sink"}}}, w.db, w.quota, w.blobs, nopNotifier{}, &sink{})
	cpu0 := selfCPU()
	start := time.Now()
	n, acks, err := submitters(o.admitFor, func(_, i int) error {
		_, err := e.Submit(context.Background(), user(i), room, draw(i))
		return err
	})
	if err != nil {
		return 0, 0, nil, err
	}
	rate := float64(n) / time.Since(start).Seconds()
	return rate, (selfCPU() - cpu0) / time.Duration(max(n, 1)), acks, nil
}

// submitters runs 64 goroutines, each submitting its next command (the
// i-th of the run, from goroutine g) once the last one was answered, for
// d; it returns how many were admitted and the time each took.
func submitters(d time.Duration, submit func(g, i int) error) (int64, []time.Duration, error) {
	const goroutines = 64
	var n atomic.Int64
	var firstErr firstError
	deadline := time.Now().Add(d)
	acks := make([][]time.Duration, goroutines)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				i := int(n.Add(1))
				t := time.Now()
				if err := submit(g, i); err != nil {
					firstErr.set(err)
					return
				}
				acks[g] = append(acks[g], time.Since(t))
			}
		})
	}
	wg.Wait()
	if err := firstErr.get(); err != nil {
		return 0, nil, err
	}
	var all []time.Duration
	for _, a := range acks {
		all = append(all, a...)
	}
	return int64(len(all)), all, nil
}

type flowResult struct {
	callsPerImage float64 // as the engine counted them
	fakePerImage  float64 // as the fake vendor counted them
	p50, p99      time.Duration
	delivered     int
}

// flow runs jobs through the fake vendor at a steady rate such that about
// o.inflight are at the vendor at once, and waits until all are delivered.
func flow(o options, callbacks bool) (flowResult, error) {
	var res flowResult
	w, err := newWorld(o)
	if err != nil {
		return res, err
	}
	defer w.close()
	fake := apispacetest.New(apispacetest.Options{Duration: o.task})
	defer fake.Close()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return res, err
	}
	public := "http://" + ln.Addr().String()
	vcfg := apispace.Defaults()
	vcfg.BaseURL, vcfg.Token, vcfg.Callbacks = fake.BaseURL(), fake.Token(), &callbacks
	// The adapter's timing as configured for the real vendor, scaled to the fake's task time.
	vcfg.DrawDuration, vcfg.PollEvery, vcfg.PollMax = o.task, o.task*3/8, o.task*20/8
	vendor, err := apispace.New(vcfg, &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}, nil)
	if err != nil {
		return res, err
	}
	obs := &observer{}
	total := o.inflight * o.ramps
	done := make(chan struct{})
	notify := &countingNotifier{want: int64(total), done: done, posted: make(map[string]time.Time, total)}
	e := engine.New(engine.Config{
		Workers: o.workers, PublicURL: public, Routes: map[engine.Kind][]string{engine.KindDraw: {vendor.Name()}},
		Observer: obs, JobTimeout: 10 * o.task, Logger: slog.New(slog.DiscardHandler),
		HTTPClient: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}},
	}, w.db, w.quota, w.blobs, notify, vendor)
	mux := http.NewServeMux()
	httpapi.Register(mux, e, 1<<20, slog.New(slog.DiscardHandler))
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	defer srv.Close()
	if err := e.Start(context.Background()); err != nil {
		return res, err
	}
	defer e.Stop(context.Background())

	// Steady arrivals: inflight jobs per task duration.
	interval := o.task / time.Duration(o.inflight)
	next := time.Now()
	for i := range total {
		if d := time.Until(next); d > 0 {
			time.Sleep(d)
		}
		next = next.Add(interval)
		if _, err := e.Submit(context.Background(), user(i), room, draw(i)); err != nil {
			return res, err
		}
	}
	select {
	case <-done:
	case <-time.After(10 * o.task):
		return res, fmt.Errorf("%d of %d jobs delivered in time", notify.n.Load(), total)
	}
	res.delivered = int(notify.n.Load())
	res.callsPerImage = float64(obs.billed.Load()) / float64(res.delivered)
	res.fakePerImage = float64(fake.Billed()) / float64(res.delivered)
	// Added latency: from the task's end on the fake's own clock to the
	// moment the post to the chat starts, so the bot's time to notice the
	// end (callback handling, polling lag) is counted too.
	var added []time.Duration
	notify.mu.Lock()
	for _, t := range fake.Tasks() {
		if at, ok := notify.posted[t.UID]; ok {
			added = append(added, at.Sub(t.Done))
		}
	}
	notify.mu.Unlock()
	if len(added) != res.delivered {
		return res, fmt.Errorf("%d deliveries matched to the fake's tasks, want %d", len(added), res.delivered)
	}
	res.p50, res.p99 = percentile(added, 0.50), percentile(added, 0.99)
	if v := fake.Violations(); len(v) > 0 {
		return res, fmt.Errorf("the fake saw requests off the vendor's documented shape: %v", v[0])
	}
	return res, nil
}

// serve is the fake vendor's own process for the heap figure, so its
// memory stays out of the bot's.
func serve(task time.Duration) {
	fake := apispacetest.New(apispacetest.Options{Duration: task})
	defer fake.Close()
	fmt.Println(fake.BaseURL(), fake.Token())
	io.Copy(io.Discard, os.Stdin) // the parent closes it when done, or dies
}

// heapPerJob: how much heap each job at the vendor holds in the bot (image
// bytes excluded: the jobs are still at the vendor): the real engine and the
// APISpace adapter, against the fake in another process (this binary
// re-run with -serve-fake) whose tasks outlast the measurement.
func heapPerJob(o options) (float64, error) {
	w, err := newWorld(o)
	if err != nil {
		return 0, err
	}
	defer w.close()
	self, err := os.Executable()
	if err != nil {
		return 0, err
	}
	cmd := exec.Command(self, "-serve-fake", "-task", "1h")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return 0, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return 0, err
	}
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	defer cmd.Wait()
	defer stdin.Close()
	var base, token string
	if _, err := fmt.Fscanln(stdout, &base, &token); err != nil {
		return 0, fmt.Errorf("the fake vendor's process: %w", err)
	}
	callbacks := true
	vcfg := apispace.Defaults()
	vcfg.BaseURL, vcfg.Token, vcfg.Callbacks = base, token, &callbacks
	vcfg.DrawDuration, vcfg.PollEvery, vcfg.PollMax = time.Hour, time.Hour, 2*time.Hour
	vendor, err := apispace.New(vcfg, &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}, nil)
	if err != nil {
		return 0, err
	}
	obs := &observer{}
	e := engine.New(engine.Config{Workers: o.workers, PublicURL: "http://127.0.0.1:1", Routes: map[engine.Kind][]string{engine.KindDraw: {vendor.Name()}},
		Observer: obs, JobTimeout: 3 * time.Hour, Logger: slog.New(slog.DiscardHandler)},
		w.db, w.quota, w.blobs, nopNotifier{}, vendor)
	if err := e.Start(context.Background()); err != nil {
		return 0, err
	}
	defer e.Stop(context.Background())
	before := heap()
	for i := range o.heapJobs {
		if _, err := e.Submit(context.Background(), user(i), room, draw(i)); err != nil {
			return 0, err
		}
	}
	for give := time.Now().Add(5 * time.Minute); obs.submitted.Load() < int64(o.heapJobs); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(give) {
			return 0, fmt.Errorf("%d of %d jobs submitted to the fake in time", obs.submitted.Load(), o.heapJobs)
		}
	}
	after := heap()
	if e.Outstanding("") != o.heapJobs {
		return 0, fmt.Errorf("%d jobs in flight, want %d", e.Outstanding(""), o.heapJobs)
	}
	return float64(after-before) / float64(o.heapJobs), nil
}

func heap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// resume: the time a restarted engine takes to load and schedule o.resume
// unfinished jobs, ready to carry them on.
func resume(o options) (time.Duration, error) {
	w, err := newWorld(o)
	if err != nil {
		return 0, err
	}
	defer w.close()
	routes := map[engine.Kind][]string{engine.KindDraw: {"sink"}}
	first := engine.New(engine.Config{Routes: routes}, w.db, w.quota, w.blobs, nopNotifier{}, &sink{})
	var wg sync.WaitGroup
	var n atomic.Int64
	var firstErr firstError
	for range 64 {
		wg.Go(func() {
			for {
				i := int(n.Add(1))
				if i > o.resume {
					return
				}
				if _, err := first.Submit(context.Background(), user(i), room, draw(i)); err != nil {
					firstErr.set(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := firstErr.get(); err != nil {
		return 0, err
	}
	// A new engine on the same store, as after a restart. Its workers are
	// held off (the sink blocks) so the figure is loading and scheduling.
	hold := make(chan struct{})
	defer close(hold)
	second := engine.New(engine.Config{Routes: routes, Workers: 1}, w.db, w.quota, w.blobs, nopNotifier{}, &sink{hold: hold})
	start := time.Now()
	if err := second.Start(context.Background()); err != nil {
		return 0, err
	}
	took := time.Since(start)
	if got := second.Outstanding(""); got != o.resume {
		return 0, fmt.Errorf("resumed %d jobs, want %d", got, o.resume)
	}
	go second.Stop(context.Background()) // the held worker never returns before hold closes
	return took, nil
}

// sink is a vendor that takes every task and never finishes one.
type sink struct{ hold chan struct{} }

func (s *sink) Name() string                { return "sink" }
func (s *sink) Check(*engine.Request) error { return nil }
func (s *sink) Timing(*engine.Request) engine.Timing {
	return engine.Timing{First: time.Hour, Every: time.Hour, Max: time.Hour}
}
func (s *sink) Submit(ctx context.Context, j *engine.Job, t engine.Task) (string, error) {
	if s.hold != nil {
		select {
		case <-s.hold:
		case <-ctx.Done():
		}
	}
	return t.ID, nil
}
func (s *sink) Query(context.Context, *engine.Job) (*engine.Outcome, error) {
	return &engine.Outcome{State: engine.TaskRunning, Progress: -1}, nil
}

type nopNotifier struct{}

func (nopNotifier) Progress(context.Context, *engine.Job, engine.Progress) {}
func (nopNotifier) Deliver(context.Context, *engine.Job) error             { return nil }

// countingNotifier is the simulated console: it counts deliveries.
type countingNotifier struct {
	n      atomic.Int64
	want   int64
	done   chan struct{}
	mu     sync.Mutex
	posted map[string]time.Time // vendor task id → when its post started
}

func (c *countingNotifier) Progress(context.Context, *engine.Job, engine.Progress) {}
func (c *countingNotifier) Deliver(ctx context.Context, j *engine.Job) error {
	if c.posted != nil {
		now := time.Now()
		c.mu.Lock()
		if _, ok := c.posted[j.TaskID]; !ok {
			c.posted[j.TaskID] = now
		}
		c.mu.Unlock()
	}
	if j.State == engine.StateSucceeded && c.n.Add(1) == c.want {
		close(c.done)
	}
	return nil
}

// observer collects what the figures need.
type observer struct {
	billed    atomic.Int64
	submitted atomic.Int64
}

func (o *observer) Admitted(*engine.Job) {}
func (o *observer) Refused(string)       {}
func (o *observer) Moved(j *engine.Job, from engine.State) {
	if j.State == engine.StateSubmitted {
		o.submitted.Add(1)
	}
}
func (o *observer) Billed(vendor string, calls int)                    { o.billed.Add(int64(calls)) }
func (o *observer) DeliveryStarted(j *engine.Job, added time.Duration) {}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(int(p*float64(len(s))), len(s)-1)]
}

func print(o options, rows []row) {
	fmt.Printf("picbot load test: %d jobs in flight (callback and polling runs), vendor task %s, %d workers, %d CPUs, fsync %v\n\n",
		o.inflight, o.task, o.workers, runtime.NumCPU(), !o.noSync)
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "run\tadmitted/s\tcalls/image callback (bot/fake)\tcalls/image polling (bot/fake)\tadded p50\tadded p99\theap/job\tresume "+fmt.Sprint(o.resume)+"\t")
	line := func(r row) {
		fmt.Fprintf(tw, "%s\t%.0f\t%.2f / %.2f\t%.2f / %.2f\t%s\t%s\t%.1f KiB\t%s\t\n", r.name, r.admitted, r.callsCallback, r.fakeCallback, r.callsPolling, r.fakePolling,
			r.p50.Round(100*time.Microsecond), r.p99.Round(100*time.Microsecond), r.heapPerJob/1024, r.resume.Round(time.Millisecond))
	}
	for _, r := range rows {
		line(r)
	}
	if len(rows) > 1 {
		line(median(rows))
	}
	fmt.Fprintln(tw, "target\t≥ 5000\t≤ 2\t≤ 3\t\t≤ 20ms\t≤ 8 KiB\t< 1s\t")
	tw.Flush()
	var missed []string
	m := median(rows)
	for _, c := range []struct {
		ok   bool
		what string
	}{
		{m.admitted >= 5000, "admission"}, {max(m.callsCallback, m.fakeCallback) <= 2, "calls/image with callbacks"},
		{max(m.callsPolling, m.fakePolling) <= 3, "calls/image polling"},
		{m.p99 <= 20*time.Millisecond, "added latency p99"}, {m.heapPerJob <= 8<<10, "heap per job"}, {m.resume < time.Second, "resume"},
	} {
		if !c.ok {
			missed = append(missed, c.what)
		}
	}
	if len(missed) > 0 {
		fmt.Printf("\nmissed: %s\n", strings.Join(missed, ", "))
	} else {
		fmt.Println("\nevery target met")
	}
}

func median(rows []row) row {
	pick := func(f func(r row) float64) float64 {
		v := make([]float64, len(rows))
		for i, r := range rows {
			v[i] = f(r)
		}
		sort.Float64s(v)
		return v[len(v)/2]
	}
	return row{
		name:          "median",
		admitted:      pick(func(r row) float64 { return r.admitted }),
		callsCallback: pick(func(r row) float64 { return r.callsCallback }),
		callsPolling:  pick(func(r row) float64 { return r.callsPolling }),
		fakeCallback:  pick(func(r row) float64 { return r.fakeCallback }),
		fakePolling:   pick(func(r row) float64 { return r.fakePolling }),
		p50:           time.Duration(pick(func(r row) float64 { return float64(r.p50) })),
		p99:           time.Duration(pick(func(r row) float64 { return float64(r.p99) })),
		heapPerJob:    pick(func(r row) float64 { return r.heapPerJob }),
		resume:        time.Duration(pick(func(r row) float64 { return float64(r.resume) })),
	}
}
