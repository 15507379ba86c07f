package main

import (
	"bytes"
	"fmt"
	"image"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/picbot/picbot/bots/telegram/telegramtest"
	"github.com/picbot/picbot/engine/a1111/a1111test"
)

// gpuTelegramConfig is a Telegram bot's config with /draw routed only to
// the self-hosted backend vendor ("a1111" or "comfyui") at base.
func gpuTelegramConfig(t *testing.T, dir string, fake *telegramtest.Server, vendor, base string) string {
	return telegramConfig(t, dir, fake, fmt.Sprintf("engine:\n  routes:\n    draw: [%[1]s]\nvendors:\n  %[1]s:\n    enabled: true\n    base_url: %[2]s\n", vendor, base))
}

// TestA1111TelegramDraw runs the binary with /draw routed to a fake
// AUTOMATIC1111 only through vendors.a1111.base_url and engine.routes.draw:
// a Telegram group's /draw gets a status message that shows progress and
// the web UI's live preview, then the picture, made by a txt2img call
// under the bot's task id.
func TestA1111TelegramDraw(t *testing.T) {
	// 30 steps of 300 ms: a group's status is edited at most every 3 s, so
	// the job lasts for two edits after the first, which may come before
	// the web UI's first preview (at 150 ms a step, one edit window was
	// left, and on a loaded machine it was sometimes missed).
	gpu := a1111test.New(a1111test.Options{StepTime: 300 * time.Millisecond})
	defer gpu.Close()
	fake := telegramtest.New(tgToken, tgBot)
	defer fake.Close()
	dir := t.TempDir()
	cfg := gpuTelegramConfig(t, dir, fake, "a1111", gpu.URL)
	b := startBot(t, dir, "-config", cfg)
	fake.AddUpdate(groupDraw(41, "/draw a red fox in the snow --steps 30 --seed 5"))
	waitCall(t, b, fake, "status message", sent("sendMessage", "chat_id", tgGroup, "reply_to_message_id", "41"))
	preview := waitCall(t, b, fake, "status with the live preview", func(c telegramtest.Call) bool {
		return (sent("sendPhoto", "chat_id", tgGroup)(c) || sent("editMessageMedia", "chat_id", tgGroup)(c)) && !strings.Contains(c.Params["caption"], "red fox")
	})
	if !regexp.MustCompile(`\d+%`).MatchString(preview.Params["caption"]+preview.Params["media"]) && len(preview.Files) == 0 {
		t.Errorf("preview status without progress or picture: %v", preview.Params)
	}
	photo := waitCall(t, b, fake, "picture", func(c telegramtest.Call) bool {
		return sent("sendPhoto", "chat_id", tgGroup, "reply_to_message_id", "41")(c) && strings.Contains(c.Params["caption"], "red fox")
	})
	stderr := stopBotStderr(t, b)
	img, err := png.DecodeConfig(bytes.NewReader(photo.Files["photo"].Data))
	if err != nil || img.Width != 512 || img.Height != 512 {
		t.Fatalf("picture %dx%d (%v)", img.Width, img.Height, err)
	}
	jobs := gpu.Jobs()
	if len(jobs) != 1 {
		t.Fatalf("%d generations at the web UI, want 1\n%s", len(jobs), stderr)
	}
	j := jobs[0]
	if j.Path != "/sdapi/v1/txt2img" || j.Body["prompt"] != "a red fox in the snow" || j.Body["steps"] != 30.0 || j.Body["seed"] != 5.0 {
		t.Fatalf("generation %s %v", j.Path, j.Body)
	}
	if id, _ := j.Body["force_task_id"].(string); !regexp.MustCompile(`^\w+-1$`).MatchString(id) {
		t.Fatalf("force_task_id %q", id)
	}
	if gpu.Calls("/internal/progress") == 0 {
		t.Fatal("progress was never read")
	}
	if !strings.Contains(stderr, "a1111 (your GPU at "+gpu.URL+")") {
		t.Errorf("the start summary does not name the GPU:\n%s", stderr)
	}
}

// TestA1111Console: /draw, /draw with a reference image and /upscale
// through the console, with basic auth from the environment; the password
// stays out of the output and logs.
func TestA1111Console(t *testing.T) {
	const password = "e2e-SECRET-a1111-77"
	gpu := a1111test.New(a1111test.Options{Username: "bot", Password: password})
	defer gpu.Close()
	dir := t.TempDir()
	ref := filepath.Join(dir, "ref.png")
	writePNG(t, ref, 64, 48)
	outDir := filepath.Join(dir, "out")
	cfg := fmt.Sprintf(`data_dir: %s
log:
  level: debug
console:
  out_dir: %s
engine:
  routes:
    draw: [a1111]
    upscale: [a1111]
vendors:
  a1111:
    enabled: true
    base_url: %s
    username: bot
`, filepath.Join(dir, "data"), outDir, gpu.URL)
	cfgPath := filepath.Join(dir, "picbot.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	b := startBotEnv(t, dir, []string{"PICBOT_A1111_PASSWORD=" + password}, "-config", cfgPath)
	io.WriteString(b.stdin, strings.Join([]string{
		"/draw a lighthouse --size 320x256 --n 2 --lora add_detail:0.5",
		"/upscale " + ref + " --scale 3",
		"/models",
	}, "\n")+"\n")
	out := b.wait(t, time.Minute)
	_, logs := b.output()
	defer func() {
		if t.Failed() {
			t.Logf("stdout:\n%s\nstderr:\n%s", out, logs)
		}
	}()
	done := zhiqiteParseDone(out)
	if len(done) != 2 {
		t.Fatalf("%d jobs done, want 2", len(done))
	}
	var sizes []image.Point
	for _, d := range done {
		sizes = append(sizes, pngSize(t, d.path))
	}
	if !(contains(sizes, image.Pt(320, 256)) && contains(sizes, image.Pt(192, 144))) {
		t.Fatalf("sizes %v", sizes)
	}
	var prompt any
	for _, j := range gpu.Jobs() {
		if j.Path == "/sdapi/v1/txt2img" {
			prompt = j.Body["prompt"]
		}
	}
	if prompt != "a lighthouse <lora:add_detail:0.5>" {
		t.Fatalf("prompt %v", prompt)
	}
	for _, want := range []string{"v1-5-pruned-emaonly", "sd_xl_base_1.0", "add_detail", "pixel-art-xl"} {
		if !strings.Contains(out, want) {
			t.Errorf("/models does not list %s", want)
		}
	}
	if strings.Contains(out+logs, password) {
		t.Error("the password is in the output or logs")
	}
}

func contains(ps []image.Point, p image.Point) bool {
	for _, q := range ps {
		if q == p {
			return true
		}
	}
	return false
}

// TestA1111Kill: the bot is killed with SIGKILL while the web UI makes its
// picture, so the blocking call's answer is lost. The restarted bot finds
// the task by its id still running and waits; when it ends, the picture is
// made again (once, counted in the log) and posted once.
func TestA1111Kill(t *testing.T) {
	gpu := a1111test.New(a1111test.Options{StepTime: 60 * time.Millisecond})
	defer gpu.Close()
	fake := telegramtest.New(tgToken, tgBot)
	defer fake.Close()
	dir := t.TempDir()
	cfg := gpuTelegramConfig(t, dir, fake, "a1111", gpu.URL)
	b := startBot(t, dir, "-config", cfg)
	fake.AddUpdate(groupDraw(61, "/draw a red fox at night --steps 30"))
	waitFor(t, "task running at the web UI", func() bool { return gpu.Current() != "" })
	if err := b.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-b.done
	b = startBot(t, dir, "-config", cfg)
	waitCall(t, b, fake, "picture", func(c telegramtest.Call) bool {
		return sent("sendPhoto", "chat_id", tgGroup, "reply_to_message_id", "61")(c) && strings.Contains(c.Params["caption"], "red fox")
	})
	stderr := stopBotStderr(t, b)
	jobs := gpu.Jobs()
	if len(jobs) != 2 || jobs[0].TaskID != jobs[1].TaskID {
		t.Fatalf("generations %+v, want the lost one and one rerun under the same id", jobs)
	}
	if jobs[1].Started.Before(jobs[0].Ended) {
		t.Fatal("the rerun started while the first run was still going")
	}
	if !strings.Contains(stderr, "making it again") {
		t.Errorf("the rerun is not in the log:\n%s", stderr)
	}
	finals := 0
	for _, c := range fake.Calls("sendPhoto") {
		if c.Status == 200 && strings.Contains(c.Params["caption"], "red fox") {
			finals++
		}
	}
	if finals != 1 {
		t.Fatalf("%d pictures posted, want 1", finals)
	}
}

// TestA1111TelegramUpscale: a photo with /upscale as its caption goes to
// the web UI's extra-single-image, and the enlarged picture comes back.
func TestA1111TelegramUpscale(t *testing.T) {
	gpu := a1111test.New(a1111test.Options{})
	defer gpu.Close()
	fake := telegramtest.New(tgToken, tgBot)
	defer fake.Close()
	photo := smallPNG(t, 40, 30)
	fake.AddFile("A1111-PHOTO", "", photo)
	dir := t.TempDir()
	cfg := telegramConfig(t, dir, fake, fmt.Sprintf(`engine:
  routes:
    upscale: [a1111]
vendors:
  a1111:
    enabled: true
    base_url: %s
    upscaler: SwinIR_4x
`, gpu.URL))
	b := startBot(t, dir, "-config", cfg)
	fake.AddUpdate(map[string]any{"message": map[string]any{
		"message_id": 71, "date": time.Now().Unix(), "caption": "/upscale --scale 3",
		"caption_entities": []any{map[string]any{"type": "bot_command", "offset": 0, "length": 8}},
		"from":             map[string]any{"id": 501, "is_bot": false, "first_name": "Ann", "language_code": "en"},
		"chat":             map[string]any{"id": 501, "type": "private", "first_name": "Ann"},
		"photo":            []any{map[string]any{"file_id": "A1111-PHOTO", "file_unique_id": "uA1111", "width": 40, "height": 30, "file_size": len(photo)}},
	}})
	res := waitCall(t, b, fake, "upscaled picture", func(c telegramtest.Call) bool {
		return (sent("sendPhoto", "chat_id", "501")(c) || sent("sendDocument", "chat_id", "501")(c)) && strings.Contains(c.Params["caption"], "a1111")
	})
	stopBot(t, b)
	data := res.Files["photo"].Data
	if data == nil {
		data = res.Files["document"].Data
	}
	img, err := png.DecodeConfig(bytes.NewReader(data))
	if err != nil || img.Width != 120 || img.Height != 90 {
		t.Fatalf("upscaled %dx%d (%v)", img.Width, img.Height, err)
	}
	jobs := gpu.Jobs()
	if len(jobs) != 1 || jobs[0].Path != "/sdapi/v1/extra-single-image" || jobs[0].Body["upscaler_1"] != "SwinIR_4x" || jobs[0].Body["upscaling_resize"] != 3.0 {
		t.Fatalf("generations %+v", jobs)
	}
}
