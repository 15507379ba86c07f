package chat

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sort"
	"strings"

	"github.com/picbot/picbot/bots/command"
	"github.com/picbot/picbot/engine"
)

// Preset is a named set of /draw parameters an operator configures.
// Whatever a user types wins over the preset.
type Preset struct {
	PromptPrefix string `yaml:"prompt_prefix"`
	Negative     string `yaml:"negative"`
	Model        string `yaml:"model"`
	LoRA         string `yaml:"lora"`
	Size         string `yaml:"size"` // WxH
	Steps        int    `yaml:"steps"`
	Sampler      string `yaml:"sampler"`
}

// ChatSettings are a chat's defaults, set by its admins with /settings and
// kept in the store with the chat (on Discord, with the server).
type ChatSettings struct {
	Size   string `json:"size,omitempty"`
	Preset string `json:"preset,omitempty"`
	NSFW   string `json:"nsfw,omitempty"` // "on", "off" or "" (the platform's flag and moderation.nsfw_chats)
}

// Moderator refuses prompts and keeps lockouts (moderation.Moderator is one).
type Moderator interface {
	Check(ctx context.Context, u engine.UserRef, prompt string, nsfw bool) error
	NSFWChat(key string) bool
	Lift(ctx context.Context, user string) error
	Report(ctx context.Context) (string, error)
}

// SettingsStore keeps small named strings (store.DB is one).
type SettingsStore interface {
	View(ctx context.Context, fn func(engine.Counters) error) error
	Update(ctx context.Context, fn func(engine.Counters) error) error
}

func chatSettingsKey(c engine.ChatRef) string { return "chat:" + c.QuotaKey() }

// chatSettings reads the chat's settings; none stored is the zero value.
func (s *Service) chatSettings(ctx context.Context, c engine.ChatRef) (ChatSettings, error) {
	var cs ChatSettings
	if s.Settings == nil {
		return cs, nil
	}
	var raw string
	if err := s.Settings.View(ctx, func(cn engine.Counters) error { raw = cn.Setting(chatSettingsKey(c)); return nil }); err != nil {
		return cs, err
	}
	if raw != "" {
		if err := json.Unmarshal([]byte(raw), &cs); err != nil && s.Log != nil {
			s.Log.Warn("chat settings unreadable; using none", slog.String("chat_id", c.QuotaKey()), slog.Any("err", err))
		}
	}
	return cs, nil
}

// nsfw reports whether adult content is allowed in the message's chat: the
// chat's own setting, else the platform's flag (a Discord channel marked
// age-restricted) or the chat's place in moderation.nsfw_chats.
func (s *Service) nsfw(m Message, cs ChatSettings) bool {
	switch cs.NSFW {
	case "on":
		return true
	case "off":
		return false
	}
	return m.NSFW || (s.Moderator != nil && s.Moderator.NSFWChat(m.Chat.QuotaKey()))
}

// prepare applies the chat's defaults and the preset to a /draw request,
// then moderates the user's prompt and the adult catalogue entries it
// names. It runs before anything is downloaded, stored or charged.
func (s *Service) prepare(ctx context.Context, m Message, c *command.Command, req *engine.Request) error {
	cs, err := s.chatSettings(ctx, m.Chat)
	if err != nil {
		return err
	}
	nsfw := s.nsfw(m, cs)
	if s.Moderator != nil {
		if err := s.Moderator.Check(ctx, m.User, req.Prompt, nsfw); err != nil {
			return err
		}
	}
	if req.Kind == engine.KindDraw {
		name := c.Preset
		if name == "" {
			name = cs.Preset
		}
		if name != "" {
			p, ok := s.Presets[name]
			if !ok {
				return engine.Errorf(engine.EINVALID, "No preset %q. Presets: %s.", "没有预设 %q。可用预设：%s。", name, s.presetNames())
			}
			applyPreset(req, p)
		}
		if req.Width == 0 && req.Height == 0 && cs.Size != "" {
			req.Width, req.Height, _ = command.ParseSize(cs.Size)
		}
	}
	return s.adultCheck(ctx, m.User.Lang, req, nsfw)
}

// applyPreset fills what the user left unset from p; the preset's prompt
// prefix and negative prompt go before the user's.
func applyPreset(r *engine.Request, p Preset) {
	if pre := strings.TrimSpace(p.PromptPrefix); pre != "" {
		r.Prompt = joinPrompt(pre, r.Prompt)
	}
	if neg := strings.TrimSpace(p.Negative); neg != "" {
		r.Negative = joinPrompt(neg, r.Negative)
	}
	if r.Model == "" {
		r.Model = p.Model
	}
	if r.LoRA == "" {
		r.LoRA = p.LoRA
	}
	if r.Sampler == "" {
		r.Sampler = p.Sampler
	}
	if r.Steps == 0 {
		r.Steps = p.Steps
	}
	if r.Width == 0 && r.Height == 0 && p.Size != "" {
		r.Width, r.Height, _ = command.ParseSize(p.Size)
	}
}

func joinPrompt(a, b string) string {
	switch {
	case b == "":
		return a
	case strings.HasSuffix(a, ",") || strings.HasSuffix(a, "，"):
		return a + " " + b
	}
	return a + ", " + b
}

func (s *Service) presetNames() string {
	if len(s.Presets) == 0 {
		return "-"
	}
	names := make([]string, 0, len(s.Presets))
	for n := range s.Presets {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// adultCheck refuses a model or LoRA the vendor's catalogue marks adult
// unless the operator allows adult entries and the chat's NSFW policy is on.
func (s *Service) adultCheck(ctx context.Context, lang engine.Lang, r *engine.Request, nsfw bool) error {
	if s.Adult == nil || (r.Model == "" && r.LoRA == "") {
		return nil
	}
	for _, id := range []struct{ kind, id string }{{engine.EntryModel, r.Model}, {engine.EntryLoRA, r.LoRA}} {
		if id.id == "" {
			continue
		}
		adult, allowed := s.Adult(ctx, id.kind, id.id)
		if adult && !(allowed && nsfw) {
			return engine.Errorf(engine.EFORBIDDEN, "%q is for adult content, which is not allowed in this chat. Nothing was charged.",
				"%q 属于成人内容，本聊天不允许使用。未扣除额度。", id.id)
		}
	}
	return nil
}

// settings runs /settings: shown to anyone, changed by the chat's admins
// (a private chat's user, a Telegram group's administrators, a Discord
// member with Manage Server) and the bot's admins.
func (s *Service) settings(ctx context.Context, m Message, args []string) Reply {
	lang := m.User.Lang
	if s.Settings == nil {
		return s.fail(lang, engine.Errorf(engine.EUNAVAILABLE, "Chat settings are not available here.", "这里不能设置聊天选项。"), "")
	}
	cs, err := s.chatSettings(ctx, m.Chat)
	if err != nil {
		return s.fail(lang, err, "")
	}
	if len(args) == 0 {
		return Reply{Text: s.settingsText(lang, m, cs)}
	}
	if !s.chatAdmin(ctx, m) {
		return s.fail(lang, engine.Errorf(engine.EFORBIDDEN, "Only this chat's admins can change its settings.", "只有本聊天的管理员可以修改设置。"), "")
	}
	key, value := strings.ToLower(args[0]), ""
	if len(args) > 1 {
		value = strings.Join(args[1:], " ")
	}
	reset := value == "" || strings.EqualFold(value, "default") || strings.EqualFold(value, "none")
	switch key {
	case "size":
		cs.Size = ""
		if !reset {
			w, h, ok := command.ParseSize(value)
			lim := s.Engine.Limits()
			if !ok || w < lim.MinSide || h < lim.MinSide || w > lim.MaxSide || h > lim.MaxSide || w%8 != 0 || h%8 != 0 {
				return s.fail(lang, engine.Errorf(engine.EINVALID, "The size must be WIDTHxHEIGHT, each side a multiple of 8 from %d to %d, like 768x512.",
					"尺寸格式为 宽x高，每边是 8 的倍数且在 %d 到 %d 之间，例如 768x512。", lim.MinSide, lim.MaxSide), "")
			}
			cs.Size = fmt.Sprintf("%dx%d", w, h)
		}
	case "preset":
		cs.Preset = ""
		if !reset {
			if _, ok := s.Presets[value]; !ok {
				return s.fail(lang, engine.Errorf(engine.EINVALID, "No preset %q. Presets: %s.", "没有预设 %q。可用预设：%s。", value, s.presetNames()), "")
			}
			cs.Preset = value
		}
	case "nsfw":
		switch v := strings.ToLower(value); {
		case reset:
			cs.NSFW = ""
		case v == "on" || v == "off":
			cs.NSFW = v
		default:
			return s.fail(lang, engine.Errorf(engine.EINVALID, "/settings nsfw takes on, off or default.", "/settings nsfw 的值为 on、off 或 default。"), "")
		}
	default:
		return s.fail(lang, engine.Errorf(engine.EINVALID, "Settings: size, preset, nsfw.\nUsage: %s", "可设置：size、preset、nsfw。\n用法：%s",
			command.Usage("settings", lang)), "")
	}
	data, _ := json.Marshal(cs)
	if err := s.Settings.Update(ctx, func(c engine.Counters) error {
		c.SetSetting(chatSettingsKey(m.Chat), string(data))
		return nil
	}); err != nil {
		return s.fail(lang, err, "")
	}
	if s.Log != nil {
		s.Log.Info("chat settings changed", slog.String("chat_id", m.Chat.QuotaKey()), slog.String("user_id", m.User.Key()), slog.String("settings", string(data)))
	}
	return Reply{Text: s.settingsText(lang, m, cs)}
}

// chatAdmin reports whether the message's user may change the chat's settings.
func (s *Service) chatAdmin(ctx context.Context, m Message) bool {
	if s.Quota.IsAdmin(m.User) || m.Chat.Private {
		return true
	}
	if m.ChatAdmin == nil {
		return false
	}
	ok, err := m.ChatAdmin(ctx)
	if err != nil && s.Log != nil {
		s.Log.Warn("could not ask whether the user administers the chat", slog.String("chat_id", m.Chat.QuotaKey()), slog.String("user_id", m.User.Key()), slog.Any("err", err))
	}
	return ok && err == nil
}

func (s *Service) settingsText(lang engine.Lang, m Message, cs ChatSettings) string {
	or := func(v, def string) string {
		if v == "" {
			return def
		}
		return v
	}
	nsfw := T(lang, "off", "关闭")
	if s.nsfw(m, cs) {
		nsfw = T(lang, "on", "开启")
	}
	if cs.NSFW == "" {
		nsfw += T(lang, " (default)", "（默认）")
	}
	return T(lang, "This chat's settings: size %s · preset %s · adult content %s. Presets: %s.",
		"本聊天的设置：尺寸 %s · 预设 %s · 成人内容 %s。可用预设：%s。",
		or(cs.Size, T(lang, "default", "默认")), or(cs.Preset, T(lang, "none", "无")), nsfw, s.presetNames())
}
