package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/picbot/picbot/bots/telegram/telegramtest"
	"go.yaml.in/yaml/v4"
)

const (
	tgToken = "424242:e2e-TOKEN_abcdefghijklmnopqrstu"
	tgBot   = "PicbotE2EBot"
	tgGroup = "-1009001"
)

// telegramConfig writes a configuration for the binary: Telegram against
// the fake, no console, a quick local renderer.
func telegramConfig(t *testing.T, dir string, fake *telegramtest.Server, extra string) string {
	t.Helper()
	path := filepath.Join(dir, "picbot.yaml")
	cfg := fmt.Sprintf(`console:
  enabled: false
local:
  enabled: true
  duration: 1500ms
telegram:
  enabled: true
  token: %q
  api_endpoint: %q
  poll_timeout: 1s
%s`, tgToken, fake.URL, extra)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func groupDraw(messageID int, text string) string {
	return fmt.Sprintf(`{"message": {"message_id": %d, "date": 1700000000,
		"from": {"id": 501, "is_bot": false, "first_name": "Ann", "language_code": "en"},
		"chat": {"id": %s, "title": "Artists", "type": "supergroup"},
		"text": %q}}`, messageID, tgGroup, text)
}

// stopBot ends the bot as systemd would, and waits for it.
func stopBot(t *testing.T, b *bot) string {
	t.Helper()
	if err := b.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	return b.wait(t, time.Minute)
}

func waitCall(t *testing.T, b *bot, fake *telegramtest.Server, what string, ok func(telegramtest.Call) bool) telegramtest.Call {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := fake.Wait(ctx, ok)
	if err != nil {
		_, stderr := b.output()
		t.Fatalf("no %s; calls:\n%s\nstderr:\n%s", what, telegramCalls(fake), stderr)
	}
	return c
}

func telegramCalls(fake *telegramtest.Server) string {
	var s strings.Builder
	for _, c := range fake.Calls() {
		fmt.Fprintf(&s, "%s %d chat=%s msg=%s reply=%s text=%q caption=%q\n", c.Method, c.Status, c.Params["chat_id"], c.Params["message_id"],
			c.Params["reply_to_message_id"], c.Params["text"], c.Params["caption"])
	}
	return s.String()
}

func sent(method string, kv ...string) func(telegramtest.Call) bool {
	return func(c telegramtest.Call) bool {
		if c.Method != method || c.Status != 200 {
			return false
		}
		for i := 0; i+1 < len(kv); i += 2 {
			if !strings.Contains(c.Params[kv[i]], kv[i+1]) {
				return false
			}
		}
		return true
	}
}

var againRe = regexp.MustCompile(`^again:(\w+):0$`)

// TestTelegramGroupDraw runs the built binary against a fake Bot API: a
// group's "/draw@bot a red fox" gets a status message, edits, and a photo
// with buttons; after a restart, "again" under that photo makes a new picture.
func TestTelegramGroupDraw(t *testing.T) {
	fake := telegramtest.New(tgToken, tgBot)
	defer fake.Close()
	dir := t.TempDir()
	cfg := telegramConfig(t, dir, fake, "")

	b := startBot(t, dir, "-config", cfg)
	fake.AddUpdate(groupDraw(11, "/draw@picbote2ebot a red fox"))
	status := waitCall(t, b, fake, "status message", sent("sendMessage", "chat_id", tgGroup, "reply_to_message_id", "11"))
	waitCall(t, b, fake, "edit", sent("editMessageText", "message_id", strconv.Itoa(status.MessageID())))
	photo := waitCall(t, b, fake, "photo", sent("sendPhoto", "chat_id", tgGroup, "reply_to_message_id", "11"))
	if !strings.Contains(photo.Params["caption"], "a red fox") || len(photo.Files["photo"].Data) == 0 {
		t.Fatalf("photo %v", photo.Params)
	}
	buttons := photo.Buttons()
	if len(buttons) != 4 || !againRe.MatchString(buttons[0]) {
		t.Fatalf("buttons %v", buttons)
	}
	first := againRe.FindStringSubmatch(buttons[0])[1]
	waitCall(t, b, fake, "status removed", sent("deleteMessage", "message_id", strconv.Itoa(status.MessageID())))
	stopBot(t, b)

	// "/draw@OtherBot" is not for this bot; the restarted bot ignores it too.
	fake.AddUpdate(groupDraw(12, "/draw@OtherBot a blue fox"))
	b = startBot(t, dir, "-config", cfg)
	fake.AddUpdate(fmt.Sprintf(`{"callback_query": {"id": "cb-1", "chat_instance": "1",
		"from": {"id": 502, "is_bot": false, "first_name": "Cy", "language_code": "en"},
		"message": {"message_id": %d, "date": 1700000001, "chat": {"id": %s, "type": "supergroup"}},
		"data": %q}}`, photo.MessageID(), tgGroup, buttons[0]))
	waitCall(t, b, fake, "callback answer", sent("answerCallbackQuery", "callback_query_id", "cb-1"))
	second := waitCall(t, b, fake, "second photo", func(c telegramtest.Call) bool {
		return sent("sendPhoto", "reply_to_message_id", strconv.Itoa(photo.MessageID()))(c)
	})
	if m := againRe.FindStringSubmatch(second.Buttons()[0]); m == nil || m[1] == first {
		t.Fatalf("second photo's buttons %v (first job %s)", second.Buttons(), first)
	}
	stderr := stopBotStderr(t, b)
	if n := len(fake.Calls("sendPhoto")); n != 2 {
		t.Errorf("%d photos, want 2:\n%s", n, telegramCalls(fake))
	}
	for _, c := range fake.Calls("sendMessage") {
		if strings.Contains(c.Params["text"], "blue fox") || c.Params["reply_to_message_id"] == "12" {
			t.Errorf("answered another bot's command: %v", c.Params)
		}
	}
	if strings.Contains(stderr, "e2e-TOKEN") {
		t.Error("the token is in the log")
	}
}

func stopBotStderr(t *testing.T, b *bot) string {
	t.Helper()
	stopBot(t, b)
	_, stderr := b.output()
	return stderr
}

// TestTelegramAlbums: eleven pictures go as two albums, then the buttons.
func TestTelegramAlbums(t *testing.T) {
	fake := telegramtest.New(tgToken, tgBot)
	defer fake.Close()
	dir := t.TempDir()
	cfg := telegramConfig(t, dir, fake, "engine:\n  limits:\n    max_images: 11\n")
	b := startBot(t, dir, "-config", cfg)
	fake.AddUpdate(groupDraw(21, "/draw a fox --n 11 --size 256x256"))
	kb := waitCall(t, b, fake, "buttons", func(c telegramtest.Call) bool {
		return sent("sendMessage", "chat_id", tgGroup)(c) && len(c.Buttons()) > 0
	})
	stopBot(t, b)
	var sizes []int
	for _, c := range fake.Calls("sendMediaGroup") {
		if c.Status == 200 {
			sizes = append(sizes, len(c.Media()))
		}
	}
	if fmt.Sprint(sizes) != "[6 5]" {
		t.Fatalf("albums of %v:\n%s", sizes, telegramCalls(fake))
	}
	if n := len(kb.Buttons()); n != 2+2*11 {
		t.Errorf("%d buttons", n)
	}
}

// TestTelegramWebhook: in webhook mode the bot registers its URL with a
// secret token and serves updates on http.listen, refusing requests without it.
func TestTelegramWebhook(t *testing.T) {
	fake := telegramtest.New(tgToken, tgBot)
	defer fake.Close()
	dir := t.TempDir()
	cfg := telegramConfig(t, dir, fake, `  mode: webhook
  webhook_url: https://bot.example.com/telegram/hook
http:
  listen: 127.0.0.1:0
`)
	env := "PICBOT_TELEGRAM_WEBHOOK_SECRET=e2e_Secret-1"
	b := startBotEnv(t, dir, []string{env}, "-config", cfg)
	set := waitCall(t, b, fake, "setWebhook", sent("setWebhook"))
	if set.Params["secret_token"] != "e2e_Secret-1" || set.Params["url"] != "https://bot.example.com/telegram/hook" {
		t.Fatalf("setWebhook %v", set.Params)
	}
	addr := listenAddr(t, b)
	ctx := context.Background()
	update := []byte(strings.Replace(groupDraw(31, "/draw a fox"), `{"message"`, `{"update_id": 5001, "message"`, 1))
	if code, err := fake.PostWebhook(ctx, "http://"+addr+"/telegram/hook", "wrong", update); err != nil || code != 403 {
		t.Fatalf("wrong secret: %d %v", code, err)
	}
	if code, err := fake.PostWebhook(ctx, "http://"+addr+"/telegram/hook", "e2e_Secret-1", update); err != nil || code != 200 {
		t.Fatalf("right secret: %d %v", code, err)
	}
	waitCall(t, b, fake, "photo", sent("sendPhoto", "chat_id", tgGroup, "reply_to_message_id", "31"))
	stopBot(t, b)
}

var listenRe = regexp.MustCompile(`http server listening"? addr=(\S+)`)

// listenAddr waits for the bot to log its HTTP address.
func listenAddr(t *testing.T, b *bot) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		_, stderr := b.output()
		if m := listenRe.FindStringSubmatch(stderr); m != nil {
			return m[1]
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("no http server address in the log")
	return ""
}

// startBotEnv is startBot with extra environment variables.
func startBotEnv(t *testing.T, dir string, env []string, args ...string) *bot {
	t.Helper()
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v) // the child inherits the test's environment
	}
	return startBot(t, dir, args...)
}

// TestTelegramConfig: the keys, their environment variables and their defaults.
func TestTelegramConfig(t *testing.T) {
	t.Run("ErrNamesKey", func(t *testing.T) {
		for text, want := range map[string]string{
			"telegram:\n  enabled: true\n":                                                                                         "telegram.token",
			"telegram:\n  enabled: true\n  token: 1:a\n  mode: push\n":                                                             "telegram.mode",
			"telegram:\n  enabled: true\n  token: 1:a\n  mode: webhook\n":                                                          "telegram.webhook_url",
			"telegram:\n  enabled: true\n  token: 1:a\n  proxy: ftp://x:1\n":                                                       "telegram.proxy",
			"telegram:\n  enabled: true\n  token: 1:a\n  api_endpoint: nowhere\n":                                                  "telegram.api_endpoint",
			"telegram:\n  enabled: true\n  token: 1:a\n  max_photo_bytes: -5\n":                                                    "telegram.max_photo_bytes",
			"telegram:\n  enabled: true\n  token: 1:a\n  poll_timeout: 1ms\n":                                                      "telegram.poll_timeout",
			"telegram:\n  enabled: true\n  token: 1:a\n  webhook_secret: 'a b'\n":                                                  "telegram.webhook_secret",
			"telegram:\n  enabled: true\n  token: 1:a\n  post_lanes: -1\n":                                                         "telegram.post_lanes",
			"telegram:\n  enabled: true\n  token: 1:a\n  post_lanes: 33\n":                                                         "telegram.post_lanes",
			"telegram:\n  enabled: true\n  token: 1:a\n  mode: webhook\n  webhook_url: https://x.example/h\n  webhook_secret: s\n": "",
		} {
			path := filepath.Join(t.TempDir(), "c.yaml")
			os.WriteFile(path, []byte(text), 0o600)
			_, err := LoadConfig(path)
			if want == "" {
				if err != nil {
					t.Errorf("%q: %v", text, err)
				}
				continue
			}
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%q: err %v, want it to name %s", text, err, want)
			}
		}
	})
	t.Run("WebhookNeedsListen", func(t *testing.T) {
		cfg := DefaultConfig()
		cfg.Console.Enabled = false
		cfg.DataDir = t.TempDir()
		cfg.Telegram = TelegramConfig{Enabled: true, Token: "1:a", Mode: "webhook", WebhookURL: "https://x.example/h", WebhookSecret: "s"}
		if _, err := build(cfg, newLogger(cfg.Log, os.Stderr), nil, nil); err == nil || !strings.Contains(err.Error(), "http.listen") {
			t.Fatalf("build: %v", err)
		}
	})
	t.Run("Env", func(t *testing.T) {
		cfg := DefaultConfig()
		cfg.applyEnv(func(k string) (string, bool) {
			v, ok := map[string]string{"PICBOT_TELEGRAM_TOKEN": "9:tok", "PICBOT_TELEGRAM_WEBHOOK_SECRET": "sec"}[k]
			return v, ok
		})
		if cfg.Telegram.Token != "9:tok" || cfg.Telegram.WebhookSecret != "sec" {
			t.Fatalf("%+v", cfg.Telegram)
		}
		if s := cfg.secrets(); !strings.Contains(strings.Join(s, " "), "9:tok") || !strings.Contains(strings.Join(s, " "), "sec") {
			t.Fatalf("secrets %v", s)
		}
	})
	t.Run("ExampleSnippet", func(t *testing.T) {
		// The block proposed for config.example.yaml states the defaults.
		var got struct {
			Telegram TelegramConfig `yaml:"telegram"`
		}
		if err := yaml.Unmarshal([]byte(telegramExample), &got); err != nil {
			t.Fatal(err)
		}
		if fmt.Sprintf("%+v", got.Telegram) != fmt.Sprintf("%+v", defaultTelegramConfig()) {
			t.Fatalf("snippet %+v\ndefaults %+v", got.Telegram, defaultTelegramConfig())
		}
	})
}

// telegramExample is the telegram block for config.example.yaml.
const telegramExample = `
# Telegram (bots/telegram). Create the bot with @BotFather.
telegram:
  enabled: false
  token: ""            # Env: PICBOT_TELEGRAM_TOKEN
  mode: polling        # polling (getUpdates; offset kept in the store) or webhook
  # webhook mode: Telegram posts updates to webhook_url, whose path is served
  # on http.listen; every request must carry webhook_secret (1-256 of A-Z a-z 0-9 _ -).
  webhook_url: ""
  webhook_secret: ""   # Env: PICBOT_TELEGRAM_WEBHOOK_SECRET
  api_endpoint: https://api.telegram.org # or a self-hosted telegram-bot-api server
  proxy: ""            # http://, https:// or socks5:// proxy for the Bot API
  allowed_chats: []    # when set, only these chat ids are served, e.g. [-1001234567890]
  max_photo_bytes: 20971520 # largest photo a user may send (20 MiB, getFile's limit)
  poll_timeout: 50s    # getUpdates long-poll timeout
  # Result posts under way at once, each held with its record on the job:
  # a crash repeats at most post_lanes posts (1: at most one per crash), and
  # at most post_lanes uploads go in parallel (1 to 32).
  post_lanes: 1
  # A /draw posted in a channel (the bot an administrator there) is charged
  # to the channel; a signed post's author must be one of its administrators
  # (getChatAdministrators). A post naming no author: allow (only
  # administrators can post in a channel) or refuse.
  unsigned_channel_posts: allow
  # Inline mode (@bot a red fox in any chat; enable /setinline and
  # /setinlinefeedback with @BotFather): an inline message takes no upload,
  # so each picture is first sent here for a file_id, e.g. a private channel
  # with the bot as an administrator; 0: the user's private chat with the
  # bot (the copy is deleted; a user who never started the bot is told so).
  inline_cache_chat: 0
`
