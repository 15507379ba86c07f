package chat

import (
	"context"
	"fmt"
	"strings"

	"github.com/picbot/picbot/engine"
)

// params is a job's parameters in one line, enough to make it again:
// "768x512 · seed 42 · steps 30 · model X".
func params(j *engine.Job, lang engine.Lang) string {
	r := j.Request
	var p []string
	if r.Width > 0 && r.Height > 0 {
		p = append(p, fmt.Sprintf("%dx%d", r.Width, r.Height))
	}
	if r.Kind == engine.KindDraw || r.Kind == engine.KindAnime {
		seed := r.Seed
		if len(j.Results) > 0 && j.Results[0].Seed != 0 {
			seed = j.Results[0].Seed // what the vendor reports it used
		}
		p = append(p, T(lang, "seed %d", "种子 %d", seed))
	}
	if r.Steps > 0 {
		p = append(p, T(lang, "steps %d", "步数 %d", r.Steps))
	}
	for _, kv := range [][2]string{{"model", r.Model}, {"lora", r.LoRA}, {"sampler", r.Sampler}, {"style", r.Style}, {"neg", Cut(r.Negative, 30)}} {
		if kv[1] != "" {
			p = append(p, kv[0]+" "+kv[1])
		}
	}
	if r.Kind == engine.KindUpscale {
		p = append(p, fmt.Sprintf("×%d", r.Scale))
	}
	if r.N > 1 {
		p = append(p, fmt.Sprintf("n %d", r.N))
	}
	if j.Vendor != "" {
		p = append(p, j.Vendor)
	}
	return strings.Join(p, " · ")
}

// show sends a past job's pictures again, from the store, while they are
// kept: to its owner, in any chat, or to a bot admin.
func (s *Service) show(ctx context.Context, m Message, id string) Reply {
	lang := m.User.Lang
	j, err := s.Engine.Job(ctx, id)
	if err == nil && j.Owner.Key() != m.User.Key() && !s.Quota.IsAdmin(m.User) {
		err = engine.Errorf(engine.ENOTFOUND, "No job %s.", "没有任务 %s。", id) // another's job is not confirmed to exist
	}
	if err != nil {
		return s.fail(lang, TooOld(err, id), id)
	}
	gone := len(j.Results) == 0
	for _, r := range j.Results {
		rc, err := s.Blobs.Open(ctx, r.Blob)
		if err != nil {
			gone = true
			break
		}
		rc.Close()
	}
	if gone {
		if !j.State.Terminal() && j.State != engine.StateSucceeded {
			return Reply{Text: T(lang, "Job %s is %s: nothing to show yet.", "任务 %s %s，暂无结果。", j.ID, engine.StateText(j.State, lang))}
		}
		return s.fail(lang, engine.Errorf(engine.ENOTFOUND, "The pictures of job %s are no longer kept.", "任务 %s 的图片已不再保存。", j.ID), id)
	}
	return Reply{Text: T(lang, "Job %s: /%s %s\n%s", "任务 %s：/%s %s\n%s", j.ID, j.Request.Kind, Cut(j.Request.Prompt, 200), params(j, lang)), Show: j}
}
