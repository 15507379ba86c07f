package discord

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bwmarrin/discordgo"
	"github.com/picbot/picbot/bots/chat"
	"github.com/picbot/picbot/bots/command"
	"github.com/picbot/picbot/engine"
)

// event is one interaction: who sent it, from where, and how it was acknowledged.
type event struct {
	in        *discordgo.Interaction
	app       string
	user      engine.UserRef
	chat      engine.ChatRef
	received  time.Time
	ephemeral bool // the deferred response is private
	replay    bool // taken in again after a restart (intake.go)
	nsfw      bool // the channel is marked age-restricted
	thread    bool // the job gets a thread of its own (places.go)
}

func (e *event) lang() engine.Lang { return e.user.Lang }

// handler does an interaction's work after the acknowledgement. Its error
// is shown to the user by fail, the one place that words errors.
type handler func(ctx context.Context, ev *event) error

// newEvent reads who sent the interaction: a member in a guild, a user in a DM.
func (b *Bot) newEvent(in *discordgo.Interaction, received time.Time) (*event, error) {
	u, roles := in.User, []string(nil)
	if in.Member != nil && in.Member.User != nil {
		u, roles = in.Member.User, in.Member.Roles
	}
	if u == nil || u.ID == "" {
		return nil, engine.Errorf(engine.EINVALID, "Discord did not say who you are.", "Discord 没有提供你的身份。")
	}
	locale := string(in.Locale)
	if locale == "" && in.GuildLocale != nil {
		locale = string(*in.GuildLocale)
	}
	name := u.GlobalName
	if name == "" {
		name = u.Username
	}
	app := in.AppID
	if app == "" {
		app = b.cfg.ApplicationID
	}
	return &event{
		in:  in,
		app: app,
		user: engine.UserRef{Platform: Platform, ID: u.ID, Name: name, Lang: engine.ParseLang(locale),
			Roles: append([]string(nil), roles...)},
		chat: engine.ChatRef{Platform: Platform, ChatID: in.ChannelID, GuildID: in.GuildID,
			MessageID: in.ID, Private: in.GuildID == ""},
		received: received,
	}, nil
}

func deferred(ephemeral bool) *response {
	r := &response{Type: discordgo.InteractionResponseDeferredChannelMessageWithSource}
	if ephemeral {
		r.Data = &responseData{Flags: discordgo.MessageFlagsEphemeral}
	}
	return r
}

// private is an immediate ephemeral answer.
func private(text string) *response {
	return &response{Type: discordgo.InteractionResponseChannelMessageWithSource,
		Data: &responseData{Content: chat.Cut(text, 2000), Flags: discordgo.MessageFlagsEphemeral, AllowedMentions: noMentions()}}
}

func localeOf(in *discordgo.Interaction) engine.Lang { return engine.ParseLang(string(in.Locale)) }

// plan decides the first answer to an interaction — without the store, the
// quota or a vendor, so it is always quick — and returns the work to run
// once that answer is sent (nil if none). replay is true for an
// interaction taken in again after a restart.
func (b *Bot) plan(ctx context.Context, in *discordgo.Interaction, received time.Time, replay bool) (*response, func(context.Context)) {
	if in.Type == discordgo.InteractionPing {
		return &response{Type: discordgo.InteractionResponsePong}, nil
	}
	ev, err := b.newEvent(in, received)
	if err != nil {
		return private(b.wording(localeOf(in), nil, err)), nil
	}
	ev.replay = replay
	ev.nsfw = channelNSFW(ctx)
	switch in.Type {
	case discordgo.InteractionApplicationCommand:
		if d := in.ApplicationCommandData(); d.CommandType == discordgo.MessageApplicationCommand {
			return b.planMenu(ev, d)
		}
		c, atts, err := parse(in.ApplicationCommandData())
		if err != nil {
			return private(b.wording(ev.lang(), ev, err)), nil
		}
		ev.ephemeral = !c.IsJob() && c.Name != "show" // a result shown again is for all to see
		ev.thread = b.wantsThread(ev, in.ApplicationCommandData())
		return deferred(ev.ephemeral), b.then(ev, func(ctx context.Context, ev *event) error { return b.command(ctx, ev, c, atts) })
	case discordgo.InteractionApplicationCommandAutocomplete:
		list := b.autocomplete(ctx, ev, in.ApplicationCommandData())
		return &response{Type: discordgo.InteractionApplicationCommandAutocompleteResult, Data: &responseData{Choices: &list}}, nil
	case discordgo.InteractionMessageComponent:
		btn, ok := parseButton(in.MessageComponentData().CustomID)
		if !ok {
			return private(chat.T(ev.lang(), "This button no longer works.", "这个按钮已失效。")), nil
		}
		if btn.action == actionOriginal {
			ev.ephemeral = true
			return deferred(true), b.then(ev, func(ctx context.Context, ev *event) error { return b.original(ctx, ev, btn) })
		}
		if b.cfg.ButtonUsers == ButtonsAuthor && btn.owner != "" && btn.owner != ev.user.ID {
			return private(b.wording(ev.lang(), ev, errNotAuthor)), nil
		}
		return deferred(false), b.then(ev, func(ctx context.Context, ev *event) error { return b.follow(ctx, ev, btn) })
	}
	return private(chat.T(ev.lang(), "This kind of interaction is not supported.", "不支持这种交互。")), nil
}

var errNotAuthor = engine.Errorf(engine.EFORBIDDEN, "Only the person who made this picture can use its buttons.", "只有生成这张图片的人可以使用这些按钮。")

// then wraps a handler as the work after the acknowledgement. Once it is
// done, the interaction's record (intake.go) goes.
func (b *Bot) then(ev *event, h handler) func(context.Context) {
	return func(ctx context.Context) {
		if err := h(ctx, ev); err != nil {
			b.fail(ctx, ev, err)
		}
		b.mu.Lock()
		recorded := b.recorded[ev.in.ID]
		delete(b.recorded, ev.in.ID)
		b.mu.Unlock()
		if ctx.Err() != nil {
			return // cut short by a shutdown: taken in again at the next start
		}
		if recorded || ev.replay {
			b.done(ev.in.ID)
		}
	}
}

// shownError is an error the chat service has already worded for the user.
type shownError struct {
	text string
	err  *engine.Error
}

func (e *shownError) Error() string { return e.err.Error() }
func (e *shownError) Unwrap() error { return e.err }

func replyError(r chat.Reply) error {
	return &shownError{text: r.Text, err: r.Err}
}

// wording is the user's text for err. Internal errors are logged in full
// here, once, and shown only as an apology with a reference.
func (b *Bot) wording(lang engine.Lang, ev *event, err error) string {
	var shown *shownError
	if errors.As(err, &shown) {
		return shown.text
	}
	e := engine.AsError(err)
	if e.Code != engine.EINTERNAL {
		return e.Message(lang)
	}
	ref := engine.NewID()
	attrs := []any{slog.String("ref", ref), slog.Any("err", err)}
	if ev != nil {
		attrs = append(attrs, slog.String("chat_id", ev.chat.ChatID), slog.String("user_id", ev.user.ID))
	}
	b.log.Error("interaction failed", attrs...)
	return chat.T(lang, "Sorry, something went wrong on our side (reference %s).", "抱歉，服务内部出错了（编号 %s）。", ref)
}

// fail shows err to the user privately (flag 64). A public deferred
// response cannot turn private, so it is deleted and an ephemeral follow-up
// takes its place.
func (b *Bot) fail(ctx context.Context, ev *event, err error) {
	text := chat.Cut(b.wording(ev.lang(), ev, err), 2000)
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	m := &message{Content: text, AllowedMentions: noMentions()}
	if ev.ephemeral {
		_, err = b.editFirst(ctx, ev, m)
	} else {
		m.Flags = discordgo.MessageFlagsEphemeral
		if derr := b.api.deleteOriginal(ctx, ev.app, ev.in.Token); derr != nil {
			b.log.Warn("delete deferred response", slog.String("chat_id", ev.chat.ChatID), slog.Any("err", derr))
		}
		_, err = b.api.followup(ctx, ev.app, ev.in.Token, m)
	}
	if err != nil {
		b.log.Warn("could not show an error", slog.String("chat_id", ev.chat.ChatID), slog.String("user_id", ev.user.ID), slog.Any("err", err))
	}
}

// editFirst edits the original response soon after the acknowledgement.
// Discord may not have taken the deferral in yet, so an unknown-webhook
// answer in the first seconds is tried again.
func (b *Bot) editFirst(ctx context.Context, ev *event, m *message) (*discordgo.Message, error) {
	for try := 0; ; try++ {
		msg, err := b.api.editOriginal(ctx, ev.app, ev.in.Token, m)
		if err == nil || try >= 2 || !tokenGone(err) || b.now().Sub(ev.received) > 10*time.Second {
			return msg, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// editText shows text in the original response.
func (b *Bot) editText(ctx context.Context, ev *event, text string) error {
	_, err := b.editFirst(ctx, ev, &message{Content: chat.Cut(text, 2000), AllowedMentions: noMentions()})
	return err
}

// command runs a slash command.
func (b *Bot) command(ctx context.Context, ev *event, c *command.Command, atts []*discordgo.MessageAttachment) error {
	if c.Name == "show" {
		return b.show(ctx, ev, c.Args[0])
	}
	m := chat.Message{User: ev.user, Chat: ev.chat, Command: c, NSFW: ev.nsfw, ChatAdmin: chatAdmin(ev.in)}
	for _, a := range atts {
		m.Images = append(m.Images, b.image(a))
	}
	if !c.IsJob() {
		reply := b.svc.Handle(ctx, m)
		if reply.Err != nil {
			return replyError(reply)
		}
		return b.editText(ctx, ev, reply.Text)
	}
	return b.start(ctx, ev, func(ctx context.Context) chat.Reply { return b.svc.Handle(ctx, m) })
}

// start runs something that may create a job, with the interaction's
// ticket ready before the job exists, so the engine's first progress finds it.
func (b *Bot) start(ctx context.Context, ev *event, run func(context.Context) chat.Reply) error {
	if ev.replay {
		// The job may have been made before the restart.
		j, err := b.existing(ctx, ev)
		if err != nil {
			return err
		}
		if j != nil {
			b.rejoin(ctx, ev, j)
			return nil
		}
	}
	lv := b.expect(ev)
	reply := run(ctx)
	if reply.Err != nil || reply.Job == nil {
		b.unexpect(ev)
		if reply.Err != nil {
			return replyError(reply)
		}
		return b.editText(ctx, ev, reply.Text)
	}
	b.adopt(ctx, reply.Job, lv)
	b.accepted(ctx, ev, reply.Job, lv, reply.Text)
	return nil
}

// accepted shows that the job is queued, unless progress or the result got there first.
func (b *Bot) accepted(ctx context.Context, ev *event, j *engine.Job, lv *live, text string) {
	lv.mu.Lock()
	defer lv.mu.Unlock()
	if lv.edited || lv.done {
		return
	}
	if lv.t.TokenOnly {
		text += b.onlyHereNote(ev.lang(), j.ID)
	}
	msg, err := b.editFirst(ctx, ev, &message{Content: chat.Cut(text, 2000), AllowedMentions: noMentions()})
	if err != nil {
		b.log.Warn("show accepted job", slog.String("job_id", j.ID), slog.String("chat_id", ev.chat.ChatID), slog.Any("err", err))
		return
	}
	b.remember(ctx, j.ID, lv, msg)
	if ev.thread {
		b.openThread(ctx, j, lv)
	}
}

// image is an attachment as the chat service opens it.
func (b *Bot) image(a *discordgo.MessageAttachment) chat.Image {
	return chat.Image{Name: a.Filename, Open: func(ctx context.Context) (io.ReadCloser, error) {
		if a.ContentType != "" && !strings.HasPrefix(a.ContentType, "image/") {
			return nil, engine.Errorf(engine.EINVALID, "%s is not an image.", "%s 不是图片。", a.Filename)
		}
		if int64(a.Size) > b.cfg.MaxInput {
			return nil, engine.Errorf(engine.EINVALID, "%s is too large: at most %d MB.", "%s 太大了：最大 %d MB。", a.Filename, b.cfg.MaxInput>>20)
		}
		u := a.URL
		if u == "" {
			u = a.ProxyURL
		}
		if !strings.HasPrefix(u, "https://") && !strings.HasPrefix(u, "http://") {
			return nil, engine.Errorf(engine.EINVALID, "%s has no link to fetch.", "%s 没有可下载的链接。", a.Filename)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return nil, fmt.Errorf("attachment %s: %w", a.Filename, err)
		}
		resp, err := b.fetch.Do(req)
		if err != nil {
			return nil, fmt.Errorf("fetch attachment %s: %w", a.Filename, err)
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			return nil, fmt.Errorf("fetch attachment %s: HTTP %d", a.Filename, resp.StatusCode)
		}
		return resp.Body, nil
	}}
}

// Button actions: the chat's, and the original of a re-encoded result.
const actionOriginal = "orig"

// button is a result button's custom id: "action:job:index", and the
// owner's user id as a fourth part on buttons the bot made, so a stranger's
// press is refused without reading the store.
type button struct {
	action string
	job    string
	index  int
	owner  string
}

func (k button) id() string {
	return fmt.Sprintf("%s:%s:%d:%s", k.action, k.job, k.index, k.owner)
}

func parseButton(id string) (button, bool) {
	parts := strings.Split(id, ":")
	if len(parts) != 3 && len(parts) != 4 {
		return button{}, false
	}
	k := button{action: parts[0], job: strings.ToLower(parts[1])}
	switch k.action {
	case chat.ActionAgain, chat.ActionVary, chat.ActionUpscale, actionOriginal:
	default:
		return button{}, false
	}
	n, err := strconv.Atoi(parts[2])
	if err != nil || n < 0 || n > 9 || k.job == "" || len(k.job) > 32 {
		return button{}, false
	}
	k.index = n
	if len(parts) == 4 {
		k.owner = parts[3]
	}
	return k, true
}

// follow starts a job from a button under an earlier result.
func (b *Bot) follow(ctx context.Context, ev *event, k button) error {
	if b.cfg.ButtonUsers == ButtonsAuthor {
		parent, err := b.eng.Job(ctx, k.job)
		if err != nil {
			return chat.TooOld(err, k.job)
		}
		if parent.Owner.Platform != Platform || parent.Owner.ID != ev.user.ID {
			return errNotAuthor
		}
	}
	m := chat.Message{User: ev.user, Chat: ev.chat}
	return b.start(ctx, ev, func(ctx context.Context) chat.Reply { return b.svc.Follow(ctx, m, k.job, k.action, k.index) })
}

// original posts a re-encoded result's original file, privately.
func (b *Bot) original(ctx context.Context, ev *event, k button) error {
	j, err := b.eng.Job(ctx, k.job)
	if err != nil {
		return chat.TooOld(err, k.job)
	}
	lang := ev.lang()
	if k.index >= len(j.Results) {
		return engine.Errorf(engine.ENOTFOUND, "That picture is no longer available.", "那张图片已不可用。")
	}
	r := j.Results[k.index]
	if u := b.originalURL(j, k.index); u != "" {
		return b.editText(ctx, ev, chat.T(lang, "The original, %d×%d, %s: %s", "原图，%d×%d，%s：%s", r.Width, r.Height, megabytes(r.Size), u))
	}
	if r.Size > b.cfg.MaxUpload {
		return engine.Errorf(engine.EINVALID, "The original (%s) is larger than the bot may post here.", "原图（%s）超过了机器人在这里能发送的大小。", megabytes(r.Size))
	}
	data, err := b.readBlob(ctx, r.Blob)
	if err != nil {
		return err
	}
	m := &message{Content: chat.T(lang, "The original, %d×%d.", "原图，%d×%d。", r.Width, r.Height), AllowedMentions: noMentions()}
	m.attach(upload{Name: fmt.Sprintf("%s-%d-original%s", j.ID, k.index+1, chat.Ext(r.Mime)), Mime: r.Mime, Data: data})
	_, err = b.editFirst(ctx, ev, m)
	return err
}

func megabytes(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/(1<<20)) }

// autocomplete suggests values for the focused option: models, LoRAs and
// negative embeddings from the vendors' catalogues, or the user's running jobs.
func (b *Bot) autocomplete(ctx context.Context, ev *event, d discordgo.ApplicationCommandInteractionData) []*discordgo.ApplicationCommandOptionChoice {
	var focused *discordgo.ApplicationCommandInteractionDataOption
	for _, o := range d.Options {
		if o != nil && o.Focused {
			focused = o
		}
	}
	out := []*discordgo.ApplicationCommandOptionChoice{}
	if focused == nil {
		return out
	}
	typed, _ := focused.Value.(string)
	typed = strings.TrimSpace(command.StripControls(typed)) // offered back as a value
	switch d.Name + "/" + focused.Name {
	case "draw/model":
		return b.catalogChoices(ctx, engine.EntryModel, "", typed)
	case "draw/lora":
		return b.catalogChoices(ctx, engine.EntryLoRA, "", typed)
	case "draw/negative":
		// Negative prompts are free text: suggest embeddings for the last
		// comma-separated part, keeping what comes before it.
		head, last := "", typed
		if i := strings.LastIndex(typed, ","); i >= 0 {
			head, last = strings.TrimSpace(typed[:i])+", ", strings.TrimSpace(typed[i+1:])
		}
		if typed != "" && len(typed) <= 100 {
			out = append(out, &discordgo.ApplicationCommandOptionChoice{Name: typed, Value: typed})
		}
		for _, c := range b.catalogChoices(ctx, engine.EntryEmbedding, head, last) {
			if len(out) < 25 && c.Value != typed {
				out = append(out, c)
			}
		}
		return out
	case "draw/preset", "settings/preset":
		return b.presetChoices(typed)
	case "show/job":
		return b.jobChoices(ctx, ev, typed)
	case "cancel/job":
		jobs, err := b.eng.Jobs(ctx, ev.user, 25)
		if err != nil {
			b.log.Warn("autocomplete jobs", slog.String("user_id", ev.user.ID), slog.Any("err", err))
			return out
		}
		for _, j := range jobs {
			if j.State.Terminal() || j.State == engine.StateSucceeded || !strings.Contains(j.ID, strings.ToLower(typed)) {
				continue
			}
			name := fmt.Sprintf("%s · %s · /%s %s", j.ID, engine.StateText(j.State, ev.lang()), j.Request.Kind, j.Request.Prompt)
			out = append(out, &discordgo.ApplicationCommandOptionChoice{Name: chat.Cut(name, 100), Value: j.ID})
		}
	}
	return out
}

// catalogChoices lists catalogue entries of kind that match typed, best first.
func (b *Bot) catalogChoices(ctx context.Context, kind, prefix, typed string) []*discordgo.ApplicationCommandOptionChoice {
	out := []*discordgo.ApplicationCommandOptionChoice{}
	q := strings.ToLower(typed)
	type scored struct {
		e     engine.CatalogEntry
		score int
	}
	var found []scored
	for _, e := range b.catalog.get(ctx) {
		if e.Kind != kind || e.Adult {
			continue
		}
		name, id := strings.ToLower(e.Name), strings.ToLower(e.ID)
		score := -1
		switch {
		case q == "":
			score = 2
		case strings.HasPrefix(name, q) || strings.HasPrefix(id, q):
			score = 0
		case strings.Contains(name, q) || strings.Contains(id, q):
			score = 1
		default:
			for _, t := range e.Tags {
				if strings.Contains(strings.ToLower(t), q) {
					score = 2
					break
				}
			}
		}
		if score >= 0 {
			found = append(found, scored{e, score})
		}
	}
	sort.SliceStable(found, func(i, j int) bool { return found[i].score < found[j].score })
	for _, f := range found {
		value := prefix + f.e.ID
		if len(value) > 100 || len(out) == 25 {
			continue
		}
		name := f.e.Name
		if name == "" {
			name = f.e.ID
		}
		if f.e.Base != "" {
			name += " (" + f.e.Base + ")"
		}
		out = append(out, &discordgo.ApplicationCommandOptionChoice{Name: chat.Cut(name, 100), Value: value})
	}
	return out
}

// catalogue caches the vendors' catalogue for autocomplete, which must answer within 3 s.
type catalogue struct {
	list func(ctx context.Context) ([]engine.CatalogEntry, error)
	now  func() time.Time
	ttl  time.Duration

	mu      sync.Mutex
	entries []engine.CatalogEntry
	at      time.Time
}

func (c *catalogue) get(ctx context.Context) []engine.CatalogEntry {
	if c.list == nil {
		return nil
	}
	c.mu.Lock()
	entries, fresh := c.entries, !c.at.IsZero() && c.now().Sub(c.at) < c.ttl
	c.mu.Unlock()
	if fresh {
		return entries
	}
	got, err := c.list(ctx)
	if err != nil {
		return entries // stale is better than nothing
	}
	c.mu.Lock()
	c.entries, c.at = got, c.now()
	c.mu.Unlock()
	return got
}
