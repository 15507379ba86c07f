package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/picbot/picbot/bots/discord/discordtest"
)

// TestDiscordKilledAfterDeferral kills the bot after it answered an
// interaction with a deferred response and before it made the job (it is
// still fetching the command's attachment). Discord never posts the
// interaction again, and the user was shown "thinking…": the next start
// must take the command in and answer it, once.
func TestDiscordKilledAfterDeferral(t *testing.T) {
	dir := t.TempDir()
	api := discordtest.NewServer(t)
	priv, pub := discordtest.Keys(t)
	photo := smallPNG(t, 64, 64)
	// The attachment's first download never ends; later ones are served.
	var fetches atomic.Int32
	fetching := make(chan struct{})
	cdn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if fetches.Add(1) == 1 {
			close(fetching)
			<-r.Context().Done()
			return
		}
		w.Header().Set("Content-Type", "image/png")
		w.Write(photo)
	}))
	defer cdn.Close()

	b := startDiscordBot(t, dir, api, pub, "300ms", "")
	body, _ := json.Marshal(map[string]any{
		"id": "1400000000000000001", "application_id": discordApp, "type": 2, "token": "tok_killed", "version": 1,
		"guild_id": "111", "channel_id": "222", "locale": "en-US", "context": 0,
		"member": map[string]any{"user": map[string]any{"id": "501", "username": "ada", "discriminator": "0"},
			"roles": []string{}, "permissions": "0", "joined_at": "2024-01-01T00:00:00.000000+00:00"},
		"data": map[string]any{"id": "9001", "name": "anime", "type": 1,
			"options": []map[string]any{{"name": "image", "type": 11, "value": "1300000000000000001"}},
			"resolved": map[string]any{"attachments": map[string]any{"1300000000000000001": map[string]any{
				"id": "1300000000000000001", "filename": "portrait.png", "size": len(photo), "url": cdn.URL + "/portrait.png",
				"width": 64, "height": 64, "content_type": "image/png"}}}},
	})
	status, r, _ := postSigned(t, b.endpoint, priv, body)
	if status != http.StatusOK || r["type"] != float64(5) {
		t.Fatalf("status %d, answer %v: want a deferred response", status, r)
	}
	select {
	case <-fetching:
	case <-time.After(10 * time.Second):
		t.Fatal("the bot never fetched the attachment")
	}
	b.cmd.Process.Kill()
	<-b.done

	b = startDiscordBot(t, dir, api, pub, "300ms", "")
	defer b.stop(t, "tok_killed")
	result := func(c discordtest.Call) bool {
		return len(c.Files) > 0 && (c.Is("PATCH", "/webhooks/"+discordApp+"/tok_killed/messages/@original") || c.Is("POST", "/channels/222/messages"))
	}
	api.Wait(t, 20*time.Second, "the result of the command taken in before the kill", result)
	time.Sleep(time.Second) // for a second result, were there one
	n := 0
	for _, c := range api.Calls() {
		if result(c) && !bytes.Contains(c.Payload, []byte(`"preview`)) {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d results posted, want 1", n)
	}
}
