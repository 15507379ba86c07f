package chat_test

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/picbot/picbot/bots/chat"
	"github.com/picbot/picbot/engine"
	"github.com/picbot/picbot/quota"
	"github.com/picbot/picbot/store"
)

// namesVendor with models is a vendor with a catalogue that refuses a
// model it does not list (Zhiqite's way); without, it takes any model
// name (ShowAPI's way).
type namesVendor struct {
	name   string
	models []string // nil: any name
	mu     chan string
}

func (v *namesVendor) Name() string { return v.name }
func (v *namesVendor) Check(r *engine.Request) error {
	if v.models != nil && r.Model != "" && !slices.Contains(v.models, r.Model) {
		return engine.Errorf(engine.EINVALID, "%s has no --model %q; /models lists what it has.", "%s 没有 --model %q，可用的见 /models。", v.name, r.Model)
	}
	return nil
}
func (v *namesVendor) Submit(_ context.Context, j *engine.Job, _ engine.Task) (string, error) {
	v.mu <- j.Request.Model
	return "t-" + j.ID, nil
}
func (v *namesVendor) Query(context.Context, *engine.Job) (*engine.Outcome, error) {
	return &engine.Outcome{State: engine.TaskRunning, Progress: -1}, nil
}
func (v *namesVendor) Timing(*engine.Request) engine.Timing {
	return engine.Timing{First: time.Hour, Every: time.Hour, Max: time.Hour}
}
func (v *namesVendor) Choices(engine.Kind) engine.Choices {
	if v.models == nil {
		return engine.Choices{FreeNames: []string{"model", "lora"}}
	}
	return engine.Choices{}
}
func (v *namesVendor) Catalog(context.Context) ([]engine.CatalogEntry, error) {
	var out []engine.CatalogEntry
	for _, m := range v.models {
		out = append(out, engine.CatalogEntry{Vendor: v.name, Kind: engine.EntryModel, ID: m})
	}
	return out, nil
}

func namesService(t *testing.T, vendors ...*namesVendor) (*chat.Service, *store.DB) {
	t.Helper()
	dir := t.TempDir()
	db, err := store.Open(filepath.Join(dir, "db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	blobs, _ := store.OpenBlobs(filepath.Join(dir, "blobs"), 0)
	q, err := quota.New(quota.DefaultConfig(), db, nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	var vs []engine.Vendor
	var cats []engine.Cataloguer
	for _, v := range vendors {
		names = append(names, v.name)
		vs = append(vs, v)
		cats = append(cats, v)
	}
	e := engine.New(engine.Config{Routes: map[engine.Kind][]string{engine.KindDraw: names}}, db, q, blobs, notifier{ended: make(chan *engine.Job, 10)}, vs...)
	if err := e.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Stop(context.Background()) })
	return &chat.Service{Engine: e, Quota: q, Blobs: blobs, Models: (&chat.Catalog{Sources: cats}).Models}, db
}

// A model name goes only to a vendor that lists it or takes free names;
// /models says which vendor has what and which takes any name; a name no
// vendor on the route can take is refused at once, in the user's
// language, with nothing stored.
func TestModelNamesRoute(t *testing.T) {
	strict := &namesVendor{name: "strict", models: []string{"good-v1"}, mu: make(chan string, 4)}
	free := &namesVendor{name: "free", mu: make(chan string, 4)}
	s, _ := namesService(t, strict, free)
	models := say(s, bob, "/models").Text
	for _, want := range []string{"good-v1 (strict)", "free: takes any --model, --lora name"} {
		if !strings.Contains(models, want) {
			t.Errorf("/models lacks %q:\n%s", want, models)
		}
	}
	if r := say(s, bob, "/draw a fox --model other-v2"); r.Err != nil {
		t.Fatalf("a free-name vendor on the route, refused: %q", r.Text)
	}
	select {
	case m := <-free.mu:
		if m != "other-v2" {
			t.Errorf("free got model %q", m)
		}
	case m := <-strict.mu:
		t.Fatalf("an unlisted model went to the vendor without it (%q)", m)
	case <-time.After(10 * time.Second):
		t.Fatal("the job reached no vendor")
	}

	only := &namesVendor{name: "strict", models: []string{"good-v1"}, mu: make(chan string, 4)}
	s, db := namesService(t, only)
	r := say(s, alice, "/draw 狐狸 --model other-v2")
	if r.Err == nil || !strings.Contains(r.Text, "没有 --model \"other-v2\"") {
		t.Fatalf("a name no vendor on the route has: %q", r.Text)
	}
	if jobs, err := db.JobsByOwner(context.Background(), alice, 10); err != nil || len(jobs) != 0 {
		t.Errorf("refused, yet %d job(s) stored (%v)", len(jobs), err)
	}
	if strings.Contains(say(s, bob, "/models").Text, "takes any") {
		t.Error("/models claims a free-name vendor on a route without one")
	}
}
