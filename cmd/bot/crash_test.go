package main

// The crash suite: the built binary against the fake Telegram Bot API (or
// Discord) and three fake vendors, killed with SIGKILL at chosen moments and
// restarted on the same data directory until every job is finished. Five
// setups run side by side: Callback (Zhiqite first, callbacks, commands with
// photos too), Polling (APISpace first, polling, the bot built with -race),
// ShowAPI (ShowAPI first, callbacks), Webhook (Telegram's webhook, Zhiqite
// first, polling) and Discord (HTTP interactions, APISpace first, callbacks:
// crash_discord_test.go, with its phases and the invariants that differ
// where Discord does); each first runs its commands once without a kill, for the
// billed calls per image a kill is compared with. Quotas are on, every
// limit exactly what the commands need: a charge counted twice or a
// running slot kept refuses a later command, which is then lost. Every process the
// bot talks to sits behind a recording proxy owned by the test, so a kill
// can be aimed at a phase of a job's life (a command taken in, its reply, a
// submission, a poll, a callback, a download, a post) and the test knows,
// afterwards, which process made which call. After each kill the bbolt file
// is read (the process is dead) and checked; at the end the whole history
// is checked against the promises in DESIGN.md:
//
//   - after every kill: each job's charge is settled as its state says and
//     at most once; the daily counters (user, chat, global) equal the costs
//     of the jobs not refunded, the running counters the jobs not settled;
//     the index of unfinished jobs is right; a command made at most one
//     job; a job acknowledged in the chat is in the store; a job is never
//     submitted twice to one vendor once its task id is saved; nothing a
//     previous kill left is undone;
//   - at the end: every command made one job, which the chat was told of,
//     and which ended delivered (its picture posted) or failed with a
//     notice in the chat, as its command's kind says: a crash decides no
//     outcome; no running counter is left;
//   - posts: a job's result is posted at most once per life, never after
//     the post was recorded, and a post left unrecorded only in a life
//     that was killed: so each duplicate is a kill between posting and
//     recording, at most one per job and kill;
//   - submissions: a task made at a vendor and not recorded only in a life
//     that was killed, at most one per job and kill; tasks made again, per
//     vendor, at most crashResubmitBound times the kills that landed in its
//     submit window (Zhiqite's tasks, whose ids the bot chooses, and
//     ShowAPI's, which its task list shows, are found again; APISpace's are
//     made anew);
//   - billed calls: without kills, the jobs' record equals the vendors'
//     count; with kills, the vendors' billed calls per delivered image,
//     less the calls a kill cut off, at most crashBilledSlack above the run
//     without, and with them at most crashBilledRawSlack above;
//   - the race detector found nothing in the lives of the -race build;
//   - every phase was hit by a kill;
//   - Discord (crash_discord_test.go), where an interaction is posted once
//     and never again: its phases are intake (Discord posting an
//     interaction and reading the deferred answer), edit (the original
//     response edited by token), post (a result by token) and late (a
//     result or notice to the channel once the token is gone), beside the
//     vendors' and the timer, each in the four modes. "Every command made
//     one job" becomes: an interaction answered with a deferred response
//     has, after every kill, its job in the store or its record as taken
//     in, and at the end a job delivered or failed with a notice; a command
//     makes at most one job over all its interactions; a command is lost
//     only when a kill interrupted its one post (the user sees "the
//     application did not respond"), at most one per kill; results go
//     both by token and late in every run with kills.
//
// Assertions held back by a defect another branch fixes are gated by
// constants the lead flips on merging: crashResubmitFixed,
// crashShowAPIBillFixed, crashOnePostPerKill.
//
//	go test -race -run Crash -count=1 -v ./cmd/bot                        # CI form: 250 jobs, 70 kills (ShowAPI's and Webhook's shares 200 and 56: minJobs)
//	go test -race -run Crash -count=1 -v -short ./cmd/bot                 # 250 jobs, 55 kills
//	PICBOT_CRASH_JOBS=2000 go test -run Crash -count=1 -v -timeout 2h ./cmd/bot   # the long run
//	go test -run Crash -v ./cmd/bot -crash.seed=N   # or PICBOT_CRASH_SEED=N: replay a seed
//	PICBOT_CRASH_BILLDEBUG=1 PICBOT_CRASH_LOGS=1 go test -run Crash/Polling -v ./cmd/bot   # each extra billed call, every life's log
//
// A seed fixes the commands, the vendors' failures and the kill plans with
// their delays. The interleaving of processes is the machine's: a replay
// aims the same kills at the same phases, not at the same instant, and
// once a kill misses its phase (it falls back to a timer) the later plans,
// which prefer phases not hit yet, may differ.

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"hash/fnv"
	"io"
	"maps"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/picbot/picbot/bots/discord"
	"github.com/picbot/picbot/bots/telegram"
	"github.com/picbot/picbot/bots/telegram/telegramtest"
	"github.com/picbot/picbot/engine"
	"github.com/picbot/picbot/engine/apispace/apispacetest"
	"github.com/picbot/picbot/engine/showapi/showapitest"
	"github.com/picbot/picbot/engine/zhiqite/zhiqitetest"
	"github.com/picbot/picbot/store"
)

var crashSeedFlag = flag.Uint64("crash.seed", 0, "TestCrashSuite: the seed to replay (0: PICBOT_CRASH_SEED, else from the clock)")

// crashPhase is a moment of a job's life a kill can be aimed at.
type crashPhase string

const (
	phaseIntake   crashPhase = "intake"   // getUpdates handed the bot a batch of commands: jobs being created
	phaseAck      crashPhase = "ack"      // the "Job X queued" reply to a command
	phaseSubmit   crashPhase = "submit"   // a submission to a vendor
	phasePoll     crashPhase = "poll"     // a query to a vendor
	phaseCallback crashPhase = "callback" // a vendor's callback to the bot
	phaseDownload crashPhase = "download" // the bot fetching a result image
	phasePost     crashPhase = "post"     // the bot posting a result to the chat
	phaseInput    crashPhase = "input"    // the bot fetching a command's photo from Telegram
	phaseTimer    crashPhase = "timer"    // a random moment, whatever is under way
)

// crashMode is when, around the call of its phase, the kill comes.
type crashMode int

const (
	killBefore     crashMode = iota + 1 // the call never reaches the other side
	killDuring                          // the call goes on; the bot dies a moment later, in the middle of it
	killAfter                           // the other side acted on the call; the bot dies before hearing the answer
	killAfterReply                      // the bot has the answer; it dies a moment later, acting on it
)

func (m crashMode) String() string {
	return [...]string{"-", "before", "during", "after", "after-reply"}[m]
}

// crashPlan is one process's death: at the nth call of phase, in mode.
type crashPlan struct {
	phase crashPhase
	nth   int
	mode  crashMode
	delay time.Duration // during, after-reply: how long after; timer: when
	limit time.Duration // no such call by then: killed anyway (a timer kill)
}

// crashKill is a kill that happened.
type crashKill struct {
	epoch   int
	planned crashPhase
	phase   crashPhase // phaseTimer when the planned call never came
	mode    crashMode
	detail  string
	states  map[string]int // unfinished jobs by state, read after the kill
	// What the kill cost: posts made and not recorded, submissions made and not recorded.
	duplicates, unsaved int
	duplicated          []string // the jobs whose posts were made and not recorded
	at                  time.Time
}

// crashCall is one call through a proxy.
type crashCall struct {
	epoch  int // the bot process that was current when the call arrived
	proxy  string
	phase  crashPhase
	method string // Telegram method or vendor endpoint
	job    string // the job it concerns, when the call names it
	token  string // the command token in a submission's prompt
	status int    // the other side's HTTP status; 0: not forwarded
	// created: a submission that made a task at the vendor; taskID names it.
	created bool
	taskID  string
	killed  crashMode // this call was where the bot was killed
	// billed: a vendor's API call its fake bills; done: a poll whose answer
	// names a result (see crashBillOf).
	billed, done bool
	sent, at     time.Time // when the call reached the proxy, and when its answer came back
	reply        string    // the start of a vendor's answer, with PICBOT_CRASH_BILLDEBUG
}

// crashCmd is one command sent to the bot.
type crashCmd struct {
	user     int64
	msgID    int
	updateID int
	token    string
	kind     string // plain, album, zap, drop, unsafe, stale
	text     string
}

// Kinds of commands. zap and drop fail at the route's first vendor (the task
// fails; the vendor forgets it), so the job fails over to the second;
// unsafe fails the content check; stale results cannot be downloaded.
var crashKinds = []struct {
	kind   string
	weight int
	word   string
}{
	{"plain", 52, ""}, {"album", 10, "--n 2"}, {"zap", 12, "zapfirst"}, {"drop", 8, "dropfirst"},
	{"unsafe", 9, "unsafe"}, {"stale", 9, "stalelinks"},
}

// Kinds of commands with photos, in the setups with images: /draw with a
// photo as its reference, /upscale of a photo, /swapface of a photo (the
// face) in reply to another (the target).
var crashImageKinds = []struct {
	kind   string
	weight int
	word   string
}{{"img2img", 14, ""}, {"upscale", 12, ""}, {"swapface", 10, ""}}

const (
	crashFaceFile   = "CRASH-FACE"
	crashTargetFile = "CRASH-TARGET"
)

// crashResubmitFixed is flipped by the lead when the branch that makes a
// kill between a submission and its record cost no second task (resubmit)
// is merged: until then every vendor is held to today's bound, one task
// per kill that landed in its submit window.
const crashResubmitFixed = true

// crashResubmitBound is, per vendor, how many tasks beyond the recorded ones
// each kill landing between the vendor's answer to a submission and the
// job's store write may cost. Zhiqite's task ids are the bot's own: it
// finds its task again, always. ShowAPI's task list shows every task the
// vendor still knows, and the search finds it: none made again. A task
// ShowAPI forgot (the drop commands) is in no list, so its job cannot
// tell it from a submission that never arrived, and submits once more:
// those are counted apart (crashForgotten), held to APISpace's bound.
// APISpace cannot be asked at all, at most one new task per such kill.
var crashResubmitBound = map[string]int{"zhiqite": 0, "showapi": 0, "apispace": 1, crashForgotten: 1}

// crashForgotten counts, beside the vendors, tasks made again at ShowAPI
// for a job whose ShowAPI tasks the fake forgot; its submit windows are ShowAPI's.
const crashForgotten = "showapi-forgotten"

// crashResubmissions says, for one job, at which vendors its extra tasks
// (made and never recorded) were made. Each is a task a vendor made again
// after a kill in that vendor's submit window, so a vendor is charged at
// most its tasks beyond the first and at most its windows: a job can go to
// one vendor twice on purpose (a task the vendor failed, tried again), and
// those tasks are recorded. When that still names more than extra tasks,
// the vendors that cannot be asked (bound 1) are relieved first, so a
// vendor held to 0 is never let off by the attribution.
func crashResubmissions(tasks []crashCall, windows map[string]int, extra int) map[string]int {
	made := map[string]int{}
	for _, c := range tasks {
		made[c.proxy]++
	}
	out := map[string]int{}
	total := 0
	for v, n := range made {
		if k := min(n-1, windows[v]); k > 0 {
			out[v] = k
			total += k
		}
	}
	vendors := slices.Sorted(maps.Keys(out))
	slices.SortStableFunc(vendors, func(a, b string) int { return crashResubmitLimit(b) - crashResubmitLimit(a) })
	for _, v := range vendors {
		for total > extra && out[v] > 0 {
			out[v]--
			total--
		}
	}
	return out
}

func (r *crashResult) addResubmissions(byVendor map[string]int) {
	for v, n := range byVendor {
		r.resubByVendor[v] += n
	}
}

func crashResubmitLimit(vendor string) int {
	if !crashResubmitFixed {
		return 1
	}
	return crashResubmitBound[vendor]
}

// crashBilledSlack bounds the billed calls per delivered image of a run
// with kills against the same commands without: more by at most 10%, not
// counting the calls a kill cut off and the bot never learned of (the
// vendor answered and billed, and the bot died before it could record the
// answer, and no later life found it: a poll's answer, a task made again;
// one per job whose call was in flight, which no design can save; a kill
// often catches several jobs' calls at once). A cut-off submission whose
// task a later life found (by a callback, by Zhiqite's id, in ShowAPI's
// list) is in its job's record and counts: it made the job's task, and the
// lookup that found it is what the kill added. (Until stop 25 every call
// in flight at a kill was left out, found or not, which flattered the
// setups that find lost tasks by up to 8 points.) Fewer is no fault: a
// task that finished while the bot was down costs one poll instead of
// several. The raw figure, those calls
// included, is held to crashBilledRawSlack against a runaway. Measured on
// main with 14 kills in 50 jobs a setup: raw Polling +24%, Webhook +16%,
// Discord +8%, ShowAPI +8% to +23%, Callback +27% to +35%; without the
// calls cut off, -8% to +15% (Zhiqite's duplicate-id answers and ShowAPI's
// task-list pages make the rest). The aim is 10%; the bound holds
// today's worst with room, until those are cut.
//
// crashBilledFixed asserts the 10% bound, in every setup. Cut since
// (issue 11): ShowAPI's lost-create searches share one sweep of the task
// list and end at the first page older than the submission by the
// vendor's clock (its Date header); a finished record a page shows
// answers its poll; Zhiqite is asked for a lost task by its id once its
// first poll would be due, not sent it again; and the calls no job names
// (list pages) a kill cut off are settled per life. Then the fakes' tasks
// were made to end at one of the bot's polls, by command (see
// crashQueue): the run without kills had swung by a quarter with the
// machine's load, and with it every setup's figure. Eight runs after
// that (load average 3-8, beside other tests): Webhook -4.1% to +2.2%
// (median 0.0%), Callback -10.0% to +6.2% (median -3.2%), Polling -12.2%
// to +4.5% (median -0.7%), Discord -12.7% to -0.2%, asserted; ShowAPI
// (fifteen runs, with the lost-task fixes of its search) -12.1% to +14.8%
// (median +4.6%), then gated. Stop 25 counts the calls found again (see
// above): six full runs, Webhook +1.0% to +3.0%, Callback 0.0% to +7.7%
// (+15.0% once, beside the race-built tests of every package), Polling
// -0.7% to +1.3%, Discord -3.1% to +0.8%; and ShowAPI, after its restart
// polls were cut (they came a few ms before the vendor's retried
// callback) and its searches of the task list made shorter, over 22 runs
// of 50 jobs 0.0% to +12.3% (median +3%), over six of 200 jobs (its
// minJobs) +3.8% to +6.4% (median +4.4%): asserted.
const (
	crashBilledFixed    = true
	crashBilledSlack    = 0.10
	crashBilledRawSlack = 2.0
)

// crashOnePostPerKill asks for at most one duplicate post per kill, in all
// and from any one kill, not only one per job and kill (always checked):
// a post and its record hold one of the bot's post lanes
// (telegram.post_lanes, 1 by default), so no two jobs' posts are made and
// unrecorded at once. Before the lanes, a kill amid the posts of several
// jobs repeated each of them (seen: 13 duplicates in 11 kills, 5 in one).
const crashOnePostPerKill = true

// crashShowAPIBillFixed is flipped by the lead when the bot's record of
// ShowAPI's billed calls matches the fake's count (issue 11, defect 6):
// in a run without kills the two must be equal for every vendor; until
// then ShowAPI's are printed, not checked.
const crashShowAPIBillFixed = true

// crashSetup is one run's configuration.
type crashSetup struct {
	name      string
	tag       string // in every command token of the run
	callbacks bool
	route     []string
	album     string // the vendor that makes albums (--n 2)
	race      bool   // the bot built with the race detector
	webhook   bool   // Telegram posts updates to the bot (telegram.mode webhook)
	images    bool   // commands with photos too (crashImageKinds)
	discord   bool   // commands are Discord HTTP interactions (crash_discord_test.go), not Telegram updates
	jobs      int
	kills     int
	// minJobs: the setup runs at least this many jobs, with its kills
	// scaled alike (the same kills a job), where its billed figure needs
	// more calls to be measured than the suite's share gives it.
	minJobs int
	seed    uint64
	apWork  time.Duration // the APISpace fake's task time
	wait    time.Duration // for the last jobs after the last kill
}

// crashResult is what a run counted.
type crashResult struct {
	jobs, accepted, kills int
	// Violations: jobs lost, jobs whose outcome a crash decided, double charges.
	lost, unexpected, doubleCharges int
	// The allowances: posts repeated after a kill between posting and
	// recording; tasks made at a vendor for a submission a kill left unrecorded.
	duplicatePosts, resubmissions, unsavedAtKill int
	// Per vendor: tasks made beyond the recorded ones, and kills that landed
	// in a submit window (the vendor had made the task, the job had not saved it).
	resubByVendor, windowByVendor map[string]int
	images                        int // images delivered
	maxDuplicates, maxUnsaved     int // the most one kill caused (of different jobs)
	botBilled, vendorBilled       int // billed calls, as the jobs record them and as the vendors count them
	lateCalls                     int // calls of a dead bot that arrived after its death
	byPhase                       map[crashPhase]int
	byMode                        map[crashMode]int
	states                        map[string]int // unfinished jobs at the kills, by state
	outcomes                      map[string]int
	calls                         map[string]int // calls through the proxies, by phase and answer
	bill                          crashBill      // the billed calls, by what they were for
}

func newCrashResult() crashResult {
	return crashResult{byPhase: map[crashPhase]int{}, byMode: map[crashMode]int{}, states: map[string]int{}, outcomes: map[string]int{}, calls: map[string]int{},
		resubByVendor: map[string]int{}, windowByVendor: map[string]int{}}
}

func TestCrashSuite(t *testing.T) {
	seed := *crashSeedFlag
	if seed == 0 {
		if s := os.Getenv("PICBOT_CRASH_SEED"); s != "" {
			n, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				t.Fatalf("PICBOT_CRASH_SEED=%q: %v", s, err)
			}
			seed = n
		}
	}
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	jobs, kills := 250, 70 // 50 jobs and 14 kills a setup
	if testing.Short() {
		kills = 55 // 11 a setup: enough for each of its phases (up to 9) to be hit
	}
	if s := os.Getenv("PICBOT_CRASH_JOBS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 2 {
			t.Fatalf("PICBOT_CRASH_JOBS=%q: want a number of jobs", s)
		}
		jobs, kills = n, max(kills, n/4)
	}
	if s := os.Getenv("PICBOT_CRASH_KILLS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 2 {
			t.Fatalf("PICBOT_CRASH_KILLS=%q: want a number of kills", s)
		}
		kills = n
	}
	t.Logf("crash suite: seed %d, %d jobs, %d kills (replay: -crash.seed=%d or PICBOT_CRASH_SEED=%d)", seed, jobs, kills, seed, seed)
	fmt.Fprintf(os.Stderr, "crash suite seed %d\n", seed)

	rng := rand.New(rand.NewPCG(seed, 0x6372617368))
	setups := []crashSetup{
		// Callbacks through http.public_url; Zhiqite first, APISpace for failover.
		{name: "Callback", tag: "A", callbacks: true, route: []string{"zhiqite", "apispace"}, album: "zhiqite", images: true},
		// Polling; APISpace first, Zhiqite for failover (and for albums, which
		// APISpace cannot make). The bot is built with the race detector.
		{name: "Polling", tag: "B", callbacks: false, route: []string{"apispace", "zhiqite"}, album: "zhiqite", race: true},
		// Callbacks; ShowAPI first, APISpace for failover. Its bill is 1.1-1.5
		// calls an image, so among 50 jobs one search of the task list (2-6
		// pages) moves the figure by up to 8%: over 22 runs of 50 jobs the
		// same code measured 0.0% to +12.3% (median +3%); over six of 200
		// jobs and 56 kills, +3.8% to +6.4% (median +4.4%).
		{name: "ShowAPI", tag: "C", callbacks: true, route: []string{"showapi", "apispace"}, album: "showapi", minJobs: 200},
		// Telegram's webhook; polling; Zhiqite first, APISpace for failover.
		// Its run without kills swings by 5% with the machine's load (179 to
		// 189 calls for the same commands), and counted honestly its figure
		// sat at +1% to +8%: +12.3% once in CI. Over 200 jobs the swing is
		// a quarter of the calls' worth less.
		{name: "Webhook", tag: "D", callbacks: false, route: []string{"zhiqite", "apispace"}, album: "zhiqite", webhook: true, minJobs: 200},
		// Discord HTTP interactions; callbacks; APISpace first, Zhiqite for
		// failover and albums.
		{name: "Discord", tag: "E", callbacks: true, route: []string{"apispace", "zhiqite"}, album: "zhiqite", discord: true},
	}
	total := newCrashResult()
	for i := range setups {
		s := &setups[i]
		s.jobs = jobs / len(setups)
		if i == 0 {
			s.jobs += jobs % len(setups)
		}
		s.kills = kills / len(setups)
		if i == 0 {
			s.kills += kills % len(setups)
		}
		if s.minJobs > 0 && s.jobs > 0 && s.jobs < s.minJobs {
			f := (s.minJobs + s.jobs - 1) / s.jobs
			s.jobs, s.kills = s.jobs*f, s.kills*f
		}
		s.seed = rng.Uint64()
		s.apWork = time.Duration(150+rng.IntN(500)) * time.Millisecond
		s.wait = 90*time.Second + time.Duration(s.jobs)*100*time.Millisecond
	}
	var mu sync.Mutex
	for _, s := range setups {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			// The same commands without a kill: what the vendors bill per image
			// when nothing goes wrong.
			calm := s
			calm.name, calm.kills, calm.wait = s.name+" without kills", 0, s.wait/2
			base := crashRunSetup(t, calm)
			if t.Failed() {
				return
			}
			if base.botBilled != base.vendorBilled {
				if s.route[0] != "showapi" || crashShowAPIBillFixed {
					t.Errorf("%s without kills: the jobs record %d billed calls, the vendors counted %d", s.name, base.botBilled, base.vendorBilled)
				} else {
					t.Logf("%s without kills: the jobs record %d billed calls, the vendors counted %d (not checked: crashShowAPIBillFixed)", s.name, base.botBilled, base.vendorBilled)
				}
			}
			res := crashRunSetup(t, s)
			b, k := base.billedPerImage(), res.billedPerImage()
			// The calls a kill cut off and the bot never learned of: billed,
			// and held by no job's record. A cut-off submission whose task the
			// bot found again is in its job's record and counts: it made the
			// job's task, and only the lookup that found it was added.
			lost := res.vendorBilled - res.botBilled
			if lost < 0 {
				t.Errorf("%s: the jobs record %d billed calls, the vendors counted %d", s.name, res.botBilled, res.vendorBilled)
			}
			kept := 0.0 // k without the calls lost in kills
			if res.images > 0 {
				kept = float64(res.vendorBilled-max(lost, 0)) / float64(res.images)
			}
			t.Logf("%s: billed calls per delivered image: %.3f without kills (%d calls, %d images), %.3f with %d kills (%d calls, %d images): %+.1f%%; without the %d calls the kills cut off and the bot never learned of, %.3f: %+.1f%%",
				s.name, b, base.vendorBilled, base.images, k, res.kills, res.vendorBilled, res.images, 100*(k-b)/b,
				lost, kept, 100*(kept-b)/b)
			added, saved, costlier := crashExcess(base.bill.perToken, res.bill.perToken)
			t.Logf("%s: billed calls without kills: %v", s.name, base.bill)
			t.Logf("%s: billed calls with kills: %v; against the same commands without kills: %d calls added (in %d commands), %d saved",
				s.name, res.bill, added, costlier, saved)
			switch over := kept > (1+crashBilledSlack)*b; {
			case b == 0 || crashBilledFixed && over:
				t.Errorf("%s: billed calls per delivered image %.3f with kills (the calls the kills cut off left out), %.3f without: more than %.0f%% more", s.name, kept, b, 100*crashBilledSlack)
			case over:
				t.Logf("%s: more than %.0f%% more, not asserted (crashBilledFixed)", s.name, 100*crashBilledSlack)
			}
			if k > (1+crashBilledRawSlack)*b {
				t.Errorf("%s: billed calls per delivered image %.3f with kills, %.3f without: more than %.0f%% more", s.name, k, b, 100*crashBilledRawSlack)
			}
			mu.Lock()
			defer mu.Unlock()
			total.add(res)
		})
	}
	t.Cleanup(func() {
		t.Logf("crash suite, seed %d: %s", seed, total.summary())
	})
}

func (r *crashResult) add(o crashResult) {
	r.jobs += o.jobs
	r.accepted += o.accepted
	r.kills += o.kills
	r.lost += o.lost
	r.unexpected += o.unexpected
	r.doubleCharges += o.doubleCharges
	r.duplicatePosts += o.duplicatePosts
	r.resubmissions += o.resubmissions
	r.images += o.images
	for k, v := range o.resubByVendor {
		r.resubByVendor[k] += v
	}
	for k, v := range o.windowByVendor {
		r.windowByVendor[k] += v
	}
	r.unsavedAtKill += o.unsavedAtKill
	r.maxDuplicates = max(r.maxDuplicates, o.maxDuplicates)
	r.maxUnsaved = max(r.maxUnsaved, o.maxUnsaved)
	r.botBilled += o.botBilled
	r.lateCalls += o.lateCalls
	r.vendorBilled += o.vendorBilled
	r.bill.add(o.bill)
	for k, v := range o.byPhase {
		r.byPhase[k] += v
	}
	for k, v := range o.calls {
		r.calls[k] += v
	}
	for k, v := range o.byMode {
		r.byMode[k] += v
	}
	for k, v := range o.states {
		r.states[k] += v
	}
	for k, v := range o.outcomes {
		r.outcomes[k] += v
	}
}

func (r *crashResult) summary() string {
	return fmt.Sprintf("jobs %d (accepted %d), kills %d, lost %d, crash-caused failures %d, double charges %d, duplicate posts %d (at most %d jobs' in one kill), "+
		"resubmissions %d (submissions unsaved at a kill %d, at most %d in one kill); billed calls: jobs' record %d, vendors %d (%d lost in kills); "+
		"kills by phase %v, by mode %v; unfinished jobs at kills by state %v; outcomes %v; calls by phase and status %v; "+
		"calls of a dead bot arriving in a later life %d; resubmissions by vendor %v, kills in a submit window by vendor %v; images delivered %d, billed calls per image %.3f",
		r.jobs, r.accepted, r.kills, r.lost, r.unexpected, r.doubleCharges, r.duplicatePosts, r.maxDuplicates,
		r.resubmissions, r.unsavedAtKill, r.maxUnsaved, r.botBilled, r.vendorBilled, r.vendorBilled-r.botBilled,
		crashSorted(r.byPhase), crashSorted(r.byMode), crashSorted(r.states), crashSorted(r.outcomes), crashSorted(r.calls), r.lateCalls,
		crashSorted(r.resubByVendor), crashSorted(r.windowByVendor), r.images, r.billedPerImage())
}

// billedPerImage is the vendors' billed calls per image delivered.
func (r *crashResult) billedPerImage() float64 {
	if r.images == 0 {
		return 0
	}
	return float64(r.vendorBilled) / float64(r.images)
}

func crashSorted[K comparable](m map[K]int) string {
	var parts []string
	for k, v := range m {
		parts = append(parts, fmt.Sprintf("%v:%d", k, v))
	}
	sort.Strings(parts)
	return "{" + strings.Join(parts, " ") + "}"
}

// crashRun is one run: a data directory, fakes, proxies, and the bot's lives.
type crashRun struct {
	t      *testing.T
	setup  crashSetup
	rng    *rand.Rand // the test goroutine's
	dir    string
	cfg    string
	dbPath string
	users  []int64

	tg *telegramtest.Server
	zq *zhiqitetest.Server
	ap *apispacetest.Server
	sa *showapitest.Server
	// The proxies. Each life of the bot gets its own listeners for what it
	// calls (Telegram, the vendors' APIs), so a call's life is known by
	// where it arrived, however late; vendors' callbacks and the result
	// links the bot stores go through fixed ones.
	zqProxy, apProxy, tgProxy, saProxy *crashProxy
	cbProxy, zqFiles, apFiles, saFiles *crashProxy
	servers                            map[int][]*httptest.Server // by life; 0: the fixed ones
	closing                            sync.WaitGroup
	links                              *strings.Replacer // the fakes' links → their proxies', so downloads pass the proxies
	client                             *http.Client

	mu       sync.Mutex // guards what the proxies touch
	epoch    int
	cur      *crashProc
	plan     crashPlan
	planSeen int
	armed    bool
	botAddr  string
	calls    []crashCall
	delays   *rand.Rand

	cmds      []*crashCmd
	photoSize map[string]int // the photos commands carry, by file id
	hook      []crashUpdate  // webhook mode: updates Telegram has yet to see answered, oldest first
	hookAdd   chan struct{}  // a new update in hook
	dc        *crashDiscord  // the Discord setup's side of Discord; nil in the others
	planned   []*crashCmd    // every command of the run, chosen at its start; cmds are those sent
	kills     []crashKill
	snaps     []*crashSnap // snaps[k-1] is read after epoch k
	stderrs   []string     // each epoch's log
	bad       int
	charges   map[string]bool
	// lateCalls are calls of a dead bot that reached a proxy in a later life.
	lateCalls atomic.Int64
}

// crashProc is one life of the bot.
type crashProc struct {
	b      *bot
	epoch  int
	killed chan struct{}
	kill   *crashKill
	addr   chan struct{} // closed once its HTTP address is known
	ready  chan struct{} // closed once it says its Telegram bot is ready
}

func crashRunSetup(t *testing.T, s crashSetup) crashResult {
	r := &crashRun{
		t: t, setup: s, rng: rand.New(rand.NewPCG(s.seed, 1)), delays: rand.New(rand.NewPCG(s.seed, 2)),
		dir: t.TempDir(), charges: map[string]bool{},
		client:  &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}},
		servers: map[int][]*httptest.Server{},
	}
	t.Logf("%s: seed %d, %d jobs, %d kills, route %v, callbacks %v, APISpace tasks take %s", s.name, s.seed, s.jobs, s.kills, s.route, s.callbacks, s.apWork)
	r.dbPath = filepath.Join(r.dir, "data", "picbot.db")
	nUsers := max(4, s.jobs/5)
	for i := range nUsers {
		r.users = append(r.users, int64(810000+i))
	}

	r.tg = telegramtest.New(tgToken, tgBot)
	r.zq = zhiqitetest.New(zhiqitetest.Options{
		AppCode: zhiqiteAppCode, Duration: 400 * time.Millisecond, ToolDuration: 300 * time.Millisecond,
		CallbackDelays:  []time.Duration{100 * time.Millisecond, 300 * time.Millisecond, time.Second, 2 * time.Second},
		CallbackRetries: 10,
	})
	r.ap = apispacetest.New(apispacetest.Options{
		Token: apispaceToken, Queue: crashQueue, Duration: s.apWork,
		CallbackRetries: []time.Duration{200 * time.Millisecond, 500 * time.Millisecond, time.Second, 2 * time.Second},
	})
	zqRoot := strings.TrimSuffix(r.zq.URL, zhiqitetest.BasePath)
	r.zqProxy = &crashProxy{run: r, name: "zhiqite", upstream: func() string { return zqRoot }, phase: r.zhiqitePhase, rewrite: r.vendorRewrite("zhiqite")}
	r.apProxy = &crashProxy{run: r, name: "apispace", upstream: r.ap.URL, phase: r.apispacePhase, rewrite: r.vendorRewrite("apispace")}
	r.sa = showapitest.Start(showapitest.Options{AppCode: showAPICode, Duration: 600 * time.Millisecond, CallbackAttempts: 6, CallbackInterval: 400 * time.Millisecond, NoSeedTask: true})
	r.saProxy = &crashProxy{run: r, name: "showapi", upstream: func() string { return r.sa.URL }, phase: r.showapiPhase, rewrite: r.vendorRewrite("showapi")}
	r.saFiles = &crashProxy{run: r, name: "showapi", upstream: func() string { return r.sa.URL }, phase: r.showapiPhase}
	r.tgProxy = &crashProxy{run: r, name: "telegram", upstream: func() string { return r.tg.URL }, phase: r.telegramPhase}
	r.cbProxy = &crashProxy{run: r, name: "callback", upstream: r.botURLWait, phase: func(*http.Request, []byte) crashPhase { return phaseCallback }}
	r.zqFiles = &crashProxy{run: r, name: "zhiqite", upstream: func() string { return zqRoot }, phase: r.zhiqitePhase}
	r.apFiles = &crashProxy{run: r, name: "apispace", upstream: r.ap.URL, phase: r.apispacePhase}
	for _, p := range []*crashProxy{r.cbProxy, r.zqFiles, r.apFiles, r.saFiles} {
		p.url = r.listen(p, 0)
	}
	r.links = strings.NewReplacer(zqRoot+"/", r.zqFiles.url+"/", r.ap.URL()+"/", r.apFiles.url+"/", r.sa.URL+"/", r.saFiles.url+"/")
	t.Cleanup(func() {
		for _, list := range r.servers {
			for _, srv := range list {
				srv.Close()
			}
		}
		r.closing.Wait()
		r.zq.Close()
		r.ap.Close()
		r.sa.Close()
		r.tg.Close()
		r.client.CloseIdleConnections()
	})

	r.planCommands()
	if s.discord {
		r.dc = r.newCrashDiscord()
	}
	if s.webhook {
		r.hookAdd = make(chan struct{}, 1)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			r.pushUpdates(ctx)
		}()
		t.Cleanup(func() {
			cancel()
			<-done
		})
	}
	res := newCrashResult()
	res.jobs = s.jobs
	phases := []crashPhase{phaseIntake, phaseAck, phaseSubmit, phasePoll, phaseDownload, phasePost, phaseTimer}
	if s.callbacks {
		phases = append(phases, phaseCallback)
	}
	if s.images {
		phases = append(phases, phaseInput)
	}
	if r.dc != nil {
		phases = r.dc.phases(s.callbacks)
	}
	hit := map[crashPhase]int{}
	for k := 1; k <= s.kills; k++ {
		plan := r.nextPlan(phases, hit)
		left := s.kills - k + 1
		n := (s.jobs - len(r.cmds) + left - 1) / left
		if plan.phase == phaseInput {
			// Aimed at the fetch of a photo: the life gets the next command
			// with one, else a run of few a life (seen: 8 lives in 14 with
			// none) left the phase unhit, each such life ended by the
			// fallback timer after 11-40 s.
			n = max(n, r.untilPhoto()+1)
		}
		kill, ok := r.life(plan, n)
		if !ok {
			break
		}
		hit[kill.phase]++
		res.byPhase[kill.phase]++
		res.byMode[kill.mode]++
		for st, c := range kill.states {
			res.states[st] += c
		}
		if r.bad > 0 {
			break // the state is wrong already: stop killing and report
		}
	}
	if r.bad == 0 {
		r.finalLives()
	}
	r.check(&res, phases, hit)
	if t.Failed() || os.Getenv("PICBOT_CRASH_LOGS") != "" {
		r.dumpLogs()
	}
	if testing.Verbose() || t.Failed() {
		var b strings.Builder
		for _, k := range r.kills {
			fmt.Fprintf(&b, "  life %d: planned %s, killed at %s %v %s; unfinished %v; duplicate posts %d, unrecorded submissions %d\n",
				k.epoch, k.planned, k.phase, k.mode, k.detail, crashSorted(k.states), k.duplicates, k.unsaved)
		}
		t.Logf("%s: kills:\n%s", s.name, b.String())
	}
	t.Logf("%s: %s", s.name, res.summary())
	return res
}

// writeConfig writes the configuration of life epoch: Telegram and both
// vendors behind that life's proxies, timing scaled down, and quotas on:
// every limit exactly what the run's commands need (see quotaLimits), so a
// charge counted twice or a running slot never given back refuses a later
// command, which is then lost.
func (r *crashRun) writeConfig(epoch int) {
	s := r.setup
	// Every setup has a public URL, as a bot that takes image commands at
	// vendors that fetch them by link must (the config check says so);
	// callbacks are asked for only where the setup says.
	public := "  public_url: " + r.cbProxy.url + "\n"
	tg, zq, ap, sa := r.listen(r.tgProxy, epoch), r.listen(r.zqProxy, epoch), r.listen(r.apProxy, epoch), r.listen(r.saProxy, epoch)
	daily, chat, global, running := r.quotaLimits()
	hook := ""
	if s.webhook {
		hook = fmt.Sprintf("  mode: webhook\n  webhook_url: https://bot.example.com%s\n  webhook_secret: %s\n", crashHookPath, crashHookSecret)
	}
	if r.dc != nil {
		hook = r.dc.config(epoch)
	}
	route := "[" + strings.Join(s.route, ", ") + "]"
	// ShowAPI only draws: upscales go to the rest of the route.
	upscale := "[" + strings.Join(slices.DeleteFunc(slices.Clone(s.route), func(v string) bool { return v == "showapi" }), ", ") + "]"
	cfg := fmt.Sprintf(`data_dir: %[1]s/data
log:
  level: info
console:
  enabled: false
local:
  enabled: false
http:
  listen: 127.0.0.1:0
%[2]sengine:
  shutdown_timeout: 5s
  routes:
    draw: %[3]s
    upscale: %[20]s
    anime: [apispace]
    swapface: [zhiqite]
quota:
  default: {daily: %[12]d, concurrent: %[15]d, every: 1ms, burst: 1000}
  chat_daily: %[13]d
  global_daily: %[14]d
  costs: {draw: 2, upscale: 2, swapface: 2, anime: 2}
telegram:
  enabled: %[19]v
  token: %[4]q
  api_endpoint: %[5]q
  poll_timeout: 1s
%[18]svendors:
  zhiqite:
    enabled: true
    base_url: %[6]s
    app_code: %[7]s
    callbacks: %[8]v
    draw_duration: 400ms
    tool_duration: 300ms
    poll_every: 150ms
    poll_max: 600ms
  apispace:
    enabled: true
    base_url: %[9]s/aigc
    token: %[10]s
    callbacks: %[8]v
    draw_duration: %[11]s
    anime_duration: %[11]s
    superres_duration: %[11]s
    poll_every: 150ms
    poll_max: 600ms
  showapi:
    enabled: true
    base_url: %[16]s
    app_code: %[17]q
    create_path: /createtask
    callbacks: %[8]v
    typical_duration: 600ms
    poll_every: 150ms
    poll_max: 600ms
`, r.dir, public, route, tgToken, tg, zq+zhiqitetest.BasePath, zhiqiteAppCode, s.callbacks,
		ap, apispaceToken, s.apWork+crashQueue, daily, chat, global, running, sa, showAPICode, hook, !s.discord, upscale)
	r.cfg = filepath.Join(r.dir, "picbot.yaml")
	if err := os.WriteFile(r.cfg, []byte(cfg), 0o600); err != nil {
		r.t.Fatal(err)
	}
}

// The fakes' tasks end at one of the bot's polls, never just after one:
// a poll that raced the end of its task made the billed calls of the run
// without kills, the figure the kills are held to, swing by a quarter with
// the machine's load (polls at 350 ms of tasks of 150-1050 ms drawn in the
// order of submission; a first poll at APISpace's duration of a task
// queued 30 ms before it). A poll comes no earlier than its wait after the
// vendor accepted the task, so one due at the task's end finds it done,
// and the poll before it is a whole interval early.
//
// crashQueue is how long the APISpace fake queues a task before its work;
// the bot's configured durations include it.
const crashQueue = 30 * time.Millisecond

// crashZhiqiteDuration is how long the Zhiqite task of a command takes:
// until the bot's first to fourth poll of it, by the command's token (so
// the same in the runs with and without kills, whatever the order of
// submissions), at random for commands without one. The polls: the first
// after draw_duration scaled by the work (the suite's small draws: half of
// it) or tool_duration, then every poll_every growing by half to poll_max
// (engine.backoff), as the config in writeConfig sets them.
func crashZhiqiteDuration(token string, tool bool, rng func(int) int) time.Duration {
	const every, most = 150 * time.Millisecond, 600 * time.Millisecond
	at := 200 * time.Millisecond // draw_duration 400ms, halved
	if tool {
		at = 300 * time.Millisecond // tool_duration
	}
	k := 0
	if token != "" {
		h := fnv.New32a()
		h.Write([]byte(token))
		k = int(h.Sum32() % 4)
	} else {
		k = rng(4)
	}
	wait := every
	for range k {
		at += wait
		wait = min(wait*3/2, most)
	}
	return at
}

// nextPlan aims the next kill: at a phase not hit yet if there is one, else
// at any; the call to kill at, the mode and the delays at random.
func (r *crashRun) nextPlan(phases []crashPhase, hit map[crashPhase]int) crashPlan {
	var todo []crashPhase
	for _, p := range phases {
		if hit[p] == 0 {
			todo = append(todo, p)
		}
	}
	if len(todo) == 0 {
		todo = phases
	}
	phase := todo[r.rng.IntN(len(todo))]
	if left := r.photosLeft(); hit[phaseInput] == 0 && slices.Contains(phases, phaseInput) && left > 0 && left <= 4 {
		// The photos run out and the input phase was not hit: it is aimed
		// at while a command still has one (suite seed 1796654878248773946,
		// Callback: every photo sent by the eighth life, the phase first
		// aimed at in the ninth, and never hit). Once hit, never again by
		// this rule (seed 1796656384479797893: six kills of 14 at input,
		// each amid a Zhiqite submission, had skewed the run's bill).
		phase = phaseInput
	}
	p := crashPlan{
		phase: phase,
		nth:   1 + r.rng.IntN(3),
		mode:  crashMode(1 + r.rng.IntN(4)),
		delay: time.Duration(r.rng.IntN(8)) * time.Millisecond,
		limit: 3*time.Second + time.Duration(r.rng.IntN(2000))*time.Millisecond,
	}
	switch p.phase {
	case phaseTimer:
		p.delay = time.Duration(50+r.rng.IntN(2500)) * time.Millisecond
	case phaseIntake:
		if r.setup.webhook || r.setup.discord {
			p.nth = 1 + r.rng.IntN(4) // one update (interaction) a post: any mode
			if r.setup.discord && r.rng.IntN(2) == 0 {
				// Discord has the deferral; the bot dies taking the command in.
				p.mode, p.delay = killAfterReply, time.Duration(r.rng.IntN(4))*time.Millisecond
			}
			break
		}
		p.nth = 1
		p.mode = killAfterReply // the batch is in the bot's hands: kill while it makes the jobs
		p.delay = time.Duration(r.rng.IntN(25)) * time.Millisecond
	case phaseLate, phaseInput:
		p.nth = 1 // a life makes few: the first one
	case phasePoll:
		if !r.setup.callbacks {
			p.nth = 1 + r.rng.IntN(6)
		} else {
			p.nth = 1 // with callbacks, polls come mostly just after a start
		}
	}
	return p
}

// planCommands chooses the run's commands from its own stream of the
// seed, so a run without kills sends the same ones.
func (r *crashRun) planCommands() {
	rng := rand.New(rand.NewPCG(r.setup.seed, 3))
	kinds := slices.Clone(crashKinds)
	if r.setup.images {
		kinds = append(kinds, crashImageKinds...)
		face, target := smallPNG(r.t, 256, 256), smallPNG(r.t, 320, 256)
		r.tg.AddFile(crashFaceFile, "", face)
		r.tg.AddFile(crashTargetFile, "", target)
		r.photoSize = map[string]int{crashFaceFile: len(face), crashTargetFile: len(target)}
	}
	total := 0
	for _, k := range kinds {
		total += k.weight
	}
	// Small: the fakes draw and encode each result in the test process,
	// under -race (faultSize), on the call the bot waits on.
	sizes := []string{"64x64", "80x64", "64x80", "96x96", "128x128"}
	for i := range r.setup.jobs {
		w := rng.IntN(total)
		kind := kinds[0]
		for _, k := range kinds {
			if w < k.weight {
				kind = k
				break
			}
			w -= k.weight
		}
		c := &crashCmd{user: r.users[rng.IntN(len(r.users))], msgID: 5000 + i, kind: kind.kind,
			token: fmt.Sprintf("cj%s%04d", r.setup.tag, i)}
		c.text = fmt.Sprintf("/draw crash test %s %s --size %s --seed %d", c.token, kind.word, sizes[rng.IntN(len(sizes))], 1000+i)
		switch c.kind {
		case "upscale":
			c.text = "/upscale"
		case "swapface":
			c.text = "/swapface"
		}
		r.planned = append(r.planned, c)
	}
}

// crashCost is what a command costs in quota units: 2 an image (quota.costs).
func crashCost(c *crashCmd) int {
	if c.kind == "album" {
		return 4
	}
	return 2
}

// quotaLimits are the tightest limits the run's commands fit in, were each
// charged once and never refunded: a user's daily images (chat's the same,
// chats being private), all users' together, and a user's running jobs
// (all of a user's commands may be running at once).
func (r *crashRun) quotaLimits() (daily, chat, global, running int) {
	perUser, cmds := map[int64]int{}, map[int64]int{}
	for _, c := range r.planned {
		perUser[c.user] += crashCost(c)
		cmds[c.user]++
		global += crashCost(c)
	}
	for u, n := range perUser {
		daily = max(daily, n)
		running = max(running, cmds[u])
	}
	return daily, daily, global, running
}

// untilPhoto is how many commands not sent yet come before the next one
// with a photo (all of them when none is left).
func (r *crashRun) untilPhoto() int {
	for i, c := range r.planned[len(r.cmds):] {
		if c.photo() {
			return i
		}
	}
	return len(r.planned) - len(r.cmds)
}

// photo reports whether the command comes with a photo (crashImageKinds).
func (c *crashCmd) photo() bool {
	for _, k := range crashImageKinds {
		if k.kind == c.kind {
			return true
		}
	}
	return false
}

// photosLeft counts the commands with photos not sent yet.
func (r *crashRun) photosLeft() int {
	n := 0
	for _, c := range r.planned[len(r.cmds):] {
		if c.photo() {
			n++
		}
	}
	return n
}

// addCommands queues the next n commands at the fake Bot API.
func (r *crashRun) addCommands(n int) {
	if r.dc != nil {
		r.dc.add(n)
		return
	}
	for range n {
		if len(r.cmds) >= len(r.planned) {
			return
		}
		c := r.planned[len(r.cmds)]
		msg := map[string]any{
			"message_id": c.msgID, "date": time.Now().Unix(), "text": c.text,
			"from": map[string]any{"id": c.user, "is_bot": false, "first_name": "Crash", "language_code": "en"},
			"chat": map[string]any{"id": c.user, "type": "private", "first_name": "Crash"},
		}
		photo := func(id string) []any {
			return []any{map[string]any{"file_id": id, "file_unique_id": "u" + id, "width": 256, "height": 256, "file_size": r.photoSize[id]}}
		}
		switch c.kind {
		case "img2img", "upscale", "swapface":
			delete(msg, "text")
			msg["caption"] = c.text
			msg["caption_entities"] = []any{map[string]any{"type": "bot_command", "offset": 0, "length": strings.IndexByte(c.text+" ", ' ')}}
			msg["photo"] = photo(crashFaceFile)
			if c.kind == "swapface" {
				msg["reply_to_message"] = map[string]any{
					"message_id": 1, "date": time.Now().Unix(), "photo": photo(crashTargetFile),
					"from": map[string]any{"id": c.user, "is_bot": false, "first_name": "Crash"},
					"chat": map[string]any{"id": c.user, "type": "private", "first_name": "Crash"},
				}
			}
		}
		update := map[string]any{"message": msg}
		c.updateID = r.tg.AddUpdate(update)
		r.cmds = append(r.cmds, c)
		if r.setup.webhook {
			update["update_id"] = c.updateID
			raw, err := json.Marshal(update)
			if err != nil {
				r.t.Fatal(err)
			}
			r.mu.Lock()
			r.hook = append(r.hook, crashUpdate{id: c.updateID, body: raw})
			r.mu.Unlock()
			select {
			case r.hookAdd <- struct{}{}:
			default:
			}
		}
	}
}

// crashUpdate is an update Telegram will post to the webhook.
type crashUpdate struct {
	id   int
	body []byte
}

const (
	crashHookPath   = "/telegram/hook"
	crashHookSecret = "crash_Secret-7"
)

// pushUpdates is Telegram's side of the webhook: it posts the oldest update
// not yet answered 200 to the bot of the life current, again and again until
// one is; the intake phase is that post. A kill after the bot's answer and
// before Telegram heard it leaves the update to be posted again, to the
// next life, as Telegram does.
func (r *crashRun) pushUpdates(ctx context.Context) {
	for {
		r.mu.Lock()
		var u *crashUpdate
		if len(r.hook) > 0 {
			u = &r.hook[0]
		}
		r.mu.Unlock()
		if u == nil {
			select {
			case <-ctx.Done():
				return
			case <-r.hookAdd:
			}
			continue
		}
		epoch, url := r.current(), r.botURL()
		answered := false
		if url != "" {
			answered = r.postUpdate(ctx, epoch, url, *u)
		}
		if answered {
			r.mu.Lock()
			r.hook = r.hook[1:]
			r.mu.Unlock()
			continue
		}
		// Telegram's pause before trying an unanswered update again.
		select {
		case <-ctx.Done():
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// postUpdate posts u to the bot of epoch and reports whether Telegram saw it answered.
func (r *crashRun) postUpdate(ctx context.Context, epoch int, url string, u crashUpdate) bool {
	mode, delay := r.event(epoch, phaseIntake, false)
	call := crashCall{epoch: epoch, proxy: "webhook", phase: phaseIntake, method: "update " + strconv.Itoa(u.id), killed: mode}
	if mode == killBefore {
		r.killNow(epoch, phaseIntake, mode, call.method)
		r.record(call)
		return false
	}
	if mode == killDuring {
		go func() {
			time.Sleep(delay)
			r.killNow(epoch, phaseIntake, mode, call.method)
		}()
	}
	pctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	status, err := r.tg.PostWebhook(pctx, url+crashHookPath, crashHookSecret, u.body)
	call.status = status
	r.record(call)
	switch mode {
	case killAfter:
		r.killNow(epoch, phaseIntake, mode, call.method)
		return false // the answer never reached Telegram
	case killAfterReply:
		if err == nil && status == http.StatusOK {
			go func() {
				time.Sleep(delay)
				r.killNow(epoch, phaseIntake, mode, call.method)
			}()
		} else {
			r.killNow(epoch, phaseIntake, mode, call.method)
		}
	}
	return err == nil && status == http.StatusOK
}

// start begins a new life of the bot under plan.
func (r *crashRun) start(plan crashPlan) *crashProc {
	r.mu.Lock()
	r.epoch++
	r.plan, r.planSeen, r.armed, r.cur, r.botAddr = plan, 0, false, nil, ""
	epoch := r.epoch
	r.mu.Unlock()
	r.writeConfig(epoch)
	bin := binary
	if r.setup.race {
		bin = crashRaceBinary(r.t)
	}
	b := startBin(r.t, bin, r.dir, "-config", r.cfg)
	p := &crashProc{b: b, epoch: epoch, killed: make(chan struct{}), addr: make(chan struct{}), ready: make(chan struct{})}
	r.mu.Lock()
	r.cur = p
	r.mu.Unlock()
	go r.watchAddr(p)
	return p
}

var (
	crashRaceOnce sync.Once
	crashRaceBin  string
	crashRaceErr  error
)

// crashRaceBinary is the bot built with the race detector, once, beside the
// ordinary build (TestMain removes both). A race in a life is a "WARNING:
// DATA RACE" on its stderr and exit status 66, which the lives check.
func crashRaceBinary(t *testing.T) string {
	crashRaceOnce.Do(func() {
		bin := filepath.Join(filepath.Dir(binary), "picbot-race")
		out, err := exec.Command("go", "build", "-race", "-o", bin, ".").CombinedOutput()
		if err != nil {
			crashRaceErr = fmt.Errorf("go build -race: %w\n%s", err, out)
			return
		}
		crashRaceBin = bin
	})
	if crashRaceErr != nil {
		t.Fatal(crashRaceErr)
	}
	return crashRaceBin
}

// watchAddr learns the bot's HTTP address from its log, for the callback
// proxy, and then when its Telegram bot is ready.
func (r *crashRun) watchAddr(p *crashProc) {
	deadline := time.Now().Add(30 * time.Second)
	listening := false
	for time.Now().Before(deadline) {
		select {
		case <-p.killed:
			return
		default:
		}
		_, stderr := p.b.output()
		if !listening {
			if m := listenRe.FindStringSubmatch(stderr); m != nil {
				r.mu.Lock()
				if r.cur == p {
					r.botAddr = m[1]
				}
				r.mu.Unlock()
				close(p.addr)
				listening = true
			}
		}
		if listening && strings.Contains(stderr, `msg="telegram bot ready"`) {
			close(p.ready)
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// botURLWait is botURL for what reaches the bot through its public URL (a
// vendor's callback, its fetch of an input image): a bot that is up but
// whose address the test has not read from its log yet is waited for, as
// the listening socket would answer; a dead bot is not.
func (r *crashRun) botURLWait() string {
	r.mu.Lock()
	p := r.cur
	r.mu.Unlock()
	if p != nil {
		select {
		case <-p.addr:
		case <-p.killed:
		case <-time.After(10 * time.Second):
		}
	}
	return r.botURL()
}

func (r *crashRun) botURL() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.botAddr == "" {
		return ""
	}
	return "http://" + r.botAddr
}

// life runs one life of the bot that ends in a SIGKILL, then reads the store.
func (r *crashRun) life(plan crashPlan, commands int) (crashKill, bool) {
	t := r.t
	p := r.start(plan)
	first := commands/2 + r.rng.IntN(commands/2+1)
	r.addCommands(first)
	later := time.Duration(r.rng.IntN(1500)) * time.Millisecond
	// The time a planned call has to come is set for an idle machine; on
	// a loaded one (load 15 on 2 cores: 9 of 14 kills missed their phase,
	// and a phase went without a kill) the bot gets there that much later.
	limit, scale := plan.limit, crashLoadScale()
	limit = time.Duration(float64(limit) * scale)
	if plan.phase == phaseTimer {
		limit = plan.delay
	}
	more := time.After(later)
	// The kill's clock starts once the bot is up (its Telegram bot ready,
	// by its log), so that a slow start on a busy machine does not eat the
	// time a planned call has to come.
	var expire <-chan time.Time
	// A timer kill keeps its clock from the start: a kill amid a restart's
	// own work (resuming jobs) is one of the moments it is for.
	up, upLate := p.ready, time.After(30*time.Second)
	if plan.phase == phaseTimer {
		up, upLate, expire = nil, nil, time.After(limit)
	}
	exited := false
wait:
	for {
		select {
		case <-p.killed:
			break wait
		case <-up:
			up, upLate, expire = nil, nil, time.After(limit)
		case <-upLate:
			up, upLate, expire = nil, nil, time.After(limit)
		case <-more:
			r.addCommands(commands - first)
			more = nil
		case <-expire:
			detail := fmt.Sprintf("planned %s #%d %s: %s passed", plan.phase, plan.nth, plan.mode, limit.Round(time.Millisecond))
			if plan.phase != phaseTimer {
				detail += fmt.Sprintf(" (load scale %.1f)", scale)
			}
			r.killNow(p.epoch, phaseTimer, 0, detail)
		case _, ok := <-p.b.lines:
			if !ok {
				exited = true
				break wait
			}
		}
	}
	if more != nil {
		r.addCommands(commands - first) // while the bot is down
	}
	if exited {
		r.mu.Lock()
		killed := p.kill != nil
		r.mu.Unlock()
		if !killed {
			_, stderr := p.b.output()
			t.Errorf("epoch %d: the bot exited by itself:\n%s", p.epoch, crashTail(stderr, 4000))
			r.bad++
			return crashKill{}, false
		}
	}
	r.waitExit(p)
	r.mu.Lock()
	kill := *p.kill
	r.mu.Unlock()
	snap := r.snapshot(p.epoch)
	kill.states = snap.unfinishedStates()
	r.mu.Lock()
	p.kill.states = kill.states
	r.mu.Unlock()
	r.kills = append(r.kills, kill)
	return kill, true
}

// crashLoadScale is how many times slower than an idle machine this one
// runs a process now: the 1-minute load average per CPU, from 1 (an idle
// machine, and where /proc/loadavg is missing) up to 10.
func crashLoadScale() float64 {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 1
	}
	var load float64
	if _, err := fmt.Sscan(string(raw), &load); err != nil {
		return 1
	}
	return min(max(load/float64(runtime.NumCPU()), 1), 10)
}

// finalLives run the bot until every command is answered, stop it as an
// operator would (SIGTERM), and read the store; again, while it holds
// unfinished jobs (a post made before the last kill answers a command
// whose job the bot has yet to record as delivered). The time they have
// is the setup's wait, and crashIdle more after each thing the bot gets
// done at Telegram, up to three times the wait: a busy machine slows the
// bot down, and a job is lost when the bot stops getting anywhere with it,
// not when a clock set for an idle machine runs out.
func (r *crashRun) finalLives() {
	start := time.Now()
	deadline, hardStop := start.Add(r.setup.wait), start.Add(3*r.setup.wait)
	done := r.progress()
	moved := func() bool {
		n := r.progress()
		if n == done {
			return false
		}
		done = n
		if next := time.Now().Add(crashIdle); next.After(deadline) {
			deadline = next
			if deadline.After(hardStop) {
				deadline = hardStop
			}
		}
		return true
	}
	for {
		p := r.start(crashPlan{phase: "none"})
		r.addCommands(r.setup.jobs - len(r.cmds))
		for time.Now().Before(deadline) && !r.allAnswered() {
			time.Sleep(200 * time.Millisecond)
			moved()
		}
		// For what is answered to be recorded: a second, and longer while
		// the bot is still posting or tidying up.
		for time.Sleep(time.Second); moved() && time.Now().Before(deadline); {
			time.Sleep(time.Second)
		}
		if err := p.b.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			r.t.Fatal(err)
		}
		if err := r.waitExit(p); err != nil {
			r.violation("life %d: stopped with SIGTERM, the bot exited with %v:\n%s", p.epoch, err, crashTail(r.stderrs[len(r.stderrs)-1], 3000))
		}
		s := r.snapshot(p.epoch)
		done := len(s.unfinished) == 0 && len(s.jobs) == len(r.cmds)
		if r.dc != nil {
			done = r.dc.settled(s)
		}
		if done || time.Now().After(deadline) || r.bad > 0 {
			return
		}
	}
}

// crashIdle is how long the final lives wait for the bot to get something
// done at Telegram before the jobs still unfinished count as lost.
const crashIdle = 20 * time.Second

// progress counts what the bot has got done at Telegram: messages sent,
// edited or deleted. A post put off by a limit makes no call, so a job
// that waits forever adds nothing.
func (r *crashRun) progress() int {
	n := 0
	for _, c := range r.tg.Calls() {
		if c.Status == http.StatusOK && (strings.HasPrefix(c.Method, "send") || strings.HasPrefix(c.Method, "edit") || strings.HasPrefix(c.Method, "delete")) {
			n++
		}
	}
	return n
}

// allAnswered reports whether every command has its reply and its outcome at the fake.
func (r *crashRun) allAnswered() bool {
	if r.dc != nil {
		return r.dc.allAnswered()
	}
	if len(r.cmds) < r.setup.jobs {
		return false
	}
	v := r.view()
	for _, c := range r.cmds {
		id := v.job(c)
		if id == "" || (v.posts[id] == 0 && !v.failed[id]) {
			return false
		}
	}
	return true
}

// waitExit waits for a killed or stopped process to be gone, and returns how it ended.
func (r *crashRun) waitExit(p *crashProc) error {
	for range p.b.lines {
	}
	var err error
	select {
	case err = <-p.b.done:
	case <-time.After(30 * time.Second):
		r.t.Fatalf("epoch %d: the bot did not exit", p.epoch)
	}
	_, stderr := p.b.output()
	r.stderrs = append(r.stderrs, stderr)
	if os.Getenv("PICBOT_CRASH_BILLDEBUG") != "" {
		for line := range strings.Lines(stderr) {
			if strings.Contains(line, "task list") {
				r.t.Logf("life %d: %s", p.epoch, strings.TrimSpace(line))
			}
		}
	}
	if strings.Contains(stderr, "WARNING: DATA RACE") {
		r.violation("life %d: the race detector found a data race:\n%s", p.epoch, crashHead(stderr[strings.Index(stderr, "WARNING: DATA RACE"):], 6000))
	}
	return err
}

// killNow kills the bot of epoch, once; a later or stale request is ignored.
func (r *crashRun) killNow(epoch int, phase crashPhase, mode crashMode, detail string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.cur
	if r.epoch != epoch || p == nil || p.kill != nil {
		return
	}
	r.armed = true
	p.kill = &crashKill{epoch: epoch, planned: r.plan.phase, phase: phase, mode: mode, detail: detail, at: time.Now()}
	if err := p.b.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		r.t.Errorf("kill: %v", err)
	}
	close(p.killed)
}

// current is the life calls arriving now belong to.
func (r *crashRun) current() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.epoch
}

// event says whether to kill at a call of phase that arrived in life
// epoch, and how. after is true for calls known to be of phase only from
// their answer. A call of an earlier life (a dead bot's long poll, say)
// is never where the current one dies.
func (r *crashRun) event(epoch int, phase crashPhase, after bool) (mode crashMode, delay time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if phase == "" || epoch != r.epoch || r.cur == nil || r.armed || r.plan.phase != phase {
		return 0, 0
	}
	r.planSeen++
	if r.planSeen < r.plan.nth {
		return 0, 0
	}
	r.armed = true
	mode = r.plan.mode
	if after && (mode == killBefore || mode == killDuring) {
		mode = killAfterReply
	}
	return mode, r.plan.delay
}

func (r *crashRun) record(c crashCall) {
	c.at = time.Now()
	r.mu.Lock()
	r.calls = append(r.calls, c)
	r.mu.Unlock()
}

// crashProxy passes calls between the bot and another process, recording
// them and killing the bot where the plan says.
type crashProxy struct {
	run      *crashRun
	name     string
	upstream func() string
	phase    func(r *http.Request, body []byte) crashPhase
	rewrite  func(body []byte) []byte
	url      string // a fixed proxy's
}

// listen starts a listener of p for life epoch (0: calls belong to the
// life current when they arrive) and returns its URL. It serves until the
// run ends, so a dead bot's last calls still arrive, and count for it.
func (r *crashRun) listen(p *crashProxy, epoch int) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) { p.serve(w, req, epoch) }))
	r.servers[epoch] = append(r.servers[epoch], srv)
	// A dead bot's last calls come within moments, not lives: the
	// listeners of lives long gone are closed, so file descriptors do not
	// grow with the number of kills.
	if old := epoch - 4; old > 0 && r.servers[old] != nil {
		list := r.servers[old]
		delete(r.servers, old)
		r.closing.Add(1)
		go func() {
			defer r.closing.Done()
			for _, srv := range list {
				srv.Close()
			}
		}()
	}
	return srv.URL
}

var (
	crashTokenRe = regexp.MustCompile(`cj[A-Z]\d+`)
	crashFileRe  = regexp.MustCompile(`filename="picbot-([a-z2-7]+)-\d+\.\w+"`)
	crashPathJob = regexp.MustCompile(`^/callback/\w+/([a-z2-7]+)/`)
	crashZqFile  = regexp.MustCompile(`^/files/([a-z2-7]+)-\d+/`)
)

func (p *crashProxy) serve(w http.ResponseWriter, req *http.Request, epoch int) {
	start := time.Now()
	r := p.run
	if now := r.current(); epoch == 0 {
		epoch = now
	} else if epoch != now {
		r.lateCalls.Add(1) // a dead bot's call, arriving after its death
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		http.Error(w, "read body", http.StatusBadRequest)
		return
	}
	if p.rewrite != nil {
		body = p.rewrite(body)
	}
	if p.name == "callback" {
		body = []byte(r.links.Replace(string(body))) // the vendor's links in a callback
	}
	phase := p.phase(req, body)
	call := crashCall{proxy: p.name, phase: phase, method: crashMethod(p.name, req), sent: start}
	switch {
	case p.name == "telegram" && phase == phasePost:
		if m := crashFileRe.FindSubmatch(body); m != nil {
			call.job = string(m[1])
		}
	case p.name == "callback":
		if m := crashPathJob.FindStringSubmatch(req.URL.Path); m != nil {
			call.job = m[1]
		}
	case phase == phaseSubmit:
		call.token = string(crashTokenRe.Find(body))
		if p.name == "zhiqite" {
			// Tasks take the command's time at Zhiqite: the fake's next fate.
			r.mu.Lock()
			d := crashZhiqiteDuration(call.token, strings.Contains(req.URL.Path, "/tool/"), r.delays.IntN)
			r.mu.Unlock()
			r.zq.SetFate(zhiqitetest.Fate{Duration: d})
		}
	case phase == phaseDownload && p.name == "zhiqite":
		if m := crashZqFile.FindStringSubmatch(req.URL.Path); m != nil {
			call.job = m[1]
		}
	case p.name == "discord":
		r.dc.label(&call, req, body)
	}
	mode, delay := r.event(epoch, phase, false)
	call.epoch = epoch
	if mode == killBefore {
		call.killed = mode
		r.killNow(epoch, phase, mode, call.method)
		r.record(call)
		http.Error(w, "the bot was killed", http.StatusBadGateway)
		return
	}
	if mode == killDuring {
		call.killed = mode
		go func() {
			time.Sleep(delay)
			r.killNow(epoch, phase, mode, call.method)
		}()
	}
	status, header, reply, err := p.forward(req, body)
	call.status = status
	if err != nil {
		r.record(call)
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	if p.name == "telegram" && call.method == "getUpdates" && bytes.Contains(reply, []byte(`"update_id"`)) {
		call.phase = phaseIntake
		if m, d := r.event(epoch, phaseIntake, true); m != 0 {
			mode, delay = m, d
		}
	}
	if phase == phaseSubmit {
		call.created, call.taskID = crashCreated(p.name, status, reply, body)
	}
	crashBillOf(&call, req, body, status, reply)
	if (p.name == "zhiqite" || p.name == "apispace") && phase != phaseDownload {
		reply = []byte(r.links.Replace(string(reply))) // result links in a reply
	}
	if p.name == "showapi" && p.rewrite != nil {
		// ShowAPI's records echo the prompt: as the bot sent it, not as the
		// proxy rewrote it, or the task-list search could not know its task.
		reply = []byte(crashShowAPIEcho.Replace(string(reply)))
	}
	if mode == killAfter || mode == killAfterReply {
		call.killed = mode
	}
	r.record(call)
	if mode == killAfter {
		r.killNow(epoch, call.phase, mode, call.method)
	}
	for k, vs := range header {
		switch k {
		case "Content-Length", "Transfer-Encoding", "Connection":
			continue
		}
		w.Header()[k] = vs
	}
	w.WriteHeader(status)
	w.Write(reply)
	if mode == killAfterReply {
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		time.Sleep(delay)
		r.killNow(epoch, call.phase, mode, call.method)
	}
}

// forward makes the call at the other side. It does not stop when the bot
// dies: what the bot sent, the other side gets, as it would over a network.
func (p *crashProxy) forward(req *http.Request, body []byte) (int, http.Header, []byte, error) {
	up := p.upstream()
	if up == "" {
		return 0, nil, nil, fmt.Errorf("%s: nobody listening", p.name)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(req.Context()), time.Minute)
	defer cancel()
	out, err := http.NewRequestWithContext(ctx, req.Method, up+req.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		return 0, nil, nil, err
	}
	for k, vs := range req.Header {
		switch k {
		case "Content-Length", "Connection", "Accept-Encoding":
			continue
		}
		out.Header[k] = vs
	}
	resp, err := p.run.client.Do(out)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	reply, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, nil, nil, err
	}
	return resp.StatusCode, resp.Header, reply, nil
}

func crashMethod(proxy string, req *http.Request) string {
	switch proxy {
	case "telegram":
		return req.URL.Path[strings.LastIndex(req.URL.Path, "/")+1:]
	case "zhiqite":
		return strings.TrimPrefix(req.URL.Path, zhiqitetest.BasePath)
	}
	return req.URL.Path
}

func (r *crashRun) zhiqitePhase(req *http.Request, _ []byte) crashPhase {
	ep := strings.TrimPrefix(req.URL.Path, zhiqitetest.BasePath)
	switch {
	case req.Method == http.MethodGet && strings.HasPrefix(req.URL.Path, "/files/"):
		return phaseDownload
	case ep == "saas/sd/v2/queryTaskInfo" || strings.HasSuffix(ep, "/queryTask"):
		return phasePoll
	case ep == "saas/sd/v2/text2image" || ep == "saas/sd/v2/image2image" || ep == "saas/sd/v2/controlnet" ||
		ep == "saas/tool/roop" || ep == "saas/tool/enhance":
		return phaseSubmit
	}
	return ""
}

func (r *crashRun) apispacePhase(req *http.Request, _ []byte) crashPhase {
	switch path := req.URL.Path; {
	case req.Method == http.MethodGet && (strings.HasPrefix(path, "/cdn/") || strings.HasPrefix(path, "/cos/")):
		return phaseDownload
	case path == "/aigc/query-image":
		return phasePoll
	case path == "/aigc/txt2img" || path == "/aigc/img2img" || path == "/aigc/portrait2anime" || path == "/aigc/superres":
		return phaseSubmit
	}
	return ""
}

func (r *crashRun) showapiPhase(req *http.Request, _ []byte) crashPhase {
	switch path := req.URL.Path; {
	case req.Method == http.MethodGet && strings.HasPrefix(path, "/images/"):
		return phaseDownload
	case path == "/yourtaskresult" || path == "/yourtasklist":
		return phasePoll
	case path == "/createtask":
		return phaseSubmit
	}
	return ""
}

func (r *crashRun) telegramPhase(req *http.Request, body []byte) crashPhase {
	if strings.HasPrefix(req.URL.Path, "/file/bot") {
		return phaseInput
	}
	switch crashMethod("telegram", req) {
	case "sendPhoto", "sendDocument", "sendMediaGroup":
		if crashFileRe.Match(body) {
			return phasePost // a result, not a progress preview
		}
	case "sendMessage":
		if bytes.Contains(body, []byte("queued")) {
			return phaseAck
		}
	}
	return ""
}

// vendorRewrite turns the commands' words into the fake vendor's magic
// words: at the route's first vendor only for zapfirst and dropfirst.
func (r *crashRun) vendorRewrite(vendor string) func([]byte) []byte {
	first := r.setup.route[0] == vendor
	return func(body []byte) []byte {
		if first {
			body = bytes.ReplaceAll(body, []byte("zapfirst"), []byte("vendorfail"))
			body = bytes.ReplaceAll(body, []byte("dropfirst"), []byte("forget"))
		}
		return bytes.ReplaceAll(body, []byte("stalelinks"), []byte("expired"))
	}
}

// crashShowAPIEcho undoes vendorRewrite in what ShowAPI echoes back.
var crashShowAPIEcho = strings.NewReplacer("vendorfail", "zapfirst", "forget", "dropfirst", "expired", "stalelinks")

// crashCreated reports whether a submission's answer says the vendor made a task.
func crashCreated(vendor string, status int, reply, body []byte) (bool, string) {
	if status != http.StatusOK {
		return false, ""
	}
	switch vendor {
	case "zhiqite":
		var v struct {
			Code any `json:"code"`
		}
		if json.Unmarshal(reply, &v) != nil || fmt.Sprint(v.Code) != "200" {
			return false, ""
		}
		var in struct {
			Scripts struct {
				IDTask string `json:"id_task"`
			} `json:"alwayson_scripts"`
			Scripts2 struct {
				IDTask string `json:"id_task"`
			} `json:"always_on_scripts"`
			BusinessTaskID any `json:"businessTaskId"`
		}
		json.Unmarshal(body, &in)
		if id := in.Scripts.IDTask + in.Scripts2.IDTask; id != "" {
			return true, id
		}
		return true, fmt.Sprint(in.BusinessTaskID)
	case "apispace":
		var v struct {
			Code json.Number `json:"code"`
			Data struct {
				UID string `json:"uid"`
			} `json:"data"`
		}
		if json.Unmarshal(reply, &v) != nil || v.Code.String() != "0" || v.Data.UID == "" {
			return false, ""
		}
		return true, v.Data.UID
	case "showapi":
		var v struct {
			Code json.Number `json:"showapi_res_code"`
			Body struct {
				RetCode json.Number `json:"ret_code"`
				TaskID  string      `json:"task_id"`
			} `json:"showapi_res_body"`
		}
		if json.Unmarshal(reply, &v) != nil || v.Code.String() != "0" || v.Body.RetCode.String() != "0" || v.Body.TaskID == "" {
			return false, ""
		}
		return true, v.Body.TaskID
	}
	return false, ""
}

// crashSnap is the store as a dead bot left it.
type crashSnap struct {
	epoch      int
	jobs       map[string]*engine.Job
	unfinished map[string]bool
	counters   map[string]int64 // d: and r: counters
	pending    map[string]bool  // Discord: interactions taken in, not yet made into jobs
}

func (s *crashSnap) unfinishedStates() map[string]int {
	out := map[string]int{}
	for _, j := range s.jobs {
		if j.Finished() {
			continue
		}
		st := string(j.State)
		if j.State.AtVendor() && len(j.Pending) > 0 {
			st = "downloading"
		}
		out[st]++
	}
	return out
}

// snapshot reads the store of the dead bot of epoch and checks it.
func (r *crashRun) snapshot(epoch int) *crashSnap {
	t := r.t
	ctx := context.Background()
	db, err := store.Open(r.dbPath, store.Options{LockTimeout: 10 * time.Second})
	if err != nil {
		t.Fatalf("epoch %d: open the store: %v", epoch, err)
	}
	defer db.Close()
	s := &crashSnap{epoch: epoch, jobs: map[string]*engine.Job{}, unfinished: map[string]bool{}, counters: map[string]int64{}}
	platform := telegram.Platform
	if r.dc != nil {
		platform = discord.Platform
	}
	for _, u := range r.users {
		jobs, err := db.JobsByOwner(ctx, engine.UserRef{Platform: platform, ID: strconv.FormatInt(u, 10)}, math.MaxInt32)
		if err != nil {
			t.Fatalf("epoch %d: jobs of %d: %v", epoch, u, err)
		}
		for _, j := range jobs {
			s.jobs[j.ID] = j
		}
	}
	unfinished, err := db.Unfinished(ctx)
	if err != nil {
		t.Fatalf("epoch %d: unfinished jobs: %v", epoch, err)
	}
	for _, j := range unfinished {
		s.unfinished[j.ID] = true
	}
	err = db.View(ctx, func(c engine.Counters) error {
		for _, prefix := range []string{"d:", "r:"} {
			c.Scan(prefix, func(k string, v int64) { s.counters[k] = v })
		}
		s.pending = pendingInteractions(c)
		return nil
	})
	if err != nil {
		t.Fatalf("epoch %d: counters: %v", epoch, err)
	}
	// Every acknowledged job is in the store, even one acknowledged just
	// before the kill: a job is persisted before the reply.
	v := r.view()
	for key, id := range v.ack {
		if _, ok := s.jobs[id]; !ok {
			if j, err := db.Job(ctx, id); err == nil {
				r.violation("epoch %d: job %s (command %s) is stored but not under its owner (%s)", epoch, id, key, j.Owner.Key())
			} else {
				r.violation("epoch %d: job %s was acknowledged (command %s) but is not in the store: %v", epoch, id, key, err)
			}
		}
	}
	var prev *crashSnap
	if len(r.snaps) > 0 {
		prev = r.snaps[len(r.snaps)-1]
	}
	r.checkSnap(prev, s)
	if r.dc != nil {
		r.dc.checkSnap(s)
	}
	r.snaps = append(r.snaps, s)
	return s
}

// chargeViolation is a violation of the one-charge promise, about key (a job or a counter).
func (r *crashRun) chargeViolation(key, format string, args ...any) {
	r.charges[key] = true
	r.violation(format, args...)
}

func (r *crashRun) violation(format string, args ...any) {
	r.bad++
	if r.bad <= 40 {
		r.t.Errorf(format, args...)
	} else if r.bad == 41 {
		r.t.Error("more violations not shown")
	}
}

// checkSnap checks what must hold in any state a kill leaves: counters equal
// to what the jobs say, each job settled once and as its state says, the
// index of unfinished jobs right, one job per command, and nothing undone
// since the previous kill.
func (r *crashRun) checkSnap(prev, s *crashSnap) {
	e := s.epoch
	want := map[string]int64{}
	perCommand := map[string][]string{}
	for id, j := range s.jobs {
		ch := j.Charge
		switch {
		case j.State == engine.StateDelivered && ch.Settled != engine.ChargeCommitted:
			r.chargeViolation(id, "epoch %d: job %s delivered, charge %q", e, id, ch.Settled)
		case j.State == engine.StateFailed && ch.Settled != engine.ChargeRefunded:
			r.chargeViolation(id, "epoch %d: job %s failed, charge %q (a failed job must be refunded)", e, id, ch.Settled)
		case !j.State.Terminal() && (ch.Settled != "" || ch.Released):
			r.chargeViolation(id, "epoch %d: job %s is %s but its charge is settled (%q, released %v)", e, id, j.State, ch.Settled, ch.Released)
		case j.State.Terminal() && !ch.Released:
			r.chargeViolation(id, "epoch %d: job %s is %s but still holds a running slot", e, id, j.State)
		}
		if ch.Unlimited || ch.Day == "" {
			r.chargeViolation(id, "epoch %d: job %s has no charge: %+v", e, id, ch)
			continue
		}
		if ch.Settled != engine.ChargeRefunded {
			want["d:u:"+j.Owner.Key()+":"+ch.Day] += ch.Cost
			want["d:c:"+j.Chat.QuotaKey()+":"+ch.Day] += ch.Cost
			want["d:g:"+ch.Day] += ch.Cost
		}
		if !ch.Released {
			want["r:u:"+j.Owner.Key()]++
		}
		if j.Attempts > len(j.Tried)+1 {
			// One submission per vendor tried: a task whose id was saved is never submitted again.
			r.violation("epoch %d: job %s records %d submissions to %d vendors (%v, now %s)", e, id, j.Attempts, len(j.Tried)+1, j.Tried, j.Vendor)
		}
		if s.unfinished[id] == j.Finished() {
			r.violation("epoch %d: job %s (%s, notified %v) is %sin the index of unfinished jobs", e, id, j.State, j.Notified, map[bool]string{true: "", false: "not "}[s.unfinished[id]])
		}
		perCommand[j.Chat.ChatID+"/"+j.Chat.MessageID] = append(perCommand[j.Chat.ChatID+"/"+j.Chat.MessageID], id)
	}
	for id := range s.unfinished {
		if _, ok := s.jobs[id]; !ok {
			r.violation("epoch %d: job %s is in the index of unfinished jobs but not under an owner", e, id)
		}
	}
	for k, v := range s.counters {
		if w := want[k]; v != w {
			r.chargeViolation(k, "epoch %d: counter %s is %d; the jobs say %d", e, k, v, w)
		}
	}
	for k, w := range want {
		if _, ok := s.counters[k]; !ok && w != 0 {
			r.chargeViolation(k, "epoch %d: counter %s is 0; the jobs say %d", e, k, w)
		}
	}
	for cmd, ids := range perCommand {
		if len(ids) > 1 {
			r.chargeViolation(cmd, "epoch %d: command %s made %d jobs: %v", e, cmd, len(ids), ids)
		}
	}
	if prev == nil {
		return
	}
	for id, p := range prev.jobs {
		j, ok := s.jobs[id]
		switch {
		case !ok:
			r.violation("epoch %d: job %s (%s at the last kill) is gone", e, id, p.State)
		case p.State.Terminal() && (j.State != p.State || j.Charge != p.Charge):
			r.chargeViolation(id, "epoch %d: job %s went from %s (%+v) to %s (%+v)", e, id, p.State, p.Charge, j.State, j.Charge)
		case j.Attempts < p.Attempts || j.BilledCalls < p.BilledCalls || crashSent(j) < crashSent(p):
			r.violation("epoch %d: job %s went back: attempts %d→%d, billed %d→%d, posted steps %d→%d", e, id,
				p.Attempts, j.Attempts, p.BilledCalls, j.BilledCalls, crashSent(p), crashSent(j))
		}
	}
}

// crashSent is how many delivery steps the platform adapter recorded on the
// job: Telegram counts them, Discord notes its one post.
func crashSent(j *engine.Job) int {
	n, _ := strconv.Atoi(j.Meta["tg_sent"])
	if j.Meta["discord.posted"] != "" {
		// Discord notes the result posted on the job (bots/discord
		// metaPosted) before the engine moves it to delivered.
		n = max(n, 1)
	}
	return n
}

// crashView is what the fake Bot API saw: the acknowledgements, results
// and failure notices per job.
type crashView struct {
	ack    map[string]string // "chat/message" → the job its "queued" reply names
	reply  map[string]string // "chat/message" → the job whose result or failure notice replied to it
	posts  map[string]int    // job id → result posts
	failed map[string]bool   // job id → a failure notice was sent
}

// job is the job the bot said command c made, by its reply or its outcome.
func (v crashView) job(c *crashCmd) string {
	key := crashMsgKey(c.user, c.msgID)
	if id := v.ack[key]; id != "" {
		return id
	}
	return v.reply[key]
}

var (
	crashAckRe    = regexp.MustCompile(`^Job (\w+) queued`)
	crashFailedRe = regexp.MustCompile(`Job (\w+) failed`)
	crashPostName = regexp.MustCompile(`^picbot-([a-z2-7]+)-\d+\.\w+$`)
)

func crashMsgKey(chat int64, msg int) string { return fmt.Sprintf("%d/%d", chat, msg) }

func (r *crashRun) view() crashView {
	if r.dc != nil {
		return r.dc.view()
	}
	v := crashView{ack: map[string]string{}, reply: map[string]string{}, posts: map[string]int{}, failed: map[string]bool{}}
	for _, c := range r.tg.Calls() {
		if c.Status != http.StatusOK {
			continue
		}
		reply, _ := strconv.Atoi(c.Params["reply_to_message_id"])
		key := crashMsgKey(c.ChatID(), reply)
		switch c.Method {
		case "sendMessage":
			if m := crashAckRe.FindStringSubmatch(c.Params["text"]); m != nil {
				v.ack[key] = m[1]
			}
			fallthrough
		case "editMessageText", "editMessageCaption":
			for _, s := range []string{c.Params["text"], c.Params["caption"]} {
				if m := crashFailedRe.FindStringSubmatch(s); m != nil {
					v.failed[m[1]] = true
					if reply != 0 {
						v.reply[key] = m[1]
					}
				}
			}
		case "sendPhoto", "sendDocument", "sendMediaGroup":
			for _, f := range c.Files {
				if m := crashPostName.FindStringSubmatch(f.Name); m != nil {
					v.posts[m[1]]++
					if reply != 0 {
						v.reply[key] = m[1]
					}
					break // an album is one post
				}
			}
		}
	}
	return v
}

// checkOutcome checks how command c's job id ended: delivered with its
// picture posted, or failed with a notice in the chat, as c's kind says.
func (r *crashRun) checkOutcome(res *crashResult, v crashView, c *crashCmd, id string, j *engine.Job) {
	switch {
	case j.State == engine.StateDelivered:
		res.outcomes["delivered"]++
		if v.posts[id] == 0 {
			r.violation("job %s (%s) is delivered but nothing was posted", id, c.token)
			res.lost++
		}
	case (j.State == engine.StateFailed || j.State == engine.StateCancelled) && j.Notified:
		res.outcomes["failed"]++
		if !v.failed[id] {
			r.violation("job %s (%s) failed and is marked notified, but no failure notice reached the chat", id, c.token)
			res.lost++
		}
	default:
		r.violation("job %s (%s, %q) is lost: %s, notified %v, vendor %q task %q, pending %d, results %d, error %+v:\n%s",
			id, c.token, c.kind, j.State, j.Notified, j.Vendor, j.TaskID, len(j.Pending), len(j.Results), j.Err, r.trace(id))
		res.lost++
		return
	}
	if why := r.expected(c, j); why != "" {
		r.violation("job %s (%s, %q): %s; state %s, vendor %s, tried %v, attempts %d, error %+v", id, c.token, c.kind, why, j.State, j.Vendor, j.Tried, j.Attempts, j.Err)
		res.unexpected++
	}
}

// check checks the whole history once the last bot has stopped.
func (r *crashRun) check(res *crashResult, phases []crashPhase, hit map[crashPhase]int) {
	t := r.t
	res.kills = len(r.kills)
	if len(r.snaps) == 0 {
		t.Fatal("no state was read")
	}
	final := r.snaps[len(r.snaps)-1]
	v := r.view()
	r.mu.Lock()
	calls := slices.Clone(r.calls)
	r.mu.Unlock()
	killed := map[int]bool{} // epochs that ended in a SIGKILL
	for _, k := range r.kills {
		killed[k.epoch] = true
	}
	lastEpoch := final.epoch
	if r.bad > 0 {
		lastEpoch = -1 // stopped early: the last life was killed too
	}

	// Every command: one job, named in the bot's answers, finished as its kind says.
	stored := map[string]string{} // "chat/message:update" → job id
	for id, j := range final.jobs {
		stored[j.Chat.ChatID+"/"+j.Chat.MessageID] = id
	}
	jobOf := map[string]string{} // token → job id
	cmds := r.cmds
	if r.dc != nil {
		r.dc.checkCommands(res, final, v, jobOf, killed, lastEpoch)
		cmds = nil
	}
	for _, c := range cmds {
		id := stored[fmt.Sprintf("%d/%d:%d", c.user, c.msgID, c.updateID)]
		told := v.job(c)
		switch {
		case id == "" && told != "":
			r.violation("command %s: the bot answered with job %s, which is not in the store", c.token, told)
			res.lost++
			continue
		case id == "":
			if r.bad == 0 {
				r.violation("command %s (update %d, %q) made no job", c.token, c.updateID, c.text)
				res.lost++
			}
			continue
		case told != "" && told != id:
			r.violation("command %s: the bot answered with job %s, the store has job %s", c.token, told, id)
		case told == "" && r.bad == 0:
			r.violation("command %s: job %s was never announced to the chat", c.token, id)
		}
		if v.ack[crashMsgKey(c.user, c.msgID)] != "" {
			res.accepted++
		}
		jobOf[c.token] = id
		j := final.jobs[id]
		if r.bad > 0 && lastEpoch < 0 {
			continue // no last life: jobs may be unfinished
		}
		r.checkOutcome(res, v, c, id, j)
	}
	if lastEpoch >= 0 {
		for k, n := range final.counters {
			if strings.HasPrefix(k, "r:") && n != 0 {
				r.violation("counter %s is %d with every job finished", k, n)
			}
		}
	}

	// Posts: per job and life, at most one; none after the post was recorded;
	// a post not recorded only in a life that ended in a kill.
	type lifeCount map[int]int
	posts := map[string]lifeCount{}
	for _, c := range calls {
		if crashIsPost(c) {
			if posts[c.job] == nil {
				posts[c.job] = lifeCount{}
			}
			posts[c.job][c.epoch]++
		}
	}
	snapAt := map[int]*crashSnap{}
	for _, s := range r.snaps {
		snapAt[s.epoch] = s
	}
	recorded := func(epoch int, id string) bool {
		s := snapAt[epoch]
		if s == nil {
			return false
		}
		j := s.jobs[id]
		return j != nil && (j.State == engine.StateDelivered || crashSent(j) >= 1)
	}
	for id, byLife := range posts {
		total, done := 0, false
		for _, e := range slices.Sorted(maps.Keys(byLife)) {
			n := byLife[e]
			total += n
			switch {
			case done:
				r.violation("job %s: posted again in life %d after the post was recorded:\n%s", id, e, r.trace(id))
			case n > 1:
				r.violation("job %s: posted %d times in life %d:\n%s", id, n, e, r.trace(id))
			case !recorded(e, id) && !killed[e]:
				r.violation("job %s: posted in life %d, which was not killed, and not recorded:\n%s", id, e, r.trace(id))
			case !recorded(e, id):
				r.charge(e, func(k *crashKill) { k.duplicates++; k.duplicated = append(k.duplicated, id) })
			}
			if recorded(e, id) {
				done = true
			}
		}
		if v.posts[id] != total {
			r.violation("job %s: the proxy saw %d posts, the fake %d", id, total, v.posts[id])
		}
		if total > 1 {
			res.duplicatePosts += total - 1
		}
	}

	// Submissions: a job's tasks at the vendors beyond its recorded attempts
	// are submissions a kill interrupted before the task id was saved.
	created := map[string]lifeCount{}     // job id → life → tasks made
	vendorsOf := map[string][]crashCall{} // job id → its tasks made, in order
	for _, c := range calls {
		if c.phase != phaseSubmit || !c.created {
			continue
		}
		id := jobOf[c.token]
		if c.token == "" && c.proxy == "zhiqite" {
			// No prompt (/upscale, /swapface): Zhiqite's task id is the job's, "<job>-<attempt>".
			if job, _, ok := strings.Cut(c.taskID, "-"); ok && final.jobs[job] != nil {
				id = job
			}
		}
		if id == "" {
			r.violation("a task at %s (%s) for a command with no job: %q", c.proxy, c.taskID, c.token)
			continue
		}
		if created[id] == nil {
			created[id] = lifeCount{}
		}
		created[id][c.epoch]++
		vendorsOf[id] = append(vendorsOf[id], c)
	}
	for id, byLife := range created {
		attempts := 0 // as of the previous life's end
		tasks := 0
		windows := map[string]int{} // this job's kills in a submit window, by vendor
		for _, s := range r.snaps {
			j := s.jobs[id]
			if j == nil {
				continue
			}
			n := byLife[s.epoch]
			tasks += n
			saved := j.Attempts - attempts
			if m := j.Submitting; m != nil && killed[s.epoch] {
				// The job still marks a submission in flight: the kill landed in
				// its submit window. It counts as the vendor's window when the
				// vendor made the task in that life (its last for the job).
				last := ""
				for _, c := range vendorsOf[id] {
					if c.epoch == s.epoch {
						last = c.proxy
					}
				}
				if last == m.Vendor {
					res.windowByVendor[last]++
					windows[last]++
				}
			}
			if unsaved := n - saved; unsaved > 0 {
				res.unsavedAtKill += unsaved
				r.charge(s.epoch, func(k *crashKill) { k.unsaved += unsaved })
				if !killed[s.epoch] {
					r.violation("job %s: %d submissions in life %d, which was not killed, but %d recorded", id, n, s.epoch, saved)
				} else if unsaved > 1 {
					r.violation("job %s: %d submissions unrecorded when life %d was killed", id, unsaved, s.epoch)
				}
			}
			attempts = j.Attempts
		}
		if j := final.jobs[id]; j != nil {
			switch extra := tasks - j.Attempts; {
			case extra < 0:
				r.violation("job %s records %d submissions; the vendors made %d tasks", id, j.Attempts, tasks)
			case extra > 0:
				res.resubmissions += extra
				// A task the ShowAPI fake forgot is made again because it is
				// gone, not because a kill hid it: counted apart, against
				// ShowAPI's windows.
				tasks := slices.Clone(vendorsOf[id])
				for i, c := range tasks {
					if _, known := r.sa.Task(c.taskID); c.proxy == "showapi" && !known {
						tasks[i].proxy = crashForgotten
					}
				}
				windows[crashForgotten] = windows["showapi"]
				res.addResubmissions(crashResubmissions(tasks, windows, extra))
			}
		}
	}
	for id, j := range final.jobs {
		if created[id] == nil && j.Attempts > 0 {
			r.violation("job %s records %d submissions; the vendors made no task", id, j.Attempts)
		}
	}

	for _, k := range r.kills {
		res.maxDuplicates = max(res.maxDuplicates, k.duplicates)
		res.maxUnsaved = max(res.maxUnsaved, k.unsaved)
	}
	// The allowances, asserted: a post repeated only for a kill between
	// posting and recording, at most one per kill; tasks made again within
	// each vendor's bound per kill in its submit window.
	if crashOnePostPerKill && res.duplicatePosts > len(r.kills) {
		r.violation("%d duplicate posts in %d kills: more than one per kill", res.duplicatePosts, len(r.kills))
	}
	if crashOnePostPerKill && res.maxDuplicates > 1 {
		var traces strings.Builder
		for _, k := range r.kills {
			if k.duplicates > 1 {
				for _, id := range k.duplicated {
					fmt.Fprintf(&traces, "job %s, posted and not recorded in life %d:\n%s", id, k.epoch, r.trace(id))
				}
			}
		}
		r.violation("%d duplicate posts from one kill: more than one post made and not recorded at once:\n%s", res.maxDuplicates, traces.String())
	}
	for _, v := range []string{"zhiqite", "apispace", "showapi", crashForgotten} {
		window := res.windowByVendor[strings.TrimSuffix(v, "-forgotten")]
		if limit := crashResubmitLimit(v) * window; res.resubByVendor[v] > limit {
			r.violation("%s: %d tasks made again; %d kills landed in its submit window, bound %d a kill (crashResubmitFixed %v): at most %d",
				v, res.resubByVendor[v], window, crashResubmitLimit(v), crashResubmitFixed, limit)
		}
	}
	for _, c := range calls {
		if c.phase != "" {
			res.calls[fmt.Sprintf("%s/%d", c.phase, c.status)]++
		}
	}

	// Billed calls: the jobs' record against the vendors' own counts.
	for _, j := range final.jobs {
		res.botBilled += j.BilledCalls
	}
	res.vendorBilled = r.zq.Billed() + r.ap.Billed() + r.sa.Billed()
	for _, j := range final.jobs {
		if j.State == engine.StateDelivered {
			res.images += len(j.Results)
		}
	}
	res.lateCalls = int(r.lateCalls.Load())
	res.bill = r.billBreakdown(calls, jobOf, killed)
	if v := r.ap.Violations(); len(v) > 0 {
		r.violation("APISpace saw calls its documents do not allow: %v", v)
	}

	// Every phase was hit; but with callbacks a poll is only the safety
	// net of a callback that did not come (a run without kills makes a
	// handful), so a kill aimed at one may find none: aimed at, not
	// required there (the polling setups require it).
	for _, p := range phases {
		optional := p == phasePoll && r.setup.callbacks
		if hit[p] == 0 && !optional && r.bad == 0 && r.setup.kills > 0 {
			r.violation("no kill came at phase %s in %d kills", p, len(r.kills))
		}
	}
	res.doubleCharges += len(r.charges)
}

// expected says what is wrong with a finished job's outcome for its
// command's kind; "" if nothing. A crash must never decide an outcome.
func (r *crashRun) expected(c *crashCmd, j *engine.Job) string {
	first, second := r.setup.route[0], r.setup.route[1]
	switch c.kind {
	case "plain":
		if j.State != engine.StateDelivered || len(j.Results) != 1 {
			return "should be delivered with one picture"
		}
	case "album":
		if j.State != engine.StateDelivered || len(j.Results) != 2 || j.Vendor != r.setup.album {
			return "should be delivered by " + r.setup.album + " with two pictures"
		}
	case "zap", "drop":
		if j.State != engine.StateDelivered || j.Vendor != second || !slices.Contains(j.Tried, first) {
			return fmt.Sprintf("should fail at %s and be delivered by %s", first, second)
		}
	case "unsafe":
		if j.State != engine.StateFailed || j.Err == nil || j.Err.Code != engine.EUNSAFE {
			return "should fail the content check"
		}
	case "stale":
		if j.State != engine.StateFailed || j.Err == nil || j.Err.Code != engine.EVENDOR {
			return "should fail: the result could not be downloaded"
		}
	case "img2img", "upscale", "swapface":
		want := map[string]int{"img2img": 1, "upscale": 1, "swapface": 2}[c.kind]
		if j.State != engine.StateDelivered || len(j.Results) != 1 || len(j.Request.Inputs) != want {
			return fmt.Sprintf("should be delivered with one picture made from %d photos", want)
		}
	}
	return ""
}

// charge adds to what the kill of life epoch cost.
func (r *crashRun) charge(epoch int, fn func(k *crashKill)) {
	for i := range r.kills {
		if r.kills[i].epoch == epoch {
			fn(&r.kills[i])
		}
	}
}

// trace lists the calls about job id and the kills of the lives they were in.
func (r *crashRun) trace(id string) string {
	r.mu.Lock()
	calls := slices.Clone(r.calls)
	r.mu.Unlock()
	var token string
	for _, s := range r.snaps {
		if j := s.jobs[id]; j != nil {
			token = crashTokenRe.FindString(j.Request.Prompt)
		}
	}
	var b strings.Builder
	lives := map[int]bool{}
	for _, c := range calls {
		if c.job == id || token != "" && c.token == token || strings.Contains(c.taskID, id) {
			lives[c.epoch] = true
			fmt.Fprintf(&b, "  life %d %s: %s %s %s status %d created %v task %s killed %v\n", c.epoch, c.sent.Format("15:04:05.000"), c.proxy, c.phase, c.method, c.status, c.created, c.taskID, c.killed)
		}
	}
	for _, k := range r.kills {
		if lives[k.epoch] {
			fmt.Fprintf(&b, "  life %d killed %s: planned %s, at %s %v (%s)\n", k.epoch, k.at.Format("15:04:05.000"), k.planned, k.phase, k.mode, k.detail)
		}
	}
	for _, s := range r.snaps {
		if j := s.jobs[id]; j != nil && lives[s.epoch] {
			fmt.Fprintf(&b, "  after life %d: %s vendor %s task %s attempts %d sent %d meta %v\n", s.epoch, j.State, j.Vendor, j.TaskID, j.Attempts, crashSent(j), j.Meta)
		}
	}
	return b.String()
}

// dumpLogs shows the last lives' logs and keeps every life's in a directory.
func (r *crashRun) dumpLogs() {
	n := len(r.stderrs)
	for i := max(0, n-2); i < n; i++ {
		r.t.Logf("log of life %d (last 4000 bytes):\n%s", i+1, crashTail(r.stderrs[i], 4000))
	}
	dir, err := os.MkdirTemp("", fmt.Sprintf("picbot-crash-%d-%s-", r.setup.seed, r.setup.name))
	if err != nil {
		return
	}
	for i, log := range r.stderrs {
		os.WriteFile(filepath.Join(dir, fmt.Sprintf("life-%03d.log", i+1)), []byte(log), 0o600)
	}
	r.t.Logf("every life's log is in %s", dir)
}

func crashHead(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func crashTail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

func TestCrashResubmissions(t *testing.T) {
	calls := func(vendors ...string) []crashCall {
		var cs []crashCall
		for _, v := range vendors {
			cs = append(cs, crashCall{proxy: v, created: true})
		}
		return cs
	}
	for _, c := range []struct {
		name    string
		tasks   []crashCall
		windows map[string]int
		extra   int
		want    map[string]int
	}{
		// One kill in the window, then a second, recorded, try at the same vendor.
		{"tried again on purpose", calls("apispace", "apispace", "apispace"), map[string]int{"apispace": 1}, 1, map[string]int{"apispace": 1}},
		{"made again twice", calls("apispace", "apispace", "apispace"), map[string]int{"apispace": 2}, 2, map[string]int{"apispace": 2}},
		{"no window", calls("apispace", "apispace"), nil, 1, map[string]int{}},
		// Two candidates for one extra task: the vendor held to 0 keeps it.
		{"strict attribution", calls("zhiqite", "zhiqite", "apispace", "apispace"), map[string]int{"zhiqite": 1, "apispace": 1}, 1, map[string]int{"zhiqite": 1}},
	} {
		got := crashResubmissions(c.tasks, c.windows, c.extra)
		maps.DeleteFunc(got, func(_ string, n int) bool { return n == 0 })
		if !maps.Equal(got, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
	}
}
