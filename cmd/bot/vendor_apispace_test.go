package main

import (
	"fmt"
	"image"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/picbot/picbot/engine"
	"github.com/picbot/picbot/engine/apispace/apispacetest"
)

const apispaceToken = "e2e-SECRET-apispace-71c3"

var (
	apispaceQueuedRe = regexp.MustCompile(`^Job (\w+) queued: (.*)$`)
	apispaceBilledRe = regexp.MustCompile(`billed vendor calls: (\d+)`)
	apispaceFailedRe = regexp.MustCompile(`(?m)^Job (\w+) failed: (.*)$`)
)

// apispaceDone is one "Job X done:" block of the console.
type apispaceDone struct {
	path   string
	billed int
}

// apispaceParseDone reads the console's "Job X done:" blocks: the image path and the billed calls.
func apispaceParseDone(out string) map[string]apispaceDone {
	done := map[string]apispaceDone{}
	var id string
	for _, line := range strings.Split(out, "\n") {
		if m := doneRe.FindStringSubmatch(line); m != nil {
			id = m[1]
			done[id] = apispaceDone{billed: -1}
			continue
		}
		if id == "" || !strings.HasPrefix(line, "  ") {
			id = ""
			continue
		}
		d := done[id]
		if p := strings.TrimSpace(line); d.path == "" && strings.HasSuffix(p, ".png") {
			d.path = p
		}
		if m := apispaceBilledRe.FindStringSubmatch(line); m != nil {
			d.billed, _ = strconv.Atoi(m[1])
		}
		done[id] = d
	}
	return done
}

// TestAPISpaceEndToEnd runs the real binary against the fake vendor, in
// callback mode and in polling mode. Durations are the seed's divided by
// ten on both sides: a 512×512 image takes 0.8 s at the fake (8 s at the
// vendor) after 50 ms in the queue, super-resolution 0.6 s (6 s), and the
// bot waits as long before its first poll, then 0.3 s (3 s), up to 2 s (20 s).
func TestAPISpaceEndToEnd(t *testing.T) {
	for _, mode := range []struct {
		name      string
		callbacks bool
		maxBilled int
	}{
		{"Callback", true, 2},
		{"Polling", false, 3},
	} {
		t.Run(mode.name, func(t *testing.T) {
			fake := apispacetest.New(apispacetest.Options{Token: apispaceToken, Queue: 50 * time.Millisecond,
				Duration: 800 * time.Millisecond, SuperResDuration: 600 * time.Millisecond})
			defer fake.Close()
			dir := t.TempDir()
			input := filepath.Join(dir, "portrait.png")
			writePNG(t, input, 96, 64)
			addr := freeAddr(t)
			cfg := filepath.Join(dir, "picbot.yaml")
			os.WriteFile(cfg, []byte(fmt.Sprintf(`data_dir: %[1]s/data
log:
  level: debug
console:
  out_dir: %[1]s/out
  user: tester
http:
  listen: %[2]s
  public_url: http://%[2]s
engine:
  routes:
    draw: [apispace]
    anime: [apispace]
    upscale: [apispace]
    swapface: [local]
quota:
  default: {daily: 20, concurrent: 5, every: 1ms, burst: 100}
vendors:
  apispace:
    enabled: true
    base_url: %[3]s
    token: %[4]s
    callbacks: %[5]v
    draw_duration: 800ms
    anime_duration: 800ms
    superres_duration: 600ms
    poll_every: 300ms
    poll_max: 2s
`, dir, addr, fake.BaseURL(), apispaceToken, mode.callbacks)), 0o600)

			b := startBot(t, dir, "-config", cfg)
			fmt.Fprintf(b.stdin, "/draw a red fox\n/anime %[1]s\n/upscale %[1]s --scale 4\n", input)
			out := b.wait(t, time.Minute)
			_, logs := b.output()
			if strings.Contains(out+logs, apispaceToken) {
				t.Fatalf("the token is in the bot's output or log")
			}
			kinds := map[string]string{}
			for _, line := range strings.Split(out, "\n") {
				if m := apispaceQueuedRe.FindStringSubmatch(line); m != nil {
					kinds[m[1]] = strings.Fields(m[2])[0]
				}
			}
			done := apispaceParseDone(out)
			if len(kinds) != 3 || len(done) != 3 {
				t.Fatalf("queued %v, done %v:\n%s\nlog:\n%s", kinds, done, out, logs)
			}
			want := map[string]image.Point{`"a`: image.Pt(512, 512), "anime,": image.Pt(96, 64), "upscale": image.Pt(384, 256)}
			sum := 0
			for id, d := range done {
				size, ok := want[kinds[id]]
				if !ok {
					t.Fatalf("job %s: unexpected kind %q", id, kinds[id])
				}
				if got := pngSize(t, d.path); got != size {
					t.Errorf("job %s (%s): image %v, want %v", id, kinds[id], got, size)
				}
				if d.billed < 1 || d.billed > mode.maxBilled {
					t.Errorf("job %s (%s): billed vendor calls %d, want 1..%d", id, kinds[id], d.billed, mode.maxBilled)
				}
				sum += d.billed
			}
			if got := fake.Billed(); got != sum {
				t.Errorf("the fake billed %d calls, the console reports %d", got, sum)
			}
			tasks := fake.Tasks()
			if len(tasks) != 3 {
				t.Fatalf("the fake has %d tasks", len(tasks))
			}
			for _, task := range tasks {
				if !mode.callbacks {
					if task.NotifyURL != "" {
						t.Errorf("polling mode asked for a callback: %q", task.NotifyURL)
					}
					continue
				}
				// The job id is in the callback URL: match the task to its console line.
				var job string
				for id := range done {
					if strings.Contains(task.NotifyURL, "/callback/apispace/"+id+"/") {
						job = id
					}
				}
				if job == "" || !task.CallbackDelivered {
					t.Errorf("task %s: notify_url %q, callback delivered %v", task.UID, task.NotifyURL, task.CallbackDelivered)
					continue
				}
				if task.Billed != done[job].billed {
					t.Errorf("job %s: the fake billed %d, the console says %d", job, task.Billed, done[job].billed)
				}
			}

			// An unsafe picture fails, with a clear message, and is refunded;
			// a scale APISpace cannot do is refused before any job exists.
			out = runBot(t, dir, fmt.Sprintf("/draw an unsafe picture\n/upscale %s\n", input), "-config", cfg)
			failed := apispaceFailedRe.FindStringSubmatch(out)
			if failed == nil || !strings.Contains(failed[2], "content check") || !strings.Contains(failed[2], "refunded") {
				t.Fatalf("no clear failure for the unsafe picture:\n%s", out)
			}
			if !strings.Contains(out, "APISpace only enlarges 4× each side; use --scale 4.") || strings.Count(out, "queued") != 1 {
				t.Fatalf("--scale 2 was not refused plainly:\n%s", out)
			}
			if got := fake.Tasks()[3]; got.Fault != apispacetest.FaultUnsafe {
				t.Fatalf("the fourth task is %+v", got)
			}
			if out := runBot(t, dir, "/quota\n", "-config", cfg); !strings.Contains(out, "Today: 3 of 20 images used") {
				t.Fatalf("the unsafe picture was not refunded:\n%s", out)
			}
			if v := fake.Violations(); len(v) > 0 {
				t.Fatalf("the bot sent what the documents do not allow:\n%s", strings.Join(v, "\n"))
			}
		})
	}
}

// TestAPISpaceConfig: the keys under vendors.apispace, the token from the
// environment, and errors that name their key.
func TestAPISpaceConfig(t *testing.T) {
	load := func(t *testing.T, yaml string) (Config, error) {
		t.Helper()
		path := filepath.Join(t.TempDir(), "c.yaml")
		os.WriteFile(path, []byte(yaml), 0o600)
		return LoadConfig(path)
	}
	const enabled = "engine:\n  routes:\n    draw: [apispace]\nvendors:\n  apispace:\n    enabled: true\n"
	t.Run("TokenRequired", func(t *testing.T) {
		t.Setenv("PICBOT_APISPACE_TOKEN", "")
		_, err := load(t, enabled)
		if err == nil || !strings.Contains(err.Error(), "vendors.apispace.token") || !strings.Contains(err.Error(), "PICBOT_APISPACE_TOKEN") {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("TokenFromEnv", func(t *testing.T) {
		t.Setenv("PICBOT_APISPACE_TOKEN", "env-SECRET-1")
		cfg, err := load(t, enabled)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Vendors.APISpace.Token != "env-SECRET-1" || !strings.Contains(strings.Join(cfg.secrets(), " "), "env-SECRET-1") {
			t.Fatalf("token %q, secrets %d", cfg.Vendors.APISpace.Token, len(cfg.secrets()))
		}
	})
	t.Run("Keys", func(t *testing.T) {
		t.Setenv("PICBOT_APISPACE_TOKEN", "")
		cfg, err := load(t, enabled+`    base_url: http://127.0.0.1:9/aigc
    token: file-token
    callbacks: false
    paths: {txt2img: /t2i, img2img: /i2i, anime: /acg, superres: /sr, query: /q}
    draw_duration: 4s
`)
		if err != nil {
			t.Fatal(err)
		}
		c := cfg.Vendors.APISpace
		if c.BaseURL != "http://127.0.0.1:9/aigc" || c.Token != "file-token" || c.Callbacks == nil || *c.Callbacks ||
			c.Paths.Anime != "/acg" || c.Paths.Query != "/q" || c.DrawDuration != 4*time.Second {
			t.Fatalf("decoded %+v", c)
		}
		a := &app{cfg: cfg, log: newLogger(cfg.Log, io.Discard)}
		v, err := a.newAPISpace(c)
		if err != nil || v == nil || v.Name() != "apispace" {
			t.Fatalf("vendor %v err %v", v, err)
		}
		if cv := v.(engine.CallbackVendor); cv.WantsCallback() {
			t.Fatal("callbacks: false still asks for callbacks")
		}
		// Without http.public_url, jobs with an input image go elsewhere.
		up := engine.Request{Kind: engine.KindUpscale, Scale: 4, Inputs: []engine.Input{{Blob: "b", Width: 64, Height: 64}}}
		if err := v.Check(&up); engine.ErrorCode(err) != engine.EINVALID {
			t.Fatalf("upscale without a public URL: %v", err)
		}
	})
	t.Run("ErrNamesKey", func(t *testing.T) {
		t.Setenv("PICBOT_APISPACE_TOKEN", "")
		for extra, key := range map[string]string{
			"    token: x\n    base_url: ftp://x\n":    "vendors.apispace.base_url",
			"    token: x\n    paths: {anime: acg}\n":  "vendors.apispace.paths.anime",
			"    token: x\n    styles: {Cute: Cute}\n": "vendors.apispace.styles.Cute",
			"    token: x\n    poll_every: -1s\n":      "vendors.apispace.poll_every",
			"    token: x\n    no_such_key: 1\n":       "no_such_key",
		} {
			if _, err := load(t, enabled+extra); err == nil || !strings.Contains(err.Error(), key) {
				t.Errorf("%q: err %v, want it to name %s", extra, err, key)
			}
		}
	})
	t.Run("DisabledIsNotChecked", func(t *testing.T) {
		if _, err := load(t, "vendors:\n  apispace:\n    enabled: false\n    base_url: ftp://x\n"); err != nil {
			t.Fatal(err)
		}
	})
}
