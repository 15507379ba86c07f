package main

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/picbot/picbot/bots/discord/discordtest"
)

// TestDiscordContextMenuUpscale runs the binary against the fake Discord:
// "Upscale" from a message's context menu, on a message with a picture
// attached, answers with the picture upscaled.
func TestDiscordContextMenuUpscale(t *testing.T) {
	dir := t.TempDir()
	api := discordtest.NewServer(t)
	priv, pub := discordtest.Keys(t)
	photo := smallPNG(t, 64, 64)
	cdn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/png")
		w.Write(photo)
	}))
	defer cdn.Close()
	b := startDiscordBot(t, dir, api, pub, "300ms", "fetch:\n  allow_private: true\n")
	defer b.stop(t)
	body := interaction("1400000000000000009", "tok_menu", "501", 2, map[string]any{
		"id": "9101", "name": "Upscale", "type": 3, "target_id": "1500000000000000001",
		"resolved": map[string]any{"messages": map[string]any{"1500000000000000001": map[string]any{
			"id": "1500000000000000001", "channel_id": "222", "type": 0, "content": "my fox",
			"timestamp": "2024-01-01T00:00:00.000000+00:00", "author": map[string]any{"id": "502", "username": "bo", "discriminator": "0"},
			"attachments": []map[string]any{{"id": "1300000000000000009", "filename": "fox.png", "size": len(photo),
				"url": cdn.URL + "/fox.png", "width": 64, "height": 64, "content_type": "image/png"}},
			"embeds": []any{}, "components": []any{},
		}}},
	})
	status, r, _ := postSigned(t, b.endpoint, priv, body)
	if status != http.StatusOK || r["type"] != float64(5) {
		t.Fatalf("status %d, answer %v: want a deferred response", status, r)
	}
	final := api.Wait(t, 20*time.Second, "the upscaled picture", func(c discordtest.Call) bool {
		return c.Is("PATCH", "/webhooks/"+discordApp+"/tok_menu/messages/@original") && len(c.Files) == 1
	})
	if m := final.Message(t); len(m.Embeds) != 1 {
		t.Errorf("result message %+v", m)
	}
}
