package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// The callback endpoint, through the built binary: a callback replayed ten
// times at once and ten times more is delivered once; a forged one (wrong
// token, another job's token, unknown job or vendor) is 404 and changes
// nothing; one about another task is acknowledged and ignored; one over
// http.max_body is 413; and slow clients are cut off by the server's timeouts.

// callbackProxy is the bot's public URL: it passes vendors' requests on to
// the bot, keeps each job's first callback, fans the first job's callback
// out as ten concurrent posts, and holds back every later job's callbacks,
// so those jobs finish by polling while the test forges callbacks for them.
type callbackProxy struct {
	srv *httptest.Server
	bot string // the bot's own base URL

	mu      sync.Mutex
	first   string            // the job whose callback is fanned out
	genuine map[string][]byte // job id → the vendor's first callback body
	path    map[string]string // job id → the callback path
	fanned  []reply           // the bot's answers to the fan-out
	held    int               // callbacks held back
}

type reply struct {
	status int
	body   string
}

func newCallbackProxy(t *testing.T, bot string) *callbackProxy {
	t.Helper()
	p := &callbackProxy{bot: bot, genuine: map[string][]byte{}, path: map[string]string{}}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *callbackProxy) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/"), "/")
	if r.Method != http.MethodPost || len(parts) != 4 || parts[0] != "callback" {
		res := post(r.Method, p.bot+r.URL.RequestURI(), r.Header.Get("Content-Type"), body)
		w.WriteHeader(res.status)
		io.WriteString(w, res.body)
		return
	}
	job := parts[2]
	p.mu.Lock()
	if p.first == "" {
		p.first = job
	}
	if _, ok := p.genuine[job]; !ok {
		p.genuine[job], p.path[job] = body, r.URL.Path
	}
	fan := job == p.first && p.fanned == nil
	if fan {
		p.fanned = []reply{} // the vendor's retries pass through
	}
	if job != p.first {
		p.held++
		p.mu.Unlock()
		http.Error(w, "held back by the test", http.StatusServiceUnavailable)
		return
	}
	p.mu.Unlock()
	if !fan {
		res := post(http.MethodPost, p.bot+r.URL.Path, r.Header.Get("Content-Type"), body)
		w.WriteHeader(res.status)
		io.WriteString(w, res.body)
		return
	}
	replies := make([]reply, 10)
	var wg sync.WaitGroup
	for i := range replies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			replies[i] = post(http.MethodPost, p.bot+r.URL.Path, r.Header.Get("Content-Type"), body)
		}()
	}
	wg.Wait()
	p.mu.Lock()
	p.fanned = replies
	p.mu.Unlock()
	w.WriteHeader(replies[0].status)
	io.WriteString(w, replies[0].body)
}

func (p *callbackProxy) callback(job string) (path string, body []byte, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	body, ok = p.genuine[job]
	return p.path[job], body, ok
}

func (p *callbackProxy) heldBack() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.held
}

func (p *callbackProxy) fanOut() []reply {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.fanned
}

// post sends one request and reads the answer; status 0 if it failed.
func post(method, u, contentType string, body []byte) reply {
	req, err := http.NewRequest(method, u, bytes.NewReader(body))
	if err != nil {
		return reply{}
	}
	if contentType == "" {
		contentType = "application/json"
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return reply{body: err.Error()}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, string(b)}
}

func TestCallbackEndpoint(t *testing.T) {
	for _, vendor := range []string{"zhiqite", "showapi", "apispace"} {
		t.Run(vendor, func(t *testing.T) {
			t.Parallel()
			callbackRun(t, vendor)
		})
	}
}

func callbackRun(t *testing.T, vendor string) {
	v := newVendorFake(t, vendor)
	// A longer safety net than the fault tests': job B, its callbacks held
	// back, must wait for its first poll while forged callbacks arrive.
	block := strings.Replace(v.block, "poll_max: 1s", "poll_max: 3s", 1)
	addr := freeAddr(t)
	bot := "http://" + addr
	proxy := newCallbackProxy(t, bot)
	dir := t.TempDir()
	const maxBody = 4096
	c := startConsole(t, dir, fmt.Sprintf(`data_dir: %[1]s/data
console:
  out_dir: %[1]s/out
  user: tester
http:
  listen: %[2]s
  public_url: %[3]s
  max_body: %[4]d
engine:
  job_timeout: 20s
  routes:
    draw: [%[5]s]
quota:
  default: {daily: 100, concurrent: 20, every: 1ms, burst: 100}
vendors:
%[6]s`, dir, addr, proxy.srv.URL, maxBody, vendor, block))
	defer func() {
		if t.Failed() {
			t.Log(c.dump())
		}
	}()

	// Job A: the vendor's callback arrives ten times at once, then ten more.
	a, ok := c.runJob("/draw a quiet pond --seed 3", 15*time.Second)
	if !ok || !a.ok {
		t.Fatalf("job A: %+v", a)
	}
	replies := proxy.fanOut()
	if len(replies) != 10 {
		t.Fatalf("the callback was fanned out %d times", len(replies))
	}
	path, bodyA, _ := proxy.callback(a.id)
	for i, r := range replies {
		if r.status != http.StatusOK || r.body == "" || r.body != replies[0].body {
			t.Errorf("fan-out %d: %d %q", i, r.status, r.body)
		}
	}
	for i := range 10 {
		if r := post(http.MethodPost, bot+path, "", bodyA); r.status != http.StatusOK || r.body != replies[0].body {
			t.Errorf("replay %d after delivery: %d %q", i, r.status, r.body)
		}
	}

	// Job B: its own callbacks are held back; it finishes by polling while
	// forged ones arrive.
	from := c.send("/draw a windy hill --seed 4")
	m, _ := c.await(from, queuedRe, 10*time.Second)
	if m == nil {
		t.Fatal("job B not queued")
	}
	idB := m[1]
	var urlB string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if u := v.callbackURLs(); len(u) == 2 {
			urlB = u[1]
			break
		}
	}
	if !strings.Contains(urlB, "/callback/"+vendor+"/"+idB+"/") {
		t.Fatalf("job B's callback URL %q", urlB)
	}
	tokenB := urlB[strings.LastIndex(urlB, "/")+1:]
	tokenA := path[strings.LastIndex(path, "/")+1:]
	cb := func(v, job, token string) string { return fmt.Sprintf("%s/callback/%s/%s/%s", bot, v, job, token) }
	for _, tc := range []struct {
		name   string
		url    string
		body   []byte
		status int
	}{
		{"WrongToken", cb(vendor, idB, strings.Repeat("0", len(tokenB))), bodyA, http.StatusNotFound},
		{"OtherJobsToken", cb(vendor, idB, tokenA), bodyA, http.StatusNotFound},
		{"NoToken", cb(vendor, idB, ""), bodyA, http.StatusNotFound},
		{"UnknownJob", cb(vendor, "zzzzzzzz", tokenB), bodyA, http.StatusNotFound},
		{"UnknownVendor", cb("nobody", idB, tokenB), bodyA, http.StatusNotFound},
		{"NotACallbackVendor", cb("local", idB, tokenB), bodyA, http.StatusNotFound},
		// The right job and token, with A's finished task: acknowledged, ignored.
		{"OtherTask", cb(vendor, idB, tokenB), bodyA, http.StatusOK},
		{"TooLarge", cb(vendor, idB, tokenB), append(bodyA, bytes.Repeat([]byte(" "), maxBody)...), http.StatusRequestEntityTooLarge},
	} {
		if r := post(http.MethodPost, tc.url, "", tc.body); r.status != tc.status {
			t.Errorf("%s: %d %q, want %d", tc.name, r.status, r.body, tc.status)
		}
	}
	e, _ := c.await(from, ended(idB), 15*time.Second)
	if e == nil || e[1] != "done:" {
		t.Fatalf("job B: %v", e)
	}
	used, running := c.quotaUsed()
	c.close(30 * time.Second)

	out := c.stdout()
	if n := strings.Count(out, "Job "+a.id+" done:"); n != 1 {
		t.Errorf("job A delivered %d times", n)
	}
	if n := strings.Count(out, "Job "+idB+" done:"); n != 1 {
		t.Errorf("job B delivered %d times", n)
	}
	imgA, imgB := readResult(t, dir, a.id), readResult(t, dir, idB)
	if bytes.Equal(imgA, imgB) {
		t.Error("job B was given job A's picture: a callback for another task was taken")
	}
	if used != 2 || running != 0 {
		t.Errorf("quota: %d used, %d running; want 2 and 0", used, running)
	}
	if proxy.heldBack() == 0 {
		t.Error("job B's callback never came: it was not held back")
	}
	if strings.Contains(c.stdout()+c.stderr(), v.secret) {
		t.Error("the vendor's secret is in the bot's output or log")
	}
}

// readResult reads the one image the console wrote for job id.
func readResult(t *testing.T, dir, id string) []byte {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "out", id+"-*"))
	if len(files) != 1 {
		t.Fatalf("job %s: %d result files %v", id, len(files), files)
	}
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestCallbackSlowClients: a client that sends its headers, or its body, a
// byte at a time is cut off by http.read_header_timeout and
// http.read_timeout, and the server keeps serving others.
func TestCallbackSlowClients(t *testing.T) {
	const headerTimeout, readTimeout = 300 * time.Millisecond, time.Second
	addr := freeAddr(t)
	dir := t.TempDir()
	c := startConsole(t, dir, fmt.Sprintf(`data_dir: %[1]s/data
console:
  out_dir: %[1]s/out
http:
  listen: %[2]s
  read_header_timeout: %[3]s
  read_timeout: %[4]s
`, dir, addr, headerTimeout, readTimeout))
	healthy := func() bool {
		r := post(http.MethodGet, "http://"+addr+"/healthz", "", nil)
		return r.status == http.StatusOK
	}
	for deadline := time.Now().Add(10 * time.Second); !healthy(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the server never answered\n%s", c.dump())
		}
	}
	for _, tc := range []struct {
		name    string
		head    string // sent at once
		trickle string // then a byte every 50 ms
		timeout time.Duration
	}{
		{"Headers", "POST /callback/zhiqite/abcdefgh/0123 HTTP/1.1\r\nHost: picbot\r\n", "X-Slow: " + strings.Repeat("a", 400), headerTimeout},
		{"Body", "POST /callback/zhiqite/abcdefgh/0123 HTTP/1.1\r\nHost: picbot\r\nContent-Type: application/json\r\nContent-Length: 400\r\n\r\n",
			`{"code":"200","data":` + strings.Repeat(" ", 380), readTimeout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			start := time.Now()
			if _, err := io.WriteString(conn, tc.head); err != nil {
				t.Fatal(err)
			}
			stop := make(chan struct{})
			defer close(stop)
			go func() {
				for i := 0; i < len(tc.trickle); i++ {
					select {
					case <-stop:
						return
					case <-time.After(50 * time.Millisecond):
					}
					if _, err := conn.Write([]byte{tc.trickle[i]}); err != nil {
						return
					}
				}
			}()
			// Whatever the server answers, it must then close the connection.
			conn.SetReadDeadline(time.Now().Add(tc.timeout + 10*time.Second))
			answer, err := io.ReadAll(bufio.NewReader(conn))
			took := time.Since(start)
			if err != nil {
				t.Fatalf("not cut off: %v after %s", err, took)
			}
			if took < tc.timeout*8/10 || took > tc.timeout+2*time.Second {
				t.Errorf("cut off after %s; want about %s", took.Round(time.Millisecond), tc.timeout)
			}
			t.Logf("cut off after %s, answered %q", took.Round(time.Millisecond), firstLine(answer))
		})
	}
	if !healthy() {
		t.Error("the server stopped answering")
	}
	c.close(30 * time.Second)
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(string(b), "\r\n")
	return s
}
