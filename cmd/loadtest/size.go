package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/picbot/picbot/engine"
	"github.com/picbot/picbot/engine/local"
	"github.com/picbot/picbot/store"
)

var sizeOnly = flag.Bool("size-only", false, "only the store-size figures")

// sizeOptions: jobs a simulated day, days run, and the retention in days.
type sizeOptions struct {
	perDay, days, keepDays, side int
}

// sizeRow is the store's disk use after some simulated days.
type sizeRow struct {
	name              string
	delivered, kept   int           // delivered so far; jobs in the store
	dbBytes, blobByte int64         // the database file, the image directory
	dbUsed            int64         // the database's pages in use
	admitMax          time.Duration // the slowest admission while the day's pruning ran
}

// sizes runs jobs through the real engine, store and local renderer day
// after simulated day, with retention on (keepDays), pruning after each day
// as the bot's background pass would. It shows the bytes a delivered job
// costs on disk, and that with retention the store stops growing: the
// database file keeps its freed pages for reuse, so it levels off rather
// than shrinking.
func sizes(o options, so sizeOptions) ([]sizeRow, error) {
	w, err := newWorld(o)
	if err != nil {
		return nil, err
	}
	defer w.close()
	var offset atomic.Int64 // the simulated days, added to the real clock
	now := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	obs := &deliveredObserver{}
	e := engine.New(engine.Config{Workers: o.workers, Now: now, Logger: slog.New(slog.DiscardHandler), Observer: obs,
		Routes: map[engine.Kind][]string{engine.KindDraw: {local.Name}}}, w.db, w.quota, w.blobs, nopNotifier{}, local.New(w.blobs, 0, now))
	if err := e.Start(context.Background()); err != nil {
		return nil, err
	}
	defer e.Stop(context.Background())
	// The simulated days pass in seconds of file time: a short grace lets
	// old days' images go, still far longer than a render takes.
	p := &store.Pruner{DB: w.db, Blobs: w.blobs, Now: now, Log: slog.New(slog.DiscardHandler), BlobGrace: 3 * time.Second,
		Retention: store.Retention{Jobs: time.Duration(so.keepDays) * 24 * time.Hour, Counters: 90 * 24 * time.Hour}}
	var rows []sizeRow
	var submitted atomic.Int64
	for day := range so.days {
		offset.Store(int64(day) * int64(24*time.Hour))
		var wg sync.WaitGroup
		var firstErr firstError
		var next atomic.Int64
		for range 32 {
			wg.Go(func() {
				for i := int(next.Add(1)); i <= so.perDay; i = int(next.Add(1)) {
					req := engine.Request{Kind: engine.KindDraw, Prompt: fmt.Sprintf("a red fox, day %d, number %d", day, i), Width: so.side, Height: so.side, Seed: -1}
					if _, err := e.Submit(context.Background(), user(i), room, req); err != nil {
						firstErr.set(err)
						return
					}
					submitted.Add(1)
				}
			})
		}
		wg.Wait()
		if err := firstErr.get(); err != nil {
			return nil, err
		}
		if err := obs.wait(submitted.Load(), time.Minute); err != nil {
			return nil, fmt.Errorf("day %d: %w%s", day+1, err, stuck(w.db))
		}
		// Commands keep arriving while pruning runs: the slowest admission
		// shows whether pruning holds the store's writer too long.
		stop := make(chan struct{})
		admitted := make(chan time.Duration)
		go func() {
			var worst time.Duration
			defer func() { admitted <- worst }()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				case <-time.After(time.Millisecond):
				}
				req := engine.Request{Kind: engine.KindDraw, Prompt: "during pruning", Width: 64, Height: 64, Seed: -1}
				start := time.Now()
				if _, err := e.Submit(context.Background(), user(i), room, req); err != nil {
					firstErr.set(err)
					return
				}
				worst = max(worst, time.Since(start))
				submitted.Add(1)
			}
		}()
		// Two passes, as two hours of the bot's hourly pruning: images go
		// on the second pass that finds them unreferenced.
		for range 2 {
			if _, err := p.Pass(context.Background()); err != nil {
				return nil, err
			}
		}
		close(stop)
		admitMax := <-admitted
		if err := firstErr.get(); err != nil {
			return nil, err
		}
		dbBytes, err := w.db.Size()
		if err != nil {
			return nil, err
		}
		dbUsed, err := w.db.Used()
		if err != nil {
			return nil, err
		}
		blobBytes, _, err := w.blobs.Size(context.Background())
		if err != nil {
			return nil, err
		}
		kept := 0
		for i := range 5000 {
			js, err := w.db.JobsByOwner(context.Background(), user(i), 1<<20)
			if err != nil {
				return nil, err
			}
			kept += len(js)
		}
		rows = append(rows, sizeRow{name: fmt.Sprintf("day %d", day+1), delivered: int(obs.count()), kept: kept, admitMax: admitMax, dbBytes: dbBytes, dbUsed: dbUsed, blobByte: blobBytes})
	}
	return rows, nil
}

// deliveredObserver counts jobs that reached the delivered state.
type deliveredObserver struct {
	mu        sync.Mutex
	cond      *sync.Cond
	delivered int64
}

func (d *deliveredObserver) Admitted(*engine.Job) {}
func (d *deliveredObserver) Refused(string)       {}
func (d *deliveredObserver) Moved(j *engine.Job, from engine.State) {
	if j.State == engine.StateDelivered {
		d.mu.Lock()
		d.delivered++
		if d.cond != nil {
			d.cond.Broadcast()
		}
		d.mu.Unlock()
	}
}
func (d *deliveredObserver) Billed(string, int)                         {}
func (d *deliveredObserver) DeliveryStarted(*engine.Job, time.Duration) {}

func (d *deliveredObserver) count() int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.delivered
}

func (d *deliveredObserver) wait(n int64, within time.Duration) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cond == nil {
		d.cond = sync.NewCond(&d.mu)
	}
	t := time.AfterFunc(within, func() { d.mu.Lock(); d.cond.Broadcast(); d.mu.Unlock() })
	defer t.Stop()
	start := time.Now()
	for d.delivered < n {
		if time.Since(start) >= within {
			return fmt.Errorf("%d of %d jobs delivered in %s", d.delivered, n, within)
		}
		d.cond.Wait()
	}
	return nil
}

// printSizes is the store-size table, apart from the main one.
func printSizes(so sizeOptions, rows []sizeRow) {
	fmt.Printf("\nstore size: %d jobs a simulated day (%dx%d PNG each, local renderer), retention %d days, pruned after each day\n\n",
		so.perDay, so.side, so.side, so.keepDays)
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "after\tdelivered\tjobs kept\tdb file\tdb in use\tblobs\tdb in use/kept job\tblobs/kept job\tslowest admission while pruning\t")
	for _, r := range rows {
		kept := float64(max(r.kept, 1))
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.1f MiB\t%.1f MiB\t%.1f MiB\t%.2f KiB\t%.2f KiB\t%s\t\n", r.name, r.delivered, r.kept,
			float64(r.dbBytes)/(1<<20), float64(r.dbUsed)/(1<<20), float64(r.blobByte)/(1<<20),
			float64(r.dbUsed)/kept/1024, float64(r.blobByte)/kept/1024, r.admitMax.Round(100*time.Microsecond))
	}
	tw.Flush()
}

// storeSize runs and prints the store-size figures: 1,000 jobs a day, 3
// days kept of 7 (full: 2,000 a day, 4 days kept of 10).
func storeSize(o options, full bool) error {
	so := sizeOptions{perDay: 1000, days: 7, keepDays: 3, side: 256}
	if full {
		so.perDay, so.days, so.keepDays = 2000, 10, 4
	}
	rows, err := sizes(o, so)
	if err != nil {
		return err
	}
	printSizes(so, rows)
	return nil
}

// stuck describes the jobs left unfinished, for a run that timed out.
func stuck(db interface {
	Unfinished(context.Context) ([]*engine.Job, error)
}) string {
	js, err := db.Unfinished(context.Background())
	if err != nil {
		return fmt.Sprintf("; unfinished jobs unreadable: %v", err)
	}
	out := fmt.Sprintf("; %d unfinished", len(js))
	for i, j := range js {
		if i == 5 {
			break
		}
		out += fmt.Sprintf("; %s %s attempts %d delivery attempts %d err %v", j.ID, j.State, j.Attempts, j.DeliveryAttempts, j.Err)
	}
	return out
}
