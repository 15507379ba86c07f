package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/picbot/picbot/bots/telegram/telegramtest"
	"github.com/picbot/picbot/engine"
	pgstore "github.com/picbot/picbot/store/pg"
	"github.com/picbot/picbot/store/pg/pgtest"
)

// Several replicas of the real binary on one PostgreSQL database, Telegram
// in webhook mode behind a "load balancer" (the test posts each update to
// one replica, and to another when that one does not answer), every vendor
// callback sent to a replica other than the one that made the job.

const replicaSecret = "e2e_Replica-Secret"

// replicaSet is N replicas sharing one database.
type replicaSet struct {
	t      *testing.T
	dir    string
	url    string
	fake   *telegramtest.Server
	vendor string // the vendors: block
	vfake  *vendorFake
	public string // every replica's public_url when set (a load balancer), else the next replica's
	quota  string
	mode   string // telegram's mode keys
	routes string // engine.routes' entries; default draw to ShowAPI
	extra  string // more top-level keys (blobs_url)
	addrs  []string
	mu     sync.Mutex
	procs  []*bot
	dead   []*bot // killed: their logs still count
}

func newReplicaSet(t *testing.T, n int, quota string) *replicaSet {
	return newReplicaSetMode(t, n, quota, "")
}

// newReplicaSetMode is newReplicaSet with Telegram's mode block ("": webhook).
func newReplicaSetMode(t *testing.T, n int, quota, mode string) *replicaSet {
	t.Helper()
	rs := newReplicaSetStopped(t, n, quota, mode)
	rs.startAll()
	return rs
}

// newReplicaSetStopped is newReplicaSetMode with no replica started yet,
// for a test that sets public first.
func newReplicaSetStopped(t *testing.T, n int, quota, mode string) *replicaSet {
	t.Helper()
	url := pgtest.URL(t)
	fake := telegramtest.New(tgToken, tgBot)
	t.Cleanup(fake.Close)
	v := newVendorFake(t, "showapi")
	if mode == "" {
		mode = "  mode: webhook\n  webhook_url: https://bot.example.com/telegram/hook\n  webhook_secret: " + replicaSecret + "\n"
	}
	rs := &replicaSet{t: t, dir: t.TempDir(), url: url, fake: fake, vendor: v.block, vfake: v, quota: quota, mode: mode}
	for range n {
		rs.addrs = append(rs.addrs, freeAddr(t))
	}
	return rs
}

// startAll starts every replica and waits for each to listen.
func (rs *replicaSet) startAll() {
	t, n := rs.t, len(rs.addrs)
	rs.procs = make([]*bot, n)
	for i := range n {
		rs.start(i)
	}
	for i := range n {
		listenAddr(t, rs.procs[i])
	}
}

// start runs replica i; its callbacks come through public, or else replica i+1.
func (rs *replicaSet) start(i int) {
	dir := filepath.Join(rs.dir, fmt.Sprintf("r%d", i))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		rs.t.Fatal(err)
	}
	// The connection budget: CI's server has max_connections 100, and
	// under go test ./... store/pg's and store/s3blobs' tests hold theirs
	// at the same time (a store at the default pool is 20 + 5 lossy). A
	// replica holds up to replicaConns + max(replicaConns/4, 2) (its lossy
	// pool): 10, so three, with the test's own store (testConns + 2) and
	// the schema's connection, 37 at most, 47 while a restarted replica
	// overlaps its killed self's closing sessions. Three replicas at the
	// default 20 were 75 alone.
	dbURL := rs.url
	if strings.Contains(dbURL, "?") {
		dbURL += "&pool_max_conns=" + strconv.Itoa(replicaConns)
	} else {
		dbURL += "?pool_max_conns=" + strconv.Itoa(replicaConns)
	}
	other := "http://" + rs.addrs[(i+1)%len(rs.addrs)]
	if rs.public != "" {
		other = rs.public
	}
	cfg := fmt.Sprintf(`data_dir: %[1]s/data
database_url: %[2]q
console:
  enabled: false
log:
  level: debug
http:
  listen: %[3]s
  public_url: %[4]s
engine:
  job_timeout: 90s
  routes:
%[10]squota:
%[5]s
telegram:
  enabled: true
  token: %[6]q
  api_endpoint: %[7]q
  poll_timeout: 1s
%[8]svendors:
%[9]s%[11]s`, dir, dbURL, rs.addrs[i], other, rs.quota, tgToken, rs.fake.URL, rs.mode, rs.vendor, cmp.Or(rs.routes, "    draw: [showapi]\n"), rs.extra)
	path := filepath.Join(dir, "picbot.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		rs.t.Fatal(err)
	}
	b := startBot(rs.t, dir, "-config", path)
	rs.mu.Lock()
	rs.procs[i] = b
	rs.mu.Unlock()
}

func (rs *replicaSet) kill(i int) {
	rs.mu.Lock()
	b := rs.procs[i]
	rs.mu.Unlock()
	_ = b.cmd.Process.Kill()
	<-b.done
	rs.mu.Lock()
	rs.dead = append(rs.dead, b)
	rs.mu.Unlock()
}

// addedLatency sums the live replicas' bot-added latency histograms: the
// posts that started within the bucket le, and all.
func (rs *replicaSet) addedLatency(le string) (within, all int) {
	bucket := regexp.MustCompile(`(?m)^picbot_added_latency_seconds_bucket\{le="` + regexp.QuoteMeta(le) + `"\} (\d+)`)
	count := regexp.MustCompile(`(?m)^picbot_added_latency_seconds_count (\d+)`)
	for _, addr := range rs.addrs {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if m := bucket.FindSubmatch(body); m != nil {
			n, _ := strconv.Atoi(string(m[1]))
			within += n
		}
		if m := count.FindSubmatch(body); m != nil {
			n, _ := strconv.Atoi(string(m[1]))
			all += n
		}
	}
	return within, all
}

// count counts a message in every replica's log, the killed ones' too.
func (rs *replicaSet) count(msg string) int {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	n := 0
	for _, b := range append(rs.procs, rs.dead...) {
		_, stderr := b.output()
		n += strings.Count(stderr, msg)
	}
	return n
}

func (rs *replicaSet) logs() string {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if d := os.Getenv("PICBOT_REPLICA_LOGS"); d != "" {
		for i, b := range append(rs.procs, rs.dead...) {
			_, stderr := b.output()
			_ = os.WriteFile(filepath.Join(d, fmt.Sprintf("replica-%d.log", i)), []byte(stderr), 0o600)
		}
	}
	var s strings.Builder
	for i, b := range rs.procs {
		_, stderr := b.output()
		fmt.Fprintf(&s, "--- replica %d\n%s\n", i, crashTail(stderr, 6000))
	}
	return s.String()
}

// post sends update to replica first, and on to the next ones while a
// replica does not answer 200: Telegram sends again what was not answered.
func (rs *replicaSet) post(ctx context.Context, first int, update []byte) error {
	for try := 0; ctx.Err() == nil; try++ {
		addr := rs.addrs[(first+try)%len(rs.addrs)]
		cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		code, err := rs.fake.PostWebhook(cctx, "http://"+addr+"/telegram/hook", replicaSecret, update)
		cancel()
		if err == nil && code == 200 {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return ctx.Err()
}

func privateDraw(updateID, user, messageID int, text string) []byte {
	return fmt.Appendf(nil, `{"update_id": %d, "message": {"message_id": %d, "date": 1700000000,
		"from": {"id": %d, "is_bot": false, "first_name": "U%d", "language_code": "en"},
		"chat": {"id": %d, "first_name": "U%d", "type": "private"},
		"text": %q}}`, updateID, messageID, user, user, user, user, text)
}

// Pool sizes in the replica tests (see start for the budget).
const (
	replicaConns = 8 // each replica's pool
	testConns    = 4 // the test's own store, which only reads (takeover watchers at once)
)

func (rs *replicaSet) open(ctx context.Context) *pgstore.DB {
	db, err := pgstore.Open(ctx, rs.url, pgstore.Options{MaxConns: testConns})
	if err != nil {
		rs.t.Fatal(err)
	}
	rs.t.Cleanup(func() { db.Close() })
	return db
}

// TestReplicasKill: jobs made on every replica, their callbacks landing on
// another; one replica is SIGKILLed mid-run and restarted. Every command
// gets its picture, none is charged twice, and at most one post per kill
// is a duplicate.
func TestReplicasKill(t *testing.T) {
	for _, tc := range []struct {
		name     string
		replicas int
		restart  bool
	}{{"ThreeRestarted", 3, true}, {"TwoNotRestarted", 2, false}} {
		t.Run(tc.name, func(t *testing.T) { testReplicasKill(t, tc.replicas, tc.restart) })
	}
}

// testReplicasKill: with two replicas, the survivor's callbacks go to the
// dead one (its public_url) until it is back, so those jobs end by polling.
func testReplicasKill(t *testing.T, replicas int, restart bool) {
	const jobs = 45
	rs := newReplicaSet(t, replicas, "  default: {daily: 100, concurrent: 50, every: 1ms, burst: 1000}")
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	defer func() {
		if t.Failed() {
			t.Log(rs.logs())
		}
	}()
	var wg sync.WaitGroup
	kills := 0
	var takeover time.Duration
	for i := range jobs {
		if i == jobs/2 {
			claimedBefore := rs.count("claimed unfinished jobs")
			rs.kill(1)
			killed := time.Now()
			kills++
			wg.Go(func() {
				for time.Since(killed) < 30*time.Second {
					if rs.count("claimed unfinished jobs") > claimedBefore {
						takeover = time.Since(killed)
						return
					}
					time.Sleep(20 * time.Millisecond)
				}
			})
			wg.Go(func() {
				if !restart {
					return
				}
				time.Sleep(2 * time.Second)
				rs.start(1)
			})
		}
		wg.Go(func() {
			if err := rs.post(ctx, i%replicas, privateDraw(7000+i, 1000+i, 10+i, fmt.Sprintf("/draw a lighthouse number %d", i))); err != nil {
				t.Errorf("update %d never taken: %v", i, err)
			}
		})
		time.Sleep(60 * time.Millisecond)
	}
	wg.Wait()
	killedAt := time.Now()

	photos := func() map[int]int {
		got := map[int]int{}
		for _, c := range rs.fake.Calls("sendPhoto") {
			if c.Status != 200 {
				continue
			}
			chat, _ := strconv.Atoi(c.Params["chat_id"])
			got[chat]++
		}
		return got
	}
	for ctx.Err() == nil && len(photos()) < jobs {
		time.Sleep(100 * time.Millisecond)
	}
	got := photos()
	if len(got) < jobs {
		var missing []int
		for i := range jobs {
			if got[1000+i] == 0 {
				missing = append(missing, 1000+i)
			}
		}
		db := rs.open(context.Background())
		left, _ := db.Unfinished(context.Background())
		for _, j := range left {
			holder, until, _ := db.LeaseHolder(context.Background(), j.ID)
			t.Logf("unfinished %s chat %s: %s task %q pending %d next %s callback %v submitting %v; lease %q until %s",
				j.ID, j.Chat.ChatID, j.State, j.TaskID, len(j.Pending), j.NextAt.Format(time.StampMilli), j.Callback, j.Submitting != nil, holder, until.Format(time.StampMilli))
		}
		t.Fatalf("%d of %d commands got their picture; missing chats %v", len(got), jobs, missing)
	}
	t.Logf("all %d delivered %s after the last update; the killed replica's jobs claimed %s after the kill",
		jobs, time.Since(killedAt).Round(100*time.Millisecond), takeover.Round(10*time.Millisecond))
	if takeover == 0 || takeover > 10*time.Second {
		t.Errorf("takeover after %s, want within 10 s (0: the killed replica's jobs were never claimed)", takeover)
	}
	if n := rs.count("callback for a job another replica holds"); n == 0 {
		t.Error("no callback was applied on a replica other than the job's holder")
	}
	within, all := rs.addedLatency("0.1")
	t.Logf("bot-added latency (vendor done, by a callback on another replica, to the post starting): %d of %d posts within 100 ms on the replicas alive at the end", within, all)
	dups := 0
	for _, n := range got {
		dups += n - 1
	}
	if dups > kills {
		t.Errorf("%d duplicate posts for %d kills", dups, kills)
	}
	db := rs.open(ctx)
	// Settled: every job delivered, each user charged exactly once, nobody running.
	deadline := time.Now().Add(30 * time.Second)
	var unfinished []*engine.Job
	for {
		var err error
		if unfinished, err = db.Unfinished(ctx); err != nil {
			t.Fatal(err)
		}
		if len(unfinished) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if len(unfinished) > 0 {
		t.Errorf("%d jobs unfinished after every picture was posted", len(unfinished))
	}
	_ = db.View(ctx, func(c engine.Counters) error {
		users := 0
		c.Scan("d:u:telegram:", func(key string, v int64) {
			users++
			if v != 1 {
				t.Errorf("%s = %d: charged %d times", key, v, v)
			}
		})
		if users != jobs {
			t.Errorf("%d users charged, want %d", users, jobs)
		}
		c.Scan("r:u:", func(key string, v int64) { t.Errorf("%s = %d still running", key, v) })
		return nil
	})
	for i := range jobs {
		js, err := db.JobsByOwner(ctx, engine.UserRef{Platform: "telegram", ID: strconv.Itoa(1000 + i)}, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(js) != 1 || js[0].State != engine.StateDelivered {
			t.Errorf("user %d: %d jobs, want 1 delivered", 1000+i, len(js))
		}
	}
}

// TestReplicasReservations: 1,000 commands at once from one user, spread
// over three replicas, against a daily quota of 20: exactly 20 jobs.
func TestReplicasReservations(t *testing.T) {
	const replicas, commands, daily = 3, 1000, 20
	rs := newReplicaSet(t, replicas, fmt.Sprintf("  default: {daily: %d, concurrent: 1000, every: 1ms, burst: 5000}", daily))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	defer func() {
		if t.Failed() {
			t.Log(rs.logs())
		}
	}()
	var wg sync.WaitGroup
	var next atomic.Int64
	for range 60 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= commands {
					return
				}
				if err := rs.post(ctx, i%replicas, privateDraw(90000+i, 777, 100+i, fmt.Sprintf("/draw a crowd, take %d", i))); err != nil {
					t.Errorf("update %d: %v", i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	db := rs.open(ctx)
	js, err := db.JobsByOwner(ctx, engine.UserRef{Platform: "telegram", ID: "777"}, 2*commands)
	if err != nil {
		t.Fatal(err)
	}
	if len(js) != daily {
		t.Errorf("%d jobs admitted, want exactly %d", len(js), daily)
	}
	_ = db.View(ctx, func(c engine.Counters) error {
		var used int64
		c.Scan("d:u:telegram:777:", func(_ string, v int64) { used += v })
		if used != daily {
			t.Errorf("quota used %d, want %d", used, daily)
		}
		return nil
	})
}

// TestReplicasPollingLeader: in polling mode one replica at a time asks
// getUpdates, the holder of the lead; killed, another leads within seconds
// and the next command is answered.
func TestReplicasPollingLeader(t *testing.T) {
	rs := newReplicaSetMode(t, 2, "  default: {daily: 100, concurrent: 50, every: 1ms, burst: 1000}", "  mode: polling\n")
	defer func() {
		if t.Failed() {
			t.Log(rs.logs())
		}
	}()
	leader := func() int {
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			for i, b := range rs.procs {
				if _, stderr := b.output(); strings.Contains(stderr, `msg=leading singleton=telegram`) {
					return i
				}
			}
		}
		t.Fatal("no replica leads")
		return -1
	}
	first := leader()
	for i, b := range rs.procs {
		if _, stderr := b.output(); i != first && strings.Contains(stderr, `msg=leading singleton=telegram`) {
			t.Fatalf("replicas %d and %d both lead", first, i)
		}
	}
	photo := func(chat int) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if _, err := rs.fake.Wait(ctx, sent("sendPhoto", "chat_id", strconv.Itoa(chat))); err != nil {
			t.Fatalf("no picture for chat %d", chat)
		}
	}
	rs.fake.AddUpdate(privateDraw(0, 2001, 5, "/draw a kite")) // update_id 0: the fake assigns one
	photo(2001)
	rs.kill(first)
	killed := time.Now()
	rs.fake.AddUpdate(privateDraw(0, 2002, 6, "/draw a second kite"))
	photo(2002)
	t.Logf("after the leader's kill, the next command was answered in %s", time.Since(killed).Round(100*time.Millisecond))
}
