// Package command is the text grammar of chat commands, shared by the
// console and Telegram:
//
//	/draw a red fox --size 768x512 --steps 30 --seed 42 --neg "blurry" --model X --n 2
//	/anime <image> --style anime
//	/upscale <image> --scale 2
//	/swapface <face image> <target image>
//	/quota  /jobs  /cancel <id>  /models  /help  /start
//
// Errors are engine errors with code EINVALID: a one-line reason, then the usage.
package command

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"

	"github.com/picbot/picbot/engine"
)

// Command is a parsed command line.
type Command struct {
	Name string // without the slash, lower case: "draw", "cancel", ...
	// Mention is the "@bot" suffix of "/draw@bot", without the @; empty if none.
	Mention string
	// Request is filled for the job commands (draw, anime, upscale, swapface).
	Request engine.Request
	// Images are image references given as arguments: paths or URLs, in order.
	Images []string
	// Args are the remaining positional arguments of other commands.
	Args []string
}

// IsJob reports whether the command starts a job.
func (c *Command) IsJob() bool {
	switch engine.Kind(c.Name) {
	case engine.KindDraw, engine.KindAnime, engine.KindUpscale, engine.KindSwapface:
		return true
	}
	return false
}

// Names lists the commands, in help order.
var Names = []string{"draw", "anime", "upscale", "swapface", "quota", "jobs", "cancel", "models", "help", "start", "admin"}

// usage is each command's synopsis.
var usage = map[string][2]string{
	"draw": {"/draw <prompt> [--size WxH] [--steps N] [--seed N] [--neg TEXT] [--model NAME] [--lora NAME] [--sampler NAME] [--cfg N] [--n N] [--image IMAGE]",
		"/draw <提示词> [--size 宽x高] [--steps 步数] [--seed 种子] [--neg 反向提示词] [--model 模型] [--lora LoRA] [--sampler 采样器] [--cfg 引导系数] [--n 张数] [--image 参考图]"},
	"anime":    {"/anime <image> [--style anime|sketch|pop]", "/anime <图片> [--style anime|sketch|pop]"},
	"upscale":  {"/upscale <image> [--scale 2..4]", "/upscale <图片> [--scale 2..4]"},
	"swapface": {"/swapface <face image> <target image>", "/swapface <人脸图片> <目标图片>"},
	"quota":    {"/quota", "/quota"},
	"jobs":     {"/jobs", "/jobs"},
	"cancel":   {"/cancel <job id>", "/cancel <任务编号>"},
	"models":   {"/models", "/models"},
	"help":     {"/help", "/help"},
	"start":    {"/start", "/start"},
	"admin": {"/admin tier <user> <tier|default> · /admin quota <user> <n|default> · /admin ban|unban <user or chat> · /admin stats",
		"/admin tier <用户> <等级|default> · /admin quota <用户> <数量|default> · /admin ban|unban <用户或群> · /admin stats"},
}

// Usage returns the synopsis of command name in lang.
func Usage(name string, lang engine.Lang) string {
	u, ok := usage[name]
	if !ok {
		return ""
	}
	if lang == engine.ZH {
		return u[1]
	}
	return u[0]
}

// invalid builds the one-line reason plus usage error.
func invalid(name, en, zh string, args ...any) *engine.Error {
	e := engine.Errorf(engine.EINVALID, en, zh, args...)
	if u, ok := usage[name]; ok {
		e.EN += "\nUsage: " + u[0]
		e.ZH += "\n用法：" + u[1]
	}
	return e
}

// IsCommand reports whether text looks like a command (starts with a slash).
func IsCommand(text string) bool {
	return strings.HasPrefix(strings.TrimLeftFunc(text, unicode.IsSpace), "/")
}

// Parse parses one command line.
func Parse(line string) (*Command, error) {
	line = strings.TrimSpace(line)
	if !strings.HasPrefix(line, "/") {
		return nil, engine.Errorf(engine.EINVALID, "Commands start with a slash; try /help.", "命令以斜杠开头，试试 /help。")
	}
	toks, err := tokenize(line[1:])
	if err != nil {
		return nil, err
	}
	if len(toks) == 0 || toks[0] == "" {
		return nil, engine.Errorf(engine.EINVALID, "Empty command; try /help.", "空命令，试试 /help。")
	}
	c := &Command{Name: strings.ToLower(toks[0])}
	if at := strings.IndexByte(c.Name, '@'); at >= 0 {
		c.Name, c.Mention = c.Name[:at], c.Name[at+1:]
	}
	if _, ok := usage[c.Name]; !ok {
		return c, engine.Errorf(engine.EINVALID, "Unknown command /%s. Commands: %s.", "未知命令 /%s。可用命令：%s。", c.Name, "/"+strings.Join(Names, " /"))
	}
	if !c.IsJob() {
		for _, t := range toks[1:] {
			c.Args = append(c.Args, t)
		}
		return c, c.checkArgs()
	}
	c.Request = engine.Request{Kind: engine.Kind(c.Name), Seed: -1}
	var words []string
	for i := 1; i < len(toks); i++ {
		t := toks[i]
		name, value, hasValue, isFlag := splitFlag(t)
		if !isFlag {
			words = append(words, t)
			continue
		}
		if !hasValue {
			if i+1 >= len(toks) {
				return c, invalid(c.Name, "--%s needs a value.", "--%s 需要一个值。", name)
			}
			i++
			value = toks[i]
		}
		if err := c.setFlag(name, value); err != nil {
			return c, err
		}
	}
	switch engine.Kind(c.Name) {
	case engine.KindDraw:
		c.Request.Prompt = strings.Join(words, " ")
		if c.Request.Prompt == "" {
			return c, invalid(c.Name, "Please describe the picture.", "请描述要画的内容。")
		}
	case engine.KindAnime, engine.KindUpscale:
		if len(words) > 1 {
			return c, invalid(c.Name, "/%s takes one image.", "/%s 只接受一张图片。", c.Name)
		}
		c.Images = words
	case engine.KindSwapface:
		if len(words) > 2 {
			return c, invalid(c.Name, "/swapface takes two images: the face, then the target.", "/swapface 接受两张图片：先人脸，后目标图。")
		}
		c.Images = words
	}
	return c, nil
}

func (c *Command) checkArgs() error {
	switch c.Name {
	case "cancel":
		if len(c.Args) != 1 {
			return invalid(c.Name, "Which job? Give its id.", "要取消哪个任务？请给出任务编号。")
		}
	case "admin":
		want := map[string]int{"tier": 3, "quota": 3, "ban": 2, "unban": 2, "stats": 1}
		if len(c.Args) == 0 || want[strings.ToLower(c.Args[0])] != len(c.Args) {
			return invalid(c.Name, "Which admin command?", "哪个管理命令？")
		}
		c.Args[0] = strings.ToLower(c.Args[0])
	case "quota", "jobs", "help", "start", "models":
		// Extra words are harmless ("/help draw" shows everything).
	}
	return nil
}

// splitFlag recognises --name, --name=value, and the em dash a phone keyboard
// makes of "--".
func splitFlag(t string) (name, value string, hasValue, ok bool) {
	switch {
	case strings.HasPrefix(t, "--") && len(t) > 2:
		t = t[2:]
	case strings.HasPrefix(t, "—") && len(t) > len("—"):
		t = t[len("—"):]
	default:
		return "", "", false, false
	}
	if eq := strings.IndexByte(t, '='); eq >= 0 {
		return strings.ToLower(t[:eq]), t[eq+1:], true, true
	}
	return strings.ToLower(t), "", false, true
}

// flags lists which commands take which flags.
var flags = map[string][]string{
	"draw":    {"size", "steps", "seed", "neg", "negative", "model", "lora", "sampler", "cfg", "guidance", "n", "image"},
	"anime":   {"style"},
	"upscale": {"scale"},
}

func (c *Command) setFlag(name, value string) error {
	known := false
	for _, f := range flags[c.Name] {
		known = known || f == name
	}
	if !known {
		return invalid(c.Name, "Unknown option --%s for /%s.", "/%[2]s 没有选项 --%[1]s。", name, c.Name)
	}
	r := &c.Request
	num := func(min, max int) (int, error) {
		n, err := strconv.Atoi(value)
		if err != nil || n < min || n > max {
			return 0, invalid(c.Name, "--%s must be a whole number from %d to %d, not %q.", "--%s 必须是 %d 到 %d 之间的整数，而不是 %q。", name, min, max, value)
		}
		return n, nil
	}
	var err error
	switch name {
	case "size":
		r.Width, r.Height, err = parseSize(value)
		if err != nil {
			return invalid(c.Name, "--size takes WIDTHxHEIGHT, like 768x512, not %q.", "--size 的格式是 宽x高，例如 768x512，而不是 %q。", value)
		}
	case "steps":
		r.Steps, err = num(1, 1000)
	case "n":
		r.N, err = num(1, 100)
	case "scale":
		r.Scale, err = num(1, 16)
	case "seed":
		var n int64
		n, err = strconv.ParseInt(value, 10, 64)
		if err != nil || n < -1 || n > 1<<32-1 {
			return invalid(c.Name, "--seed must be -1 (random) or a whole number from 0 to 4294967295, not %q.", "--seed 必须是 -1（随机）或 0 到 4294967295 之间的整数，而不是 %q。", value)
		}
		r.Seed = n
	case "cfg", "guidance":
		r.Guidance, err = strconv.ParseFloat(value, 64)
		if err != nil || r.Guidance <= 0 {
			return invalid(c.Name, "--%s must be a number, like 7.5, not %q.", "--%s 必须是数字，例如 7.5，而不是 %q。", name, value)
		}
	case "neg", "negative":
		r.Negative = value
	case "model":
		r.Model = value
	case "lora":
		r.LoRA = value
	case "sampler":
		r.Sampler = value
	case "style":
		r.Style = strings.ToLower(value)
	case "image":
		c.Images = append(c.Images, value)
	}
	return err
}

// parseSize reads "768x512", "768×512", "768*512" or "768X512".
func parseSize(s string) (int, int, error) {
	s = strings.NewReplacer("×", "x", "*", "x", "X", "x").Replace(s)
	ws, hs, ok := strings.Cut(s, "x")
	if !ok {
		return 0, 0, fmt.Errorf("no x")
	}
	w, err1 := strconv.Atoi(ws)
	h, err2 := strconv.Atoi(hs)
	if err1 != nil || err2 != nil || w <= 0 || h <= 0 {
		return 0, 0, fmt.Errorf("bad size")
	}
	return w, h, nil
}

// tokenize splits on spaces, keeping quoted strings ("...", '...', “...”, 「...」) whole.
func tokenize(s string) ([]string, error) {
	closers := map[rune]rune{'"': '"', '\'': '\'', '“': '”', '「': '」', '”': '”'}
	var (
		toks   []string
		cur    strings.Builder
		inTok  bool
		closer rune
	)
	for _, r := range s {
		switch {
		case closer != 0:
			if r == closer {
				closer = 0
			} else {
				cur.WriteRune(r)
			}
		case closers[r] != 0 && (!inTok || strings.HasSuffix(cur.String(), "=")):
			closer = closers[r]
			inTok = true
		case unicode.IsSpace(r):
			if inTok {
				toks = append(toks, cur.String())
				cur.Reset()
				inTok = false
			}
		default:
			cur.WriteRune(r)
			inTok = true
		}
	}
	if closer != 0 {
		return nil, engine.Errorf(engine.EINVALID, "A quote is not closed.", "引号没有闭合。")
	}
	if inTok {
		toks = append(toks, cur.String())
	}
	return toks, nil
}
