package pgstore_test

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"testing"
	"time"

	"github.com/picbot/picbot/engine"
	pgstore "github.com/picbot/picbot/store/pg"
	"github.com/picbot/picbot/store/pg/pgtest"
)

func tinyPNG(t *testing.T, shade uint8) []byte {
	t.Helper()
	img := image.NewGray(image.Rect(0, 0, 4, 4))
	for i := range img.Pix {
		img.Pix[i] = shade
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestPrune: old finished jobs and old days' counters go; an image goes
// once two passes found no job naming it, while one a kept job names stays.
func TestPrune(t *testing.T) {
	ctx := context.Background()
	db := mustOpen(t, pgtest.URL(t), pgstore.Options{})
	blobs := db.Blobs(0)
	kept, err := blobs.Put(ctx, bytes.NewReader(tinyPNG(t, 10)), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	orphan, err := blobs.Put(ctx, bytes.NewReader(tinyPNG(t, 200)), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	// A running job's ControlNet image and mask are named nowhere else.
	control, err := blobs.Put(ctx, bytes.NewReader(tinyPNG(t, 60)), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	mask, err := blobs.Put(ctx, bytes.NewReader(tinyPNG(t, 90)), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-40 * 24 * time.Hour)
	for _, j := range []*engine.Job{
		{ID: "old", Owner: alice(), State: engine.StateDelivered, CreatedAt: old, UpdatedAt: old, FinishedAt: old,
			Results: []engine.Result{{Blob: orphan.Key}}},
		{ID: "new", Owner: alice(), State: engine.StateDelivered, CreatedAt: time.Now(), UpdatedAt: time.Now(), FinishedAt: time.Now(),
			Results: []engine.Result{{Blob: kept.Key}}},
		{ID: "running", Owner: alice(), State: engine.StateSubmitted, CreatedAt: old, UpdatedAt: old,
			Request: engine.Request{Control: &engine.Control{Input: engine.Input{Blob: control.Key}}, Mask: &engine.Input{Blob: mask.Key}}},
	} {
		if err := db.CreateJob(ctx, j, nil); err != nil {
			t.Fatal(err)
		}
	}
	oldDay := time.Now().Add(-100 * 24 * time.Hour).Format(time.DateOnly)
	today := time.Now().Format(time.DateOnly)
	_ = db.Update(ctx, func(c engine.Counters) error {
		c.Add("d:u:t:a:"+oldDay, 3)
		c.Add("st:"+oldDay+"::jobs", 3)
		c.Add("d:u:t:a:"+today, 1)
		c.Add("r:u:t:a", 1)
		return nil
	})
	if err := db.AgeBlobsForTest(ctx); err != nil {
		t.Fatal(err)
	}
	p := &pgstore.Pruner{DB: db, Retention: pgstore.Retention{Jobs: 30 * 24 * time.Hour, Counters: 90 * 24 * time.Hour}}
	for pass := 1; pass <= 2; pass++ {
		if err := p.Pass(ctx); err != nil {
			t.Fatalf("pass %d: %v", pass, err)
		}
		_, err := blobs.Open(context.Background(), orphan.Key)
		if gone := engine.ErrorCode(err) == engine.ENOTFOUND; gone != (pass == 2) {
			t.Fatalf("pass %d: orphan image gone %v", pass, gone)
		}
	}
	if _, err := db.Job(ctx, "old"); engine.ErrorCode(err) != engine.ENOTFOUND {
		t.Errorf("old job kept: %v", err)
	}
	for _, id := range []string{"new", "running"} {
		if _, err := db.Job(ctx, id); err != nil {
			t.Errorf("job %s: %v", id, err)
		}
	}
	for what, key := range map[string]string{"result": kept.Key, "ControlNet image": control.Key, "mask": mask.Key} {
		if _, err := blobs.Open(context.Background(), key); err != nil {
			t.Errorf("%s of a kept job: %v", what, err)
		}
	}
	_ = db.View(ctx, func(c engine.Counters) error {
		for k, want := range map[string]int64{"d:u:t:a:" + oldDay: 0, "st:" + oldDay + "::jobs": 0, "d:u:t:a:" + today: 1, "r:u:t:a": 1} {
			if got := c.Get(k); got != want {
				t.Errorf("%s = %d, want %d", k, got, want)
			}
		}
		return nil
	})
}

func alice() engine.UserRef { return engine.UserRef{Platform: "t", ID: "a"} }
