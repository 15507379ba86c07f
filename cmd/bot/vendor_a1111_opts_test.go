package main

import (
	"testing"

	"github.com/picbot/picbot/bots/telegram/telegramtest"
	"github.com/picbot/picbot/engine/a1111/a1111test"
)

// TestA1111TelegramDrawOptions: /draw's per-command options, on a route of
// AUTOMATIC1111 only, reach txt2img as the web UI's fields rather than
// being refused as options no backend on the route offers.
func TestA1111TelegramDrawOptions(t *testing.T) {
	gpu := a1111test.New(a1111test.Options{})
	defer gpu.Close()
	fake := telegramtest.New(tgToken, tgBot)
	defer fake.Close()
	dir := t.TempDir()
	cfg := gpuTelegramConfig(t, dir, fake, "a1111", gpu.URL)
	b := startBot(t, dir, "-config", cfg)
	fake.AddUpdate(groupDraw(43, "/draw a fox --hires 1.5 --lora a:0.5 --lora b --vae v.safetensors --clip-skip 2 --restore-faces"))
	waitCall(t, b, fake, "picture", sent("sendPhoto", "chat_id", tgGroup, "reply_to_message_id", "43"))
	stderr := stopBotStderr(t, b)
	body := gpu.Last("/sdapi/v1/txt2img")
	if body == nil {
		t.Fatalf("no txt2img call\n%s", stderr)
	}
	over, _ := body["override_settings"].(map[string]any)
	if body["prompt"] != "a fox <lora:a:0.5> <lora:b:1>" || body["enable_hr"] != true || body["hr_scale"] != 1.5 ||
		over["sd_vae"] != "v.safetensors" || over["CLIP_stop_at_last_layers"] != 2.0 || body["restore_faces"] != true {
		t.Fatalf("txt2img body %v", body)
	}
}
