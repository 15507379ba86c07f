package quota_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/picbot/picbot/engine"
	"github.com/picbot/picbot/quota"
	"github.com/picbot/picbot/store"
)

func openDB(t testing.TB, opt store.Options) *store.DB {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "db"), opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func newQuota(t testing.TB, cfg quota.Config, db *store.DB, now func() time.Time) *quota.Quota {
	t.Helper()
	q, err := quota.New(cfg, db, now)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

var bob = engine.UserRef{Platform: "t", ID: "bob"}
var room = engine.ChatRef{Platform: "t", ChatID: "room"}

func job(id string, n int) *engine.Job {
	return &engine.Job{ID: id, Owner: bob, Chat: room, State: engine.StateQueued, CreatedAt: time.Now(),
		Request: engine.Request{Kind: engine.KindDraw, N: n}}
}

// settle moves a job to failed (refund) or delivered inside one store transaction.
func settle(t *testing.T, db *store.DB, q *quota.Quota, id string, refund bool) {
	t.Helper()
	_, err := db.UpdateJob(context.Background(), id, func(j *engine.Job, c engine.Counters) error {
		q.Settle(c, j, refund)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestReserveConcurrent(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, store.Options{})
	cfg := quota.DefaultConfig()
	cfg.Default = quota.Tier{Daily: 20}
	q := newQuota(t, cfg, db, nil)

	var ok atomic.Int32
	var wg sync.WaitGroup
	ids := make(chan string, 1000)
	for i := range 1000 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			j := job(fmt.Sprintf("j%04d", i), 1)
			err := db.CreateJob(ctx, j, func(c engine.Counters) error { return q.Reserve(c, j, time.Now()) })
			switch {
			case err == nil:
				ok.Add(1)
				ids <- j.ID
			case engine.ErrorCode(err) != engine.EQUOTA:
				t.Errorf("err %v", err)
			}
		}()
	}
	wg.Wait()
	close(ids)
	if got := ok.Load(); got != 20 {
		t.Fatalf("%d reservations succeeded, want 20", got)
	}
	var accepted []string
	for id := range ids {
		accepted = append(accepted, id)
	}
	// Five vendor failures: refunded. Then the refund path runs again, as after a crash.
	for range 2 {
		for _, id := range accepted[:5] {
			settle(t, db, q, id, true)
		}
	}
	st, err := q.Status(ctx, bob)
	if err != nil {
		t.Fatal(err)
	}
	if st.Used != 15 || st.Running != 15 {
		t.Fatalf("used %d running %d, want 15 15", st.Used, st.Running)
	}
	for _, id := range accepted[5:] {
		settle(t, db, q, id, false)
		settle(t, db, q, id, true) // a refund after commit changes nothing
	}
	if st, _ = q.Status(ctx, bob); st.Used != 15 || st.Running != 0 {
		t.Fatalf("used %d running %d, want 15 0", st.Used, st.Running)
	}
}

func TestLimits(t *testing.T) {
	ctx := context.Background()
	reserve := func(db *store.DB, q *quota.Quota, j *engine.Job, now time.Time) error {
		return db.CreateJob(ctx, j, func(c engine.Counters) error { return q.Reserve(c, j, now) })
	}
	t.Run("Midnight", func(t *testing.T) {
		db := openDB(t, store.Options{})
		sh, _ := time.LoadLocation("Asia/Shanghai")
		now := time.Date(2026, 11, 22, 23, 59, 0, 0, sh)
		cfg := quota.DefaultConfig()
		cfg.Default = quota.Tier{Daily: 2}
		q := newQuota(t, cfg, db, func() time.Time { return now })
		if err := reserve(db, q, job("a", 2), now); err != nil {
			t.Fatal(err)
		}
		if err := reserve(db, q, job("b", 1), now); engine.ErrorCode(err) != engine.EQUOTA {
			t.Fatalf("over quota before midnight: %v", err)
		}
		// 16:00 UTC is midnight in Shanghai: a new day.
		now = time.Date(2026, 11, 22, 16, 1, 0, 0, time.UTC)
		if err := reserve(db, q, job("c", 2), now); err != nil {
			t.Fatalf("after midnight: %v", err)
		}
		// Refunding yesterday's job gives back yesterday's quota, not today's.
		settle(t, db, q, "a", true)
		if err := reserve(db, q, job("d", 1), now); engine.ErrorCode(err) != engine.EQUOTA {
			t.Fatalf("yesterday's refund leaked into today: %v", err)
		}
		if st, _ := q.Status(ctx, bob); st.Used != 2 || st.ResetAt.In(sh).Day() != 24 {
			t.Fatalf("status %+v", st)
		}
	})
	t.Run("Concurrent", func(t *testing.T) {
		db := openDB(t, store.Options{})
		cfg := quota.DefaultConfig()
		cfg.Default = quota.Tier{Concurrent: 2}
		q := newQuota(t, cfg, db, nil)
		reserve(db, q, job("a", 1), time.Now())
		reserve(db, q, job("b", 1), time.Now())
		if err := reserve(db, q, job("c", 1), time.Now()); engine.ErrorCode(err) != engine.EQUOTA {
			t.Fatalf("third concurrent job: %v", err)
		}
		settle(t, db, q, "a", false)
		if err := reserve(db, q, job("c", 1), time.Now()); err != nil {
			t.Fatalf("after one finished: %v", err)
		}
	})
	t.Run("ChatAndCost", func(t *testing.T) {
		db := openDB(t, store.Options{})
		cfg := quota.DefaultConfig()
		cfg.Default = quota.Tier{}
		cfg.ChatDaily = 5
		q := newQuota(t, cfg, db, nil)
		if err := reserve(db, q, job("a", 4), time.Now()); err != nil {
			t.Fatal(err)
		}
		if err := reserve(db, q, job("b", 2), time.Now()); engine.ErrorCode(err) != engine.EQUOTA {
			t.Fatalf("chat quota: %v", err)
		}
	})
	t.Run("RateLimit", func(t *testing.T) {
		now := time.Now()
		cfg := quota.DefaultConfig()
		cfg.Default = quota.Tier{Every: 10 * time.Second, Burst: 3}
		q := newQuota(t, cfg, openDB(t, store.Options{}), func() time.Time { return now })
		for i := range 3 {
			if err := q.Admit(ctx, bob, room); err != nil {
				t.Fatalf("command %d: %v", i, err)
			}
		}
		err := q.Admit(ctx, bob, room)
		e, ok := err.(*engine.Error)
		if !ok || e.Code != engine.ERATELIMIT || e.RetryAfter != 10 || e.EN != "You're sending commands too fast; try again in 10s." || e.ZH != "操作太频繁了，请10秒后再试。" {
			t.Fatalf("fourth command: %#v", err)
		}
		now = now.Add(10 * time.Second)
		if err := q.Admit(ctx, bob, room); err != nil {
			t.Fatalf("after 10 s: %v", err)
		}
		// Idle limiters are swept once they would be full again.
		now = now.Add(time.Hour)
		q.Admit(ctx, engine.UserRef{Platform: "t", ID: "carol"}, room)
		if n := q.Limiters(); n != 1 {
			t.Fatalf("%d limiters held, want 1", n)
		}
	})
	t.Run("Admin", func(t *testing.T) {
		db := openDB(t, store.Options{})
		cfg := quota.DefaultConfig()
		cfg.Default = quota.Tier{Daily: 1, Concurrent: 1, Every: time.Hour, Burst: 1}
		cfg.Admins = []string{bob.Key()}
		q := newQuota(t, cfg, db, nil)
		for i := range 5 {
			if err := q.Admit(ctx, bob, room); err != nil {
				t.Fatal(err)
			}
			if err := reserve(db, q, job(fmt.Sprint(i), 4), time.Now()); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// fakeVendor accepts everything and is never asked for more: admission only.
type fakeVendor struct{}

func (fakeVendor) Name() string                         { return "v" }
func (fakeVendor) Check(*engine.Request) error          { return nil }
func (fakeVendor) Timing(*engine.Request) engine.Timing { return engine.Timing{} }
func (fakeVendor) Submit(context.Context, *engine.Job, engine.Task) (string, error) {
	return "t", nil
}
func (fakeVendor) Query(context.Context, *engine.Job) (*engine.Outcome, error) {
	return &engine.Outcome{}, nil
}

func newEngine(t testing.TB, db *store.DB, q *quota.Quota) *engine.Engine {
	return engine.New(engine.Config{Routes: map[engine.Kind][]string{engine.KindDraw: {"v"}}}, db, q, nil, nil, fakeVendor{})
}

func TestBannedStoresNothing(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, store.Options{})
	cfg := quota.DefaultConfig()
	cfg.BannedUsers = []string{bob.Key()}
	e := newEngine(t, db, newQuota(t, cfg, db, nil))
	_, err := e.Submit(ctx, bob, room, engine.Request{Kind: engine.KindDraw, Prompt: "x", Seed: -1})
	if engine.ErrorCode(err) != engine.EFORBIDDEN {
		t.Fatalf("err %v", err)
	}
	if jobs, _ := db.JobsByOwner(ctx, bob, 10); len(jobs) != 0 {
		t.Fatalf("a banned user's job was stored")
	}
	// Banned by an admin at run time, in the store.
	carol := engine.UserRef{Platform: "t", ID: "carol"}
	db.Update(ctx, func(c engine.Counters) error { c.SetSetting("ban:"+carol.Key(), "1"); return nil })
	if _, err := e.Submit(ctx, carol, room, engine.Request{Kind: engine.KindDraw, Prompt: "x", Seed: -1}); engine.ErrorCode(err) != engine.EFORBIDDEN {
		t.Fatalf("err %v", err)
	}
}

// BenchmarkAdmission measures rate check + reservation + job persisted with
// fsync, with commands from many users arriving at once.
func BenchmarkAdmission(b *testing.B) {
	db := openDB(b, store.Options{})
	cfg := quota.DefaultConfig()
	cfg.Default = quota.Tier{Daily: 1 << 30, Concurrent: 1 << 30, Every: time.Millisecond, Burst: 1 << 20}
	e := newEngine(b, db, newQuota(b, cfg, db, nil))
	var n atomic.Int64
	b.SetParallelism(64) // many users typing at once
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			u := engine.UserRef{Platform: "t", ID: fmt.Sprint(i % 5000)}
			if _, err := e.Submit(context.Background(), u, room, engine.Request{Kind: engine.KindDraw, Prompt: "a red fox", Seed: -1}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "admissions/s")
}

// TestKeyedReserve: Reserve takes a token when one is free and undo gives it
// back; when none is free it says how long to wait and takes nothing.
func TestKeyedReserve(t *testing.T) {
	now := time.Unix(1000, 0)
	k := quota.NewKeyed(time.Second, 2, func() time.Time { return now })
	wait, undo := k.Reserve("a")
	if wait != 0 || undo == nil {
		t.Fatalf("first: wait %s, undo %v", wait, undo != nil)
	}
	undo() // given back: two free again
	for i := range 2 {
		if wait, _ := k.Reserve("a"); wait != 0 {
			t.Fatalf("take %d: wait %s", i, wait)
		}
	}
	for range 3 { // refused tries take nothing: the wait does not grow
		if wait, undo := k.Reserve("a"); wait != time.Second || undo != nil {
			t.Fatalf("empty: wait %s", wait)
		}
	}
	now = now.Add(time.Second)
	if wait, _ := k.Reserve("a"); wait != 0 {
		t.Fatalf("after a second: wait %s", wait)
	}
}

// A role mapped to an unlimited tier (Daily 0) wins over the default tier.
func TestRoleUnlimitedTierWins(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, store.Options{})
	cfg := quota.DefaultConfig()
	cfg.Default = quota.Tier{Daily: 1}
	cfg.Tiers = map[string]quota.Tier{"vip": {Daily: 0}}
	cfg.Roles = map[string]string{"r-vip": "vip"}
	q := newQuota(t, cfg, db, nil)
	owner := engine.UserRef{Platform: "discord", ID: "u", Roles: []string{"r-other", "r-vip"}}
	for i := range 3 {
		j := job(fmt.Sprintf("r%d", i), 1)
		j.Owner = owner
		if err := db.CreateJob(ctx, j, func(c engine.Counters) error { return q.Reserve(c, j, time.Now()) }); err != nil {
			t.Fatalf("job %d refused with an unlimited role: %v", i, err)
		}
		settle(t, db, q, j.ID, false)
	}
}

// /admin tier changes the user's command rate at once, not at restart.
func TestSetTierChangesRate(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, store.Options{})
	cfg := quota.DefaultConfig()
	cfg.Default = quota.Tier{Every: time.Hour, Burst: 1}
	cfg.Tiers = map[string]quota.Tier{"fast": {Every: time.Millisecond, Burst: 100}}
	q := newQuota(t, cfg, db, nil)
	if err := q.Admit(ctx, bob, room); err != nil {
		t.Fatal(err)
	}
	if err := q.Admit(ctx, bob, room); engine.ErrorCode(err) != engine.ERATELIMIT {
		t.Fatalf("second command on the default tier: %v, want rate limit", err)
	}
	if err := q.SetTier(ctx, bob.Key(), "fast"); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if err := q.Admit(ctx, bob, room); err != nil {
			t.Fatalf("command %d after /admin tier fast: %v", i, err)
		}
	}
}

// A batch of 4 whose audit dropped 3 images costs one image, settled once.
func TestPartialRefundDropped(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, store.Options{})
	cfg := quota.DefaultConfig()
	cfg.Default = quota.Tier{Daily: 20}
	q := newQuota(t, cfg, db, nil)
	j := job("p1", 4)
	if err := db.CreateJob(ctx, j, func(c engine.Counters) error { return q.Reserve(c, j, time.Now()) }); err != nil {
		t.Fatal(err)
	}
	_, err := db.UpdateJob(ctx, j.ID, func(j *engine.Job, c engine.Counters) error {
		j.Dropped = 3
		q.Settle(c, j, false)
		q.Settle(c, j, false) // settle once
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	st, err := q.Status(ctx, bob)
	if err != nil {
		t.Fatal(err)
	}
	if st.Used != 1 || st.Running != 0 {
		t.Fatalf("used %d running %d, want 1 image charged (3 of 4 dropped) and none running", st.Used, st.Running)
	}
}
