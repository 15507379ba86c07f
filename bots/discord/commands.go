package discord

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"

	"github.com/bwmarrin/discordgo"
	"github.com/picbot/picbot/bots/command"
	"github.com/picbot/picbot/engine"
)

// words is a name or description in English, simplified and traditional Chinese.
type words struct{ en, cn, tw string }

func (w words) loc() map[discordgo.Locale]string {
	return map[discordgo.Locale]string{discordgo.ChineseCN: w.cn, discordgo.ChineseTW: w.tw}
}

func (w words) locPtr() *map[discordgo.Locale]string {
	m := w.loc()
	return &m
}

// option builds a command option with its localized name and description.
func option(t discordgo.ApplicationCommandOptionType, name, desc words, required bool) *discordgo.ApplicationCommandOption {
	return &discordgo.ApplicationCommandOption{
		Type: t, Name: name.en, NameLocalizations: name.loc(),
		Description: desc.en, DescriptionLocalizations: desc.loc(), Required: required,
	}
}

func between(o *discordgo.ApplicationCommandOption, lo, hi float64) *discordgo.ApplicationCommandOption {
	o.MinValue, o.MaxValue = &lo, hi
	return o
}

func autocomplete(o *discordgo.ApplicationCommandOption) *discordgo.ApplicationCommandOption {
	o.Autocomplete = true
	return o
}

func choices(o *discordgo.ApplicationCommandOption, cs ...*discordgo.ApplicationCommandOptionChoice) *discordgo.ApplicationCommandOption {
	o.Choices = cs
	return o
}

func choice(name words, value string) *discordgo.ApplicationCommandOptionChoice {
	return &discordgo.ApplicationCommandOptionChoice{Name: name.en, NameLocalizations: name.loc(), Value: value}
}

// sizes offered by /draw's size option; those outside the limits are left out.
var sizes = []struct {
	w, h int
	name words
}{
	{512, 512, words{"512×512 square", "512×512 方形", "512×512 方形"}},
	{768, 768, words{"768×768 square", "768×768 方形", "768×768 方形"}},
	{1024, 1024, words{"1024×1024 square", "1024×1024 方形", "1024×1024 方形"}},
	{768, 512, words{"768×512 landscape", "768×512 横向", "768×512 橫向"}},
	{512, 768, words{"512×768 portrait", "512×768 竖向", "512×768 豎向"}},
	{1024, 576, words{"1024×576 wide 16:9", "1024×576 宽屏 16:9", "1024×576 寬螢幕 16:9"}},
	{576, 1024, words{"576×1024 tall 9:16", "576×1024 竖屏 9:16", "576×1024 直式 9:16"}},
}

// samplers offered by /draw's sampler option.
var samplers = []string{"Euler a", "Euler", "DPM++ 2M Karras", "DPM++ SDE Karras", "DDIM", "UniPC"}

// styles offered by /anime.
var styles = []struct {
	value string
	name  words
}{
	{"anime", words{"anime", "动漫", "動漫"}},
	{"sketch", words{"sketch", "素描", "素描"}},
	{"pop", words{"pop art", "波普", "普普"}},
}

// Commands returns the slash commands, with their Chinese names and
// descriptions, and option bounds taken from lim.
func Commands(lim engine.Limits) []*discordgo.ApplicationCommand {
	str, num, integer, file := discordgo.ApplicationCommandOptionString, discordgo.ApplicationCommandOptionNumber,
		discordgo.ApplicationCommandOptionInteger, discordgo.ApplicationCommandOptionAttachment

	prompt := option(str, words{"prompt", "提示词", "提示詞"}, words{"What to draw", "要画的内容", "要畫的內容"}, true)
	prompt.MaxLength = min(max(lim.MaxPromptRunes, 1), 6000)
	size := option(str, words{"size", "尺寸", "尺寸"}, words{"Width × height", "宽 × 高", "寬 × 高"}, false)
	for _, s := range sizes {
		if s.w >= lim.MinSide && s.h >= lim.MinSide && s.w <= lim.MaxSide && s.h <= lim.MaxSide {
			size.Choices = append(size.Choices, choice(s.name, fmt.Sprintf("%dx%d", s.w, s.h)))
		}
	}
	sampler := option(str, words{"sampler", "采样器", "採樣器"}, words{"Sampling method", "采样方法", "採樣方法"}, false)
	for _, s := range samplers {
		sampler.Choices = append(sampler.Choices, choice(words{s, s, s}, s))
	}
	style := option(str, words{"style", "风格", "風格"}, words{"The look", "画风", "畫風"}, false)
	for _, s := range styles {
		style.Choices = append(style.Choices, choice(s.name, s.value))
	}

	draw := []*discordgo.ApplicationCommandOption{
		prompt,
		autocomplete(option(str, words{"negative", "反向提示词", "反向提示詞"}, words{"What to avoid", "不想要的内容", "不想要的內容"}, false)),
		autocomplete(option(str, words{"model", "模型", "模型"}, words{"Model (see /models)", "模型（见 /models）", "模型（見 /models）"}, false)),
		autocomplete(option(str, words{"lora", "lora", "lora"}, words{"LoRA style add-on", "LoRA 风格插件", "LoRA 風格外掛"}, false)),
		size,
		between(option(integer, words{"steps", "步数", "步數"}, words{"Sampling steps", "采样步数", "採樣步數"}, false), 1, float64(max(lim.MaxSteps, 1))),
		between(option(integer, words{"seed", "种子", "種子"}, words{"Seed, -1 for random", "随机种子，-1 为随机", "隨機種子，-1 為隨機"}, false), -1, 1<<32-1),
		between(option(num, words{"cfg", "引导系数", "引導係數"}, words{"Guidance scale", "提示词引导强度", "提示詞引導強度"}, false), 1, max(lim.MaxGuidance, 1)),
		sampler,
		between(option(integer, words{"count", "数量", "數量"}, words{"How many images", "生成几张", "生成幾張"}, false), 1, float64(max(lim.MaxImages, 1))),
		option(file, words{"image", "参考图", "參考圖"}, words{"A control image to start from", "参考图片", "參考圖片"}, false),
	}
	contexts := &[]discordgo.InteractionContextType{discordgo.InteractionContextGuild, discordgo.InteractionContextBotDM}
	cmd := func(name, desc words, opts ...*discordgo.ApplicationCommandOption) *discordgo.ApplicationCommand {
		if opts == nil {
			opts = []*discordgo.ApplicationCommandOption{}
		}
		return &discordgo.ApplicationCommand{
			Type: discordgo.ChatApplicationCommand, Name: name.en, NameLocalizations: name.locPtr(),
			Description: desc.en, DescriptionLocalizations: desc.locPtr(), Options: opts, Contexts: contexts,
		}
	}
	return []*discordgo.ApplicationCommand{
		cmd(words{"draw", "画图", "畫圖"}, words{"Make a picture from a description", "根据描述生成图片", "根據描述生成圖片"}, draw...),
		cmd(words{"anime", "动漫化", "動漫化"}, words{"Turn a portrait photo into anime", "把人像照片变成动漫风格", "把人像照片變成動漫風格"},
			option(file, words{"image", "图片", "圖片"}, words{"The photo", "照片", "照片"}, true), style),
		cmd(words{"upscale", "放大", "放大"}, words{"Enlarge an image", "放大图片", "放大圖片"},
			option(file, words{"image", "图片", "圖片"}, words{"The image", "要放大的图片", "要放大的圖片"}, true),
			between(option(integer, words{"scale", "倍数", "倍數"}, words{"How many times larger", "放大倍数", "放大倍數"}, false), 2, float64(max(lim.MaxScale, 2)))),
		cmd(words{"swapface", "换脸", "換臉"}, words{"Put a face onto another photo", "把人脸换到另一张照片上", "把人臉換到另一張照片上"},
			option(file, words{"face", "人脸", "人臉"}, words{"The face to use", "提供人脸的照片", "提供人臉的照片"}, true),
			option(file, words{"target", "目标", "目標"}, words{"The photo to put it on", "目标照片", "目標照片"}, true)),
		cmd(words{"quota", "额度", "額度"}, words{"What you have left today", "今日剩余额度", "今日剩餘額度"}),
		cmd(words{"jobs", "任务", "任務"}, words{"Your latest jobs", "最近的任务", "最近的任務"}),
		cmd(words{"queue", "排队", "排隊"}, words{"Who waits for the GPU", "GPU 排队情况", "GPU 排隊情況"}),
		cmd(words{"cancel", "取消", "取消"}, words{"Stop a job", "取消任务", "取消任務"},
			autocomplete(option(str, words{"job", "任务", "任務"}, words{"The job id", "任务编号", "任務編號"}, true))),
		cmd(words{"models", "模型", "模型"}, words{"The models you can use", "可用模型", "可用模型"}),
		adminCommand(cmd),
	}
}

// adminCommand is /admin, as subcommands. Discord shows it by default only
// to members who may manage the server, and not in DMs (there it would show
// to everyone); a server can widen that in its integration settings. The
// real gate is the bot's own admin list (quota.admins), checked on every use.
func adminCommand(cmd func(name, desc words, opts ...*discordgo.ApplicationCommandOption) *discordgo.ApplicationCommand) *discordgo.ApplicationCommand {
	str, sub := discordgo.ApplicationCommandOptionString, discordgo.ApplicationCommandOptionSubCommand
	user := func() *discordgo.ApplicationCommandOption {
		return option(str, words{"user", "用户", "使用者"}, words{"User id, or platform:id", "用户 ID，或 平台:ID", "使用者 ID，或 平台:ID"}, true)
	}
	who := func() *discordgo.ApplicationCommandOption {
		return option(str, words{"who", "对象", "對象"}, words{"User or chat id, or platform:id", "用户或群的 ID，或 平台:ID", "使用者或群組的 ID，或 平台:ID"}, true)
	}
	subcommand := func(name, desc words, opts ...*discordgo.ApplicationCommandOption) *discordgo.ApplicationCommandOption {
		o := option(sub, name, desc, false)
		o.Options = opts
		return o
	}
	c := cmd(words{"admin", "管理", "管理"}, words{"For the bot's admins", "管理员命令", "管理員命令"},
		subcommand(words{"stats", "统计", "統計"}, words{"Today's figures", "今日统计", "今日統計"}),
		subcommand(words{"tier", "等级", "等級"}, words{"Set a user's tier", "设置用户等级", "設定使用者等級"}, user(),
			option(str, words{"tier", "等级", "等級"}, words{"Tier name, or default", "等级名，或 default", "等級名，或 default"}, true)),
		subcommand(words{"quota", "额度", "額度"}, words{"Set a user's daily images", "设置用户每日张数", "設定使用者每日張數"}, user(),
			option(str, words{"limit", "数量", "數量"}, words{"Images a day, or default", "每日张数，或 default", "每日張數，或 default"}, true)),
		subcommand(words{"ban", "封禁", "封鎖"}, words{"Stop serving a user or chat", "停止为用户或群服务", "停止為使用者或群組服務"}, who()),
		subcommand(words{"unban", "解封", "解除封鎖"}, words{"Serve a user or chat again", "恢复为用户或群服务", "恢復為使用者或群組服務"}, who()),
	)
	managers, noDM := int64(discordgo.PermissionManageGuild), false
	c.DefaultMemberPermissions = &managers
	c.DMPermission = &noDM // deprecated for contexts, still read by older clients
	c.Contexts = &[]discordgo.InteractionContextType{discordgo.InteractionContextGuild}
	return c
}

// adminArgs are an /admin subcommand's words as the text grammar gives
// them: the subcommand, then its options in order.
var adminArgs = map[string][]string{
	"stats": nil, "tier": {"user", "tier"}, "quota": {"user", "limit"}, "ban": {"who"}, "unban": {"who"},
}

// options indexes a command's options by name.
type options struct {
	byName   map[string]*discordgo.ApplicationCommandInteractionDataOption
	files    []*discordgo.ApplicationCommandInteractionDataOption // attachment options, in order
	resolved *discordgo.ApplicationCommandInteractionDataResolved
}

// aliases map other names an option might be sent under to the registered one.
var aliases = map[string]string{
	"n": "count", "number": "count", "num": "count",
	"guidance": "cfg", "cfg_scale": "cfg",
	"neg": "negative", "negative_prompt": "negative",
	"id": "job", "job_id": "job",
	"control": "image", "control_image": "image", "reference": "image", "photo": "image", "picture": "image",
	"face_image": "face", "source": "face",
	"target_image": "target",
}

func newOptions(d discordgo.ApplicationCommandInteractionData) options {
	o := options{byName: make(map[string]*discordgo.ApplicationCommandInteractionDataOption), resolved: d.Resolved}
	for _, opt := range d.Options {
		if opt == nil {
			continue
		}
		name := strings.ToLower(opt.Name)
		if a, ok := aliases[name]; ok {
			name = a
		}
		if _, dup := o.byName[name]; !dup {
			o.byName[name] = opt
		}
		if opt.Type == discordgo.ApplicationCommandOptionAttachment {
			o.files = append(o.files, opt)
		}
	}
	return o
}

// str returns a text option. Its value does not go through the text
// grammar, so it loses here what a typed command loses there: controls and
// bidirectional overrides.
func (o options) str(name string) string {
	if opt, ok := o.byName[name]; ok {
		switch v := opt.Value.(type) {
		case string:
			return strings.TrimSpace(command.StripControls(v))
		case float64:
			return strconv.FormatFloat(v, 'f', -1, 64)
		}
	}
	return ""
}

// number returns a numeric option, and whether it was given.
func (o options) number(name string) (float64, bool, error) {
	opt, ok := o.byName[name]
	if !ok {
		return 0, false, nil
	}
	switch v := opt.Value.(type) {
	case float64:
		return v, true, nil
	case string: // tolerated: some clients send numbers as strings
		f, err := strconv.ParseFloat(v, 64)
		if err == nil {
			return f, true, nil
		}
	}
	return 0, false, engine.Errorf(engine.EINVALID, "Option %s must be a number.", "选项 %s 必须是数字。", name)
}

func (o options) integer(name string) (int64, bool, error) {
	f, ok, err := o.number(name)
	if err != nil || !ok {
		return 0, ok, err
	}
	if f != float64(int64(f)) {
		return 0, false, engine.Errorf(engine.EINVALID, "Option %s must be a whole number.", "选项 %s 必须是整数。", name)
	}
	return int64(f), true, nil
}

// attachment returns the attachment an option names, or nil.
func (o options) attachment(name string) (*discordgo.MessageAttachment, error) {
	id := o.str(name)
	if id == "" {
		return nil, nil
	}
	if o.resolved != nil {
		if a, ok := o.resolved.Attachments[id]; ok && a != nil {
			return a, nil
		}
	}
	return nil, engine.Errorf(engine.EINVALID, "The %s attachment is missing; please attach it again.", "附件 %s 缺失，请重新上传。", name)
}

// parse turns a slash command's options into the command the chat service
// runs, and the attachments it names, in the order the request wants them.
func parse(d discordgo.ApplicationCommandInteractionData) (*command.Command, []*discordgo.MessageAttachment, error) {
	o := newOptions(d)
	c := &command.Command{Name: strings.ToLower(d.Name)}
	var names []string // attachment options, in order
	r := &c.Request
	switch engine.Kind(c.Name) {
	case engine.KindDraw:
		*r = engine.Request{Kind: engine.KindDraw, Seed: -1, Prompt: o.str("prompt"), Negative: o.str("negative"),
			Model: o.str("model"), LoRA: o.str("lora"), Sampler: o.str("sampler")}
		if s := o.str("size"); s != "" {
			w, h, ok := parseSize(s)
			if !ok {
				return nil, nil, engine.Errorf(engine.EINVALID, "Size %q is not WIDTHxHEIGHT.", "尺寸 %q 不是“宽x高”的格式。", s)
			}
			r.Width, r.Height = w, h
		}
		for _, f := range []struct {
			name string
			set  func(int64)
		}{
			{"steps", func(n int64) { r.Steps = int(n) }},
			{"seed", func(n int64) { r.Seed = n }},
			{"count", func(n int64) { r.N = int(n) }},
		} {
			n, ok, err := o.integer(f.name)
			if err != nil {
				return nil, nil, err
			}
			if ok {
				f.set(n)
			}
		}
		cfg, ok, err := o.number("cfg")
		if err != nil {
			return nil, nil, err
		}
		if ok {
			r.Guidance = cfg
		}
		if r.Prompt == "" {
			return nil, nil, engine.Errorf(engine.EINVALID, "Please describe the picture.", "请描述要画的内容。")
		}
		names = []string{"image"}
	case engine.KindAnime:
		*r = engine.Request{Kind: engine.KindAnime, Seed: -1, Style: strings.ToLower(o.str("style"))}
		names = []string{"image"}
	case engine.KindUpscale:
		*r = engine.Request{Kind: engine.KindUpscale, Seed: -1}
		n, ok, err := o.integer("scale")
		if err != nil {
			return nil, nil, err
		}
		if ok {
			r.Scale = int(n)
		}
		names = []string{"image"}
	case engine.KindSwapface:
		*r = engine.Request{Kind: engine.KindSwapface, Seed: -1}
		names = []string{"face", "target"}
	case "cancel":
		id := o.str("job")
		if id == "" {
			return nil, nil, engine.Errorf(engine.EINVALID, "Which job? Give its id.", "要取消哪个任务？请给出任务编号。")
		}
		c.Args = []string{id}
	case "admin":
		args, err := admin(d.Options)
		if err != nil {
			return nil, nil, err
		}
		c.Args = args
	case "quota", "jobs", "queue", "models", "help":
	default:
		return nil, nil, engine.Errorf(engine.EINVALID, "Unknown command /%s.", "未知命令 /%s。", d.Name)
	}
	// Attachments by name; ones under other names fill the gaps, in order.
	used := map[*discordgo.ApplicationCommandInteractionDataOption]bool{}
	for _, name := range names {
		if opt, ok := o.byName[name]; ok {
			used[opt] = true
		}
	}
	var spare []*discordgo.ApplicationCommandInteractionDataOption
	for _, opt := range o.files {
		if !used[opt] {
			spare = append(spare, opt)
		}
	}
	var atts []*discordgo.MessageAttachment
	for _, name := range names {
		if _, ok := o.byName[name]; !ok && len(spare) > 0 {
			o.byName[name], spare = spare[0], spare[1:]
		}
		a, err := o.attachment(name)
		if err != nil {
			return nil, nil, err
		}
		if a != nil {
			atts = append(atts, a)
		}
	}
	return c, atts, nil
}

// parseSize reads a size as the text grammar does, full-width digits included.
func parseSize(s string) (int, int, bool) { return command.ParseSize(s) }

// admin reads /admin's subcommand into the words the chat service takes.
func admin(opts []*discordgo.ApplicationCommandInteractionDataOption) ([]string, error) {
	bad := engine.Errorf(engine.EINVALID, "Which admin command?", "哪个管理命令？")
	if len(opts) != 1 || opts[0] == nil || opts[0].Type != discordgo.ApplicationCommandOptionSubCommand {
		return nil, bad
	}
	sub := strings.ToLower(opts[0].Name)
	names, ok := adminArgs[sub]
	if !ok {
		return nil, bad
	}
	o := newOptions(discordgo.ApplicationCommandInteractionData{Options: opts[0].Options})
	args := []string{sub}
	for _, name := range names {
		v := o.str(name)
		if v == "" || strings.ContainsFunc(v, unicode.IsSpace) {
			return nil, engine.Errorf(engine.EINVALID, "/admin %s needs %s (one word).", "/admin %s 需要 %s（一个词）。", sub, name)
		}
		args = append(args, v)
	}
	return args, nil
}
