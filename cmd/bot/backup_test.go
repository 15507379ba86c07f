package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/picbot/picbot/store"
)

// TestBackupOnline backs the database up from a running bot (which holds
// bbolt's lock), restores the copy into a fresh data directory and reads
// the jobs back, through the store and through a bot started on it.
func TestBackupOnline(t *testing.T) {
	dir := t.TempDir()
	addr := freeAddr(t)
	cfg := filepath.Join(dir, "picbot.yaml")
	os.WriteFile(cfg, []byte("local:\n  enabled: true\n  duration: 10ms\nhttp:\n  listen: "+addr+"\n"), 0o600)
	b := startBot(t, dir, "-config", cfg)
	const jobs = 3
	for i := range jobs {
		fmt.Fprintf(b.stdin, "/draw backup %d --seed %d --size 64x64\n", i, i)
	}
	done := map[string]bool{}
	deadline := time.After(time.Minute)
	for len(done) < jobs {
		select {
		case line := <-b.lines:
			if m := doneRe.FindStringSubmatch(line); m != nil {
				done[m[1]] = true
			}
		case <-deadline:
			out, errOut := b.output()
			t.Fatalf("only %d jobs done\n%s\n%s", len(done), out, errOut)
		}
	}

	// The disk-usage gauge: the database figure is set before the bot serves.
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !regexp.MustCompile(`(?m)^picbot_store_bytes\{part="database"\} [1-9]`).Match(body) {
		t.Errorf("no database size in /metrics:\n%s", body)
	}

	out := filepath.Join(dir, "copy.db")
	cmd := exec.Command(binary, "backup", "-config", cfg, out)
	cmd.Dir = dir
	msg, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("backup while the bot runs: %v\n%s", err, msg)
	}
	if !strings.Contains(string(msg), "bytes written") {
		t.Errorf("backup said %q", msg)
	}
	b.wait(t, time.Minute)

	// Restore: a data directory holding only the copy.
	restored := filepath.Join(t.TempDir(), "data")
	os.MkdirAll(restored, 0o700)
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(restored, "picbot.db"), data, 0o600)
	db, err := store.Open(filepath.Join(restored, "picbot.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for id := range done {
		j, err := db.Job(context.Background(), id)
		if err != nil {
			t.Errorf("job %s not in the backup: %v", id, err)
		} else if !strings.HasPrefix(j.Request.Prompt, "backup ") {
			t.Errorf("job %s: prompt %q", id, j.Request.Prompt)
		}
	}
	db.Close()
	listing := runBot(t, filepath.Dir(restored), "/jobs\n")
	for id := range done {
		if !strings.Contains(listing, id) {
			t.Errorf("the restored bot does not list job %s:\n%s", id, listing)
		}
	}
}

// TestBackupStopped copies the database straight from the file when no bot
// runs, past a socket file a killed bot left behind.
func TestBackupStopped(t *testing.T) {
	dir := t.TempDir()
	runBot(t, dir, "/help\n")
	os.WriteFile(filepath.Join(dir, "data", adminSocket), nil, 0o600)
	cmd := exec.Command(binary, "backup", "copy.db")
	cmd.Dir = dir
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("backup: %v\n%s", err, msg)
	}
	db, err := store.Open(filepath.Join(dir, "copy.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
}
