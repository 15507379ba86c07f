package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/picbot/picbot/bots/telegram/telegramtest"
	"github.com/picbot/picbot/engine/zhiqite/zhiqitetest"
)

// zhiqiteTelegram starts the binary with Telegram against a fake Bot API
// and Zhiqite against its fake, polling (no callbacks), and returns both fakes.
func zhiqiteTelegram(t *testing.T, opts zhiqitetest.Options) (*bot, *telegramtest.Server, *zhiqitetest.Server) {
	t.Helper()
	opts.AppCode = zhiqiteAppCode
	zq := zhiqitetest.New(opts)
	t.Cleanup(zq.Close)
	tg := telegramtest.New(tgToken, tgBot)
	t.Cleanup(tg.Close)
	dir := t.TempDir()
	addr := freeAddr(t)
	cfg := telegramConfig(t, dir, tg, fmt.Sprintf(`data_dir: %s
http:
  listen: %s
  public_url: http://%s
engine:
  routes:
    draw: [zhiqite]
    upscale: [zhiqite]
    swapface: [zhiqite]
    anime: [local]
vendors:
  zhiqite:
    enabled: true
    base_url: %s
    app_code: %s
    callbacks: false
    draw_duration: 300ms
    tool_duration: 300ms
    poll_every: 200ms
    poll_max: 500ms
`, filepath.Join(dir, "data"), addr, addr, zq.URL, zhiqiteAppCode))
	return startBot(t, dir, "-config", cfg), tg, zq
}

// photoCommand is a private message: a photo with a command as its caption.
func photoCommand(t *testing.T, tg *telegramtest.Server, id int, file, caption string, size int) {
	t.Helper()
	msg := map[string]any{
		"message_id": id, "date": time.Now().Unix(), "caption": caption,
		"caption_entities": []any{map[string]any{"type": "bot_command", "offset": 0, "length": strings.IndexByte(caption+" ", ' ')}},
		"from":             map[string]any{"id": 601, "is_bot": false, "first_name": "Cai", "language_code": "en"},
		"chat":             map[string]any{"id": 601, "type": "private", "first_name": "Cai"},
		"photo":            []any{map[string]any{"file_id": file, "file_unique_id": "u" + file, "width": 64, "height": 48, "file_size": size}},
	}
	tg.AddUpdate(map[string]any{"message": msg})
}

// A photo captioned "/draw ... --control --control-type canny" reaches
// saas/sd/v2/controlnet with the unit filled, the photo as its image.
func TestZhiqiteTelegramControlnet(t *testing.T) {
	b, tg, zq := zhiqiteTelegram(t, zhiqitetest.Options{Duration: 600 * time.Millisecond, ToolDuration: 400 * time.Millisecond})
	png := smallPNG(t, 64, 48)
	tg.AddFile("EDGES", "", png)
	photoCommand(t, tg, 71, "EDGES", "/draw a castle on a hill --control --control-type canny --control-weight 0.9", len(png))
	waitCall(t, b, tg, "photo", sent("sendPhoto", "chat_id", "601"))
	var unit map[string]any
	for _, c := range zq.Calls() {
		if c.Endpoint != "saas/sd/v2/controlnet" {
			continue
		}
		var body struct {
			Prompt  string `json:"prompt"`
			Scripts struct {
				ControlNet struct {
					Args []map[string]any `json:"args"`
				} `json:"controlnet"`
			} `json:"alwayson_scripts"`
		}
		if err := json.Unmarshal(c.Body, &body); err != nil || len(body.Scripts.ControlNet.Args) != 1 || body.Prompt != "a castle on a hill" {
			t.Fatalf("controlnet body %s (%v)", c.Body, err)
		}
		unit = body.Scripts.ControlNet.Args[0]
	}
	if unit == nil {
		t.Fatalf("no controlnet call: %v", zq.Calls())
	}
	link, _ := unit["image_link"].(string)
	if unit["module"] != "canny" || unit["model"] != "control_v11p_sd15_canny" || unit["weight"] != 0.9 || !strings.Contains(link, "/input/") {
		t.Fatalf("unit %v", unit)
	}
	stopBot(t, b)
}

// An /upscale polled against a fake whose tool task shows its result link
// from the start (status 1), and whose link answers 404 a moment after
// status 2, is delivered once the task is done, not failed.
func TestZhiqiteTelegramUpscaleEarlyLink(t *testing.T) {
	b, tg, zq := zhiqiteTelegram(t, zhiqitetest.Options{ToolDuration: 1500 * time.Millisecond})
	zq.SetFate(zhiqitetest.Fate{LinkLag: 1500 * time.Millisecond})
	png := smallPNG(t, 64, 48)
	tg.AddFile("SMALL", "", png)
	photoCommand(t, tg, 72, "SMALL", "/upscale --scale 2", len(png))
	waitCall(t, b, tg, "upscaled photo", func(c telegramtest.Call) bool {
		return (sent("sendPhoto", "chat_id", "601")(c) || sent("sendDocument", "chat_id", "601")(c))
	})
	for _, c := range tg.Calls("sendMessage", "editMessageText") {
		if strings.Contains(c.Params["text"], "failed") || strings.Contains(c.Params["text"], "could not") {
			t.Errorf("a failure was posted: %q", c.Params["text"])
		}
	}
	var polls int
	for _, c := range zq.Calls() {
		if c.Endpoint == "saas/tool/enhance/queryTask" {
			polls++
		}
	}
	if polls < 2 {
		t.Errorf("%d polls: the first, at status 1 with a link, must not end the task", polls)
	}
	stopBot(t, b)
}

// The rest of seed 001's options typed on Telegram reach the vendor's fields.
func TestZhiqiteTelegramOptions(t *testing.T) {
	b, tg, zq := zhiqiteTelegram(t, zhiqitetest.Options{Duration: 400 * time.Millisecond, ToolDuration: 400 * time.Millisecond})
	tg.AddUpdate(map[string]any{"message": map[string]any{
		"message_id": 81, "date": time.Now().Unix(),
		"text": "/draw a lighthouse --size 512x512 --hires 1.5 --hires-steps 10 --vae k1F8Anime2_k1F8Anime2VAE.ckpt --embedding bad-hands-5 " +
			"--lora hayasaka_ai_v10_26390:0.6 --clip-skip 1 --restore-faces --face-fix",
		"from": map[string]any{"id": 601, "is_bot": false, "first_name": "Cai", "language_code": "en"},
		"chat": map[string]any{"id": 601, "type": "private", "first_name": "Cai"},
	}})
	png := smallPNG(t, 64, 48)
	tg.AddFile("UP", "", png)
	photoCommand(t, tg, 82, "UP", "/upscale --scale 3 --upscaler R-ESRGAN_4x+ --face-restore codeformer 0.7", len(png))
	ctx := func(c telegramtest.Call) bool {
		return sent("sendPhoto", "chat_id", "601")(c) || sent("sendDocument", "chat_id", "601")(c)
	}
	waitCall(t, b, tg, "first result", ctx)
	deadline := time.Now().Add(30 * time.Second)
	for len(tg.Calls("sendPhoto"))+len(tg.Calls("sendDocument")) < 2 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	var t2i, enh map[string]any
	for _, c := range zq.Calls() {
		var m map[string]any
		json.Unmarshal(c.Body, &m)
		switch c.Endpoint {
		case "saas/sd/v2/text2image":
			t2i = m
		case "saas/tool/enhance":
			enh = m
		}
	}
	if t2i == nil || enh == nil {
		t.Fatalf("calls %v", zq.Calls())
	}
	sc, _ := t2i["alwayson_scripts"].(map[string]any)
	if t2i["enable_hr"] != true || t2i["hr_resize_x"] != 768.0 || t2i["hr_second_pass_steps"] != 10.0 || t2i["restore_faces"] != true ||
		!strings.Contains(t2i["prompt"].(string), "<lora:hayasaka_ai_v10_26390:0.6>") || !strings.Contains(t2i["negative_prompt"].(string), "bad-hands-5") ||
		sc["sd_vae"] != "k1F8Anime2_k1F8Anime2VAE.ckpt" || sc["ADetailer"] == nil {
		t.Errorf("text2image %v", t2i)
	}
	if enh["upscalingResize"] != 3.0 || enh["upscaler1"] != "R-ESRGAN_4x+" || enh["codeformerVisibility"] != 1.0 {
		t.Errorf("enhance %v", enh)
	}
	if n := len(tg.Calls("sendPhoto")) + len(tg.Calls("sendDocument")); n < 2 {
		t.Errorf("%d results posted, want 2:\n%s", n, telegramCalls(tg))
	}
	stopBot(t, b)
}
