package telegram

import (
	"context"
	"encoding/json"
	"image/color"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/picbot/picbot/bots/telegram/telegramtest"
	"github.com/picbot/picbot/engine"
)

// TestFloodedChatHoldsNoOther: fifty results for one group finish at once,
// queued ahead of one for a private chat. Workers, as the engine's, call
// Deliver and put a job that gets Later back in the queue after its wait.
// No worker sleeps on the group's limit, so the private chat's photo goes
// out before the group has had five of its posts (it has room for three at
// once, then one per GroupEvery).
func TestFloodedChatHoldsNoOther(t *testing.T) {
	h := newHarness(t, "", nil)
	pic := testPNG(t, 32, 32, color.White)
	queue := make(chan *engine.Job, 64)
	for range 50 {
		queue <- h.storedJob(groupChat, false, engine.EN, pic)
	}
	queue <- h.storedJob("601", true, engine.EN, pic)

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	for range 4 {
		wg.Go(func() {
			for {
				var j *engine.Job
				select {
				case <-ctx.Done():
					return
				case j = <-queue:
				}
				err := h.bot.Deliver(ctx, j)
				if d, later := engine.AsLater(err); later {
					wg.Add(1)
					time.AfterFunc(d, func() {
						defer wg.Done()
						if ctx.Err() != nil {
							return
						}
						if stored, err := h.engine.Job(ctx, j.ID); err == nil {
							queue <- stored // with the steps noted so far
						}
					})
					continue
				}
				if err != nil && ctx.Err() == nil {
					t.Errorf("Deliver %s: %v", j.ID, err)
				}
			}
		})
	}
	h.wait(60*time.Second, "private photo", is("sendPhoto", "chat_id", "601"))
	var group int
	for _, c := range h.fake.Calls("sendPhoto") {
		if c.Params["chat_id"] == "601" {
			break
		}
		if c.Params["chat_id"] == groupChat && c.Status == http.StatusOK {
			group++
		}
	}
	t.Logf("the private photo went out after %d of the group's posts", group)
	if group >= 5 {
		t.Errorf("the private photo waited behind %d of the group's posts", group)
	}
}

// TestIntakeNotHeldByFloodedChat: a group's reply held by a 429 does not
// hold up the updates that follow: the next getUpdates goes out, and a
// private chat's reply is sent before the group's.
func TestIntakeNotHeldByFloodedChat(t *testing.T) {
	h := newHarness(t, "", nil)
	h.fake.Fail("sendMessage", telegramtest.Failure{Code: 429, RetryAfter: 30})
	h.fake.AddUpdate(fixture(t, "group_help.json"))
	h.wait(10*time.Second, "the 429", func(c telegramtest.Call) bool { return c.Method == "sendMessage" && c.Status == 429 })
	h.fake.AddUpdate(fixture(t, "private_text.json"))
	h.wait(20*time.Second, "private reply", is("sendMessage", "chat_id", "601"))
	if n := len(ok(h.fake.Calls("sendMessage"))); n != 1 {
		t.Errorf("%d replies sent, want only the private one (the group's waits out its 429)", n)
	}
}

// TestWebhookAnsweredFirst: the webhook answers an update as soon as its job
// is stored and the update marked, while the status message is still held
// at the fake. The bot dies before that message goes out; Telegram sends
// the update again to the next run, which makes no second job and posts
// the status message the first run could not.
func TestWebhookAnsweredFirst(t *testing.T) {
	const secret = "s3cret_Token-2"
	fake := telegramtest.New(testToken, testUsername)
	defer fake.Close()
	dir := t.TempDir()
	hook := withConfig(func(c *Config) {
		c.Mode, c.WebhookURL, c.WebhookSecret = ModeWebhook, "https://bot.example.com/tg/hook", secret
	})
	serve := func(h *harness) *httptest.Server {
		mux := http.NewServeMux()
		h.bot.Routes(mux)
		srv := httptest.NewServer(mux)
		h.wait(10*time.Second, "setWebhook", is("setWebhook"))
		return srv
	}
	var update map[string]any
	if err := json.Unmarshal(fixture(t, "group_draw_mention.json"), &update); err != nil {
		t.Fatal(err)
	}
	update["update_id"] = 900

	h := newHarness(t, dir, fake, hook, withRender(2*time.Second))
	srv := serve(h)
	release := fake.Hold("sendMessage")
	defer release(true)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	code, err := fake.PostWebhook(ctx, srv.URL+"/tg/hook", secret, update)
	if err != nil || code != http.StatusOK {
		t.Fatalf("webhook answered %d, %v: it waits for the status message", code, err)
	}
	if jobs := h.jobsOf("501"); len(jobs) != 1 {
		t.Fatalf("answered with %d jobs stored", len(jobs))
	}
	if n := len(fake.Calls("sendMessage")); n != 0 {
		t.Fatalf("%d messages sent before the answer", n)
	}
	if err := fake.WaitHeld(ctx, "sendMessage"); err != nil {
		t.Fatalf("the status message never went out: %v", err)
	}
	release(false) // the bot dies with the status message on the wire
	h.stop()
	srv.Close()

	h2 := newHarness(t, dir, fake, hook)
	srv2 := serve(h2)
	defer srv2.Close()
	if code, err := fake.PostWebhook(ctx, srv2.URL+"/tg/hook", secret, update); err != nil || code != http.StatusOK {
		t.Fatalf("update sent again: %d, %v", code, err)
	}
	h2.wait(15*time.Second, "photo", is("sendPhoto", "chat_id", groupChat))
	waitState(t, h2, h2.jobsOf("501")[0].ID, engine.StateDelivered)
	if jobs := h2.jobsOf("501"); len(jobs) != 1 {
		t.Errorf("%d jobs, want 1", len(jobs))
	}
	if n := len(ok(fake.Calls("sendPhoto"))); n != 1 {
		t.Errorf("%d photos, want 1", n)
	}
	// The status message cut off by the kill is posted by the next run, once.
	if n := strings.Count(dump(ok(fake.Calls("sendMessage"))), "queued"); n != 1 {
		t.Errorf("%d status messages, want 1:\n%s", n, dump(fake.Calls("sendMessage")))
	}
}
