package telegram

import (
	"context"
	"fmt"
	"image/color"
	"testing"
	"time"

	"github.com/picbot/picbot/bots/telegram/telegramtest"
	"github.com/picbot/picbot/engine"
)

// TestPostLanes: four jobs, each for a chat of its own, are delivered at
// once while the fake Bot API holds sendPhoto. No more photos than there
// are post lanes come to the fake before the first is answered and noted on
// its job: a crash then would repeat that many posts, not four. Once let
// through, every job is delivered and noted, each photo posted once.
func TestPostLanes(t *testing.T) {
	for _, lanes := range []int{1, 2} {
		t.Run(fmt.Sprintf("lanes=%d", lanes), func(t *testing.T) {
			h := newHarness(t, "", nil, withConfig(func(c *Config) { c.PostLanes = lanes }))
			pic := testPNG(t, 32, 32, color.White)
			release := h.fake.Hold("sendPhoto")
			defer release(true)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var jobs []*engine.Job
			errs := make(chan error, 4)
			for i := range 4 {
				j := h.storedJob(fmt.Sprint(700+i), true, engine.EN, pic)
				jobs = append(jobs, j)
				go func() { errs <- deliver(h.bot, ctx, j) }()
			}
			if err := h.fake.WaitHeld(ctx, "sendPhoto"); err != nil {
				t.Fatal(err)
			}
			// The others would reach the fake within milliseconds: give them
			// time to try.
			for end := time.Now().Add(500 * time.Millisecond); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
				if n := h.fake.Held("sendPhoto"); n > lanes {
					t.Fatalf("%d photos posted and not recorded at once; %d post lanes", n, lanes)
				}
			}
			if n := h.fake.Held("sendPhoto"); n != lanes {
				t.Errorf("%d photos under way with %d post lanes free to take them", n, lanes)
			}
			release(true)
			for range jobs {
				if err := <-errs; err != nil {
					t.Fatalf("Deliver: %v", err)
				}
			}
			for _, j := range jobs {
				stored, err := h.engine.Job(ctx, j.ID)
				if err != nil {
					t.Fatal(err)
				}
				if stored.Meta[metaSent] != "1" {
					t.Errorf("job %s: delivery noted %q, want 1", j.ID, stored.Meta[metaSent])
				}
				if n := len(ok(inChat(h, "sendPhoto", j.Chat.ChatID))); n != 1 {
					t.Errorf("job %s: %d photos posted, want 1", j.ID, n)
				}
			}
		})
	}
}

// inChat is h's calls of method to chat.
func inChat(h *harness, method, chat string) []telegramtest.Call {
	var out []telegramtest.Call
	for _, c := range h.fake.Calls(method) {
		if c.Params["chat_id"] == chat {
			out = append(out, c)
		}
	}
	return out
}
