package main

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/picbot/picbot/engine"
	"github.com/picbot/picbot/engine/showapi/showapitest"
	"github.com/picbot/picbot/store"
)

// The fake's task takes showAPITask; the bot's timing is the adapter's
// defaults (8 s typical, 3 s, 20 s) scaled by the same quarter, so the count
// of polls is what a real 8-second task would cost.
const (
	showAPITask = 2 * time.Second
	showAPICode = "e2e-app-code-5b1d"
)

var billedRe = regexp.MustCompile(`billed vendor calls: (\d+)`)

// showAPIConfig writes a configuration that routes /draw to the fake.
func showAPIConfig(t *testing.T, dir, baseURL string, callbacks bool, auth string) string {
	t.Helper()
	addr := freeAddr(t)
	cfg := fmt.Sprintf(`data_dir: %q
console:
  out_dir: %q
http:
  listen: %q
  public_url: "http://%s"
engine:
  routes:
    draw: [showapi]
vendors:
  showapi:
    enabled: true
    base_url: %q
%s    create_path: /createtask
    callbacks: %v
    typical_duration: 2s
    poll_every: 750ms
    poll_max: 5s
`, filepath.Join(dir, "data"), filepath.Join(dir, "out"), addr, addr, baseURL, auth, callbacks)
	path := filepath.Join(dir, "picbot.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// checkImage reads the PNG the console wrote and checks its size.
func checkImage(t *testing.T, dir, out string, w, h int) {
	t.Helper()
	path := pngPath.FindString(out)
	if path == "" {
		t.Fatalf("no PNG path in output:\n%s", out)
	}
	if !filepath.IsAbs(path) {
		path = filepath.Join(dir, path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != w || b.Dy() != h {
		t.Fatalf("image %v, want %dx%d", b, w, h)
	}
}

func billed(t *testing.T, out string) int {
	t.Helper()
	m := billedRe.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no billed calls line:\n%s", out)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

func TestShowAPICallback(t *testing.T) {
	fake := showapitest.Start(showapitest.Options{AppCode: showAPICode, Duration: showAPITask, CallbackInterval: 200 * time.Millisecond})
	defer fake.Close()
	dir := t.TempDir()
	cfg := showAPIConfig(t, dir, fake.URL, true, fmt.Sprintf("    app_code: %q\n", showAPICode))
	start := time.Now()
	out := runBot(t, dir, "/draw a red fox --seed 7\n/draw an unsafe fox\n", "-config", cfg)

	checkImage(t, dir, out, 512, 512)
	if n := billed(t, out); n > 2 || n < 1 {
		t.Errorf("billed vendor calls %d, want at most 2 with a callback", n)
	}
	var fox string
	for _, id := range fake.TaskIDs() {
		if rec, _ := fake.Task(id); rec["prompt"] == "a red fox" {
			fox = id
		}
	}
	if fox == "" {
		t.Fatalf("no task at the fake for the prompt; tasks %v", fake.TaskIDs())
	}
	if got, want := fake.BilledFor(fox), billed(t, out); got != want {
		t.Errorf("the fake billed %d calls for the task, the bot counted %d", got, want)
	}
	var ok bool
	for _, cb := range fake.Callbacks() {
		if cb.TaskID == fox && cb.Status == 200 {
			ok = true
		}
	}
	if !ok {
		t.Errorf("the bot did not accept the callback: %+v", fake.Callbacks())
	}
	if n := fake.Calls("/yourtaskresult"); n != 0 {
		t.Errorf("%d polls though the vendor called back", n)
	}
	for _, r := range fake.Requests() {
		if r.Path == "/createtask" {
			q, _ := url.ParseQuery(string(r.Body))
			if !strings.Contains(q.Get("call_back"), "/callback/showapi/") || q.Get("seed") == "" || q.Get("width") != "512" {
				t.Errorf("creation %v", q)
			}
		}
	}
	if !regexp.MustCompile(`Job \w+ failed: .*content check`).MatchString(out) {
		t.Errorf("no clear message for the unsafe prompt:\n%s", out)
	}
	t.Logf("two jobs in %s", time.Since(start).Round(100*time.Millisecond))
}

func TestShowAPIPolling(t *testing.T) {
	const key, secret = "e2e-key-1c2d", "e2e-secret-9a8b7c"
	fake := showapitest.Start(showapitest.Options{AppKey: key, AppSecret: secret, Duration: showAPITask})
	defer fake.Close()
	// The signing credentials come from the environment, as an operator would keep them.
	t.Setenv("PICBOT_SHOWAPI_APP_KEY", key)
	t.Setenv("PICBOT_SHOWAPI_APP_SECRET", secret)
	dir := t.TempDir()
	cfg := showAPIConfig(t, dir, fake.URL, false, "")
	b := startBot(t, dir, "-config", cfg)
	fmt.Fprintln(b.stdin, "/draw a red fox --seed 7 --size 512x512")
	out := b.wait(t, time.Minute)

	checkImage(t, dir, out, 512, 512)
	if n := billed(t, out); n > 3 || n < 2 {
		t.Errorf("billed vendor calls %d, want 2 or 3 when polling an 8 s task", n)
	}
	if got, want := fake.Billed(), billed(t, out); got != want {
		t.Errorf("the fake billed %d calls, the bot counted %d", got, want)
	}
	if len(fake.Callbacks()) != 0 {
		t.Errorf("callbacks sent though callbacks: false")
	}
	for _, r := range fake.Requests() {
		if !strings.HasPrefix(r.Header.Get("Authorization"), "SDK-HMAC-SHA256 Access="+key) {
			t.Errorf("%s not signed", r.Path)
		}
	}
	if _, errOut := b.output(); strings.Contains(errOut, secret) || strings.Contains(out, secret) {
		t.Error("the secret appears in the bot's output")
	}
}

// The bot's record of billed calls is the fake's own count, job by job and
// in /admin stats, for jobs that end every way: delivered, refused at
// creation, failed at the vendor, and forgotten by it (the document's "no
// such task" answer bills nothing).
func TestShowAPIBillMatches(t *testing.T) {
	fake := showapitest.Start(showapitest.Options{AppCode: showAPICode, Duration: 500 * time.Millisecond})
	defer fake.Close()
	dir := t.TempDir()
	cfg := showAPIConfig(t, dir, fake.URL, false, fmt.Sprintf("    app_code: %q\n", showAPICode))
	runBot(t, dir, "/draw a red fox --seed 7\n/draw a forget fox\n/draw refuse this fox\n/draw a vendorfail fox\n", "-config", cfg)

	db, err := store.Open(filepath.Join(dir, "data", "picbot.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	jobs, err := db.JobsByOwner(context.Background(), engine.UserRef{Platform: "console", ID: "local"}, math.MaxInt32)
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) != 4 {
		t.Fatalf("%d jobs, want 4", len(jobs))
	}
	sum := 0
	for _, j := range jobs {
		if !j.Finished() {
			t.Fatalf("job %s (%q) is %s", j.ID, j.Request.Prompt, j.State)
		}
		if j.TaskID != "" {
			// A poll by list (several polled tasks in flight) is billed to
			// the job that made it, and names no task at the fake: per job
			// the fake's count is at most the job's; the sums agree.
			if got := fake.BilledFor(j.TaskID); got > j.BilledCalls {
				t.Errorf("job %q (%s): the fake billed %d calls for its task, the job records %d", j.Request.Prompt, j.State, got, j.BilledCalls)
			}
		}
		sum += j.BilledCalls
	}
	if got := fake.Billed(); got != sum {
		t.Errorf("the fake billed %d calls, the jobs record %d", got, sum)
	}
	var calls int64
	err = db.View(context.Background(), func(c engine.Counters) error {
		c.Scan("st:", func(k string, v int64) {
			if strings.HasSuffix(k, ":showapi:calls") {
				calls += v
			}
		})
		return nil
	})
	if err != nil || calls != int64(fake.Billed()) {
		t.Errorf("stats: %d billed ShowAPI calls (err %v), the fake billed %d", calls, err, fake.Billed())
	}
}

func TestShowAPIConfigErrors(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "picbot.yaml")
	os.WriteFile(cfg, []byte("vendors:\n  showapi:\n    enabled: true\n    create_encoding: xml\n"), 0o600)
	b := startBot(t, dir, "-config", cfg)
	b.stdin.Close()
	for range b.lines {
	}
	err := <-b.done
	_, errOut := b.output()
	if err == nil || !strings.Contains(errOut, "vendors.showapi.app_code") || !strings.Contains(errOut, "vendors.showapi.create_encoding") {
		t.Fatalf("exit %v, stderr:\n%s", err, errOut)
	}
}
