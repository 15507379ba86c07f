package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/picbot/picbot/engine"
)

// The check of several replicas: three replicas of the real binary
// on one PostgreSQL database behind a load balancer, 300 Telegram webhook
// commands, SIGKILLs of random replicas at seeded moments, each restarted.
//
//	PICBOT_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test?sslmode=disable \
//	  go test -run TestReplicasRandomKills -count=1 -v ./cmd/bot
//	PICBOT_REPLICA_SEED=N ...   # replay a seed's kill plan

// balancer is a loopback load balancer: each request goes to the next
// replica in turn, and on to the one after while a replica does not
// answer at all (dead), as a load balancer's health check would.
type balancer struct {
	srv   *httptest.Server
	addrs []string
	next  atomic.Uint64
	// served counts requests answered, by replica and path.
	mu     sync.Mutex
	served map[string]map[int]int
}

func newBalancer(t *testing.T, addrs []string) *balancer {
	lb := &balancer{addrs: addrs, served: map[string]map[int]int{}}
	client := &http.Client{Timeout: 20 * time.Second}
	lb.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		start := int(lb.next.Add(1))
		for try := range len(lb.addrs) {
			i := (start + try) % len(lb.addrs)
			req, err := http.NewRequestWithContext(r.Context(), r.Method, "http://"+lb.addrs[i]+r.URL.RequestURI(), bytes.NewReader(body))
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
			req.Header = r.Header.Clone()
			resp, err := client.Do(req)
			if err != nil {
				continue // down: the next one
			}
			reply, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			lb.mu.Lock()
			if lb.served[r.URL.Path] == nil {
				lb.served[r.URL.Path] = map[int]int{}
			}
			lb.served[r.URL.Path][i]++
			lb.mu.Unlock()
			for k, v := range resp.Header {
				w.Header()[k] = v
			}
			w.WriteHeader(resp.StatusCode)
			_, _ = w.Write(reply)
			return
		}
		http.Error(w, "no replica answers", http.StatusBadGateway)
	}))
	t.Cleanup(lb.srv.Close)
	return lb
}

// spread is how many requests each replica answered, over paths matching re.
func (lb *balancer) spread(re *regexp.Regexp) map[int]int {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	out := map[int]int{}
	for path, by := range lb.served {
		if re.MatchString(path) {
			for i, n := range by {
				out[i] += n
			}
		}
	}
	return out
}

var replicaIDRe = regexp.MustCompile(`msg="store: PostgreSQL".* replica=(\S+)`)

// replicaID is the lease owner name replica i's current process uses.
func (rs *replicaSet) replicaID(i int) string {
	rs.mu.Lock()
	b := rs.procs[i]
	rs.mu.Unlock()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if _, stderr := b.output(); replicaIDRe.MatchString(stderr) {
			return replicaIDRe.FindStringSubmatch(stderr)[1]
		}
	}
	rs.t.Fatalf("replica %d never named itself", i)
	return ""
}

// replicaKillSeed is PICBOT_REPLICA_SEED, else the clock's.
func replicaKillSeed(t *testing.T) uint64 {
	if s := os.Getenv("PICBOT_REPLICA_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("PICBOT_REPLICA_SEED: %v", err)
		}
		return n
	}
	return uint64(time.Now().UnixNano())
}

// percentile is the p-th percentile (nearest rank) of ds.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	k := int(float64(len(s))*p+0.999999) - 1
	return s[min(max(k, 0), len(s)-1)]
}

// Defects this test found, gated as the crash suite gates its own: when
// false, the check is printed as a known defect, not failed.
// replicasStuckFixed: a job left unfinished with its lease held (and
// renewed) by a live replica that no longer stepped it, about one run in
// three; fixed by giving back a lease held and not stepped at two renewals
// (engine.renew, TestLeaseHeldNotStepped). Then one run in five left a job
// succeeded, its picture posted, whose holder's Telegram adapter answered
// "post later" (about 1 s) at every step for good: a chat's flood token
// given back was never restored (TestFloodNoRoomSpendsNothing), and a
// fallback after a refused request needed room of its own
// (TestDeliverRepeatedOnDrainedChat). Both fixed. Then one run beside a
// load test saturating the same PostgreSQL left 64 jobs succeeded on one
// restarted live replica for 30-40 s after their callbacks: no lost
// wake-up (the holder had downloaded each result, a step after its
// callback), but the replica's one post lane. The balancer sends a dead
// replica's share to the next, so one replica posts about half the
// results, one after another; under load a hold (the upload and its note)
// took 3 ms to 1 s, and the deliveries behind a slow one were told to come
// back seconds later (up to 5 s) while the holds after it took
// milliseconds: the lane stood idle 24-60% of the time while up to 52
// results waited. A lane freed with nobody in line now calls back the
// first delivery told to wait (engine.Waker on the notifier;
// TestLaneCallsBackTold, TestReleaseCallsBackTold). replicasLostFixed: commands
// whose webhook update was answered 200 and made no job (33 in a run when
// the shared PostgreSQL ran out of connections); fixed by refusing an
// update whose job the store could not record (engine.ErrNotRecorded,
// TestWebhookStoreDown). replicasResubmitFixed: ShowAPI tasks made again
// (1–9 a run): the callback for a dead replica's lost submission landed on
// a replica not holding the job and was dropped, and the taker's list
// search came too late to reach the task; fixed by noting the callback's
// task on the marker (TestLeaseCallbackNamesDeadHoldersTask).
const (
	replicasLostFixed     = true
	replicasStuckFixed    = true
	replicasResubmitFixed = true
)

// knownDefect fails the test when fixed, and otherwise logs the failure.
func knownDefect(t *testing.T, fixed bool, gate, format string, args ...any) {
	t.Helper()
	if fixed {
		t.Errorf(format, args...)
		return
	}
	t.Logf("KNOWN DEFECT (%s false): "+format, append([]any{gate}, args...)...)
}

// TestReplicasRandomKills: 300 commands through a load balancer over three
// replicas (webhook updates and vendor callbacks both spread by it), quotas
// on, and SIGKILLs of random replicas at seeded moments, each restarted a
// little later. Every accepted command gets its picture (0 lost), each user
// is charged once (0 double charges), at most one duplicate post per kill,
// vendor tasks made again within the crash suite's bound for the vendor
// (crashResubmitLimit), and a killed replica's unfinished jobs are held by
// another replica (or done) within 10 s of the kill, p99 over the kills.
func TestReplicasRandomKills(t *testing.T) {
	const (
		replicas = 3
		jobs     = 300
		kills    = 6
		every    = 40 * time.Millisecond // between commands: 12 s of intake
	)
	seed := replicaKillSeed(t)
	t.Logf("seed %d (replay with PICBOT_REPLICA_SEED=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))

	rs := newReplicaSetStopped(t, replicas, "  default: {daily: 1, concurrent: 1, every: 1ms, burst: 1000}", "")
	// ShowAPI's search for a task whose creation's answer a kill lost reads
	// find_pages pages of five, newest first, and it runs a lease (6–7.5 s)
	// after the kill: at 25 commands a second ~190 tasks are newer by then,
	// beyond the default 4 pages (README "More than one machine").
	rs.vendor += "    find_pages: 50\n"
	lb := newBalancer(t, rs.addrs)
	rs.public = lb.srv.URL
	rs.startAll()
	defer func() {
		if t.Failed() {
			t.Log(rs.logs())
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	db := rs.open(ctx)

	// The kill plan: one moment in each of kills equal slots of the intake,
	// at least 0.5 s from the slot's edges (so kills are ≥ 1 s apart), each
	// victim restarted 1–3 s after; a victim is a replica up at that moment.
	intake := time.Duration(jobs) * every
	slot := intake / kills
	var at []time.Duration
	for k := range kills {
		at = append(at, time.Duration(k)*slot+500*time.Millisecond+time.Duration(rng.Int64N(int64(slot-time.Second)+1)))
	}
	slices.Sort(at)
	type kill struct {
		at      time.Duration
		victim  int
		restart time.Duration
	}
	plan := make([]kill, len(at))
	downUntil := make([]time.Duration, replicas)
	for k, d := range at {
		var up []int
		for i := range replicas {
			if downUntil[i] <= d {
				up = append(up, i)
			}
		}
		v := up[rng.IntN(len(up))]
		r := time.Second + time.Duration(rng.Int64N(int64(2*time.Second)))
		plan[k] = kill{at: d, victim: v, restart: r}
		downUntil[v] = d + r + time.Second // up and listening again
	}
	for _, k := range plan {
		t.Logf("plan: kill replica %d at %s, restarted %s later", k.victim, k.at.Round(time.Millisecond), k.restart.Round(time.Millisecond))
	}

	var (
		wg        sync.WaitGroup
		tmu       sync.Mutex
		takeovers []time.Duration
		orphans   int // unfinished jobs the killed replicas held
	)
	began := time.Now()
	wg.Go(func() {
		// up[i] is closed once replica i is restarted after its last kill:
		// a kill late for its plan (the bookkeeping below takes seconds on
		// a loaded machine) must not find its victim still dead, whose
		// exit the test then waited for forever.
		up := map[int]chan struct{}{}
		for _, k := range plan {
			if d := time.Until(began.Add(k.at)); d > 0 {
				time.Sleep(d)
			}
			if ch := up[k.victim]; ch != nil {
				<-ch
			}
			id := rs.replicaID(k.victim)
			rs.kill(k.victim)
			killed := time.Now()
			// Restarted as planned after the kill, not after the bookkeeping.
			restarted := make(chan struct{})
			up[k.victim] = restarted
			wg.Go(func() {
				defer close(restarted)
				time.Sleep(k.restart)
				rs.start(k.victim)
			})
			held := map[string]bool{}
			left, err := db.Unfinished(ctx)
			if err != nil {
				t.Errorf("unfinished: %v", err)
			}
			for _, j := range left {
				if holder, _, err := db.LeaseHolder(ctx, j.ID); err == nil && holder == id {
					held[j.ID] = true
				}
			}
			tmu.Lock()
			orphans += len(held)
			tmu.Unlock()
			wg.Go(func() {
				// Taken over: every job it held is held by another replica, or finished.
				for len(held) > 0 && time.Since(killed) < 60*time.Second {
					for jid := range held {
						holder, _, err := db.LeaseHolder(ctx, jid)
						if err != nil {
							continue
						}
						if holder != "" && holder != id {
							delete(held, jid)
							continue
						}
						if js, err := db.Job(ctx, jid); err == nil && js.State.Terminal() {
							delete(held, jid)
						}
					}
					time.Sleep(50 * time.Millisecond)
				}
				took := time.Since(killed)
				if len(held) > 0 {
					t.Errorf("kill of replica %d: %d of its jobs not taken over in 60 s", k.victim, len(held))
				}
				tmu.Lock()
				takeovers = append(takeovers, took)
				tmu.Unlock()
			})
		}
	})
	var accepted atomic.Int64
	for i := range jobs {
		wg.Go(func() {
			u := privateDraw(50000+i, 100000+i, 10+i, fmt.Sprintf("/draw a harbour at dusk, number %d", i))
			for ctx.Err() == nil {
				cctx, ccancel := context.WithTimeout(ctx, 20*time.Second)
				code, err := rs.fake.PostWebhook(cctx, lb.srv.URL+"/telegram/hook", replicaSecret, u)
				ccancel()
				if err == nil && code == 200 {
					accepted.Add(1)
					return
				}
				time.Sleep(100 * time.Millisecond) // Telegram sends again what was not answered
			}
			t.Errorf("update %d never taken", i)
		})
		time.Sleep(every)
	}
	wg.Wait()
	intakeDone := time.Now()

	photos := func() map[int]int {
		got := map[int]int{}
		for _, c := range rs.fake.Calls("sendPhoto") {
			if c.Status == 200 {
				chat, _ := strconv.Atoi(c.Params["chat_id"])
				got[chat]++
			}
		}
		return got
	}
	wctx, wcancel := context.WithTimeout(ctx, 60*time.Second) // 60 s after the intake: a stuck job is not waited for longer
	defer wcancel()
	for wctx.Err() == nil && len(photos()) < jobs {
		time.Sleep(200 * time.Millisecond)
	}
	got := photos()
	var missing []int
	for i := range jobs {
		if got[100000+i] == 0 {
			missing = append(missing, 100000+i)
		}
	}
	if int(accepted.Load()) != jobs {
		t.Errorf("%d of %d updates accepted", accepted.Load(), jobs)
	}
	// Checked on a context of their own: a run that waited for posts to the end still reports.
	ctx, cancel2 := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel2()
	live := map[string]bool{}
	for i := range replicas {
		live[rs.replicaID(i)] = true
	}
	var lost, stuck []string
	for _, chat := range missing {
		js, _ := db.JobsByOwner(ctx, engine.UserRef{Platform: "telegram", ID: strconv.Itoa(chat)}, 10)
		if len(js) == 1 && !js[0].Finished() {
			holder, _, _ := db.LeaseHolder(ctx, js[0].ID)
			if live[holder] {
				stuck = append(stuck, fmt.Sprintf("%d (job %s %s, leased to live %s)", chat, js[0].ID, js[0].State, holder))
				continue
			}
		}
		lost = append(lost, strconv.Itoa(chat))
	}
	if len(lost) > 0 {
		replies := map[string][]string{}
		for _, c := range rs.fake.Calls("sendMessage", "editMessageText") {
			if slices.Contains(lost, c.Params["chat_id"]) {
				replies[c.Params["chat_id"]] = append(replies[c.Params["chat_id"]], c.Params["text"])
			}
		}
		knownDefect(t, replicasLostFixed, "replicasLostFixed", "lost: %d accepted commands without their picture, chats %v; what those chats were sent: %q", len(lost), lost, replies)
	}
	if len(stuck) > 0 {
		knownDefect(t, replicasStuckFixed, "replicasStuckFixed", "%d accepted commands without their picture, their jobs held by a live replica that does not step them: %v", len(stuck), stuck)
	}
	dups := 0
	for _, n := range got {
		dups += n - 1
	}
	if dups > kills {
		t.Errorf("%d duplicate posts for %d kills", dups, kills)
	}
	resub := rs.vfake.tasks() - jobs
	if bound := crashResubmitLimit(rs.vfake.name) * kills; resub > bound {
		knownDefect(t, replicasResubmitFixed, "replicasResubmitFixed", "%d tasks made again at %s for %d kills, want at most %d", resub, rs.vfake.name, kills, bound)
	}
	tmu.Lock()
	p99 := percentile(takeovers, 0.99)
	tmu.Unlock()
	if len(takeovers) != kills {
		t.Errorf("%d takeovers measured for %d kills", len(takeovers), kills)
	}
	if p99 > 10*time.Second {
		t.Errorf("takeover p99 %s, want within 10 s", p99)
	}
	hooks := lb.spread(regexp.MustCompile(`^/telegram/hook$`))
	callbacks := lb.spread(regexp.MustCompile(`^/callback/`))
	t.Logf("kills %d (jobs they held: %d), takeover p99 %s, all %v; duplicates %d; tasks made again %d (%s); delivered %d/%d, the last %s after the intake",
		kills, orphans, p99.Round(10*time.Millisecond), roundAll(takeovers), dups, resub, rs.vfake.name,
		jobs-len(missing), jobs, time.Since(intakeDone).Round(100*time.Millisecond))
	t.Logf("spread over the replicas: webhook updates %v, vendor callbacks %v; callbacks applied off the holder: %d",
		hooks, callbacks, rs.count("callback for a job another replica holds"))
	if len(callbacks) < 2 || len(hooks) < replicas {
		t.Errorf("not spread: webhook updates %v, callbacks %v", hooks, callbacks)
	}

	// Settled: each user charged exactly once, one delivered job each, nobody running.
	deadline := time.Now().Add(30 * time.Second)
	for {
		left, err := db.Unfinished(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			knownDefect(t, replicasStuckFixed, "replicasStuckFixed", "%d jobs unfinished after the posts", len(left))
			for _, j := range left {
				holder, until, _ := db.LeaseHolder(ctx, j.ID)
				t.Logf("unfinished %s chat %s: %s task %q pending %d next %s callback %v submitting %v; lease %q until %s",
					j.ID, j.Chat.ChatID, j.State, j.TaskID, len(j.Pending), j.NextAt.Format(time.StampMilli), j.Callback, j.Submitting != nil, holder, until.Format(time.StampMilli))
			}
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	_ = db.View(ctx, func(c engine.Counters) error {
		users := 0
		c.Scan("d:u:telegram:", func(key string, v int64) {
			users++
			if v != 1 {
				t.Errorf("%s = %d: charged %d times", key, v, v)
			}
		})
		if want := jobs - len(lost); users != want {
			t.Errorf("%d users charged, want %d (the %d lost made no job)", users, want, len(lost))
		}
		c.Scan("r:u:", func(key string, v int64) {
			knownDefect(t, replicasStuckFixed, "replicasStuckFixed", "%s = %d still running", key, v)
		})
		return nil
	})
	for i := range jobs {
		js, err := db.JobsByOwner(ctx, engine.UserRef{Platform: "telegram", ID: strconv.Itoa(100000 + i)}, 10)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case len(js) != 1:
			if len(js) == 0 && !replicasLostFixed {
				continue // counted among the lost above
			}
			t.Errorf("user %d: %d jobs, want 1", 100000+i, len(js))
		case js[0].State != engine.StateDelivered:
			knownDefect(t, replicasStuckFixed, "replicasStuckFixed", "user %d: job %s %s, want delivered", 100000+i, js[0].ID, js[0].State)
		}
	}
}

func roundAll(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(10 * time.Millisecond)
	}
	return out
}
