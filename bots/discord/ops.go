package discord

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/bwmarrin/discordgo"
	"github.com/picbot/picbot/bots/chat"
	"github.com/picbot/picbot/bots/command"
	"github.com/picbot/picbot/engine"
)

// Presets, chats' settings and /show (issue 17).

// presetOption is /draw's preset, autocompleted from the configured presets.
func presetOption() *discordgo.ApplicationCommandOption {
	return autocomplete(option(discordgo.ApplicationCommandOptionString, words{"preset", "预设", "預設"},
		words{"A preset of parameters (/settings lists them)", "一组预设参数（/settings 可查看）", "一組預設參數（/settings 可查看）"}, false))
}

// opsCommands are /settings (/show is places.go's).
func opsCommands(cmd func(name, desc words, opts ...*discordgo.ApplicationCommandOption) *discordgo.ApplicationCommand) []*discordgo.ApplicationCommand {
	str := discordgo.ApplicationCommandOptionString
	size := option(str, words{"size", "尺寸", "尺寸"}, words{"Default size, WxH or default", "默认尺寸，宽x高 或 default", "預設尺寸，寬x高 或 default"}, false)
	nsfw := choices(option(str, words{"nsfw", "成人内容", "成人內容"}, words{"Adult content in this server", "本服务器的成人内容", "本伺服器的成人內容"}, false),
		choice(words{"on", "开启", "開啟"}, "on"), choice(words{"off", "关闭", "關閉"}, "off"), choice(words{"default", "默认", "預設"}, "default"))
	return []*discordgo.ApplicationCommand{
		cmd(words{"settings", "设置", "設定"}, words{"This server's defaults (Manage Server to change)", "本服务器的默认设置（需管理服务器权限）", "本伺服器的預設設定（需管理伺服器權限）"},
			size, presetOption(), nsfw),
	}
}

// parseOps reads /show's and /settings' options into the text grammar's
// words; ok false if d is neither.
func parseOps(c *command.Command, o options) (bool, error) {
	switch c.Name {
	case "settings":
		for _, name := range []string{"size", "preset", "nsfw"} {
			if v := o.str(name); v != "" {
				if len(c.Args) > 0 {
					return true, engine.Errorf(engine.EINVALID, "One setting at a time, please.", "请一次只修改一项设置。")
				}
				c.Args = []string{name, v}
			}
		}
		return true, nil
	}
	return false, nil
}

// Discord permission bits that make a member an admin of the server's
// settings: Manage Server, or Administrator.
const settingsPermissions = discordgo.PermissionManageGuild | discordgo.PermissionAdministrator

// chatAdmin reports whether the interaction's member may change the
// server's settings: member.permissions, as Discord computed them.
func chatAdmin(in *discordgo.Interaction) func(context.Context) (bool, error) {
	return func(context.Context) (bool, error) {
		return in.Member != nil && in.Member.Permissions&settingsPermissions != 0, nil
	}
}

type rawKey struct{}

// withRaw keeps an interaction's JSON beside its context, for what
// discordgo's Interaction does not decode: the channel's nsfw flag.
func withRaw(ctx context.Context, raw []byte) context.Context {
	return context.WithValue(ctx, rawKey{}, raw)
}

// channelNSFW reads "channel": {"nsfw": true} from the interaction's JSON:
// a channel marked age-restricted.
func channelNSFW(ctx context.Context) bool {
	raw, _ := ctx.Value(rawKey{}).([]byte)
	if len(raw) == 0 {
		return false
	}
	var in struct {
		Channel *struct {
			NSFW bool `json:"nsfw"`
		} `json:"channel"`
	}
	return json.Unmarshal(raw, &in) == nil && in.Channel != nil && in.Channel.NSFW
}

// presetChoices are the configured presets matching typed.
func (b *Bot) presetChoices(typed string) []*discordgo.ApplicationCommandOptionChoice {
	out := []*discordgo.ApplicationCommandOptionChoice{}
	q := strings.ToLower(typed)
	for _, p := range b.presets {
		if len(out) < 25 && strings.Contains(strings.ToLower(p), q) {
			out = append(out, &discordgo.ApplicationCommandOptionChoice{Name: chat.Cut(p, 100), Value: p})
		}
	}
	return out
}

// jobChoices are the user's kept jobs with results matching typed, for /show.
func (b *Bot) jobChoices(ctx context.Context, ev *event, typed string) []*discordgo.ApplicationCommandOptionChoice {
	out := []*discordgo.ApplicationCommandOptionChoice{}
	jobs, err := b.eng.Jobs(ctx, ev.user, 25)
	if err != nil {
		return out
	}
	for _, j := range jobs {
		if len(j.Results) == 0 || !strings.Contains(j.ID, strings.ToLower(typed)) {
			continue
		}
		name := fmt.Sprintf("%s · /%s %s", j.ID, j.Request.Kind, j.Request.Prompt)
		out = append(out, &discordgo.ApplicationCommandOptionChoice{Name: chat.Cut(name, 100), Value: j.ID})
	}
	return out
}
