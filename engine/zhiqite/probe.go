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
// again), and with spend one 64×64, one-step text2image.
func (v *Vendor) Probe(ctx context.Context, spend bool) []engine.ProbeResult {
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
	if spend {
		j := &engine.Job{ID: "picbot-check", Request: engine.Request{Kind: engine.KindDraw, Prompt: "a red apple", Width: 64, Height: 64, Steps: 1, Guidance: 7, N: 1, Seed: 1}}
		id := fmt.Sprintf("picbot-check-%d", v.now().UnixNano())
		_, err := v.Submit(ctx, j, engine.Task{ID: id})
		add("saas/sd/v2/text2image", "model (sd_model_checkpoint)", err, "task "+id+" made (billed)")
	}
	return out
}
