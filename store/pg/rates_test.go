package pgstore_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/picbot/picbot/engine"
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

type rateTaker interface {
	TakeRate(key string, every time.Duration, burst int) (bool, time.Duration)
}

// TestReservedRates: tokens taken inside admissions' transactions (and
// their batches) and by AllowRate, on two replicas at once, share one
// bucket: its burst in all.
func TestReservedRates(t *testing.T) {
	ctx := context.Background()
	url := pgtest.URL(t)
	dbs := []*pgstore.DB{mustOpen(t, url, pgstore.Options{}), mustOpen(t, url, pgstore.Options{})}
	const burst, key = 7, "telegram:9|3600000|7"
	var ok, jobs atomic.Int32
	var wg sync.WaitGroup
	for i := range 80 {
		db := dbs[i%2]
		wg.Go(func() {
			if i%4 == 3 {
				allowed, _, err := db.AllowRate(ctx, key, time.Hour, burst)
				if err != nil {
					t.Error(err)
				}
				if allowed {
					ok.Add(1)
				}
				return
			}
			j := &engine.Job{ID: fmt.Sprintf("j%d", i), Owner: engine.UserRef{Platform: "telegram", ID: "9"}, State: engine.StateQueued, CreatedAt: time.Now()}
			err := db.CreateJob(ctx, j, func(c engine.Counters) error {
				allowed, wait := c.(rateTaker).TakeRate(key, time.Hour, burst)
				if !allowed {
					if wait < 50*time.Minute || wait > time.Hour {
						t.Errorf("wait %s, want about an hour", wait)
					}
					return engine.Errorf(engine.ERATELIMIT, "slow down", "slow down")
				}
				c.Add("jobs", 1)
				return nil
			})
			switch {
			case err == nil:
				ok.Add(1)
				jobs.Add(1)
			case engine.ErrorCode(err) != engine.ERATELIMIT:
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if got := ok.Load(); got != burst {
		t.Fatalf("%d tokens taken, want %d", got, burst)
	}
	_ = dbs[0].View(ctx, func(c engine.Counters) error {
		if got := c.Get("jobs"); got != int64(jobs.Load()) {
			t.Errorf("jobs counted %d, %d admitted", got, jobs.Load())
		}
		return nil
	})
	if allowed, _, _ := dbs[1].PeekRate(ctx, key, time.Hour, burst); allowed {
		t.Fatal("peek allows an empty bucket")
	}
}
