package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/picbot/picbot/engine"
	"github.com/picbot/picbot/store"
	pgstore "github.com/picbot/picbot/store/pg"
	"github.com/picbot/picbot/store/pg/pgtest"
)

// TestMigrate: a bbolt data directory with finished jobs, counters,
// settings and images is copied into PostgreSQL by `picbot migrate`; a
// second run copies nothing; a bot started on the database sees the jobs.
func TestMigrate(t *testing.T) {
	url := pgtest.URL(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "picbot.yaml")
	os.WriteFile(cfg, []byte("local:\n  enabled: true\n  duration: 10ms\n"), 0o600)
	b := startBot(t, dir, "-config", cfg)
	const jobs = 3
	for i := range jobs {
		fmt.Fprintf(b.stdin, "/draw migrate %d --seed %d --size 64x64\n", i, i)
	}
	fmt.Fprintf(b.stdin, "/admin quota console:someone 7\n")
	b.wait(t, time.Minute)

	migrate := func() string {
		t.Helper()
		cmd := exec.Command(binary, "migrate", "-config", cfg, "--to", url)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("migrate: %v\n%s", err, out)
		}
		return string(out)
	}
	first := migrate()
	if !strings.Contains(first, fmt.Sprintf("jobs: %d copied, 0 there already", jobs)) || strings.Contains(first, "images: 0 copied") {
		t.Fatalf("first run:\n%s", first)
	}
	second := migrate()
	for _, want := range []string{"jobs: 0 copied", "counters: 0 copied", "settings: 0 copied", "images: 0 copied"} {
		if !strings.Contains(second, want) {
			t.Errorf("second run copied again (want %q):\n%s", want, second)
		}
	}

	ctx := context.Background()
	src, err := store.Open(filepath.Join(dir, "data", "picbot.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := pgstore.Open(ctx, url, pgstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	owner := engine.UserRef{Platform: "console", ID: "local"}
	was, _ := src.JobsByOwner(ctx, owner, 10)
	now, err := dst.JobsByOwner(ctx, owner, 10)
	if err != nil || len(now) != jobs || len(was) != jobs {
		t.Fatalf("jobs: %d in bbolt, %d in PostgreSQL (%v), want %d", len(was), len(now), err, jobs)
	}
	blobs := dst.Blobs(0)
	for i, j := range now {
		if j.ID != was[i].ID || j.State != engine.StateDelivered || len(j.Results) != 1 {
			t.Fatalf("job %d: %s %s, want %s delivered", i, j.ID, j.State, was[i].ID)
		}
		rc, err := blobs.Open(context.Background(), j.Results[0].Blob)
		if err != nil {
			t.Fatalf("image of %s: %v", j.ID, err)
		}
		n, _ := io.Copy(io.Discard, rc)
		rc.Close()
		if n != j.Results[0].Size {
			t.Fatalf("image of %s: %d bytes, want %d", j.ID, n, j.Results[0].Size)
		}
	}
	want, got := map[string]int64{}, map[string]int64{}
	_ = src.View(ctx, func(c engine.Counters) error { c.Scan("", func(k string, v int64) { want[k] = v }); return nil })
	_ = dst.View(ctx, func(c engine.Counters) error { c.Scan("", func(k string, v int64) { got[k] = v }); return nil })
	if fmt.Sprint(got) != fmt.Sprint(want) || len(want) == 0 {
		t.Errorf("counters:\n%v\nwant\n%v", got, want)
	}
	_ = dst.View(ctx, func(c engine.Counters) error {
		if v := c.Setting("daily:console:someone"); v != "7" {
			t.Errorf("setting daily = %q, want 7", v)
		}
		return nil
	})
}
