package main

import (
	"bytes"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestMessages runs the binary's console, piped as in the quick start, on
// the commands and messages of issue 13: limits named from the config,
// IME-typed commands, typed buttons, honest charges, images decoded at
// intake with a configured pixel limit, and /help from the config.
func TestMessages(t *testing.T) {
	dir := t.TempDir()
	var b bytes.Buffer
	img := image.NewRGBA(image.Rect(0, 0, 120, 100))
	for i := range img.Pix {
		img.Pix[i] = byte(i * 13)
	}
	png.Encode(&b, img)
	os.WriteFile(filepath.Join(dir, "whole.png"), b.Bytes(), 0o644)
	var small bytes.Buffer
	png.Encode(&small, img.SubImage(image.Rect(0, 0, 90, 90)))
	os.WriteFile(filepath.Join(dir, "cut.png"), small.Bytes()[:small.Len()*2/3], 0o644)
	config := filepath.Join(dir, "picbot.yaml")
	os.WriteFile(config, []byte(`console:
  user: bob
  wait: 30s
local:
  duration: 300ms
engine:
  max_input_pixels: 10000
  limits:
    max_steps: 150
quota:
  admins: []
  default: {daily: 20, concurrent: 10, every: 1ms, burst: 100}
`), 0o600)

	first := runBot(t, dir, strings.Join([]string{
		"/draw x --steps 0",
		"/draw x --cfg 0",
		"/upscale whole.png --scale 0",
		"／draw 一只猫 ——size 640x512 --seed 5",
		"/draw a cat -size 640x512",
		"/draw two foxes --n 2 --size 64x64 --model sdxl",
		"/upscale cut.png",
		"/upscale whole.png",
		"/help",
	}, "\n")+"\n", "-config", config)
	for _, want := range []string{
		`--steps must be a whole number from 1 to 150, not "0".`,
		`--cfg must be a number from 1 to 30, like 7.5, not "0".`,
		`--scale must be a whole number from 1 to 8, not "0".`,
		`"一只猫", 640x512, seed 5.`,
		`"-size" has one dash: did you mean --size?`,
		`It costs 2 images of today's quota.`,
		`The local renderer ignores --model sdxl.`,
		`Image 1: The picture is damaged or cut short; please send it again.`,
		`Image 1: The picture is 120x100; at most 10,000 pixels are accepted (a square of 100x100). Please send a smaller one.`,
		`by: local`,
		`--steps 1 to 150`,
	} {
		if !strings.Contains(first, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(first, "/admin") {
		t.Error("/help shows /admin to a user who is not an admin")
	}
	if t.Failed() {
		t.Fatalf("output:\n%s", first)
	}
	ids := regexp.MustCompile(`Job ([a-z2-7]{16}) queued: "一只猫"`).FindStringSubmatch(first)
	if ids == nil {
		t.Fatalf("no job id:\n%s", first)
	}
	id := ids[1]
	out := runBot(t, dir, "/upscale "+id+"\n/again "+id+"\n/vary "+id+"\n", "-config", config)
	for _, want := range []string{"queued: upscale ×2.", `queued: "一只猫", 640x512`, `queued: "一只猫"`} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, " done:"); n != 3 {
		t.Errorf("%d jobs done, want 3:\n%s", n, out)
	}

	// A free job cancelled while the local renderer has it is refunded,
	// and the reply and the end both say so.
	dir = t.TempDir()
	slow := filepath.Join(dir, "slow.yaml")
	os.WriteFile(slow, []byte("console:\n  user: bob\n  wait: 30s\nlocal:\n  duration: 3s\nquota:\n  admins: []\n"), 0o600)
	bot := startBot(t, dir, "-config", slow)
	bot.stdin.Write([]byte("/draw 狐狸 --size 64x64\n"))
	var jid string
	for line := range bot.lines {
		if m := regexp.MustCompile(`Job ([a-z2-7]{16}) queued`).FindStringSubmatch(line); m != nil {
			jid = m[1]
			break
		}
	}
	// Cancelled once the renderer has it (submitted, at the vendor), not
	// after a fixed time, which on a loaded machine may find it queued.
	atVendor := regexp.MustCompile(`^Job ` + jid + `: (sent to|.*%$)`)
	for line := range bot.lines {
		if atVendor.MatchString(line) {
			break
		}
	}
	bot.stdin.Write([]byte("/cancel " + jid + "\n/quota\n"))
	out = bot.wait(t, time.Minute)
	for _, want := range []string{"Job " + jid + " cancelled. Your quota was refunded.", "Today: 0 of 20 images used", "Job " + jid + " was cancelled. Your quota was refunded."} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
