package chat

import (
	"context"
	"math/rand/v2"
	"os"
	"strings"

	"github.com/picbot/picbot/engine"
)

// Button actions under a result.
const (
	ActionAgain   = "again"   // same parameters, new seed
	ActionVary    = "vary"    // a variation of one result: it becomes the reference image
	ActionUpscale = "upscale" // upscale one result ×2
)

// VaryStrength is how far a variation moves from its picture's seed.
const VaryStrength = 0.3

// Follow starts a job from a button under an earlier job's result. The
// earlier job is read from the store, so buttons work after a restart.
// index picks the result for vary and upscale.
func (s *Service) Follow(ctx context.Context, m Message, parentID, action string, index int) Reply {
	return s.follow(ctx, m, parentID, action, index, 0)
}

// isJobRef reports whether an image argument names a job rather than a
// file or a link: a job id, and on the console no file of that name.
func (s *Service) isJobRef(ref string) bool {
	if len(ref) != 16 || strings.Trim(strings.ToLower(ref), "abcdefghijklmnopqrstuvwxyz234567") != "" {
		return false
	}
	if s.LocalFiles {
		if _, err := os.Stat(ref); err == nil {
			return false
		}
	}
	return true
}

// follow is Follow with the upscale's --scale (0: the default).
func (s *Service) follow(ctx context.Context, m Message, parentID, action string, index, scale int) Reply {
	lang := m.User.Lang
	parent, err := s.Engine.Job(ctx, parentID)
	if err != nil {
		return s.fail(lang, TooOld(err, parentID), parentID)
	}
	if index < 0 || index >= len(parent.Results) {
		index = 0
	}
	req := parent.Request
	req.Inputs = append([]engine.Input(nil), req.Inputs...)
	req.Seed = -1
	switch action {
	case ActionAgain:
	case ActionVary, ActionUpscale:
		if len(parent.Results) == 0 {
			return s.fail(lang, engine.Errorf(engine.ECONFLICT, "That job has no picture to work on.", "那个任务没有可用的图片。"), parentID)
		}
		r := parent.Results[index]
		in := engine.Input{Blob: r.Blob, Mime: r.Mime, Width: r.Width, Height: r.Height, Size: r.Size}
		if action == ActionVary {
			req.Kind, req.N, req.Inputs = engine.KindDraw, 1, []engine.Input{in}
			if r.Seed > 0 {
				// The picture's own seed, nudged, where a vendor can (variation_seed);
				// the others start from the picture.
				req.Seed, req.VariationSeed, req.VariationStrength = r.Seed, int64(rand.Uint32()), VaryStrength
			}
			if req.Prompt == "" {
				req.Prompt = "variation"
			}
			if req.Width == 0 {
				req.Width, req.Height = 0, 0 // Normalize picks the default size
			}
		} else {
			if scale == 0 {
				scale = engine.DefaultScale
			}
			req = engine.Request{Kind: engine.KindUpscale, Scale: scale, Seed: -1, Inputs: []engine.Input{in}}
		}
	default:
		return s.fail(lang, engine.Errorf(engine.EINVALID, "Unknown button.", "未知按钮。"), "")
	}
	if s.Moderator != nil {
		// A locked-out user's buttons are refused too; the prompt is checked
		// again, since the list may have grown since the parent job.
		cs, err := s.chatSettings(ctx, m.Chat)
		if err != nil {
			return s.fail(lang, err, "")
		}
		if err := s.Moderator.Check(ctx, m.User, req.Prompt, s.nsfw(m, cs)); err != nil {
			return s.fail(lang, err, "")
		}
	}
	j, err := s.Engine.Submit(ctx, m.User, m.Chat, req)
	if err != nil {
		return s.fail(lang, err, "")
	}
	return Reply{Text: Accepted(j, lang), Job: j}
}

// TooOld turns "no such job" under a button into a polite word that the job
// was cleaned up: jobs are kept for retention.jobs, their buttons for ever.
func TooOld(err error, id string) error {
	if engine.ErrorCode(err) != engine.ENOTFOUND {
		return err
	}
	return engine.Wrap(engine.ENOTFOUND, err, "Job %s is too old: it has been cleaned up. Please send the command again.",
		"任务 %s 太久了，已被清理。请重新发送命令。", id)
}
