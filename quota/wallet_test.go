package quota_test

import (
	"context"
	"testing"
	"time"

	"github.com/picbot/picbot/engine"
	"github.com/picbot/picbot/quota"
	"github.com/picbot/picbot/store"
)

// TestBoughtImages: bought images pay for what the day's free quota does
// not, a refund puts them back, a payment is credited once, and a
// withdrawal takes what is left of it.
func TestBoughtImages(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, store.Options{})
	cfg := quota.DefaultConfig()
	cfg.Default = quota.Tier{Daily: 2}
	q := newQuota(t, cfg, db, nil)
	create := func(id string, n int) (*engine.Job, error) {
		j := job(id, n)
		return j, db.CreateJob(ctx, j, func(c engine.Counters) error { return q.Reserve(c, j, time.Now()) })
	}
	if _, err := create("a", 3); engine.ErrorCode(err) != engine.EQUOTA {
		t.Fatalf("3 images with 2 free and none bought: %v", err)
	}
	for range 2 { // told twice: credited once
		if _, _, err := q.Credit(ctx, bob, "charge-1", quota.Payment{Images: 5, Amount: 100, Currency: "XTR"}); err != nil {
			t.Fatal(err)
		}
	}
	if st, _ := q.Status(ctx, bob); st.Bought != 5 {
		t.Fatalf("bought %d, want 5", st.Bought)
	}
	a, err := create("a", 3) // 2 free, 1 bought
	if err != nil {
		t.Fatal(err)
	}
	if a.Charge.Bought != 1 {
		t.Fatalf("charge %+v", a.Charge)
	}
	b, err := create("b", 2) // 2 bought
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := q.Status(ctx, bob); st.Used != 2 || st.Bought != 2 {
		t.Fatalf("used %d bought %d, want 2 2", st.Used, st.Bought)
	}
	settle(t, db, q, b.ID, true) // a failure: the bought images come back
	settle(t, db, q, b.ID, true)
	settle(t, db, q, a.ID, false)
	if st, _ := q.Status(ctx, bob); st.Used != 2 || st.Bought != 4 {
		t.Fatalf("after a refund: used %d bought %d, want 2 4", st.Used, st.Bought)
	}
	if _, err := create("c", 5); engine.ErrorCode(err) != engine.EQUOTA {
		t.Fatalf("5 images with 4 bought: %v", err)
	}
	taken, err := q.Withdraw(ctx, "charge-1")
	if err != nil || taken != 4 {
		t.Fatalf("withdraw: %d %v, want 4 (1 spent)", taken, err)
	}
	if again, _ := q.Withdraw(ctx, "charge-1"); again != 0 {
		t.Fatalf("second withdrawal took %d", again)
	}
	if st, _ := q.Status(ctx, bob); st.Bought != 0 {
		t.Fatalf("bought %d after the refund", st.Bought)
	}
	if _, err := q.Withdraw(ctx, "nope"); engine.ErrorCode(err) != engine.ENOTFOUND {
		t.Fatalf("unknown charge: %v", err)
	}
}

// TestBoughtImagesExpire: with an expiry, bought images last that long
// after the last purchase; a purchase after they expired does not revive them.
func TestBoughtImagesExpire(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, store.Options{})
	cfg := quota.DefaultConfig()
	cfg.Default = quota.Tier{Daily: 1}
	cfg.BoughtExpireAfter = 24 * time.Hour
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	q := newQuota(t, cfg, db, func() time.Time { return now })
	if _, _, err := q.Credit(ctx, bob, "c1", quota.Payment{Images: 3}); err != nil {
		t.Fatal(err)
	}
	if st, _ := q.Status(ctx, bob); st.Bought != 3 || !st.Expires.Equal(now.Add(24*time.Hour)) {
		t.Fatalf("status %+v", st)
	}
	now = now.Add(25 * time.Hour)
	if st, _ := q.Status(ctx, bob); st.Bought != 0 {
		t.Fatalf("bought %d after expiry", st.Bought)
	}
	j := job("x", 2) // 1 free, 1 bought: refused, they expired
	if err := db.CreateJob(ctx, j, func(c engine.Counters) error { return q.Reserve(c, j, now) }); engine.ErrorCode(err) != engine.EQUOTA {
		t.Fatalf("reserve with expired images: %v", err)
	}
	if _, balance, _ := q.Credit(ctx, bob, "c2", quota.Payment{Images: 2}); balance != 2 {
		t.Fatalf("balance %d after a new purchase, want 2 (the expired 3 stay gone)", balance)
	}
}
