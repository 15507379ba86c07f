package pgstore_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	pgstore "github.com/picbot/picbot/store/pg"
	"github.com/picbot/picbot/store/pg/pgtest"
)

// TestLead: of two replicas one leads; when it stops (its process dies:
// here its pool closes), the other leads within seconds.
func TestLead(t *testing.T) {
	url := pgtest.URL(t)
	a := mustOpen(t, url, pgstore.Options{Replica: "a"})
	b := mustOpen(t, url, pgstore.Options{Replica: "b"})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel) // before the pools close: a leader holds a connection
	var leaders atomic.Int32
	started := make(chan string, 4)
	lead := func(db *pgstore.DB, name string) {
		_ = db.Lead(ctx, "telegram", func(ctx context.Context) error {
			if n := leaders.Add(1); n > 1 {
				t.Errorf("%d leaders at once", n)
			}
			started <- name
			<-ctx.Done()
			leaders.Add(-1)
			return nil
		})
	}
	go lead(b, "b")
	if got := <-started; got != "b" {
		t.Fatalf("leader %s", got)
	}
	go lead(a, "a")
	select {
	case got := <-started:
		t.Fatalf("%s leads beside b", got)
	case <-time.After(2 * pgstore.LeadEvery):
	}
	killed := time.Now()
	// b's connection ends, as a killed process's does.
	if err := a.TerminateLeaderForTest(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-started:
		if got != "a" {
			t.Fatalf("leader %s, want a", got)
		}
		if d := time.Since(killed); d > 5*time.Second {
			t.Fatalf("took over after %s", d)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("a never took over")
	}
}
