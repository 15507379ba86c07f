package store_test

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/png"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/picbot/picbot/engine"
	"github.com/picbot/picbot/store"
)

func mustOpen(t *testing.T, path string) *store.DB {
	t.Helper()
	db, err := store.Open(path, store.Options{LockTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func TestOpen(t *testing.T) {
	t.Run("ErrLocked", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "db")
		db := mustOpen(t, path)
		defer db.Close()
		start := time.Now()
		_, err := store.Open(path, store.Options{LockTimeout: 100 * time.Millisecond})
		if !errors.Is(err, store.ErrLocked) {
			t.Fatalf("err %v, want ErrLocked", err)
		}
		if time.Since(start) > 2*time.Second {
			t.Fatal("second open hung")
		}
	})
	t.Run("Reopen", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "db")
		mustOpen(t, path).Close()
		mustOpen(t, path).Close()
	})
}

func newJob(id, user string) *engine.Job {
	return &engine.Job{ID: id, Owner: engine.UserRef{Platform: "t", ID: user}, State: engine.StateQueued, CreatedAt: time.Now()}
}

func TestJobs(t *testing.T) {
	ctx := context.Background()
	db := mustOpen(t, filepath.Join(t.TempDir(), "db"))
	defer db.Close()

	t.Run("ReserveRefusedWritesNothing", func(t *testing.T) {
		err := db.CreateJob(ctx, newJob("refused", "u"), func(c engine.Counters) error {
			c.Add("x", 5)
			return engine.Errorf(engine.EQUOTA, "no", "no")
		})
		if engine.ErrorCode(err) != engine.EQUOTA {
			t.Fatalf("err %v", err)
		}
		if _, err := db.Job(ctx, "refused"); engine.ErrorCode(err) != engine.ENOTFOUND {
			t.Fatalf("refused job stored: %v", err)
		}
		db.View(ctx, func(c engine.Counters) error {
			if c.Get("x") != 0 {
				t.Fatal("refused reservation counted")
			}
			return nil
		})
	})
	t.Run("UnfinishedIndex", func(t *testing.T) {
		for _, id := range []string{"a", "b", "c"} {
			if err := db.CreateJob(ctx, newJob(id, "u"), nil); err != nil {
				t.Fatal(err)
			}
		}
		_, err := db.UpdateJob(ctx, "b", func(j *engine.Job, c engine.Counters) error {
			j.State = engine.StateDelivered
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		jobs, err := db.Unfinished(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, j := range jobs {
			ids = append(ids, j.ID)
		}
		if got, want := strings.Join(ids, ","), "a,c"; got != want {
			t.Fatalf("unfinished %s, want %s", got, want)
		}
	})
	t.Run("ByOwnerNewestFirst", func(t *testing.T) {
		for i, id := range []string{"o1", "o2", "o3"} {
			j := newJob(id, "owner")
			j.CreatedAt = time.Unix(int64(1000+i), 0)
			if err := db.CreateJob(ctx, j, nil); err != nil {
				t.Fatal(err)
			}
		}
		db.CreateJob(ctx, newJob("other", "owner2"), nil)
		jobs, err := db.JobsByOwner(ctx, engine.UserRef{Platform: "t", ID: "owner"}, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(jobs) != 2 || jobs[0].ID != "o3" || jobs[1].ID != "o2" {
			t.Fatalf("jobs %v", jobs)
		}
	})
	t.Run("UpdateErrorAborts", func(t *testing.T) {
		_, err := db.UpdateJob(ctx, "a", func(j *engine.Job, c engine.Counters) error {
			j.State = engine.StateFailed
			c.Add("y", 1)
			return errors.New("abort")
		})
		if err == nil || db.View(ctx, func(c engine.Counters) error {
			if c.Get("y") != 0 {
				t.Fatal("aborted update counted")
			}
			return nil
		}) != nil {
			t.Fatal(err)
		}
		if j, _ := db.Job(ctx, "a"); j.State != engine.StateQueued {
			t.Fatalf("aborted update wrote state %s", j.State)
		}
	})
	t.Run("CountersNeverNegative", func(t *testing.T) {
		db.Update(ctx, func(c engine.Counters) error { c.Add("z", -3); return nil })
		db.View(ctx, func(c engine.Counters) error {
			if c.Get("z") != 0 {
				t.Fatalf("z = %d", c.Get("z"))
			}
			return nil
		})
	})
}

func TestBlobs(t *testing.T) {
	ctx := context.Background()
	b, err := store.OpenBlobs(t.TempDir(), 100*100)
	if err != nil {
		t.Fatal(err)
	}
	img := func(w, h int) []byte {
		var buf bytes.Buffer
		png.Encode(&buf, image.NewGray(image.Rect(0, 0, w, h)))
		return buf.Bytes()
	}
	t.Run("OK", func(t *testing.T) {
		info, err := b.Put(ctx, bytes.NewReader(img(20, 10)), 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if info.Mime != "image/png" || info.Width != 20 || info.Height != 10 || len(info.Key) != 64 {
			t.Fatalf("info %+v", info)
		}
		again, _ := b.Put(ctx, bytes.NewReader(img(20, 10)), 1<<20)
		if again.Key != info.Key {
			t.Fatal("same bytes, different key")
		}
		rc, err := b.Open(context.Background(), info.Key)
		if err != nil {
			t.Fatal(err)
		}
		rc.Close()
	})
	for name, tc := range map[string]struct {
		data  []byte
		limit int64
	}{
		"ErrNotImage":   {[]byte("<html>hello</html>"), 1 << 20},
		"ErrTooLarge":   {img(20, 10), 10},
		"ErrDimensions": {img(200, 200), 1 << 20},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := b.Put(ctx, bytes.NewReader(tc.data), tc.limit); engine.ErrorCode(err) != engine.EINVALID {
				t.Fatalf("err %v, want invalid", err)
			}
		})
	}
	t.Run("ErrBadKey", func(t *testing.T) {
		if _, err := b.Open(context.Background(), "../../etc/passwd"); engine.ErrorCode(err) != engine.ENOTFOUND {
			t.Fatalf("err %v", err)
		}
	})
}
