package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/picbot/picbot/engine"
	"github.com/picbot/picbot/store"
)

func putPNG(t *testing.T, b *store.Blobs, w int) string {
	t.Helper()
	var buf bytes.Buffer
	png.Encode(&buf, image.NewGray(image.Rect(0, 0, w, 1)))
	info, err := b.Put(context.Background(), &buf, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	return info.Key
}

// age sets a blob file's time back, as if it were stored long ago.
func age(t *testing.T, dir, key string, d time.Duration) {
	t.Helper()
	old := time.Now().Add(-d)
	if err := os.Chtimes(filepath.Join(dir, key[:2], key), old, old); err != nil {
		t.Fatal(err)
	}
}

func blobExists(dir, key string) bool {
	_, err := os.Stat(filepath.Join(dir, key[:2], key))
	return err == nil
}

func TestPrune(t *testing.T) {
	ctx := context.Background()
	now := time.Now().UTC()
	db := mustOpen(t, filepath.Join(t.TempDir(), "db"))
	defer db.Close()
	dir := t.TempDir()
	blobs, err := store.OpenBlobs(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	oldOnly := putPNG(t, blobs, 1) // named only by old jobs
	kept := putPNG(t, blobs, 2)    // named by a recent job and an old one
	stray := putPNG(t, blobs, 3)   // named by nothing, old
	fresh := putPNG(t, blobs, 4)   // named by nothing yet: just stored
	for _, k := range []string{oldOnly, kept, stray} {
		age(t, dir, k, 40*24*time.Hour)
	}

	old := now.Add(-31 * 24 * time.Hour)
	recent := now.Add(-29 * 24 * time.Hour)
	mk := func(id string, state engine.State, notified bool, at time.Time, blob string) {
		j := &engine.Job{ID: id, Owner: engine.UserRef{Platform: "t", ID: "u"}, State: state, Notified: notified,
			CreatedAt: at.Add(-time.Minute), UpdatedAt: at}
		if state.Terminal() {
			j.FinishedAt = at
		}
		if blob != "" {
			j.Results = []engine.Result{{Blob: blob}}
		}
		if err := db.CreateJob(ctx, j, nil); err != nil {
			t.Fatal(err)
		}
	}
	// More old jobs than one transaction deletes, to cross batches.
	const nOld = 1234
	for i := range nOld {
		switch i % 3 {
		case 0:
			mk(fmt.Sprintf("old-d-%04d", i), engine.StateDelivered, false, old, oldOnly)
		case 1:
			mk(fmt.Sprintf("old-f-%04d", i), engine.StateFailed, true, old, "")
		case 2:
			mk(fmt.Sprintf("old-c-%04d", i), engine.StateCancelled, true, old, kept)
		}
	}
	mk("old-running", engine.StateRunning, false, old, "")
	mk("old-failed-untold", engine.StateFailed, false, old, "") // the chat was not told yet: unfinished
	mk("recent-delivered", engine.StateDelivered, false, recent, kept)

	day := func(t time.Time) string { return t.Format(time.DateOnly) }
	err = db.Update(ctx, func(c engine.Counters) error {
		c.Add("d:u:t:u:"+day(now.Add(-91*24*time.Hour)), 3)
		c.Add("d:g:"+day(now.Add(-100*24*time.Hour)), 3)
		c.Add("st:"+day(now.Add(-91*24*time.Hour))+":jobs", 3)
		c.Add("st:"+day(now.Add(-91*24*time.Hour))+":zhiqite:calls", 3)
		c.Add("d:u:t:u:"+day(now.Add(-89*24*time.Hour)), 1)
		c.Add("st:"+day(now.Add(-89*24*time.Hour))+":jobs", 1)
		c.Add("d:u:t:u:"+day(now), 1)
		c.Add("r:u:t:u", 1) // not a per-day counter
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	p := &store.Pruner{DB: db, Blobs: blobs, Retention: store.DefaultRetention(), Now: func() time.Time { return now }}
	st, err := p.Pass(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Jobs != nOld || st.Counters != 4 {
		t.Fatalf("first pass %+v, want %d jobs and 4 counters", st, nOld)
	}
	for _, id := range []string{"old-d-0000", "old-f-0001", "old-c-0002", "old-d-1233"} {
		if _, err := db.Job(ctx, id); engine.ErrorCode(err) != engine.ENOTFOUND {
			t.Errorf("job %s: err %v, want ENOTFOUND", id, err)
		}
	}
	// The owner index must not point at removed jobs: JobsByOwner reads each.
	mine, err := db.JobsByOwner(ctx, engine.UserRef{Platform: "t", ID: "u"}, 10000)
	if err != nil {
		t.Fatal(err)
	}
	if len(mine) != 3 {
		t.Fatalf("owner index lists %d jobs, want the 3 kept", len(mine))
	}
	unfinished, err := db.Unfinished(ctx)
	if err != nil || len(unfinished) != 2 {
		t.Fatalf("unfinished %d, %v; want old-running and old-failed-untold", len(unfinished), err)
	}
	// One pass only marks unreferenced images; the next removes them.
	if !blobExists(dir, oldOnly) || !blobExists(dir, stray) {
		t.Fatal("an image was removed on the pass that first found it unreferenced")
	}
	st, err = p.Pass(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Jobs != 0 || st.Counters != 0 || st.Blobs != 2 {
		t.Fatalf("second pass %+v, want 2 blobs only", st)
	}
	if blobExists(dir, oldOnly) || blobExists(dir, stray) {
		t.Error("unreferenced old images kept")
	}
	if !blobExists(dir, kept) {
		t.Error("an image a kept job names was removed")
	}
	if !blobExists(dir, fresh) {
		t.Error("an image stored a moment ago was removed")
	}
	var keys []string
	db.View(ctx, func(c engine.Counters) error {
		for _, p := range []string{"d:", "st:", "r:"} {
			c.Scan(p, func(k string, _ int64) { keys = append(keys, k) })
		}
		return nil
	})
	if len(keys) != 4 {
		t.Fatalf("counters left %q, want the 3 recent ones and the running count", keys)
	}
}

// A job made from an old job's result (an upscale) names an image without
// storing it again; one pass in between lets the sweep see it.
func TestPruneFollowUpKeepsImage(t *testing.T) {
	ctx := context.Background()
	db := mustOpen(t, filepath.Join(t.TempDir(), "db"))
	defer db.Close()
	dir := t.TempDir()
	blobs, _ := store.OpenBlobs(dir, 0)
	key := putPNG(t, blobs, 5)
	age(t, dir, key, 40*24*time.Hour)
	p := &store.Pruner{DB: db, Blobs: blobs, Retention: store.DefaultRetention()}
	if _, err := p.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	j := newJob("follow", "u")
	j.Request.Inputs = []engine.Input{{Blob: key}}
	if err := db.CreateJob(ctx, j, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	if !blobExists(dir, key) {
		t.Fatal("image of a job written between two passes was removed")
	}
}

func TestPruneCancelled(t *testing.T) {
	db := mustOpen(t, filepath.Join(t.TempDir(), "db"))
	defer db.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := db.PruneJobs(ctx, time.Now()); !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
}

// Run prunes at once, then every Every, and returns when ctx ends.
func TestPrunerRun(t *testing.T) {
	db := mustOpen(t, filepath.Join(t.TempDir(), "db"))
	defer db.Close()
	old := time.Now().Add(-40 * 24 * time.Hour)
	j := &engine.Job{ID: "old", State: engine.StateDelivered, CreatedAt: old, UpdatedAt: old, FinishedAt: old}
	if err := db.CreateJob(context.Background(), j, nil); err != nil {
		t.Fatal(err)
	}
	passes := make(chan store.PruneStats, 10)
	p := &store.Pruner{DB: db, Retention: store.Retention{Jobs: 24 * time.Hour, Every: time.Millisecond},
		Passed: func(st store.PruneStats, err error) {
			if err == nil {
				passes <- st
			}
		}}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { p.Run(ctx); close(stopped) }()
	if st := <-passes; st.Jobs != 1 {
		t.Fatalf("first pass %+v", st)
	}
	if st := <-passes; st.Jobs != 0 {
		t.Fatalf("second pass %+v", st)
	}
	cancel()
	<-stopped
	off := &store.Pruner{DB: db, Retention: store.Retention{Jobs: time.Hour}}
	off.Run(context.Background()) // every 0: returns at once
}
