package a1111_test

import (
	"bytes"
	"context"
	"image"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/picbot/picbot/engine"
	"github.com/picbot/picbot/engine/a1111"
	"github.com/picbot/picbot/engine/a1111/a1111test"
)

// run submits j to v and returns the body the fake received at path.
func runAt(t *testing.T, fake *a1111test.Server, v *a1111.Vendor, j *engine.Job, path string) map[string]any {
	t.Helper()
	if err := v.Check(&j.Request); err != nil {
		t.Fatalf("check: %v", err)
	}
	submit(t, v, j, openPNG(t, 64, 64))
	if out := waitDone(t, v, j); out.State != engine.TaskDone {
		t.Fatalf("%s: %+v", j.ID, out)
	}
	b := fake.Last(path)
	if b == nil {
		t.Fatalf("%s: nothing reached %s (jobs %v)", j.ID, path, fake.Jobs())
	}
	return b
}

func probed(t *testing.T, cfg a1111.Config) *a1111.Vendor {
	t.Helper()
	v := newVendor(t, cfg)
	if err := v.Probe(context.Background()); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestOptionsTxt2Img: each /draw option reaches txt2img under the web
// UI's field names, over the configured defaults.
func TestOptionsTxt2Img(t *testing.T) {
	fake := a1111test.New(a1111test.Options{})
	defer fake.Close()
	v := probed(t, a1111.Config{BaseURL: fake.URL, VAE: "cfg.vae", ClipSkip: 1,
		Hires: a1111.Hires{Enabled: false, Upscaler: "Latent", Steps: 3}})
	j := drawJob("o1")
	r := &j.Request
	r.LoRA, r.ExtraLoRAs = "add_detail:0.5", []string{"pixel-art-xl"}
	r.VAE, r.ClipSkip = a1111test.VAEs[0], 2
	r.Embeddings = []string{"EasyNegative"}
	r.RestoreFaces, r.Tile = true, true
	r.Hires = &engine.Hires{Scale: 1.5, Upscaler: "R-ESRGAN 4x+"}
	b := runAt(t, fake, v, j, "/sdapi/v1/txt2img")
	if b["prompt"] != "a red fox <lora:add_detail:0.5> <lora:pixel-art-xl:1>" {
		t.Errorf("prompt %q", b["prompt"])
	}
	if b["negative_prompt"] != "blurry, EasyNegative" {
		t.Errorf("negative %q", b["negative_prompt"])
	}
	over, _ := b["override_settings"].(map[string]any)
	if over["sd_vae"] != a1111test.VAEs[0] || over["CLIP_stop_at_last_layers"] != 2.0 {
		t.Errorf("override_settings %v", over)
	}
	if b["restore_faces"] != true || b["tiling"] != true {
		t.Errorf("restore_faces %v tiling %v", b["restore_faces"], b["tiling"])
	}
	if b["enable_hr"] != true || b["hr_scale"] != 1.5 || b["hr_upscaler"] != "R-ESRGAN 4x+" || b["hr_second_pass_steps"] != 3.0 {
		t.Errorf("hires %v %v %v %v", b["enable_hr"], b["hr_scale"], b["hr_upscaler"], b["hr_second_pass_steps"])
	}
	for _, bad := range []engine.Request{{Kind: engine.KindDraw, VAE: "nosuch.vae"}, {Kind: engine.KindDraw, Embeddings: []string{"NoSuch"}}} {
		if err := v.Check(&bad); engine.ErrorCode(err) != engine.EINVALID {
			t.Errorf("unknown name in %+v: %v", bad, err)
		}
	}
	// Without the options, the configured defaults, and no hires.
	j2 := drawJob("o2")
	b = runAt(t, fake, v, j2, "/sdapi/v1/txt2img")
	over, _ = b["override_settings"].(map[string]any)
	if over["sd_vae"] != "cfg.vae" || over["CLIP_stop_at_last_layers"] != 1.0 || b["enable_hr"] != nil || b["tiling"] != nil || b["restore_faces"] != nil {
		t.Errorf("defaults: %v", b)
	}
}

// TestOptionsImg2Img: --strength is denoising_strength; --mask is img2img's
// mask, read from the input after the reference image.
func TestOptionsImg2Img(t *testing.T) {
	fake := a1111test.New(a1111test.Options{})
	defer fake.Close()
	v := probed(t, a1111.Config{BaseURL: fake.URL, Denoising: 0.6})
	j := drawJob("m1")
	j.Request.Inputs = []engine.Input{{Blob: "ref"}}
	j.Request.Strength = 0.3
	j.Request.Mask = &engine.Input{Blob: "mask"}
	b := runAt(t, fake, v, j, "/sdapi/v1/img2img")
	if b["denoising_strength"] != 0.3 {
		t.Errorf("denoising_strength %v", b["denoising_strength"])
	}
	if m, _ := b["mask"].(string); m == "" || b["inpainting_fill"] != 1.0 {
		t.Errorf("mask %.20q inpainting_fill %v", m, b["inpainting_fill"])
	}
	// --hires has no img2img field: refused, not dropped.
	h := drawJob("m2")
	h.Request.Inputs = []engine.Input{{Blob: "ref"}}
	h.Request.Hires = &engine.Hires{Scale: 2}
	if err := v.Check(&h.Request); engine.ErrorCode(err) != engine.EINVALID {
		t.Errorf("hires with an image: %v", err)
	}
}

// TestOptionsExtensions: --face-fix and --control are offered only where
// ADetailer and ControlNet are installed, and reach alwayson_scripts.
func TestOptionsExtensions(t *testing.T) {
	bare := a1111test.New(a1111test.Options{})
	defer bare.Close()
	cn := a1111.ControlNet{Model: "control_default", Types: map[string]a1111.ControlType{"depth": {Module: "depth_midas", Model: "control_depth"}}}
	v := probed(t, a1111.Config{BaseURL: bare.URL, ControlNet: cn})
	if v.Supports(engine.KindDraw, engine.FeatureFaceFix) || v.Supports(engine.KindDraw, engine.FeatureControl) {
		t.Fatal("extension options offered without the extensions")
	}
	if !v.Supports(engine.KindDraw, engine.FeatureHires) || !v.Supports(engine.KindDraw, engine.FeatureLoRAs) || v.Supports(engine.KindAnime, engine.FeatureHires) {
		t.Fatal("Supports wrong for the built-in options")
	}

	fake := a1111test.New(a1111test.Options{Extensions: []string{"sd-webui-controlnet", "adetailer"}})
	defer fake.Close()
	v = probed(t, a1111.Config{BaseURL: fake.URL, ControlNet: cn})
	if !v.Supports(engine.KindDraw, engine.FeatureFaceFix) || !v.Supports(engine.KindDraw, engine.FeatureControl) {
		t.Fatal("extension options not offered with the extensions")
	}
	j := drawJob("x1")
	j.Request.FaceFix = true
	j.Request.Control = &engine.Control{Input: engine.Input{Blob: "ctl"}, Type: "depth", Weight: 0.8, Start: 0.1, End: 0.9}
	b := runAt(t, fake, v, j, "/sdapi/v1/txt2img")
	scripts, _ := b["alwayson_scripts"].(map[string]any)
	if _, ok := scripts["ADetailer"]; !ok {
		t.Errorf("no ADetailer in %v", scripts)
	}
	args, _ := scripts["controlnet"].(map[string]any)["args"].([]any)
	if len(args) != 1 {
		t.Fatalf("controlnet %v", scripts["controlnet"])
	}
	u := args[0].(map[string]any)
	if u["module"] != "depth_midas" || u["model"] != "control_depth" || u["weight"] != 0.8 || u["guidance_start"] != 0.1 || u["guidance_end"] != 0.9 || u["image"] == "" {
		t.Errorf("unit %v", u)
	}
	bad := drawJob("x2")
	bad.Request.Control = &engine.Control{Input: engine.Input{Blob: "ctl"}, Type: "scribble"}
	if err := v.Check(&bad.Request); engine.ErrorCode(err) != engine.EINVALID || !strings.Contains(err.Error(), "depth") {
		t.Errorf("unknown control type: %v", err)
	}
}

// TestOptionsUpscale: --size, --upscaler and --face-restore reach
// extra-single-image.
func TestOptionsUpscale(t *testing.T) {
	fake := a1111test.New(a1111test.Options{})
	defer fake.Close()
	v := probed(t, a1111.Config{BaseURL: fake.URL})
	for _, f := range []string{engine.FeatureTargetSize, engine.FeatureUpscaler, engine.FeatureFaceRestore, engine.FeatureAnimeModel} {
		if !v.Supports(engine.KindUpscale, f) {
			t.Errorf("upscale %s not offered", f)
		}
	}
	up := func(id string, edit func(*engine.Request)) (map[string]any, *engine.Outcome) {
		j := &engine.Job{ID: id, Request: engine.Request{Kind: engine.KindUpscale, Scale: 2, Inputs: []engine.Input{{Blob: "x"}}}}
		edit(&j.Request)
		if err := v.Check(&j.Request); err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		submit(t, v, j, openPNG(t, 40, 30))
		out := waitDone(t, v, j)
		if out.State != engine.TaskDone {
			t.Fatalf("%s: %+v", id, out)
		}
		return fake.Last("/sdapi/v1/extra-single-image"), out
	}
	b, out := up("u1", func(r *engine.Request) {
		r.TargetWidth, r.TargetHeight, r.Upscaler = 200, 100, "SwinIR_4x"
		r.FaceRestore, r.FaceRestoreStrength = "codeformer", 0.7
	})
	if b["resize_mode"] != 1.0 || b["upscaling_resize_w"] != 200.0 || b["upscaling_resize_h"] != 100.0 || b["upscaler_1"] != "SwinIR_4x" {
		t.Errorf("body %v", b)
	}
	if b["codeformer_visibility"] != 0.7 || b["codeformer_weight"] != a1111.DefaultCodeFormerWeight || b["gfpgan_visibility"] != nil {
		t.Errorf("codeformer %v", b)
	}
	if got := pngSize(t, out.Images[0].Data); got != image.Pt(200, 100) {
		t.Errorf("size %v", got)
	}
	b, _ = up("u2", func(r *engine.Request) { r.FaceRestore, r.AnimeModel = "gfpgan", true })
	if b["gfpgan_visibility"] != 1.0 || b["upscaler_1"] != a1111.AnimeUpscaler || b["resize_mode"] != 0.0 {
		t.Errorf("gfpgan %v", b)
	}
	bad := &engine.Request{Kind: engine.KindUpscale, Scale: 2, Upscaler: "NoSuch", Inputs: []engine.Input{{Blob: "x"}}}
	if err := v.Check(bad); engine.ErrorCode(err) != engine.EINVALID {
		t.Errorf("unknown upscaler: %v", err)
	}
}

// TestFakeRefusesUnknownFields: the fake is a check of the field names,
// so a misspelt one must fail.
func TestFakeRefusesUnknownFields(t *testing.T) {
	fake := a1111test.New(a1111test.Options{})
	defer fake.Close()
	for path, body := range map[string]string{
		"/sdapi/v1/txt2img":            `{"prompt":"x","tile":true}`,
		"/sdapi/v1/img2img":            `{"prompt":"x","init_images":["AA=="],"enable_hr":true}`,
		"/sdapi/v1/extra-single-image": `{"image":"AA==","upscaler":"Lanczos"}`,
	} {
		resp, err := fake.Client().Post(fake.URL+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 422 {
			t.Errorf("%s %s: status %d, want 422", path, body, resp.StatusCode)
		}
	}
}

// blobMap is the engine's blob store for a restarted adapter.
type blobMap struct {
	data   []byte
	mu     sync.Mutex
	opened []string
}

func (b *blobMap) Open(_ context.Context, key string) (io.ReadCloser, error) {
	b.mu.Lock()
	b.opened = append(b.opened, key)
	b.mu.Unlock()
	return io.NopCloser(bytes.NewReader(b.data)), nil
}

// TestRerunReadsMaskAndControl: a task made again after a restart reads
// its images by Request.AllInputs' numbering: the reference, the control
// image, then the mask.
func TestRerunReadsMaskAndControl(t *testing.T) {
	fake := a1111test.New(a1111test.Options{Extensions: []string{"sd-webui-controlnet"}})
	defer fake.Close()
	cfg := a1111.Config{BaseURL: fake.URL, ControlNet: a1111.ControlNet{Model: "control_default"}}
	first := probed(t, cfg)
	j := drawJob("rr")
	j.Request.Inputs = []engine.Input{{Blob: "ref"}}
	j.Request.Control = &engine.Control{Input: engine.Input{Blob: "ctl"}}
	j.Request.Mask = &engine.Input{Blob: "msk"}
	submit(t, first, j, openPNG(t, 64, 64))
	if out := waitDone(t, first, j); out.State != engine.TaskDone {
		t.Fatalf("first: %+v", out)
	}
	var png bytes.Buffer
	rc, _ := openPNG(t, 64, 64)(context.Background(), 0)
	_, _ = io.Copy(&png, rc)
	blobs := &blobMap{data: png.Bytes()}
	second, err := a1111.New(cfg, nil, blobs, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	if err := second.Probe(context.Background()); err != nil {
		t.Fatal(err)
	}
	if out := waitDone(t, second, j); out.State != engine.TaskDone || second.Reruns() != 1 {
		t.Fatalf("rerun: %+v, reruns %d", out, second.Reruns())
	}
	blobs.mu.Lock()
	defer blobs.mu.Unlock()
	if !slices.Equal(blobs.opened, []string{"ref", "ctl", "msk"}) && !slices.Equal(blobs.opened, []string{"ctl", "ref", "msk"}) {
		t.Fatalf("opened %v", blobs.opened)
	}
	b := fake.Last("/sdapi/v1/img2img")
	if b["mask"] == nil || b["alwayson_scripts"] == nil {
		t.Fatalf("rerun body lacks mask or control: %v", b)
	}
}
