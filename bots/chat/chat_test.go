package chat_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/picbot/picbot/bots/chat"
	"github.com/picbot/picbot/engine"
	"github.com/picbot/picbot/engine/local"
	"github.com/picbot/picbot/quota"
	"github.com/picbot/picbot/store"
)

type notifier struct{ ended chan *engine.Job }

func (n notifier) Progress(context.Context, *engine.Job, engine.Progress) {}
func (n notifier) Deliver(ctx context.Context, j *engine.Job) error       { n.ended <- j; return nil }

var (
	root  = engine.UserRef{Platform: "t", ID: "root"}
	alice = engine.UserRef{Platform: "t", ID: "alice", Lang: engine.ZH}
	room  = engine.ChatRef{Platform: "t", ChatID: "room"}
)

func newService(t *testing.T) (*chat.Service, notifier) {
	t.Helper()
	s, n, _ := newServiceDB(t)
	return s, n
}

func newServiceDB(t *testing.T) (*chat.Service, notifier, *store.DB) {
	t.Helper()
	return serviceOn(t, quota.Tier{Daily: 3, Concurrent: 5}, 0, nil)
}

// serviceOn is a service on a store of its own, whose users have tier (and
// "vip" 100 images a day; root is an admin), on the local renderer taking
// render per job, with the engine's configuration changed by cfg.
func serviceOn(t *testing.T, tier quota.Tier, render time.Duration, cfg func(*engine.Config)) (*chat.Service, notifier, *store.DB) {
	t.Helper()
	dir := t.TempDir()
	db, err := store.Open(filepath.Join(dir, "db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	blobs, _ := store.OpenBlobs(filepath.Join(dir, "blobs"), 0)
	qc := quota.DefaultConfig()
	qc.Default = tier
	qc.Tiers = map[string]quota.Tier{"vip": {Daily: 100}}
	qc.Admins = []string{root.Key()}
	q, err := quota.New(qc, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	n := notifier{ended: make(chan *engine.Job, 10)}
	routes := map[engine.Kind][]string{}
	for _, k := range engine.Kinds {
		routes[k] = []string{local.Name}
	}
	ec := engine.Config{Routes: routes, Limits: engine.DefaultLimits()}
	if cfg != nil {
		cfg(&ec)
	}
	e := engine.New(ec, db, q, blobs, n, local.New(blobs, render, nil))
	if err := e.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Stop(context.Background()) })
	return &chat.Service{Engine: e, Quota: q, Blobs: blobs}, n, db
}

func say(s *chat.Service, u engine.UserRef, text string) chat.Reply {
	return s.Handle(context.Background(), chat.Message{User: u, Chat: room, Text: text})
}

func TestHandle(t *testing.T) {
	s, n := newService(t)
	t.Run("ErrInvalidHasUsage", func(t *testing.T) {
		r := say(s, engine.UserRef{Platform: "t", ID: "bob"}, "/draw x --size 13x13")
		if r.Err == nil || !strings.Contains(r.Text, "--size 13x13") || !strings.Contains(r.Text, "\nUsage: /draw") {
			t.Fatalf("reply %q", r.Text)
		}
	})
	t.Run("Chinese", func(t *testing.T) {
		r := say(s, alice, "/frobnicate")
		if !strings.Contains(r.Text, "未知命令") {
			t.Fatalf("reply %q", r.Text)
		}
	})
	t.Run("ErrLinksPrivateFiles", func(t *testing.T) {
		r := say(s, alice, "/upscale /etc/passwd")
		if r.Err == nil || r.Err.Code != engine.EINVALID || r.Job != nil {
			t.Fatalf("reply %+v", r)
		}
	})
	t.Run("AgainAfterDelivery", func(t *testing.T) {
		r := say(s, alice, "/draw 红狐狸 --seed 5 --size 64x64")
		if r.Job == nil {
			t.Fatalf("reply %q", r.Text)
		}
		<-n.ended
		again := s.Follow(context.Background(), chat.Message{User: alice, Chat: room}, r.Job.ID, chat.ActionAgain, 0)
		if again.Job == nil || again.Job.Request.Prompt != "红狐狸" || again.Job.Request.Seed == 5 {
			t.Fatalf("again: %+v", again)
		}
		<-n.ended
		up := s.Follow(context.Background(), chat.Message{User: alice, Chat: room}, r.Job.ID, chat.ActionUpscale, 0)
		if up.Job == nil || up.Job.Request.Kind != engine.KindUpscale || len(up.Job.Request.Inputs) != 1 {
			t.Fatalf("upscale: %+v", up)
		}
		<-n.ended
	})
}

// A button under a job retention removed answers that it is too old, in
// the user's language, rather than "there is no job".
func TestFollowPruned(t *testing.T) {
	s, _, db := newServiceDB(t)
	old := time.Now().Add(-40 * 24 * time.Hour)
	j := &engine.Job{ID: "oldjob", Owner: alice, Chat: room, State: engine.StateDelivered,
		Request: engine.Request{Kind: engine.KindDraw, Prompt: "狐狸"}, Results: []engine.Result{{Blob: strings.Repeat("a", 64)}},
		CreatedAt: old, UpdatedAt: old, FinishedAt: old, DeliveredAt: old}
	if err := db.CreateJob(context.Background(), j, nil); err != nil {
		t.Fatal(err)
	}
	if got := s.Follow(context.Background(), chat.Message{User: alice, Chat: room}, j.ID, chat.ActionAgain, 0); got.Job == nil {
		t.Fatalf("before pruning: %+v", got)
	}
	if got, err := db.PruneJobs(context.Background(), time.Now().Add(-30*24*time.Hour)); err != nil || got != 1 {
		t.Fatalf("pruned %d, %v", got, err)
	}
	for _, c := range []struct {
		user engine.UserRef
		want string
	}{{alice, "任务 oldjob 太久了，已被清理"}, {engine.UserRef{Platform: "t", ID: "alice"}, "Job oldjob is too old"}} {
		for _, action := range []string{chat.ActionAgain, chat.ActionUpscale} {
			got := s.Follow(context.Background(), chat.Message{User: c.user, Chat: room}, j.ID, action, 0)
			if got.Job != nil || got.Err == nil || got.Err.Code != engine.ENOTFOUND || !strings.Contains(got.Text, c.want) {
				t.Errorf("%s: %+v, want %q", action, got, c.want)
			}
		}
	}
}

func TestAdmin(t *testing.T) {
	s, n := newService(t)
	bob := engine.UserRef{Platform: "t", ID: "bob"}
	if r := say(s, bob, "/admin stats"); r.Err == nil || r.Err.Code != engine.EFORBIDDEN {
		t.Fatalf("non-admin ran stats: %q", r.Text)
	}
	for _, line := range []string{"/admin ban bob", "/admin quota alice 1"} {
		if r := say(s, root, line); r.Err != nil {
			t.Fatalf("%s: %q", line, r.Text)
		}
	}
	if r := say(s, bob, "/draw x"); r.Err == nil || r.Err.Code != engine.EFORBIDDEN {
		t.Fatalf("banned user: %q", r.Text)
	}
	if r := say(s, alice, "/draw x --n 2"); r.Err == nil || r.Err.Code != engine.EQUOTA {
		t.Fatalf("quota override not applied: %q", r.Text)
	}
	say(s, root, "/admin unban t:bob")
	if r := say(s, bob, "/draw x --size 64x64"); r.Job == nil {
		t.Fatalf("unbanned user: %q", r.Text)
	}
	<-n.ended
	if r := say(s, root, "/admin tier bob gold"); r.Err == nil {
		t.Fatal("unknown tier accepted")
	}
	if r := say(s, root, "/admin tier bob vip"); r.Err != nil {
		t.Fatal(r.Text)
	}
	if r := say(s, bob, "/quota"); !strings.Contains(r.Text, "of 100") {
		t.Fatalf("tier not applied: %q", r.Text)
	}
	deadline := time.Now().Add(5 * time.Second)
	var stats string
	for time.Now().Before(deadline) {
		if stats = say(s, root, "/admin stats").Text; strings.Contains(stats, "delivered 1") {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(stats, "jobs accepted") || !strings.Contains(stats, "local") || !strings.Contains(stats, "delivered 1") {
		t.Fatalf("stats %q", stats)
	}
}

func TestCaption(t *testing.T) {
	j := &engine.Job{ID: "abc", Vendor: local.Name, Request: engine.Request{Kind: engine.KindDraw, Prompt: strings.Repeat("狐", 3000), Seed: 7, Width: 512, Height: 512}}
	c := chat.Caption(j, engine.EN, 1024)
	if n := utf8.RuneCountInString(c); n > 1024 {
		t.Fatalf("caption is %d characters", n)
	}
	if !strings.Contains(c, "seed 7") || !strings.Contains(c, "not by an AI model") {
		t.Fatalf("caption %q", c)
	}
}
