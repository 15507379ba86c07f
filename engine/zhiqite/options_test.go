package zhiqite_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/picbot/picbot/engine"
	"github.com/picbot/picbot/engine/zhiqite"
	"github.com/picbot/picbot/engine/zhiqite/zhiqitetest"
)

func body(t *testing.T, c zhiqitetest.Call) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(c.Body, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// /draw --control reaches saas/sd/v2/controlnet with the unit filled: the
// type's module and model, the documented defaults, the control image's link.
func TestControlnet(t *testing.T) {
	f := newFake(t, zhiqitetest.Options{})
	v := newVendor(t, f, nil)
	j := draw("a castle", 1)
	j.Request.Control = &engine.Control{Type: "depth", Weight: 1.2, Start: 0.1, End: 0.8, Input: engine.Input{Blob: "c", Width: 64, Height: 64}}
	urls := inputs(t, zhiqitetest.PNG(64, 64, 1))
	submit(t, v, j, engine.Task{InputURLs: urls})
	c := f.Calls()[0]
	if c.Endpoint != "saas/sd/v2/controlnet" {
		t.Fatalf("endpoint %s", c.Endpoint)
	}
	b := body(t, c)
	sc := b["alwayson_scripts"].(map[string]any)
	u := sc["controlnet"].(map[string]any)["args"].([]any)[0].(map[string]any)
	for k, want := range map[string]any{
		"module": "depth_midas", "model": "control_v11f1p_sd15_depth", "image_link": urls[0], "enabled": true,
		"weight": 1.2, "guidance_start": 0.1, "guidance_end": 0.8, "resize_mode": "Crop and Resize",
		"processor_res": 512.0, "pixel_perfect": true, "control_mode": "Balanced",
	} {
		if u[k] != want {
			t.Errorf("unit %s = %#v, want %#v", k, u[k], want)
		}
	}
	if _, ok := b["seed"].(float64); !ok || b["resize_mode"] != 1.0 || sc["image_link"] != nil {
		t.Errorf("seed %#v (an integer in controlnet), resize_mode %#v, image_link %#v", b["seed"], b["resize_mode"], sc["image_link"])
	}
	if out := pollUntil(t, v, j); out[len(out)-1].State != engine.TaskDone {
		t.Fatalf("outcome %+v", out[len(out)-1])
	}
	// Every documented type maps to a module and model the fake (the seed's lists) accepts.
	for _, typ := range v.ControlTypeNames() {
		j := draw("a castle "+typ, 1)
		j.Request.Control = &engine.Control{Type: typ, Input: engine.Input{Blob: "c"}}
		submit(t, v, j, engine.Task{InputURLs: urls})
	}
	bad := draw("x", 1)
	bad.Request.Control = &engine.Control{Type: "hed", Input: engine.Input{Blob: "c"}}
	if err := v.Check(&bad.Request); engine.ErrorCode(err) != engine.EINVALID {
		t.Fatalf("unknown type: %v", err)
	}
}

// The rest of seed 001's text2image and image2image options.
func TestDrawOptions(t *testing.T) {
	f := newFake(t, zhiqitetest.Options{})
	v := newVendor(t, f, nil)
	j := draw("a fox", 1)
	r := &j.Request
	r.Width, r.Height = 512, 768
	r.Hires = &engine.Hires{Scale: 1.5, Steps: 12, Upscaler: "Latent"}
	r.VAE, r.Embeddings = "k1F8Anime2_k1F8Anime2VAE.ckpt", []string{"bad-hands-5", "FastNegativeV2"}
	r.Negative = "blurry"
	r.LoRA, r.ExtraLoRAs = "hayasaka_ai_v10_26390:0.6", []string{"hayasaka_ai_v10_26390"}
	r.ClipSkip, r.RestoreFaces, r.FaceFix = 1, true, true
	submit(t, v, j, engine.Task{})
	b := body(t, f.Calls()[0])
	sc := b["alwayson_scripts"].(map[string]any)
	for k, want := range map[string]any{
		"enable_hr": true, "hr_scale": 2.0, "hr_resize_x": 768.0, "hr_resize_y": 1152.0, "hr_upscaler": "Latent", "hr_second_pass_steps": 12.0,
		"restore_faces": true, "negative_prompt": "blurry, bad-hands-5, FastNegativeV2",
		"prompt": "a fox, <lora:hayasaka_ai_v10_26390:0.6>, <lora:hayasaka_ai_v10_26390:1>",
	} {
		if b[k] != want {
			t.Errorf("%s = %#v, want %#v", k, b[k], want)
		}
	}
	if sc["sd_vae"] != r.VAE || sc["override_settings"].(map[string]any)["CLIP_stop_at_last_layers"] != 1.0 {
		t.Errorf("scripts %v", sc)
	}
	ad := sc["ADetailer"].(map[string]any)["args"].([]any)[0].(map[string]any)
	if ad["ad_model"] != zhiqite.DefaultFaceFixModel || ad["ad_confidence"] != 0.3 || ad["ad_denoising_strength"] != 0.4 || ad["ad_steps"] != 28.0 {
		t.Errorf("ADetailer %v", ad)
	}
	// Inpainting: image2image with the mask's link and a chosen strength.
	urls := inputs(t, zhiqitetest.PNG(64, 64, 1), zhiqitetest.PNG(64, 64, 2))
	in := draw("a hat", 1)
	in.Request.Inputs = []engine.Input{{Blob: "a", Width: 64, Height: 64}}
	in.Request.Mask = &engine.Input{Blob: "m", Width: 64, Height: 64}
	in.Request.Strength = 0.4
	submit(t, v, in, engine.Task{InputURLs: urls})
	b = body(t, f.Calls()[1])
	sc = b["alwayson_scripts"].(map[string]any)
	if f.Calls()[1].Endpoint != "saas/sd/v2/image2image" || sc["image_link"] != urls[0] || sc["mask_link"] != urls[1] || b["denoising_strength"] != 0.4 || b["mask_blur"] != 4.0 {
		t.Errorf("inpainting %s %v", f.Calls()[1].Endpoint, b)
	}
	// Hires past 2048 is refused before any call.
	big := draw("x", 1)
	big.Request.Width, big.Request.Height, big.Request.Hires = 1024, 1024, &engine.Hires{Scale: 2.5}
	if err := v.Check(&big.Request); engine.ErrorCode(err) != engine.EINVALID {
		t.Fatalf("hires 2560: %v", err)
	}
}

// /upscale: the factor 1..8, a target size (resizeMode 1), the upscaler, face restoration.
func TestUpscaleOptions(t *testing.T) {
	f := newFake(t, zhiqitetest.Options{})
	v := newVendor(t, f, nil)
	urls := inputs(t, zhiqitetest.PNG(40, 30, 1))
	up := func(mod func(r *engine.Request)) map[string]any {
		j := &engine.Job{ID: "u", Request: engine.Request{Kind: engine.KindUpscale, Scale: 2, N: 1, Inputs: []engine.Input{{Blob: "x", Width: 40, Height: 30}}}}
		mod(&j.Request)
		j.ID = "u" + string(rune('a'+len(f.Calls())))
		submit(t, v, j, engine.Task{InputURLs: urls})
		calls := f.Calls()
		return body(t, calls[len(calls)-1])
	}
	b := up(func(r *engine.Request) {
		r.Scale = 8
		r.Upscaler = "R-ESRGAN 4x+"
		r.FaceRestore = "codeformer"
		r.FaceRestoreStrength = 0.7
	})
	if b["upscalingResize"] != 8.0 || b["upscaler1"] != "R-ESRGAN 4x+" || b["codeformerVisibility"] != 1.0 || b["codeformerWeight"].(float64) < 0.29 || b["codeformerWeight"].(float64) > 0.31 {
		t.Errorf("scale 8: %v", b)
	}
	b = up(func(r *engine.Request) { r.TargetWidth, r.TargetHeight = 160, 120; r.FaceRestore = "gfpgan" })
	if b["resizeMode"] != 1.0 || b["upscalingResizeW"] != 160.0 || b["upscalingResizeH"] != 120.0 || b["gfpganVisibility"] != 1.0 {
		t.Errorf("target size: %v", b)
	}
	if err := v.Check(&engine.Request{Kind: engine.KindUpscale, Scale: 2, TargetWidth: 4000, TargetHeight: 100, Inputs: []engine.Input{{Blob: "x"}}}); engine.ErrorCode(err) != engine.EINVALID {
		t.Fatalf("target 4000: %v", err)
	}
}

// Zhiqite offers the options of seed 001 and no other vendor's.
func TestSupports(t *testing.T) {
	f := newFake(t, zhiqitetest.Options{})
	v := newVendor(t, f, nil)
	var fv engine.FeatureVendor = v
	if !fv.Supports(engine.KindDraw, engine.FeatureControl) || !fv.Supports(engine.KindUpscale, engine.FeatureFaceRestore) ||
		fv.Supports(engine.KindDraw, engine.FeatureTile) || fv.Supports(engine.KindUpscale, engine.FeatureAnimeModel) {
		t.Fatal("supports")
	}
}

// The adapter's controlnet body holds the seed's example's keys with its
// types (the scripts object under the spelling the other examples use).
func TestSeedControlnetConforms(t *testing.T) {
	rp := newReplay(t, map[string]string{"saas/sd/v2/controlnet": "submit_reply.json"})
	v := replayVendor(t, rp, nil)
	j := drawJob("pro1686666")
	j.Request.Control = &engine.Control{Type: "qrcode", Input: engine.Input{Blob: "c"}}
	if _, err := v.Submit(context.Background(), j, engine.Task{ID: "pro1686666", InputURLs: []string{"http://127.0.0.1:9/input/j/t/0"}}); err != nil {
		t.Fatal(err)
	}
	c := rp.taken()[0]
	ex := readJSON(t, "controlnet_request.json")
	ex["alwayson_scripts"] = ex["always_on_scripts"]
	delete(ex, "always_on_scripts")
	ex["seed"] = 1221212.0 // the table types it integer; the example writes a string
	conforms(t, "controlnet", c.Body, ex, "batch_size", "resize_mode", "override_settings", "CLIP_stop_at_last_layers")
	u := c.Body["alwayson_scripts"].(map[string]any)["controlnet"].(map[string]any)["args"].([]any)[0].(map[string]any)
	conforms(t, "controlnet unit", u, ex["alwayson_scripts"].(map[string]any)["controlnet"].(map[string]any)["args"].([]any)[0].(map[string]any))
	if u["module"] != "inpaint_global_harmonious" || u["model"] != "control_v1p_sd15_qrcode" {
		t.Errorf("unit %v", u)
	}
}

// With the catalogue read, a model, LoRA, VAE or embedding Zhiqite does not
// list is refused by Check (no billed refusal); before, any name passes.
func TestCheckAgainstCatalogue(t *testing.T) {
	f := newFake(t, zhiqitetest.Options{})
	v := newVendor(t, f, nil)
	r := draw("x", 1).Request
	r.Model = "nosuch.safetensors"
	if err := v.Check(&r); err != nil {
		t.Fatalf("no catalogue yet: %v", err)
	}
	if _, err := v.Catalog(context.Background()); err != nil {
		t.Fatal(err)
	}
	for name, mod := range map[string]func(r *engine.Request){
		"model":     func(r *engine.Request) { r.Model = "nosuch.safetensors" },
		"lora":      func(r *engine.Request) { r.ExtraLoRAs = []string{"nosuch:0.5"} },
		"vae":       func(r *engine.Request) { r.VAE = "nosuch.vae.pt" },
		"embedding": func(r *engine.Request) { r.Embeddings = []string{"nosuch"} },
	} {
		r := draw("x", 1).Request
		mod(&r)
		if err := v.Check(&r); engine.ErrorCode(err) != engine.EINVALID || !strings.Contains(err.Error(), "nosuch") {
			t.Errorf("%s: %v", name, err)
		}
	}
	ok := draw("x", 1).Request
	ok.LoRA, ok.Embeddings = "hayasaka_ai_v10_26390:0.7", []string{"bad-hands-5"}
	if err := v.Check(&ok); err != nil {
		t.Fatalf("listed names: %v", err)
	}
}

// The scripts object's name is configurable: the seed spells it both ways.
func TestScriptsKey(t *testing.T) {
	f := newFake(t, zhiqitetest.Options{})
	v := newVendor(t, f, func(c *zhiqite.Config) { c.ScriptsKey = "always_on_scripts" })
	submit(t, v, draw("a fox", 1), engine.Task{})
	b := body(t, f.Calls()[0])
	if _, ok := b["always_on_scripts"].(map[string]any); !ok || b["alwayson_scripts"] != nil {
		t.Fatalf("body %v", b)
	}
}

func TestControlTypeByModule(t *testing.T) {
	f := newFake(t, zhiqitetest.Options{})
	v := newVendor(t, f, nil)
	r := draw("x", 1).Request
	r.Control = &engine.Control{Type: "depth_midas", Input: engine.Input{Blob: "c"}}
	if err := v.Check(&r); err != nil {
		t.Fatalf("the seed's module name: %v", err)
	}
}
