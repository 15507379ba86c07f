package apispace_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/picbot/picbot/engine"
	"github.com/picbot/picbot/engine/apispace"
	"github.com/picbot/picbot/engine/apispace/apispacetest"
)

func params(t *testing.T, task apispacetest.Task) map[string]any {
	t.Helper()
	p, ok := task.Body["params"].(map[string]any)
	if !ok {
		t.Fatalf("no params: %v", task.Body)
	}
	return p
}

// The parameters the seed's callback echoes, reachable: use_circular
// (--tile), clip_skip, variation_seed and variation_strength; is_anime on
// super-resolution. A variation is txt2img with the seed, not img2img.
func TestEchoedParameters(t *testing.T) {
	f := startFake(t, apispacetest.Options{})
	v, _ := newVendor(t, f.BaseURL(), nil)
	ctx := context.Background()
	req := draw("roses")
	req.Tile, req.ClipSkip = true, 2
	if _, err := v.Submit(ctx, newJob(req), engine.Task{}); err != nil {
		t.Fatal(err)
	}
	vary := withInput(draw("roses"), 64, 64)
	vary.VariationSeed, vary.VariationStrength = 99, 0.3
	if _, err := v.Submit(ctx, newJob(vary), engine.Task{}); err != nil { // no input link needed
		t.Fatal(err)
	}
	up := withInput(engine.Request{Kind: engine.KindUpscale, Scale: 4, AnimeModel: true}, 64, 64)
	if _, err := v.Submit(ctx, newJob(up), engine.Task{InputURLs: []string{inputServer(t, 64, 64)}}); err != nil {
		t.Fatal(err)
	}
	tasks := f.Tasks()
	p := params(t, tasks[0])
	if p["use_circular"] != true || p["clip_skip"] != json.Number("2") {
		t.Errorf("txt2img params %v", p)
	}
	p = params(t, tasks[1])
	if tasks[1].Task != "txt2img.sd" || p["variation_seed"] != json.Number("99") || p["variation_strength"] != json.Number("0.3") || p["seed"] != json.Number("42") || p["url"] != nil {
		t.Errorf("variation %s %v", tasks[1].Task, p)
	}
	if p := params(t, tasks[2]); p["is_anime"] != true {
		t.Errorf("super-resolution params %v", p)
	}
	var fv engine.FeatureVendor = v
	if !fv.Supports(engine.KindDraw, engine.FeatureTile) || !fv.Supports(engine.KindUpscale, engine.FeatureAnimeModel) || fv.Supports(engine.KindDraw, engine.FeatureControl) {
		t.Error("Supports")
	}
}

// Nolibox's statuses include interrupted: the task ended without a picture.
func TestInterrupted(t *testing.T) {
	f := startFake(t, apispacetest.Options{Queue: 20 * time.Millisecond, Duration: 50 * time.Millisecond})
	v, _ := newVendor(t, f.BaseURL(), nil)
	j := newJob(draw("roses interrupted"))
	id, err := v.Submit(context.Background(), j, engine.Task{})
	if err != nil {
		t.Fatal(err)
	}
	j.TaskID = id
	out, _, _ := waitDone(t, v, j)
	if out.State != engine.TaskFailed || out.Err == nil {
		t.Fatalf("outcome %+v", out)
	}
}

// image to image sends the image as params.url; the fake refuses img2img without it.
func TestImg2ImgURL(t *testing.T) {
	f := startFake(t, apispacetest.Options{})
	v, _ := newVendor(t, f.BaseURL(), func(c *apispace.Config) {})
	link := inputServer(t, 64, 64)
	if _, err := v.Submit(context.Background(), newJob(withInput(draw("roses"), 64, 64)), engine.Task{InputURLs: []string{link}}); err != nil {
		t.Fatal(err)
	}
	if p := params(t, f.Tasks()[0]); p["url"] != link || f.Tasks()[0].Task != "img2img.sd" {
		t.Fatalf("img2img %v", p)
	}
}

// A canonical sampler name reaches APISpace in its own word.
func TestCanonicalSampler(t *testing.T) {
	f := startFake(t, apispacetest.Options{})
	v, _ := newVendor(t, f.BaseURL(), nil)
	req := draw("roses")
	req.Sampler = "Euler a"
	if _, err := v.Submit(context.Background(), newJob(req), engine.Task{}); err != nil {
		t.Fatal(err)
	}
	if p := params(t, f.Tasks()[0]); p["sampler"] != "k_euler_a" {
		t.Fatalf("sampler %v", p["sampler"])
	}
	bad := draw("roses")
	bad.Sampler = "DPM++ 2M Karras"
	if err := v.Check(&bad); engine.ErrorCode(err) != engine.EINVALID {
		t.Fatalf("a sampler APISpace lacks: %v", err)
	}
	if c := v.Choices(engine.KindDraw); c.Samplers[0] != "Euler a" && c.Samplers[0] != "LMS" {
		t.Errorf("choices %v: canonical names", c.Samplers)
	}
}
