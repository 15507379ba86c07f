package telegram

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"
)

// imeMessage is a private message as a Chinese input method or a phone
// types it: no bot_command entity, since Telegram sees no ASCII slash.
func imeMessage(t *testing.T, id int, text string) []byte {
	t.Helper()
	quoted, _ := json.Marshal(text)
	return fixture(t, "private_draw_zh.json",
		`"text": "/draw 一只红狐狸 --seed 7"`, `"text": `+string(quoted),
		`"entities": [{"type": "bot_command", "offset": 0, "length": 5}]`, `"entities": []`,
		`"message_id": 22`, `"message_id": `+strconv.Itoa(90+id))
}

// TestIMECommands: commands typed with a full-width solidus, an IME's
// "——" for "--", full-width digits and "ｘ" make the job they say; a
// single dash is refused with the fix.
func TestIMECommands(t *testing.T) {
	h := newHarness(t, "", nil, withRender(100*time.Millisecond))
	h.fake.AddUpdate(imeMessage(t, 1, "／draw 一只猫 ——size 640x512"))
	ack := h.wait(10*time.Second, "ack", is("sendMessage", "chat_id", "601", "text", "已排队"))
	if !strings.Contains(ack.Params["text"], "640x512") {
		t.Fatalf("ack %q", ack.Params["text"])
	}
	jobs := h.jobsOf("601")
	if len(jobs) != 1 || jobs[0].Request.Width != 640 || jobs[0].Request.Height != 512 || jobs[0].Request.Prompt != "一只猫" {
		t.Fatalf("jobs %+v", jobs)
	}
	h.fake.AddUpdate(imeMessage(t, 2, "／ｄｒａｗ 一只狗 －－ｓｉｚｅ ７６８ｘ５１２ ——seed ７"))
	h.wait(10*time.Second, "second ack", is("sendMessage", "chat_id", "601", "text", "768x512，种子 7"))
	h.fake.AddUpdate(imeMessage(t, 3, "/draw 一只猫 -size 640x512"))
	h.wait(10*time.Second, "single dash refused", is("sendMessage", "chat_id", "601", "text", "是不是想写 --size"))
	if n := len(h.jobsOf("601")); n != 2 {
		t.Fatalf("%d jobs, want 2", n)
	}
}
