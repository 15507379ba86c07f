package comfyui_test

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/picbot/picbot/engine"
	"github.com/picbot/picbot/engine/comfyui"
	"github.com/picbot/picbot/engine/comfyui/comfyuitest"
)

func newVendor(t *testing.T, cfg comfyui.Config) *comfyui.Vendor {
	t.Helper()
	v, err := comfyui.New(cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	return v
}

func drawJob(id string) *engine.Job {
	return &engine.Job{ID: id, Request: engine.Request{Kind: engine.KindDraw, Prompt: "a red fox", Negative: "blurry", Seed: 42, N: 2,
		Width: 320, Height: 256, Steps: 8, Guidance: 6.5, Sampler: "dpmpp_2m"}}
}

func submit(t *testing.T, v *comfyui.Vendor, j *engine.Job, open func(context.Context, int) (io.ReadCloser, error)) {
	t.Helper()
	id, err := v.Submit(context.Background(), j, engine.Task{ID: j.ID + "-1", Open: open})
	if err != nil {
		t.Fatalf("submit: %v", err)
	}
	j.TaskID = id
}

func waitDone(t *testing.T, v *comfyui.Vendor, j *engine.Job) *engine.Outcome {
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
	t.Fatal("prompt did not end")
	return nil
}

func size(t *testing.T, data []byte) image.Point {
	t.Helper()
	c, err := png.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	return image.Pt(c.Width, c.Height)
}

func node(t *testing.T, prompt map[string]any, class string) map[string]any {
	t.Helper()
	for _, n := range prompt {
		m := n.(map[string]any)
		if m["class_type"] == class {
			return m["inputs"].(map[string]any)
		}
	}
	t.Fatalf("no %s node", class)
	return nil
}

// TestDraw: the built-in SD 1.5 workflow, patched, queued under the task
// id and the client id; /ws wakes the engine at the end; the images come
// from /history and /view.
func TestDraw(t *testing.T) {
	fake := comfyuitest.New(comfyuitest.Options{})
	defer fake.Close()
	v := newVendor(t, comfyui.Config{BaseURL: fake.URL})
	woke := make(chan string, 4)
	v.SetWake(func(id string) { woke <- id })
	j := drawJob("job1")
	j.Request.LoRA = "add_detail.safetensors:0.7"
	if err := v.Check(&j.Request); err != nil {
		t.Fatal(err)
	}
	submit(t, v, j, nil)
	if j.TaskID != "job1-1" {
		t.Fatalf("task id %q", j.TaskID)
	}
	select {
	case id := <-woke:
		if id != "job1" {
			t.Fatalf("woke %q", id)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no wake from /ws")
	}
	out := waitDone(t, v, j)
	if out.State != engine.TaskDone || len(out.Images) != 2 || size(t, out.Images[0].Data) != image.Pt(320, 256) {
		t.Fatalf("outcome %+v", out)
	}
	run := fake.Runs()[0]
	if run.PromptID != "job1-1" || run.ClientID != "picbot" {
		t.Fatalf("run %s by %s", run.PromptID, run.ClientID)
	}
	ks := node(t, run.Prompt, "KSampler")
	if ks["seed"] != 42.0 || ks["steps"] != 8.0 || ks["cfg"] != 6.5 || ks["sampler_name"] != "dpmpp_2m" {
		t.Fatalf("KSampler %v", ks)
	}
	if lat := node(t, run.Prompt, "EmptyLatentImage"); lat["width"] != 320.0 || lat["batch_size"] != 2.0 {
		t.Fatalf("latent %v", lat)
	}
	lora := node(t, run.Prompt, "LoraLoader")
	if lora["lora_name"] != "add_detail.safetensors" || lora["strength_model"] != 0.7 {
		t.Fatalf("LoraLoader %v", lora)
	}
	if model := ks["model"].([]any); model[0] == "4" {
		t.Fatal("the sampler still takes the checkpoint's model, not the LoRA's")
	}
}

// TestProgressPreview: while the prompt runs, Query gives /ws's progress
// and the latest binary preview frame.
func TestProgressPreview(t *testing.T) {
	fake := comfyuitest.New(comfyuitest.Options{StepTime: 40 * time.Millisecond})
	defer fake.Close()
	v := newVendor(t, comfyui.Config{BaseURL: fake.URL})
	j := drawJob("job2")
	j.Request.Steps = 12
	submit(t, v, j, nil)
	previews := map[string]bool{}
	with := 0
	var best float64
	for {
		out, err := v.Query(context.Background(), j)
		if err != nil {
			t.Fatal(err)
		}
		if out.State == engine.TaskDone {
			break
		}
		best = max(best, out.Progress)
		if out.Preview != nil {
			with++
			previews[string(out.Preview)] = true
			size(t, out.Preview)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if best <= 0 || len(previews) < 2 || len(previews) > 4 || with <= len(previews) {
		t.Fatalf("progress %v, %d distinct previews in %d polls (want 2..4, the latest repeated)", best, len(previews), with)
	}
}

// TestErrors: a workflow ComfyUI refuses is EINVALID naming the node; a
// CUDA error while it runs is a plain failure, with the node's message.
func TestErrors(t *testing.T) {
	fake := comfyuitest.New(comfyuitest.Options{})
	defer fake.Close()
	v := newVendor(t, comfyui.Config{BaseURL: fake.URL})
	j := drawJob("bad")
	j.Request.Model = "nope.safetensors"
	_, err := v.Submit(context.Background(), j, engine.Task{ID: "bad-1"})
	if engine.ErrorCode(err) != engine.EINVALID || !strings.Contains(err.Error(), "node 4 (CheckpointLoaderSimple)") || !strings.Contains(err.Error(), "not in") {
		t.Fatalf("unknown checkpoint: %v", err)
	}
	fake.FailNext("CUDA out of memory. Tried to allocate 1.50 GiB")
	j = drawJob("oom")
	submit(t, v, j, nil)
	out := waitDone(t, v, j)
	if out.State != engine.TaskFailed || engine.ErrorCode(out.Err) == engine.EINVALID || !strings.Contains(out.Err.Error(), "CUDA out of memory") {
		t.Fatalf("OOM: %+v", out)
	}
}

// TestFoundAfterRestart: a new adapter (the bot restarted) finds the
// prompt by its id in /queue or /history, and never queues it again.
func TestFoundAfterRestart(t *testing.T) {
	fake := comfyuitest.New(comfyuitest.Options{StepTime: 20 * time.Millisecond})
	defer fake.Close()
	first := newVendor(t, comfyui.Config{BaseURL: fake.URL})
	j := drawJob("job3")
	submit(t, first, j, nil)
	first.Close()
	second := newVendor(t, comfyui.Config{BaseURL: fake.URL})
	id, found, err := second.FindTask(context.Background(), j, engine.Task{ID: "job3-1"})
	if err != nil || !found || id != "job3-1" {
		t.Fatalf("FindTask %q %v %v", id, found, err)
	}
	if out := waitDone(t, second, j); out.State != engine.TaskDone {
		t.Fatalf("after restart: %+v", out)
	}
	if _, found, _ := second.FindTask(context.Background(), j, engine.Task{ID: "job3-1"}); !found {
		t.Fatal("a finished prompt is not found in /history")
	}
	if _, found, _ := second.FindTask(context.Background(), j, engine.Task{ID: "job3-2"}); found {
		t.Fatal("found a prompt never queued")
	}
	if fake.Posts() != 1 {
		t.Fatalf("%d prompts queued, want 1", fake.Posts())
	}
}

// TestCancel: a pending prompt leaves the queue; a running one is
// interrupted, and only it.
func TestCancel(t *testing.T) {
	fake := comfyuitest.New(comfyuitest.Options{StepTime: 30 * time.Millisecond})
	defer fake.Close()
	v := newVendor(t, comfyui.Config{BaseURL: fake.URL})
	a, b := drawJob("ca"), drawJob("cb")
	a.Request.Steps, b.Request.Steps = 20, 20
	submit(t, v, a, nil)
	submit(t, v, b, nil)
	for fake.Running() != "ca-1" {
		time.Sleep(2 * time.Millisecond)
	}
	if err := v.CancelTask(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	if fake.Running() != "ca-1" {
		t.Fatal("cancelling a pending prompt interrupted the running one")
	}
	if err := v.CancelTask(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	out := waitDone(t, v, a)
	if out.State != engine.TaskFailed {
		t.Fatalf("interrupted prompt: %+v", out)
	}
	time.Sleep(50 * time.Millisecond)
	if n := len(fake.Runs()); n != 1 {
		t.Fatalf("%d prompts ran, want 1 (the pending one was deleted)", n)
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

// TestUpscaleAndImg2Img: inputs go up by /upload/image and are named in
// the LoadImage node.
func TestUpscaleAndImg2Img(t *testing.T) {
	fake := comfyuitest.New(comfyuitest.Options{})
	defer fake.Close()
	v := newVendor(t, comfyui.Config{BaseURL: fake.URL})
	up := &engine.Job{ID: "up", Request: engine.Request{Kind: engine.KindUpscale, Scale: 2, Inputs: []engine.Input{{Blob: "x"}}}}
	submit(t, v, up, openPNG(t, 40, 30))
	if out := waitDone(t, v, up); out.State != engine.TaskDone || size(t, out.Images[0].Data) != image.Pt(80, 60) {
		t.Fatalf("upscale: %+v", out)
	}
	j := drawJob("i2i")
	j.Request.Inputs = []engine.Input{{Blob: "y"}}
	submit(t, v, j, openPNG(t, 64, 64))
	if out := waitDone(t, v, j); out.State != engine.TaskDone {
		t.Fatalf("img2img: %+v", out)
	}
	if in := node(t, fake.Runs()[1].Prompt, "LoadImage"); in["image"] != "picbot-i2i-1-0.png" {
		t.Fatalf("LoadImage %v", in)
	}
	if err := v.Check(&engine.Request{Kind: engine.KindSwapface}); engine.ErrorCode(err) != engine.EINVALID {
		t.Fatalf("swapface without a workflow: %v", err)
	}
}

// TestWorkflowChecks: a workflow file's patch points are checked at
// start, and the error names the file and the node.
func TestWorkflowChecks(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name, body, want string
	}{
		{"ui.json", `{"nodes": [], "links": []}`, "Save (API Format)"},
		{"nosave.json", `{"1": {"class_type": "CLIPTextEncode", "inputs": {"text": ""}, "_meta": {"title": "prompt"}}}`, "no SaveImage"},
		{"noprompt.json", `{"9": {"class_type": "SaveImage", "inputs": {"images": ["8", 0]}}}`, `no node titled "prompt"`},
		{"badinput.json", `{"6": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["4", 1]}, "_meta": {"title": "prompt"}},
			"9": {"class_type": "SaveImage", "inputs": {"images": ["8", 0]}}}`, `node 6 ("prompt", CLIPTextEncode) has no input "text"`},
	} {
		p := write(tc.name, tc.body)
		_, err := comfyui.New(comfyui.Config{BaseURL: "http://127.0.0.1:1", Workflows: map[string]string{"draw": p}}, nil, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.name) {
			t.Errorf("%s: %v; want %q and the file name", tc.name, err, tc.want)
		}
	}
	if _, err := comfyui.New(comfyui.Config{BaseURL: "http://127.0.0.1:1", Preset: "sdxl"}, nil, nil); err != nil {
		t.Fatalf("built-in SDXL workflows: %v", err)
	}
}

func TestCatalog(t *testing.T) {
	fake := comfyuitest.New(comfyuitest.Options{})
	defer fake.Close()
	v := newVendor(t, comfyui.Config{BaseURL: fake.URL})
	entries, err := v.Catalog(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, e := range entries {
		kinds[e.Kind]++
	}
	if kinds[engine.EntryModel] != len(comfyuitest.Checkpoints) || kinds[engine.EntryLoRA] != len(comfyuitest.LoRAs) {
		t.Fatalf("catalogue %v", kinds)
	}
}
