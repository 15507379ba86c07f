package discord

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/bwmarrin/discordgo"
	"github.com/picbot/picbot/bots/chat"
	"github.com/picbot/picbot/engine"
)

// Keys of the adapter's notes on a job (engine.Job.Meta).
const (
	metaTicket  = "discord"         // the ticket, as JSON
	metaMessage = "discord.message" // the original response's message id
	metaPosted  = "discord.posted"  // "1": the result (or the notice) is posted
)

// ticket is what posting a job's result needs, kept on the job so that
// delivery works after a restart.
type ticket struct {
	App     string    `json:"app,omitempty"`
	Token   string    `json:"token,omitempty"` // the interaction token; empty: post to the channel
	Expires time.Time `json:"expires,omitzero"`
	Channel string    `json:"channel"`
	Guild   string    `json:"guild,omitempty"` // empty: a DM
	User    string    `json:"user"`
	Locale  string    `json:"locale,omitempty"`
	// TokenOnly: the bot is not a member where the command came from (a user
	// install), so the interaction is the only way to answer; past its
	// token the result waits for /show.
	TokenOnly bool `json:"token_only,omitempty"`
	// Thread is the job's own thread, opened on the original response:
	// the result goes there.
	Thread string `json:"thread,omitempty"`
}

// SetWake implements engine.Waker: a delivery told to come back later for
// a busy post lane is called back when a lane frees (postlane.Lanes.SetWake).
func (b *Bot) SetWake(wake func(jobID string)) { b.lanes.SetWake(wake) }

// Watching implements engine.Watcher: the response can show progress while
// the interaction token is good for edits.
func (b *Bot) Watching(j *engine.Job) bool {
	var t ticket
	if json.Unmarshal([]byte(j.Meta[metaTicket]), &t) != nil {
		return false
	}
	lv := &live{t: t}
	_, ok := b.tokenDeadline(lv)
	return ok
}

// live is a job's delivery state in this process. Its lock keeps one edit
// at a time, so a late progress edit never overwrites the result.
type live struct {
	mu        sync.Mutex
	t         ticket
	message   string // the original response's message id, once known
	text      string // the progress text shown last
	preview   uint64 // the preview shown last (chat.PreviewKey); vendors repeat their latest
	edited    bool   // progress has replaced the first response
	done      bool   // the result is posted
	doneAt    time.Time
	notBefore time.Time
}

// expect makes the ticket for an interaction that may start a job. The
// engine finds it by the job's Chat.MessageID (the interaction id) until adopt.
func (b *Bot) expect(ev *event) *live {
	lv := &live{t: b.ticketFor(ev)}
	b.mu.Lock()
	b.byInteraction[ev.in.ID] = lv
	b.mu.Unlock()
	return lv
}

// ticketFor is the ticket of the interaction of ev.
func (b *Bot) ticketFor(ev *event) ticket {
	return ticket{
		App: ev.app, Token: ev.in.Token, Expires: ev.received.Add(b.cfg.TokenLifetime),
		Channel: ev.chat.ChatID, Guild: ev.chat.GuildID, User: ev.user.ID, Locale: string(ev.in.Locale),
		TokenOnly: botAbsent(ev.in),
	}
}

func (b *Bot) unexpect(ev *event) {
	b.mu.Lock()
	delete(b.byInteraction, ev.in.ID)
	b.mu.Unlock()
}

// adopt files the ticket under its job and persists it with the job.
func (b *Bot) adopt(ctx context.Context, j *engine.Job, lv *live) {
	b.mu.Lock()
	b.sweep()
	b.byJob[j.ID] = lv
	delete(b.byInteraction, j.Chat.MessageID)
	b.mu.Unlock()
	data, _ := json.Marshal(lv.t)
	if err := b.eng.Annotate(ctx, j.ID, metaTicket, string(data)); err != nil {
		// The job lives on; after a restart its result goes to the channel.
		b.log.Error("persist delivery ticket", slog.String("job_id", j.ID), slog.Any("err", err))
	}
}

// lookup returns the job's delivery state: from memory, from the job's
// notes after a restart, or, if neither has it, the job's chat.
func (b *Bot) lookup(j *engine.Job) *live {
	b.mu.Lock()
	if lv, ok := b.byJob[j.ID]; ok {
		b.mu.Unlock()
		return lv
	}
	if lv, ok := b.byInteraction[j.Chat.MessageID]; ok && j.Chat.MessageID != "" {
		b.byJob[j.ID] = lv
		b.mu.Unlock()
		return lv
	}
	b.mu.Unlock()
	lv := &live{t: ticket{App: b.cfg.ApplicationID, Channel: j.Chat.ChatID, Guild: j.Chat.GuildID, User: j.Owner.ID}}
	if raw, ok := j.Meta[metaTicket]; ok {
		var t ticket
		if err := json.Unmarshal([]byte(raw), &t); err == nil {
			lv.t = t
		} else {
			b.log.Warn("unreadable delivery ticket", slog.String("job_id", j.ID), slog.Any("err", err))
		}
	}
	lv.message = j.Meta[metaMessage]
	b.mu.Lock()
	defer b.mu.Unlock()
	if other, ok := b.byJob[j.ID]; ok {
		return other
	}
	b.byJob[j.ID] = lv
	return lv
}

// sweep drops the state of jobs delivered over an hour ago; b.mu is held.
func (b *Bot) sweep() {
	now := b.now()
	if now.Sub(b.swept) < time.Minute {
		return
	}
	b.swept = now
	for id, lv := range b.byJob {
		if lv.mu.TryLock() {
			if lv.done && now.Sub(lv.doneAt) > time.Hour {
				delete(b.byJob, id)
			}
			lv.mu.Unlock()
		}
	}
}

// lang is the language to post a job's messages in.
func (b *Bot) lang(j *engine.Job, lv *live) engine.Lang {
	if lv.t.Locale != "" {
		return engine.ParseLang(lv.t.Locale)
	}
	return j.Owner.Lang
}

// margin is kept between a token call's deadline and the token's expiry.
func (b *Bot) margin() time.Duration { return min(b.cfg.TokenLifetime/10, 30*time.Second) }

// tokenDeadline says until when calls with the interaction token may run,
// and whether a call may start now.
func (b *Bot) tokenDeadline(lv *live) (time.Time, bool) {
	if lv.t.Token == "" || lv.t.Expires.IsZero() {
		return time.Time{}, false
	}
	deadline := lv.t.Expires.Add(-b.margin())
	return deadline, b.now().Before(deadline.Add(-b.margin()))
}

// remember records the original response's message id, which a late
// result replies to.
func (b *Bot) remember(ctx context.Context, jobID string, lv *live, msg *discordgo.Message) {
	if msg == nil || msg.ID == "" || lv.message == msg.ID {
		return
	}
	lv.message = msg.ID
	if err := b.eng.Annotate(ctx, jobID, metaMessage, msg.ID); err != nil {
		b.log.Warn("persist message id", slog.String("job_id", jobID), slog.Any("err", err))
	}
}

// noteError adjusts to a failed token call: a 429 pauses edits, a dead token is dropped.
func (b *Bot) noteError(lv *live, err error) {
	if d, ok := rateLimited(err); ok {
		lv.notBefore = b.now().Add(d)
	}
	if tokenGone(err) {
		lv.t.Token = ""
	}
}

// Progress edits the original response with a progress bar and the
// vendor's preview, at most once per ProgressEvery per job, and only while
// the interaction token is good: progress is not worth a channel message.
func (b *Bot) Progress(ctx context.Context, j *engine.Job, p engine.Progress) {
	lv := b.lookup(j)
	lv.mu.Lock()
	defer lv.mu.Unlock()
	deadline, ok := b.tokenDeadline(lv)
	if lv.done || !ok || b.now().Before(lv.notBefore) {
		return
	}
	text := chat.Status(j, p, b.lang(j, lv))
	if lv.t.TokenOnly {
		text += b.onlyHereNote(b.lang(j, lv), j.ID) // the progress replaces the first answer's note
	}
	if len(p.Preview) > 0 && chat.PreviewKey(p.Preview) == lv.preview {
		p.Preview = nil // shown already
	}
	if text == lv.text && len(p.Preview) == 0 {
		return
	}
	if ok, _ := b.edits.Allow(j.ID); !ok {
		return
	}
	m := &message{Content: text, AllowedMentions: noMentions()}
	if n := int64(len(p.Preview)); n > 0 && n <= b.cfg.MaxUpload {
		mime := http.DetectContentType(p.Preview)
		name := "preview" + chat.Ext(mime)
		m.attach(upload{Name: name, Mime: mime, Data: p.Preview})
		m.Embeds = []*discordgo.MessageEmbed{{Image: &discordgo.MessageEmbedImage{URL: "attachment://" + name}, Color: colour}}
	}
	ctx, cancel := context.WithDeadline(ctx, minTime(deadline, b.now().Add(10*time.Second)))
	defer cancel()
	msg, err := b.api.editOriginal(ctx, lv.t.App, lv.t.Token, m)
	if err != nil {
		b.noteError(lv, err)
		b.log.Debug("progress edit", slog.String("job_id", j.ID), slog.String("chat_id", lv.t.Channel), slog.Any("err", err))
		return
	}
	lv.text, lv.edited = text, true
	if len(p.Preview) > 0 {
		lv.preview = chat.PreviewKey(p.Preview)
	}
	b.remember(ctx, j.ID, lv, msg)
}

// Deliver posts a finished job: its images with buttons, or why it ended.
// While the interaction token is good the original response is edited;
// later (or if the token fails) the result goes to the channel, replying to
// the command, or to the user's DMs when the command came from one.
func (b *Bot) Deliver(ctx context.Context, j *engine.Job) error {
	lv := b.lookup(j)
	lv.mu.Lock()
	defer lv.mu.Unlock()
	if lv.done {
		return nil
	}
	if j.Meta[metaPosted] != "" {
		// Posted and noted before a restart; the engine had not recorded it yet.
		lv.done, lv.doneAt = true, b.now()
		return nil
	}
	lang := b.lang(j, lv)
	budget := b.cfg.MaxUpload
	var err error
	for try := 0; try < 3; try++ {
		var m *message
		if m, err = b.compose(ctx, j, lang, budget); err != nil {
			return err
		}
		if err = b.postNoted(ctx, j, lv, m); err == nil || !tooLarge(err) {
			break
		}
		// Discord's limit here is lower than configured: shrink and try again.
		budget /= 2
	}
	if d, limited := rateLimited(err); limited {
		// The channel's bucket is empty: the engine tries again after the
		// wait, and no worker sleeps on it meanwhile.
		return &engine.Later{After: d}
	}
	if err != nil {
		return err
	}
	// Kept a while, so a repeated call (the engine failed to record the
	// delivery) does not post twice.
	lv.done, lv.doneAt = true, b.now()
	return nil
}

// postNoted posts m and notes it on the job, holding a post lane from the
// request to the note, so that at most as many posts as there are lanes
// are made and not recorded at once: a crash repeats at most that many (an
// edit of the original response repeated shows nothing twice, but one
// repeated after the token expired goes to the channel as a second copy).
// A lane busy takes nothing and returns an *engine.Later.
func (b *Bot) postNoted(ctx context.Context, j *engine.Job, lv *live, m *message) error {
	wctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(b.base, cancel) // Run's end ends a wait in line too
	release, later := b.lanes.Take(wctx, j.ID)
	stop()
	cancel()
	if release == nil {
		return &engine.Later{After: later}
	}
	defer release()
	if err := b.post(ctx, j, lv, m); err != nil {
		return err
	}
	if err := b.eng.Annotate(ctx, j.ID, metaPosted, "1"); err != nil {
		// lv.done still keeps this process from posting it again.
		b.log.Warn("note delivery", slog.String("job_id", j.ID), slog.Any("err", err))
	}
	return nil
}

// post sends m by the interaction token if it is good, else to the channel.
func (b *Bot) post(ctx context.Context, j *engine.Job, lv *live, m *message) error {
	if lv.t.Thread != "" {
		return b.postToThread(ctx, j, lv, m)
	}
	if deadline, ok := b.tokenDeadline(lv); ok {
		err := b.postByToken(ctx, j, lv, m, deadline)
		if _, later := engine.AsLater(err); later || err == nil || tooLarge(err) || ctx.Err() != nil {
			return err
		}
		if isTimeout(err) && b.landed(ctx, j, lv, m) {
			return nil // the edit took effect; its answer came too late
		}
		if _, ok := b.tokenDeadline(lv); ok && !tokenGone(err) && !isTimeout(err) {
			if _, limited := rateLimited(err); !limited && b.now().Add(30*time.Second).Before(deadline) {
				return err // transient, and time enough: the engine tries again
			}
		}
		if !lv.t.TokenOnly {
			b.log.Info("interaction token unusable; posting to the channel", slog.String("job_id", j.ID),
				slog.String("chat_id", lv.t.Channel), slog.Any("err", err))
		}
	}
	if lv.t.TokenOnly {
		// Not a member here: no channel to post to. The first answer named
		// /show, which posts the result through a new interaction.
		b.log.Info("interaction token unusable where the bot is not a member; the result waits for /show",
			slog.String("job_id", j.ID), slog.String("chat_id", lv.t.Channel))
		return nil
	}
	return b.postToChannel(ctx, j, lv, m)
}

func isTimeout(err error) bool {
	var e *apiError
	return errors.As(err, &e) && errors.Is(e.Err, context.DeadlineExceeded)
}

// postByToken edits the original response. It never waits: a 429 (or a
// bucket the rate limiter holds) that ends before the token's deadline
// asks the engine to try later; one that outlasts the token is an error,
// and the result goes to the channel instead.
func (b *Bot) postByToken(ctx context.Context, j *engine.Job, lv *live, m *message, deadline time.Time) error {
	if wait := lv.notBefore.Sub(b.now()); wait > 0 {
		if !b.now().Add(wait).Before(deadline) {
			return &apiError{Op: "edit original response", Status: http.StatusTooManyRequests, RetryAfter: wait, Msg: "rate limited past the token's expiry"}
		}
		return &engine.Later{After: wait}
	}
	cctx, cancel := context.WithDeadline(ctx, deadline)
	msg, err := b.api.editOriginal(cctx, lv.t.App, lv.t.Token, m)
	cancel()
	if err == nil {
		b.remember(ctx, j.ID, lv, msg)
		return nil
	}
	b.noteError(lv, err)
	if d, limited := rateLimited(err); limited && b.now().Add(d).Before(deadline) {
		return &engine.Later{After: d}
	}
	return err
}

// landed reports whether an edit of the original response whose answer
// never came took effect: Discord may have applied it, and a channel
// message as well would show the result twice. It asks Discord in the
// token's last moments (the margin kept before its expiry), and once the
// token is past reading, by the bot's token for the response's message id
// when it is known; if Discord cannot say, the result goes to the channel:
// twice is better than never.
func (b *Bot) landed(ctx context.Context, j *engine.Job, lv *live, m *message) bool {
	if lv.t.Token == "" {
		return false
	}
	msg, err := b.readOriginal(ctx, lv)
	if err != nil {
		b.log.Info("could not read the original response after an edit timed out", slog.String("job_id", j.ID), slog.Any("err", err))
		return false
	}
	if len(m.files) == 0 {
		if m.Content == "" || msg.Content != m.Content {
			return false
		}
	} else {
		names := make(map[string]bool, len(msg.Attachments))
		for _, a := range msg.Attachments {
			if a != nil {
				names[a.Filename] = true
			}
		}
		for _, f := range m.files {
			if !names[f.Name] {
				return false
			}
		}
	}
	b.log.Info("an edit that timed out had been applied", slog.String("job_id", j.ID), slog.String("chat_id", lv.t.Channel))
	b.remember(ctx, j.ID, lv, msg)
	return true
}

// readOriginal reads the interaction's original response: by the
// interaction token while it lives, else as a channel message.
func (b *Bot) readOriginal(ctx context.Context, lv *live) (*discordgo.Message, error) {
	tctx, cancel := context.WithDeadline(ctx, lv.t.Expires)
	msg, err := b.api.getOriginal(tctx, lv.t.App, lv.t.Token)
	cancel()
	if err == nil || lv.message == "" || lv.t.Channel == "" || ctx.Err() != nil {
		return msg, err
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	msg, cerr := b.api.channelMessage(cctx, lv.t.Channel, lv.message)
	if cerr != nil {
		return nil, fmt.Errorf("%w; then by the bot token: %w", err, cerr)
	}
	return msg, nil
}

// postToChannel sends m as a normal message: a reply to the command in its
// channel, or a DM for a command from one.
func (b *Bot) postToChannel(ctx context.Context, j *engine.Job, lv *live, m *message) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	channel := lv.t.Channel
	if lv.t.Guild == "" {
		dm, err := b.api.dmChannel(ctx, lv.t.User)
		if err != nil {
			if forbidden(err) {
				return engine.Wrap(engine.EUNDELIVERED, err, "The picture could not be posted here.", "图片无法发送到这里。")
			}
			return err
		}
		channel = dm
	}
	if lv.message != "" {
		no := false
		m.Reference = &discordgo.MessageReference{MessageID: lv.message, ChannelID: lv.t.Channel, GuildID: lv.t.Guild, FailIfNotExists: &no}
		if channel != lv.t.Channel {
			m.Reference = nil // the command was elsewhere
		}
	}
	if lv.t.Guild != "" && lv.t.User != "" {
		m.Content = chat.Cut("<@"+lv.t.User+"> "+m.Content, 2000)
		m.AllowedMentions = &discordgo.MessageAllowedMentions{Parse: []discordgo.AllowedMentionType{}, Users: []string{lv.t.User}}
	}
	_, err := b.api.send(ctx, channel, m)
	if err != nil && forbidden(err) {
		return engine.Wrap(engine.EUNDELIVERED, err, "The picture could not be posted here.", "图片无法发送到这里。")
	}
	return err
}

// colour is the embeds' side bar.
const colour = 0x5865F2

// compose builds the message for a finished job; images are made to fit budget bytes in all.
func (b *Bot) compose(ctx context.Context, j *engine.Job, lang engine.Lang, budget int64) (*message, error) {
	m := &message{AllowedMentions: noMentions()}
	if j.State != engine.StateSucceeded {
		m.Content = chat.Ended(j, lang)
		return m, nil
	}
	if len(j.Results) == 0 {
		return nil, engine.Errorf(engine.EUNDELIVERED, "The job has no pictures.", "任务没有图片。")
	}
	raw := make([][]byte, len(j.Results))
	var total int64
	for i, r := range j.Results {
		data, err := b.readBlob(ctx, r.Blob)
		if err != nil {
			return nil, err
		}
		raw[i] = data
		total += int64(len(data))
	}
	per := budget
	if total > budget {
		per = budget / int64(len(raw))
	}
	shrunk := make([]bool, len(raw))
	for i, data := range raw {
		out, mime, changed, err := fit(data, j.Results[i].Mime, per)
		if err != nil {
			return nil, engine.Wrap(engine.EUNDELIVERED, err, "The picture is too large to post.", "图片太大，无法发送。")
		}
		shrunk[i] = changed
		name := fmt.Sprintf("%s-%d%s", j.ID, i+1, chat.Ext(mime))
		m.attach(upload{Name: name, Mime: mime, Data: out})
		e := &discordgo.MessageEmbed{Image: &discordgo.MessageEmbedImage{URL: "attachment://" + name}, Color: colour}
		if i == 0 {
			e.Description = chat.Caption(j, lang, 4000)
		}
		m.Embeds = append(m.Embeds, e)
	}
	for _, s := range shrunk {
		if s {
			m.Embeds[len(m.Embeds)-1].Footer = &discordgo.MessageEmbedFooter{Text: chat.T(lang,
				"Re-encoded to fit Discord's upload limit; the Original button has the full file.",
				"为符合 Discord 的上传限制已重新压缩；点“原图”按钮可获取原始文件。")}
			break
		}
	}
	m.Components = b.buttons(j, lang, shrunk)
	return m, nil
}

// buttons go under a result: again, and per image vary, upscale and, for
// a re-encoded image, its original.
func (b *Bot) buttons(j *engine.Job, lang engine.Lang, shrunk []bool) []discordgo.MessageComponent {
	btn := func(action string, i int, label string, style discordgo.ButtonStyle) discordgo.MessageComponent {
		return discordgo.Button{Label: label, Style: style, CustomID: button{action: action, job: j.ID, index: i, owner: j.Owner.ID}.id()}
	}
	n := len(j.Results)
	num := func(en, zh string, i int) string {
		label := en
		if lang == engine.ZH {
			label = zh
		}
		if n == 1 {
			return label
		}
		return label + " " + strconv.Itoa(i+1)
	}
	perImage := func(i int) []discordgo.MessageComponent {
		row := []discordgo.MessageComponent{
			btn(chat.ActionVary, i, num("Vary", "变体", i), discordgo.SecondaryButton),
			btn(chat.ActionUpscale, i, num("Upscale", "放大", i), discordgo.SecondaryButton),
		}
		if shrunk[i] {
			label := num("Original", "原图", i)
			if u := b.originalURL(j, i); u != "" {
				row = append(row, discordgo.Button{Label: label, Style: discordgo.LinkButton, URL: u})
			} else if j.Results[i].Size <= b.cfg.MaxUpload {
				row = append(row, btn(actionOriginal, i, label, discordgo.SecondaryButton))
			}
		}
		return row
	}
	again := btn(chat.ActionAgain, 0, chat.T(lang, "Again", "再来一次"), discordgo.PrimaryButton)
	if n == 1 {
		return []discordgo.MessageComponent{discordgo.ActionsRow{Components: append([]discordgo.MessageComponent{again}, perImage(0)...)}}
	}
	rows := []discordgo.MessageComponent{discordgo.ActionsRow{Components: []discordgo.MessageComponent{again}}}
	for i := 0; i < n && len(rows) < 5; i++ {
		rows = append(rows, discordgo.ActionsRow{Components: perImage(i)})
	}
	return rows
}

// originalURL is a signed link to a result on the bot's HTTP server, or ""
// without a public URL. The key is the job's own secret, so links work after a restart.
func (b *Bot) originalURL(j *engine.Job, i int) string {
	if b.cfg.PublicURL == "" || j.CallbackToken == "" {
		return ""
	}
	return fmt.Sprintf("%s%s/%s/%d/%s", b.cfg.PublicURL, originalPath, j.ID, i, sign(j, i))
}

// originalPath is where originals are served.
const originalPath = "/discord/original"

func sign(j *engine.Job, i int) string {
	mac := hmac.New(sha256.New, []byte(j.CallbackToken))
	fmt.Fprintf(mac, "discord-original/%s/%d", j.ID, i)
	return hex.EncodeToString(mac.Sum(nil))[:32]
}

func (b *Bot) readBlob(ctx context.Context, key string) ([]byte, error) {
	rc, err := b.blobs.Open(ctx, key)
	if err != nil {
		if engine.ErrorCode(err) == engine.ENOTFOUND {
			return nil, engine.Wrap(engine.EUNDELIVERED, err, "The picture is no longer kept.", "图片已不再保存。")
		}
		return nil, fmt.Errorf("open image: %w", err)
	}
	defer rc.Close()
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, rc); err != nil {
		return nil, fmt.Errorf("read image: %w", err)
	}
	return buf.Bytes(), nil
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
