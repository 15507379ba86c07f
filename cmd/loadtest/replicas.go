package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	neturl "net/url"
	"os"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/picbot/picbot/engine"
	"github.com/picbot/picbot/engine/apispace"
	"github.com/picbot/picbot/engine/apispace/apispacetest"
	"github.com/picbot/picbot/httpapi"
	"github.com/picbot/picbot/quota"
	"github.com/picbot/picbot/store"
	pgstore "github.com/picbot/picbot/store/pg"
)

var (
	postgresURL   = flag.String("postgres", "", "a PostgreSQL server (postgres://...): also measure admission there, with 1 and 3 replicas, against bbolt")
	admissionOnly = flag.Bool("admission-only", false, "with -postgres: only the admission comparison")
)

// admissionCompare measures durable admission (job + quota in one
// transaction) on bbolt, and on PostgreSQL with one engine and with three
// sharing the database (each its own pool, as three processes would have),
// and prints the figures and their ratios, medians of o.runs. On a machine
// shared with other work the rate follows the load; the CPU time spent per
// admitted command (this process's, and the PostgreSQL sessions' it opened
// when the server is on this machine) does much less, and NumCPU over it is
// the rate these cores would reach with nothing else to do.
func admissionCompare(o options, base string) error {
	var bolt, pg1, pg3 []float64
	var boltCPU, pg1CPU, pg3CPU []cpuCost
	for range max(o.runs, 1) {
		v, cpu, acks, err := admissionCPU(o)
		if err != nil {
			return fmt.Errorf("bbolt: %w", err)
		}
		bolt, boltCPU = append(bolt, v), append(boltCPU, cpuCost{bot: cpu, pgKnown: true, acks: acks})
		var c cpuCost
		if v, c, err = pgAdmission(o, base, 1); err != nil {
			return fmt.Errorf("PostgreSQL: %w", err)
		}
		pg1, pg1CPU = append(pg1, v), append(pg1CPU, c)
		if v, c, err = pgAdmission(o, base, 3); err != nil {
			return fmt.Errorf("PostgreSQL, 3 replicas: %w", err)
		}
		pg3, pg3CPU = append(pg3, v), append(pg3CPU, c)
	}
	med := func(v []float64) float64 {
		s := append([]float64(nil), v...)
		sort.Float64s(s)
		return s[len(s)/2]
	}
	load := ""
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		load = ", load average " + strings.Join(strings.Fields(string(b))[:3], " ")
	}
	fmt.Printf("\nadmission, durable job + quota, %d runs (median), %d CPUs, fsync %v%s\n\n", max(o.runs, 1), runtime.NumCPU(), !o.noSync, load)
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "store\tcommands/s\truns\tratio to bbolt\tCPU µs/command (bot + PostgreSQL)\tcommands/s on idle CPUs\tack p50 / p99\t")
	b := med(bolt)
	for _, r := range []struct {
		name string
		v    []float64
		cpu  []cpuCost
	}{{"bbolt", bolt, boltCPU}, {"PostgreSQL, 1 replica", pg1, pg1CPU}, {"PostgreSQL, 3 replicas", pg3, pg3CPU}} {
		cpu, ceiling := medianCPU(r.cpu)
		fmt.Fprintf(tw, "%s\t%.0f\t%s\t%.2f\t%s\t%s\t%s\t\n", r.name, med(r.v), runsText(r.v), med(r.v)/b, cpu, ceiling, medianAcks(r.cpu))
	}
	fmt.Fprintln(tw, "target (PostgreSQL)\t≥ 3000\t\t\t\t\t\t")
	tw.Flush()
	return nil
}

// cpuCost is the CPU time spent per admitted command: by this process, and
// by the PostgreSQL sessions it opened (pgKnown: they could be read); and
// each command's time from its submission to its acknowledgement.
type cpuCost struct {
	bot, pg time.Duration
	pgKnown bool
	acks    []time.Duration
}

// medianAcks words the median over runs of the acknowledgement's p50 and p99.
func medianAcks(v []cpuCost) string {
	var p50, p99 []time.Duration
	for _, c := range v {
		p50, p99 = append(p50, percentile(c.acks, 0.50)), append(p99, percentile(c.acks, 0.99))
	}
	mid := func(d []time.Duration) time.Duration {
		slices.Sort(d)
		return d[len(d)/2]
	}
	r := func(d time.Duration) time.Duration { return d.Round(100 * time.Microsecond) }
	return fmt.Sprintf("%s / %s", r(mid(p50)), r(mid(p99)))
}

// medianCPU words the median total CPU per command, its parts, and the
// rate NumCPU cores would reach at that cost.
func medianCPU(v []cpuCost) (string, string) {
	var ok []cpuCost
	for _, c := range v {
		if c.pgKnown && c.bot > 0 {
			ok = append(ok, c)
		}
	}
	if len(ok) == 0 {
		return "?", "?"
	}
	sort.Slice(ok, func(i, j int) bool { return ok[i].bot+ok[i].pg < ok[j].bot+ok[j].pg })
	m := ok[len(ok)/2]
	total := m.bot + m.pg
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	return fmt.Sprintf("%.0f (%.0f + %.0f)", us(total), us(m.bot), us(m.pg)),
		fmt.Sprintf("%.0f", float64(runtime.NumCPU())/total.Seconds())
}

func runsText(v []float64) string {
	s := ""
	for i, x := range v {
		if i > 0 {
			s += " "
		}
		s += fmt.Sprintf("%.0f", x)
	}
	return s
}

// pgConns is each replica's pool in the admission run.
const pgConns = 10

// pgAdmission is admission on a fresh PostgreSQL schema with n engines,
// with the CPU time spent per admitted command.
func pgAdmission(o options, base string, n int) (float64, cpuCost, error) {
	var cost cpuCost
	ctx := context.Background()
	url, drop, err := pgstore.ThrowAwaySchema(ctx, base)
	if err != nil {
		return 0, cost, err
	}
	defer drop()
	// A name of the run's own on its sessions, to find their server processes.
	app := fmt.Sprintf("picbot-loadtest-%d-%d", os.Getpid(), time.Now().UnixNano())
	if url, err = withParam(url, "application_name", app); err != nil {
		return 0, cost, err
	}
	blobs, err := store.OpenBlobs(os.TempDir()+"/picbot-load-pg-blobs", 0)
	if err != nil {
		return 0, cost, err
	}
	qc := quota.DefaultConfig()
	qc.Default = quota.Tier{Daily: 1 << 20, Concurrent: 1 << 20, Every: time.Millisecond, Burst: 1000}
	var engines []*engine.Engine
	for range n {
		// Pools of 10: three replicas at the default 20 (and the lossy pools
		// beside them) pass a shared server's max_connections of 100.
		db, err := pgstore.Open(ctx, url, pgstore.Options{MaxConns: pgConns})
		if err != nil {
			return 0, cost, err
		}
		defer db.Close()
		q, err := quota.New(qc, db, nil)
		if err != nil {
			return 0, cost, err
		}
		engines = append(engines, engine.New(engine.Config{Routes: map[engine.Kind][]string{engine.KindDraw: {"sink"}}}, db, q, blobs, nopNotifier{}, &sink{}))
	}
	sessions := func() (map[int]time.Duration, bool) {
		pids, err := pgstore.SessionPIDs(ctx, base, app)
		if err != nil {
			return nil, false
		}
		return pidsCPU(pids)
	}
	pg0, ok0 := sessions()
	cpu0 := selfCPU()
	start := time.Now()
	count, acks, err := submitters(o.admitFor, func(g, i int) error {
		_, err := engines[g%n].Submit(ctx, user(i), room, draw(i))
		return err
	})
	elapsed, cpu1 := time.Since(start), selfCPU()
	if err != nil {
		return 0, cost, err
	}
	cost.acks = acks
	pg1, ok1 := sessions()
	done := time.Duration(max(count, 1))
	cost.bot = (cpu1 - cpu0) / done
	if ok0 && ok1 {
		var used time.Duration
		for pid, t := range pg1 {
			used += t - pg0[pid] // a session opened during the run counts whole
		}
		cost.pg, cost.pgKnown = used/done, true
	}
	return float64(count) / elapsed.Seconds(), cost, nil
}

// withParam sets a query parameter of a connection URL.
func withParam(raw, key, value string) (string, error) {
	u, err := neturl.Parse(raw)
	if err != nil {
		return "", err
	}
	q := u.Query()
	q.Set(key, value)
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// firstError keeps the first of the errors goroutines report. (An
// atomic.Value panics when two goroutines store errors of different types.)
type firstError struct {
	mu  sync.Mutex
	err error
}

func (f *firstError) set(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err == nil {
		f.err = err
	}
}

func (f *firstError) get() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

var callbackReplicas = flag.Int("replicas", 0, "with -postgres: only the bot-added latency with vendor callbacks delivered to a replica other than the job's holder, on this many engines sharing the database (2 or 3; default 300 in flight, 3 runs)")

// replicaLatency is flow's bot-added latency figure on n engines sharing
// one PostgreSQL database, each as a replica of its own (own pool, HTTP
// server and public URL): jobs are created round robin, so leased to the
// engine that creates them, and each engine gives the APISpace fake the
// next engine's URL for its callbacks. Every callback therefore lands on a
// replica that does not hold the job: it is applied there, and the holder,
// woken by NOTIFY, downloads and posts.
func replicaLatency(o options, base string, n int) (flowResult, error) {
	var res flowResult
	ctx := context.Background()
	url, drop, err := pgstore.ThrowAwaySchema(ctx, base)
	if err != nil {
		return res, err
	}
	defer drop()
	fake := apispacetest.New(apispacetest.Options{Duration: o.task})
	defer fake.Close()
	qc := quota.DefaultConfig()
	qc.Default = quota.Tier{Daily: 1 << 20, Concurrent: 1 << 20, Every: time.Millisecond, Burst: 1000}
	total := o.inflight * o.ramps
	done := make(chan struct{})
	notify := &countingNotifier{want: int64(total), done: done, posted: make(map[string]time.Time, total)}
	obs := &observer{}
	// Listeners first: engine i's callbacks go to listener i+1.
	lns := make([]net.Listener, n)
	for i := range lns {
		if lns[i], err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			return res, err
		}
	}
	var (
		engines []*engine.Engine
		posters []*posterOf
	)
	for i := range n {
		db, err := pgstore.Open(ctx, url, pgstore.Options{Replica: fmt.Sprintf("r%d", i), MaxConns: pgConns, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			return res, err
		}
		defer db.Close()
		q, err := quota.New(qc, db, nil)
		if err != nil {
			return res, err
		}
		callbacks := true
		vcfg := apispace.Defaults()
		vcfg.BaseURL, vcfg.Token, vcfg.Callbacks = fake.BaseURL(), fake.Token(), &callbacks
		vcfg.DrawDuration, vcfg.PollEvery, vcfg.PollMax = o.task, o.task*3/8, o.task*20/8
		vendor, err := apispace.New(vcfg, &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}, nil)
		if err != nil {
			return res, err
		}
		p := &posterOf{countingNotifier: notify, replica: i, by: map[string]int{}}
		posters = append(posters, p)
		e := engine.New(engine.Config{
			Workers: o.workers, PublicURL: "http://" + lns[(i+1)%n].Addr().String(), Routes: map[engine.Kind][]string{engine.KindDraw: {vendor.Name()}},
			Observer: obs, JobTimeout: 10 * o.task, Logger: slog.New(slog.DiscardHandler),
			HTTPClient: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}},
		}, db, q, db.Blobs(0), p, vendor)
		mux := http.NewServeMux()
		httpapi.Register(mux, e, 1<<20, slog.New(slog.DiscardHandler))
		srv := &http.Server{Handler: mux}
		go srv.Serve(lns[i])
		defer srv.Close()
		if err := e.Start(ctx); err != nil {
			return res, err
		}
		defer e.Stop(ctx)
		engines = append(engines, e)
	}
	created := make(map[string]int, total) // job id → the replica that created it, and holds it
	interval := o.task / time.Duration(o.inflight)
	next := time.Now()
	for i := range total {
		if d := time.Until(next); d > 0 {
			time.Sleep(d)
		}
		next = next.Add(interval)
		j, err := engines[i%n].Submit(ctx, user(i), room, draw(i))
		if err != nil {
			return res, err
		}
		created[j.ID] = i % n
	}
	select {
	case <-done:
	case <-time.After(10 * o.task):
		return res, fmt.Errorf("%d of %d jobs delivered in time", notify.n.Load(), total)
	}
	res.delivered = int(notify.n.Load())
	// The holder posts: a job posted elsewhere was taken over (its lease
	// lost), and its latency would not be the wake-up's.
	for _, p := range posters {
		p.mu.Lock()
		for id, r := range p.by {
			if created[id] != r {
				p.mu.Unlock()
				return res, fmt.Errorf("job %s created (and held) by replica %d, posted by %d", id, created[id], r)
			}
		}
		p.mu.Unlock()
	}
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
	res.callsPerImage = float64(obs.billed.Load()) / float64(res.delivered)
	res.fakePerImage = float64(fake.Billed()) / float64(res.delivered)
	if v := fake.Violations(); len(v) > 0 {
		return res, fmt.Errorf("the fake saw requests off the vendor's documented shape: %v", v[0])
	}
	return res, nil
}

// posterOf is one replica's notifier: it records which replica posted each job.
type posterOf struct {
	*countingNotifier
	replica int
	mu      sync.Mutex
	by      map[string]int
}

func (p *posterOf) Deliver(ctx context.Context, j *engine.Job) error {
	p.mu.Lock()
	p.by[j.ID] = p.replica
	p.mu.Unlock()
	return p.countingNotifier.Deliver(ctx, j)
}

// runReplicaLatency prints replicaLatency's figures, a row per run and the median.
func runReplicaLatency(o options, base string, n int) error {
	if n < 2 {
		return fmt.Errorf("-replicas %d: a callback on another replica needs at least 2", n)
	}
	var rows []flowResult
	for range max(o.runs, 1) {
		r, err := replicaLatency(o, base, n)
		if err != nil {
			return err
		}
		rows = append(rows, r)
	}
	fmt.Printf("\nbot-added latency, vendor callbacks delivered to a replica other than the job's holder: %d engines on one PostgreSQL database, %d jobs in flight, vendor task %s, %d workers each, %d CPUs\n\n",
		n, o.inflight, o.task, o.workers, runtime.NumCPU())
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "run\tdelivered\tcalls/image (bot/fake)\tadded p50\tadded p99\t")
	var p50, p99 []float64
	for i, r := range rows {
		fmt.Fprintf(tw, "run %d\t%d\t%.2f / %.2f\t%s\t%s\t\n", i+1, r.delivered, r.callsPerImage, r.fakePerImage, r.p50.Round(100*time.Microsecond), r.p99.Round(100*time.Microsecond))
		p50, p99 = append(p50, float64(r.p50)), append(p99, float64(r.p99))
	}
	med := func(v []float64) time.Duration {
		s := append([]float64(nil), v...)
		sort.Float64s(s)
		return time.Duration(s[len(s)/2])
	}
	m99 := med(p99)
	fmt.Fprintf(tw, "median\t\t\t%s\t%s\t\n", med(p50).Round(100*time.Microsecond), m99.Round(100*time.Microsecond))
	fmt.Fprintln(tw, "target\t\t\t\t≤ 100ms\t")
	tw.Flush()
	if m99 > 100*time.Millisecond {
		fmt.Println("\nmissed: added latency p99 with callbacks on another replica")
	} else {
		fmt.Println("\nevery target met")
	}
	return nil
}
