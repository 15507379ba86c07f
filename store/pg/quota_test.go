package pgstore_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/picbot/picbot/engine"
	"github.com/picbot/picbot/quota"
	pgstore "github.com/picbot/picbot/store/pg"
	"github.com/picbot/picbot/store/pg/pgtest"
)

// admit is engine.Submit's part in the store: Admit, then the job and its
// reservation in one transaction.
func admit(ctx context.Context, q *quota.Quota, db *pgstore.DB, u engine.UserRef, id string) error {
	chat := engine.ChatRef{Platform: u.Platform, ChatID: "room"}
	if err := q.Admit(ctx, u, chat); err != nil {
		return err
	}
	now := time.Now()
	j := &engine.Job{ID: id, Owner: u, Chat: chat, State: engine.StateQueued, CreatedAt: now,
		Request: engine.Request{Kind: engine.KindDraw, Prompt: "a fox", Width: 64, Height: 64}}
	return db.CreateJob(ctx, j, func(c engine.Counters) error { return q.Reserve(c, j, now) })
}

// TestAdmissionRoundTrips: once a replica has read the settings admission
// asks for (every ban and tier, once), a command, also a new user's, costs
// no round trip before its batch (the ban and tier check answers from the
// cache, the rate token is taken in the batch), and a batch of one costs
// two: begin with the locks and reads, then the writes, the job and the
// commit.
func TestAdmissionRoundTrips(t *testing.T) {
	ctx := context.Background()
	var trips atomic.Int64
	db, err := pgstore.OpenCountingForTest(ctx, pgtest.URL(t), pgstore.Options{}, &trips)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	cfg := quota.DefaultConfig()
	cfg.Default = quota.Tier{Daily: 1000, Concurrent: 1000, Every: time.Millisecond, Burst: 1000}
	q, err := quota.New(cfg, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	u := engine.UserRef{Platform: "telegram", ID: "5"}
	// The cache is filled once its LISTEN is in place.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if err := admit(ctx, q, db, u, fmt.Sprintf("warm%d", trips.Load())); err != nil {
			t.Fatal(err)
		}
		if _, ok := db.SettingCachedForTest("ban:" + u.Key()); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("settings never cached")
		}
	}
	const commands = 10
	var before, batch int64
	for i := range commands {
		u := engine.UserRef{Platform: "telegram", ID: fmt.Sprint(100 + i)}
		n0 := trips.Load()
		if err := q.Admit(ctx, u, engine.ChatRef{Platform: "telegram", ChatID: "room"}); err != nil {
			t.Fatal(err)
		}
		n1 := trips.Load()
		if err := admit(ctx, q, db, u, fmt.Sprintf("j%d", i)); err != nil {
			t.Fatal(err)
		}
		// admit's own Admit is the second, so what it added past n1 less
		// the first Admit's share is the batch's.
		before += n1 - n0
		batch += trips.Load() - n1 - (n1 - n0)
	}
	if before != 0 {
		t.Errorf("Admit made %d round trips in %d commands, want none", before, commands)
	}
	if batch > 2*commands {
		t.Errorf("admission batches of one made %d round trips for %d commands, want at most 2 each", batch, commands)
	}
}

// TestReservedRatesQuota: through the quota, the rate limit is shared by
// replicas (a burst in all), and a command refused by its daily quota
// still spends its token, as with the limiters in memory.
func TestReservedRatesQuota(t *testing.T) {
	ctx := context.Background()
	url := pgtest.URL(t)
	cfg := quota.DefaultConfig()
	cfg.Default = quota.Tier{Daily: 2, Concurrent: 100, Every: time.Hour, Burst: 5}
	var qs []*quota.Quota
	var dbs []*pgstore.DB
	for range 2 {
		db := mustOpen(t, url, pgstore.Options{})
		q, err := quota.New(cfg, db, nil)
		if err != nil {
			t.Fatal(err)
		}
		qs, dbs = append(qs, q), append(dbs, db)
	}
	u := engine.UserRef{Platform: "telegram", ID: "6"}
	var codes []string
	for i := range 8 {
		err := admit(ctx, qs[i%2], dbs[i%2], u, fmt.Sprintf("j%d", i))
		codes = append(codes, engine.ErrorCode(err))
		if e := engine.AsError(err); engine.ErrorCode(err) == engine.ERATELIMIT && (e == nil || e.RetryAfter < 3000) {
			t.Errorf("command %d: retry after %v, want about an hour", i, e)
		}
	}
	want := []string{"", "", engine.EQUOTA, engine.EQUOTA, engine.EQUOTA, engine.ERATELIMIT, engine.ERATELIMIT, engine.ERATELIMIT}
	if fmt.Sprint(codes) != fmt.Sprint(want) {
		t.Fatalf("codes %v, want %v", codes, want)
	}
}

// TestAdminAcrossReplicas: an admin's ban and daily quota set on one
// replica apply to the next command there at once, and on another replica
// within moments, though both answer from their caches (the check before
// admission, and the reservation in the batch).
func TestAdminAcrossReplicas(t *testing.T) {
	ctx := context.Background()
	url := pgtest.URL(t)
	cfg := quota.DefaultConfig()
	cfg.Default = quota.Tier{Daily: 1, Concurrent: 100, Every: time.Millisecond, Burst: 1000}
	var qs []*quota.Quota
	var dbs []*pgstore.DB
	for range 2 {
		db := mustOpen(t, url, pgstore.Options{})
		q, err := quota.New(cfg, db, nil)
		if err != nil {
			t.Fatal(err)
		}
		qs, dbs = append(qs, q), append(dbs, db)
	}
	u := engine.UserRef{Platform: "telegram", ID: "8"}
	ids := 0
	try := func(r int) string {
		ids++
		return engine.ErrorCode(admit(ctx, qs[r], dbs[r], u, fmt.Sprintf("j%d", ids)))
	}
	if c := try(1); c != "" {
		t.Fatalf("first command: %q", c)
	}
	for range 100 { // until replica 1 answers from its cache
		if _, ok := dbs[1].SettingCachedForTest("daily:" + u.Key()); ok {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if c := try(1); c != engine.EQUOTA {
		t.Fatalf("second command: %q, want EQUOTA", c)
	}
	eventually := func(r int, want string) {
		t.Helper()
		for start := time.Now(); time.Since(start) < 10*time.Second; time.Sleep(5 * time.Millisecond) {
			if c := try(r); c == want {
				return
			}
		}
		t.Fatalf("replica %d never answers %q", r, want)
	}
	if err := qs[0].SetDaily(ctx, u.Key(), 100); err != nil {
		t.Fatal(err)
	}
	if c := try(0); c != "" {
		t.Fatalf("on the replica that raised the quota: %q", c)
	}
	eventually(1, "")
	if err := qs[0].Ban(ctx, u.Key(), true); err != nil {
		t.Fatal(err)
	}
	if c := try(0); c != engine.EFORBIDDEN {
		t.Fatalf("on the replica that banned: %q", c)
	}
	eventually(1, engine.EFORBIDDEN)
}
