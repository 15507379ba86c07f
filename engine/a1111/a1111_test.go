package a1111_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/png"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/picbot/picbot/engine"
	"github.com/picbot/picbot/engine/a1111"
	"github.com/picbot/picbot/engine/a1111/a1111test"
)

func newVendor(t *testing.T, cfg a1111.Config) *a1111.Vendor {
	t.Helper()
	v, err := a1111.New(cfg, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	return v
}

func drawJob(id string) *engine.Job {
	r := engine.Request{Kind: engine.KindDraw, Prompt: "a red fox", Negative: "blurry", Seed: 42, N: 2,
		Width: 512, Height: 384, Steps: 8, Guidance: 6.5}
	return &engine.Job{ID: id, Request: r}
}

// waitDone polls Query until the task ends.
func waitDone(t *testing.T, v *a1111.Vendor, j *engine.Job) *engine.Outcome {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		out, err := v.Query(context.Background(), j)
		if err != nil {
			t.Fatalf("query: %v", err)
		}
		if out.State == engine.TaskDone || out.State == engine.TaskFailed {
			return out
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("task did not end")
	return nil
}

func pngSize(t *testing.T, data []byte) image.Point {
	t.Helper()
	cfg, err := png.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	return image.Pt(cfg.Width, cfg.Height)
}

func submit(t *testing.T, v *a1111.Vendor, j *engine.Job, open func(context.Context, int) (io.ReadCloser, error)) {
	t.Helper()
	id, err := v.Submit(context.Background(), j, engine.Task{ID: j.ID + "-1", Open: open})
	if err != nil {
		t.Fatalf("submit: %v", err)
	}
	j.TaskID = id
}

// TestTxt2Img: Submit returns before the blocking call ends; the wake
// comes when it does; every /draw field is in the body as the web UI names it.
func TestTxt2Img(t *testing.T) {
	fake := a1111test.New(a1111test.Options{StepTime: 5 * time.Millisecond})
	defer fake.Close()
	v := newVendor(t, a1111.Config{BaseURL: fake.URL, VAE: "vae-ft-mse-840000-ema-pruned.safetensors", ClipSkip: 2, RestoreFaces: true})
	if err := v.Probe(context.Background()); err != nil {
		t.Fatal(err)
	}
	woke := make(chan string, 1)
	v.SetWake(func(id string) { woke <- id })
	j := drawJob("job1")
	j.Request.LoRA = "add_detail:0.6"
	j.Request.Model = a1111test.Models[1]
	j.Request.Sampler = "dpm++ 2m karras"
	if err := v.Check(&j.Request); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	submit(t, v, j, nil)
	if took := time.Since(start); took > 30*time.Millisecond {
		t.Fatalf("Submit took %s: it should not wait for the image", took)
	}
	select {
	case id := <-woke:
		if id != "job1" {
			t.Fatalf("woke %q", id)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no wake")
	}
	out := waitDone(t, v, j)
	if out.State != engine.TaskDone || len(out.Images) != 2 {
		t.Fatalf("outcome %+v", out)
	}
	if got, want := pngSize(t, out.Images[0].Data), image.Pt(512, 384); got != want {
		t.Fatalf("size %v, want %v", got, want)
	}
	if out.Images[1].Seed != 43 {
		t.Fatalf("second seed %d, want 43 (all_seeds)", out.Images[1].Seed)
	}
	body := fake.Jobs()[0].Body
	for k, want := range map[string]any{
		"prompt": "a red fox <lora:add_detail:0.6>", "negative_prompt": "blurry", "seed": 42.0, "batch_size": 2.0,
		"width": 512.0, "height": 384.0, "steps": 8.0, "cfg_scale": 6.5, "sampler_name": "DPM++ 2M", "scheduler": "karras",
		"force_task_id": "job1-1", "restore_faces": true,
	} {
		if body[k] != want {
			t.Errorf("%s = %v, want %v", k, body[k], want)
		}
	}
	over, _ := body["override_settings"].(map[string]any)
	if over["sd_model_checkpoint"] != a1111test.Models[1] || over["sd_vae"] == nil || over["CLIP_stop_at_last_layers"] != 2.0 {
		t.Errorf("override_settings %v", over)
	}
}

// TestProgressAndPreview: while the task runs, Query reads
// /internal/progress: the fraction grows, and each poll carries the
// latest live preview (the web UI sends one only when it changed).
func TestProgressAndPreview(t *testing.T) {
	fake := a1111test.New(a1111test.Options{StepTime: 40 * time.Millisecond})
	defer fake.Close()
	v := newVendor(t, a1111.Config{BaseURL: fake.URL})
	j := drawJob("job2")
	j.Request.N = 1
	submit(t, v, j, nil)
	previews := map[string]bool{}
	polls, with := 0, 0
	last := -1.0
	for {
		out, err := v.Query(context.Background(), j)
		if err != nil {
			t.Fatal(err)
		}
		if out.State == engine.TaskDone {
			break
		}
		if out.State == engine.TaskRunning {
			if out.Progress < last {
				t.Fatalf("progress went back: %v after %v", out.Progress, last)
			}
			last = out.Progress
		}
		if out.State == engine.TaskRunning {
			polls++
		}
		if out.Preview != nil {
			with++
			previews[string(out.Preview)] = true
			pngSize(t, out.Preview)
		}
		time.Sleep(15 * time.Millisecond)
	}
	// 8 steps, a preview every 2: up to 4 distinct ones, the latest at each later poll.
	if len(previews) < 2 || len(previews) > 4 || with <= len(previews) {
		t.Fatalf("%d distinct previews in %d of %d polls; want 2..4, repeated", len(previews), with, polls)
	}
	if n := fake.Calls("/internal/progress"); n < polls {
		t.Fatalf("%d progress reads for %d polls", n, polls)
	}
	if last <= 0 {
		t.Fatal("no progress seen")
	}
}

// TestRestartWaitsThenRunsAgain: a new adapter (the bot restarted) finds
// the task still running by its id and waits; once the web UI is done,
// the lost answer is made again, once, and counted.
func TestRestartWaitsThenRunsAgain(t *testing.T) {
	fake := a1111test.New(a1111test.Options{StepTime: 30 * time.Millisecond})
	defer fake.Close()
	first := newVendor(t, a1111.Config{BaseURL: fake.URL})
	j := drawJob("job3")
	submit(t, first, j, nil)
	for fake.Current() == "" {
		time.Sleep(5 * time.Millisecond)
	}
	second := newVendor(t, a1111.Config{BaseURL: fake.URL})
	out, err := second.Query(context.Background(), j)
	if err != nil {
		t.Fatal(err)
	}
	if out.State != engine.TaskRunning || second.Reruns() != 0 {
		t.Fatalf("while running: %+v, reruns %d", out, second.Reruns())
	}
	for fake.Current() != "" {
		time.Sleep(5 * time.Millisecond)
	}
	out = waitDone(t, second, j)
	if out.State != engine.TaskDone || len(out.Images) != 2 {
		t.Fatalf("after rerun: %+v", out)
	}
	if second.Reruns() != 1 || len(fake.Jobs()) != 2 {
		t.Fatalf("reruns %d, generations %d; want 1 and 2", second.Reruns(), len(fake.Jobs()))
	}
	if a, b := fake.Jobs()[0], fake.Jobs()[1]; b.Started.Before(a.Ended) || a.TaskID != b.TaskID {
		t.Fatalf("the rerun overlapped the first run or changed id: %+v %+v", a, b)
	}
}

// TestErrors: the web UI's refusals are EINVALID (not tried elsewhere);
// a CUDA error is a plain failure another backend may retry; bad
// credentials say which settings to check.
func TestErrors(t *testing.T) {
	fake := a1111test.New(a1111test.Options{Username: "u", Password: "p"})
	defer fake.Close()
	v := newVendor(t, a1111.Config{BaseURL: fake.URL, Username: "u", Password: "p"})

	j := drawJob("e1")
	j.Request.Sampler = "No Such Sampler" // not probed: the web UI checks it
	submit(t, v, j, nil)
	out := waitDone(t, v, j)
	if out.State != engine.TaskFailed || engine.ErrorCode(out.Err) != engine.EINVALID || !strings.Contains(out.Err.Error(), "Sampler not found") {
		t.Fatalf("unknown sampler: %+v", out)
	}

	up := &engine.Job{ID: "e2", Request: engine.Request{Kind: engine.KindUpscale, Scale: 9, Inputs: []engine.Input{{Blob: "x"}}}}
	submit(t, v, up, openPNG(t, 32, 32))
	out = waitDone(t, v, up)
	if out.State != engine.TaskFailed || engine.ErrorCode(out.Err) != engine.EINVALID || !strings.Contains(out.Err.Error(), "upscaling_resize") {
		t.Fatalf("422: %+v", out)
	}

	fake.FailNext("CUDA out of memory. Tried to allocate 2.00 GiB")
	j = drawJob("e3")
	submit(t, v, j, nil)
	out = waitDone(t, v, j)
	if out.State != engine.TaskFailed || engine.ErrorCode(out.Err) == engine.EINVALID || !strings.Contains(out.Err.Error(), "CUDA out of memory") {
		t.Fatalf("OOM: %+v", out)
	}

	bad := newVendor(t, a1111.Config{BaseURL: fake.URL, Username: "u", Password: "wrong"})
	j = drawJob("e4")
	submit(t, bad, j, nil)
	out = waitDone(t, bad, j)
	if out.State != engine.TaskFailed || !strings.Contains(out.Err.Error(), "401") || !strings.Contains(out.Err.Error(), "username/password") {
		t.Fatalf("bad password: %+v", out)
	}
}

func TestBearerToken(t *testing.T) {
	fake := a1111test.New(a1111test.Options{Token: "tok-123"})
	defer fake.Close()
	for _, tc := range []struct {
		token string
		ok    bool
	}{{"tok-123", true}, {"nope", false}} {
		v := newVendor(t, a1111.Config{BaseURL: fake.URL, Token: tc.token})
		j := drawJob("b-" + tc.token)
		submit(t, v, j, nil)
		if out := waitDone(t, v, j); (out.State == engine.TaskDone) != tc.ok {
			t.Errorf("token %q: %+v", tc.token, out)
		}
	}
}

func openPNG(t *testing.T, w, h int) func(context.Context, int) (io.ReadCloser, error) {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, image.NewGray(image.Rect(0, 0, w, h))); err != nil {
		t.Fatal(err)
	}
	return func(context.Context, int) (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(b.Bytes())), nil
	}
}

// TestImg2ImgUpscaleSwapface: a reference image makes img2img with the
// configured denoising; /upscale is extra-single-image; /swapface is
// offered only where ReActor is installed.
func TestImg2ImgUpscaleSwapface(t *testing.T) {
	fake := a1111test.New(a1111test.Options{})
	defer fake.Close()
	v := newVendor(t, a1111.Config{BaseURL: fake.URL, Denoising: 0.5})
	j := drawJob("i1")
	j.Request.Inputs = []engine.Input{{Blob: "ref"}}
	submit(t, v, j, openPNG(t, 64, 64))
	if out := waitDone(t, v, j); out.State != engine.TaskDone {
		t.Fatalf("img2img: %+v", out)
	}
	got := fake.Jobs()[0]
	if got.Path != "/sdapi/v1/img2img" || got.Body["denoising_strength"] != 0.5 || len(got.Body["init_images"].([]any)) != 1 {
		t.Fatalf("img2img body at %s: denoising %v", got.Path, got.Body["denoising_strength"])
	}

	up := &engine.Job{ID: "u1", Request: engine.Request{Kind: engine.KindUpscale, Scale: 3, Inputs: []engine.Input{{Blob: "x"}}}}
	submit(t, v, up, openPNG(t, 40, 30))
	out := waitDone(t, v, up)
	if out.State != engine.TaskDone || pngSize(t, out.Images[0].Data) != image.Pt(120, 90) {
		t.Fatalf("upscale: %+v", out)
	}
	if b := fake.Jobs()[1].Body; b["upscaler_1"] != a1111.DefaultUpscaler || b["upscaling_resize"] != 3.0 {
		t.Fatalf("upscale body %v", b)
	}

	sw := &engine.Request{Kind: engine.KindSwapface, Inputs: []engine.Input{{Blob: "a"}, {Blob: "b"}}}
	if err := v.Probe(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := v.Check(sw); engine.ErrorCode(err) != engine.EINVALID {
		t.Fatalf("swapface without ReActor: %v", err)
	}
	withReActor := a1111test.New(a1111test.Options{Extensions: []string{"sd-webui-reactor"}})
	defer withReActor.Close()
	rv := newVendor(t, a1111.Config{BaseURL: withReActor.URL})
	if err := rv.Probe(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := rv.Check(sw); err != nil {
		t.Fatalf("swapface with ReActor: %v", err)
	}
	sj := &engine.Job{ID: "s1", Request: *sw}
	submit(t, rv, sj, openPNG(t, 50, 70))
	if out := waitDone(t, rv, sj); out.State != engine.TaskDone || pngSize(t, out.Images[0].Data) != image.Pt(50, 70) {
		t.Fatalf("swapface: %+v", out)
	}
}

// TestCancelInterruptsOnlyOurs: CancelTask interrupts the web UI while
// our task runs; a task of ours still waiting for the lock is interrupted
// once it starts, and the other task running meanwhile is left alone.
func TestCancelInterruptsOnlyOurs(t *testing.T) {
	fake := a1111test.New(a1111test.Options{StepTime: 30 * time.Millisecond})
	defer fake.Close()
	v := newVendor(t, a1111.Config{BaseURL: fake.URL})
	other := drawJob("other")
	other.Request.N = 1
	submit(t, v, other, nil)
	for fake.Current() == "" {
		time.Sleep(2 * time.Millisecond)
	}
	ours := drawJob("ours")
	ours.Request.N = 1
	submit(t, v, ours, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	var cerr error
	go func() { defer wg.Done(); cerr = v.CancelTask(ctx, ours) }()
	if out := waitDone(t, v, other); out.State != engine.TaskDone || len(out.Images) != 1 {
		t.Fatalf("the other task was hurt: %+v", out)
	}
	wg.Wait()
	if cerr != nil && !errors.Is(cerr, context.Canceled) {
		t.Fatal(cerr)
	}
	waitDone(t, v, ours)
	jobs := fake.Jobs()
	if len(jobs) != 2 || jobs[1].Ended.Sub(jobs[1].Started) > 8*30*time.Millisecond*3/4 {
		t.Fatalf("our task ran its whole course: %v", jobs[1].Ended.Sub(jobs[1].Started))
	}
}

// TestSeveralBackends: jobs go to the least busy web UI; one that refuses
// connections is skipped after three failures.
func TestSeveralBackends(t *testing.T) {
	a := a1111test.New(a1111test.Options{StepTime: 20 * time.Millisecond})
	defer a.Close()
	b := a1111test.New(a1111test.Options{StepTime: 20 * time.Millisecond})
	defer b.Close()
	v := newVendor(t, a1111.Config{BaseURLs: []string{a.URL, b.URL}})
	j1, j2 := drawJob("m1"), drawJob("m2")
	submit(t, v, j1, nil)
	submit(t, v, j2, nil)
	waitDone(t, v, j1)
	waitDone(t, v, j2)
	if len(a.Jobs()) != 1 || len(b.Jobs()) != 1 {
		t.Fatalf("jobs %d and %d, want one each", len(a.Jobs()), len(b.Jobs()))
	}

	// A web UI that refuses connections fails its first health check (at
	// start) and gets no job; one already sent there waits for it (TestWebUIDown).
	dead := a1111test.New(a1111test.Options{})
	dead.Close()
	v = newVendor(t, a1111.Config{BaseURLs: []string{dead.URL, b.URL}, HealthEvery: time.Hour})
	time.Sleep(300 * time.Millisecond) // the first check
	before := len(b.Jobs())
	for i := range 3 {
		j := drawJob("e" + string(rune('a'+i)))
		submit(t, v, j, nil)
		if out := waitDone(t, v, j); out.State != engine.TaskDone {
			t.Fatalf("with the dead backend skipped: %+v", out)
		}
	}
	if got := len(b.Jobs()) - before; got != 3 {
		t.Fatalf("%d of 3 jobs reached the live backend", got)
	}
}

func TestCatalog(t *testing.T) {
	fake := a1111test.New(a1111test.Options{})
	defer fake.Close()
	v := newVendor(t, a1111.Config{BaseURL: fake.URL})
	entries, err := v.Catalog(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string][]string{}
	for _, e := range entries {
		kinds[e.Kind] = append(kinds[e.Kind], e.ID)
	}
	if len(kinds[engine.EntryModel]) != len(a1111test.Models) || len(kinds[engine.EntryLoRA]) != len(a1111test.LoRAs) ||
		len(kinds[engine.EntryVAE]) != len(a1111test.VAEs) || len(kinds[engine.EntryEmbedding]) != 1 {
		t.Fatalf("catalogue %v", kinds)
	}
	if c := v.Choices(engine.KindDraw); len(c.Samplers) != len(a1111test.Samplers) {
		t.Fatalf("samplers %v", c.Samplers)
	}
}

// TestHealthCheck: of several web UIs, one whose /internal/ping fails is
// skipped before any job fails there, and used again once it answers.
func TestHealthCheck(t *testing.T) {
	a := a1111test.New(a1111test.Options{})
	defer a.Close()
	b := a1111test.New(a1111test.Options{})
	defer b.Close()
	var down atomic.Bool
	down.Store(true)
	target, _ := url.Parse(b.URL)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			http.Error(w, "bad gateway", http.StatusBadGateway)
			return
		}
		httputil.NewSingleHostReverseProxy(target).ServeHTTP(w, r)
	}))
	defer proxy.Close()
	v, err := a1111.New(a1111.Config{BaseURLs: []string{proxy.URL, a.URL}, HealthEvery: 20 * time.Millisecond}, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	time.Sleep(200 * time.Millisecond) // a few checks
	for i := range 4 {
		j := drawJob(fmt.Sprint("h", i))
		submit(t, v, j, nil)
		if out := waitDone(t, v, j); out.State != engine.TaskDone {
			t.Fatalf("job %d failed: %+v", i, out)
		}
	}
	if len(b.Jobs()) != 0 || len(a.Jobs()) != 4 {
		t.Fatalf("jobs: %d behind the failing proxy, %d on the other; want 0 and 4", len(b.Jobs()), len(a.Jobs()))
	}
	down.Store(false)
	time.Sleep(200 * time.Millisecond)
	var js []*engine.Job
	for i := range 2 {
		j := drawJob(fmt.Sprint("k", i))
		submit(t, v, j, nil)
		js = append(js, j)
	}
	for _, j := range js {
		waitDone(t, v, j)
	}
	if len(b.Jobs()) != 1 {
		t.Fatalf("%d jobs went to the web UI back up, want 1 of 2 (the least busy)", len(b.Jobs()))
	}
}

// TestControlNet: with controlnet enabled and the extension installed, a
// reference image guides txt2img through alwayson_scripts.controlnet;
// without the extension, it is img2img as before.
func TestControlNet(t *testing.T) {
	cn := a1111.ControlNet{Enabled: true, Model: "control_v11p_sd15_canny [d14c016b]"}
	with := a1111test.New(a1111test.Options{Extensions: []string{"sd-webui-controlnet"}})
	defer with.Close()
	v := newVendor(t, a1111.Config{BaseURL: with.URL, ControlNet: cn})
	j := drawJob("cn1")
	j.Request.Inputs = []engine.Input{{Blob: "ref"}}
	submit(t, v, j, openPNG(t, 64, 64))
	if out := waitDone(t, v, j); out.State != engine.TaskDone {
		t.Fatalf("controlnet: %+v", out)
	}
	got := with.Jobs()[0]
	scripts, _ := got.Body["alwayson_scripts"].(map[string]any)
	unit, _ := scripts["controlnet"].(map[string]any)["args"].([]any)
	if got.Path != "/sdapi/v1/txt2img" || len(unit) != 1 || unit[0].(map[string]any)["model"] != cn.Model || unit[0].(map[string]any)["module"] != "canny" {
		t.Fatalf("%s with alwayson_scripts %v", got.Path, scripts)
	}
	without := a1111test.New(a1111test.Options{})
	defer without.Close()
	v = newVendor(t, a1111.Config{BaseURL: without.URL, ControlNet: cn})
	j = drawJob("cn2")
	j.Request.Inputs = []engine.Input{{Blob: "ref"}}
	submit(t, v, j, openPNG(t, 64, 64))
	if out := waitDone(t, v, j); out.State != engine.TaskDone || without.Jobs()[0].Path != "/sdapi/v1/img2img" {
		t.Fatalf("without the extension: %+v at %s", out, without.Jobs()[0].Path)
	}
	if _, err := a1111.New(a1111.Config{BaseURL: without.URL, ControlNet: a1111.ControlNet{Enabled: true}}, nil, nil, nil); err == nil || !strings.Contains(err.Error(), "controlnet.model") {
		t.Fatalf("controlnet without a model: %v", err)
	}
}

// TestRestartAfterFailedTask: a task that failed (CUDA out of memory) stays
// "active" in /internal/progress, since the web UI calls finish_task only
// on success; a restarted bot sees the web UI idle in /sdapi/v1/progress
// and makes the task again rather than wait for it.
func TestRestartAfterFailedTask(t *testing.T) {
	fake := a1111test.New(a1111test.Options{})
	defer fake.Close()
	first := newVendor(t, a1111.Config{BaseURL: fake.URL})
	fake.FailNext("CUDA out of memory")
	j := drawJob("f1")
	submit(t, first, j, nil)
	if out := waitDone(t, first, j); out.State != engine.TaskFailed {
		t.Fatalf("first run %+v", out)
	}
	if fake.Current() != "f1-1" {
		t.Fatalf("current %q: the fake should keep the failed task current, as the web UI does", fake.Current())
	}
	second := newVendor(t, a1111.Config{BaseURL: fake.URL})
	if out := waitDone(t, second, j); out.State != engine.TaskDone || second.Reruns() != 1 {
		t.Fatalf("after restart: %+v, reruns %d", out, second.Reruns())
	}
}

// TestTypicalIsGPUTime: the time a job takes, for ETAs, is the GPU's, not
// the call's, which includes its wait for the web UI's queue lock.
func TestTypicalIsGPUTime(t *testing.T) {
	fake := a1111test.New(a1111test.Options{StepTime: 20 * time.Millisecond})
	defer fake.Close()
	v := newVendor(t, a1111.Config{BaseURL: fake.URL, Duration: time.Minute})
	var js []*engine.Job
	for i := range 3 {
		j := drawJob(fmt.Sprint("t", i))
		j.Request.N = 1
		submit(t, v, j, nil)
		js = append(js, j)
	}
	for _, j := range js {
		waitDone(t, v, j)
	}
	var gpu time.Duration
	for _, j := range fake.Jobs() {
		gpu = max(gpu, j.Ended.Sub(j.Started))
	}
	if got := v.Typical(nil); got > gpu*3/2 || got < gpu/2 {
		t.Fatalf("typical %s; one job takes the GPU up to %s", got, gpu)
	}
}

// TestWebUIDown: a job sent while the web UI is down (restarting) waits
// for it: Query says it could not ask, the job does not fail, and it is
// sent once the web UI answers, not counted as a rerun.
func TestWebUIDown(t *testing.T) {
	fake := a1111test.New(a1111test.Options{})
	defer fake.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	v := newVendor(t, a1111.Config{BaseURL: "http://" + addr})
	j := drawJob("down1")
	submit(t, v, j, nil)
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, err := v.Query(context.Background(), j)
		if err != nil {
			break // could not ask: the engine polls again later
		}
		if out.State == engine.TaskFailed || out.State == engine.TaskDone {
			t.Fatalf("with the web UI down: %+v", out)
		}
		if time.Now().After(deadline) {
			t.Fatal("no error while the web UI is down")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := v.Query(context.Background(), j); err == nil {
		t.Fatal("no error while the web UI is still down")
	}
	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s again: %v", addr, err)
	}
	srv := &http.Server{Handler: fake.Config.Handler}
	go srv.Serve(ln)
	defer srv.Close()
	if out := waitDone(t, v, j); out.State != engine.TaskDone || v.Reruns() != 0 || len(fake.Jobs()) != 1 {
		t.Fatalf("after the web UI came back: %+v, reruns %d, generations %d", out, v.Reruns(), len(fake.Jobs()))
	}
}
