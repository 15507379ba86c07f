package discord

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/bwmarrin/discordgo"
	"github.com/picbot/picbot/bots/discord/discordtest"
	"github.com/picbot/picbot/engine"
)

// Discord announces each route's bucket in its X-RateLimit headers. Once a
// bucket says it is empty, the next call on that route is held back by the
// session's rate limiter, unsent and without sleeping, while other routes
// go on; interaction-token calls share the same limiter.
func TestRESTUsesDiscordBuckets(t *testing.T) {
	api := discordtest.NewServer(t)
	api.Intercept(func(w http.ResponseWriter, c *discordtest.Call) bool {
		if c.Is("POST", `/channels/111/messages`) || c.Is("PATCH", `/webhooks/app/tok1/messages/[^/]+`) {
			w.Header().Set("X-RateLimit-Limit", "5")
			w.Header().Set("X-RateLimit-Remaining", "0")
			w.Header().Set("X-RateLimit-Reset-After", "30")
			w.Header().Set("X-RateLimit-Bucket", "b1")
		}
		return false
	})
	s, err := newSession("x", api.URL+"/api", "")
	if err != nil {
		t.Fatal(err)
	}
	r := &session{s: s}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	count := func(method, pattern string) int {
		n := 0
		for _, c := range api.Calls() {
			if c.Is(method, pattern) {
				n++
			}
		}
		return n
	}

	if _, err := r.send(ctx, "111", &message{Content: "one"}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = r.send(ctx, "111", &message{Content: "two"})
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("the held-back call slept %s", took)
	}
	if d, ok := rateLimited(err); !ok || d < 20*time.Second || d > 31*time.Second {
		t.Fatalf("second send: err %v (wait %s), want a 429 held back for about 30 s", err, d)
	}
	if n := count("POST", `/channels/111/messages`); n != 1 {
		t.Fatalf("Discord saw %d posts to the empty bucket's channel, want 1", n)
	}
	if _, err := r.send(ctx, "222", &message{Content: "elsewhere"}); err != nil {
		t.Fatalf("another channel's bucket is not empty: %v", err)
	}

	if _, err := r.editOriginal(ctx, "app", "tok1", &message{Content: "a"}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.editOriginal(ctx, "app", "tok1", &message{Content: "b"}); !isRateLimited(err) {
		t.Fatalf("second edit on an empty bucket: %v", err)
	}
	if n := count("PATCH", `/webhooks/app/tok1/messages/[^/]+`); n != 1 {
		t.Fatalf("Discord saw %d edits on the empty bucket, want 1", n)
	}
	if _, err := r.editOriginal(ctx, "app", "tok2", &message{Content: "c"}); err != nil {
		t.Fatalf("another interaction's bucket is not empty: %v", err)
	}
}

func isRateLimited(err error) bool { _, ok := rateLimited(err); return ok }

// A delivery that meets a 429 asks the engine to try again after the wait,
// instead of sleeping in its worker: by the token while the wait ends before
// the token's expiry, and in the channel too.
func TestDeliverRateLimitedIsLater(t *testing.T) {
	limited := func(op string) error {
		return &apiError{Op: op, Status: http.StatusTooManyRequests, RetryAfter: 3 * time.Second}
	}
	t.Run("token", func(t *testing.T) {
		u := newUnit(t, true)
		u.api.onEdit = func(string, *message) (*discordgo.Message, error) { return nil, limited("edit") }
		err := u.bot.Deliver(context.Background(), u.job)
		if d, ok := engine.AsLater(err); !ok || d != 3*time.Second {
			t.Fatalf("Deliver = %v, want engine.Later after 3s", err)
		}
		if ops := u.api.ops(); len(ops) != 1 {
			t.Fatalf("calls %q: want one edit, no wait and retry, no channel post", ops)
		}
	})
	t.Run("channel", func(t *testing.T) {
		u := newUnit(t, false)
		u.api.onSend = func(string, *message) (*discordgo.Message, error) { return nil, limited("send") }
		err := u.bot.Deliver(context.Background(), u.job)
		if d, ok := engine.AsLater(err); !ok || d != 3*time.Second {
			t.Fatalf("Deliver = %v, want engine.Later after 3s", err)
		}
	})
}
