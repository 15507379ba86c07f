package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/picbot/picbot/bots/telegram/telegramtest"
	"github.com/picbot/picbot/engine/zhiqite/zhiqitetest"
)

func privateMessage(messageID int, user int, text string) string {
	return fmt.Sprintf(`{"message": {"message_id": %d, "date": 1700000000,
		"from": {"id": %d, "is_bot": false, "first_name": "Bo", "language_code": "en"},
		"chat": {"id": %d, "type": "private", "first_name": "Bo"},
		"text": %q}}`, messageID, user, user, text)
}

var inLine = regexp.MustCompile(`number (\d+) in line`)

// TestZhiqiteQueueTelegram runs the binary with vendors.zhiqite.concurrency
// 1 against the fake Zhiqite and the fake Bot API: user A's two jobs take
// the vendor one at a time, user B's waits in the bot, its status message
// shows its place moving up (2, then 1), /queue shows the line, and every
// job is delivered; the vendor never holds two tasks at once.
func TestZhiqiteQueueTelegram(t *testing.T) {
	vendor := zhiqitetest.New(zhiqitetest.Options{AppCode: zhiqiteAppCode, Duration: 3 * time.Second})
	defer vendor.Close()
	fake := telegramtest.New(tgToken, tgBot)
	defer fake.Close()
	dir := t.TempDir()
	cfg := telegramConfig(t, dir, fake, fmt.Sprintf(`engine:
  routes:
    draw: [zhiqite]
vendors:
  zhiqite:
    enabled: true
    base_url: %s
    app_code: %s
    callbacks: false
    draw_duration: 3s
    poll_every: 500ms
    poll_max: 1s
    concurrency: 1
`, vendor.URL, zhiqiteAppCode))
	b := startBot(t, dir, "-config", cfg)
	defer func() {
		if t.Failed() {
			_, stderr := b.output()
			t.Logf("calls:\n%s\nstderr:\n%s", telegramCalls(fake), stderr)
		}
	}()
	fake.AddUpdate(privateMessage(21, 501, "/draw a red fox --seed 1"))
	waitCall(t, b, fake, "A's first status", sent("sendMessage", "chat_id", "501", "reply_to_message_id", "21"))
	fake.AddUpdate(privateMessage(22, 501, "/draw a blue fox --seed 2"))
	waitCall(t, b, fake, "A's second status", sent("sendMessage", "chat_id", "501", "reply_to_message_id", "22"))
	// A's /queue: the second job is first in line (its status edit may be
	// skipped by the chat's rate; /queue's answer is not).
	fake.AddUpdate(privateMessage(23, 501, "/queue"))
	aq := waitCall(t, b, fake, "A's /queue", sent("sendMessage", "chat_id", "501", "reply_to_message_id", "23"))
	if !strings.Contains(aq.Params["text"], "number 1 in line for zhiqite") {
		t.Fatalf("A's /queue answered %q", aq.Params["text"])
	}
	fake.AddUpdate(privateMessage(31, 502, "/draw a green fox --seed 3"))
	status := waitCall(t, b, fake, "B's status", sent("sendMessage", "chat_id", "502", "reply_to_message_id", "31"))
	// B's place as its status message shows it, in order.
	places := func() []string {
		var out []string
		for _, c := range fake.Calls() {
			if c.Status != 200 || c.Params["chat_id"] != "502" {
				continue
			}
			if (c.Method == "sendMessage" && c.MessageID() == status.MessageID()) ||
				(c.Method == "editMessageText" && c.Params["message_id"] == fmt.Sprint(status.MessageID())) {
				if m := inLine.FindStringSubmatch(c.Params["text"]); m != nil && (len(out) == 0 || out[len(out)-1] != m[1]) {
					out = append(out, m[1])
				}
			}
		}
		return out
	}
	// (fake.Wait's test runs under the fake's lock: fake.Calls is polled here.)
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(strings.Join(places(), ","), "2"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("B's status never showed place 2: %v", places())
		}
	}
	fake.AddUpdate(privateMessage(32, 502, "/queue"))
	q := waitCall(t, b, fake, "/queue's answer", sent("sendMessage", "chat_id", "502", "reply_to_message_id", "32"))
	if text := q.Params["text"]; !strings.Contains(text, "zhiqite: 1 of 1 running") || !regexp.MustCompile(`Job \w+: number [12] in line for zhiqite, about \d+ s`).MatchString(text) {
		t.Errorf("/queue answered %q", text)
	}
	waitCall(t, b, fake, "B's photo", sent("sendPhoto", "chat_id", "502", "reply_to_message_id", "31"))
	if got := strings.Join(places(), ","); got != "2,1" {
		t.Errorf("B's status showed places %q, want 2,1", got)
	}
	for _, id := range []string{"21", "22"} {
		waitCall(t, b, fake, "A's photo "+id, sent("sendPhoto", "chat_id", "501", "reply_to_message_id", id))
	}
	stopBot(t, b)
	if n := len(vendor.Tasks()); n != 3 {
		t.Errorf("the vendor has %d tasks, want 3", n)
	}
	// One at a time: each photo came at least a task's time after the one before.
	var at []time.Time
	for _, c := range fake.Calls("sendPhoto") {
		at = append(at, c.At)
	}
	for i := 1; i < len(at); i++ {
		if gap := at[i].Sub(at[i-1]); gap < 2*time.Second {
			t.Errorf("photos %d and %d came %s apart: the vendor ran two tasks at once", i, i+1, gap)
		}
	}
}

// TestConfigConcurrency: concurrency keys are checked.
func TestConfigConcurrency(t *testing.T) {
	for _, c := range []struct{ yaml, want string }{
		{"  concurrency: -1\n", "vendors.zhiqite.concurrency"},
		{"  accounts: [{name: a, app_code: x, concurrency: 1}, {name: b, app_code: y}]\n", "either every account has a concurrency or none does"},
		{"  app_code: own\n  accounts: [{name: a, app_code: x, concurrency: 1}]\n", "vendors.zhiqite.concurrency"},
	} {
		path := filepath.Join(t.TempDir(), "picbot.yaml")
		body := "vendors:\n zhiqite:\n  enabled: true\n" + c.yaml
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := LoadConfig(path)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want an error naming %q", c.yaml, err, c.want)
		}
	}
	path := filepath.Join(t.TempDir(), "picbot.yaml")
	os.WriteFile(path, []byte("vendors:\n zhiqite:\n  enabled: true\n  concurrency: 2\n  accounts: [{name: a, app_code: x, concurrency: 1}]\n"), 0o600)
	cfg, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.vendorConcurrency(); got["zhiqite"] != 2 || len(got) != 1 {
		t.Fatalf("vendor concurrency %v", got)
	}
}
