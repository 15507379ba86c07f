package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/picbot/picbot/engine"
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
// and prints the figures and their ratios, medians of o.runs.
func admissionCompare(o options, base string) error {
	var bolt, pg1, pg3 []float64
	for range max(o.runs, 1) {
		v, err := admission(o)
		if err != nil {
			return fmt.Errorf("bbolt: %w", err)
		}
		bolt = append(bolt, v)
		if v, err = pgAdmission(o, base, 1); err != nil {
			return fmt.Errorf("PostgreSQL: %w", err)
		}
		pg1 = append(pg1, v)
		if v, err = pgAdmission(o, base, 3); err != nil {
			return fmt.Errorf("PostgreSQL, 3 replicas: %w", err)
		}
		pg3 = append(pg3, v)
	}
	med := func(v []float64) float64 {
		s := append([]float64(nil), v...)
		sort.Float64s(s)
		return s[len(s)/2]
	}
	fmt.Printf("\nadmission, durable job + quota, %d runs (median), %d CPUs, fsync %v\n\n", max(o.runs, 1), runtime.NumCPU(), !o.noSync)
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "store\tcommands/s\truns\tratio to bbolt\t")
	b := med(bolt)
	for _, r := range []struct {
		name string
		v    []float64
	}{{"bbolt", bolt}, {"PostgreSQL, 1 replica", pg1}, {"PostgreSQL, 3 replicas", pg3}} {
		fmt.Fprintf(tw, "%s\t%.0f\t%s\t%.2f\t\n", r.name, med(r.v), runsText(r.v), med(r.v)/b)
	}
	fmt.Fprintln(tw, "target (PostgreSQL)\t≥ 3000\t\t\t")
	tw.Flush()
	return nil
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

// pgAdmission is admission on a fresh PostgreSQL schema with n engines.
func pgAdmission(o options, base string, n int) (float64, error) {
	ctx := context.Background()
	url, drop, err := pgstore.ThrowAwaySchema(ctx, base)
	if err != nil {
		return 0, err
	}
	defer drop()
	blobs, err := store.OpenBlobs(os.TempDir()+"/picbot-load-pg-blobs", 0)
	if err != nil {
		return 0, err
	}
	qc := quota.DefaultConfig()
	qc.Default = quota.Tier{Daily: 1 << 20, Concurrent: 1 << 20, Every: time.Millisecond, Burst: 1000}
	var engines []*engine.Engine
	for range n {
		// Pools of 10: three replicas at the default 20 (and the lossy pools
		// beside them) pass a shared server's max_connections of 100.
		db, err := pgstore.Open(ctx, url, pgstore.Options{MaxConns: pgConns})
		if err != nil {
			return 0, err
		}
		defer db.Close()
		q, err := quota.New(qc, db, nil)
		if err != nil {
			return 0, err
		}
		engines = append(engines, engine.New(engine.Config{Routes: map[engine.Kind][]string{engine.KindDraw: {"sink"}}}, db, q, blobs, nopNotifier{}, &sink{}))
	}
	var count atomic.Int64
	var firstErr firstError
	deadline := time.Now().Add(o.admitFor)
	var wg sync.WaitGroup
	start := time.Now()
	for g := range 64 {
		e := engines[g%n]
		wg.Go(func() {
			for time.Now().Before(deadline) {
				i := int(count.Add(1))
				if _, err := e.Submit(ctx, user(i), room, draw(i)); err != nil {
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
	return float64(count.Load()) / time.Since(start).Seconds(), nil
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
