package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image/png"
	"net/http"
	"testing"
	"time"

	"github.com/picbot/picbot/bots/discord/discordtest"
	"github.com/picbot/picbot/engine/a1111/a1111test"
	"github.com/picbot/picbot/engine/comfyui/comfyuitest"
)

// TestGPUDiscord: over Discord HTTP interactions, /draw goes to an
// AUTOMATIC1111 fake and shows its progress and live preview in the
// original response before the picture; /upscale of an attachment runs
// the built-in upscale workflow on a ComfyUI fake.
func TestGPUDiscord(t *testing.T) {
	a1 := a1111test.New(a1111test.Options{StepTime: 100 * time.Millisecond})
	defer a1.Close()
	comfy := comfyuitest.New(comfyuitest.Options{})
	defer comfy.Close()
	dir := t.TempDir()
	api := discordtest.NewServer(t)
	priv, pub := discordtest.Keys(t)
	b := startDiscordBot(t, dir, api, pub, "500ms", fmt.Sprintf(`engine:
  routes:
    draw: [a1111]
    upscale: [comfyui]
vendors:
  a1111:
    enabled: true
    base_url: %s
  comfyui:
    enabled: true
    base_url: %s
`, a1.URL, comfy.URL))
	defer b.stop(t, "tok_gpu_draw", "tok_gpu_up")

	draw := map[string]any{"id": "9000", "name": "draw", "type": 1, "options": []map[string]any{
		{"name": "prompt", "type": 3, "value": "a red fox in the rain"},
		{"name": "steps", "type": 4, "value": 40},
	}}
	if status, r, _ := postSigned(t, b.endpoint, priv, interaction("1501", "tok_gpu_draw", "501", 2, draw)); status != http.StatusOK || r["type"] != float64(5) {
		t.Fatalf("draw: status %d, answer %v", status, r)
	}
	edit := func(token string) func(discordtest.Call) bool {
		return func(c discordtest.Call) bool {
			return c.Is("PATCH", "/webhooks/"+discordApp+"/"+token+"/messages/@original")
		}
	}
	preview := api.Wait(t, 30*time.Second, "the live preview", func(c discordtest.Call) bool {
		return edit("tok_gpu_draw")(c) && len(c.Files) > 0 && bytes.Contains(c.Payload, []byte(`"preview`))
	})
	final := api.Wait(t, 30*time.Second, "the picture", func(c discordtest.Call) bool {
		return edit("tok_gpu_draw")(c) && len(c.Files) > 0 && !bytes.Contains(c.Payload, []byte(`"preview`))
	})
	if !preview.At.Before(final.At) {
		t.Fatal("the preview came after the picture")
	}
	if cfg, err := png.DecodeConfig(bytes.NewReader(final.Files[0].Data)); err != nil || cfg.Width != 512 {
		t.Fatalf("picture %v %v", cfg, err)
	}
	if jobs := a1.Jobs(); len(jobs) != 1 || jobs[0].Body["prompt"] != "a red fox in the rain" {
		t.Fatalf("A1111 generations %+v", jobs)
	}

	photo := smallPNG(t, 48, 32)
	url := api.AddFile("small.png", photo)
	up := map[string]any{"id": "9002", "name": "upscale", "type": 1,
		"options": []map[string]any{{"name": "image", "type": 11, "value": "1300000000000000009"}, {"name": "scale", "type": 4, "value": 2}},
		"resolved": map[string]any{"attachments": map[string]any{"1300000000000000009": map[string]any{
			"id": "1300000000000000009", "filename": "small.png", "size": len(photo), "url": url,
			"width": 48, "height": 32, "content_type": "image/png"}}}}
	body := interaction("1502", "tok_gpu_up", "501", 2, up)
	if status, r, _ := postSigned(t, b.endpoint, priv, body); status != http.StatusOK || r["type"] != float64(5) {
		t.Fatalf("upscale: status %d, answer %v", status, r)
	}
	res := api.Wait(t, 30*time.Second, "the upscaled picture", func(c discordtest.Call) bool {
		return edit("tok_gpu_up")(c) && len(c.Files) > 0 && !bytes.Contains(c.Payload, []byte(`"preview`))
	})
	if cfg, err := png.DecodeConfig(bytes.NewReader(res.Files[0].Data)); err != nil || cfg.Width != 96 || cfg.Height != 64 {
		t.Fatalf("upscaled %dx%d (%v)", cfg.Width, cfg.Height, err)
	}
	runs := comfy.Runs()
	if len(runs) != 1 || runs[0].Status != "success" {
		t.Fatalf("ComfyUI runs %+v", runs)
	}
	var classes []string
	for _, n := range runs[0].Prompt {
		classes = append(classes, n.(map[string]any)["class_type"].(string))
	}
	if b, _ := json.Marshal(classes); !bytes.Contains(b, []byte("ImageUpscaleWithModel")) {
		t.Fatalf("the upscale workflow was not run: %s", b)
	}
}
