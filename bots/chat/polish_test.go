package chat_test

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/picbot/picbot/bots/chat"
	"github.com/picbot/picbot/engine"
	"github.com/picbot/picbot/engine/local"
	"github.com/picbot/picbot/quota"
)

// newServiceWith is newService with 5 images a day, files on this machine
// taken as inputs, the local renderer taking render per job and the
// engine's configuration changed by cfg.
func newServiceWith(t *testing.T, render time.Duration, cfg func(*engine.Config)) (*chat.Service, notifier) {
	t.Helper()
	s, n, _ := serviceOn(t, quota.Tier{Daily: 5, Concurrent: 5}, render, cfg)
	s.LocalFiles = true
	return s, n
}

func wait(t *testing.T, n notifier) *engine.Job {
	t.Helper()
	select {
	case j := <-n.ended:
		return j
	case <-time.After(10 * time.Second):
		t.Fatal("no job ended")
	}
	return nil
}

var bob = engine.UserRef{Platform: "t", ID: "bob"}

// TestHelpFollowsConfig: /help names each command's vendors and their
// choices, the limits in force, and /admin only to admins; parse errors
// name the same limits.
func TestHelpFollowsConfig(t *testing.T) {
	s, _ := newServiceWith(t, 0, func(c *engine.Config) { c.Limits.MaxSteps, c.Limits.MaxImages = 150, 8 })
	help := say(s, bob, "/help").Text
	for _, want := range []string{"by: local", "--style anime|sketch|pop", "ignores --model, --lora, --sampler", "--steps 1 to 150", "--n 1 to 8", "/again <job id>"} {
		if !strings.Contains(help, want) {
			t.Errorf("help lacks %q:\n%s", want, help)
		}
	}
	if strings.Contains(help, "/admin") {
		t.Errorf("a user's help shows /admin:\n%s", help)
	}
	if !strings.Contains(say(s, root, "/help").Text, "/admin tier") {
		t.Error("an admin's help has no /admin")
	}
	if r := say(s, bob, "/draw x --steps 0"); !strings.Contains(r.Text, "from 1 to 150") {
		t.Errorf("steps 0: %q", r.Text)
	}
	if r := say(s, bob, "/draw x --steps 200"); !strings.Contains(r.Text, "between 1 and 150") {
		t.Errorf("steps 200: %q", r.Text)
	}
	if r := say(s, bob, "/models"); !strings.Contains(r.Text, "local: ignores --model") {
		t.Errorf("models: %q", r.Text)
	}
}

// TestCharges: the ack names a cost above 1; a free local job cancelled
// at the vendor is refunded and says so; the result says the renderer
// ignored --model.
func TestCharges(t *testing.T) {
	s, n := newServiceWith(t, 2*time.Second, nil)
	r := say(s, bob, "/draw a fox --n 2 --size 64x64 --model sdxl")
	if r.Job == nil || !strings.Contains(r.Text, "It costs 2 images of today's quota.") {
		t.Fatalf("ack %q", r.Text)
	}
	if one := say(s, alice, "/draw 狐狸 --size 64x64"); one.Job == nil || strings.Contains(one.Text, "额度") {
		t.Fatalf("ack of a one-image job: %q", one.Text)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		j, _ := s.Engine.Job(context.Background(), r.Job.ID)
		if j.State.AtVendor() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("job still %s", j.State)
		}
		time.Sleep(10 * time.Millisecond)
	}
	c := say(s, bob, "/cancel "+r.Job.ID)
	if !strings.Contains(c.Text, "cancelled. Your quota was refunded.") {
		t.Fatalf("cancel: %q", c.Text)
	}
	if q := say(s, bob, "/quota").Text; !strings.Contains(q, "0 of 5") {
		t.Fatalf("quota after the cancel: %q", q)
	}
	ended := wait(t, n)
	if ended.ID == r.Job.ID {
		if msg := chat.Ended(ended, engine.EN); !strings.Contains(msg, "refunded") {
			t.Fatalf("ended: %q", msg)
		}
		ended = wait(t, n)
	}
	_ = ended
	j := &engine.Job{ID: "j1", Vendor: local.Name, State: engine.StateDelivered,
		Request: engine.Request{Kind: engine.KindDraw, Prompt: "x", Model: "sdxl", Sampler: "ddim"}}
	if c := chat.Caption(j, engine.EN, 1024); !strings.Contains(c, "The local renderer ignores --model sdxl, --sampler ddim.") {
		t.Fatalf("caption %q", c)
	}
	failed := &engine.Job{ID: "j2", State: engine.StateFailed, Err: &engine.ErrorInfo{Code: engine.EVENDOR, EN: "The vendor failed."},
		Charge: engine.Charge{Cost: 1, Settled: engine.ChargeRefunded}}
	if msg := chat.Ended(failed, engine.EN); msg != "Job j2 failed: The vendor failed. Your quota was refunded." {
		t.Fatalf("failed: %q", msg)
	}
	failed.Charge.Settled = engine.ChargeCommitted
	if msg := chat.Ended(failed, engine.ZH); !strings.HasSuffix(msg, "额度未退还。") {
		t.Fatalf("failed, not refunded: %q", msg)
	}
}

// TestEndedSaysRefundOnce: a job the engine fails (here at its deadline)
// is told once that its quota came back, in both languages. Before: the
// engine's message said so and the chat's sentence after it again ("The
// image service took too long; your quota was refunded. Your quota was
// refunded.").
func TestEndedSaysRefundOnce(t *testing.T) {
	s, n := newServiceWith(t, time.Hour, func(c *engine.Config) { c.JobTimeout = 200 * time.Millisecond })
	r := say(s, bob, "/draw a slow fox --size 64x64")
	if r.Job == nil {
		t.Fatalf("refused: %q", r.Text)
	}
	j := wait(t, n)
	if j.State != engine.StateFailed {
		t.Fatalf("job %s, want failed at its deadline", j.State)
	}
	for lang, refund := range map[engine.Lang]string{engine.EN: "refunded", engine.ZH: "退还"} {
		msg := chat.Ended(j, lang)
		if got := strings.Count(msg, refund); got != 1 || !strings.HasSuffix(msg, chat.Refunded(lang)) {
			t.Errorf("%s: %q says the refund %d times, want once, at the end", lang, msg, got)
		}
	}
}

// TestIntakeDecodes: a truncated picture, and one past the pixel limit,
// are refused before a job exists, saying why.
func TestIntakeDecodes(t *testing.T) {
	s, _ := newServiceWith(t, 0, nil)
	var b bytes.Buffer
	img := image.NewRGBA(image.Rect(0, 0, 300, 200))
	for i := range img.Pix {
		img.Pix[i] = byte(i * 7)
	}
	png.Encode(&b, img)
	dir := t.TempDir()
	cut := filepath.Join(dir, "cut.png")
	os.WriteFile(cut, b.Bytes()[:b.Len()/2], 0o644)
	whole := filepath.Join(dir, "whole.png")
	os.WriteFile(whole, b.Bytes(), 0o644)
	if r := say(s, bob, "/upscale "+cut); r.Job != nil || r.Err == nil || !strings.Contains(r.Text, "damaged or cut short") {
		t.Fatalf("truncated: %+v", r)
	}
	if r := say(s, alice, "/upscale "+cut); !strings.Contains(r.Text, "图片已损坏或不完整") {
		t.Fatalf("truncated, zh: %q", r.Text)
	}
	s.MaxInputPixels = 200 * 200
	if r := say(s, bob, "/upscale "+whole); r.Job != nil || !strings.Contains(r.Text, "at most 40,000 pixels") || !strings.Contains(r.Text, "200x200") {
		t.Fatalf("pixel limit: %+v", r)
	}
	if jobs, _ := s.Engine.Jobs(context.Background(), bob, 10); len(jobs) != 0 {
		t.Fatalf("%d jobs made", len(jobs))
	}
	s.MaxInputPixels = 0
	if r := say(s, bob, "/upscale "+whole); r.Job == nil {
		t.Fatalf("whole picture: %q", r.Text)
	}
}

// TestTypedButtons: /again, /vary and /upscale with a job id do what the buttons do.
func TestTypedButtons(t *testing.T) {
	s, n := newServiceWith(t, 0, nil)
	r := say(s, bob, "/draw a fox --size 64x64 --seed 3")
	if r.Job == nil {
		t.Fatal(r.Text)
	}
	wait(t, n)
	for _, tc := range []struct {
		line  string
		kind  engine.Kind
		scale int
	}{
		{"/again " + strings.ToUpper(r.Job.ID), engine.KindDraw, 0},
		{"/vary " + r.Job.ID, engine.KindDraw, 0},
		{"/upscale " + r.Job.ID, engine.KindUpscale, 2},
		{"/upscale " + r.Job.ID + " --scale 4", engine.KindUpscale, 4},
	} {
		got := say(s, bob, tc.line)
		if got.Job == nil || got.Job.Request.Kind != tc.kind || got.Job.Request.Scale != tc.scale {
			t.Fatalf("%s: %q", tc.line, got.Text)
		}
		if tc.line[1] == 'v' && len(got.Job.Request.Inputs) != 1 {
			t.Fatalf("vary has no reference image")
		}
		wait(t, n)
	}
	if got := say(s, bob, "/again nosuchjobnosuchj"); got.Err == nil || got.Err.Code != engine.ENOTFOUND {
		t.Fatalf("unknown job: %q", got.Text)
	}
}

// TestStatsCountsAdmins: an admin's job counts in /admin stats, which names its time zone.
func TestStatsCountsAdmins(t *testing.T) {
	s, n := newServiceWith(t, 0, nil)
	if r := say(s, root, "/draw x --size 64x64"); r.Job == nil {
		t.Fatal(r.Text)
	}
	wait(t, n)
	if st := say(s, root, "/admin stats").Text; !strings.Contains(st, "Asia/Shanghai") || !strings.Contains(st, ": 1 jobs accepted") {
		t.Fatalf("stats %q", st)
	}
}
