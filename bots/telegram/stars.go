package telegram

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"
	"github.com/picbot/picbot/bots/chat"
	"github.com/picbot/picbot/engine"
	"github.com/picbot/picbot/quota"
)

// Telegram Stars: /buy sends one invoice per configured pack (currency
// XTR, no provider token, one price). pre_checkout_query is answered at
// once, ok only while the pack is still offered at that price. The
// successful_payment message credits the pack's images to the payer's
// bought balance (package quota), recorded under its
// telegram_payment_charge_id in the same store transaction, so a payment
// told twice, or again after a crash, is credited once.
// "/admin refund <charge id>" gives the Stars back (refundStarPayment) and
// takes back what is left of the images.

// StarPack is an offer: Images for Stars.
type StarPack struct {
	Images int `yaml:"images"`
	Stars  int `yaml:"stars"`
}

// Wallet keeps bought images: a *quota.Quota.
type Wallet interface {
	Credit(ctx context.Context, owner engine.UserRef, ref string, p quota.Payment) (credited bool, balance int64, err error)
	Payment(ctx context.Context, ref string) (quota.Payment, error)
	Withdraw(ctx context.Context, ref string) (taken int64, err error)
	IsAdmin(u engine.UserRef) bool
}

const currencyStars = "XTR"

func packPayload(p StarPack) string { return fmt.Sprintf("stars:%d:%d", p.Images, p.Stars) }

// offered returns the pack a payload names, if it is still offered.
func (b *Bot) offered(payload string) (StarPack, bool) {
	for _, p := range b.cfg.StarPacks {
		if packPayload(p) == payload {
			return p, true
		}
	}
	return StarPack{}, false
}

// special runs the Telegram-only commands: /buy and /admin refund. It
// reports whether text was one.
func (b *Bot) special(ctx context.Context, cref engine.ChatRef, user engine.UserRef, text string) bool {
	f := strings.Fields(text)
	if len(f) == 0 {
		return false
	}
	name, mention, _ := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(f[0], "/"), "／"), "@")
	if mention != "" && !strings.EqualFold(mention, b.username) {
		return false
	}
	switch {
	case strings.EqualFold(name, "buy"):
		if (len(b.cfg.StarPacks) == 0 || b.wallet == nil) && !cref.Private && !b.addressed(text) {
			return true // nothing on sale: another bot's /buy in a group, perhaps
		}
		b.buy(ctx, cref, user)
		return true
	case strings.EqualFold(name, "admin") && len(f) >= 2 && strings.EqualFold(f[1], "refund"):
		if b.wallet == nil || !b.wallet.IsAdmin(user) {
			b.reply(ctx, cref, chat.T(user.Lang, "Sorry, admin commands are for the bot's admins.", "抱歉，管理命令仅限机器人管理员使用。"))
			return true
		}
		if len(f) != 3 {
			b.reply(ctx, cref, chat.T(user.Lang, "Usage: /admin refund <telegram_payment_charge_id>", "用法：/admin refund <telegram_payment_charge_id>"))
			return true
		}
		b.refund(ctx, cref, user, f[2])
		return true
	}
	return false
}

// buy sends the packs' invoices.
func (b *Bot) buy(ctx context.Context, cref engine.ChatRef, user engine.UserRef) {
	if len(b.cfg.StarPacks) == 0 || b.wallet == nil || cref.Broadcast {
		b.reply(ctx, cref, chat.T(user.Lang, "This bot sells no images.", "这个机器人不出售图片额度。"))
		return
	}
	to, err := chatID(cref)
	if err != nil {
		return
	}
	for _, p := range b.cfg.StarPacks {
		params := tgbotapi.Params{
			"chat_id":     strconv.FormatInt(to, 10),
			"title":       chat.T(user.Lang, "%d images", "%d 张图片", p.Images),
			"description": chat.T(user.Lang, "%d images for picbot, used after your free daily quota; they do not expire.", "%d 张图片额度，每日免费额度用完后使用，不会过期。", p.Images),
			"payload":     packPayload(p),
			"currency":    currencyStars,
			"prices":      fmt.Sprintf(`[{"label":%q,"amount":%d}]`, chat.T(user.Lang, "%d images", "%d 张图片", p.Images), p.Stars),
		}
		b.outbox(to, func(ctx context.Context) {
			ctx = inThread(ctx, cref)
			if err := b.waitRoom(ctx, to, cref.Private); err != nil {
				return
			}
			cctx, cancel := context.WithTimeout(ctx, callTimeout)
			defer cancel()
			if _, err := b.api.call(cctx, "sendInvoice", params); err != nil {
				b.log.Warn("sendInvoice failed", slog.String("chat_id", cref.ChatID), slog.Any("err", err))
			}
		})
	}
}

// onPreCheckout answers a pre-checkout query: Telegram waits 10 s for it.
func (b *Bot) onPreCheckout(ctx context.Context, q *tgbotapi.PreCheckoutQuery) {
	var lang engine.Lang
	if q.From != nil {
		lang = engine.ParseLang(q.From.LanguageCode)
	}
	p := tgbotapi.Params{"pre_checkout_query_id": q.ID}
	pack, ok := b.offered(q.InvoicePayload)
	if ok && (q.Currency != currencyStars || q.TotalAmount != pack.Stars || b.wallet == nil) {
		ok = false
	}
	if ok {
		p["ok"] = "true"
	} else {
		p["ok"] = "false"
		p["error_message"] = chat.T(lang, "This pack is no longer offered. Send /buy to see the current ones.", "这个套餐已不再提供，请发送 /buy 查看当前套餐。")
	}
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	if _, err := b.api.call(cctx, "answerPreCheckoutQuery", p); err != nil {
		b.log.Warn("answerPreCheckoutQuery failed", slog.Any("err", err))
	}
}

// onPaid credits a successful payment once. An error means the credit
// could not be recorded: the update is then not marked handled, and comes again.
func (b *Bot) onPaid(ctx context.Context, msg *tgbotapi.Message, thread int) error {
	pay := msg.SuccessfulPayment
	if msg.From == nil || msg.Chat == nil || b.wallet == nil {
		return nil
	}
	user := userRef(msg.From)
	log := b.log.With(slog.String("user_id", user.ID), slog.String("charge_id", pay.TelegramPaymentChargeID))
	var images int
	if f := strings.Split(pay.InvoicePayload, ":"); len(f) == 3 && f[0] == "stars" {
		images, _ = strconv.Atoi(f[1])
	}
	if images <= 0 || pay.TelegramPaymentChargeID == "" {
		log.Error("payment with an unknown payload; nothing credited: refund it by hand", slog.String("payload", pay.InvoicePayload))
		return nil
	}
	credited, balance, err := b.wallet.Credit(ctx, user, pay.TelegramPaymentChargeID,
		quota.Payment{Images: int64(images), Amount: int64(pay.TotalAmount), Currency: pay.Currency})
	if err != nil {
		return err
	}
	if !credited {
		log.Info("payment told again; credited before")
		return nil
	}
	log.Info("payment credited", slog.Int("images", images), slog.Int("stars", pay.TotalAmount))
	cref := chatRef(msg.Chat, msg.MessageID, 0, thread)
	b.reply(ctx, cref, chat.T(user.Lang, "Thank you! %d images added; you have %d bought images, used after your free daily quota.",
		"谢谢！已添加 %d 张图片；你现有已购图片 %d 张，每日免费额度用完后使用。", images, balance))
	return nil
}

// refund gives a payment's Stars back and takes back what is left of its images.
func (b *Bot) refund(ctx context.Context, cref engine.ChatRef, admin engine.UserRef, charge string) {
	lang := admin.Lang
	p, err := b.wallet.Payment(ctx, charge)
	if err != nil {
		b.reply(ctx, cref, engine.AsError(err).Message(lang))
		return
	}
	platform, id, _ := strings.Cut(p.User, ":")
	if platform != Platform {
		b.reply(ctx, cref, chat.T(lang, "That payment was not made on Telegram.", "那笔付款不是在 Telegram 上支付的。"))
		return
	}
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	_, err = b.api.call(cctx, "refundStarPayment", tgbotapi.Params{"user_id": id, "telegram_payment_charge_id": charge})
	cancel()
	if err != nil && !hasText(err, "CHARGE_ALREADY_REFUNDED") {
		b.log.Warn("refundStarPayment failed", slog.String("charge_id", charge), slog.Any("err", err))
		b.reply(ctx, cref, chat.T(lang, "Telegram refused the refund: %v", "Telegram 拒绝了退款：%v", err))
		return
	}
	taken, err := b.wallet.Withdraw(ctx, charge)
	if err != nil {
		b.reply(ctx, cref, chat.T(lang, "The Stars were refunded, but the images could not be taken back: %v. Send the command again.", "星星已退还，但图片额度未能收回：%v。请再次发送该命令。", err))
		return
	}
	b.log.Info("payment refunded", slog.String("charge_id", charge), slog.String("user", p.User), slog.Int64("images_taken", taken), slog.String("admin", admin.Key()))
	b.reply(ctx, cref, chat.T(lang, "Refunded %d Stars to %s; %d of its %d images taken back (the rest were spent).",
		"已向 %[2]s 退还 %[1]d 颗星；收回其 %[4]d 张图片中的 %[3]d 张（其余已用掉）。", p.Amount, p.User, taken, p.Images))
}
