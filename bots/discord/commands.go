package discord

import (
	"fmt"
	"slices"
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

// controlTypes offered by /draw's control_type option (the text grammar's --control-type).
var controlTypes = []string{"canny", "depth", "openpose", "lineart", "mlsd", "normal", "scribble", "seg", "inpaint", "qrcode", "brightness"}

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
func Commands(lim engine.Limits) []*discordgo.ApplicationCommand { return CommandsFor(lim, nil) }

// CommandsFor is Commands with the samplers and styles the vendors on each
// command's route accept (choices, when not nil, says so per kind), so a
// choice shown is a choice some vendor can honour. Discord takes at most
// 25 choices an option; a route that offers none keeps the option free.
func CommandsFor(lim engine.Limits, choices func(engine.Kind) []engine.VendorChoices) []*discordgo.ApplicationCommand {
	samplers, styles := samplers, styles
	if choices != nil {
		// A route whose vendors list none keeps the usual names: they say
		// nothing against any.
		defSamplers, defStyles := samplers, styles
		samplers, styles = nil, nil
		seen := map[string]bool{}
		for _, c := range choices(engine.KindDraw) {
			for _, s := range c.Samplers {
				if !seen[s] && len(samplers) < 25 {
					seen[s] = true
					samplers = append(samplers, s)
				}
			}
		}
		for _, c := range choices(engine.KindAnime) {
			for _, s := range c.Styles {
				if !seen["style:"+s] && len(styles) < 25 {
					seen["style:"+s] = true
					styles = append(styles, struct {
						value string
						name  words
					}{s, words{s, s, s}})
				}
			}
		}
		if len(samplers) == 0 {
			samplers = defSamplers
		}
		if len(styles) == 0 {
			styles = defStyles
		}
	}
	str, num, integer, file := discordgo.ApplicationCommandOptionString, discordgo.ApplicationCommandOptionNumber,
		discordgo.ApplicationCommandOptionInteger, discordgo.ApplicationCommandOptionAttachment
	boolean := discordgo.ApplicationCommandOptionBoolean
	controlType := option(str, words{"control_type", "控制类型", "控制類型"}, words{"What the control image gives", "控制图提供的信息", "控制圖提供的資訊"}, false)
	for _, t := range controlTypes {
		controlType.Choices = append(controlType.Choices, choice(words{t, t, t}, t))
	}
	faceRestore := option(str, words{"face_restore", "人脸修复", "人臉修復"}, words{"Restore faces while enlarging", "放大时修复人脸", "放大時修復人臉"}, false)
	for _, t := range []string{"gfpgan", "codeformer"} {
		faceRestore.Choices = append(faceRestore.Choices, choice(words{t, t, t}, t))
	}

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
		option(file, words{"image", "参考图", "參考圖"}, words{"A picture to start from (image to image)", "作为起点的参考图（图生图）", "作為起點的參考圖（圖生圖）"}, false),
		between(option(num, words{"strength", "重绘幅度", "重繪幅度"}, words{"How far from the image to go, 0 to 1", "偏离参考图的程度，0 到 1", "偏離參考圖的程度，0 到 1"}, false), 0.01, 1),
		option(file, words{"mask", "蒙版", "遮罩"}, words{"Inpainting: white parts of the image are repainted", "局部重绘：白色部分将被重画", "局部重繪：白色部分將被重畫"}, false),
		option(file, words{"control", "控制图", "控制圖"}, words{"ControlNet: an image whose edges, pose or depth to follow", "ControlNet：按其边缘、姿势或深度构图的图片", "ControlNet：依其邊緣、姿勢或深度構圖的圖片"}, false),
		controlType,
		between(option(num, words{"control_weight", "控制权重", "控制權重"}, words{"How strongly to follow the control image, 0 to 2", "控制图的影响强度，0 到 2", "控制圖的影響強度，0 到 2"}, false), 0, 2),
		between(option(num, words{"hires", "高清修复", "高清修復"}, words{"Hires fix: enlarge by this factor, e.g. 1.5", "高清修复放大倍数，例如 1.5", "高清修復放大倍數，例如 1.5"}, false), 1, 4),
		autocomplete(option(str, words{"vae", "vae", "vae"}, words{"VAE (see /models)", "VAE（见 /models）", "VAE（見 /models）"}, false)),
		autocomplete(option(str, words{"embedding", "embedding", "embedding"}, words{"Negative embedding (see /models)", "负向 embedding（见 /models）", "負向 embedding（見 /models）"}, false)),
		between(option(integer, words{"clip_skip", "clip跳过层数", "clip跳過層數"}, words{"CLIP layers to skip", "CLIP 跳过层数", "CLIP 跳過層數"}, false), 1, 12),
		option(boolean, words{"restore_faces", "面部修复", "面部修復"}, words{"Restore faces", "修复面部缺陷", "修復面部缺陷"}, false),
		option(boolean, words{"face_fix", "面部精修", "面部精修"}, words{"Detail faces (ADetailer)", "面部细节修复（ADetailer）", "面部細節修復（ADetailer）"}, false),
		option(boolean, words{"tile", "无缝平铺", "無縫平鋪"}, words{"A seamless, tileable picture", "可无缝平铺的图片", "可無縫平鋪的圖片"}, false),
		presetOption(),
	}
	// Guild and user installs, in guilds, the bot's DMs and private channels (places.go).
	contexts := everywhere()
	cmd := func(name, desc words, opts ...*discordgo.ApplicationCommandOption) *discordgo.ApplicationCommand {
		if opts == nil {
			opts = []*discordgo.ApplicationCommandOption{}
		}
		return &discordgo.ApplicationCommand{
			Type: discordgo.ChatApplicationCommand, Name: name.en, NameLocalizations: name.locPtr(),
			Description: desc.en, DescriptionLocalizations: desc.locPtr(), Options: opts, Contexts: contexts,
			IntegrationTypes: installs(),
		}
	}
	return withThreadOption(append([]*discordgo.ApplicationCommand{
		cmd(words{"draw", "画图", "畫圖"}, words{"Make a picture from a description", "根据描述生成图片", "根據描述生成圖片"}, draw...),
		cmd(words{"anime", "动漫化", "動漫化"}, words{"Turn a portrait photo into anime", "把人像照片变成动漫风格", "把人像照片變成動漫風格"},
			option(file, words{"image", "图片", "圖片"}, words{"The photo", "照片", "照片"}, true), style),
		cmd(words{"upscale", "放大", "放大"}, words{"Enlarge an image", "放大图片", "放大圖片"},
			option(file, words{"image", "图片", "圖片"}, words{"The image", "要放大的图片", "要放大的圖片"}, true),
			between(option(integer, words{"scale", "倍数", "倍數"}, words{"How many times larger", "放大倍数", "放大倍數"}, false), 1, float64(max(lim.MaxScale, 1))),
			option(str, words{"size", "尺寸", "尺寸"}, words{"A target size instead, WIDTHxHEIGHT", "改为目标尺寸，宽x高", "改為目標尺寸，寬x高"}, false),
			option(str, words{"upscaler", "放大器", "放大器"}, words{"Upscaler name", "放大器名称", "放大器名稱"}, false),
			faceRestore,
			between(option(num, words{"face_strength", "修复强度", "修復強度"}, words{"Face restoration strength, 0 to 1", "人脸修复强度，0 到 1", "人臉修復強度，0 到 1"}, false), 0, 1),
			option(boolean, words{"anime", "动漫模型", "動漫模型"}, words{"Use the model for drawings", "使用动漫图片的模型", "使用動漫圖片的模型"}, false)),
		cmd(words{"swapface", "换脸", "換臉"}, words{"Put a face onto another photo", "把人脸换到另一张照片上", "把人臉換到另一張照片上"},
			option(file, words{"face", "人脸", "人臉"}, words{"The face to use", "提供人脸的照片", "提供人臉的照片"}, true),
			option(file, words{"target", "目标", "目標"}, words{"The photo to put it on", "目标照片", "目標照片"}, true)),
		cmd(words{"quota", "额度", "額度"}, words{"What you have left today", "今日剩余额度", "今日剩餘額度"}),
		cmd(words{"jobs", "任务", "任務"}, words{"Your latest jobs", "最近的任务", "最近的任務"}),
		cmd(words{"cancel", "取消", "取消"}, words{"Stop a job", "取消任务", "取消任務"},
			autocomplete(option(str, words{"job", "任务", "任務"}, words{"The job id", "任务编号", "任務編號"}, true))),
		cmd(words{"models", "模型", "模型"}, words{"The models you can use", "可用模型", "可用模型"}),
		showCommand(cmd),
		adminCommand(cmd),
	}, append(menuCommands(), opsCommands(cmd)...)...))
}

// withThreadOption gives the job commands their thread option (places.go).
func withThreadOption(cmds []*discordgo.ApplicationCommand) []*discordgo.ApplicationCommand {
	for _, c := range cmds {
		if c.Type == discordgo.ChatApplicationCommand && slices.Contains(jobKinds, c.Name) {
			c.Options = append(c.Options, threadOption())
		}
	}
	return cmds
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
	c.IntegrationTypes = &[]discordgo.ApplicationIntegrationType{discordgo.ApplicationIntegrationGuildInstall} // a server's own admins
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
	"control_image": "control", "reference": "image", "photo": "image", "picture": "image",
	"control-type": "control_type", "control-weight": "control_weight", "clip-skip": "clip_skip", "restore-faces": "restore_faces",
	"face-fix": "face_fix", "face-restore": "face_restore",
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
		c.Preset = o.str("preset")
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
		if err := drawOptions(o, c); err != nil {
			return nil, nil, err
		}
		// The chat service takes the control image, then the mask, from
		// the front of the attachments (command.Command.ControlAttached).
		if _, ok := o.byName["control"]; ok {
			names = append(names, "control")
		}
		if _, ok := o.byName["mask"]; ok {
			names = append(names, "mask")
		}
		names = append(names, "image")
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
		if err := upscaleOptions(o, r); err != nil {
			return nil, nil, err
		}
		names = []string{"image"}
	case engine.KindSwapface:
		*r = engine.Request{Kind: engine.KindSwapface, Seed: -1}
		names = []string{"face", "target"}
	case "cancel", "show":
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
	case "quota", "jobs", "models", "help":
	default:
		if ok, err := parseOps(c, o); ok {
			if err != nil {
				return nil, nil, err
			}
			break
		}
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

// flag returns a boolean option.
func (o options) flag(name string) bool {
	opt, ok := o.byName[name]
	if !ok {
		return false
	}
	switch v := opt.Value.(type) {
	case bool:
		return v
	case string:
		b, _ := strconv.ParseBool(v)
		return b
	}
	return false
}

// drawOptions reads /draw's options beyond the basic ones, as the text
// grammar's flags of the same names.
func drawOptions(o options, c *command.Command) error {
	r := &c.Request
	r.VAE, r.ClipSkip = o.str("vae"), 0
	if e := o.str("embedding"); e != "" {
		r.Embeddings = []string{e}
	}
	n, ok, err := o.integer("clip_skip")
	if err != nil {
		return err
	}
	if ok {
		r.ClipSkip = int(n)
	}
	for _, f := range []struct {
		name string
		set  func(float64)
	}{
		{"strength", func(f float64) { r.Strength = f }},
		{"hires", func(f float64) { r.Hires = &engine.Hires{Scale: f} }},
	} {
		v, ok, err := o.number(f.name)
		if err != nil {
			return err
		}
		if ok {
			f.set(v)
		}
	}
	r.RestoreFaces, r.FaceFix, r.Tile = o.flag("restore_faces"), o.flag("face_fix"), o.flag("tile")
	_, control := o.byName["control"]
	if control {
		r.Control = &engine.Control{Type: strings.ToLower(o.str("control_type"))}
		w, ok, err := o.number("control_weight")
		if err != nil {
			return err
		}
		if ok {
			r.Control.Weight = w
		}
		c.ControlAttached = true
	} else if o.str("control_type") != "" {
		return engine.Errorf(engine.EINVALID, "control_type goes with a control image.", "control_type 需要与控制图一起使用。")
	}
	if _, ok := o.byName["mask"]; ok {
		c.MaskAttached = true
	}
	return nil
}

// upscaleOptions reads /upscale's options beyond scale.
func upscaleOptions(o options, r *engine.Request) error {
	if s := o.str("size"); s != "" {
		w, h, ok := parseSize(s)
		if !ok {
			return engine.Errorf(engine.EINVALID, "Size %q is not WIDTHxHEIGHT.", "尺寸 %q 不是“宽x高”的格式。", s)
		}
		r.TargetWidth, r.TargetHeight = w, h
	}
	r.Upscaler, r.FaceRestore, r.AnimeModel = o.str("upscaler"), strings.ToLower(o.str("face_restore")), o.flag("anime")
	f, ok, err := o.number("face_strength")
	if err != nil {
		return err
	}
	if ok {
		r.FaceRestoreStrength = f
	}
	return nil
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
