package main

import (
	"bytes"
	"fmt"
	"image"
	_ "image/jpeg"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/picbot/picbot/engine/zhiqite/zhiqitetest"
)

const zhiqiteAppCode = "e2e-SECRET-zhiqite-5d1f"

// zhiqiteScale shortens the vendor's real times for the test: a typical
// 512×512 task takes about 8 s, polls start every 3 s and wait at most 20 s.
// Everything is divided by the same factor, so the ratio of task time to
// poll times, which decides the billed calls, stays the real one.
const zhiqiteScale = 5

func zhiqiteReal(d time.Duration) time.Duration { return d / zhiqiteScale }

// TestZhiqiteEndToEnd runs the real binary against the fake Zhiqite server:
// /draw, /upscale and /swapface through the console, once with callbacks
// and once polling, and an unsafe prompt.
func TestZhiqiteEndToEnd(t *testing.T) {
	for _, mode := range []struct {
		name      string
		callbacks bool
		maxBilled int
	}{
		// With a callback the submission is the only billed call; the
		// engine's safety-net poll may add one.
		{"Callback", true, 2},
		// Polling: the submission, a first poll after the typical duration,
		// and perhaps one more.
		{"Polling", false, 3},
	} {
		t.Run(mode.name, func(t *testing.T) { zhiqiteRun(t, mode.callbacks, mode.maxBilled) })
	}
}

func zhiqiteRun(t *testing.T, callbacks bool, maxBilled int) {
	fake := zhiqitetest.New(zhiqitetest.Options{
		AppCode:      zhiqiteAppCode,
		Duration:     zhiqiteReal(8 * time.Second),
		ToolDuration: zhiqiteReal(5 * time.Second),
		// The seed's retry schedule (3 s, 5 s, ...) shortened the same way.
		CallbackDelays: []time.Duration{zhiqiteReal(3 * time.Second), zhiqiteReal(5 * time.Second)},
	})
	defer fake.Close()

	dir := t.TempDir()
	face, target := filepath.Join(dir, "face.png"), filepath.Join(dir, "target.png")
	writePNG(t, face, 64, 48)
	writePNG(t, target, 80, 60)
	addr := freeAddr(t)
	outDir := filepath.Join(dir, "out")
	cfg := fmt.Sprintf(`data_dir: %s
console:
  out_dir: %s
http:
  listen: %s
  public_url: http://%s
engine:
  routes:
    draw: [zhiqite]
    upscale: [zhiqite]
    swapface: [zhiqite]
    anime: [local]
vendors:
  zhiqite:
    enabled: true
    base_url: %s
    app_code: %s
    callbacks: %v
    draw_duration: %s
    tool_duration: %s
    poll_every: %s
    poll_max: %s
`, filepath.Join(dir, "data"), outDir, addr, addr, fake.URL, zhiqiteAppCode, callbacks,
		zhiqiteReal(8*time.Second), zhiqiteReal(5*time.Second), zhiqiteReal(3*time.Second), zhiqiteReal(20*time.Second))
	cfgPath := filepath.Join(dir, "picbot.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}

	b := startBot(t, dir, "-config", cfgPath)
	io.WriteString(b.stdin, strings.Join([]string{
		"/draw a red fox in the snow --seed 7",
		"/upscale " + face + " --scale 2",
		"/swapface " + face + " " + target,
		"/draw something unsafe --seed 8",
	}, "\n")+"\n")
	out := b.wait(t, time.Minute)
	_, logs := b.output()
	defer func() {
		if t.Failed() {
			t.Logf("stdout:\n%s\nstderr:\n%s", out, logs)
		}
	}()

	ids := zhiqiteQueued.FindAllStringSubmatch(out, -1)
	if len(ids) != 4 {
		t.Fatalf("%d jobs queued, want 4", len(ids))
	}
	done := zhiqiteParseDone(out)
	for i, want := range []image.Point{{512, 512}, {128, 96}, {80, 60}} {
		id := ids[i][1]
		d, ok := done[id]
		if !ok {
			t.Errorf("job %s (%s) did not finish", id, ids[i][2])
			continue
		}
		if got := pngSize(t, d.path); got != want {
			t.Errorf("job %s: image %v, want %v", id, got, want)
		}
		if !strings.HasPrefix(d.path, outDir) {
			t.Errorf("job %s: image outside console.out_dir: %s", id, d.path)
		}
		if d.billed < 1 || d.billed > maxBilled {
			t.Errorf("job %s: %d billed vendor calls, want 1 to %d", id, d.billed, maxBilled)
		}
		// The bot's count and the vendor's agree.
		if got := fake.BilledFor(id + "-1"); got != d.billed {
			t.Errorf("job %s: the bot counted %d billed calls, the vendor %d", id, d.billed, got)
		}
		attempts, delivered := fake.CallbackAttempts(id + "-1")
		if callbacks && !delivered {
			t.Errorf("job %s: callback not acknowledged after %d attempts", id, attempts)
		}
		if !callbacks && attempts != 0 {
			t.Errorf("job %s: polling mode, yet %d callbacks", id, attempts)
		}
	}
	unsafe := ids[3][1]
	if _, ok := done[unsafe]; ok {
		t.Errorf("unsafe job %s delivered an image", unsafe)
	}
	failed := regexp.MustCompile(`(?m)^Job ` + unsafe + ` failed: (.*)$`).FindStringSubmatch(out)
	if failed == nil || !strings.Contains(failed[1], "content check") {
		t.Errorf("unsafe job %s: no clear failure message", unsafe)
	}
	if !callbacks {
		for _, c := range fake.Calls() {
			if bytes.Contains(c.Body, []byte("callbackUrl")) {
				t.Errorf("polling mode sent a callbackUrl to %s", c.Endpoint)
			}
		}
	}
	if strings.Contains(out+logs, zhiqiteAppCode) {
		t.Error("the app code appears in the bot's output or logs")
	}
}

var (
	zhiqiteQueued = regexp.MustCompile(`(?m)^Job (\w+) queued: (.*)$`)
	zhiqiteDone   = regexp.MustCompile(`(?m)^Job (\w+) done:\n((?:  .*\n)+)`)
	zhiqiteBilled = regexp.MustCompile(`billed vendor calls: (\d+)`)
	zhiqiteImage  = regexp.MustCompile(`(?m)^  (\S+\.(?:png|jpg|webp|gif))$`)
)

type zhiqiteResult struct {
	path   string
	billed int
}

// zhiqiteParseDone reads the console's "Job X done:" blocks.
func zhiqiteParseDone(out string) map[string]zhiqiteResult {
	res := map[string]zhiqiteResult{}
	for _, m := range zhiqiteDone.FindAllStringSubmatch(out, -1) {
		r := zhiqiteResult{billed: -1}
		if p := zhiqiteImage.FindStringSubmatch(m[2]); p != nil {
			r.path = p[1]
		}
		if n := zhiqiteBilled.FindStringSubmatch(m[2]); n != nil {
			r.billed, _ = strconv.Atoi(n[1])
		}
		res[m[1]] = r
	}
	return res
}

// TestZhiqiteConfig checks the keys under vendors.zhiqite, the environment
// overrides, and that validation names the key.
func TestZhiqiteConfig(t *testing.T) {
	write := func(t *testing.T, yaml string) string {
		p := filepath.Join(t.TempDir(), "c.yaml")
		if err := os.WriteFile(p, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	t.Run("NoAuth", func(t *testing.T) {
		_, err := LoadConfig(write(t, "vendors:\n  zhiqite:\n    enabled: true\n"))
		if err == nil || !strings.Contains(err.Error(), "vendors.zhiqite.app_code") {
			t.Fatalf("err %v: want a message naming vendors.zhiqite.app_code", err)
		}
	})
	t.Run("KeyWithoutSecret", func(t *testing.T) {
		_, err := LoadConfig(write(t, "vendors:\n  zhiqite:\n    enabled: true\n    app_key: k\n"))
		if err == nil || !strings.Contains(err.Error(), "vendors.zhiqite.app_secret") {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("BadValues", func(t *testing.T) {
		_, err := LoadConfig(write(t, "vendors:\n  zhiqite:\n    enabled: true\n    app_code: c\n    base_url: ftp://x\n    output_format: gif\n    sampler: DDIM\n"))
		for _, key := range []string{"vendors.zhiqite.base_url", "vendors.zhiqite.output_format", "vendors.zhiqite.sampler"} {
			if err == nil || !strings.Contains(err.Error(), key) {
				t.Errorf("err %v: want %s", err, key)
			}
		}
	})
	t.Run("DisabledIsNotChecked", func(t *testing.T) {
		if _, err := LoadConfig(write(t, "vendors:\n  zhiqite:\n    enabled: false\n    app_key: k\n")); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("UnknownKey", func(t *testing.T) {
		if _, err := LoadConfig(write(t, "vendors:\n  zhiqite:\n    app_cod: c\n")); err == nil {
			t.Fatal("a misspelt key was accepted")
		}
	})
	t.Run("Env", func(t *testing.T) {
		t.Setenv("PICBOT_ZHIQITE_APP_KEY", "env-key")
		t.Setenv("PICBOT_ZHIQITE_APP_SECRET", "env-SECRET-zq")
		cfg, err := LoadConfig(write(t, "vendors:\n  zhiqite:\n    enabled: true\n    callbacks: false\n    poll_every: 2s\n"))
		if err != nil {
			t.Fatal(err)
		}
		z := cfg.Vendors.Zhiqite
		if z.AppKey != "env-key" || z.AppSecret != "env-SECRET-zq" || z.Callbacks == nil || *z.Callbacks || z.PollEvery != 2*time.Second {
			t.Fatalf("config %+v", z)
		}
		if !strings.Contains(strings.Join(cfg.secrets(), " "), "env-SECRET-zq") {
			t.Fatal("the secret is not listed for the redactor")
		}
	})
}
