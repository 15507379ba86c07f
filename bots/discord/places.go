package discord

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/bwmarrin/discordgo"
	"github.com/picbot/picbot/bots/chat"
	"github.com/picbot/picbot/bots/command"
	"github.com/picbot/picbot/engine"
)

// Every place a Discord user can ask from:
//
//   - Message context menus (right-click a message → Apps): Upscale, Make
//     anime, Vary, and the two steps of a face swap (Use as face, then Swap
//     onto this), on a message with an image, so nobody downloads and
//     attaches a picture again.
//   - User installs: the commands are registered for guild and user
//     installs, in guilds, the bot's DMs and private channels. Where the bot
//     is not a member (a user install in a guild that has not added it, a
//     group DM), only the interaction can answer: there is no channel
//     message after the token's lifetime. The first answer says so and
//     names /show <id>, which posts a finished job's result.
//   - Threads: an interaction in a thread carries the thread as its
//     channel, so its answer, and a late result, go there.

// Message command names, as Discord shows them (and their Chinese ones).
var menus = []struct {
	name words
	kind string
}{
	{words{"Upscale", "放大", "放大"}, "upscale"},
	{words{"Make anime", "动漫化", "動漫化"}, "anime"},
	{words{"Vary", "变体", "變體"}, "vary"},
	{words{"Use as face", "用作人脸", "用作人臉"}, "face"},
	{words{"Swap onto this", "把脸换到这张", "把臉換到這張"}, "swap"},
}

// menuCommands are the message context-menu commands. They take no
// description: Discord refuses one on them.
func menuCommands() []*discordgo.ApplicationCommand {
	var out []*discordgo.ApplicationCommand
	for _, m := range menus {
		out = append(out, &discordgo.ApplicationCommand{
			Type: discordgo.MessageApplicationCommand, Name: m.name.en, NameLocalizations: m.name.locPtr(),
			Contexts: everywhere(), IntegrationTypes: installs(),
		})
	}
	return out
}

// everywhere are the contexts a user can call the commands in: guilds, the
// bot's DMs, and private channels (a user install's group DMs).
func everywhere() *[]discordgo.InteractionContextType {
	return &[]discordgo.InteractionContextType{discordgo.InteractionContextGuild, discordgo.InteractionContextBotDM, discordgo.InteractionContextPrivateChannel}
}

// installs are the ways the app can be installed for the commands: to a
// guild, or to a user, who then has them wherever they are.
func installs() *[]discordgo.ApplicationIntegrationType {
	return &[]discordgo.ApplicationIntegrationType{discordgo.ApplicationIntegrationGuildInstall, discordgo.ApplicationIntegrationUserInstall}
}

// showCommand is /show <job>: a finished job's result, posted again.
func showCommand(cmd func(name, desc words, opts ...*discordgo.ApplicationCommandOption) *discordgo.ApplicationCommand) *discordgo.ApplicationCommand {
	return cmd(words{"show", "查看", "查看"}, words{"Post a finished job's pictures", "显示已完成任务的图片", "顯示已完成任務的圖片"},
		autocomplete(option(discordgo.ApplicationCommandOptionString, words{"job", "任务", "任務"}, words{"The job id", "任务编号", "任務編號"}, true)))
}

// botAbsent reports whether the bot is not a member where the interaction
// comes from, so it can answer only through the interaction: a private
// channel, or a guild whose only authorizing install is the user's.
func botAbsent(in *discordgo.Interaction) bool {
	if in.Context == discordgo.InteractionContextPrivateChannel {
		return true
	}
	if in.GuildID == "" || len(in.AuthorizingIntegrationOwners) == 0 {
		return false
	}
	_, guild := in.AuthorizingIntegrationOwners[discordgo.ApplicationIntegrationGuildInstall]
	return !guild
}

// faceKept is how long "Use as face" remembers a face for "Swap onto this".
const faceKept = 10 * time.Minute

// faces are the faces users picked, in memory: a restart forgets them,
// and the user picks again.
type faces struct {
	mu sync.Mutex
	m  map[string]face
}

type face struct {
	att *discordgo.MessageAttachment
	at  time.Time
}

func (f *faces) put(user string, a *discordgo.MessageAttachment, now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.m == nil {
		f.m = make(map[string]face)
	}
	for k, v := range f.m {
		if now.Sub(v.at) > faceKept {
			delete(f.m, k)
		}
	}
	f.m[user] = face{att: a, at: now}
}

func (f *faces) get(user string, now time.Time) *discordgo.MessageAttachment {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.m[user]
	if !ok || now.Sub(v.at) > faceKept {
		return nil
	}
	return v.att
}

// imageOf is the first image attached to a message, or nil.
func imageOf(m *discordgo.Message) *discordgo.MessageAttachment {
	if m == nil {
		return nil
	}
	for _, a := range m.Attachments {
		if a == nil {
			continue
		}
		if strings.HasPrefix(a.ContentType, "image/") {
			return a
		}
		switch strings.ToLower(path.Ext(a.Filename)) {
		case ".png", ".jpg", ".jpeg", ".webp", ".gif":
			if a.ContentType == "" {
				return a
			}
		}
	}
	return nil
}

// resultButton is the job a message's result buttons name, if it is one of
// the bot's results.
func resultButton(m *discordgo.Message, action string) (button, bool) {
	if m == nil {
		return button{}, false
	}
	for _, row := range m.Components {
		r, ok := row.(*discordgo.ActionsRow)
		if !ok {
			continue
		}
		for _, c := range r.Components {
			if btn, ok := c.(*discordgo.Button); ok {
				if k, ok := parseButton(btn.CustomID); ok && k.action == action {
					return k, true
				}
			}
		}
	}
	return button{}, false
}

// planMenu answers a message context-menu command.
func (b *Bot) planMenu(ev *event, d discordgo.ApplicationCommandInteractionData) (*response, func(context.Context)) {
	lang := ev.lang()
	var target *discordgo.Message
	if d.Resolved != nil {
		target = d.Resolved.Messages[d.TargetID]
	}
	kind := ""
	for _, m := range menus {
		if strings.EqualFold(d.Name, m.name.en) {
			kind = m.kind
		}
	}
	if kind == "vary" {
		k, ok := resultButton(target, chat.ActionVary)
		if !ok {
			return private(chat.T(lang, "Vary works on the bot's own pictures: pick one with its buttons under it.", "“变体”只适用于机器人生成的图片：请选择下方带按钮的图片。")), nil
		}
		if b.cfg.ButtonUsers == ButtonsAuthor && k.owner != "" && k.owner != ev.user.ID {
			return private(b.wording(lang, ev, errNotAuthor)), nil
		}
		return deferred(false), b.then(ev, func(ctx context.Context, ev *event) error { return b.follow(ctx, ev, k) })
	}
	img := imageOf(target)
	if img == nil {
		return private(chat.T(lang, "That message has no picture attached.", "那条消息没有附带图片。")), nil
	}
	job := func(kind engine.Kind, atts ...*discordgo.MessageAttachment) (*response, func(context.Context)) {
		c := &command.Command{Name: string(kind), Request: engine.Request{Kind: kind, Seed: -1}}
		ev.thread = ev.in.GuildID != "" && !botAbsent(ev.in) && slices.Contains(b.cfg.ThreadGuilds, ev.in.GuildID)
		return deferred(false), b.then(ev, func(ctx context.Context, ev *event) error { return b.command(ctx, ev, c, atts) })
	}
	switch kind {
	case "upscale":
		return job(engine.KindUpscale, img)
	case "anime":
		return job(engine.KindAnime, img)
	case "face":
		b.faces.put(ev.user.ID, img, b.now())
		return private(chat.T(lang, "Face saved for 10 minutes. Now pick the photo to put it on: Apps → Swap onto this.",
			"人脸已保存 10 分钟。现在在目标照片上选择：应用 → 把脸换到这张。")), nil
	case "swap":
		f := b.faces.get(ev.user.ID, b.now())
		if f == nil {
			return private(chat.T(lang, "First pick the face: Apps → Use as face on a photo of it (kept 10 minutes).",
				"请先选择人脸：在人脸照片上选择 应用 → 用作人脸（保存 10 分钟）。")), nil
		}
		return job(engine.KindSwapface, f, img)
	}
	return private(chat.T(lang, "This kind of interaction is not supported.", "不支持这种交互。")), nil
}

// show posts a finished job's result through the interaction: the way to
// reach a result where the bot cannot post to the channel.
func (b *Bot) show(ctx context.Context, ev *event, id string) error {
	j, err := b.eng.Job(ctx, strings.ToLower(id))
	if err != nil {
		return chat.TooOld(err, id)
	}
	if j.Owner.Platform != Platform || j.Owner.ID != ev.user.ID {
		return engine.Errorf(engine.ENOTFOUND, "No job %s of yours.", "你没有任务 %s。", id)
	}
	lang := ev.lang()
	if j.State != engine.StateSucceeded && j.State != engine.StateDelivered {
		return b.editText(ctx, ev, chat.T(lang, "Job %s: %s.", "任务 %s：%s。", j.ID, engine.StateText(j.State, lang)))
	}
	shown := *j
	shown.State = engine.StateSucceeded // composed as at its delivery
	m, err := b.compose(ctx, &shown, lang, b.cfg.MaxUpload)
	if err != nil {
		return err
	}
	_, err = b.editFirst(ctx, ev, m)
	return err
}

// onlyHereNote is added to the first answer where the bot is not a member.
func (b *Bot) onlyHereNote(lang engine.Lang, jobID string) string {
	return chat.T(lang, "\nThe bot is not a member here, so it can answer only in this response, for %s. If the picture takes longer, /show %s brings it.",
		"\n机器人不是这里的成员，只能在 %s 内通过这条回复作答；如果图片更久才好，用 /show %s 查看。", engine.FormatDuration(b.cfg.TokenLifetime, lang), jobID)
}

// jobKinds are the slash commands that make a job, and take the thread option.
var jobKinds = []string{"draw", "anime", "upscale", "swapface"}

// threadOption is the job commands' "thread" option.
func threadOption() *discordgo.ApplicationCommandOption {
	return option(discordgo.ApplicationCommandOptionBoolean, words{"thread", "子区", "討論串"},
		words{"Open a thread for this job's progress and result", "为这个任务开一个子区", "為這個任務開一個討論串"}, false)
}

// wantsThread reports whether a job command asks for a thread of its own:
// its thread option, else the guild's default (Config.ThreadGuilds). Not in
// DMs, not in a thread already, not where the bot is not a member.
func (b *Bot) wantsThread(ev *event, d discordgo.ApplicationCommandInteractionData) bool {
	in := ev.in
	// In a thread already, Discord refuses another: openThread logs it and
	// the job is answered in place.
	if in.GuildID == "" || botAbsent(in) || !slices.Contains(jobKinds, strings.ToLower(d.Name)) {
		return false
	}
	for _, o := range d.Options {
		if o != nil && strings.EqualFold(o.Name, "thread") {
			v, _ := o.Value.(bool)
			return v
		}
	}
	for _, g := range b.cfg.ThreadGuilds {
		if g == in.GuildID {
			return true
		}
	}
	return false
}

// openThread opens the job's thread on its original response and keeps
// its id on the job. A failure (no permission, a channel that takes no
// threads) leaves the job answered in place.
func (b *Bot) openThread(ctx context.Context, j *engine.Job, lv *live) {
	if lv.message == "" || lv.t.Thread != "" {
		return
	}
	name := chat.Cut(fmt.Sprintf("%s · %s", j.ID, firstNonEmpty(j.Request.Prompt, string(j.Request.Kind))), 100)
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	id, err := b.api.startThread(cctx, lv.t.Channel, lv.message, name)
	if err != nil {
		b.log.Warn("could not open the job's thread; answering in place", slog.String("job_id", j.ID), slog.Any("err", err))
		return
	}
	lv.t.Thread = id
	data, _ := json.Marshal(lv.t)
	if err := b.eng.Annotate(ctx, j.ID, metaTicket, string(data)); err != nil {
		b.log.Warn("persist the job's thread", slog.String("job_id", j.ID), slog.Any("err", err))
	}
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// postToThread posts the result in the job's thread, pinging its author,
// and turns the original response (the thread's first message) into a
// last line while the token lasts.
func (b *Bot) postToThread(ctx context.Context, j *engine.Job, lv *live, m *message) error {
	cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if lv.t.User != "" {
		m.Content = chat.Cut("<@"+lv.t.User+"> "+m.Content, 2000)
		m.AllowedMentions = &discordgo.MessageAllowedMentions{Parse: []discordgo.AllowedMentionType{}, Users: []string{lv.t.User}}
	}
	if _, err := b.api.send(cctx, lv.t.Thread, m); err != nil {
		if forbidden(err) {
			return engine.Wrap(engine.EUNDELIVERED, err, "The picture could not be posted here.", "图片无法发送到这里。")
		}
		if d, limited := rateLimited(err); limited {
			return &engine.Later{After: d}
		}
		return err
	}
	if deadline, ok := b.tokenDeadline(lv); ok {
		ectx, cancel := context.WithDeadline(ctx, deadline)
		defer cancel()
		text := chat.T(b.lang(j, lv), "Job %s: done, in the thread.", "任务 %s：已完成，见子区。", j.ID)
		if _, err := b.api.editOriginal(ectx, lv.t.App, lv.t.Token, &message{Content: text, AllowedMentions: noMentions()}); err != nil {
			b.log.Debug("last line of the job's first message", slog.String("job_id", j.ID), slog.Any("err", err))
		}
	}
	return nil
}
