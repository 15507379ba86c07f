package pgstore_test

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/picbot/picbot/engine"
	"github.com/picbot/picbot/quota"
	pgstore "github.com/picbot/picbot/store/pg"
	"github.com/picbot/picbot/store/pg/pgtest"
)

// callbackVendor finishes every task by its callback; a poll is due only
// after an hour, so a picture posted sooner was posted on a wake-up.
type callbackVendor struct {
	png     []byte
	queries atomic.Int32
}

func (v *callbackVendor) Name() string                { return "v" }
func (v *callbackVendor) Check(*engine.Request) error { return nil }
func (v *callbackVendor) Timing(*engine.Request) engine.Timing {
	return engine.Timing{First: time.Hour, Every: time.Hour, Max: time.Hour, Billed: true}
}
func (v *callbackVendor) Submit(_ context.Context, _ *engine.Job, t engine.Task) (string, error) {
	return t.ID, nil
}
func (v *callbackVendor) Query(context.Context, *engine.Job) (*engine.Outcome, error) {
	v.queries.Add(1)
	return v.done(), nil
}
func (v *callbackVendor) done() *engine.Outcome {
	return &engine.Outcome{State: engine.TaskDone, Images: []engine.Remote{{Data: v.png, Seed: 1}}}
}
func (v *callbackVendor) ParseCallback(*engine.Job, []byte) (*engine.Outcome, error) {
	return v.done(), nil
}
func (v *callbackVendor) CallbackReply() (string, []byte) { return "text/plain", []byte("ok") }
func (v *callbackVendor) WantsCallback() bool             { return true }

// posts records which replica posted which job.
type posts struct {
	name string
	ch   chan string
}

func (p *posts) Progress(context.Context, *engine.Job, engine.Progress) {}
func (p *posts) Deliver(_ context.Context, j *engine.Job) error {
	if j.State == engine.StateSucceeded {
		p.ch <- p.name + " " + j.ID
	}
	return nil
}

type wakeReplica struct {
	db     *pgstore.DB
	engine *engine.Engine
}

// twoEngines starts replicas a and b of the engine on one database.
func twoEngines(t *testing.T, ttl time.Duration) (a, b wakeReplica, v *callbackVendor, posted chan string) {
	t.Helper()
	url := pgtest.URL(t)
	var buf bytes.Buffer
	if err := png.Encode(&buf, image.NewGray(image.Rect(0, 0, 4, 4))); err != nil {
		t.Fatal(err)
	}
	v = &callbackVendor{png: buf.Bytes()}
	posted = make(chan string, 4)
	var rs []wakeReplica
	for _, name := range []string{"a", "b"} {
		db := mustOpen(t, url, pgstore.Options{Replica: name, LeaseTTL: ttl, MaxConns: 8})
		q, err := quota.New(quota.DefaultConfig(), db, nil)
		if err != nil {
			t.Fatal(err)
		}
		e := engine.New(engine.Config{PublicURL: "http://bot.example", Routes: map[engine.Kind][]string{engine.KindDraw: {"v"}}},
			db, q, db.Blobs(0), &posts{name: name, ch: posted}, v)
		if err := e.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.Stop(context.Background()) })
		rs = append(rs, wakeReplica{db: db, engine: e})
	}
	for _, r := range rs {
		for deadline := time.Now().Add(10 * time.Second); r.db.ListenerPIDForTest() == 0; time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("a replica never listened for wake-ups")
			}
		}
	}
	return rs[0], rs[1], v, posted
}

// submitted is a job created on a, once it waits at the vendor.
func submitted(t *testing.T, a wakeReplica) *engine.Job {
	t.Helper()
	ctx := context.Background()
	j, err := a.engine.Submit(ctx, engine.UserRef{Platform: "t", ID: "u"}, engine.ChatRef{Platform: "t", ChatID: "c"},
		engine.Request{Kind: engine.KindDraw, Prompt: "a fox", Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(2 * time.Millisecond) {
		if j, err = a.db.Job(ctx, j.ID); err == nil && j.State == engine.StateSubmitted {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("job never submitted")
		}
	}
	if owner, _, _ := a.db.LeaseHolder(ctx, j.ID); owner != "a" {
		t.Fatalf("job held by %q, want its creator a", owner)
	}
	return j
}

func wantPost(t *testing.T, posted chan string, want string) {
	t.Helper()
	select {
	case got := <-posted:
		if got != want {
			t.Fatalf("posted %q, want %q", got, want)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("no post (want %q)", want)
	}
}

// TestWakeAcrossReplicas: a vendor's callback lands on replica b, which
// does not hold the job; the holder a posts the picture on b's wake-up,
// with no poll, whether its listener hears the notice or misses it.
func TestWakeAcrossReplicas(t *testing.T) {
	ctx := context.Background()
	t.Run("Notice", func(t *testing.T) {
		// A minute's lease: renewals (every 15 s) come after the post is awaited.
		a, b, v, posted := twoEngines(t, time.Minute)
		j := submitted(t, a)
		if _, _, err := b.engine.HandleCallback(ctx, "v", j.ID, j.CallbackToken, nil); err != nil {
			t.Fatal(err)
		}
		wantPost(t, posted, "a "+j.ID)
		if n := v.queries.Load(); n != 0 {
			t.Fatalf("%d polls, want none", n)
		}
	})
	t.Run("NoticeLost", func(t *testing.T) {
		a, b, v, posted := twoEngines(t, 800*time.Millisecond)
		j := submitted(t, a)
		// a's listener is cut off; it listens again only after a second.
		if err := b.db.TerminateForTest(ctx, a.db.ListenerPIDForTest()); err != nil {
			t.Fatal(err)
		}
		if _, _, err := b.engine.HandleCallback(ctx, "v", j.ID, j.CallbackToken, nil); err != nil {
			t.Fatal(err)
		}
		wantPost(t, posted, "a "+j.ID)
		if n := v.queries.Load(); n != 0 {
			t.Fatalf("%d polls, want none", n)
		}
	})
}

// TestWakeKept: a wake-up asked while nobody listens is reported by the
// holder's next renewal, once.
func TestWakeKept(t *testing.T) {
	ctx := context.Background()
	url := pgtest.URL(t)
	a := mustOpen(t, url, pgstore.Options{Replica: "a"})
	b := mustOpen(t, url, pgstore.Options{Replica: "b"})
	a.Leasing()
	for _, id := range []string{"j1", "j2"} {
		if err := a.CreateJob(ctx, &engine.Job{ID: id, Owner: engine.UserRef{Platform: "t", ID: "u"}, State: engine.StateQueued, CreatedAt: time.Now()}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Wake(ctx, "j2"); err != nil {
		t.Fatal(err)
	}
	held, woken, err := a.Renew(ctx)
	if err != nil || len(held) != 2 || !slices.Equal(woken, []string{"j2"}) {
		t.Fatalf("renewal: held %v, woken %v (%v); want j1 and j2 held, j2 woken", held, woken, err)
	}
	if _, woken, err = a.Renew(ctx); err != nil || len(woken) != 0 {
		t.Fatalf("second renewal: woken %v (%v), want none", woken, err)
	}
	if _, woken, _ = b.Renew(ctx); len(woken) != 0 {
		t.Fatalf("b woke %v, which it does not hold", woken)
	}
	// Asked of a holder that then went away: its claimer steps the job from
	// the store anyway, and is not told again.
	if err := b.Wake(ctx, "j1"); err != nil {
		t.Fatal(err)
	}
	if err := a.Release(ctx, []string{"j1", "j2"}); err != nil {
		t.Fatal(err)
	}
	b.Leasing()
	if got, err := b.Claim(ctx, 10); err != nil || len(got) != 2 {
		t.Fatalf("b claimed %d jobs (%v), want 2", len(got), err)
	}
	if _, woken, err = b.Renew(ctx); err != nil || len(woken) != 0 {
		t.Fatalf("b's renewal after its claim: woken %v (%v), want none", woken, err)
	}
}
