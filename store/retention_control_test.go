package store_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/picbot/picbot/engine"
	"github.com/picbot/picbot/store"
)

// A job's ControlNet image and mask are its inputs too: kept while the job is.
func TestPruneKeepsControlAndMask(t *testing.T) {
	ctx := context.Background()
	db := mustOpen(t, filepath.Join(t.TempDir(), "db"))
	defer db.Close()
	dir := t.TempDir()
	blobs, _ := store.OpenBlobs(dir, 0)
	control, mask := putPNG(t, blobs, 6), putPNG(t, blobs, 7)
	age(t, dir, control, 40*24*time.Hour)
	age(t, dir, mask, 40*24*time.Hour)
	j := newJob("ctl", "u")
	j.Request.Control = &engine.Control{Type: "canny", Input: engine.Input{Blob: control}}
	j.Request.Mask = &engine.Input{Blob: mask}
	if err := db.CreateJob(ctx, j, nil); err != nil {
		t.Fatal(err)
	}
	p := &store.Pruner{DB: db, Blobs: blobs, Retention: store.DefaultRetention()}
	for range 2 { // a blob is removed by the pass after the one that found it unnamed
		if _, err := p.Pass(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if !blobExists(dir, control) || !blobExists(dir, mask) {
		t.Fatal("a live job's control image or mask was removed")
	}
}
