package telegram

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"
	"github.com/picbot/picbot/bots/chat"
	"github.com/picbot/picbot/engine"
)

// Inline mode: "@bot a red fox" in any chat. The inline query is answered
// at once with one article, "Draw: a red fox", whose message carries a
// button: Telegram gives a chosen result's inline_message_id only to a
// message with an inline keyboard, and the bot needs it to edit the
// placeholder later. When the user picks it (chosen_inline_result, which
// BotFather's /setinlinefeedback must enable), the prompt runs as /draw,
// charged to the user, and the picture replaces the placeholder
// (editMessageMedia on the inline message).
//
// An inline message cannot take an uploaded file, only a file_id or a URL.
// The bot uploads the picture first to Config.InlineCacheChat (a chat the
// operator keeps for it, e.g. a private channel with the bot as an
// administrator) or, when none is set, to the user's private chat with
// the bot, from which the copy is deleted at once; the file_id is noted on
// the job, so a restart does not upload it twice. A user who never
// started the bot cannot be sent a file there: the placeholder says so,
// and the quota is refunded.

// Inline jobs' chat reference: ChatID "inline:<user id>" (so per-chat
// limits count the user's inline jobs together) and MessageID
// "i:<inline_message_id>", unique per chosen result.
const (
	inlineChat     = "inline:"
	inlineMessage  = "i:"
	inlineResultID = "draw"
	inlineCache    = 5 // seconds Telegram may keep an inline answer
	metaInlineFile = "tg_inline_file"
	maxInlineTitle = 64 // characters of the prompt in the result's title
	inlineWaitData = "inline:wait"
)

func inlineRef(user int64, inlineID string) engine.ChatRef {
	return engine.ChatRef{Platform: Platform, ChatID: inlineChat + strconv.FormatInt(user, 10), MessageID: inlineMessage + inlineID, Private: true}
}

// inlineOf returns the inline message and the user of an inline job's chat.
func inlineOf(c engine.ChatRef) (id string, user int64, ok bool) {
	u, ok1 := strings.CutPrefix(c.ChatID, inlineChat)
	id, ok2 := strings.CutPrefix(c.MessageID, inlineMessage)
	if !ok1 || !ok2 || id == "" {
		return "", 0, false
	}
	n, err := strconv.ParseInt(u, 10, 64)
	return id, n, err == nil
}

// onInlineQuery answers an inline query with the one result it offers.
func (b *Bot) onInlineQuery(ctx context.Context, q *tgbotapi.InlineQuery) {
	var lang engine.Lang
	if q.From != nil {
		lang = engine.ParseLang(q.From.LanguageCode)
	}
	prompt := strings.Join(strings.Fields(q.Query), " ")
	results := []any{}
	// With telegram.allowed_chats the bot serves those chats only; an
	// inline message can go anywhere, so there is no inline mode then.
	if prompt != "" && q.From != nil && !q.From.IsBot && b.allowed == nil {
		title := prompt
		if r := []rune(title); len(r) > maxInlineTitle {
			title = string(r[:maxInlineTitle-1]) + "…"
		}
		a := tgbotapi.NewInlineQueryResultArticle(inlineResultID, chat.T(lang, "Draw: %s", "画：%s", title),
			cut(chat.T(lang, "🎨 Drawing: %s…", "🎨 正在画：%s…", prompt), maxText))
		a.Description = chat.T(lang, "Send it to make the picture here; it counts against your quota.", "发送后在这里生成图片，计入你的额度。")
		kb := tgbotapi.NewInlineKeyboardMarkup(tgbotapi.NewInlineKeyboardRow(
			tgbotapi.NewInlineKeyboardButtonData(chat.T(lang, "⏳ Drawing…", "⏳ 正在生成…"), inlineWaitData)))
		a.ReplyMarkup = &kb
		results = append(results, a)
	}
	cfg := tgbotapi.InlineConfig{InlineQueryID: q.ID, Results: results, CacheTime: inlineCache, IsPersonal: true}
	if _, err := b.post(ctx, 0, false, callTimeout, fixed(cfg)); err != nil {
		b.log.Warn("answerInlineQuery failed", slog.Any("err", err))
	}
}

// onChosen runs the inline result a user picked, as /draw with its query.
func (b *Bot) onChosen(ctx context.Context, r *tgbotapi.ChosenInlineResult) {
	if r.From == nil || r.From.IsBot || r.InlineMessageID == "" || r.ResultID != inlineResultID || b.allowed != nil {
		return
	}
	user := userRef(r.From)
	cref := inlineRef(r.From.ID, r.InlineMessageID)
	if j := b.existing(ctx, user, cref); j != nil {
		b.resume(ctx, j)
		return
	}
	res := b.svc.Handle(ctx, chat.Message{User: user, Chat: cref, Text: "/draw " + r.Query})
	if res.Job != nil {
		b.replyStatus(ctx, res.Job, res.Text)
		return
	}
	// Refused: the placeholder says why.
	b.outbox(r.From.ID, func(ctx context.Context) {
		if err := b.editInline(ctx, b.post, r.From.ID, r.InlineMessageID, res.Text); err != nil {
			b.log.Warn("inline refusal not shown", slog.String("user_id", user.ID), slog.Any("err", err))
		}
	})
}

// editInline turns an inline message into text, without buttons.
func (b *Bot) editInline(ctx context.Context, post poster, user int64, id, text string) error {
	c := tgbotapi.EditMessageTextConfig{BaseEdit: tgbotapi.BaseEdit{InlineMessageID: id}, Text: cut(text, maxText), DisableWebPagePreview: true}
	_, err := post(ctx, user, true, callTimeout, fixed(c))
	if hasText(err, "message is not modified") {
		return nil
	}
	return err
}

// inlineStatus is sendStatus for an inline job: the placeholder becomes
// the status. Called from the user's outbox.
func (b *Bot) inlineStatus(ctx context.Context, j *engine.Job, st *jobState, text string) {
	id, user, _ := inlineOf(j.Chat)
	st.mu.Lock()
	defer st.mu.Unlock()
	st.pending = false
	if st.done || st.status != 0 {
		return
	}
	st.replied = true
	if err := b.editInline(ctx, b.post, user, id, text); err != nil {
		b.log.Warn("inline status failed", slog.String("job_id", j.ID), slog.Any("err", err))
		return
	}
	st.status, st.lastText, st.lastEdit = 1, text, b.cfg.Now() // the placeholder: no message id of its own
	if err := b.jobs.Annotate(ctx, j.ID, metaStatus, "1"); err != nil {
		b.log.Warn("note status message", slog.String("job_id", j.ID), slog.Any("err", err))
	}
}

// inlineProgress edits the placeholder's text with the job's progress,
// never waiting, as Progress does.
func (b *Bot) inlineProgress(ctx context.Context, j *engine.Job, p engine.Progress) {
	id, user, _ := inlineOf(j.Chat)
	st := b.state(j.ID)
	if !st.mu.TryLock() {
		return
	}
	defer st.mu.Unlock()
	if st.done {
		return
	}
	now := b.cfg.Now()
	if !st.lastEdit.IsZero() && now.Sub(st.lastEdit) < b.editEvery(true) {
		return
	}
	text := chat.Status(j, p, j.Owner.Lang)
	if text == st.lastText || !b.flood.try(user, true) {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	c := tgbotapi.EditMessageTextConfig{BaseEdit: tgbotapi.BaseEdit{InlineMessageID: id}, Text: cut(text, maxText), DisableWebPagePreview: true}
	if _, err := b.api.do(cctx, c); err != nil {
		b.edited(b.log.With(slog.String("job_id", j.ID)), user, err)
		return
	}
	st.status = 1
	st.lastEdit, st.lastText = now, text
}

// deliverInline puts the first picture of a finished inline job into its
// placeholder, or says why there is none.
func (b *Bot) deliverInline(ctx context.Context, j *engine.Job) error {
	id, user, _ := inlineOf(j.Chat)
	st := b.state(j.ID)
	st.mu.Lock()
	defer st.mu.Unlock()
	lang := j.Owner.Lang
	log := b.log.With(slog.String("job_id", j.ID), slog.String("user_id", j.Owner.ID))
	if j.Meta[metaSent] != "" {
		b.finish(j.ID, st)
		return nil
	}
	if j.State != engine.StateSucceeded || len(j.Results) == 0 {
		text := chat.Ended(j, lang)
		if j.State == engine.StateSucceeded {
			text = caption(j)
		}
		if err := b.editInline(ctx, b.send, user, id, text); err != nil {
			return b.deliveryError(err)
		}
		if err := b.jobs.Annotate(ctx, j.ID, metaSent, "1"); err != nil {
			log.Warn("note delivery", slog.Any("err", err))
		}
		b.finish(j.ID, st)
		return nil
	}
	asPhoto := fitsPhoto(j.Results[0])
	file := j.Meta[metaInlineFile]
	if file == "" {
		to, private := b.cfg.InlineCacheChat, false
		if to == 0 {
			to, private = user, true
		}
		post, err := b.roomed(j.ID, to, private)
		if err != nil {
			return err
		}
		if file, err = b.inlineUpload(ctx, post, j, to, private, asPhoto); err != nil {
			if !cannotPost(err) {
				return b.deliveryError(err)
			}
			// Nowhere to upload to. The refused upload posted nothing, so
			// the placeholder's edit goes on its room (see roomedPoster):
			// made to find room of its own in a chat that progress edits
			// leave with room for one message a round, it found none, and
			// each round's upload, refused again, spent the room again.
			text := chat.T(lang, "The picture is ready, but Telegram lets the bot send it here only after you open a chat with @%s and press Start.",
				"图片已生成，但需要你先与 @%s 开始对话（点击“开始”），机器人才能在这里发送图片。", b.username)
			if to != user {
				// Not the user's doing: the operator's cache chat refuses the bot.
				log.Error("the inline cache chat refuses the bot's uploads: make the bot an administrator there, or unset telegram.inline_cache_chat",
					slog.Int64("chat_id", to), slog.Any("err", err))
				text = chat.T(lang, "The picture could not be posted here.", "图片无法发送到这里。")
			}
			if eerr := b.editInline(ctx, post, user, id, chat.WithRefund(lang, text)); eerr != nil {
				if _, later := engine.AsLater(eerr); later {
					return eerr
				}
			}
			return engine.Wrap(engine.EUNDELIVERED, err, "The picture could not be posted here.", "图片无法发送到这里。")
		}
		if err := b.jobs.Annotate(ctx, j.ID, metaInlineFile, file); err != nil {
			return fmt.Errorf("note inline file of job %s: %w", j.ID, err)
		}
	}
	text := caption(j)
	if n := len(j.Results); n > 1 {
		text = cut(text+"\n"+chat.T(lang, "(1 of %d pictures; /jobs in a chat with the bot has them all)", "（共 %d 张，这里显示第 1 张；在与机器人的对话中用 /jobs 查看全部）", n), maxCaption)
	}
	var media any
	if asPhoto {
		m := tgbotapi.NewInputMediaPhoto(tgbotapi.FileID(file))
		m.Caption = text
		media = m
	} else {
		m := tgbotapi.NewInputMediaDocument(tgbotapi.FileID(file))
		m.Caption = text
		media = m
	}
	c := tgbotapi.EditMessageMediaConfig{BaseEdit: tgbotapi.BaseEdit{InlineMessageID: id}, Media: media}
	if _, err := b.send(ctx, user, true, callTimeout, fixed(c)); err != nil && !hasText(err, "message is not modified") {
		return b.deliveryError(err)
	}
	if err := b.jobs.Annotate(ctx, j.ID, metaSent, "1"); err != nil {
		log.Warn("note delivery", slog.Any("err", err))
	}
	b.finish(j.ID, st)
	return nil
}

// inlineUpload sends the job's first picture to chat to (the inline cache
// chat, or the user's private chat) by post, and returns its file_id; a
// copy in the user's private chat is deleted.
func (b *Bot) inlineUpload(ctx context.Context, post poster, j *engine.Job, to int64, private, asPhoto bool) (string, error) {
	raw, err := post(ctx, to, private, uploadTimeout, func(ctx context.Context) (tgbotapi.Chattable, func(), error) {
		rc, err := b.blobs.Open(ctx, j.Results[0].Blob)
		if err != nil {
			return nil, nil, fmt.Errorf("open result 1 of job %s: %w", j.ID, err)
		}
		file := tgbotapi.FileReader{Name: fileName(j, 0), Reader: rc}
		base := tgbotapi.BaseChat{ChatID: to, DisableNotification: true}
		var c tgbotapi.Chattable
		if asPhoto {
			c = tgbotapi.PhotoConfig{BaseFile: tgbotapi.BaseFile{BaseChat: base, File: file}, Caption: "#" + j.ID}
		} else {
			c = tgbotapi.DocumentConfig{BaseFile: tgbotapi.BaseFile{BaseChat: base, File: file}, Caption: "#" + j.ID}
		}
		return c, func() { rc.Close() }, nil
	})
	if err != nil {
		return "", err
	}
	msg, err := sent(raw)
	if err != nil {
		return "", fmt.Errorf("upload for an inline message: %w", err)
	}
	var file string
	switch {
	case len(msg.Photo) > 0:
		file = msg.Photo[len(msg.Photo)-1].FileID // the largest size comes last
	case msg.Document != nil:
		file = msg.Document.FileID
	}
	if file == "" {
		return "", errors.New("upload for an inline message: no file_id in the answer")
	}
	if private {
		// Best effort: the copy only served to get a file_id.
		if _, err := b.api.do(ctx, tgbotapi.NewDeleteMessage(to, msg.MessageID)); err != nil {
			b.log.Debug("delete the inline upload's copy", slog.String("job_id", j.ID), slog.Any("err", err))
		}
	}
	return file, nil
}
