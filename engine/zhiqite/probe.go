package zhiqite

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/picbot/picbot/engine"
)

// Probe implements engine.Prober: one page of each list (authentication
// and the catalogue), a query for a task id that does not exist (how the
// vendor says "not found", which decides whether a lost task is sent
// again). The billed tasks are SpendCases.
func (v *Vendor) Probe(ctx context.Context) []engine.ProbeResult {
	auth := "app_code (or app_key and app_secret), base_url"
	var out []engine.ProbeResult
	add := func(endpoint, key string, err error, ok string) {
		r := engine.ProbeResult{Vendor: Name, Endpoint: endpoint, Key: key, OK: err == nil, Answer: ok}
		if err != nil {
			r.Answer = err.Error()
		}
		out = append(out, r)
	}
	for _, ep := range []string{"saas/sd/v2/queryModelList", "saas/sd/v2/queryLoraList", "saas/sd/v2/queryEmbeddingList"} {
		var p page[json.RawMessage]
		err := v.call(ctx, ep, listBody{PageSize: 1, PageNum: 1}, &p)
		add(ep, auth, err, fmt.Sprintf("%g entries", p.Total.V))
	}
	empty := ""
	var p page[json.RawMessage]
	err := v.call(ctx, "saas/sd/v2/queryVaeList", listBody{PageSize: 1, PageNum: 1, VAEFileName: &empty}, &p)
	add("saas/sd/v2/queryVaeList", "unverified: an empty vaeFileName lists every VAE (vae: set a name the vendor lists)", err, fmt.Sprintf("%g entries", p.Total.V))
	for _, ep := range []string{"saas/sd/v2/queryTaskInfo", "saas/tool/enhance/queryTask"} {
		var raw json.RawMessage
		err := v.call(ctx, ep, queryBody{BusinessTaskID: "picbot-check-no-such-task"}, &raw)
		var ref *refusal
		switch {
		case errors.As(err, &ref) && notFound.MatchString(ref.Msg):
			add(ep, "", nil, fmt.Sprintf("a made-up task id: code %s %q, read as not found", ref.Code, ref.Msg))
		case errors.As(err, &ref):
			add(ep, "", fmt.Errorf("a made-up task id: code %s %q is NOT read as not found, so a lost task is never sent again: tell the developers these words", ref.Code, ref.Msg), "")
		case err == nil:
			add(ep, "", fmt.Errorf("a made-up task id was answered as a task: %.200s", raw), "")
		default:
			add(ep, auth, err, "")
		}
	}
	return out
}

// SpendCases implements engine.Spender: the smallest task of each endpoint
// the adapter calls (64×64 and one step where the seed allows it).
func (v *Vendor) SpendCases() []engine.SpendCase {
	in := engine.Input{Mime: "image/png", Width: 64, Height: 64}
	draw := engine.Request{Kind: engine.KindDraw, Prompt: "a red apple", Width: 64, Height: 64, Steps: 1, Guidance: 7, N: 1, Seed: 1}
	img2img := draw
	img2img.Inputs = []engine.Input{in}
	control := draw
	control.Control = &engine.Control{Input: in, Type: "canny"}
	return []engine.SpendCase{
		{Endpoint: "saas/sd/v2/text2image", Key: "model (sd_model_checkpoint)", Request: draw},
		{Endpoint: "saas/sd/v2/image2image", Key: "model (sd_model_checkpoint), http.public_url", Request: img2img},
		{Endpoint: "saas/sd/v2/controlnet", Key: "control_types.canny (module, model), http.public_url", Request: control},
		{Endpoint: "saas/tool/enhance", Key: "upscaler, http.public_url", Request: engine.Request{Kind: engine.KindUpscale, Scale: MinUpscale, Inputs: []engine.Input{in}}},
		{Endpoint: "saas/tool/roop", Key: "http.public_url", Request: engine.Request{Kind: engine.KindSwapface, Inputs: []engine.Input{in, in}}},
	}
}
