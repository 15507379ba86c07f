package main

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/picbot/picbot/bots/telegram/telegramtest"
)

func groupSays(messageID int, from int64, lang, text string) string {
	return fmt.Sprintf(`{"message": {"message_id": %d, "date": 1700000000,
		"from": {"id": %d, "is_bot": false, "first_name": "U%d", "language_code": %q},
		"chat": {"id": %s, "title": "Artists", "type": "supergroup"},
		"text": %q}}`, messageID, from, from, lang, tgGroup, text)
}

var opsQueuedRe = regexp.MustCompile(`Job (\w+) queued`)

// TestTelegramPresetsModeration runs the binary against the fake Bot API:
// a member may not change the chat's settings, a group administrator
// (getChatMember) sets a default size and preset that the next /draw uses;
// a blocked prompt is refused in the user's language with no job; /jobs
// lists the job with its seed, and /show sends its picture again.
func TestTelegramPresetsModeration(t *testing.T) {
	fake := telegramtest.New(tgToken, tgBot)
	defer fake.Close()
	group, _ := strconv.ParseInt(tgGroup, 10, 64)
	fake.SetMember(group, 502, "administrator")
	dir := t.TempDir()
	cfg := telegramConfig(t, dir, fake, `moderation:
  blocked_words: [裸体, gore]
presets:
  anime:
    prompt_prefix: "anime style"
    negative: lowres
    steps: 12
quota:
  default:
    every: 0s
`)
	b := startBot(t, dir, "-config", cfg)
	defer stopBot(t, b)

	fake.AddUpdate(groupSays(31, 501, "en", "/settings size 640x512"))
	waitCall(t, b, fake, "refusal to a member", sent("sendMessage", "reply_to_message_id", "31", "text", "Only this chat's admins"))
	fake.AddUpdate(groupSays(32, 502, "en", "/settings size 640x512"))
	waitCall(t, b, fake, "size set", sent("sendMessage", "reply_to_message_id", "32", "text", "size 640x512"))
	fake.AddUpdate(groupSays(33, 502, "en", "/settings preset anime"))
	waitCall(t, b, fake, "preset set", sent("sendMessage", "reply_to_message_id", "33", "text", "preset anime"))

	fake.AddUpdate(groupSays(34, 501, "zh-hans", "/draw 海边一个裸体的人"))
	refusal := waitCall(t, b, fake, "moderation refusal", sent("sendMessage", "reply_to_message_id", "34"))
	if txt := refusal.Params["text"]; !strings.Contains(txt, "不允许") || strings.Contains(txt, "裸体") || strings.Contains(txt, "queued") {
		t.Fatalf("refusal %q", txt)
	}

	fake.AddUpdate(groupSays(35, 501, "en", "/draw a red fox --seed 9"))
	status := waitCall(t, b, fake, "status", sent("sendMessage", "reply_to_message_id", "35"))
	txt := status.Params["text"]
	if !strings.Contains(txt, `"anime style, a red fox"`) || !strings.Contains(txt, "640x512") {
		t.Fatalf("the chat's preset and size not applied: %q", txt)
	}
	id := opsQueuedRe.FindStringSubmatch(txt)[1]
	waitCall(t, b, fake, "photo", sent("sendPhoto", "reply_to_message_id", "35"))

	fake.AddUpdate(groupSays(36, 501, "en", "/jobs"))
	jobs := waitCall(t, b, fake, "/jobs", sent("sendMessage", "reply_to_message_id", "36"))
	if !strings.Contains(jobs.Params["text"], id) || !strings.Contains(jobs.Params["text"], "640x512 · seed 9 · steps 12") {
		t.Fatalf("/jobs %q", jobs.Params["text"])
	}
	fake.AddUpdate(groupSays(37, 501, "en", "/show "+id))
	again := waitCall(t, b, fake, "/show photo", sent("sendPhoto", "reply_to_message_id", "37"))
	if !strings.Contains(again.Params["caption"], id) || len(again.Files["photo"].Data) == 0 {
		t.Fatalf("/show sent %v", again.Params)
	}
	if n := len(fake.Calls("getChatMember")); n != 3 {
		t.Errorf("getChatMember called %d times, want 3 (once per change asked)", n)
	}
	for _, c := range fake.Calls("sendMessage") {
		if c.Params["reply_to_message_id"] == "34" && strings.Contains(c.Params["text"], "queued") {
			t.Errorf("a refused prompt made a job: %v", c.Params)
		}
	}
}
