package comfyui_test

import (
	"testing"

	"github.com/picbot/picbot/engine"
	"github.com/picbot/picbot/engine/comfyui"
	"github.com/picbot/picbot/engine/comfyui/comfyuitest"
)

// TestOptions: several --lora are a LoraLoader chain the fake validates;
// --strength is the img2img KSampler's denoise; the options no workflow
// has a patch point for are not offered.
func TestOptions(t *testing.T) {
	fake := comfyuitest.New(comfyuitest.Options{})
	defer fake.Close()
	v := newVendor(t, comfyui.Config{BaseURL: fake.URL})
	for _, f := range []string{engine.FeatureLoRAs, engine.FeatureStrength} {
		if !v.Supports(engine.KindDraw, f) {
			t.Errorf("%s not offered", f)
		}
	}
	for _, f := range []string{engine.FeatureVAE, engine.FeatureHires, engine.FeatureControl, engine.FeatureMask, engine.FeatureFaceFix, engine.FeatureTile} {
		if v.Supports(engine.KindDraw, f) {
			t.Errorf("%s offered with no patch point", f)
		}
	}
	if v.Supports(engine.KindUpscale, engine.FeatureUpscaler) {
		t.Error("upscale options offered")
	}

	j := drawJob("lo")
	j.Request.LoRA, j.Request.ExtraLoRAs = "add_detail.safetensors:0.5", []string{"add_detail.safetensors"}
	if err := v.Check(&j.Request); err != nil {
		t.Fatal(err)
	}
	submit(t, v, j, nil)
	if out := waitDone(t, v, j); out.State != engine.TaskDone {
		t.Fatalf("loras: %+v", out)
	}
	var names []any
	var weights []any
	for _, n := range fake.Runs()[0].Prompt {
		m := n.(map[string]any)
		if m["class_type"] == "LoraLoader" {
			in := m["inputs"].(map[string]any)
			names, weights = append(names, in["lora_name"]), append(weights, in["strength_model"])
		}
	}
	if len(names) != 2 || len(weights) != 2 || weights[0] == weights[1] {
		t.Fatalf("LoraLoaders %v %v", names, weights)
	}

	s := drawJob("st")
	s.Request.Inputs = []engine.Input{{Blob: "y"}}
	s.Request.Strength = 0.35
	submit(t, v, s, openPNG(t, 64, 64))
	if out := waitDone(t, v, s); out.State != engine.TaskDone {
		t.Fatalf("strength: %+v", out)
	}
	if in := node(t, fake.Runs()[1].Prompt, "KSampler"); in["denoise"] != 0.35 {
		t.Fatalf("denoise %v", in["denoise"])
	}
}
