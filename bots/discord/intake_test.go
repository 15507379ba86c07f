package discord

import (
	"bytes"
	"context"
	"encoding/json"
	"image"
	"image/png"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/picbot/picbot/bots/discord/discordtest"
	"github.com/picbot/picbot/engine"
	"github.com/picbot/picbot/store"
)

// TestIntakeRejoin: a crash after the job was made and before the
// interaction's record went leaves the record; the next start joins it to
// its job and makes no second one, nor edits a delivered result.
func TestIntakeRejoin(t *testing.T) {
	dir := t.TempDir()
	api := discordtest.NewServer(t)
	priv, pub := discordtest.Keys(t)
	h := startHarness(t, setup{dir: dir, api: api, priv: priv, pub: pub})
	body, v := fixture(t, "draw.json", nil)
	tok := v["Token"].(string)
	if status, r, _ := h.post(body); status != 200 || r.Type != 5 {
		t.Fatalf("status %d, answer %+v", status, r)
	}
	final := api.Wait(t, 15*time.Second, "the result", finalEditOf(tok))
	id := jobOf(t, final.Message(t))
	h.stop()

	// The record a crash before its removal leaves.
	db, err := store.Open(filepath.Join(dir, "picbot.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(context.Background(), func(c engine.Counters) error {
		return writeIntake(c, map[string]intake{v["ID"].(string): {Body: body, Received: time.Now()}})
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	before := len(api.Calls())
	h = startHarness(t, setup{dir: dir, api: api, priv: priv, pub: pub})
	deadline := time.Now().Add(10 * time.Second)
	for {
		var left []string
		h.db.View(context.Background(), func(c engine.Counters) error { left = Pending(c); return nil })
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("interactions still taken in: %v", left)
		}
		time.Sleep(20 * time.Millisecond)
	}
	jobs, err := h.eng.Jobs(context.Background(), engine.UserRef{Platform: Platform, ID: "501"}, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) != 1 || jobs[0].ID != id {
		var ids []string
		for _, j := range jobs {
			ids = append(ids, j.ID)
		}
		t.Fatalf("jobs %v, want only %s", ids, id)
	}
	for _, c := range api.Calls()[before:] {
		if editOf(tok)(c) || c.Is("POST", `/channels/.+/messages`) {
			m, _ := json.Marshal(c.Message(t))
			t.Errorf("after the restart: %s %s", c, m)
		}
	}
}

// TestIntakeRecordedBeforeDeferral: by the time Discord has the deferred
// response, in either mode, the interaction is in the store; once its
// work is done, it is not.
func TestIntakeRecordedBeforeDeferral(t *testing.T) {
	for _, mode := range []string{ModeHTTP, ModeGateway} {
		t.Run(mode, func(t *testing.T) {
			release := make(chan struct{})
			cdn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				select { // the attachment comes once the test has looked
				case <-release:
				case <-r.Context().Done():
					return
				}
				w.Header().Set("Content-Type", "image/png")
				w.Write(testPNG(t))
			}))
			defer cdn.Close()
			api := discordtest.NewServer(t)
			h := startHarness(t, setup{api: api, cfg: func(c *Config) {
				if mode == ModeGateway {
					c.Mode, c.PublicKey = ModeGateway, ""
				}
			}})
			body, v := fixture(t, "anime.json", vars{"File": cdn.URL + "/portrait.png", "FileSize": 100})
			id := v["ID"].(string)
			if mode == ModeHTTP {
				if status, r, _ := h.post(body); status != 200 || r.Type != 5 {
					t.Fatalf("status %d, answer %+v", status, r)
				}
			} else {
				api.Gateway().WaitIdentified(t, 10*time.Second)
				if err := api.Gateway().Dispatch("INTERACTION_CREATE", json.RawMessage(body)); err != nil {
					t.Fatal(err)
				}
				api.Wait(t, 5*time.Second, "the deferral", callback)
			}
			pending := func() []string {
				var ids []string
				h.db.View(context.Background(), func(c engine.Counters) error { ids = Pending(c); return nil })
				return ids
			}
			if got := pending(); len(got) != 1 || got[0] != id {
				t.Fatalf("taken in after the deferral: %v, want [%s]", got, id)
			}
			close(release)
			api.Wait(t, 15*time.Second, "the result", finalEditOf(v["Token"].(string)))
			deadline := time.Now().Add(5 * time.Second)
			for len(pending()) > 0 {
				if time.Now().After(deadline) {
					t.Fatalf("still taken in after its work: %v", pending())
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
}

func testPNG(t *testing.T) []byte {
	img := image.NewRGBA(image.Rect(0, 0, 64, 64))
	for i := range img.Pix {
		img.Pix[i] = byte(i)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Error(err)
	}
	return buf.Bytes()
}

// TestIntakeSharedStore: with replicas sharing the store (Lead set), a
// starting replica takes in only what a dead replica left: a record younger
// than intakeGrace may be a live replica's work under way, and one another
// replica took in again just now is its; an older one is taken, and marked
// taken in the same transaction, so no second replica takes it too.
func TestIntakeSharedStore(t *testing.T) {
	dir := t.TempDir()
	api := discordtest.NewServer(t)
	priv, pub := discordtest.Keys(t)
	fresh, fv := fixture(t, "draw.json", vars{"User": "601", "Prompt": "a fresh fox"})
	theirs, tv := fixture(t, "draw.json", vars{"User": "602", "Prompt": "a taken fox"})
	left, lv := fixture(t, "draw.json", vars{"User": "603", "Prompt": "a left fox"})
	db, err := store.Open(filepath.Join(dir, "picbot.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-2 * intakeGrace)
	err = db.Update(context.Background(), func(c engine.Counters) error {
		return writeIntake(c, map[string]intake{
			fv["ID"].(string): {Body: fresh, Received: time.Now()},
			tv["ID"].(string): {Body: theirs, Received: old, Taken: time.Now()},
			lv["ID"].(string): {Body: left, Received: old},
		})
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	lead := func(ctx context.Context, run func(context.Context) error) error { return run(ctx) }
	h := startHarness(t, setup{dir: dir, api: api, priv: priv, pub: pub, deps: func(d *Deps) { d.Lead = lead }})
	api.Wait(t, 15*time.Second, "the left one's result", finalEditOf(lv["Token"].(string)))
	time.Sleep(time.Second)
	var pending []string
	var taken time.Time
	h.db.View(context.Background(), func(c engine.Counters) error {
		pending = Pending(c)
		taken = readIntake(c)[tv["ID"].(string)].Taken
		return nil
	})
	want := []string{fv["ID"].(string), tv["ID"].(string)}
	if len(pending) != 2 || !slices.Contains(pending, want[0]) || !slices.Contains(pending, want[1]) {
		t.Errorf("left taken in: %v, want %v (the fresh one and the one another replica took)", pending, want)
	}
	if taken.IsZero() {
		t.Error("the other replica's mark is gone")
	}
	for user, n := range map[string]int{"601": 0, "602": 0, "603": 1} {
		jobs, err := h.eng.Jobs(context.Background(), engine.UserRef{Platform: Platform, ID: user}, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(jobs) != n {
			t.Errorf("user %s: %d jobs, want %d", user, len(jobs), n)
		}
	}
}
