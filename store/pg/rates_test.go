package pgstore_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pgstore "github.com/picbot/picbot/store/pg"
	"github.com/picbot/picbot/store/pg/pgtest"
)

// TestRates: two replicas taking tokens of one user's bucket at once
// allow its burst in all, not a burst each.
func TestRates(t *testing.T) {
	ctx := context.Background()
	url := pgtest.URL(t)
	a := mustOpen(t, url, pgstore.Options{})
	b := mustOpen(t, url, pgstore.Options{})
	const burst = 5
	var ok atomic.Int32
	var wg sync.WaitGroup
	for i := range 60 {
		db := a
		if i%2 == 1 {
			db = b
		}
		wg.Go(func() {
			allowed, wait, err := db.AllowRate(ctx, "telegram:1|10000|5", time.Hour, burst)
			if err != nil {
				t.Error(err)
			}
			if allowed {
				ok.Add(1)
			} else if wait < 50*time.Minute || wait > time.Hour {
				t.Errorf("wait %s, want about an hour", wait)
			}
		})
	}
	wg.Wait()
	if got := ok.Load(); got != burst {
		t.Fatalf("%d allowed, want %d", got, burst)
	}
	if allowed, _, _ := a.PeekRate(ctx, "telegram:1|10000|5", time.Hour, burst); allowed {
		t.Fatal("peek allows an empty bucket")
	}
	if allowed, _, _ := a.PeekRate(ctx, "telegram:2|10000|5", time.Hour, burst); !allowed {
		t.Fatal("peek refuses a fresh bucket")
	}
	// Refills: with a token every 50 ms, one is free again after a wait.
	for range 2 {
		if allowed, _, _ := a.AllowRate(ctx, "fast", 50*time.Millisecond, 1); !allowed {
			t.Fatal("first token refused")
		}
		if allowed, wait, _ := a.AllowRate(ctx, "fast", 50*time.Millisecond, 1); allowed || wait <= 0 {
			t.Fatalf("second token at once: allowed %v wait %s", allowed, wait)
		}
		time.Sleep(80 * time.Millisecond)
	}
}
