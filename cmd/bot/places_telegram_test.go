package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/picbot/picbot/bots/telegram/telegramtest"
)

const (
	tgForum   = "-1009002"
	tgTopic   = 77
	tgChannel = "-1009003"
)

// topicDraw is a command in topic 77 of a forum supergroup, as Telegram
// sends it: message_thread_id, is_topic_message, and a reply to the topic's
// creation message when it replies to nothing else. thread 0 is General.
func topicDraw(messageID, thread int, text string) string {
	topic := ""
	if thread > 0 {
		topic = fmt.Sprintf(`"message_thread_id": %d, "is_topic_message": true,
		"reply_to_message": {"message_id": %d, "date": 1699990000, "chat": {"id": %s, "type": "supergroup", "is_forum": true},
			"message_thread_id": %d, "forum_topic_created": {"name": "Foxes", "icon_color": 7322096}},`, thread, thread, tgForum, thread)
	}
	return fmt.Sprintf(`{"message": {"message_id": %d, "date": 1700000000, %s
		"from": {"id": 601, "is_bot": false, "first_name": "Ann", "language_code": "en"},
		"chat": {"id": %s, "title": "Fox forum", "type": "supergroup", "is_forum": true},
		"text": %q}}`, messageID, topic, tgForum, text)
}

// sendMethods post a new message and take message_thread_id.
var sendMethods = []string{"sendMessage", "sendPhoto", "sendDocument", "sendMediaGroup"}

// TestTelegramForumTopic: a /draw in a topic is answered in the topic, every
// message of it (status, photo, album and its buttons, a refusal, a job a
// button made), also when the bot is killed before the photo and the
// restarted bot posts it; a /draw in General stays in General.
func TestTelegramForumTopic(t *testing.T) {
	fake := telegramtest.New(tgToken, tgBot)
	defer fake.Close()
	dir := t.TempDir()
	cfg := telegramConfig(t, dir, fake, "quota:\n  default:\n    every: 1ms\n    burst: 100\n")
	forum, _ := strconv.ParseInt(tgForum, 10, 64)

	// The photo is held, and the bot killed while it waits: the restarted
	// bot knows the topic only from the store.
	release := fake.Hold("sendPhoto")
	b := startBot(t, dir, "-config", cfg)
	fake.AddUpdate(topicDraw(41, tgTopic, "/draw a red fox"))
	status := waitCall(t, b, fake, "status message", sent("sendMessage", "chat_id", tgForum, "reply_to_message_id", "41"))
	if status.ThreadID() != tgTopic {
		t.Fatalf("status message in thread %d, want %d", status.ThreadID(), tgTopic)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := fake.WaitHeld(ctx, "sendPhoto"); err != nil {
		t.Fatalf("no photo: %v\n%s", err, telegramCalls(fake))
	}
	b.cmd.Process.Kill()
	<-b.done
	release(false)

	b = startBot(t, dir, "-config", cfg)
	photo := waitCall(t, b, fake, "photo after the restart", sent("sendPhoto", "chat_id", tgForum, "reply_to_message_id", "41"))
	if th, _ := fake.Thread(forum, photo.MessageID()); th != tgTopic {
		t.Fatalf("photo in thread %d, want %d\n%s", th, tgTopic, telegramCalls(fake))
	}

	// An album and its buttons; a refusal; General.
	fake.AddUpdate(topicDraw(42, tgTopic, "/draw two foxes --n 2 --size 256x256"))
	fake.AddUpdate(topicDraw(43, tgTopic, "/draw a fox --size 5x5"))
	fake.AddUpdate(topicDraw(44, 0, "/draw a fox in General"))
	waitCall(t, b, fake, "album", sent("sendMediaGroup", "chat_id", tgForum, "reply_to_message_id", "42"))
	waitCall(t, b, fake, "album's buttons", func(c telegramtest.Call) bool {
		return sent("sendMessage", "reply_to_message_id", "42")(c) && len(c.Buttons()) > 0
	})
	waitCall(t, b, fake, "refusal", sent("sendMessage", "chat_id", tgForum, "reply_to_message_id", "43"))
	general := waitCall(t, b, fake, "photo in General", sent("sendPhoto", "chat_id", tgForum, "reply_to_message_id", "44"))

	// A button under the topic's photo: the new job is the topic's too.
	fake.AddUpdate(fmt.Sprintf(`{"callback_query": {"id": "cb-topic", "chat_instance": "2",
		"from": {"id": 602, "is_bot": false, "first_name": "Cy", "language_code": "en"},
		"message": {"message_id": %d, "date": 1700000001, "message_thread_id": %d, "is_topic_message": true,
			"chat": {"id": %s, "type": "supergroup", "is_forum": true}},
		"data": %q}}`, photo.MessageID(), tgTopic, tgForum, photo.Buttons()[0]))
	waitCall(t, b, fake, "the button's photo", sent("sendPhoto", "reply_to_message_id", strconv.Itoa(photo.MessageID())))
	stopBot(t, b)

	// Every message for the topic's commands named the topic; General's none.
	inGeneral := map[string]bool{"44": true, strconv.Itoa(general.MessageID()): true}
	n := 0
	for _, c := range fake.Calls(sendMethods...) {
		if c.Params["chat_id"] != tgForum || c.Status != 200 {
			continue
		}
		n++
		want := tgTopic
		if inGeneral[c.Params["reply_to_message_id"]] {
			want = 0
		}
		if c.ThreadID() != want {
			t.Errorf("%s replying to %s in thread %d, want %d", c.Method, c.Params["reply_to_message_id"], c.ThreadID(), want)
		}
	}
	if n < 9 { // statuses of 5 jobs, 3 photos, an album, its buttons, a refusal, less what delivery removed first
		t.Errorf("only %d messages:\n%s", n, telegramCalls(fake))
	}
}

// channelDraw is a post in the channel, signed by signature ("" unsigned).
func channelDraw(messageID int, signature, text string) string {
	sig := ""
	if signature != "" {
		sig = fmt.Sprintf(`"author_signature": %q,`, signature)
	}
	return fmt.Sprintf(`{"channel_post": {"message_id": %d, "date": 1700000000, %s
		"sender_chat": {"id": %s, "title": "Fox pictures", "type": "channel"},
		"chat": {"id": %s, "title": "Fox pictures", "type": "channel"},
		"text": %q}}`, messageID, sig, tgChannel, tgChannel, text)
}

// TestTelegramChannel: a /draw posted in a channel by one of its
// administrators is answered in the channel, with no buttons, charged to
// the channel; one signed by someone who is not an administrator gets
// nothing; the administrators are asked once; an edited post is not asked for.
func TestTelegramChannel(t *testing.T) {
	fake := telegramtest.New(tgToken, tgBot)
	defer fake.Close()
	channel, _ := strconv.ParseInt(tgChannel, 10, 64)
	fake.SetAdmins(channel,
		telegramtest.ChatMember{Status: "creator", User: telegramtest.User{ID: 701, FirstName: "Ann", LastName: "Lee"}},
		telegramtest.ChatMember{Status: "administrator", User: telegramtest.User{ID: 702, FirstName: "Bo"}, CustomTitle: "Editor", CanPostMessages: true},
		telegramtest.ChatMember{Status: "administrator", User: telegramtest.User{ID: telegramtest.BotID, IsBot: true, FirstName: "Picbot"}, CanPostMessages: true},
	)
	dir := t.TempDir()
	// Three pictures a day: the channel's first post and its album of two.
	cfg := telegramConfig(t, dir, fake, `quota:
  default:
    daily: 3
    concurrent: 5
    every: 1ms
`)
	b := startBot(t, dir, "-config", cfg)
	fake.AddUpdate(channelDraw(51, "Ann Lee", "/draw a red fox"))
	photo := waitCall(t, b, fake, "photo in the channel", sent("sendPhoto", "chat_id", tgChannel, "reply_to_message_id", "51"))
	if len(photo.Buttons()) != 0 || photo.Params["reply_markup"] != "" {
		t.Errorf("buttons in a channel: %s", photo.Params["reply_markup"])
	}
	fake.AddUpdate(channelDraw(52, "Mallory", "/draw a stolen fox"))
	fake.AddUpdate(channelDraw(53, "Editor", "/draw two foxes --n 2 --size 256x256"))
	waitCall(t, b, fake, "album in the channel", sent("sendMediaGroup", "chat_id", tgChannel, "reply_to_message_id", "53"))
	// The channel's quota (3 a day) is spent: a third is refused, in the channel.
	fake.AddUpdate(channelDraw(54, "", "/draw one more fox"))
	refusal := waitCall(t, b, fake, "refusal", sent("sendMessage", "chat_id", tgChannel, "reply_to_message_id", "54"))
	stopBot(t, b)
	if !strings.Contains(refusal.Params["text"], "used all 3 images for today") {
		t.Errorf("third post: %q, want the daily quota's refusal", refusal.Params["text"])
	}
	for _, c := range fake.Calls(sendMethods...) {
		if c.Params["reply_to_message_id"] == "52" {
			t.Errorf("answered a post by someone not an administrator: %s %v", c.Method, c.Params)
		}
		if c.Params["chat_id"] == tgChannel && len(c.Buttons()) > 0 {
			t.Errorf("buttons in the channel: %s %v", c.Method, c.Buttons())
		}
	}
	// "Mallory" matched nobody in a fresh list: one call, no second ask.
	if n := len(fake.Calls("getChatAdministrators")); n != 1 {
		t.Errorf("getChatAdministrators asked %d times, want 1 (cached)", n)
	}
	gu := fake.Calls("getUpdates")
	// Exactly the handled types: no edited_message, no edited_channel_post.
	if len(gu) == 0 || gu[0].Params["allowed_updates"] != `["message","channel_post","callback_query","inline_query","chosen_inline_result","pre_checkout_query"]` {
		t.Errorf("allowed_updates %q", gu[0].Params["allowed_updates"])
	}
}

// TestTelegramAnonymousAdmin: messages an anonymous administrator sends,
// or a user on behalf of a channel, are charged to that chat, not to the
// service account in from: two such groups, a picture a day each, both drawn.
func TestTelegramAnonymousAdmin(t *testing.T) {
	fake := telegramtest.New(tgToken, tgBot)
	defer fake.Close()
	dir := t.TempDir()
	cfg := telegramConfig(t, dir, fake, `quota:
  default:
    daily: 1
    every: 1ms
`)
	b := startBot(t, dir, "-config", cfg)
	anon := func(id int, chat, sender, senderType, text string) string {
		return fmt.Sprintf(`{"message": {"message_id": %d, "date": 1700000000,
		"from": {"id": 1087968824, "is_bot": true, "first_name": "Group", "username": "GroupAnonymousBot"},
		"sender_chat": {"id": %s, "title": "Sender", "type": %q},
		"chat": {"id": %s, "title": "Group", "type": "supergroup"},
		"text": %q}}`, id, sender, senderType, chat, text)
	}
	fake.AddUpdate(anon(61, "-1009011", "-1009011", "supergroup", "/draw a fox"))
	fake.AddUpdate(anon(62, "-1009012", "-1009012", "supergroup", "/draw a fox"))
	fake.AddUpdate(anon(63, "-1009013", "-1009099", "channel", "/draw a fox"))
	for _, msg := range []string{"61", "62", "63"} {
		waitCall(t, b, fake, "photo for "+msg, sent("sendPhoto", "reply_to_message_id", msg))
	}
	// The same anonymous admin again in the first group: that chat's one picture is spent.
	fake.AddUpdate(anon(64, "-1009011", "-1009011", "supergroup", "/draw another fox"))
	refusal := waitCall(t, b, fake, "refusal", sent("sendMessage", "reply_to_message_id", "64"))
	stopBot(t, b)
	if len(fake.Calls("sendPhoto")) != 3 || !strings.Contains(refusal.Params["text"], "used all 1 images") {
		t.Errorf("photos: %d, fourth command answered %q\n%s", len(fake.Calls("sendPhoto")), refusal.Params["text"], telegramCalls(fake))
	}
}

func inlineQuery(id, query string) string {
	return fmt.Sprintf(`{"inline_query": {"id": %q, "offset": "", "chat_type": "supergroup",
		"from": {"id": 901, "is_bot": false, "first_name": "Ivy", "language_code": "en"},
		"query": %q}}`, id, query)
}

// TestTelegramInline: "@bot a red fox" is answered within a second with a
// "Draw: a red fox" result whose message has a button; the chosen result
// runs charged to the user, and the picture replaces the placeholder by
// file_id (uploaded to the user's private chat, that copy deleted). The
// user's second, over the quota, leaves the refusal in its placeholder.
func TestTelegramInline(t *testing.T) {
	fake := telegramtest.New(tgToken, tgBot)
	defer fake.Close()
	dir := t.TempDir()
	cfg := telegramConfig(t, dir, fake, "quota:\n  default:\n    daily: 1\n    every: 1ms\n")
	b := startBot(t, dir, "-config", cfg)
	waitCall(t, b, fake, "first poll", func(c telegramtest.Call) bool { return c.Method == "setMyCommands" })
	asked := time.Now()
	fake.AddUpdate(inlineQuery("iq-1", "a red fox"))
	answer := waitCall(t, b, fake, "inline answer", sent("answerInlineQuery", "inline_query_id", "iq-1"))
	if d := answer.At.Sub(asked); d > time.Second {
		t.Errorf("inline query answered after %s", d)
	}
	if !strings.Contains(answer.Params["results"], `"title":"Draw: a red fox"`) || answer.Params["cache_time"] == "" || answer.Params["is_personal"] != "true" {
		t.Errorf("answer %v", answer.Params)
	}
	id, ok := fake.ChooseInline("iq-1", "draw")
	if !ok || id == "" {
		t.Fatalf("no result to choose, or no inline_message_id (no keyboard): %v", answer.Params["results"])
	}
	edit := waitCall(t, b, fake, "picture in the placeholder", sent("editMessageMedia", "inline_message_id", id))
	text, media, _ := fake.Inline(id)
	if media == "" || !strings.Contains(text, "a red fox") || len(edit.Files) != 0 {
		t.Errorf("inline message %q %q, files %d", text, media, len(edit.Files))
	}
	upload := waitCall(t, b, fake, "upload for a file_id", sent("sendPhoto", "chat_id", "901"))
	waitCall(t, b, fake, "the copy deleted", sent("deleteMessage", "chat_id", "901", "message_id", strconv.Itoa(upload.MessageID())))

	fake.AddUpdate(inlineQuery("iq-2", "another fox"))
	waitCall(t, b, fake, "second inline answer", sent("answerInlineQuery", "inline_query_id", "iq-2"))
	id2, _ := fake.ChooseInline("iq-2", "draw")
	waitCall(t, b, fake, "refusal in the placeholder", sent("editMessageText", "inline_message_id", id2))
	stopBot(t, b)
	if text, media, _ := fake.Inline(id2); media != "" || !strings.Contains(text, "used all 1 images") {
		t.Errorf("second placeholder %q %q", text, media)
	}
	gu := fake.Calls("getUpdates")
	if len(gu) == 0 || !strings.Contains(gu[0].Params["allowed_updates"], `"inline_query","chosen_inline_result"`) {
		t.Errorf("allowed_updates %q", gu[0].Params["allowed_updates"])
	}
}

func privateText(user, messageID int, text string) string {
	return fmt.Sprintf(`{"message": {"message_id": %d, "date": 1700000000,
		"from": {"id": %d, "is_bot": false, "first_name": "Pat", "language_code": "en"},
		"chat": {"id": %d, "first_name": "Pat", "type": "private"},
		"text": %q}}`, messageID, user, user, text)
}

// TestTelegramStars: /buy sends a Stars invoice per pack; the pre-checkout
// query is answered ok only for a pack still offered; the payment is
// credited once although its update comes again after the bot is killed
// and once more under a new update id; bought images are used after the
// free one, /quota shows both; /admin refund gives the Stars back and takes
// what is left.
func TestTelegramStars(t *testing.T) {
	fake := telegramtest.New(tgToken, tgBot)
	defer fake.Close()
	dir := t.TempDir()
	cfg := telegramConfig(t, dir, fake, `quota:
  admins: ["telegram:555"]
  default:
    daily: 1
    every: 1ms
payments:
  telegram_stars: [{images: 5, stars: 10}, {images: 50, stars: 80}]
`)
	const payer = 901
	b := startBot(t, dir, "-config", cfg)
	fake.AddUpdate(privateText(payer, 1, "/buy"))
	inv := waitCall(t, b, fake, "invoice", sent("sendInvoice", "chat_id", "901", "payload", "stars:5:10"))
	if inv.Params["currency"] != "XTR" || inv.Params["prices"] != `[{"label":"5 images","amount":10}]` {
		t.Errorf("invoice %v", inv.Params)
	}
	waitCall(t, b, fake, "second invoice", sent("sendInvoice", "payload", "stars:50:80"))
	checkout := func(id, payload string, total int) string {
		return fmt.Sprintf(`{"pre_checkout_query": {"id": %q, "currency": "XTR", "total_amount": %d, "invoice_payload": %q,
			"from": {"id": %d, "is_bot": false, "first_name": "Pat", "language_code": "en"}}}`, id, total, payload, payer)
	}
	fake.AddUpdate(checkout("pcq-1", "stars:5:10", 10))
	fake.AddUpdate(checkout("pcq-2", "stars:7:3", 3)) // a pack no longer offered
	if c := waitCall(t, b, fake, "checkout answer", sent("answerPreCheckoutQuery", "pre_checkout_query_id", "pcq-1")); c.Params["ok"] != "true" {
		t.Errorf("pcq-1: %v", c.Params)
	}
	if c := waitCall(t, b, fake, "refusal", sent("answerPreCheckoutQuery", "pre_checkout_query_id", "pcq-2")); c.Params["ok"] != "false" || c.Params["error_message"] == "" {
		t.Errorf("pcq-2: %v", c.Params)
	}

	// The payment; the bot is killed as it thanks the payer, before the
	// update's offset is confirmed, so the restarted bot gets it again.
	release := fake.Hold("sendMessage")
	update, charge := fake.Payment(payer, "stars:5:10", 10)
	fake.AddUpdate(update)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := fake.WaitHeld(ctx, "sendMessage"); err != nil {
		t.Fatalf("no thanks: %v\n%s", err, telegramCalls(fake))
	}
	b.cmd.Process.Kill()
	<-b.done
	release(false)
	fake.AddUpdate(update) // and once more under a new update id
	b = startBot(t, dir, "-config", cfg)
	fake.AddUpdate(privateText(payer, 2, "/quota"))
	q := waitCall(t, b, fake, "quota", sent("sendMessage", "reply_to_message_id", "2"))
	if !strings.Contains(q.Params["text"], "Bought images left: 5 ") {
		t.Fatalf("quota after the payment told three times: %q", q.Params["text"])
	}

	// One free picture, then a bought one.
	fake.AddUpdate(privateText(payer, 3, "/draw a fox"))
	waitCall(t, b, fake, "free picture", sent("sendPhoto", "reply_to_message_id", "3"))
	fake.AddUpdate(privateText(payer, 4, "/draw a bought fox"))
	waitCall(t, b, fake, "bought picture", sent("sendPhoto", "reply_to_message_id", "4"))
	fake.AddUpdate(privateText(payer, 5, "/quota"))
	q = waitCall(t, b, fake, "quota", sent("sendMessage", "reply_to_message_id", "5"))
	if !strings.Contains(q.Params["text"], "1 of 1 images used") || !strings.Contains(q.Params["text"], "Bought images left: 4 ") {
		t.Errorf("quota after two pictures: %q", q.Params["text"])
	}

	// Refunds are for admins.
	fake.AddUpdate(privateText(payer, 6, "/admin refund "+charge))
	waitCall(t, b, fake, "refusal", sent("sendMessage", "reply_to_message_id", "6"))
	fake.AddUpdate(privateText(555, 7, "/admin refund "+charge))
	r := waitCall(t, b, fake, "refund", sent("sendMessage", "chat_id", "555", "reply_to_message_id", "7"))
	if !fake.Refunded(charge) || !strings.Contains(r.Params["text"], "4 of its 5 images taken back") {
		t.Errorf("refund: %v, %q", fake.Refunded(charge), r.Params["text"])
	}
	fake.AddUpdate(privateText(payer, 8, "/quota"))
	q = waitCall(t, b, fake, "quota", sent("sendMessage", "reply_to_message_id", "8"))
	stopBot(t, b)
	if strings.Contains(q.Params["text"], "Bought") {
		t.Errorf("quota after the refund: %q", q.Params["text"])
	}
	if n := len(fake.Calls("refundStarPayment")); n != 1 {
		t.Errorf("%d refunds", n)
	}
	thanks := 0
	for _, c := range fake.Calls("sendMessage") {
		if strings.Contains(c.Params["text"], "Thank you") {
			thanks++
		}
	}
	if thanks > 1 {
		t.Errorf("thanked %d times", thanks)
	}
}
