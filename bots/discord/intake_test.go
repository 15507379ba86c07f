package discord

import (
	"context"
	"encoding/json"
	"path/filepath"
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
