package chat_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/picbot/picbot/bots/chat"
	"github.com/picbot/picbot/engine"
	"github.com/picbot/picbot/moderation"
	"github.com/picbot/picbot/store"
)

func withOps(t *testing.T, s *chat.Service, db *store.DB, cfg moderation.Config) {
	t.Helper()
	m, err := moderation.New(cfg, db, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.Moderator, s.Settings = m, db
	s.Presets = map[string]chat.Preset{"anime": {PromptPrefix: "anime style", Negative: "lowres", Size: "512x768", Steps: 28, Sampler: "k_euler"}}
}

func used(t *testing.T, s *chat.Service, u engine.UserRef) (int, int) {
	t.Helper()
	st, err := s.Quota.Status(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	jobs, err := s.Engine.Jobs(context.Background(), u, 100)
	if err != nil {
		t.Fatal(err)
	}
	return int(st.Used), len(jobs)
}

// A blocked prompt is refused before a job exists or anything is charged,
// in the user's language, naming no word; repeats lock the user out until
// an admin lifts it, and /admin stats shows both.
func TestModerationInService(t *testing.T) {
	s, n, db := newServiceDB(t)
	cfg := moderation.DefaultConfig()
	cfg.BlockedWords, cfg.NSFWWords, cfg.LockoutAfter = []string{"裸体", "gore"}, []string{"bikini"}, 2
	withOps(t, s, db, cfg)
	bob := engine.UserRef{Platform: "t", ID: "bob"}
	r := say(s, alice, "/draw 海边一个裸体的人 --size 64x64")
	if r.Job != nil || r.Err == nil || r.Err.Code != engine.EFORBIDDEN || !strings.Contains(r.Text, "不允许") || strings.Contains(r.Text, "裸体") {
		t.Fatalf("reply %+v", r)
	}
	if u, jobs := used(t, s, alice); u != 0 || jobs != 0 {
		t.Fatalf("refused prompt stored or charged: used %d, jobs %d", u, jobs)
	}
	// A near miss is drawn.
	if r := say(s, bob, "/draw a field of grass, gorest --size 64x64"); r.Job == nil {
		t.Fatalf("near miss refused: %q", r.Text)
	}
	<-n.ended
	// The NSFW list: refused here, allowed once the chat's admin turns NSFW on.
	if r := say(s, bob, "/draw a bikini --size 64x64"); r.Job != nil || !strings.Contains(r.Text, "adult") {
		t.Fatalf("nsfw word outside an NSFW chat: %q", r.Text)
	}
	if r := say(s, bob, "/settings nsfw on"); r.Err == nil || r.Err.Code != engine.EFORBIDDEN {
		t.Fatalf("a member changed the settings: %+v", r)
	}
	admin := func(context.Context) (bool, error) { return true, nil }
	if r := s.Handle(context.Background(), chat.Message{User: bob, Chat: room, Text: "/settings nsfw on", ChatAdmin: admin}); r.Err != nil {
		t.Fatalf("chat admin: %q", r.Text)
	}
	// A second strike locks Bob out, even for a prompt the chat allows now.
	if r := say(s, bob, "/draw GORE --size 64x64"); r.Job != nil || !strings.Contains(r.Text, "cannot start jobs for 1h") {
		t.Fatalf("second strike: %q", r.Text)
	}
	if r := say(s, bob, "/draw a bikini --size 64x64"); r.Job != nil || !strings.Contains(r.Text, "locked out") {
		t.Fatalf("locked user: %q", r.Text)
	}
	if r := say(s, root, "/admin stats"); !strings.Contains(r.Text, "3 prompts refused · 1 lockouts") || !strings.Contains(r.Text, "locked out: t:bob") {
		t.Fatalf("stats %q", r.Text)
	}
	if r := say(s, root, "/admin unban t:bob"); r.Err != nil {
		t.Fatal(r.Text)
	}
	if r := say(s, bob, "/draw a bikini --size 64x64"); r.Job == nil {
		t.Fatalf("after unban, in an NSFW chat: %q", r.Text)
	}
	<-n.ended
}

// A preset fills what the user left out; the chat's default preset and
// size apply without --preset, and what the user types wins.
func TestPresetsAndChatDefaults(t *testing.T) {
	s, n, db := newServiceDB(t)
	withOps(t, s, db, moderation.DefaultConfig())
	r := say(s, alice, "/draw a fox --preset anime --steps 10")
	if r.Job == nil {
		t.Fatal(r.Text)
	}
	got := r.Job.Request
	if got.Prompt != "anime style, a fox" || got.Negative != "lowres" || got.Width != 512 || got.Height != 768 || got.Steps != 10 || got.Sampler != "k_euler" {
		t.Fatalf("preset applied as %+v", got)
	}
	<-n.ended
	if r := say(s, alice, "/draw a fox --preset nope"); r.Job != nil || !strings.Contains(r.Text, "anime") {
		t.Fatalf("unknown preset: %q", r.Text)
	}
	if r := say(s, root, "/settings size 640x512"); r.Err != nil || !strings.Contains(r.Text, "640x512") {
		t.Fatalf("settings: %q", r.Text)
	}
	r = say(s, alice, "/draw a cat")
	if r.Job == nil || r.Job.Request.Width != 640 || r.Job.Request.Height != 512 || r.Job.Request.Prompt != "a cat" {
		t.Fatalf("chat size: %+v %q", r.Job, r.Text)
	}
	<-n.ended
	if r := say(s, root, "/settings preset anime"); r.Err != nil {
		t.Fatal(r.Text)
	}
	r = say(s, alice, "/draw a cat --size 64x64")
	if r.Job == nil || r.Job.Request.Width != 64 || r.Job.Request.Prompt != "anime style, a cat" {
		t.Fatalf("chat preset: %+v %q", r.Job, r.Text)
	}
	<-n.ended
	// Another chat is not touched.
	other := engine.ChatRef{Platform: "t", ChatID: "other"}
	r = s.Handle(context.Background(), chat.Message{User: root, Chat: other, Text: "/draw a cat"})
	if r.Job == nil || r.Job.Request.Width != 512 || r.Job.Request.Prompt != "a cat" {
		t.Fatalf("other chat: %+v %q", r.Job, r.Text)
	}
	<-n.ended
	for _, bad := range []string{"/settings size 13x13", "/settings preset nope", "/settings nsfw maybe", "/settings colour red"} {
		if r := say(s, root, bad); r.Err == nil {
			t.Errorf("%s accepted: %q", bad, r.Text)
		}
	}
}

// /jobs shows each job's parameters and seed; /show sends a kept result
// again, only to its owner.
func TestJobsAndShow(t *testing.T) {
	s, n, _ := newServiceDB(t)
	r := say(s, alice, "/draw 红狐狸 --seed 77 --size 64x64 --steps 9")
	if r.Job == nil {
		t.Fatal(r.Text)
	}
	<-n.ended
	deadline := time.Now().Add(10 * time.Second)
	for {
		j, _ := s.Engine.Job(context.Background(), r.Job.ID)
		if j.State == engine.StateDelivered || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	list := say(s, alice, "/jobs")
	if !strings.Contains(list.Text, r.Job.ID) || !strings.Contains(list.Text, "64x64 · 种子 77 · 步数 9") {
		t.Fatalf("/jobs %q", list.Text)
	}
	shown := say(s, alice, "/show "+strings.ToUpper(r.Job.ID))
	if shown.Show == nil || shown.Show.ID != r.Job.ID || len(shown.Show.Results) != 1 {
		t.Fatalf("/show %+v", shown)
	}
	if other := say(s, engine.UserRef{Platform: "t", ID: "mallory"}, "/show "+r.Job.ID); other.Show != nil || other.Err == nil || other.Err.Code != engine.ENOTFOUND {
		t.Fatalf("another user's /show: %+v", other)
	}
	if r := say(s, alice, "/show aaaaaaaaaaaaaaaa"); r.Show != nil || r.Err == nil {
		t.Fatalf("no such job: %+v", r)
	}

}

type adultCatalog struct{}

func (adultCatalog) Catalog(context.Context) ([]engine.CatalogEntry, error) {
	return []engine.CatalogEntry{
		{Vendor: "v", Kind: engine.EntryModel, ID: "safe-v1", Name: "Safe"},
		{Vendor: "v", Kind: engine.EntryModel, ID: "spicy-v2", Name: "Spicy", Adult: true},
	}, nil
}

// The vendors' adult catalogue entries: listed and usable only in chats
// whose NSFW policy is on, and only when the operator allows adult entries.
func TestAdultCatalogue(t *testing.T) {
	s, n, db := newServiceDB(t)
	withOps(t, s, db, moderation.DefaultConfig())
	cat := &chat.Catalog{Sources: []engine.Cataloguer{adultCatalog{}}, AllowAdult: true}
	s.Models, s.Adult = cat.Models, cat.Adult
	bob := engine.UserRef{Platform: "t", ID: "bob"}
	if r := say(s, bob, "/models"); !strings.Contains(r.Text, "safe-v1") || strings.Contains(r.Text, "spicy") {
		t.Fatalf("/models outside an NSFW chat: %q", r.Text)
	}
	if r := say(s, bob, "/draw a fox --model spicy-v2 --size 64x64"); r.Job != nil || r.Err == nil || r.Err.Code != engine.EFORBIDDEN {
		t.Fatalf("adult model outside an NSFW chat: %+v", r)
	}
	if r := say(s, root, "/settings nsfw on"); r.Err != nil {
		t.Fatal(r.Text)
	}
	if r := say(s, bob, "/models"); !strings.Contains(r.Text, "spicy-v2") {
		t.Fatalf("/models in an NSFW chat: %q", r.Text)
	}
	if r := say(s, bob, "/draw a fox --model spicy-v2 --size 64x64"); r.Job == nil {
		t.Fatalf("adult model in an NSFW chat: %q", r.Text)
	}
	<-n.ended
	// The operator's switch still rules.
	cat.AllowAdult = false
	if r := say(s, bob, "/draw a fox --model Spicy --size 64x64"); r.Job != nil {
		t.Fatalf("adult model with catalog.allow_adult false: %q", r.Text)
	}
}
