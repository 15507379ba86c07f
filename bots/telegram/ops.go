package telegram

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"
	"github.com/picbot/picbot/engine"
)

// chatAdmin says whether the sender of msg administers its chat: a
// channel's posts come from its admins (sender checks that), so does a
// group's anonymous admin (posting as the group itself); anyone else is
// asked of Telegram (getChatMember: the creator and administrators).
func (b *Bot) chatAdmin(msg *tgbotapi.Message) func(ctx context.Context) (bool, error) {
	return func(ctx context.Context) (bool, error) {
		switch {
		case msg.Chat.Type == "channel":
			return true, nil
		case msg.SenderChat != nil:
			return msg.SenderChat.ID == msg.Chat.ID, nil
		case msg.From == nil:
			return false, nil
		}
		cctx, cancel := context.WithTimeout(ctx, callTimeout)
		defer cancel()
		raw, err := b.api.call(cctx, "getChatMember", tgbotapi.Params{
			"chat_id": strconv.FormatInt(msg.Chat.ID, 10), "user_id": strconv.FormatInt(msg.From.ID, 10)})
		if err != nil {
			return false, fmt.Errorf("getChatMember: %w", err)
		}
		var m struct {
			Status string `json:"status"`
		}
		if err := json.Unmarshal(raw, &m); err != nil {
			return false, fmt.Errorf("getChatMember: %w", err)
		}
		return m.Status == "creator" || m.Status == "administrator", nil
	}
}

// show sends a past job's pictures again (/show), in the chat that asked,
// as replies to the command, with the result's caption and buttons.
func (b *Bot) show(cref engine.ChatRef, j *engine.Job, text string) {
	to, err := chatID(cref)
	if err != nil {
		return
	}
	b.outbox(to, func(ctx context.Context) {
		ctx = inThread(ctx, cref) // in the forum topic that asked
		lang := j.Owner.Lang
		for i, r := range j.Results {
			capt := ""
			if i == 0 {
				capt = cut(text, maxCaption)
			}
			photo := fitsPhoto(r)
			kb := func(photo bool) *tgbotapi.InlineKeyboardMarkup {
				if cref.Broadcast {
					return nil // a channel's readers get no buttons to spend its quota with
				}
				return resultKeyboard(j, lang, i, photo)
			}
			err := b.sendFile(ctx, b.post, j, to, cref.Private, replyTo(cref), i, photo, capt, kb(photo))
			if err != nil && photo && isBadRequest(err) {
				err = b.sendFile(ctx, b.post, j, to, cref.Private, replyTo(cref), i, false, capt, kb(false))
			}
			if err != nil {
				b.log.Warn("/show failed", slog.String("job_id", j.ID), slog.String("chat_id", cref.ChatID), slog.Any("err", err))
				return
			}
		}
	})
}
