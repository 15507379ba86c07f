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

// TestGroupCommit: admissions that share a transaction keep their own
// verdicts: a refused reservation leaves no count and no job, a job whose
// id exists fails alone, and every other job and its count are committed.
func TestGroupCommit(t *testing.T) {
	ctx := context.Background()
	db := mustOpen(t, pgtest.URL(t), pgstore.Options{})
	var biggest atomic.Int64
	db.OnBatchForTest(func(n int) {
		for b := biggest.Load(); int64(n) > b && !biggest.CompareAndSwap(b, int64(n)); b = biggest.Load() {
		}
	})
	now := time.Now()
	if err := db.Update(ctx, func(c engine.Counters) error {
		for i := 1; i < 64; i += 2 {
			c.SetSetting(fmt.Sprintf("ban:u%d", i), "1")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	dup := &engine.Job{ID: "j07", Owner: engine.UserRef{Platform: "t", ID: "u7"}, State: engine.StateQueued, CreatedAt: now}
	if err := db.CreateJob(ctx, dup, nil); err != nil {
		t.Fatal(err)
	}
	errs := make([]error, 64)
	var wg sync.WaitGroup
	for round := range 5 { // several rounds: a batch of more than one is all but sure
		for i := range 64 {
			id := fmt.Sprintf("j%02d", i)
			if round > 0 {
				id = fmt.Sprintf("r%d-%02d", round, i)
			}
			j := &engine.Job{ID: id, Owner: engine.UserRef{Platform: "t", ID: fmt.Sprintf("u%d", i)}, State: engine.StateQueued, CreatedAt: now}
			wg.Go(func() {
				err := db.CreateJob(ctx, j, func(c engine.Counters) error {
					if c.Setting("ban:"+j.Owner.ID) != "" {
						return engine.Errorf(engine.EFORBIDDEN, "banned", "banned")
					}
					c.Add("jobs", 1)
					c.Add("user:"+j.Owner.ID, 1)
					return nil
				})
				if round == 0 {
					errs[i] = err
				}
			})
		}
		wg.Wait()
	}
	if biggest.Load() < 2 {
		t.Fatalf("no batch of more than one admission formed (largest %d)", biggest.Load())
	}
	for i, err := range errs {
		switch {
		case i == 7:
			if err == nil {
				t.Error("a job whose id exists was created")
			}
		case i%2 == 1:
			if engine.ErrorCode(err) != engine.EFORBIDDEN {
				t.Errorf("job %d of a banned user: %v, want EFORBIDDEN", i, err)
			}
			if _, err := db.Job(ctx, fmt.Sprintf("j%02d", i)); engine.ErrorCode(err) != engine.ENOTFOUND {
				t.Errorf("refused job %d stored (%v)", i, err)
			}
		default:
			if err != nil {
				t.Errorf("job %d: %v", i, err)
			}
			if _, err := db.Job(ctx, fmt.Sprintf("j%02d", i)); err != nil {
				t.Errorf("admitted job %d not stored: %v", i, err)
			}
		}
	}
	_ = db.View(ctx, func(c engine.Counters) error {
		if got := c.Get("jobs"); got != 5*32 {
			t.Errorf("jobs counted %d, want %d", got, 5*32)
		}
		if got := c.Get("user:u1"); got != 0 {
			t.Errorf("a refused user counted %d", got)
		}
		if got := c.Get("user:u2"); got != 5 {
			t.Errorf("user u2 counted %d, want 5", got)
		}
		return nil
	})
}

// TestPrefetchSettings: settings read in one round trip answer as Setting would.
func TestPrefetchSettings(t *testing.T) {
	ctx := context.Background()
	db := mustOpen(t, pgtest.URL(t), pgstore.Options{})
	if err := db.Update(ctx, func(c engine.Counters) error { c.SetSetting("a", "1"); return nil }); err != nil {
		t.Fatal(err)
	}
	err := db.View(ctx, func(c engine.Counters) error {
		c.(interface{ PrefetchSettings(...string) }).PrefetchSettings("a", "b")
		if c.Setting("a") != "1" || c.Setting("b") != "" {
			t.Errorf("prefetched a=%q b=%q, want 1 and empty", c.Setting("a"), c.Setting("b"))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestGroupCommitFailsAtCommit: a job whose transaction fails only at its
// COMMIT (a deferred constraint trigger refuses it there) is never
// acknowledged, and the jobs that shared its batch are still committed,
// each with its count, the refused job's not.
func TestGroupCommitFailsAtCommit(t *testing.T) {
	ctx := context.Background()
	db := mustOpen(t, pgtest.URL(t), pgstore.Options{})
	for _, sql := range []string{
		`CREATE FUNCTION refuse_boom() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			IF NEW.id LIKE 'boom%' THEN RAISE EXCEPTION 'refused at commit'; END IF;
			RETURN NULL;
		END $$`,
		`CREATE CONSTRAINT TRIGGER refuse_boom AFTER INSERT ON picbot_jobs
			DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse_boom()`,
	} {
		if err := db.ExecForTest(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	shared := false // the boom job was in a batch with others
	db.OnBatchIDsForTest(func(ids []string) {
		for _, id := range ids {
			if id == "boom" && len(ids) > 1 {
				mu.Lock()
				shared = true
				mu.Unlock()
			}
		}
	})
	now := time.Now()
	reserve := func(c engine.Counters) error { c.Add("jobs", 1); return nil }
	for round := 0; round < 20 && !shared; round++ {
		var wg sync.WaitGroup
		errs := make([]error, 32)
		for i := range errs {
			id := fmt.Sprintf("r%d-%02d", round, i)
			if i == 16 {
				id = "boom"
			}
			j := &engine.Job{ID: id, Owner: engine.UserRef{Platform: "t", ID: "u"}, State: engine.StateQueued, CreatedAt: now}
			wg.Go(func() { errs[i] = db.CreateJob(ctx, j, reserve) })
		}
		wg.Wait()
		for i, err := range errs {
			if i == 16 {
				if err == nil {
					t.Fatal("a job refused at commit was acknowledged")
				}
				continue
			}
			if err != nil {
				t.Errorf("round %d job %d, beside the refused one: %v", round, i, err)
			}
		}
		if _, err := db.Job(ctx, "boom"); engine.ErrorCode(err) != engine.ENOTFOUND {
			t.Fatalf("the refused job is stored (%v)", err)
		}
		_ = db.View(ctx, func(c engine.Counters) error {
			if got, want := c.Get("jobs"), int64(31*(round+1)); got != want {
				t.Errorf("after round %d: jobs counted %d, want %d", round, got, want)
			}
			return nil
		})
	}
	if !shared {
		t.Fatal("the refused job never shared a batch")
	}
}

// TestAdmissionStall: a batch waiting on a lock another transaction holds
// holds up the next batch for a short while only (a second transaction
// starts beside it), and commits once the lock is free.
func TestAdmissionStall(t *testing.T) {
	ctx := context.Background()
	db := mustOpen(t, pgtest.URL(t), pgstore.Options{})
	key := "stall:" + t.Name()
	release, err := db.HoldLockForTest(ctx, "c:"+key)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	started := make(chan struct{}, 1)
	db.OnBatchIDsForTest(func(ids []string) {
		if ids[0] == "blocked" {
			started <- struct{}{}
		}
	})
	now := time.Now()
	blocked := make(chan error, 1)
	go func() {
		j := &engine.Job{ID: "blocked", Owner: engine.UserRef{Platform: "t", ID: "a"}, State: engine.StateQueued, CreatedAt: now}
		blocked <- db.CreateJob(ctx, j, func(c engine.Counters) error { c.Add(key, c.Get(key)+1); return nil })
	}()
	<-started
	t0 := time.Now()
	j := &engine.Job{ID: "free", Owner: engine.UserRef{Platform: "t", ID: "b"}, State: engine.StateQueued, CreatedAt: now}
	free := make(chan error, 1)
	go func() { free <- db.CreateJob(ctx, j, func(c engine.Counters) error { c.Add("jobs", 1); return nil }) }()
	select {
	case err := <-free:
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("admitted beside the blocked batch in %v", time.Since(t0))
	case <-time.After(5 * time.Second):
		release()
		t.Fatal("a batch waiting on a lock held up the next one for 5 s")
	}
	select {
	case err := <-blocked:
		t.Fatalf("the blocked job returned (%v) while its lock was held", err)
	default:
	}
	release()
	if err := <-blocked; err != nil {
		t.Fatalf("the blocked job, once free: %v", err)
	}
}

// TestCommitCutBatch: a batch of several jobs whose connection is lost at
// its COMMIT answers each job by what the server did: after the commit,
// every job succeeds, stored and counted once (they were answered "job
// exists" when the batch was retried job by job); before it, each job is
// retried and stored once, or fails with nothing stored or counted.
func TestCommitCutBatch(t *testing.T) {
	for _, cut := range []pgtest.Cut{pgtest.CutAfterCommit, pgtest.CutBeforeCommit, pgtest.CutPartition} {
		t.Run(fmt.Sprint(cut), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			p, u := pgtest.NewProxy(t, pgtest.URL(t))
			db := mustOpen(t, u, pgstore.Options{})
			var armed atomic.Bool
			var size atomic.Int64
			db.OnBatchIDsForTest(func(ids []string) {
				if len(ids) >= 2 && armed.CompareAndSwap(false, true) {
					size.Store(int64(len(ids)))
					p.Arm(cut)
				}
			})
			now := time.Now()
			type result struct {
				j   *engine.Job
				err error
			}
			var all []result
			start := time.Now()
			for round := 0; round < 20 && !armed.Load(); round++ {
				res := make([]result, 16)
				var wg sync.WaitGroup
				for i := range res {
					j := &engine.Job{ID: fmt.Sprintf("r%d-%02d", round, i), Owner: engine.UserRef{Platform: "t", ID: fmt.Sprint(i)},
						State: engine.StateQueued, CreatedAt: now, CallbackToken: fmt.Sprintf("tok%d-%d", round, i)}
					res[i].j = j
					wg.Go(func() {
						res[i].err = db.CreateJob(ctx, j.Clone(), func(c engine.Counters) error {
							c.Add("jobs", 1)
							c.Add("n:"+j.ID, c.Get("n:"+j.ID)+1)
							return nil
						})
					})
				}
				wg.Wait()
				all = append(all, res...)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("answered after %v: the lost connection held the callers up", d)
			}
			if !armed.Load() {
				t.Fatal("no batch of more than one job formed")
			}
			select {
			case <-p.Fired():
			default:
				t.Fatal("the connection was not cut")
			}
			t.Logf("cut a batch of %d", size.Load())
			stored := int64(0)
			for _, r := range all {
				_, jerr := db.Job(ctx, r.j.ID)
				switch {
				case cut == pgtest.CutAfterCommit && r.err != nil:
					t.Errorf("job %s: answered %v after its batch committed", r.j.ID, r.err)
				case r.err == nil && jerr != nil:
					t.Errorf("job %s: answered nil, not stored (%v)", r.j.ID, jerr)
				case r.err != nil && engine.ErrorCode(jerr) != engine.ENOTFOUND:
					t.Errorf("job %s: answered %v, and stored (%v)", r.j.ID, r.err, jerr)
				}
				want := int64(0)
				if jerr == nil {
					stored++
					want = 1
				}
				_ = db.View(ctx, func(c engine.Counters) error {
					if got := c.Get("n:" + r.j.ID); got != want {
						t.Errorf("job %s (answered %v): counted %d, want %d", r.j.ID, r.err, got, want)
					}
					return nil
				})
			}
			_ = db.View(ctx, func(c engine.Counters) error {
				if got := c.Get("jobs"); got != stored {
					t.Errorf("jobs counted %d, %d stored", got, stored)
				}
				return nil
			})
		})
	}
}
