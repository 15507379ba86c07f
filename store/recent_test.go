package store_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/picbot/picbot/engine"
	"github.com/picbot/picbot/store"
	bolt "go.etcd.io/bbolt"
)

func recentIDs(t *testing.T, db *store.DB, before time.Time, limit int) string {
	t.Helper()
	var ids []string
	err := db.RecentJobs(context.Background(), before, func(j *engine.Job) bool {
		ids = append(ids, j.ID)
		return len(ids) < limit
	})
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(ids, ",")
}

func TestRecentJobs(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "db")
	db := mustOpen(t, path)
	base := time.Unix(1_700_000_000, 0)
	// Created out of id order, so the list follows time, not keys.
	for i, id := range []string{"c", "a", "d", "b"} {
		j := newJob(id, "u"+id)
		j.CreatedAt = base.Add(time.Duration(i) * time.Minute)
		if err := db.CreateJob(ctx, j, nil); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("NewestFirst", func(t *testing.T) {
		if got, want := recentIDs(t, db, time.Time{}, 10), "b,d,a,c"; got != want {
			t.Fatalf("got %s, want %s", got, want)
		}
	})
	t.Run("StopsWhenAsked", func(t *testing.T) {
		if got, want := recentIDs(t, db, time.Time{}, 2), "b,d"; got != want {
			t.Fatalf("got %s, want %s", got, want)
		}
	})
	t.Run("Before", func(t *testing.T) {
		// The next page starts before the last job shown (d, at +2m).
		if got, want := recentIDs(t, db, base.Add(2*time.Minute), 10), "a,c"; got != want {
			t.Fatalf("got %s, want %s", got, want)
		}
		if got := recentIDs(t, db, base, 10); got != "" {
			t.Fatalf("before the first job: %s", got)
		}
	})
	t.Run("UpdatesDoNotDuplicate", func(t *testing.T) {
		db.UpdateJob(ctx, "a", func(j *engine.Job, _ engine.Counters) error {
			j.State, j.FinishedAt, j.DeliveredAt = engine.StateDelivered, time.Now(), time.Now()
			return nil
		})
		if got, want := recentIDs(t, db, time.Time{}, 10), "b,d,a,c"; got != want {
			t.Fatalf("got %s, want %s", got, want)
		}
	})
	t.Run("PruneRemovesFromIndex", func(t *testing.T) {
		db.UpdateJob(ctx, "c", func(j *engine.Job, _ engine.Counters) error {
			j.State, j.FinishedAt, j.DeliveredAt = engine.StateDelivered, base, base
			return nil
		})
		if n, err := db.PruneJobs(ctx, base.Add(time.Second)); err != nil || n != 1 {
			t.Fatalf("pruned %d, %v", n, err)
		}
		if got, want := recentIDs(t, db, time.Time{}, 10), "b,d,a"; got != want {
			t.Fatalf("got %s, want %s", got, want)
		}
	})
	t.Run("IndexBuiltForOldStore", func(t *testing.T) {
		db.Close()
		// A store from before the index: the bucket is not there.
		raw, err := bolt.Open(path, 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := raw.Update(func(tx *bolt.Tx) error { return tx.DeleteBucket([]byte("created")) }); err != nil {
			t.Fatal(err)
		}
		raw.Close()
		db = mustOpen(t, path)
		if got, want := recentIDs(t, db, time.Time{}, 10), "b,d,a"; got != want {
			t.Fatalf("got %s, want %s", got, want)
		}
	})
	db.Close()
}

func TestAudit(t *testing.T) {
	ctx := context.Background()
	db := mustOpen(t, filepath.Join(t.TempDir(), "db"))
	defer db.Close()
	at := time.Unix(1_800_000_000, 0).UTC()
	for i, a := range []string{"login", "ban", "tier"} {
		if err := db.AppendAudit(ctx, store.AuditEntry{At: at.Add(time.Duration(i) * time.Second), Who: "ann@10.0.0.1", Action: a, Target: "telegram:1", Result: "ok"}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := db.Audit(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Action != "tier" || got[1].Action != "ban" || !got[0].At.Equal(at.Add(2*time.Second)) || got[0].Who != "ann@10.0.0.1" {
		t.Fatalf("newest two: %+v", got)
	}
}

func TestScanSettings(t *testing.T) {
	ctx := context.Background()
	db := mustOpen(t, filepath.Join(t.TempDir(), "db"))
	defer db.Close()
	db.Update(ctx, func(c engine.Counters) error {
		c.SetSetting("ban:telegram:1", "1")
		c.SetSetting("ban:telegram:2", "1")
		c.SetSetting("tier:telegram:1", "vip")
		return nil
	})
	err := db.Update(ctx, func(c engine.Counters) error {
		c.SetSetting("ban:telegram:2", "")  // unbanned in this transaction: not listed
		c.SetSetting("ban:telegram:3", "1") // banned in it: listed
		var got []string
		c.(interface {
			ScanSettings(string, func(string, string))
		}).ScanSettings("ban:", func(k, v string) { got = append(got, k+"="+v) })
		if g, want := strings.Join(got, " "), "ban:telegram:1=1 ban:telegram:3=1"; g != want {
			t.Errorf("got %s, want %s", g, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
