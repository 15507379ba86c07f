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
	"unicode/utf8"

	"github.com/picbot/picbot/engine"
	"golang.org/x/text/width"
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
	// Preset is /draw's --preset: a configured set of parameters.
	Preset string
	// Control and Mask are the /draw --control and --mask image references;
	// ControlAttached and MaskAttached say the flag came without one: the
	// image is attached to the message (a photo's caption, a reply to one).
	// Request.Control is set with --control; its Input is the caller's to fill.
	Control, Mask                 string
	ControlAttached, MaskAttached bool
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
var Names = []string{"draw", "anime", "upscale", "swapface", "again", "vary", "quota", "jobs", "show", "cancel", "models", "settings", "help", "start", "admin"}

// usage is each command's synopsis.
var usage = map[string][2]string{
	"draw": {"/draw <prompt> [--preset NAME] [--size WxH] [--steps N] [--seed N] [--neg TEXT] [--model NAME] [--lora NAME[:W]]... [--sampler NAME] [--cfg N] [--n N] [--image IMAGE] [--strength 0..1] [--mask IMAGE] [--control [IMAGE]] [--control-type canny|depth|openpose|lineart|mlsd|normal|scribble|seg|inpaint|qrcode|brightness] [--control-weight 0..2] [--control-start 0..1] [--control-end 0..1] [--hires 1.5] [--hires-steps N] [--hires-upscaler NAME] [--vae NAME] [--embedding NAME]... [--clip-skip N] [--restore-faces] [--face-fix] [--tile]",
		"/draw <提示词> [--preset 预设] [--size 宽x高] [--steps 步数] [--seed 种子] [--neg 反向提示词] [--model 模型] [--lora LoRA[:权重]]... [--sampler 采样器] [--cfg 引导系数] [--n 张数] [--image 参考图] [--strength 0..1] [--mask 蒙版图] [--control [控制图]] [--control-type canny|depth|openpose|lineart|mlsd|normal|scribble|seg|inpaint|qrcode|brightness] [--control-weight 0..2] [--control-start 0..1] [--control-end 0..1] [--hires 1.5] [--hires-steps 步数] [--hires-upscaler 放大器] [--vae VAE] [--embedding 名称]... [--clip-skip N] [--restore-faces] [--face-fix] [--tile]"},
	"anime":    {"/anime <image> [--style NAME]", "/anime <图片> [--style 风格]"},
	"upscale":  {"/upscale <image or job id> [--scale N] [--size WxH] [--upscaler NAME] [--face-restore gfpgan|codeformer [0..1]] [--anime]", "/upscale <图片或任务编号> [--scale 倍数] [--size 宽x高] [--upscaler 放大器] [--face-restore gfpgan|codeformer [0..1]] [--anime]"},
	"swapface": {"/swapface <face image> <target image>", "/swapface <人脸图片> <目标图片>"},
	"quota":    {"/quota", "/quota"},
	"jobs":     {"/jobs", "/jobs"},
	"show":     {"/show <job id>", "/show <任务编号>"},
	"settings": {"/settings [size WxH|default] [preset NAME|none] [nsfw on|off|default]", "/settings [size 宽x高|default] [preset 预设|none] [nsfw on|off|default]"},
	"cancel":   {"/cancel <job id>", "/cancel <任务编号>"},
	"models":   {"/models", "/models"},
	"help":     {"/help", "/help"},
	"start":    {"/start", "/start"},
	"again":    {"/again <job id>", "/again <任务编号>"},
	"vary":     {"/vary <job id>", "/vary <任务编号>"},
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

// IsCommand reports whether text looks like a command: it starts with a
// slash, or the full-width solidus a Chinese input method types (／).
func IsCommand(text string) bool {
	t := strings.TrimLeftFunc(text, unicode.IsSpace)
	return strings.HasPrefix(t, "/") || strings.HasPrefix(t, "／")
}

// Parse parses one command line, with the engine's default limits in its messages.
func Parse(line string) (*Command, error) { return ParseLimits(line, engine.DefaultLimits()) }

// ParseLimits parses one command line. lim is what the engine will allow:
// the parser refuses what can never be right (a step count of 0, a size
// that is not WxH) and names lim's ranges; upper bounds are the engine's to check.
func ParseLimits(line string, lim engine.Limits) (*Command, error) {
	line = strings.TrimSpace(line)
	if strings.HasPrefix(line, "／") {
		line = "/" + line[len("／"):]
	}
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
	c := &Command{Name: strings.ToLower(width.Fold.String(toks[0]))}
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
			if f, ok := singleDash(t); ok && c.takes(f) {
				return c, invalid(c.Name, "%q has one dash: did you mean --%s?", "%q 只有一个横线：是不是想写 --%s？", t, f)
			}
			words = append(words, t)
			continue
		}
		switch {
		case hasValue:
		case boolFlags[name] && c.takes(name):
			value = "true"
		case imageFlags[name] && c.takes(name):
			// The image may be attached instead: a value only if the next
			// word is an image reference.
			if i+1 < len(toks) && looksLikeImage(toks[i+1]) {
				i++
				value = toks[i]
			}
		default:
			if i+1 >= len(toks) {
				return c, invalid(c.Name, "--%s needs a value.", "--%s 需要一个值。", name)
			}
			i++
			value = toks[i]
		}
		if err := c.setFlag(name, value, lim); err != nil {
			return c, err
		}
		if name == "face-restore" && i+1 < len(toks) {
			// An optional strength after the model: --face-restore codeformer 0.7.
			if f, err := strconv.ParseFloat(width.Fold.String(toks[i+1]), 64); err == nil {
				c.Request.FaceRestoreStrength = f
				i++
			}
		}
	}
	if c.Request.Control != nil && c.Control == "" && !c.ControlAttached {
		return c, invalid(c.Name, "--control-type, --control-weight, --control-start and --control-end go with --control <image>.",
			"--control-type、--control-weight、--control-start 和 --control-end 需要与 --control <图片> 一起使用。")
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
	case "show":
		if len(c.Args) != 1 {
			return invalid(c.Name, "Which job? Give its id.", "哪个任务？请给出任务编号。")
		}
	case "settings":
		if len(c.Args) == 1 {
			return invalid(c.Name, "Give a value: /settings %s <value>.", "请给出值：/settings %s <值>。", c.Args[0])
		}
	case "again", "vary":
		if len(c.Args) != 1 {
			return invalid(c.Name, "Which job? Give its id.", "哪个任务？请给出任务编号。")
		}
	case "quota", "jobs", "help", "start", "models":
		// Extra words are harmless ("/help draw" shows everything).
	}
	return nil
}

// dashes are what people type for "-": the ASCII hyphen-minus, and what
// phones and Chinese input methods make of it (en and em dashes, the
// full-width and small hyphen-minus, Unicode hyphens and minus).
const dashes = "-‐‑‒–—―−﹣－"

// flagName folds a flag's name as typed (full-width letters, any case) to its ASCII form.
func flagName(s string) string { return strings.ToLower(width.Fold.String(s)) }

// splitFlag recognises --name and --name=value, and what keyboards make of
// "--": an em or en dash (—size), two of them (——size, what a Chinese input
// method types), full-width hyphens (－－size). One ASCII hyphen is not a
// flag (see singleDash), nor is a dash before a digit.
func splitFlag(t string) (name, value string, hasValue, ok bool) {
	rest := strings.TrimLeft(t, dashes)
	lead := t[:len(t)-len(rest)]
	n := len([]rune(lead))
	switch {
	case rest == "" || n == 0 || n > 2:
		return "", "", false, false
	case lead == "-":
		return "", "", false, false
	}
	if r := []rune(width.Fold.String(rest))[0]; !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
		return "", "", false, false
	}
	if eq := strings.IndexAny(rest, "=＝"); eq >= 0 {
		_, size := utf8.DecodeRuneInString(rest[eq:])
		return flagName(rest[:eq]), rest[eq+size:], true, true
	}
	return flagName(rest), "", false, true
}

// singleDash reports the flag name in "-size" (one ASCII hyphen, then letters).
func singleDash(t string) (string, bool) {
	if !strings.HasPrefix(t, "-") || strings.HasPrefix(t, "--") {
		return "", false
	}
	name, _, _ := strings.Cut(t[1:], "=")
	name = flagName(name)
	if name == "" {
		return "", false
	}
	for _, r := range name {
		if r < 'a' || r > 'z' {
			return "", false
		}
	}
	return name, true
}

// takes reports whether the command has flag name.
func (c *Command) takes(name string) bool {
	for _, f := range flags[c.Name] {
		if f == name {
			return true
		}
	}
	return false
}

// flags lists which commands take which flags.
var flags = map[string][]string{
	"draw": {"preset", "size", "steps", "seed", "neg", "negative", "model", "lora", "sampler", "cfg", "guidance", "n", "image",
		"strength", "mask", "control", "control-type", "control-weight", "control-start", "control-end",
		"hires", "hires-steps", "hires-upscaler", "vae", "embedding", "clip-skip", "restore-faces", "face-fix", "tile"},
	"anime":   {"style"},
	"upscale": {"scale", "size", "upscaler", "face-restore", "anime"},
}

// boolFlags take no value; imageFlags may take none (the image is attached).
var (
	boolFlags  = map[string]bool{"restore-faces": true, "face-fix": true, "tile": true, "anime": true}
	imageFlags = map[string]bool{"control": true, "mask": true}
)

// looksLikeImage reports whether a word names an image (a link, or a file
// with an image's extension) rather than being part of a prompt.
func looksLikeImage(t string) bool {
	l := strings.ToLower(t)
	if strings.HasPrefix(l, "http://") || strings.HasPrefix(l, "https://") {
		return true
	}
	for _, ext := range []string{".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp"} {
		if strings.HasSuffix(l, ext) {
			return true
		}
	}
	return false
}

func (c *Command) setFlag(name, value string, lim engine.Limits) error {
	if !c.takes(name) {
		return invalid(c.Name, "Unknown option --%s for /%s.", "/%[2]s 没有选项 --%[1]s。", name, c.Name)
	}
	r := &c.Request
	typed := value
	switch name {
	case "neg", "negative", "image", "control", "mask":
	default:
		// Numbers and names typed on a Chinese keyboard: full-width digits,
		// letters and signs become ASCII.
		value = width.Fold.String(value)
		if r, size := utf8.DecodeRuneInString(value); r != '-' && strings.ContainsRune(dashes, r) {
			value = "-" + value[size:] // "—1" for a random seed
		}
	}
	frac := func(min, max float64) (float64, error) {
		f, err := strconv.ParseFloat(value, 64)
		if err != nil || !(f >= min && f <= max) {
			return 0, invalid(c.Name, "--%s must be a number from %g to %g, not %q.", "--%s 必须是 %g 到 %g 之间的数，而不是 %q。", name, min, max, typed)
		}
		return f, nil
	}
	control := func() *engine.Control {
		if r.Control == nil {
			r.Control = &engine.Control{}
		}
		return r.Control
	}
	hires := func() *engine.Hires {
		if r.Hires == nil {
			r.Hires = &engine.Hires{}
		}
		return r.Hires
	}
	num := func(min, max int) (int, error) {
		n, err := strconv.Atoi(value)
		if err != nil || n < min {
			return 0, invalid(c.Name, "--%s must be a whole number from %d to %d, not %q.", "--%s 必须是 %d 到 %d 之间的整数，而不是 %q。", name, min, max, typed)
		}
		return n, nil
	}
	var err error
	switch name {
	case "size":
		r.Width, r.Height, err = parseSize(value)
		if c.Name == "upscale" {
			// A target size: the vendor resizes to it.
			r.TargetWidth, r.TargetHeight, r.Width, r.Height = r.Width, r.Height, 0, 0
		}
		if err != nil {
			return invalid(c.Name, "--size takes WIDTHxHEIGHT, like 768x512 (each side from %d to %d), not %q.", "--size 的格式是 宽x高，例如 768x512（每边 %d 到 %d），而不是 %q。", lim.MinSide, lim.MaxSide, typed)
		}
	case "steps":
		r.Steps, err = num(1, lim.MaxSteps)
	case "n":
		r.N, err = num(1, lim.MaxImages)
	case "scale":
		r.Scale, err = num(1, lim.MaxScale)
	case "seed":
		var n int64
		n, err = strconv.ParseInt(value, 10, 64)
		if err != nil || n < -1 || n > 1<<32-1 {
			return invalid(c.Name, "--seed must be -1 (random) or a whole number from 0 to 4294967295, not %q.", "--seed 必须是 -1（随机）或 0 到 4294967295 之间的整数，而不是 %q。", typed)
		}
		r.Seed = n
	case "cfg", "guidance":
		r.Guidance, err = strconv.ParseFloat(value, 64)
		if err != nil || !(r.Guidance >= 1) {
			return invalid(c.Name, "--%s must be a number from 1 to %g, like 7.5, not %q.", "--%s 必须是 1 到 %g 之间的数，例如 7.5，而不是 %q。", name, lim.MaxGuidance, typed)
		}
	case "neg", "negative":
		r.Negative = value
	case "model":
		r.Model = value
	case "lora":
		if r.LoRA == "" {
			r.LoRA = value
		} else {
			r.ExtraLoRAs = append(r.ExtraLoRAs, value)
		}
	case "vae":
		r.VAE = value
	case "embedding":
		r.Embeddings = append(r.Embeddings, value)
	case "clip-skip":
		r.ClipSkip, err = num(1, 12)
	case "strength":
		r.Strength, err = frac(0.01, 1)
	case "restore-faces", "face-fix", "tile", "anime":
		var on bool
		if on, err = strconv.ParseBool(strings.ToLower(value)); err != nil {
			return invalid(c.Name, "--%s takes no value (or true/false), not %q.", "--%s 不需要值（或 true/false），而不是 %q。", name, typed)
		}
		*map[string]*bool{"restore-faces": &r.RestoreFaces, "face-fix": &r.FaceFix, "tile": &r.Tile, "anime": &r.AnimeModel}[name] = on
	case "hires":
		hires().Scale, err = frac(1, 4)
	case "hires-steps":
		hires().Steps, err = num(1, lim.MaxSteps)
	case "hires-upscaler":
		hires().Upscaler = value
	case "control":
		control()
		c.Control, c.ControlAttached = value, value == ""
	case "mask":
		c.Mask, c.MaskAttached = value, value == ""
	case "control-type":
		control().Type = strings.ToLower(value)
	case "control-weight":
		control().Weight, err = frac(0, 2)
	case "control-start":
		control().Start, err = frac(0, 1)
	case "control-end":
		control().End, err = frac(0, 1)
	case "upscaler":
		r.Upscaler = value
	case "face-restore":
		name, strength, _ := strings.Cut(strings.ToLower(value), ":")
		if name != "gfpgan" && name != "codeformer" {
			return invalid(c.Name, "--face-restore takes gfpgan or codeformer, then optionally a strength from 0 to 1, not %q.", "--face-restore 可选 gfpgan 或 codeformer，可再加 0 到 1 的强度，而不是 %q。", typed)
		}
		r.FaceRestore = name
		if strength != "" {
			value = strength
			r.FaceRestoreStrength, err = frac(0, 1)
		}
	case "sampler":
		r.Sampler = value
	case "preset":
		c.Preset = value
	case "style":
		r.Style = strings.ToLower(value)
	case "image":
		c.Images = append(c.Images, value)
	}
	return err
}

// ParseSize reads a size as people type it: "768x512", "768×512",
// "768*512", "768X512", and the full-width digits and "ｘ" of a Chinese
// keyboard ("７６８ｘ５１２"). ok is false for anything else.
func ParseSize(s string) (w, h int, ok bool) {
	w, h, err := parseSize(width.Fold.String(strings.TrimSpace(s)))
	return w, h, err == nil
}

// parseSize reads "768x512", "768×512", "768*512" or "768X512".
func parseSize(s string) (int, int, error) {
	s = strings.NewReplacer("×", "x", "*", "x", "X", "x", "✕", "x", "乘", "x").Replace(s)
	ws, hs, ok := strings.Cut(s, "x")
	if !ok {
		return 0, 0, fmt.Errorf("no x")
	}
	w, err1 := strconv.Atoi(strings.TrimSpace(ws))
	h, err2 := strconv.Atoi(strings.TrimSpace(hs))
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
		if isControl(r) {
			if unicode.IsSpace(r) && closer == 0 {
				r = ' ' // a tab or newline still separates words
			} else {
				continue
			}
		}
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

// StripControls removes from s what a typed command loses: the characters
// isControl reports, tabs and newlines becoming spaces. Platforms whose
// options do not go through Parse (Discord's slash commands) use it on
// their free text.
func StripControls(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case !isControl(r):
			return r
		case unicode.IsSpace(r):
			return ' '
		}
		return -1
	}, s)
}

// isControl reports the characters stripped from a command: C0 and C1
// controls (terminal escapes, NUL) and the bidirectional overrides that
// make text read differently from what it is. Tabs and newlines separate words.
func isControl(r rune) bool {
	return unicode.Is(unicode.Cc, r) || r >= 0x202A && r <= 0x202E || r >= 0x2066 && r <= 0x2069
}
