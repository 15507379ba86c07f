package apispace

import (
	"context"
	"errors"
	"fmt"

	"github.com/picbot/picbot/engine"
)

// Probe implements engine.Prober: a query for a uid that does not exist
// (authentication and paths.query) and, with spend, one 512×512 txt2img.
// The other paths are guesses only a real task can test (with spend the
// bot has no public image to send, so only txt2img).
func (v *Vendor) Probe(ctx context.Context, spend bool) []engine.ProbeResult {
	var out []engine.ProbeResult
	var data result
	err := v.post(ctx, v.cfg.Paths.Query, map[string]string{"uid": "picbotchecknosuchtask"}, &data)
	r := engine.ProbeResult{Vendor: Name, Endpoint: v.cfg.Paths.Query, Key: "token, base_url, paths.query"}
	var ae *apiError
	switch {
	case err == nil:
		r.OK, r.Answer = true, fmt.Sprintf("a made-up uid: status %q", data.Status)
	case errors.As(err, &ae) && ae.notFound():
		r.OK, r.Answer = true, fmt.Sprintf("a made-up uid: code %d %q, read as not found", ae.Code, ae.Msg)
	default:
		r.Answer = err.Error()
	}
	out = append(out, r)
	if spend {
		j := &engine.Job{ID: "picbot-check", Request: engine.Request{Kind: engine.KindDraw, Prompt: "a red apple", Width: 512, Height: 512, Steps: 20, Guidance: 7, N: 1, Seed: 1}}
		uid, err := v.Submit(ctx, j, engine.Task{})
		r := engine.ProbeResult{Vendor: Name, Endpoint: v.cfg.Paths.Txt2Img, Key: "paths.txt2img, tasks.txt2img, model, sampler", OK: err == nil, Answer: "task " + uid + " made (billed)"}
		if err != nil {
			r.Answer = err.Error()
		}
		out = append(out, r)
	}
	return out
}
