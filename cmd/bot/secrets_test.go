package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/picbot/picbot/bots/discord/discordtest"
	"github.com/picbot/picbot/bots/telegram/telegramtest"
	"github.com/picbot/picbot/engine/apispace/apispacetest"
	"github.com/picbot/picbot/engine/showapi/showapitest"
	"github.com/picbot/picbot/engine/zhiqite/zhiqitetest"
)

// TestSecretsNeverShown runs the bot with every kind of secret configured —
// Telegram and Discord tokens, the three vendors' keys, one of them wrong so
// that its errors are logged — at debug level, drives commands through
// Telegram and Discord, and then looks for each secret in everything the
// bot wrote: stdout, stderr, and every message it sent to a chat.
func TestSecretsNeverShown(t *testing.T) {
	const (
		tgSecret       = "777001:SECRET-telegram-token-abcdefghij"
		hookSecret     = "SECRET_webhook_secret_0123"
		discordSecret  = "SECRET.discord-bot-token.abcdefghijklmnop"
		zhiqiteKey     = "SECRETzhiqiteKey1"
		zhiqiteSecret  = "SECRETzhiqiteAppSecret123"
		showapiCode    = "SECRETshowapiAppCode456"
		apispaceWrong  = "SECRETapispaceWrongToken789"
		apispaceRight  = "apispace-accepted-token"
		discordAppID   = "123456789012345678"
		telegramBotNam = "SecretsBot"
		webSecret      = "SECRETwebConsolePassword"
	)
	secrets := []string{tgSecret, hookSecret, discordSecret, zhiqiteKey, zhiqiteSecret, showapiCode, apispaceWrong, webSecret}

	tg := telegramtest.New(tgSecret, telegramBotNam)
	defer tg.Close()
	dc := discordtest.NewServer(t)
	priv, pub := discordtest.Keys(t)
	zq := zhiqitetest.New(zhiqitetest.Options{AppKey: zhiqiteKey, AppSecret: zhiqiteSecret, Duration: 300 * time.Millisecond, ToolDuration: 200 * time.Millisecond})
	defer zq.Close()
	sa := showapitest.Start(showapitest.Options{AppCode: showapiCode})
	defer sa.Close()
	as := apispacetest.New(apispacetest.Options{Token: apispaceRight})
	defer as.Close()

	dir := t.TempDir()
	addr := freeAddr(t)
	cfg := fmt.Sprintf(`data_dir: %[1]s/data
log:
  level: debug
console:
  enabled: false
http:
  listen: %[2]s
  public_url: http://%[2]s
local:
  enabled: true
  duration: 200ms
engine:
  job_timeout: 20s
  routes:
    draw: [apispace, zhiqite]
    anime: [local]
    upscale: [local]
    swapface: [local]
vendors:
  zhiqite:
    enabled: true
    base_url: %[3]q
    draw_duration: 300ms
    poll_every: 200ms
  showapi:
    enabled: true
    base_url: %[4]q
  apispace:
    enabled: true
    base_url: %[5]q
telegram:
  enabled: true
  api_endpoint: %[6]q
  poll_timeout: 1s
discord:
  enabled: true
  application_id: %[7]q
  public_key: %[8]q
  mode: http
  api_base: %[9]q
  guild_ids: ["111"]
`, dir, addr, zq.URL, sa.URL, as.BaseURL(), tg.URL, discordAppID, pub, dc.URL)
	path := filepath.Join(dir, "picbot.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	// Every secret comes from the environment, as in production.
	b := startBotEnv(t, dir, []string{
		"PICBOT_TELEGRAM_TOKEN=" + tgSecret, "PICBOT_TELEGRAM_WEBHOOK_SECRET=" + hookSecret,
		"PICBOT_DISCORD_TOKEN=" + discordSecret,
		"PICBOT_ZHIQITE_APP_KEY=" + zhiqiteKey, "PICBOT_ZHIQITE_APP_SECRET=" + zhiqiteSecret,
		"PICBOT_SHOWAPI_APP_CODE=" + showapiCode, "PICBOT_APISPACE_TOKEN=" + apispaceWrong,
		"PICBOT_WEB_PASSWORD=" + webSecret,
	}, "-config", path)

	private := func(id int, text string) string {
		return fmt.Sprintf(`{"message": {"message_id": %d, "date": 1700000000,
			"from": {"id": 601, "is_bot": false, "first_name": "Bo", "language_code": "en"},
			"chat": {"id": 601, "type": "private"}, "text": %q}}`, id, text)
	}
	// APISpace refuses its wrong token: the job fails over to Zhiqite.
	tg.AddUpdate(private(1, "/draw a red fox --size 256x256"))
	waitCall(t, b, tg, "a photo", sent("sendPhoto"))
	tg.AddUpdate(private(2, "/draw unsafe fox --size 256x256"))
	waitCall(t, b, tg, "the unsafe job's message", sent("editMessageText", "text", "content check"))
	tg.AddUpdate(private(3, "/models"))
	waitCall(t, b, tg, "the catalogue", sent("sendMessage", "text", "(zhiqite)"))
	tg.AddUpdate(private(4, "/draw x --size 13x13"))
	waitCall(t, b, tg, "a refusal", sent("sendMessage", "text", "not allowed"))

	endpoint := "http://" + addr + "/discord/interactions"
	dc.Wait(t, 10*time.Second, "command registration", func(c discordtest.Call) bool {
		return c.Is("PUT", "/applications/"+discordAppID+"/guilds/111/commands")
	})
	body := fmt.Appendf(nil, `{"id":"7001","application_id":%q,"type":2,"token":"tok_secrets","version":1,"guild_id":"111","channel_id":"222","locale":"en-US",
		"member":{"user":{"id":"501","username":"ada"},"roles":[],"permissions":"0"},
		"data":{"id":"9000","name":"draw","type":1,"options":[{"name":"prompt","type":3,"value":"a blue fox"},{"name":"size","type":3,"value":"256x256"}]}}`, discordAppID)
	if status, _ := discordtest.Post(t, endpoint, priv, body); status != http.StatusOK {
		t.Fatalf("discord interaction: status %d", status)
	}
	dc.Wait(t, 30*time.Second, "the discord image", func(c discordtest.Call) bool {
		return c.Is("PATCH", "/webhooks/"+discordAppID+"/tok_secrets/messages/@original") && len(c.Files) > 0
	})
	pages := webPages(t, "http://"+addr, webSecret)
	stopBot(t, b)

	stdout, stderr := b.output()
	if !strings.Contains(stderr, "vendor submit failed") {
		t.Fatalf("the wrong APISpace token was never used, so its errors were not tested:\n%s", stderr)
	}
	var chats strings.Builder
	for _, c := range tg.Calls() {
		for _, v := range c.Params {
			chats.WriteString(v + "\n")
		}
	}
	for _, c := range dc.Calls() {
		chats.Write(c.Payload)
		chats.WriteString("\n")
	}
	for where, text := range map[string]string{"stdout": stdout, "stderr": stderr, "chat messages": chats.String(), "web console pages": pages} {
		for _, s := range secrets {
			if strings.Contains(text, s) {
				t.Errorf("%s holds the secret %q", where, s)
			}
		}
	}
}
