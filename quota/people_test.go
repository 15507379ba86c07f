package quota_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/picbot/picbot/engine"
	"github.com/picbot/picbot/quota"
	"github.com/picbot/picbot/store"
)

func reserve(t *testing.T, db *store.DB, q *quota.Quota, j *engine.Job) {
	t.Helper()
	if err := db.CreateJob(context.Background(), j, func(c engine.Counters) error { return q.Reserve(c, j, time.Now()) }); err != nil {
		t.Fatal(err)
	}
}

func TestPeople(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, store.Options{})
	cfg := quota.DefaultConfig()
	cfg.Default = quota.Tier{Daily: 20}
	cfg.Tiers = map[string]quota.Tier{"vip": {Daily: 100}}
	cfg.Admins = []string{"t:admin"}
	cfg.BannedChats = []string{"t:-99"}
	q := newQuota(t, cfg, db, nil)
	reserve(t, db, q, job("j1", 3))
	if err := q.Ban(ctx, "t:mallory", true); err != nil {
		t.Fatal(err)
	}
	q.SetTier(ctx, "t:bob", "vip")
	q.SetDaily(ctx, "t:carol", 5)
	ps, err := q.People(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range ps {
		got = append(got, fmt.Sprintf("%s chat=%v used=%d tier=%q daily=%d banned=%v admin=%v", p.Key, p.Chat, p.Used, p.Tier, p.Daily, p.Banned, p.Admin))
	}
	want := []string{
		`t:admin chat=false used=0 tier="" daily=-1 banned=false admin=true`,
		`t:bob chat=false used=3 tier="vip" daily=-1 banned=false admin=false`,
		`t:carol chat=false used=0 tier="" daily=5 banned=false admin=false`,
		`t:mallory chat=false used=0 tier="" daily=-1 banned=true admin=false`,
		`t:-99 chat=true used=0 tier="" daily=-1 banned=true admin=false`,
		`t:room chat=true used=3 tier="" daily=-1 banned=false admin=false`,
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("people:\n%s\nwant:\n%s", got, want)
	}
}

func TestRefund(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, store.Options{})
	cfg := quota.DefaultConfig()
	cfg.Default = quota.Tier{Daily: 5}
	q := newQuota(t, cfg, db, nil)
	used := func() int64 {
		st, err := q.Status(ctx, bob)
		if err != nil {
			t.Fatal(err)
		}
		return st.Used
	}
	refund := func(id string) error {
		_, err := db.UpdateJob(ctx, id, func(j *engine.Job, c engine.Counters) error { return q.Refund(c, j) })
		return err
	}
	reserve(t, db, q, job("r1", 4))
	if err := refund("r1"); engine.ErrorCode(err) != engine.ECONFLICT {
		t.Fatalf("refund of a running job: %v, want ECONFLICT", err)
	}
	db.UpdateJob(ctx, "r1", func(j *engine.Job, c engine.Counters) error {
		j.Vendor, j.State = "v", engine.StateDelivered
		q.Settle(c, j, false)
		return nil
	})
	if used() != 4 {
		t.Fatalf("used %d after delivery", used())
	}
	if err := refund("r1"); err != nil {
		t.Fatal(err)
	}
	if used() != 0 {
		t.Fatalf("used %d after refund, want 0", used())
	}
	if err := refund("r1"); engine.ErrorCode(err) != engine.ECONFLICT {
		t.Fatalf("second refund: %v, want ECONFLICT", err)
	}
	if used() != 0 {
		t.Fatalf("used %d after a refused second refund", used())
	}
	st, _ := q.StatsOn(ctx, q.Day(time.Now()))
	if len(st.Vendors) != 1 || st.Vendors[0].Refunds != 1 || st.Vendors[0].Delivered != 1 {
		t.Fatalf("stats %+v", st)
	}
}
