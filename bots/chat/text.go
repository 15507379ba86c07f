package chat

import (
	"context"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"time"

	"github.com/picbot/picbot/bots/command"
	"github.com/picbot/picbot/engine"
	"github.com/picbot/picbot/engine/local"
)

// Help is the /help text, from the configuration: each command's vendors
// and what they let a user choose, the limits in force, and /admin for admins only.
func (s *Service) Help(lang engine.Lang, admin bool) string {
	lim := s.Engine.Limits()
	var b strings.Builder
	b.WriteString(T(lang, "picbot makes pictures. Commands:", "picbot 可以画图。命令："))
	for _, name := range command.Names {
		if name == "help" || name == "start" || name == "admin" && !admin {
			continue
		}
		if text := Describe(name, lang); text != "" {
			fmt.Fprintf(&b, "\n%s — %s", command.Usage(name, lang), text)
		}
		if k := engine.Kind(name); slices.Contains(engine.Kinds, k) {
			b.WriteString(s.routeHelp(k, lang))
		}
	}
	b.WriteString("\n" + T(lang, "Limits: --size each side %d to %d, a multiple of 8; --steps 1 to %d; --n 1 to %d; --cfg 1 to %g; --scale 1 to %d (at most %d pixels per side after).",
		"限制：--size 每边 %d 到 %d，且为 8 的倍数；--steps 1 到 %d；--n 1 到 %d；--cfg 1 到 %g；--scale 1 到 %d（放大后每边最多 %d 像素）。",
		lim.MinSide, lim.MaxSide, lim.MaxSteps, lim.MaxImages, lim.MaxGuidance, lim.MaxScale, lim.MaxOutputSide))
	return b.String()
}

// routeHelp is a command's vendors and their choices, indented under its
// line in /help; "" when the command has no vendor.
func (s *Service) routeHelp(k engine.Kind, lang engine.Lang) string {
	choices := s.Engine.Choices(k)
	if len(choices) == 0 {
		return "\n  " + T(lang, "(not available on this bot)", "（本机器人未开放）")
	}
	var names []string
	for _, c := range choices {
		names = append(names, c.Vendor)
	}
	out := "\n  " + T(lang, "by: %s", "服务：%s", strings.Join(names, ", "))
	for _, c := range choices {
		var parts []string
		if len(c.Styles) > 0 {
			parts = append(parts, "--style "+strings.Join(c.Styles, "|"))
		}
		if len(c.Samplers) > 0 {
			parts = append(parts, "--sampler "+strings.Join(c.Samplers, "|"))
		}
		if len(c.Models) > 0 {
			parts = append(parts, "--model "+strings.Join(c.Models, "|"))
		}
		if len(c.Ignores) > 0 {
			parts = append(parts, T(lang, "ignores --%s", "忽略 --%s", strings.Join(c.Ignores, ", --")))
		}
		if len(c.FreeNames) > 0 {
			parts = append(parts, T(lang, "takes any --%s name, listed or not (sent as given, unchecked)", "接受任意 --%s 名称，不论是否在列表中（原样发送，不检查）", strings.Join(c.FreeNames, ", --")))
		}
		if len(parts) > 0 {
			out += fmt.Sprintf("\n  %s: %s", c.Vendor, strings.Join(parts, "; "))
		}
	}
	return out
}

// models is the /models text: the models, LoRAs and samplers /draw's
// vendors offer, and which of them ignore --model.
func (s *Service) models(ctx context.Context, lang engine.Lang) Reply {
	var b strings.Builder
	if s.Models != nil {
		text, err := s.Models(ctx, lang)
		if err != nil {
			return s.fail(lang, err, "")
		}
		b.WriteString(text)
	}
	for _, c := range s.Engine.Choices(engine.KindDraw) {
		var parts []string
		if len(c.Models) > 0 {
			parts = append(parts, T(lang, "models (--model): %s", "模型（--model）：%s", strings.Join(c.Models, ", ")))
		}
		if len(c.Samplers) > 0 {
			parts = append(parts, T(lang, "samplers (--sampler): %s", "采样器（--sampler）：%s", strings.Join(c.Samplers, ", ")))
		}
		if len(c.Ignores) > 0 {
			parts = append(parts, T(lang, "ignores --%s", "忽略 --%s", strings.Join(c.Ignores, ", --")))
		}
		if len(c.FreeNames) > 0 {
			parts = append(parts, T(lang, "takes any --%s name, listed or not (sent as given, unchecked)", "接受任意 --%s 名称，不论是否在列表中（原样发送，不检查）", strings.Join(c.FreeNames, ", --")))
		}
		if len(parts) == 0 {
			continue
		}
		if b.Len() > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "%s: %s", c.Vendor, strings.Join(parts, "; "))
	}
	if b.Len() == 0 {
		return Reply{Text: T(lang, "The vendors of /draw here have no models to choose.", "这里 /draw 的服务没有可选模型。")}
	}
	return Reply{Text: b.String()}
}

// descriptions say in a few words what each command does: for /help and
// the platforms' command menus.
var descriptions = map[string][2]string{
	"draw":     {"Text to image", "文字生成图片"},
	"anime":    {"Photo to anime", "照片转动漫"},
	"upscale":  {"Enlarge an image", "图片放大"},
	"swapface": {"Put a face onto another photo", "换脸"},
	"quota":    {"What you have left today", "今日剩余额度"},
	"jobs":     {"Your latest jobs", "最近的任务"},
	"show":     {"Send a past result again", "重新发送以前的结果"},
	"settings": {"This chat's defaults (admins)", "本聊天的默认设置（管理员）"},
	"queue":    {"Who waits for the GPU", "GPU 排队情况"},
	"cancel":   {"Stop a job", "取消任务"},
	"again":    {"Same again, new seed", "同样参数再画一张"},
	"vary":     {"A variation of a result", "以结果为参考生成变体"},
	"models":   {"The models you can use", "可用模型"},
	"help":     {"How to use the bot", "使用帮助"},
	"admin":    {"For the bot's admins", "管理员命令"},
}

// Describe returns the description of command name in lang, or "".
func Describe(name string, lang engine.Lang) string {
	d, ok := descriptions[name]
	switch {
	case !ok:
		return ""
	case lang == engine.ZH:
		return d[1]
	}
	return d[0]
}

// Accepted is the reply to a command whose job was stored. It names the
// cost when a job takes more than one image of the user's quota.
func Accepted(j *engine.Job, lang engine.Lang) string {
	r := j.Request
	var text string
	switch r.Kind {
	case engine.KindDraw:
		text = T(lang, "Job %s queued: %q, %dx%d, seed %d.", "任务 %s 已排队：%q，%dx%d，种子 %d。", j.ID, Cut(r.Prompt, 60), r.Width, r.Height, r.Seed)
	case engine.KindUpscale:
		text = T(lang, "Job %s queued: upscale ×%d.", "任务 %s 已排队：放大 %d 倍。", j.ID, r.Scale)
	case engine.KindAnime:
		text = T(lang, "Job %s queued: anime, style %s.", "任务 %s 已排队：动漫化，风格 %s。", j.ID, r.Style)
	default:
		text = T(lang, "Job %s queued: /%s.", "任务 %s 已排队：/%s。", j.ID, r.Kind)
	}
	if j.Charge.Cost > 1 && !j.Charge.Unlimited {
		text += sep(lang) + T(lang, "It costs %d images of today's quota.", "消耗今日额度 %d 张。", j.Charge.Cost)
	}
	return text
}

// Cancelled is the reply to /cancel: whether the quota came back.
func Cancelled(j *engine.Job, lang engine.Lang) string {
	return T(lang, "Job %s cancelled.", "任务 %s 已取消。", j.ID) + sep(lang) + refundText(j, lang)
}

// refundText says what became of a finished job's charge.
func refundText(j *engine.Job, lang engine.Lang) string {
	switch {
	case j.Charge.Unlimited:
		return T(lang, "Nothing was charged (no limits).", "未扣额度（无限制）。")
	case j.Charge.Settled == engine.ChargeRefunded:
		return Refunded(lang)
	case j.State == engine.StateCancelled:
		return T(lang, "Not refunded: %s had already started it and bills the task.", "未退还额度：%s 已经开始生成，该任务照常计费。", j.Vendor)
	}
	return T(lang, "Not refunded.", "额度未退还。")
}

// Refunded is the sentence that tells a user their quota came back. It is
// said after the cause, by whoever tells the user (Ended, a platform's own
// refusals through WithRefund); the engine's error messages, which a failed
// job's message starts with, say only what went wrong.
func Refunded(lang engine.Lang) string {
	return T(lang, "Your quota was refunded.", "额度已退还。")
}

// WithRefund is cause followed by Refunded.
func WithRefund(lang engine.Lang, cause string) string { return cause + sep(lang) + Refunded(lang) }

// Bar draws a progress bar: ▓▓▓▓░░░░░░ 40%.
func Bar(f float64) string {
	if f < 0 {
		return "…"
	}
	f = min(f, 1)
	n := int(f*10 + 0.5)
	return strings.Repeat("▓", n) + strings.Repeat("░", 10-n) + fmt.Sprintf(" %d%%", int(f*100+0.5))
}

// Status is a job's status line while it runs.
func Status(j *engine.Job, p engine.Progress, lang engine.Lang) string {
	switch j.State {
	case engine.StateQueued:
		if p.Position > 0 {
			return T(lang, "Job %s: queued, number %d in line, about %s.", "任务 %s：排队中，第 %d 位，约 %s。", j.ID, p.Position, roughDuration(p.ETA, lang))
		}
		return T(lang, "Job %s: queued.", "任务 %s：排队中。", j.ID)
	case engine.StateSubmitted:
		if p.Fraction <= 0 {
			return T(lang, "Job %s: sent to %s, waiting.", "任务 %s：已提交给 %s，等待中。", j.ID, j.Vendor)
		}
	}
	return T(lang, "Job %s: %s", "任务 %s：%s", j.ID, Bar(p.Fraction))
}

// Caption describes a delivered result: prompt (cut to fit limit runes), seed, vendor.
func Caption(j *engine.Job, lang engine.Lang, limit int) string {
	r := j.Request
	var tail string
	if r.Kind == engine.KindDraw {
		tail = T(lang, "seed %d · %dx%d · %s", "种子 %d · %dx%d · %s", r.Seed, r.Width, r.Height, j.Vendor)
	} else {
		tail = T(lang, "/%s · %s", "/%s · %s", r.Kind, j.Vendor)
	}
	if j.Vendor == local.Name {
		tail += "\n" + T(lang, local.DisclaimerEN, local.DisclaimerZH)
		if ignored := ignoredOptions(&r); ignored != "" {
			tail += "\n" + T(lang, "The local renderer ignores %s.", "本地渲染器忽略了 %s。", ignored)
		}
	}
	if j.Dropped > 0 {
		tail += "\n" + T(lang, "%d image(s) removed by the content check.", "%d 张图片未通过内容审核，已移除。", j.Dropped)
	}
	tail = fmt.Sprintf("#%s · ", j.ID) + tail
	if r.Prompt == "" {
		return tail
	}
	room := limit - len([]rune(tail)) - 1
	if room < 10 {
		return Cut(tail, limit)
	}
	return Cut(r.Prompt, room) + "\n" + tail
}

// ignoredOptions lists the options of r the local renderer has no use for.
func ignoredOptions(r *engine.Request) string {
	var out []string
	for _, o := range []struct{ name, value string }{{"model", r.Model}, {"lora", r.LoRA}, {"sampler", r.Sampler}} {
		if o.value != "" {
			out = append(out, fmt.Sprintf("--%s %s", o.name, o.value))
		}
	}
	return strings.Join(out, ", ")
}

// Ended is the message for a job that failed or was cancelled, with what
// became of its charge.
func Ended(j *engine.Job, lang engine.Lang) string {
	if j.State == engine.StateCancelled {
		return T(lang, "Job %s was cancelled.", "任务 %s 已取消。", j.ID) + sep(lang) + refundText(j, lang)
	}
	msg := j.Err.Message(lang)
	if msg == "" {
		msg = T(lang, "It failed.", "失败了。")
	}
	return T(lang, "Job %s failed: %s", "任务 %s 失败：%s", j.ID, msg) + sep(lang) + refundText(j, lang)
}

// sep joins two sentences: a space in English, nothing after a Chinese full stop.
func sep(lang engine.Lang) string { return T(lang, " ", "") }

// Duration says d as people write it in lang: "20h 12m", "20小时12分".
func Duration(d time.Duration, lang engine.Lang) string { return engine.FormatDuration(d, lang) }

// Ext is the file extension for an image's MIME type, for file names.
func Ext(mime string) string {
	switch mime {
	case "image/jpeg":
		return ".jpg"
	case "image/webp":
		return ".webp"
	case "image/gif":
		return ".gif"
	}
	return ".png"
}

// roughDuration says d as a person would: "40 s", "3 min".
func roughDuration(d time.Duration, lang engine.Lang) string {
	switch {
	case d < time.Minute:
		return T(lang, "%d s", "%d 秒", max(int(d.Seconds()+0.5), 1))
	default:
		return T(lang, "%d min", "%d 分钟", int(d.Minutes()+0.5))
	}
}

// PreviewKey identifies a progress preview, so a platform shows each one
// once: vendors hand out their latest preview at every poll, so that one an
// edit limit skipped is shown at the next edit allowed.
func PreviewKey(b []byte) uint64 {
	h := fnv.New64a()
	h.Write(b)
	return h.Sum64()
}
