package showapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/picbot/picbot/engine"
)

// Probe implements engine.Prober: the model list (authentication), one page
// of the task list, a query for a task id that does not exist. The billed
// task is SpendCases.
func (v *Vendor) Probe(ctx context.Context) []engine.ProbeResult {
	var out []engine.ProbeResult
	add := func(endpoint, key string, err error, ok string) {
		r := engine.ProbeResult{Vendor: Name, Endpoint: endpoint, Key: key, OK: err == nil, Answer: ok}
		if err != nil {
			r.Answer = err.Error()
		}
		out = append(out, r)
	}
	auth := "app_code (or app_key and app_secret), base_url"
	_, biz, err := v.call(ctx, http.MethodGet, v.cfg.ModelsPath, nil, nil, "")
	add(v.cfg.ModelsPath, auth+", models_path", bizErr(biz, err), "models listed")
	p, err := v.TaskList(ctx, 1)
	if err == nil {
		add(v.cfg.ListPath, "list_path", nil, fmt.Sprintf("%s tasks, %s a page", p.AllNum, p.MaxResult))
	} else {
		add(v.cfg.ListPath, "list_path", err, "")
	}
	_, err = v.Query(ctx, &engine.Job{TaskID: "picbot-check-no-such-task"})
	switch {
	case engine.ErrorCode(err) == engine.ENOTFOUND:
		add(v.cfg.ResultPath, "result_path", nil, "a made-up task id: read as not found")
	case err == nil:
		add(v.cfg.ResultPath, "result_path", errors.New("a made-up task id was answered as a task"), "")
	default:
		add(v.cfg.ResultPath, "result_path, not_found_words", err, "")
	}
	return out
}

// bizErr is a call's error, or its business refusal.
func bizErr(biz *business, err error) error {
	if err != nil {
		return err
	}
	if code, ok := biz.RetCode.Int(); ok && code != 0 {
		return fmt.Errorf("ret_code %d: %s", code, cut(biz.message(), 200))
	}
	return nil
}

// SpendCases implements engine.Spender: ShowAPI only draws from text, so
// one smallest text2image at create_path (unverified: its path, its
// encoding and the reply's task id field are guesses this settles).
func (v *Vendor) SpendCases() []engine.SpendCase {
	return []engine.SpendCase{{Endpoint: v.cfg.CreatePath, Key: "unverified: create_path, create_encoding, create_task_field",
		Request: engine.Request{Kind: engine.KindDraw, Prompt: "a red apple", Width: v.cfg.MinSide, Height: v.cfg.MinSide, Steps: 1, Guidance: 7, N: 1, Seed: 1}}}
}
