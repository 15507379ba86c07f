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
	select {
	case got := <-started:
		if got != "b" {
			t.Fatalf("leader %s", got)
		}
	case <-time.After(15 * time.Second): // about 2 LeadEvery needed
		t.Fatal("b never led")
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

// TestLeadPerSchema: two deployments in two schemas of one database (two
// bots; here, also two tests run at once) each have a leader of their
// own, and one's leader ending leaves the other's leading.
func TestLeadPerSchema(t *testing.T) {
	x := mustOpen(t, pgtest.URL(t), pgstore.Options{Replica: "x"})
	y := mustOpen(t, pgtest.URL(t), pgstore.Options{Replica: "y"})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel) // before the pools close: a leader holds a connection
	started, ended := make(chan string, 4), make(chan string, 4)
	for name, db := range map[string]*pgstore.DB{"x": x, "y": y} {
		go db.Lead(ctx, "telegram", func(ctx context.Context) error {
			started <- name
			<-ctx.Done()
			ended <- name
			return nil
		})
	}
	for range 2 {
		select {
		case <-started:
		case <-time.After(15 * time.Second): // about 2 LeadEvery needed
			t.Fatal("only one schema has a leader")
		}
	}
	if err := x.TerminateLeaderForTest(ctx, "telegram"); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-ended:
		if got != "x" {
			t.Fatalf("%s's leader stopped, want x's", got)
		}
	case <-time.After(15 * time.Second): // a ping's period and timeout: 2 LeadEvery
		t.Fatal("x's leader still runs without its connection")
	}
	// y's leader pings its own connection every LeadEvery: two would have
	// failed by now had it been ended too.
	select {
	case got := <-ended:
		t.Fatalf("%s's leader stopped too", got)
	case <-time.After(3 * pgstore.LeadEvery):
	}
}
