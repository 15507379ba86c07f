package pgstore_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/picbot/picbot/engine"
	pgstore "github.com/picbot/picbot/store/pg"
	"github.com/picbot/picbot/store/pg/pgtest"
)

// TestCompact: counters read the same before and after their deltas are
// folded, with folds running beside the writers; a counter brought to
// zero is gone.
func TestCompact(t *testing.T) {
	ctx := context.Background()
	db := mustOpen(t, pgtest.URL(t), pgstore.Options{})
	var wg sync.WaitGroup
	for i := range 100 {
		wg.Go(func() {
			err := db.Update(ctx, func(c engine.Counters) error {
				c.Add("hot", 1)    // blind: no read first
				c.Add("cold:a", 2) // blind
				if i%10 == 0 {     // read, then written exactly
					c.Add("read", c.Get("read")+1-c.Get("read"))
				}
				return nil
			})
			if err != nil {
				t.Error(err)
			}
		})
		if i%25 == 0 {
			wg.Go(func() {
				if err := db.Compact(ctx); err != nil {
					t.Error(err)
				}
			})
		}
	}
	wg.Wait()
	check := func(when string) {
		_ = db.View(ctx, func(c engine.Counters) error {
			for k, want := range map[string]int64{"hot": 100, "cold:a": 200, "read": 10} {
				if got := c.Get(k); got != want {
					t.Errorf("%s: %s = %d, want %d", when, k, got, want)
				}
			}
			var got []string
			c.Scan("cold:", func(k string, v int64) { got = append(got, fmt.Sprint(k, "=", v)) })
			if fmt.Sprint(got) != "[cold:a=200]" {
				t.Errorf("%s: scan %v", when, got)
			}
			return nil
		})
	}
	check("before the fold")
	if err := db.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	check("after the fold")
	_ = db.Update(ctx, func(c engine.Counters) error { c.Add("hot", -1000); return nil })
	_ = db.Compact(ctx)
	_ = db.View(ctx, func(c engine.Counters) error {
		if got := c.Get("hot"); got != 0 {
			t.Errorf("hot %d after taking more than it held, want 0", got)
		}
		c.Scan("hot", func(k string, v int64) { t.Errorf("zero counter %s=%d still listed", k, v) })
		return nil
	})
}
