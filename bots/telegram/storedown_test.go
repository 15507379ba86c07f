package telegram

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/picbot/picbot/engine"
	"github.com/picbot/picbot/store"
)

// failingCreate is the store with CreateJob failing while down is set, as a
// database out of connections fails it.
type failingCreate struct {
	*store.DB
	down atomic.Bool
}

func (f *failingCreate) CreateJob(ctx context.Context, j *engine.Job, reserve func(engine.Counters) error) error {
	if f.down.Load() {
		return errors.New("FATAL: sorry, too many clients already")
	}
	return f.DB.CreateJob(ctx, j, reserve)
}

// TestWebhookStoreDown: a command whose job the store cannot record is
// refused with a 5xx, so Telegram sends it again, and nothing is said in
// the chat; sent again once the store is back, it makes its one job.
// Before, the update was answered 200 after a "something went wrong"
// reply, and the command was lost.
func TestWebhookStoreDown(t *testing.T) {
	const secret = "s3cret_Token-1"
	var fc *failingCreate
	h := newHarness(t, "", nil, withConfig(func(c *Config) {
		c.Mode, c.WebhookURL, c.WebhookSecret = ModeWebhook, "https://bot.example.com/tg/hook", secret
	}), func(h *harness, _ *engine.Config) {
		h.jobStore = func(db *store.DB) engine.Store {
			fc = &failingCreate{DB: db}
			fc.down.Store(true)
			return fc
		}
	})
	mux := http.NewServeMux()
	h.bot.Routes(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	h.wait(10*time.Second, "setWebhook", is("setWebhook"))
	var update map[string]any
	json.Unmarshal(fixture(t, "group_draw_mention.json"), &update)
	update["update_id"] = 901
	ctx := context.Background()
	code, err := h.fake.PostWebhook(ctx, srv.URL+"/tg/hook", secret, update)
	if err != nil || code < 500 {
		t.Fatalf("with the store down: status %d, %v; want a 5xx so Telegram sends it again", code, err)
	}
	if n := len(h.fake.Calls("sendMessage")); n != 0 {
		t.Errorf("%d messages sent for a command not recorded", n)
	}
	fc.down.Store(false)
	if code, err := h.fake.PostWebhook(ctx, srv.URL+"/tg/hook", secret, update); err != nil || code != http.StatusOK {
		t.Fatalf("sent again: status %d, %v", code, err)
	}
	h.wait(15*time.Second, "photo", is("sendPhoto", "chat_id", groupChat))
	if jobs := h.jobsOf("501"); len(jobs) != 1 {
		t.Errorf("%d jobs", len(jobs))
	}
}
