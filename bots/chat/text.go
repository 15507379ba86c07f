package chat

import (
	"fmt"
	"strings"

	"github.com/picbot/picbot/bots/command"
	"github.com/picbot/picbot/engine"
	"github.com/picbot/picbot/engine/local"
)

// Help is the /help text.
func Help(lang engine.Lang) string {
	var b strings.Builder
	b.WriteString(T(lang, "picbot makes pictures. Commands:", "picbot 可以画图。命令："))
	for _, name := range command.Names {
		if text := Describe(name, lang); text != "" && name != "help" && name != "start" {
			fmt.Fprintf(&b, "\n%s — %s", command.Usage(name, lang), text)
		}
	}
	return b.String()
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
	"cancel":   {"Stop a job", "取消任务"},
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

// Accepted is the reply to a command whose job was stored.
func Accepted(j *engine.Job, lang engine.Lang) string {
	r := j.Request
	switch r.Kind {
	case engine.KindDraw:
		return T(lang, "Job %s queued: %q, %dx%d, seed %d.", "任务 %s 已排队：%q，%dx%d，种子 %d。", j.ID, Cut(r.Prompt, 60), r.Width, r.Height, r.Seed)
	case engine.KindUpscale:
		return T(lang, "Job %s queued: upscale ×%d.", "任务 %s 已排队：放大 %d 倍。", j.ID, r.Scale)
	case engine.KindAnime:
		return T(lang, "Job %s queued: anime, style %s.", "任务 %s 已排队：动漫化，风格 %s。", j.ID, r.Style)
	}
	return T(lang, "Job %s queued: /%s.", "任务 %s 已排队：/%s。", j.ID, r.Kind)
}

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

// Ended is the message for a job that failed or was cancelled.
func Ended(j *engine.Job, lang engine.Lang) string {
	if j.State == engine.StateCancelled {
		return T(lang, "Job %s was cancelled.", "任务 %s 已取消。", j.ID)
	}
	msg := j.Err.Message(lang)
	if msg == "" {
		msg = T(lang, "It failed.", "失败了。")
	}
	return T(lang, "Job %s failed: %s", "任务 %s 失败：%s", j.ID, msg)
}

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
