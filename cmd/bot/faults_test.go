package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/picbot/picbot/engine/apispace/apispacetest"
	"github.com/picbot/picbot/engine/showapi/showapitest"
	"github.com/picbot/picbot/engine/zhiqite/zhiqitetest"
)

// The vendor fault matrix: for each vendor and each fault, one bot process
// (so one vendor's circuit breaker cannot spill into another cell) with the
// console and that vendor's fake, one /draw, and a short job timeout. Every
// job must end succeeded, or failed with a clear message and refunded,
// within its deadline. Then the same with two vendors on the route: a
// vendor that is down is skipped, and a task one vendor accepted is never
// sent to another unless it failed there.

// The fault tests' engine.job_timeout and engine.vendor_timeout. A job
// that no vendor can take (the quota and down faults) ends at its deadline,
// faultJobTimeout, which with its end within deadlineSlack of it is what
// such a cell checks; its calls are cut at faultVendorTimeout, so that one
// in flight at the deadline delays the end little (a call cut short fails
// the same way). Every other cell checks how its job ends, not how fast
// the machine is: two 429s alone cost 2.5 s of the engine's backoff, and
// at load 10-20 on 2 cores (nine bots, the race-built fakes and other
// tests at once) a call that stalled past vendor_timeout 1s became one
// more retry with its backoff (after two 429s, a third failure in a row,
// which also opens the vendor's circuit), past 6 s. Those cells get
// endJobTimeout, a ceiling, and endVendorTimeout; only a vendor that hangs
// (the timeout fault, Zhiqite's "hang") is cut at hangVendorTimeout, the
// fault the cell is about.
const (
	faultJobTimeout    = 6 * time.Second
	faultVendorTimeout = time.Second
	endJobTimeout      = 30 * time.Second
	endVendorTimeout   = 5 * time.Second
	hangVendorTimeout  = time.Second
)

// faultSize is the pictures' size in the fault tests. The fakes draw and
// encode a result in the test process, built with -race, while the bot
// waits on the call: a 512x512 PNG took 9 ms without the race detector and
// 3.8 s with it at load 21 on 2 cores, past vendor_timeout, so the cells
// timed the fakes' encoder rather than the bot. 64x64 costs a sixtieth.
const faultSize = "64x64"

// deadlineSlack is how late a job's end may be printed after its deadline:
// the step that fails it, the store write and the console.
const deadlineSlack = 1500 * time.Millisecond

// consoleBot is a running bot driven through its console, each output line
// timed as it arrives.
type consoleBot struct {
	t    *testing.T
	b    *bot
	dir  string
	mu   sync.Mutex
	seen []timedLine
	more chan struct{} // closed and replaced when a line arrives
	eof  chan struct{} // closed when stdout ends
}

type timedLine struct {
	at   time.Time
	text string
}

// startConsole runs the binary with config cfg (YAML) in dir.
func startConsole(t *testing.T, dir, cfg string) *consoleBot {
	t.Helper()
	path := filepath.Join(dir, "picbot.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	c := &consoleBot{t: t, b: startBot(t, dir, "-config", path), dir: dir, more: make(chan struct{}), eof: make(chan struct{})}
	go func() {
		for line := range c.b.lines {
			c.mu.Lock()
			c.seen = append(c.seen, timedLine{time.Now(), line})
			close(c.more)
			c.more = make(chan struct{})
			c.mu.Unlock()
		}
		close(c.eof)
	}()
	return c
}

// send types a command; it returns the number of lines seen before it, to
// wait for its answer with from.
func (c *consoleBot) send(line string) int {
	c.mu.Lock()
	n := len(c.seen)
	c.mu.Unlock()
	if _, err := io.WriteString(c.b.stdin, line+"\n"); err != nil {
		c.t.Errorf("console input %q: %v", line, err)
	}
	return n
}

// await waits until a line from index from on matches re and returns its
// submatches and arrival time; nil after timeout or the end of output.
func (c *consoleBot) await(from int, re *regexp.Regexp, timeout time.Duration) ([]string, time.Time) {
	deadline := time.After(timeout)
	for {
		c.mu.Lock()
		more := c.more
		c.mu.Unlock()
		if m, at := c.match(from, re); m != nil {
			return m, at
		}
		select {
		case <-more:
		case <-c.eof:
			return c.match(from, re)
		case <-deadline:
			return nil, time.Time{}
		}
	}
}

func (c *consoleBot) match(from int, re *regexp.Regexp) ([]string, time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, l := range c.seen[min(from, len(c.seen)):] {
		if m := re.FindStringSubmatch(l.text); m != nil {
			return m, l.at
		}
	}
	return nil, time.Time{}
}

// index is the index of the first line from index from that starts with
// prefix; -1 if none.
func (c *consoleBot) index(from int, prefix string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := from; i < len(c.seen); i++ {
		if strings.HasPrefix(c.seen[i].text, prefix) {
			return i
		}
	}
	return -1
}

func (c *consoleBot) lines() []timedLine {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.seen)
}

// stdout is everything printed so far.
func (c *consoleBot) stdout() string {
	var b strings.Builder
	for _, l := range c.lines() {
		b.WriteString(l.text + "\n")
	}
	return b.String()
}

// stderr is the log so far.
func (c *consoleBot) stderr() string {
	_, errOut := c.b.output()
	return errOut
}

// close ends the console's input and waits for the process to exit.
func (c *consoleBot) close(within time.Duration) {
	c.t.Helper()
	c.b.stdin.Close()
	select {
	case <-c.eof:
	case <-time.After(within):
		c.t.Errorf("bot still running %s after its input ended", within)
		c.b.cmd.Process.Kill()
		<-c.eof
	}
	if err := <-c.b.done; err != nil {
		c.t.Errorf("bot exited with %v", err)
	}
}

// dump is the output and log, for a failure's report.
func (c *consoleBot) dump() string {
	return "stdout:\n" + c.stdout() + "stderr:\n" + c.stderr()
}

var (
	queuedRe = regexp.MustCompile(`^Job (\w+) queued`)
	quotaRe  = regexp.MustCompile(`^Today: (\d+) of (\d+) images used, (\d+) left; resets in .*Jobs running: (\d+)\.$`)
	// internals are what a user-facing message must not show.
	internals = regexp.MustCompile(`(?i)https?://|127\.0\.0\.1|\bjson\b|\bHTTP[ /]\d|status \d|code \d|\bnil\b|panic|goroutine|\.go:\d|deadline exceeded|connection|\bEOF\b|<html|task_id|id_task|\buid\b`)
)

// ended matches job id's final line: done, or failed with its message.
func ended(id string) *regexp.Regexp {
	return regexp.MustCompile(`^Job ` + id + ` (done:|failed: (.*)$|was cancelled\.)`)
}

// jobResult is how one job ended, as the console showed it.
type jobResult struct {
	id      string
	ok      bool   // done, with an image
	msg     string // the failure message
	vendor  string // who made the picture
	elapsed time.Duration
	billed  int
}

var (
	captionVendorRe = regexp.MustCompile(`^  #\w+ · seed \d+ · \d+x\d+ · (\w+)$`)
	imagePathRe     = regexp.MustCompile(`^  (\S+\.(?:png|jpg|webp|gif))$`)
)

// runJob types a /draw, waits for its job to end and reads how.
func (c *consoleBot) runJob(command string, within time.Duration) (jobResult, bool) {
	c.t.Helper()
	from := c.send(command)
	m, start := c.await(from, queuedRe, 10*time.Second)
	if m == nil {
		c.t.Errorf("%q: no job queued\n%s", command, c.dump())
		return jobResult{}, false
	}
	r := jobResult{id: m[1]}
	e, end := c.await(from, ended(r.id), within)
	if e == nil {
		c.t.Errorf("%q: job %s did not end within %s\n%s", command, r.id, within, c.dump())
		return r, false
	}
	r.elapsed = end.Sub(start)
	if e[1] != "done:" {
		r.msg = e[2]
		return r, true
	}
	// The done block is one write, but its lines arrive one by one: its
	// last is the billed calls.
	done := c.index(from, "Job "+r.id+" done:")
	if m, _ := c.await(done+1, billedRe, 10*time.Second); m == nil {
		c.t.Errorf("job %s: the done block did not end\n%s", r.id, c.dump())
	}
	lines := c.lines()
	for i, l := range lines {
		if i < done || !strings.HasPrefix(l.text, "Job "+r.id+" done:") {
			continue
		}
		for _, l := range lines[i+1:] {
			if !strings.HasPrefix(l.text, "  ") {
				break
			}
			if p := imagePathRe.FindStringSubmatch(l.text); p != nil {
				if _, err := os.Stat(p[1]); err == nil {
					r.ok = true
				}
			}
			if v := captionVendorRe.FindStringSubmatch(l.text); v != nil {
				r.vendor = v[1]
			}
			if b := billedRe.FindStringSubmatch(l.text); b != nil {
				r.billed, _ = strconv.Atoi(b[1])
			}
		}
	}
	if !r.ok {
		c.t.Errorf("job %s done without an image on disk\n%s", r.id, c.dump())
	}
	return r, true
}

// quotaUsed asks /quota and returns the images used today and the jobs
// running. The console prints a result before the engine records it as
// delivered and frees its slot, so it asks again while a job still runs.
func (c *consoleBot) quotaUsed() (used, running int) {
	c.t.Helper()
	for try := 0; ; try++ {
		from := c.send("/quota")
		m, _ := c.await(from, quotaRe, 10*time.Second)
		if m == nil {
			c.t.Errorf("/quota: no answer\n%s", c.dump())
			return -1, -1
		}
		used, _ = strconv.Atoi(m[1])
		running, _ = strconv.Atoi(m[4])
		if running == 0 || try == 20 {
			return used, running
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkMessage: a failure message is a user-readable sentence with no
// internals and no secrets.
func checkMessage(t *testing.T, what, msg string, secrets ...string) {
	t.Helper()
	switch {
	case msg == "" || len([]rune(msg)) > 300:
		t.Errorf("%s: message %q: want a sentence", what, msg)
	case !strings.HasSuffix(msg, ".") && !strings.HasSuffix(msg, "。"):
		t.Errorf("%s: message %q does not read as a sentence", what, msg)
	case internals.MatchString(msg):
		t.Errorf("%s: message %q shows internals (%q)", what, msg, internals.FindString(msg))
	}
	for _, s := range secrets {
		if strings.Contains(msg, s) {
			t.Errorf("%s: message holds a secret", what)
		}
	}
}

// faultProxy stands in front of a vendor's fake and fails its submissions
// on request, for the faults the fakes do not act out themselves.
type faultProxy struct {
	srv           *httptest.Server
	submit, query string // what the paths of submissions and of queries contain
	mu            sync.Mutex
	fail          []int // statuses for the next submissions; -status: for every submission
	failed        int
	garble        int // query replies left to cut short
}

func newFaultProxy(t *testing.T, target, submit, query string) *faultProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{submit: submit, query: query}
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: u.Scheme, Host: u.Host})
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && strings.Contains(r.URL.Path, p.submit) {
			if status := p.next(); status != 0 {
				io.Copy(io.Discard, r.Body)
				if status == http.StatusTooManyRequests {
					w.Header().Set("Retry-After", "1")
				}
				w.Header().Set("Content-Type", "text/plain")
				w.WriteHeader(status)
				fmt.Fprintf(w, "%d %s", status, http.StatusText(status))
				return
			}
		}
		if strings.Contains(r.URL.Path, p.query) && p.garbleNext() {
			io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"code":"200","data":{"status":`)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

// failNext fails the next n submissions with status; n < 0: all of them.
func (p *faultProxy) failNext(status, n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n < 0 {
		p.fail = append(p.fail, -status)
		return
	}
	for range n {
		p.fail = append(p.fail, status)
	}
}

// garbleQueries cuts the next n query replies short: malformed JSON.
func (p *faultProxy) garbleQueries(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.garble += n
}

// consumed reports whether every fault asked of the proxy was acted out.
func (p *faultProxy) consumed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	pending := p.garble > 0 || (len(p.fail) > 0 && p.fail[0] > 0)
	always := len(p.fail) > 0 && p.fail[0] < 0
	return !pending && (!always || p.failed > 0)
}

func (p *faultProxy) garbleNext() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.garble == 0 {
		return false
	}
	p.garble--
	return true
}

func (p *faultProxy) next() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.fail) == 0 {
		return 0
	}
	s := p.fail[0]
	if s < 0 {
		p.failed++
		return -s
	}
	p.fail = p.fail[1:]
	p.failed++
	return s
}

// base is the proxy's address with target's path.
func (p *faultProxy) base(target string) string {
	u, _ := url.Parse(target)
	return p.srv.URL + u.Path
}

// vendorFake is one vendor's fake, behind a fault proxy, as a cell needs it.
type vendorFake struct {
	name   string
	secret string
	proxy  *faultProxy
	block  string       // the vendors.<name> YAML block
	tasks  func() int   // tasks the vendor holds
	billed func() int   // billed calls
	inject func(string) // acts out a fault the fake has programmatically
	// callbackURLs lists the callback URLs the bot gave the vendor, in order.
	callbackURLs func() []string
}

// The fakes' task time and the adapters' timing, shortened alike.
const (
	fakeTask   = 400 * time.Millisecond
	fakeTiming = "draw_duration: 400ms\n    poll_every: 300ms\n    poll_max: 1s\n"
)

func newVendorFake(t *testing.T, name string) *vendorFake {
	t.Helper()
	v := &vendorFake{name: name, secret: "e2e-SECRET-" + name + "-faults"}
	switch name {
	case "zhiqite":
		f := zhiqitetest.New(zhiqitetest.Options{AppCode: v.secret, Duration: fakeTask, ToolDuration: fakeTask,
			CallbackDelays: []time.Duration{100 * time.Millisecond}})
		t.Cleanup(f.Close)
		v.proxy = newFaultProxy(t, f.URL, "saas/sd/v2/text2image", "saas/sd/v2/queryTaskInfo")
		v.block = fmt.Sprintf("  zhiqite:\n    enabled: true\n    base_url: %s\n    app_code: %s\n    %s    tool_duration: 400ms\n",
			v.proxy.base(f.URL), v.secret, fakeTiming)
		v.tasks = func() int { return len(f.Tasks()) }
		v.billed = f.Billed
		v.callbackURLs = func() (out []string) {
			for _, c := range f.Calls() {
				var b struct {
					CallbackURL string `json:"callbackUrl"`
				}
				if c.Endpoint == "saas/sd/v2/text2image" && json.Unmarshal(c.Body, &b) == nil && b.CallbackURL != "" {
					out = append(out, b.CallbackURL)
				}
			}
			return out
		}
		v.inject = func(fault string) {
			switch fault {
			case "fail":
				f.SetFate(zhiqitetest.Fate{Fail: true})
			case "forget":
				f.SetFate(zhiqitetest.Fate{Forget: true})
			}
		}
	case "showapi":
		f := showapitest.Start(showapitest.Options{AppCode: v.secret, Duration: fakeTask, CallbackInterval: 100 * time.Millisecond, NoSeedTask: true})
		t.Cleanup(f.Close)
		v.proxy = newFaultProxy(t, f.URL, "/createtask", "/yourtaskresult")
		v.block = fmt.Sprintf("  showapi:\n    enabled: true\n    base_url: %s\n    app_code: %s\n    %s",
			v.proxy.base(f.URL), v.secret, strings.Replace(fakeTiming, "draw_duration", "typical_duration", 1))
		v.tasks = func() int { return len(f.TaskIDs()) }
		v.billed = f.Billed
		v.callbackURLs = func() (out []string) {
			for _, r := range f.Requests() {
				if q, err := url.ParseQuery(string(r.Body)); r.Path == "/createtask" && err == nil && q.Get("call_back") != "" {
					out = append(out, q.Get("call_back"))
				}
			}
			return out
		}
		v.inject = func(fault string) {
			switch fault {
			case "timeout":
				f.FailNext("/createtask", showapitest.FaultTimeout)
			case "badjson":
				f.FailNext("/createtask", showapitest.FaultBadJSON)
			}
		}
	case "apispace":
		f := apispacetest.New(apispacetest.Options{Token: v.secret, Queue: 20 * time.Millisecond, Duration: fakeTask})
		t.Cleanup(f.Close)
		v.proxy = newFaultProxy(t, f.BaseURL(), "/aigc/txt2img", "/aigc/query-image")
		v.block = fmt.Sprintf("  apispace:\n    enabled: true\n    base_url: %s\n    token: %s\n    %s",
			v.proxy.base(f.BaseURL()), v.secret, fakeTiming)
		v.tasks = func() int { return len(f.Tasks()) }
		v.billed = f.Billed
		v.callbackURLs = func() (out []string) {
			for _, task := range f.Tasks() {
				out = append(out, task.NotifyURL)
			}
			return out
		}
		v.inject = func(fault string) {
			switch fault {
			case "timeout":
				f.Inject(apispacetest.FaultTimeout)
			case "badjson":
				f.Inject(apispacetest.FaultBadJSON)
			}
		}
	default:
		t.Fatalf("no fake for %s", name)
	}
	return v
}

// faultConfig routes /draw to vendors, in order, with callbacks to a free
// loopback port and the given timeouts.
func faultConfig(t *testing.T, dir string, jobTimeout, vendorTimeout time.Duration, vendors ...*vendorFake) string {
	addr := freeAddr(t)
	var names, blocks []string
	for _, v := range vendors {
		names = append(names, v.name)
		blocks = append(blocks, v.block)
	}
	return fmt.Sprintf(`data_dir: %[1]s/data
console:
  out_dir: %[1]s/out
  user: tester
  wait: 30s
http:
  listen: %[2]s
  public_url: http://%[2]s
engine:
  job_timeout: %[3]s
  vendor_timeout: %[6]s
  routes:
    draw: [%[4]s]
quota:
  default: {daily: 100, concurrent: 20, every: 1ms, burst: 100}
vendors:
%[5]s`, dir, addr, jobTimeout, strings.Join(names, ", "), strings.Join(blocks, ""), vendorTimeout)
}

// fault is one column of the matrix.
type fault struct {
	name   string
	prompt map[string]string // the prompt's magic word, by vendor ("" for none)
	setup  func(v *vendorFake)
	// polling turns callbacks off, for faults in the replies to polls.
	polling bool
	want    string // "succeeded" or "failed"
	reason  string // for a failure: the message says this
	// atDeadline: no vendor takes the job, which fails at its deadline.
	atDeadline bool
}

var faults = []fault{
	{name: "timeout", want: "succeeded",
		// Zhiqite's "hang" makes the task and never answers: the bot must find it again.
		prompt: map[string]string{"zhiqite": "hang"},
		setup:  func(v *vendorFake) { v.inject("timeout") }},
	{name: "5xx", want: "succeeded", setup: func(v *vendorFake) { v.proxy.failNext(http.StatusInternalServerError, 1) }},
	{name: "429", want: "succeeded", setup: func(v *vendorFake) { v.proxy.failNext(http.StatusTooManyRequests, 2) }},
	{name: "badjson", want: "succeeded",
		prompt: map[string]string{"zhiqite": "badjson"},
		setup:  func(v *vendorFake) { v.inject("badjson") }},
	{name: "badpoll", want: "succeeded", polling: true, setup: func(v *vendorFake) { v.proxy.garbleQueries(2) }},
	{name: "expired", want: "failed", reason: "could not be downloaded", prompt: map[string]string{"*": "expired"}},
	{name: "unsafe", want: "failed", reason: "content check", prompt: map[string]string{"*": "unsafe"}},
	{name: "forgot", want: "failed", reason: "(lost|no longer knows)", prompt: map[string]string{"*": "forget"}},
	{name: "quota", want: "failed", atDeadline: true, reason: `No image service could take the job in time\. Your quota was refunded\.`, prompt: map[string]string{"zhiqite": "quota", "showapi": "quota", "apispace": "noquota"}},
	{name: "down", want: "failed", atDeadline: true, reason: `No image service could take the job in time\. Your quota was refunded\.`, setup: func(v *vendorFake) { v.proxy.failNext(http.StatusServiceUnavailable, -1) }},
}

// cell is one vendor × fault outcome.
type cell struct {
	outcome string
	secs    float64
	msg     string // the chat's message for a failure
}

func TestFaultMatrix(t *testing.T) {
	vendors := []string{"zhiqite", "showapi", "apispace"}
	var (
		mu     sync.Mutex
		matrix = map[string]map[string]cell{}
		wg     sync.WaitGroup
		slots  = make(chan struct{}, 9) // bot processes at once
	)
	for _, vendor := range vendors {
		matrix[vendor] = map[string]cell{}
		for _, f := range faults {
			wg.Add(1)
			go func() {
				defer wg.Done()
				slots <- struct{}{}
				defer func() { <-slots }()
				c := faultCell(t, vendor, f)
				mu.Lock()
				matrix[vendor][f.name] = c
				mu.Unlock()
			}()
		}
	}
	wg.Wait()
	var b strings.Builder
	fmt.Fprintf(&b, "%-9s", "")
	for _, f := range faults {
		fmt.Fprintf(&b, " %-14s", f.name)
	}
	for _, vendor := range vendors {
		fmt.Fprintf(&b, "\n%-9s", vendor)
		for _, f := range faults {
			c := matrix[vendor][f.name]
			fmt.Fprintf(&b, " %-14s", fmt.Sprintf("%s %.1fs", c.outcome, c.secs))
		}
	}
	b.WriteString("\nmessages:")
	for _, vendor := range vendors {
		for _, f := range faults {
			if c := matrix[vendor][f.name]; c.msg != "" {
				fmt.Fprintf(&b, "\n  %s/%s: %s", vendor, f.name, c.msg)
			}
		}
	}
	t.Logf("vendor × fault (job_timeout %s for quota and down, %s for the rest; ok: succeeded, refunded: failed and refunded):\n%s", faultJobTimeout, endJobTimeout, b.String())
}

// faultCell runs one vendor × fault in its own bot process. Errors are
// reported with t.Errorf, which is safe from the matrix's goroutines.
func faultCell(t *testing.T, vendor string, f fault) cell {
	dir, err := os.MkdirTemp("", "picbot-fault")
	if err != nil {
		t.Error(err)
		return cell{outcome: "error"}
	}
	defer os.RemoveAll(dir)
	v := newVendorFake(t, vendor)
	if f.setup != nil {
		f.setup(v)
	}
	if f.polling {
		v.block += "    callbacks: false\n"
	}
	word := f.prompt[vendor]
	if word == "" {
		word = f.prompt["*"]
	}
	jobTimeout, vendorTimeout := endJobTimeout, endVendorTimeout
	switch {
	case f.atDeadline:
		jobTimeout, vendorTimeout = faultJobTimeout, faultVendorTimeout
	case f.name == "timeout":
		vendorTimeout = hangVendorTimeout
	}
	c := startConsole(t, dir, faultConfig(t, dir, jobTimeout, vendorTimeout, v))
	name := vendor + "/" + f.name
	r, ok := c.runJob(fmt.Sprintf("/draw a lighthouse %s --seed 11 --size %s", word, faultSize), jobTimeout+deadlineSlack+5*time.Second)
	if !ok {
		c.close(30 * time.Second)
		return cell{outcome: "no end"}
	}
	used, running := c.quotaUsed()
	c.close(30 * time.Second)
	out := cell{outcome: "ok", secs: r.elapsed.Seconds(), msg: r.msg}
	if !r.ok {
		out.outcome = "refunded"
		if used != 0 {
			out.outcome = "charged"
		}
	}
	want := map[string]string{"succeeded": "ok", "failed": "refunded"}[f.want]
	if out.outcome != want {
		t.Errorf("%s: %s (%q), want %s\n%s", name, out.outcome, r.msg, want, c.dump())
	}
	if r.elapsed > jobTimeout+deadlineSlack {
		t.Errorf("%s: ended %s after it was queued, past its deadline (%s)\n%s", name, r.elapsed.Round(time.Millisecond), jobTimeout, c.dump())
	}
	if r.ok && (used != 1 || r.vendor != vendor) {
		t.Errorf("%s: made by %q, %d images charged; want %s and 1", name, r.vendor, used, vendor)
	}
	if running != 0 {
		t.Errorf("%s: %d jobs still running after the end", name, running)
	}
	if !r.ok {
		checkMessage(t, name, r.msg, v.secret)
		if !regexp.MustCompile(f.reason).MatchString(r.msg) {
			t.Errorf("%s: message %q does not say %q", name, r.msg, f.reason)
		}
	}
	if strings.Contains(c.stdout()+c.stderr(), v.secret) {
		t.Errorf("%s: the vendor's secret is in the bot's output or log", name)
	}
	if !v.proxy.consumed() {
		t.Errorf("%s: the fault was never acted out", name)
	}
	return out
}

// TestFailover routes /draw to two vendors. A vendor that is down is
// skipped; a task a vendor accepted stays there unless it failed there; a
// content refusal is not shopped around. The fakes' task and billing
// counts show where each job went.
func TestFailover(t *testing.T) {
	for _, tc := range []struct {
		name   string
		route  []string
		prompt string
		setup  func(v map[string]*vendorFake)
		want   string         // the vendor that makes the picture; "" for a failure
		tasks  map[string]int // tasks each vendor ends up holding
		// untouched vendors must see no billed call at all.
		untouched []string
	}{
		{name: "DownIsSkipped", route: []string{"zhiqite", "apispace"}, want: "apispace",
			setup: func(v map[string]*vendorFake) { v["zhiqite"].proxy.failNext(http.StatusBadGateway, -1) },
			tasks: map[string]int{"zhiqite": 0, "apispace": 1}},
		{name: "LostReplyStaysAtVendor", route: []string{"zhiqite", "apispace"}, prompt: "hang", want: "zhiqite",
			tasks: map[string]int{"zhiqite": 1, "apispace": 0}, untouched: []string{"apispace"}},
		{name: "ThrottledStaysAtVendor", route: []string{"showapi", "apispace"}, want: "showapi",
			setup: func(v map[string]*vendorFake) { v["showapi"].proxy.failNext(http.StatusTooManyRequests, 2) },
			tasks: map[string]int{"showapi": 1, "apispace": 0}, untouched: []string{"apispace"}},
		{name: "FailedGoesOn", route: []string{"zhiqite", "showapi"}, want: "showapi",
			setup: func(v map[string]*vendorFake) { v["zhiqite"].inject("fail") },
			tasks: map[string]int{"zhiqite": 1, "showapi": 1}},
		{name: "ForgottenGoesOn", route: []string{"zhiqite", "apispace"}, want: "apispace",
			setup: func(v map[string]*vendorFake) { v["zhiqite"].inject("forget") },
			tasks: map[string]int{"zhiqite": 1, "apispace": 1}},
		{name: "UnsafeIsNotRetried", route: []string{"showapi", "zhiqite"}, prompt: "unsafe",
			tasks: map[string]int{"showapi": 1, "zhiqite": 0}, untouched: []string{"zhiqite"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fakes := map[string]*vendorFake{}
			var route []*vendorFake
			for _, name := range tc.route {
				fakes[name] = newVendorFake(t, name)
				route = append(route, fakes[name])
			}
			if tc.setup != nil {
				tc.setup(fakes)
			}
			// No case ends at its deadline (faultCell).
			timeout, vendorTimeout := endJobTimeout, endVendorTimeout
			if tc.prompt == "hang" {
				vendorTimeout = hangVendorTimeout
			}
			dir := t.TempDir()
			c := startConsole(t, dir, faultConfig(t, dir, timeout, vendorTimeout, route...))
			r, ok := c.runJob("/draw a harbour at dawn "+tc.prompt+" --seed 5 --size "+faultSize, timeout+deadlineSlack)
			if !ok {
				c.close(30 * time.Second)
				return
			}
			used, running := c.quotaUsed()
			c.close(30 * time.Second)
			t.Logf("%s in %s: made by %q %s; billed calls: bot %d, vendors %d", r.id, r.elapsed.Round(10*time.Millisecond), r.vendor, r.msg, r.billed, billedSum(fakes))
			switch {
			case tc.want == "" && r.ok:
				t.Errorf("succeeded at %s; want a failure", r.vendor)
			case tc.want == "" && used != 0:
				t.Errorf("failed, but %d images charged", used)
			case tc.want != "" && (!r.ok || r.vendor != tc.want || used != 1):
				t.Errorf("made by %q (ok %v, %d charged, %q); want %s and 1 charged\n%s", r.vendor, r.ok, used, r.msg, tc.want, c.dump())
			}
			if running != 0 {
				t.Errorf("%d jobs still running", running)
			}
			if r.elapsed > timeout+deadlineSlack {
				t.Errorf("ended %s after it was queued, past its deadline", r.elapsed)
			}
			sum := 0
			for name, want := range tc.tasks {
				if got := fakes[name].tasks(); got != want {
					t.Errorf("%s holds %d tasks, want %d\n%s", name, got, want, c.dump())
				}
				sum += fakes[name].billed()
			}
			for _, name := range tc.untouched {
				if n := fakes[name].billed(); n != 0 {
					t.Errorf("%s billed %d calls; the job was never its to take", name, n)
				}
			}
			// The bot counts the calls the engine makes; an adapter's own
			// calls inside a failed submission (Zhiqite asking whether a
			// submission whose reply was lost exists) it cannot see.
			if r.ok && r.billed > sum {
				t.Errorf("the console says %d billed calls, the vendors %d", r.billed, sum)
			}
			if !r.ok {
				checkMessage(t, tc.name, r.msg)
			}
		})
	}
}

func billedSum(fakes map[string]*vendorFake) int {
	n := 0
	for _, f := range fakes {
		n += f.billed()
	}
	return n
}
