package apispace

import (
	"context"
	"errors"
	"fmt"

	"github.com/picbot/picbot/engine"
)

// Probe implements engine.Prober: a query for a uid that does not exist
// (authentication and paths.query). The other paths are guesses only a
// real task can test: SpendCases.
func (v *Vendor) Probe(ctx context.Context) []engine.ProbeResult {
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
	return out
}

// SpendCases implements engine.Spender: one task of each path, at the
// seed's standard 512×512 (it names no smaller) and 20 steps (it names
// no minimum).
func (v *Vendor) SpendCases() []engine.SpendCase {
	in := engine.Input{Mime: "image/png", Width: 64, Height: 64}
	draw := engine.Request{Kind: engine.KindDraw, Prompt: "a red apple", Width: 512, Height: 512, Steps: 20, Guidance: 7, N: 1, Seed: 1}
	img2img := draw
	img2img.Inputs = []engine.Input{in}
	c := &v.cfg
	return []engine.SpendCase{
		{Endpoint: c.Paths.Txt2Img, Key: "paths.txt2img, tasks.txt2img, model, sampler", Request: draw},
		{Endpoint: c.Paths.Img2Img, Key: "paths.img2img, tasks.img2img, http.public_url", Request: img2img},
		{Endpoint: c.Paths.Anime, Key: "paths.anime, tasks.anime, styles, http.public_url", Request: engine.Request{Kind: engine.KindAnime, Style: "anime", Inputs: []engine.Input{in}}},
		{Endpoint: c.Paths.SuperRes, Key: "paths.superres, tasks.superres, http.public_url", Request: engine.Request{Kind: engine.KindUpscale, Scale: 4, Inputs: []engine.Input{in}}},
	}
}
