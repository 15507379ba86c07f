// Package storetest is the contract every store of the engine passes, the
// embedded bbolt store and PostgreSQL alike, in the way database/sql
// drivers share tests: no behaviour may exist in one store only.
package storetest

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/picbot/picbot/engine"
	"github.com/picbot/picbot/store"
)

// Store is what the contract checks: the engine's store with the writable
// counters that admin commands and adapters use.
type Store interface {
	engine.Store
	Update(ctx context.Context, fn func(engine.Counters) error) error
}

// Opener returns a fresh, empty store and its image store; the test
// closes nothing (the opener registers its own cleanup).
type Opener func(t *testing.T) (Store, engine.Blobs)

// Run runs the contract against stores from open.
func Run(t *testing.T, open Opener) {
	t.Run("Jobs", func(t *testing.T) { testJobs(t, open) })
	t.Run("Counters", func(t *testing.T) { testCounters(t, open) })
	t.Run("ConcurrentReservations", func(t *testing.T) { testConcurrentReservations(t, open) })
	t.Run("Blobs", func(t *testing.T) { testBlobs(t, open) })
	t.Run("Console", func(t *testing.T) { testConsole(t, open) })
}

func newJob(id, user string, created time.Time) *engine.Job {
	return &engine.Job{ID: id, Owner: engine.UserRef{Platform: "t", ID: user}, State: engine.StateQueued, CreatedAt: created, UpdatedAt: created}
}

func testJobs(t *testing.T, open Opener) {
	ctx := context.Background()
	db, _ := open(t)
	base := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)

	t.Run("ReserveRefusedWritesNothing", func(t *testing.T) {
		err := db.CreateJob(ctx, newJob("refused", "u", base), func(c engine.Counters) error {
			c.Add("x", 5)
			c.SetSetting("s", "v")
			return engine.Errorf(engine.EQUOTA, "no", "no")
		})
		if got, want := engine.ErrorCode(err), engine.EQUOTA; got != want {
			t.Fatalf("err %v, want code %s", err, want)
		}
		if _, err := db.Job(ctx, "refused"); engine.ErrorCode(err) != engine.ENOTFOUND {
			t.Fatalf("refused job stored: %v", err)
		}
		_ = db.View(ctx, func(c engine.Counters) error {
			if c.Get("x") != 0 || c.Setting("s") != "" {
				t.Error("refused reservation left a trace")
			}
			return nil
		})
	})
	t.Run("CreateWithReservation", func(t *testing.T) {
		if err := db.CreateJob(ctx, newJob("r1", "u", base), func(c engine.Counters) error {
			c.Add("res", 2)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		_ = db.View(ctx, func(c engine.Counters) error {
			if got := c.Get("res"); got != 2 {
				t.Errorf("counter %d, want 2", got)
			}
			return nil
		})
		if err := db.CreateJob(ctx, newJob("r1", "u", base), nil); err == nil {
			t.Fatal("second job with the same id stored")
		}
		// A job whose id exists fails with nothing charged.
		if err := db.CreateJob(ctx, newJob("r1", "u", base), func(c engine.Counters) error {
			c.Add("res", 1)
			return nil
		}); err == nil {
			t.Fatal("second job with the same id and a reservation stored")
		}
		_ = db.View(ctx, func(c engine.Counters) error {
			if got := c.Get("res"); got != 2 {
				t.Errorf("counter %d after a job whose id exists, want 2", got)
			}
			return nil
		})
	})
	t.Run("UpdateAbortsOnError", func(t *testing.T) {
		_, err := db.UpdateJob(ctx, "r1", func(j *engine.Job, c engine.Counters) error {
			j.State = engine.StateFailed
			c.Add("res", -2)
			return engine.Errorf(engine.ECONFLICT, "no", "no")
		})
		if engine.ErrorCode(err) != engine.ECONFLICT {
			t.Fatalf("err %v", err)
		}
		j, err := db.Job(ctx, "r1")
		if err != nil || j.State != engine.StateQueued {
			t.Fatalf("job changed by an aborted update: %v %v", j, err)
		}
		_ = db.View(ctx, func(c engine.Counters) error {
			if got := c.Get("res"); got != 2 {
				t.Errorf("counter %d after an aborted update, want 2", got)
			}
			return nil
		})
	})
	t.Run("UpdateNotFound", func(t *testing.T) {
		_, err := db.UpdateJob(ctx, "nope", func(*engine.Job, engine.Counters) error { return nil })
		if engine.ErrorCode(err) != engine.ENOTFOUND {
			t.Fatalf("err %v, want ENOTFOUND", err)
		}
	})
	t.Run("UnfinishedIndex", func(t *testing.T) {
		for i, id := range []string{"a", "b", "c"} {
			if err := db.CreateJob(ctx, newJob(id, "idx", base.Add(time.Duration(i)*time.Second)), nil); err != nil {
				t.Fatal(err)
			}
		}
		done := func(j *engine.Job, _ engine.Counters) error { j.State = engine.StateDelivered; return nil }
		if _, err := db.UpdateJob(ctx, "b", done); err != nil {
			t.Fatal(err)
		}
		jobs, err := db.Unfinished(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]bool{}
		for _, j := range jobs {
			got[j.ID] = true
			if j.Finished() {
				t.Errorf("finished job %s listed as unfinished", j.ID)
			}
		}
		if !got["a"] || !got["c"] || got["b"] {
			t.Fatalf("unfinished %v, want a and c without b", got)
		}
	})
	t.Run("JobsByOwner", func(t *testing.T) {
		for i := range 5 {
			if err := db.CreateJob(ctx, newJob(fmt.Sprintf("o%d", i), "owner", base.Add(time.Duration(i)*time.Minute)), nil); err != nil {
				t.Fatal(err)
			}
		}
		jobs, err := db.JobsByOwner(ctx, engine.UserRef{Platform: "t", ID: "owner"}, 3)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, j := range jobs {
			ids = append(ids, j.ID)
		}
		if got, want := fmt.Sprint(ids), "[o4 o3 o2]"; got != want {
			t.Fatalf("jobs %s, want %s (newest first, limited)", got, want)
		}
		// An owner whose key is a prefix of another's sees only its own.
		jobs, _ = db.JobsByOwner(ctx, engine.UserRef{Platform: "t", ID: "own"}, 10)
		if len(jobs) != 0 {
			t.Fatalf("prefix owner sees %d jobs", len(jobs))
		}
	})
	t.Run("Copies", func(t *testing.T) {
		j, _ := db.Job(ctx, "a")
		j.State = engine.StateFailed
		again, _ := db.Job(ctx, "a")
		if again.State != engine.StateQueued {
			t.Fatal("changing a returned job changed the store")
		}
	})
}

func testCounters(t *testing.T, open Opener) {
	ctx := context.Background()
	db, _ := open(t)
	err := db.Update(ctx, func(c engine.Counters) error {
		c.Add("k:a", 3)
		if got := c.Get("k:a"); got != 3 {
			t.Errorf("Get after Add = %d, want 3", got)
		}
		c.Add("k:a", -10)
		if got := c.Get("k:a"); got != 0 {
			t.Errorf("Get after Add below zero = %d, want 0", got)
		}
		c.Add("k:b", 2)
		c.Add("k:c", 1)
		c.Add("other", 7)
		c.SetSetting("tier:u", "gold")
		if c.Setting("tier:u") != "gold" {
			t.Error("setting not read back in its transaction")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	_ = db.View(ctx, func(c engine.Counters) error {
		if got := c.Get("k:a"); got != 0 {
			t.Errorf("k:a %d, want 0 (never negative)", got)
		}
		var got []string
		c.Scan("k:", func(k string, v int64) { got = append(got, fmt.Sprintf("%s=%d", k, v)) })
		if s, want := fmt.Sprint(got), "[k:b=2 k:c=1]"; s != want {
			t.Errorf("scan %s, want %s (key order, zero counters gone)", s, want)
		}
		if c.Setting("tier:u") != "gold" {
			t.Error("setting lost")
		}
		return nil
	})
	_ = db.Update(ctx, func(c engine.Counters) error { c.SetSetting("tier:u", ""); return nil })
	_ = db.View(ctx, func(c engine.Counters) error {
		if c.Setting("tier:u") != "" {
			t.Error("empty setting not deleted")
		}
		return nil
	})
	// Added to before it is read, in one transaction: nothing is lost.
	_ = db.Update(ctx, func(c engine.Counters) error {
		c.Add("mixed", 2)
		if got := c.Get("mixed"); got != 2 {
			t.Errorf("read after an addition: %d, want 2", got)
		}
		c.Add("mixed", 1)
		return nil
	})
	_ = db.View(ctx, func(c engine.Counters) error {
		if got := c.Get("mixed"); got != 3 {
			t.Errorf("mixed = %d after commit, want 3", got)
		}
		return nil
	})
	refused := db.Update(ctx, func(c engine.Counters) error {
		c.Add("k:b", 100)
		return engine.Errorf(engine.EINVALID, "no", "no")
	})
	if engine.ErrorCode(refused) != engine.EINVALID {
		t.Fatalf("err %v", refused)
	}
	_ = db.View(ctx, func(c engine.Counters) error {
		if c.Get("k:b") != 2 {
			t.Error("refused update written")
		}
		return nil
	})
}

// testConcurrentReservations: many reservations at once against a daily
// quota; exactly the quota's worth succeed, and settling each refund once
// brings the counter back to zero.
func testConcurrentReservations(t *testing.T, open Opener) {
	ctx := context.Background()
	db, _ := open(t)
	const tries, quota = 200, 20
	var ok atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, tries)
	for i := range tries {
		wg.Go(func() {
			err := db.CreateJob(ctx, newJob(fmt.Sprintf("q%03d", i), "u", time.Now()), func(c engine.Counters) error {
				if c.Get("day") >= quota {
					return engine.Errorf(engine.EQUOTA, "quota", "quota")
				}
				c.Add("day", 1)
				c.Add("global", 1)
				return nil
			})
			switch engine.ErrorCode(err) {
			case "":
				ok.Add(1)
			case engine.EQUOTA:
			default:
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("reservation failed: %v", err)
	}
	if got := ok.Load(); got != quota {
		t.Fatalf("%d reservations succeeded, want exactly %d", got, quota)
	}
	_ = db.View(ctx, func(c engine.Counters) error {
		if got := c.Get("day"); got != quota {
			t.Errorf("counter %d, want %d", got, quota)
		}
		return nil
	})
	// Settle every job twice, from many goroutines: each refunds once.
	jobs, _ := db.Unfinished(ctx)
	for _, j := range jobs {
		for range 2 {
			wg.Go(func() {
				_, err := db.UpdateJob(ctx, j.ID, func(j *engine.Job, c engine.Counters) error {
					if j.Finished() {
						return nil
					}
					j.State = engine.StateFailed
					c.Add("day", -1)
					return nil
				})
				if err != nil {
					t.Error(err)
				}
			})
		}
	}
	wg.Wait()
	_ = db.View(ctx, func(c engine.Counters) error {
		if got := c.Get("day"); got != 0 {
			t.Errorf("counter %d after settling, want 0", got)
		}
		return nil
	})
}

func pngBytes(t *testing.T, w, h int, seed uint64) []byte {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	r := rand.New(rand.NewPCG(seed, seed))
	for i := range img.Pix {
		img.Pix[i] = byte(r.Uint32())
	}
	img.Set(0, 0, color.White)
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// RunBlobs runs the image part of the contract against an image store
// that can go with either database (an object store).
func RunBlobs(t *testing.T, open func(t *testing.T) engine.Blobs) {
	testBlobs(t, func(t *testing.T) (Store, engine.Blobs) { return nil, open(t) })
}

func testBlobs(t *testing.T, open Opener) {
	ctx := context.Background()
	_, blobs := open(t)
	small := pngBytes(t, 8, 8, 1)
	// Larger than any chunk a store might use: noise does not compress.
	big := pngBytes(t, 700, 700, 2)

	for _, tc := range []struct {
		name string
		data []byte
	}{{"Small", small}, {"Big", big}} {
		t.Run(tc.name, func(t *testing.T) {
			info, err := blobs.Put(ctx, bytes.NewReader(tc.data), 10<<20)
			if err != nil {
				t.Fatal(err)
			}
			if info.Size != int64(len(tc.data)) || info.Mime != "image/png" || info.Width == 0 {
				t.Fatalf("info %+v", info)
			}
			again, err := blobs.Put(ctx, bytes.NewReader(tc.data), 10<<20)
			if err != nil || again.Key != info.Key {
				t.Fatalf("second put: %+v %v, want key %s", again, err, info.Key)
			}
			rc, err := blobs.Open(ctx, info.Key)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(rc)
			rc.Close()
			if err != nil || !bytes.Equal(got, tc.data) {
				t.Fatalf("read back %d bytes (err %v), want %d", len(got), err, len(tc.data))
			}
		})
	}
	t.Run("TooLarge", func(t *testing.T) {
		if _, err := blobs.Put(ctx, bytes.NewReader(big), int64(len(big)-1)); engine.ErrorCode(err) != engine.EINVALID {
			t.Fatalf("err %v, want EINVALID", err)
		}
	})
	t.Run("NotAnImage", func(t *testing.T) {
		if _, err := blobs.Put(ctx, bytes.NewReader([]byte("hello, this is text")), 1<<20); engine.ErrorCode(err) != engine.EINVALID {
			t.Fatalf("err %v, want EINVALID", err)
		}
	})
	t.Run("OpenMissing", func(t *testing.T) {
		for _, key := range []string{"../etc/passwd", fmt.Sprintf("%064x", 1)} {
			if _, err := blobs.Open(ctx, key); engine.ErrorCode(err) != engine.ENOTFOUND {
				t.Errorf("Open(%q): %v, want ENOTFOUND", key, err)
			}
		}
	})
	t.Run("ConcurrentSamePut", func(t *testing.T) {
		img := pngBytes(t, 64, 64, 3)
		var wg sync.WaitGroup
		keys := make([]string, 8)
		for i := range keys {
			wg.Go(func() {
				info, err := blobs.Put(ctx, bytes.NewReader(img), 1<<20)
				if err != nil {
					t.Error(err)
				}
				keys[i] = info.Key
			})
		}
		wg.Wait()
		for _, k := range keys {
			if k != keys[0] {
				t.Fatalf("keys differ: %v", keys)
			}
		}
		rc, err := blobs.Open(ctx, keys[0])
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(rc)
		rc.Close()
		if !bytes.Equal(got, img) {
			t.Fatal("image stored by concurrent puts reads back wrong")
		}
	})
}

// consoleStore is what the web console reads of a store.
type consoleStore interface {
	RecentJobs(ctx context.Context, before time.Time, fn func(*engine.Job) bool) error
	AppendAudit(ctx context.Context, e store.AuditEntry) error
	Audit(ctx context.Context, limit int) ([]store.AuditEntry, error)
}

// settingsScanner is the counters' scan of settings (quota.People).
type settingsScanner interface {
	ScanSettings(prefix string, fn func(key, value string))
}

func testConsole(t *testing.T, open Opener) {
	ctx := context.Background()
	db, _ := open(t)
	cs, ok := db.(consoleStore)
	if !ok {
		t.Fatalf("%T lacks the web console's methods", db)
	}
	base := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	// More than a page of jobs, made out of id order: the list follows time.
	const n = 250
	for i := range n {
		id := fmt.Sprintf("j%03d", (i*7)%n)
		if err := db.CreateJob(ctx, newJob(id, "u", base.Add(time.Duration(i)*time.Second)), nil); err != nil {
			t.Fatal(err)
		}
	}
	walk := func(before time.Time, limit int) []time.Time {
		var out []time.Time
		if err := cs.RecentJobs(ctx, before, func(j *engine.Job) bool {
			out = append(out, j.CreatedAt)
			return len(out) < limit
		}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	all := walk(time.Time{}, n+1)
	if len(all) != n || !all[0].Equal(base.Add((n-1)*time.Second)) || !all[n-1].Equal(base) {
		t.Fatalf("all: %d jobs, first %v last %v", len(all), all[0], all[len(all)-1])
	}
	for i := 1; i < len(all); i++ {
		if !all[i].Before(all[i-1]) {
			t.Fatalf("not newest first at %d: %v after %v", i, all[i], all[i-1])
		}
	}
	if got := walk(base.Add(100*time.Second), n); len(got) != 100 || !got[0].Equal(base.Add(99*time.Second)) {
		t.Fatalf("before 100 s: %d jobs, first %v", len(got), got[0])
	}
	if got := walk(time.Time{}, 3); len(got) != 3 {
		t.Fatalf("stopped after 3: %d jobs", len(got))
	}

	for i, a := range []string{"ban", "tier", "cancel"} {
		if err := cs.AppendAudit(ctx, store.AuditEntry{At: base.Add(time.Duration(i) * time.Second), Who: "ann@10.0.0.1", Action: a, Target: "t:1", Result: "ok"}); err != nil {
			t.Fatal(err)
		}
	}
	log, err := cs.Audit(ctx, 2)
	if err != nil || len(log) != 2 || log[0].Action != "cancel" || log[1].Action != "tier" || log[0].Who != "ann@10.0.0.1" {
		t.Fatalf("audit: %+v %v", log, err)
	}

	scan := func(c engine.Counters, prefix string) string {
		sc, ok := c.(settingsScanner)
		if !ok {
			t.Fatalf("%T cannot scan settings", c)
		}
		var got []string
		sc.ScanSettings(prefix, func(k, v string) { got = append(got, k+"="+v) })
		return fmt.Sprint(got)
	}
	if err := db.Update(ctx, func(c engine.Counters) error {
		c.SetSetting("ban:a", "1")
		c.SetSetting("ban:b", "1")
		c.SetSetting("tier:x", "vip")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var inTx string
	if err := db.Update(ctx, func(c engine.Counters) error {
		c.SetSetting("ban:c", "1")
		c.SetSetting("ban:a", "") // unbanned
		inTx = scan(c, "ban:")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if inTx != "[ban:b=1 ban:c=1]" {
		t.Errorf("scan inside the transaction that changed them: %s", inTx)
	}
	var after string
	db.View(ctx, func(c engine.Counters) error { after = scan(c, "ban:"); return nil })
	if after != "[ban:b=1 ban:c=1]" {
		t.Errorf("scan after: %s", after)
	}
}

// CommitCut is where a store's connection to its database is lost during
// an admission's commit.
type CommitCut int

const (
	// CutBeforeCommit: the COMMIT never reaches the database, which rolls
	// the transaction back when it sees the connection end.
	CutBeforeCommit CommitCut = iota + 1
	// CutPartition: the COMMIT never reaches the database, whose side of
	// the connection stays open, as across a network partition: its
	// transaction stays open until something ends it.
	CutPartition
	// CutAfterCommit: the database commits; its answer is lost.
	CutAfterCommit
	// CutPartitionEarly: the connection is lost across a partition once
	// the database has answered the transaction's first statements: its
	// session stays in the transaction, holding what it locked.
	CutPartitionEarly
)

func (c CommitCut) String() string {
	switch c {
	case CutBeforeCommit:
		return "BeforeCommit"
	case CutPartition:
		return "Partition"
	case CutAfterCommit:
		return "AfterCommit"
	case CutPartitionEarly:
		return "PartitionEarly"
	}
	return fmt.Sprintf("CommitCut(%d)", int(c))
}

// CutOpener returns a fresh, empty store, and cut, which makes the store's
// connection to its database be lost, once, at where in the next commit
// of an admission; fired reports whether that happened.
type CutOpener func(t *testing.T) (db Store, cut func(where CommitCut) (fired func() bool))

// RunCommitCuts is the contract of a store with a connection to a
// database (the embedded bbolt store has none) when that connection is
// lost while a CreateJob commits: whatever the database did, the caller is
// told the truth. Answered nil, the job is stored and its reservation
// counted once; answered an error, neither. A commit the database made is
// answered nil (it runs and is charged: a caller told it failed would be
// lied to, and a chat user sending the command again would pay twice).
func RunCommitCuts(t *testing.T, open CutOpener) {
	for _, where := range []CommitCut{CutBeforeCommit, CutPartition, CutAfterCommit, CutPartitionEarly} {
		t.Run(where.String(), func(t *testing.T) {
			// Alone: a reservation that reads nothing (the commit is the
			// transaction's only round trip), and one that reads a counter.
			t.Run("AloneBlind", func(t *testing.T) { testCommitCut(t, open, where, 1, false) })
			t.Run("Alone", func(t *testing.T) { testCommitCut(t, open, where, 1, true) })
			t.Run("Together", func(t *testing.T) { testCommitCut(t, open, where, 16, true) })
		})
	}
}

// testCommitCut runs n admissions at once, plus one refused, with the
// next commit cut at where.
func testCommitCut(t *testing.T, open CutOpener, where CommitCut, n int, reads bool) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db, cut := open(t)
	fired := cut(where)
	jobs := make([]*engine.Job, n+1)
	errs := make([]error, n+1)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range jobs {
		j := newJob(fmt.Sprintf("cut%02d", i), fmt.Sprintf("u%d", i), time.Now())
		j.CallbackToken = fmt.Sprintf("token-%d-%d", i, rand.Int64())
		jobs[i] = j
		refuse := i == n && n > 1 // a refusal beside the others
		wg.Go(func() {
			errs[i] = db.CreateJob(ctx, j.Clone(), func(c engine.Counters) error {
				if reads && c.Get("limit:"+j.Owner.ID) > 0 {
					return engine.Errorf(engine.EQUOTA, "used up", "used up")
				}
				if refuse {
					return engine.Errorf(engine.EFORBIDDEN, "banned", "banned")
				}
				c.Add("jobs", 1)
				c.Add("n:"+j.ID, 1)
				return nil
			})
		})
		if n == 1 {
			break // alone: one admission, no refusal
		}
	}
	wg.Wait()
	if d := time.Since(start); d > 10*time.Second {
		// Across a partition the lost session may hold its locks for hours.
		t.Errorf("answered after %v: the lost connection held the callers up", d)
	}
	if !fired() {
		t.Fatal("the connection was not cut")
	}
	stored := int64(0)
	for i, j := range jobs {
		if n == 1 && i > 0 {
			break
		}
		err := errs[i]
		got, jerr := db.Job(ctx, j.ID)
		switch {
		case i == n && n > 1:
			if err == nil || jerr == nil {
				t.Errorf("refused job: answered %v, stored %v", err, jerr == nil)
			}
			continue
		case where == CutAfterCommit && err != nil:
			t.Errorf("job %s: answered %v after its commit", j.ID, err)
		case err == nil && jerr != nil:
			t.Errorf("job %s: answered nil, not stored (%v)", j.ID, jerr)
		case err != nil && engine.ErrorCode(jerr) != engine.ENOTFOUND:
			t.Errorf("job %s: answered %v, and stored (%v)", j.ID, err, jerr)
		}
		if jerr == nil {
			stored++
			if got.CallbackToken != j.CallbackToken {
				t.Errorf("job %s stored with token %q, want %q", j.ID, got.CallbackToken, j.CallbackToken)
			}
		}
		_ = db.View(ctx, func(c engine.Counters) error {
			want := int64(0)
			if jerr == nil {
				want = 1
			}
			if v := c.Get("n:" + j.ID); v != want {
				t.Errorf("job %s (answered %v): counted %d, want %d", j.ID, err, v, want)
			}
			return nil
		})
	}
	_ = db.View(ctx, func(c engine.Counters) error {
		if v := c.Get("jobs"); v != stored {
			t.Errorf("jobs counted %d, %d stored", v, stored)
		}
		return nil
	})
	t.Logf("%d of %d admissions stored", stored, min(n, len(jobs)))
	// The store still admits once the connection is back, promptly, what
	// reads the same counters (a lost session must not hold their locks).
	start = time.Now()
	if err := db.CreateJob(ctx, newJob("after", "u0", time.Now()), func(c engine.Counters) error {
		if c.Get("limit:u0") > 0 {
			return engine.Errorf(engine.EQUOTA, "used up", "used up")
		}
		c.Add("jobs", 1)
		return nil
	}); err != nil {
		t.Errorf("after the cut: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("admitted after the cut in %v", d)
	}
}
