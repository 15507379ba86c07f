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

// chatAdmin asks Telegram whether user administers chat (getChatMember):
// the chat's creator and its administrators may change /settings.
func (b *Bot) chatAdmin(chatID, userID int64) func(ctx context.Context) (bool, error) {
	return func(ctx context.Context) (bool, error) {
		cctx, cancel := context.WithTimeout(ctx, callTimeout)
		defer cancel()
		raw, err := b.api.call(cctx, "getChatMember", tgbotapi.Params{
			"chat_id": strconv.FormatInt(chatID, 10), "user_id": strconv.FormatInt(userID, 10)})
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
		lang := j.Owner.Lang
		for i, r := range j.Results {
			capt := ""
			if i == 0 {
				capt = cut(text, maxCaption)
			}
			photo := fitsPhoto(r)
			err := b.sendFile(ctx, b.post, j, to, cref.Private, replyTo(cref), i, photo, capt, resultKeyboard(j, lang, i, photo))
			if err != nil && photo && isBadRequest(err) {
				err = b.sendFile(ctx, b.post, j, to, cref.Private, replyTo(cref), i, false, capt, resultKeyboard(j, lang, i, false))
			}
			if err != nil {
				b.log.Warn("/show failed", slog.String("job_id", j.ID), slog.String("chat_id", cref.ChatID), slog.Any("err", err))
				return
			}
		}
	})
}
