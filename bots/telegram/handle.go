package telegram

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"
	"github.com/picbot/picbot/bots/chat"
	"github.com/picbot/picbot/bots/command"
	"github.com/picbot/picbot/engine"
)

// Limits of the Bot API on what the bot sends.
const (
	maxText     = 4096 // a message's text
	maxCaption  = 1024 // a photo's or document's caption
	maxAnswer   = 200  // a callback query's answer
	maxCallback = 64   // a button's callback_data, bytes
)

func isCommand(text string) bool { return command.IsCommand(text) }

// onMessage runs the command a message carries. parts are the messages of
// the album msg belongs to, in order, when it is one.
// thread is the forum topic it was sent in (0: none, or General).
func (b *Bot) onMessage(ctx context.Context, updateID int, msg *tgbotapi.Message, thread int, parts []*tgbotapi.Message) error {
	if msg.Chat == nil || !b.chatAllowed(msg.Chat) || msg.IsAutomaticForward {
		// An automatic forward is a channel's post copied into its discussion
		// group: the post itself was the command.
		return nil
	}
	text := msg.Text
	if text == "" {
		text = msg.Caption // the SDK's Command() ignores captions: they are parsed here
	}
	cref := chatRef(msg.Chat, msg.MessageID, updateID, thread)
	user, ok := b.sender(ctx, msg, isCommand(text))
	if !ok {
		return nil
	}
	log := b.log.With(slog.String("chat_id", cref.ChatID), slog.String("user_id", user.ID))
	if isCommand(text) && b.special(ctx, cref, user, text) {
		return nil
	}
	if !isCommand(text) {
		// Plain talk is not for the bot; in a private chat, say what it understands.
		if cref.Private && (msg.Text != "" || len(msg.Photo) > 0 || msg.Document != nil) {
			b.reply(ctx, cref, chat.T(user.Lang, "Send a command, like /draw a red fox, or a photo with /anime as its caption. /help lists them all.",
				"请发送命令，例如 /draw 一只红狐狸，或发一张照片并以 /anime 作为说明文字。/help 查看全部命令。"))
		}
		return nil
	}
	c, err := command.Parse(text)
	if c != nil && c.Mention != "" && !strings.EqualFold(c.Mention, b.username) {
		return nil // "/draw@OtherBot": another bot's command
	}
	if err != nil && !cref.Private && !b.addressed(text) && (c == nil || !slices.Contains(command.Names, c.Name)) {
		return nil // an unknown command in a group may be another bot's
	}
	m := chat.Message{User: user, Chat: cref, Text: text, ChatAdmin: b.chatAdmin(msg)}
	isJob := err == nil && c.IsJob()
	if err == nil {
		m.Command = c
	}
	if isJob {
		if j := b.existing(ctx, user, cref); j != nil {
			// Handled before a restart up to the job's creation: do not run it twice.
			log.Info("update already made a job", slog.Int("update_id", updateID), slog.String("job_id", j.ID))
			b.resume(ctx, j)
			return nil
		}
		m.Images = b.images(msg, parts)
	}
	r := b.svc.Handle(ctx, m)
	if isJob && r.Job == nil && r.Err != nil && errors.Is(r.Err, engine.ErrNotRecorded) {
		// The store is down: no reply, and the update is refused so Telegram
		// sends it again (webhook) or it is fetched again (getUpdates).
		return fmt.Errorf("job of update %d: %w", updateID, r.Err)
	}
	if isJob && r.Job != nil {
		b.replyStatus(ctx, r.Job, r.Text)
		return nil
	}
	if r.Show != nil {
		b.show(cref, r.Show, r.Text)
		return nil
	}
	reply := r.Text
	if err == nil && (c.Name == "help" || c.Name == "start") {
		reply += "\n\n" + telegramHelp(user.Lang)
	}
	b.reply(ctx, cref, reply)
	return nil
}

// addressed reports whether a command line's first word names this bot.
func (b *Bot) addressed(text string) bool {
	first, _, _ := strings.Cut(strings.TrimSpace(text), " ")
	return b.username != "" && strings.HasSuffix(strings.ToLower(first), "@"+strings.ToLower(b.username))
}

// onCallback runs a button under a result. Every query is answered.
func (b *Bot) onCallback(ctx context.Context, updateID int, q *tgbotapi.CallbackQuery, thread int) {
	var lang engine.Lang
	if q.From != nil {
		lang = engine.ParseLang(q.From.LanguageCode)
	}
	answer := func(text string, alert bool) {
		cfg := tgbotapi.CallbackConfig{CallbackQueryID: q.ID, Text: cut(text, maxAnswer), ShowAlert: alert}
		if _, err := b.post(ctx, 0, false, callTimeout, fixed(cfg)); err != nil {
			b.log.Warn("answerCallbackQuery failed", slog.Any("err", err))
		}
	}
	if q.InlineMessageID != "" {
		// The button of an inline placeholder: nothing to do but wait.
		answer(chat.T(lang, "Drawing… the picture will replace this message.", "正在生成…图片会替换这条消息。"), false)
		return
	}
	if q.From == nil || q.Message == nil || q.Message.Chat == nil {
		answer(chat.T(lang, "This button no longer works.", "这个按钮已失效。"), true)
		return
	}
	if !b.chatAllowed(q.Message.Chat) {
		answer(chat.T(lang, "This bot does not serve this chat.", "本机器人不在这个聊天中提供服务。"), true)
		return
	}
	action, id, index, ok := parseButton(q.Data)
	if !ok {
		answer(chat.T(lang, "Unknown button.", "未知按钮。"), true)
		return
	}
	user := userRef(q.From)
	cref := chatRef(q.Message.Chat, q.Message.MessageID, updateID, thread)
	if action == actionOriginal {
		j, err := b.jobs.Job(ctx, id)
		if engine.ErrorCode(err) == engine.ENOTFOUND {
			answer(engine.AsError(chat.TooOld(err, id)).Message(lang), true)
			return
		}
		if err != nil || len(j.Results) == 0 {
			answer(chat.T(lang, "That picture is no longer available.", "那张图片已不可用。"), true)
			return
		}
		answer(chat.T(lang, "Sending the original file…", "正在发送原图文件…"), false)
		b.outbox(q.Message.Chat.ID, func(ctx context.Context) {
			if err := b.sendOriginals(ctx, j, cref, index); err != nil {
				b.log.Warn("send original files", slog.String("job_id", j.ID), slog.String("chat_id", cref.ChatID), slog.Any("err", err))
			}
		})
		return
	}
	if j := b.existing(ctx, user, cref); j != nil {
		answer(chat.Accepted(j, lang), false)
		b.resume(ctx, j)
		return
	}
	r := b.svc.Follow(ctx, chat.Message{User: user, Chat: cref}, id, action, index)
	if r.Job == nil {
		answer(r.Text, true)
		return
	}
	answer(r.Text, false)
	b.replyStatus(ctx, r.Job, r.Text)
}

// Button actions: the chat's, and the original file.
const actionOriginal = "orig"

// button is a button's callback_data: "<action>:<job id>:<result index>".
func button(action, jobID string, index int) string {
	return fmt.Sprintf("%s:%s:%d", action, jobID, index)
}

func parseButton(data string) (action, jobID string, index int, ok bool) {
	parts := strings.Split(data, ":")
	if len(parts) != 3 || parts[1] == "" {
		return "", "", 0, false
	}
	switch parts[0] {
	case chat.ActionAgain, chat.ActionVary, chat.ActionUpscale, actionOriginal:
	default:
		return "", "", 0, false
	}
	n, err := strconv.Atoi(parts[2])
	if err != nil || n < -1 || n > 1000 {
		return "", "", 0, false
	}
	return parts[0], strings.ToLower(parts[1]), n, true
}

func userRef(u *tgbotapi.User) engine.UserRef {
	name := u.UserName
	if name == "" {
		name = strings.TrimSpace(u.FirstName + " " + u.LastName)
	}
	return engine.UserRef{Platform: Platform, ID: strconv.FormatInt(u.ID, 10), Name: name, Lang: engine.ParseLang(u.LanguageCode)}
}

// chatRef names the chat and the message to reply to. MessageID also holds
// the update id, so the job an update made can be found again after a crash.
// thread is the forum topic, kept with the job so that its messages go
// there after a restart too.
func chatRef(c *tgbotapi.Chat, messageID, updateID, thread int) engine.ChatRef {
	r := engine.ChatRef{
		Platform:  Platform,
		ChatID:    strconv.FormatInt(c.ID, 10),
		MessageID: fmt.Sprintf("%d:%d", messageID, updateID),
		Private:   c.Type == "private",
		Broadcast: c.Type == "channel",
	}
	if thread > 0 {
		r.ThreadID = strconv.Itoa(thread)
	}
	return r
}

// replyTo is the message id a job's messages reply to.
func replyTo(c engine.ChatRef) int {
	s, _, _ := strings.Cut(c.MessageID, ":")
	n, _ := strconv.Atoi(s)
	return n
}

func chatID(c engine.ChatRef) (int64, error) {
	return strconv.ParseInt(c.ChatID, 10, 64)
}

// existing finds the job update (named in cref) already made, if any.
func (b *Bot) existing(ctx context.Context, user engine.UserRef, cref engine.ChatRef) *engine.Job {
	jobs, err := b.jobs.Jobs(ctx, user, 20)
	if err != nil {
		b.log.Warn("look up jobs", slog.String("user_id", user.ID), slog.Any("err", err))
		return nil
	}
	for _, j := range jobs {
		if j.Chat.Platform == Platform && j.Chat.ChatID == cref.ChatID && j.Chat.MessageID == cref.MessageID {
			return j
		}
	}
	return nil
}

// resume posts the status message of a job whose update was handled before a
// restart, if it never got one.
func (b *Bot) resume(ctx context.Context, j *engine.Job) {
	if j.Meta[metaStatus] != "" || j.State.Terminal() || j.State == engine.StateSucceeded {
		return
	}
	b.replyStatus(ctx, j, chat.Accepted(j, j.Owner.Lang))
}

// reply sends text to the chat, as a reply to the command, from the chat's
// outbox: intake does not wait for the chat's flood limit.
func (b *Bot) reply(_ context.Context, cref engine.ChatRef, text string) {
	id, err := chatID(cref)
	if err != nil {
		return
	}
	b.outbox(id, func(ctx context.Context) {
		ctx = inThread(ctx, cref)
		if _, err := b.sendText(ctx, b.post, id, cref.Private, replyTo(cref), text, nil); err != nil {
			b.log.Warn("reply failed", slog.String("chat_id", cref.ChatID), slog.Any("err", err))
		}
	})
}

// sendText sends a text message and returns its id.
func (b *Bot) sendText(ctx context.Context, post poster, to int64, private bool, reply int, text string, kb *tgbotapi.InlineKeyboardMarkup) (int, error) {
	m := tgbotapi.NewMessage(to, cut(text, maxText))
	m.ReplyToMessageID = reply
	m.AllowSendingWithoutReply = true
	m.DisableWebPagePreview = true
	if kb != nil {
		m.ReplyMarkup = kb
	}
	raw, err := post(ctx, to, private, callTimeout, fixed(m))
	if err != nil {
		return 0, fmt.Errorf("sendMessage: %w", err)
	}
	msg, err := sent(raw)
	if err != nil {
		return 0, fmt.Errorf("sendMessage: %w", err)
	}
	return msg.MessageID, nil
}

// images are the pictures a command works on: the message's own (or its
// album's), then the one it replies to.
func (b *Bot) images(msg *tgbotapi.Message, parts []*tgbotapi.Message) []chat.Image {
	own := []*tgbotapi.Message{msg}
	if len(parts) > 0 {
		own = parts
	}
	var out []chat.Image
	for _, m := range own {
		if img, ok := b.imageOf(m); ok {
			out = append(out, img)
		}
	}
	if r := msg.ReplyToMessage; r != nil {
		if img, ok := b.imageOf(r); ok {
			out = append(out, img)
		}
	}
	return out
}

func (b *Bot) imageOf(m *tgbotapi.Message) (chat.Image, bool) {
	if len(m.Photo) > 0 {
		p := pickPhoto(m.Photo, b.cfg.MaxPhotoBytes)
		return chat.Image{Name: "photo.jpg", Open: b.opener(p.FileID, int64(p.FileSize))}, true
	}
	if d := m.Document; d != nil && strings.HasPrefix(d.MimeType, "image/") {
		return chat.Image{Name: d.FileName, Open: b.opener(d.FileID, int64(d.FileSize))}, true
	}
	return chat.Image{}, false
}

// pickPhoto picks the largest size of a photo that is within limit bytes.
func pickPhoto(sizes []tgbotapi.PhotoSize, limit int64) tgbotapi.PhotoSize {
	best := -1
	for i, p := range sizes {
		if int64(p.FileSize) > limit {
			continue
		}
		if best < 0 || p.Width*p.Height > sizes[best].Width*sizes[best].Height {
			best = i
		}
	}
	if best < 0 {
		return sizes[0] // all too large: the download refuses it with a clear message
	}
	return sizes[best]
}

// opener reads a user's file: getFile, then the download from the configured
// API server, capped at MaxPhotoBytes. The download URL holds the token; it
// never leaves this package.
func (b *Bot) opener(fileID string, size int64) func(ctx context.Context) (io.ReadCloser, error) {
	limit := b.cfg.MaxPhotoBytes
	tooLarge := func() error {
		return engine.Errorf(engine.EINVALID, "The picture is too large: more than %d MB.", "图片太大：超过 %d MB。", limit>>20)
	}
	return func(ctx context.Context) (io.ReadCloser, error) {
		if size > limit {
			return nil, tooLarge()
		}
		raw, err := b.post(ctx, 0, false, callTimeout, fixed(tgbotapi.FileConfig{FileID: fileID}))
		if err != nil {
			b.log.Warn("getFile failed", slog.Any("err", err))
			return nil, fmt.Errorf("getFile: %w", err)
		}
		var f tgbotapi.File
		if err := json.Unmarshal(raw, &f); err != nil || f.FilePath == "" {
			return nil, fmt.Errorf("getFile: no file path")
		}
		if int64(f.FileSize) > limit {
			return nil, tooLarge()
		}
		dctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		rc, err := b.api.download(dctx, f.FilePath)
		if err != nil {
			cancel()
			b.log.Warn("file download failed", slog.Any("err", err))
			return nil, err
		}
		return &cappedBody{rc: rc, cancel: cancel, left: limit, tooLarge: tooLarge}, nil
	}
}

// cappedBody fails a download that runs past its limit.
type cappedBody struct {
	rc       io.ReadCloser
	cancel   context.CancelFunc
	left     int64
	tooLarge func() error
}

func (c *cappedBody) Read(p []byte) (int, error) {
	if c.left < 0 {
		return 0, c.tooLarge()
	}
	if int64(len(p)) > c.left+1 {
		p = p[:c.left+1]
	}
	n, err := c.rc.Read(p)
	c.left -= int64(n)
	if c.left < 0 {
		return n, c.tooLarge()
	}
	return n, err
}

func (c *cappedBody) Close() error {
	defer c.cancel()
	return c.rc.Close()
}

// cut shortens s to at most n UTF-16 code units, Telegram's measure of length.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	units := 0
	for i, r := range s {
		w := utf16.RuneLen(r)
		if w < 0 {
			w = 1
		}
		if units+w > n-1 { // room for the ellipsis
			if len(utf16.Encode([]rune(s))) <= n {
				return s
			}
			return s[:i] + "…"
		}
		units += w
	}
	return s
}

// telegramHelp is what /help adds on Telegram: how to give pictures.
func telegramHelp(lang engine.Lang) string {
	return chat.T(lang,
		"On Telegram, give pictures by sending a photo with the command as its caption, or by replying to a photo with the command. "+
			"/swapface: reply to the target photo with the face photo and /swapface as its caption, or send an album of two photos, face first, with /swapface as the caption. "+
			"ControlNet: a photo captioned /draw <prompt> --control --control-type canny (or reply to the photo) uses it as the control image; --mask works the same way, after --image. "+
			"Buttons under a picture: again, vary, upscale, original file.",
		"在 Telegram 中提供图片：发送照片并以命令作为说明文字，或回复一张照片并发送命令。"+
			"/swapface：回复目标照片，发送人脸照片并以 /swapface 作为说明文字；或发送两张照片的相册（先人脸、后目标），说明文字为 /swapface。"+
			"ControlNet：以 /draw <提示词> --control --control-type canny 作为照片的说明文字（或回复该照片），这张照片即为控制图；--mask 用法相同。"+
			"图片下方的按钮：再来一张、变体、放大、原图文件。")
}

// menu is the command list for setMyCommands: what users may run, without /start and /admin.
func menu(lang engine.Lang) []tgbotapi.BotCommand {
	var out []tgbotapi.BotCommand
	for _, name := range command.Names {
		if text := chat.Describe(name, lang); text != "" && name != "admin" {
			out = append(out, tgbotapi.BotCommand{Command: name, Description: text})
		}
	}
	return out
}
