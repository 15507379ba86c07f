package pgstore_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
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
	if err := a.TerminateLeaderForTest(context.Background(), "telegram"); err != nil {
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

// TestLeadPerSchema: deployments on separate schemas of one database (as
// tests are, pgtest) each have their own leader, and ending one's leader
// (TerminateLeaderForTest) leaves the other's, and any other session that
// holds an advisory lock, alone. Before: the lead's advisory lock was one
// per database, so the second schema's replica never led while the first's
// did; and TerminateLeaderForTest ended every advisory lock's holder in
// the database: other tests' leaders, a migration under way, admissions in
// their transactions.
func TestLeadPerSchema(t *testing.T) {
	urlA, urlB := pgtest.URL(t), pgtest.URL(t)
	a := mustOpen(t, urlA, pgstore.Options{Replica: "a"})
	b := mustOpen(t, urlB, pgstore.Options{Replica: "b"})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	// Another session of the database that holds an advisory lock.
	other, err := pgx.Connect(ctx, urlB)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close(context.Background()) })
	if _, err := other.Exec(ctx, `SELECT pg_advisory_lock(4242)`); err != nil {
		t.Fatal(err)
	}
	type led struct {
		name string
		ctx  context.Context
	}
	started := make(chan led, 4)
	lead := func(db *pgstore.DB, name string) {
		_ = db.Lead(ctx, "telegram", func(ctx context.Context) error {
			started <- led{name, ctx}
			<-ctx.Done()
			return nil
		})
	}
	go lead(a, "a")
	go lead(b, "b")
	leaders := map[string]context.Context{}
	for len(leaders) < 2 {
		select {
		case l := <-started:
			leaders[l.name] = l.ctx
		case <-time.After(5 * pgstore.LeadEvery):
			t.Fatalf("leaders %v: each schema's replica should lead its own", leaders)
		}
	}
	if err := a.TerminateLeaderForTest(ctx, "telegram"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-leaders["a"].Done():
	case <-time.After(5 * pgstore.LeadEvery):
		t.Fatal("a's leader never heard it lost its connection")
	}
	select {
	case <-leaders["b"].Done():
		t.Fatal("b's leader stopped: its session was ended by a's terminate")
	case <-time.After(2 * pgstore.LeadEvery):
	}
	if err := other.Ping(ctx); err != nil {
		t.Fatalf("another session holding an advisory lock was ended: %v", err)
	}
}
