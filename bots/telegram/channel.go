package telegram

import (
	"context"
	"encoding/json"
	"log/slog"
	"strconv"
	"strings"
	"time"
	"unicode"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"
	"github.com/picbot/picbot/engine"
)

// Who pays for a command that no person signs:
//
//   - A channel post has no from. Only the channel's administrators with the
//     right to post can post there, so the channel itself (sender_chat) is
//     charged, and the bot checks the post against getChatAdministrators
//     (cached): a post that carries a user (from) or a signature
//     (author_signature: the author's name, or their custom title) must match
//     an administrator of the channel; a post with neither cannot be
//     attributed, and Config.UnsignedChannelPosts decides ("allow", the
//     default, since Telegram let no one else post it; or "refuse").
//     A signed post in a channel that does not let the bot read its
//     administrators is not served.
//   - In a group, an anonymous administrator's message, or one sent on behalf
//     of a channel, carries sender_chat; its from is a Telegram service
//     account (GroupAnonymousBot, Channel_Bot). It is charged to sender_chat.

// Values of Config.UnsignedChannelPosts.
const (
	UnsignedAllow  = "allow"
	UnsignedRefuse = "refuse"
)

// adminsKept is how long a channel's administrators are cached;
// adminsRecheck is the age past which a post matching none of them asks again.
const (
	adminsKept    = 10 * time.Minute
	adminsRecheck = time.Minute
)

// channelAdmins is a channel's administrators as last read.
type channelAdmins struct {
	at   time.Time
	list []tgbotapi.ChatMember
}

// sender is who msg is charged to, and false when the bot does not take it.
// command says whether msg is a command: only those are checked against a
// channel's administrators.
func (b *Bot) sender(ctx context.Context, msg *tgbotapi.Message, command bool) (engine.UserRef, bool) {
	switch {
	case msg.Chat.Type == "channel":
		if !command || !b.channelPoster(ctx, msg) {
			return engine.UserRef{}, false
		}
		return chatUser(msg.Chat), true
	case msg.SenderChat != nil:
		return chatUser(msg.SenderChat), true
	case msg.From == nil || msg.From.IsBot:
		return engine.UserRef{}, false
	}
	return userRef(msg.From), true
}

// chatUser is a chat as the payer of its commands: its id (negative, so no
// user's), its title, and Chinese when the title is.
func chatUser(c *tgbotapi.Chat) engine.UserRef {
	lang := engine.EN
	for _, r := range c.Title {
		if unicode.Is(unicode.Han, r) {
			lang = engine.ZH
			break
		}
	}
	name := c.Title
	if name == "" {
		name = c.UserName
	}
	return engine.UserRef{Platform: Platform, ID: strconv.FormatInt(c.ID, 10), Name: name, Lang: lang}
}

// channelPoster reports whether a channel post comes from one of the
// channel's administrators, as far as the post tells.
func (b *Bot) channelPoster(ctx context.Context, msg *tgbotapi.Message) bool {
	log := b.log.With(slog.Int64("chat_id", msg.Chat.ID))
	from := msg.From
	if from != nil && from.ID == channelBotID {
		from = nil // the service account, not a person
	}
	if from == nil && msg.AuthorSignature == "" {
		// Nobody to look up. Telegram delivers channel posts only to a bot
		// that administers the channel, and lets only administrators post.
		if b.cfg.UnsignedChannelPosts == UnsignedRefuse {
			log.Info("unsigned channel post refused (telegram.unsigned_channel_posts: refuse)")
			return false
		}
		return true
	}
	for fresh := false; ; fresh = true {
		admins, at, err := b.admins(ctx, msg.Chat.ID, fresh)
		if err != nil {
			log.Warn("channel administrators unknown; post ignored", slog.Any("err", err))
			return false
		}
		for _, m := range admins {
			if m.Status != "creator" && m.Status != "administrator" || m.User == nil {
				continue
			}
			if from != nil && m.User.ID == from.ID {
				return true
			}
			if from == nil && (m.CustomTitle != "" && m.CustomTitle == msg.AuthorSignature || fullName(m.User) == msg.AuthorSignature) {
				return true
			}
		}
		if fresh || b.cfg.Now().Sub(at) < adminsRecheck {
			log.Info("channel post by someone who is not an administrator; ignored", slog.String("signature", msg.AuthorSignature))
			return false
		}
	}
}

// channelBotID is Channel_Bot, the from of messages sent on behalf of a channel.
const channelBotID = 136817688

func fullName(u *tgbotapi.User) string {
	return strings.TrimSpace(u.FirstName + " " + u.LastName)
}

// admins returns a chat's administrators, cached for adminsKept (fresh:
// read again), and when they were read.
func (b *Bot) admins(ctx context.Context, chat int64, fresh bool) ([]tgbotapi.ChatMember, time.Time, error) {
	now := b.cfg.Now()
	b.mu.Lock()
	c, ok := b.channels[chat]
	b.mu.Unlock()
	if ok && !fresh && now.Sub(c.at) < adminsKept {
		return c.list, c.at, nil
	}
	raw, err := b.post(ctx, 0, false, callTimeout, fixed(tgbotapi.ChatAdministratorsConfig{ChatConfig: tgbotapi.ChatConfig{ChatID: chat}}))
	if err != nil {
		return nil, time.Time{}, err
	}
	var list []tgbotapi.ChatMember
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, time.Time{}, err
	}
	b.mu.Lock()
	b.channels[chat] = channelAdmins{at: now, list: list}
	b.mu.Unlock()
	return list, now, nil
}
