package pgstore_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/picbot/picbot/engine"
	pgstore "github.com/picbot/picbot/store/pg"
	"github.com/picbot/picbot/store/pg/pgtest"
)

func TestLease(t *testing.T) {
	ctx := context.Background()
	url := pgtest.URL(t)
	const ttl = 400 * time.Millisecond
	a := mustOpen(t, url, pgstore.Options{Replica: "a", LeaseTTL: ttl})
	b := mustOpen(t, url, pgstore.Options{Replica: "b", LeaseTTL: ttl})
	a.Leasing()
	b.Leasing()
	j := &engine.Job{ID: "j1", Owner: engine.UserRef{Platform: "t", ID: "u"}, State: engine.StateQueued, CreatedAt: time.Now()}
	if err := a.CreateJob(ctx, j, nil); err != nil {
		t.Fatal(err)
	}
	t.Run("HeldByCreator", func(t *testing.T) {
		if got, _ := b.Claim(ctx, 10); len(got) != 0 {
			t.Fatalf("b claimed %d jobs a holds", len(got))
		}
		held, _, err := a.Renew(ctx)
		if err != nil || !slices.Contains(held, "j1") {
			t.Fatalf("a holds %v (%v), want j1", held, err)
		}
	})
	t.Run("TakenOverAfterExpiry", func(t *testing.T) {
		time.Sleep(ttl + 100*time.Millisecond) // a stops renewing: it died
		got, err := b.Claim(ctx, 10)
		if err != nil || len(got) != 1 || got[0].ID != "j1" {
			t.Fatalf("b claimed %v (%v), want j1", got, err)
		}
		if held, _, _ := a.Renew(ctx); slices.Contains(held, "j1") {
			t.Fatal("a still renews a job b took over")
		}
		if owner, _, _ := a.LeaseHolder(ctx, "j1"); owner != "b" {
			t.Fatalf("holder %q, want b", owner)
		}
	})
	t.Run("ReleasedForOthers", func(t *testing.T) {
		if err := b.Release(ctx, []string{"j1"}); err != nil {
			t.Fatal(err)
		}
		got, err := a.Claim(ctx, 10)
		if err != nil || len(got) != 1 {
			t.Fatalf("a claimed %v (%v) after b released, want j1", got, err)
		}
	})
	t.Run("FinishedDropsLease", func(t *testing.T) {
		if _, err := a.UpdateJob(ctx, "j1", func(j *engine.Job, _ engine.Counters) error { j.State = engine.StateDelivered; return nil }); err != nil {
			t.Fatal(err)
		}
		if owner, _, _ := a.LeaseHolder(ctx, "j1"); owner != "" {
			t.Fatalf("finished job still leased to %q", owner)
		}
		time.Sleep(ttl + 100*time.Millisecond)
		if got, _ := b.Claim(ctx, 10); len(got) != 0 {
			t.Fatal("finished job claimed")
		}
	})
	t.Run("Wake", func(t *testing.T) {
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		woken := make(chan string, 1)
		listening := make(chan struct{})
		go b.Woken(wctx, func(id string) {
			if id == "ready" {
				close(listening)
				return
			}
			woken <- id
		})
		// LISTEN takes a moment: knock until b hears.
		for deadline := time.Now().Add(10 * time.Second); ; {
			_ = a.Wake(ctx, "ready")
			select {
			case <-listening:
			case <-time.After(50 * time.Millisecond):
				if time.Now().After(deadline) {
					t.Fatal("b never listened")
				}
				continue
			}
			break
		}
		if err := a.Wake(ctx, "j9"); err != nil {
			t.Fatal(err)
		}
		select {
		case id := <-woken:
			if id != "j9" {
				t.Fatalf("woken %q", id)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no wake-up")
		}
	})
}

func TestMigrate(t *testing.T) {
	ctx := context.Background()
	url := pgtest.URL(t)
	// Two replicas starting at once: one migrates, the other waits and finds it done.
	errs := make(chan error, 2)
	for range 2 {
		go func() {
			db, err := pgstore.Open(ctx, url, pgstore.Options{})
			if err == nil {
				db.Close()
			}
			errs <- err
		}()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	db := mustOpen(t, url, pgstore.Options{})
	if v, err := db.SchemaVersionStored(ctx); err != nil || v != pgstore.SchemaVersion {
		t.Fatalf("version %d (%v), want %d", v, err, pgstore.SchemaVersion)
	}
	if err := db.SetSchemaVersionForTest(ctx, pgstore.SchemaVersion+1); err != nil {
		t.Fatal(err)
	}
	if _, err := pgstore.Open(ctx, url, pgstore.Options{}); err == nil {
		t.Fatal("opened a database of a newer schema")
	}
}

// TestWakePerSchema: a replica hears the wake-ups of its own schema, not
// those of another deployment (or test) in another schema of the database.
func TestWakePerSchema(t *testing.T) {
	ctx := context.Background()
	x := mustOpen(t, pgtest.URL(t), pgstore.Options{Replica: "x"})
	y := mustOpen(t, pgtest.URL(t), pgstore.Options{Replica: "y"})
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	heard := make(chan string, 1000)
	go x.Woken(wctx, func(id string) { heard <- id })
	// LISTEN takes a moment: knock until x hears.
	for deadline := time.Now().Add(10 * time.Second); ; {
		if err := x.Wake(ctx, "ready"); err != nil {
			t.Fatal(err)
		}
		select {
		case <-heard:
		case <-time.After(50 * time.Millisecond):
			if time.Now().After(deadline) {
				t.Fatal("x never listened")
			}
			continue
		}
		break
	}
	// Notices reach a listener in the order their transactions committed:
	// had x heard y's, it would come before x's own.
	if err := y.Wake(ctx, "theirs"); err != nil {
		t.Fatal(err)
	}
	if err := x.Wake(ctx, "ours"); err != nil {
		t.Fatal(err)
	}
	for {
		select {
		case id := <-heard:
			switch id {
			case "ready": // a knock sent before x listened
				continue
			case "ours":
			default:
				t.Fatalf("x heard %q, a wake-up of another schema", id)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("x never heard its own wake-up")
		}
		break
	}
}
