package main

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/picbot/picbot/bots/discord/discordtest"
)

const discordApp = "1200000000000000001"

// discordBot is the real binary in HTTP-interactions mode against a fake Discord.
type discordBot struct {
	*bot
	endpoint string
}

func startDiscordBot(t *testing.T, dir string, api *discordtest.Server, pub, render, extra string) *discordBot {
	t.Helper()
	port := freePort(t)
	cfg := fmt.Sprintf(`console:
  enabled: false
http:
  listen: 127.0.0.1:%d
local:
  duration: %s
quota:
  default: {daily: 100, concurrent: 5, every: 1ms, burst: 50}
discord:
  enabled: true
  mode: http
  token: e2e-secret-token
  application_id: "%s"
  public_key: %s
  api_base: %s
  guild_ids: ["111"]
%s`, port, render, discordApp, pub, api.URL, extra)
	path := filepath.Join(dir, "picbot.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	b := &discordBot{bot: startBot(t, dir, "-config", path), endpoint: fmt.Sprintf("http://127.0.0.1:%d/discord/interactions", port)}
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", port))
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			_, errOut := b.output()
			t.Fatalf("the bot did not come up: %v\n%s", err, errOut)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return b
}

// stop ends the bot as a service manager would, and checks its logs hold no secret.
func (b *discordBot) stop(t *testing.T, secrets ...string) {
	t.Helper()
	b.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-b.done:
	case <-time.After(30 * time.Second):
		t.Fatal("the bot did not stop")
	}
	_, errOut := b.output()
	for _, s := range append(secrets, "e2e-secret-token") {
		if strings.Contains(errOut, s) {
			t.Errorf("a secret was logged: %s", s)
		}
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// interaction builds a signed-to-be interaction payload.
func interaction(id, token, user string, typ int, data map[string]any) []byte {
	body, _ := json.Marshal(map[string]any{
		"id": id, "application_id": discordApp, "type": typ, "token": token, "version": 1,
		"guild_id": "111", "channel_id": "222", "locale": "en-US", "context": 0,
		"member": map[string]any{"user": map[string]any{"id": user, "username": "ada", "discriminator": "0"},
			"roles": []string{"900"}, "permissions": "0", "joined_at": "2024-01-01T00:00:00.000000+00:00"},
		"data": data,
	})
	return body
}

func drawData(prompt string) map[string]any {
	return map[string]any{"id": "9000", "name": "draw", "type": 1, "options": []map[string]any{
		{"name": "prompt", "type": 3, "value": prompt},
		{"name": "size", "type": 3, "value": "256x256"},
	}}
}

func postSigned(t *testing.T, endpoint string, priv ed25519.PrivateKey, body []byte) (int, map[string]any, time.Duration) {
	t.Helper()
	start := time.Now()
	status, out := discordtest.Post(t, endpoint, priv, body)
	var r map[string]any
	json.Unmarshal(out, &r)
	return status, r, time.Since(start)
}

func TestDiscordHTTPInteractions(t *testing.T) {
	dir := t.TempDir()
	api := discordtest.NewServer(t)
	priv, pub := discordtest.Keys(t)

	b := startDiscordBot(t, dir, api, pub, "500ms", "")
	api.Wait(t, 10*time.Second, "command registration", func(c discordtest.Call) bool {
		return c.Is("PUT", "/applications/"+discordApp+"/guilds/111/commands")
	})

	// A forged signature is refused.
	forger, _ := discordtest.Keys(t)
	if status, _ := discordtest.Post(t, b.endpoint, forger, interaction("1301", "tok_forged", "501", 2, drawData("x"))); status != http.StatusUnauthorized {
		t.Fatalf("forged signature: status %d, want 401", status)
	}

	// A signed /draw: deferred in the HTTP answer within 3 s, then edits, then the image.
	status, r, took := postSigned(t, b.endpoint, priv, interaction("1302", "tok_draw", "501", 2, drawData("a red fox")))
	if status != http.StatusOK || r["type"] != float64(5) {
		t.Fatalf("status %d, answer %v: want a deferred response", status, r)
	}
	if took > 3*time.Second {
		t.Fatalf("answered in %s", took)
	}
	edit := func(token string) func(discordtest.Call) bool {
		return func(c discordtest.Call) bool {
			return c.Is("PATCH", "/webhooks/"+discordApp+"/"+token+"/messages/@original")
		}
	}
	first := api.Wait(t, 10*time.Second, "the first edit", edit("tok_draw"))
	final := api.Wait(t, 20*time.Second, "the image", func(c discordtest.Call) bool { return edit("tok_draw")(c) && len(c.Files) > 0 })
	if len(first.Files) != 0 || !first.At.Before(final.At) {
		t.Errorf("the first edit %s should be text, before the image", first)
	}
	m := final.Message(t)
	if len(m.Embeds) != 1 || !bytes.HasPrefix(final.Files[0].Data, []byte("\x89PNG")) {
		t.Fatalf("result: %d embeds, file %s", len(m.Embeds), final.Files[0].Name)
	}
	var parent string
	for _, id := range m.CustomIDs() {
		if strings.HasPrefix(id, "again:") {
			parent = strings.Split(id, ":")[1]
		}
	}
	if parent == "" {
		t.Fatalf("no again button: %v", m.CustomIDs())
	}
	b.stop(t, "tok_draw") // a graceful stop records the delivery

	// After a restart with a short token lifetime: the old result's button
	// still works, and its late result goes to the channel, replying to the response.
	b = startDiscordBot(t, dir, api, pub, "2s", "  token_lifetime: 1s\n")
	press := map[string]any{"custom_id": "again:" + parent + ":0", "component_type": 2}
	status, r, took = postSigned(t, b.endpoint, priv, interaction("1303", "tok_again", "501", 3, press))
	if status != http.StatusOK || r["type"] != float64(5) || took > 3*time.Second {
		t.Fatalf("button: status %d, answer %v in %s", status, r, took)
	}
	api.Wait(t, 10*time.Second, "the button's accepted edit", edit("tok_again"))
	late := api.Wait(t, 20*time.Second, "the late result", func(c discordtest.Call) bool {
		return c.Is("POST", "/channels/222/messages")
	})
	lm := late.Message(t)
	if len(late.Files) != 1 || lm.Reference == nil || lm.Reference.MessageID != discordtest.OriginalID("tok_again") {
		t.Fatalf("late result: %d files, reference %+v", len(late.Files), lm.Reference)
	}
	for _, id := range lm.CustomIDs() {
		if strings.Contains(id, ":"+parent+":") {
			t.Errorf("the late result's buttons name the parent job: %s", id)
		}
	}
	for _, c := range api.Calls() {
		if edit("tok_again")(c) && len(c.Files) > 0 {
			t.Errorf("the image went to an expired token: %s", c)
		}
	}
	b.stop(t, "tok_again")
}

func TestDiscordConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		yaml string
		want []string
	}{
		{"Missing", "discord:\n  enabled: true\n  mode: http\n", []string{"discord.token", "discord.application_id", "discord.public_key"}},
		{"BadValues", "discord:\n  enabled: true\n  token: x\n  application_id: \"12\"\n  mode: websocket\n  button_users: admins\n  guild_ids: [abc]\n  token_lifetime: 1h\n  api_base: ftp://x\n  interactions_path: nope\n  post_lanes: 33\n",
			[]string{"discord.mode", "discord.button_users", "discord.guild_ids", "discord.token_lifetime", "discord.api_base", "discord.interactions_path", "discord.post_lanes"}},
		{"HTTPNeedsListen", "discord:\n  enabled: true\n  token: x\n  application_id: \"12\"\n  mode: http\n  public_key: " + strings.Repeat("ab", 32) + "\n", []string{"http.listen: must be set for discord.mode http"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "picbot.yaml")
			os.WriteFile(path, []byte("console:\n  enabled: false\n"+tc.yaml), 0o600)
			out, err := runFail(dir, path)
			if err == nil {
				t.Fatalf("the bot started with %s", tc.yaml)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("no %q in:\n%s", w, out)
				}
			}
			if strings.Contains(out, "e2e-secret-token") {
				t.Error("the token is in an error")
			}
		})
	}
}

// runFail runs the binary and returns its output, expecting it to exit.
func runFail(dir, config string) (string, error) {
	cmd := exec.Command(binary, "-config", config)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}
