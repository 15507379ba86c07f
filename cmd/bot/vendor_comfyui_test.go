package main

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/picbot/picbot/bots/telegram/telegramtest"
	"github.com/picbot/picbot/engine/comfyui/comfyuitest"
)

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within 30 s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestComfyUITelegramKill: a Telegram /draw runs the built-in workflow on
// a fake ComfyUI; the bot is killed with SIGKILL while the prompt runs,
// and the restarted bot finds the prompt by its id, shows its progress
// and preview, and posts the picture once. The prompt was queued once.
func TestComfyUITelegramKill(t *testing.T) {
	gpu := comfyuitest.New(comfyuitest.Options{StepTime: 100 * time.Millisecond})
	defer gpu.Close()
	fake := telegramtest.New(tgToken, tgBot)
	defer fake.Close()
	dir := t.TempDir()
	cfg := gpuTelegramConfig(t, dir, fake, "comfyui", gpu.URL)
	b := startBot(t, dir, "-config", cfg)
	fake.AddUpdate(groupDraw(51, "/draw a red fox on a hill --steps 60"))
	waitCall(t, b, fake, "status message", sent("sendMessage", "chat_id", tgGroup, "reply_to_message_id", "51"))
	waitFor(t, "prompt running at ComfyUI", func() bool { return gpu.Running() != "" })
	time.Sleep(300 * time.Millisecond)
	if err := b.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-b.done

	b = startBot(t, dir, "-config", cfg)
	waitCall(t, b, fake, "status with the live preview", func(c telegramtest.Call) bool {
		return (sent("sendPhoto", "chat_id", tgGroup)(c) || sent("editMessageMedia", "chat_id", tgGroup)(c)) && !strings.Contains(c.Params["caption"], "red fox")
	})
	waitCall(t, b, fake, "picture", func(c telegramtest.Call) bool {
		return sent("sendPhoto", "chat_id", tgGroup, "reply_to_message_id", "51")(c) && strings.Contains(c.Params["caption"], "red fox")
	})
	stderr := stopBotStderr(t, b)
	if n := gpu.Posts(); n != 1 {
		t.Fatalf("%d prompts queued at ComfyUI, want 1\n%s", n, stderr)
	}
	if runs := gpu.Runs(); len(runs) != 1 || runs[0].Status != "success" {
		t.Fatalf("runs %+v", runs)
	}
	finals := 0
	for _, c := range fake.Calls("sendPhoto") {
		if c.Status == 200 && strings.Contains(c.Params["caption"], "red fox") {
			finals++
		}
	}
	if finals != 1 {
		t.Fatalf("%d pictures posted, want 1:\n%s", finals, telegramCalls(fake))
	}
}
