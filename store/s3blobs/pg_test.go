package s3blobs_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/picbot/picbot/engine"
	pgstore "github.com/picbot/picbot/store/pg"
	"github.com/picbot/picbot/store/pg/pgtest"
	"github.com/picbot/picbot/store/s3blobs/s3fake"
)

// TestPrunerPostgres: with images in the bucket, the PostgreSQL store's
// retention sweeps the bucket, keeping every image a job names (an input,
// the ControlNet image, the mask, a result) and removing an orphan on the
// second pass.
func TestPrunerPostgres(t *testing.T) {
	ctx := context.Background()
	db, err := pgstore.Open(ctx, pgtest.URL(t), pgstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	fake := s3fake.Start(t, "pgprune")
	b := open(t, options(t, fake, "img"))
	fake.Clock.Shift(-2 * time.Hour)
	var keys []string
	for i := range 5 {
		info, err := b.Put(ctx, bytes.NewReader(tinyPNG(t, uint8(10*i+5))), 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, info.Key)
	}
	fake.Clock.Shift(0)
	input, control, mask, result, orphan := keys[0], keys[1], keys[2], keys[3], keys[4]
	now := time.Now()
	j := &engine.Job{ID: "j", Owner: engine.UserRef{Platform: "t", ID: "u"}, State: engine.StateDelivered,
		CreatedAt: now, UpdatedAt: now, FinishedAt: now,
		Request: engine.Request{Inputs: []engine.Input{{Blob: input}}, Control: &engine.Control{Input: engine.Input{Blob: control}},
			Mask: &engine.Input{Blob: mask}},
		Results: []engine.Result{{Blob: result}}}
	if err := db.CreateJob(ctx, j, nil); err != nil {
		t.Fatal(err)
	}
	refs, err := db.BlobRefs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(refs) != 4 || !refs[input] || !refs[control] || !refs[mask] || !refs[result] {
		t.Fatalf("BlobRefs %v, want the four the job names", refs)
	}
	p := &pgstore.Pruner{DB: db, Blobs: b, Retention: pgstore.Retention{Jobs: 30 * 24 * time.Hour}}
	for pass := 1; pass <= 2; pass++ {
		if err := p.Pass(ctx); err != nil {
			t.Fatal(err)
		}
		_, err := b.Open(context.Background(), orphan)
		if gone := engine.ErrorCode(err) == engine.ENOTFOUND; gone != (pass == 2) {
			t.Fatalf("pass %d: orphan gone %v", pass, gone)
		}
	}
	for _, k := range keys[:4] {
		if _, err := b.Open(context.Background(), k); err != nil {
			t.Errorf("referenced image %s: %v", k, err)
		}
	}
}
