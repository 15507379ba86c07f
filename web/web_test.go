package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/picbot/picbot/engine"
	"github.com/picbot/picbot/internal/testclock"
	"github.com/picbot/picbot/quota"
	"github.com/picbot/picbot/store"
	"github.com/picbot/picbot/web"
	"golang.org/x/crypto/bcrypt"
)

const password = "s3cret-password"

// fakeEngine records the console's calls.
type fakeEngine struct {
	mu      sync.Mutex
	calls   []string
	cancel  func(id string) error
	health  []engine.VendorHealth
	pending int
}

func (f *fakeEngine) record(s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, s)
}

func (f *fakeEngine) Calls() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(f.calls, " ")
}

func (f *fakeEngine) Cancel(ctx context.Context, id string, by engine.UserRef, admin bool) (*engine.Job, error) {
	f.record(fmt.Sprintf("cancel:%s:admin=%v", id, admin))
	if f.cancel != nil {
		return nil, f.cancel(id)
	}
	return &engine.Job{ID: id}, nil
}
func (f *fakeEngine) RetryDelivery(ctx context.Context, id string) (*engine.Job, error) {
	f.record("retry:" + id)
	return &engine.Job{ID: id}, nil
}
func (f *fakeEngine) Health() []engine.VendorHealth      { return f.health }
func (f *fakeEngine) Outstanding(string) int             { return f.pending }
func (f *fakeEngine) Progress(id string) (float64, bool) { return 0.5, true }

type blobs map[string][]byte

func (b blobs) Open(_ context.Context, key string) (io.ReadCloser, error) {
	v, ok := b[key]
	if !ok {
		return nil, engine.Errorf(engine.ENOTFOUND, "no", "no")
	}
	return io.NopCloser(bytes.NewReader(v)), nil
}

type env struct {
	t      *testing.T
	srv    *httptest.Server
	db     *store.DB
	quota  *quota.Quota
	engine *fakeEngine
	clock  *testclock.Clock
}

func pngData(t *testing.T) []byte {
	var b bytes.Buffer
	if err := png.Encode(&b, image.NewGray(image.Rect(0, 0, 4, 4))); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// newEnv serves the console over a real store and quota, with a fake engine
// and two stored jobs: "done1" delivered with an image, "run1" running.
func newEnv(t *testing.T, cfg web.Config) *env {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	qc := quota.DefaultConfig()
	qc.Tiers = map[string]quota.Tier{"vip": {Daily: 100}}
	q, err := quota.New(qc, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, db: db, quota: q, engine: &fakeEngine{health: []engine.VendorHealth{{Name: "zhiqite", Billed: true}}}, clock: testclock.New(time.Now())}
	ctx := context.Background()
	owner := engine.UserRef{Platform: "telegram", ID: "42", Name: "Ann"}
	chat := engine.ChatRef{Platform: "telegram", ChatID: "-100"}
	done := &engine.Job{ID: "done1", Owner: owner, Chat: chat, State: engine.StateQueued, Vendor: "zhiqite", TaskID: "task-77",
		CallbackToken: "CALLBACK-SECRET", Meta: map[string]string{"interaction_token": "INTERACTION-SECRET"},
		Request: engine.Request{Kind: engine.KindDraw, Prompt: "a red fox", Width: 512, Height: 512, N: 1},
		Results: []engine.Result{{Blob: "blob1", Mime: "image/png", Width: 4, Height: 4}}, CreatedAt: time.Now().Add(-time.Minute), BilledCalls: 2}
	if err := db.CreateJob(ctx, done, func(c engine.Counters) error { return q.Reserve(c, done, time.Now()) }); err != nil {
		t.Fatal(err)
	}
	db.UpdateJob(ctx, "done1", func(j *engine.Job, c engine.Counters) error {
		j.State, j.FinishedAt, j.DeliveredAt = engine.StateDelivered, time.Now(), time.Now()
		q.Settle(c, j, false)
		return nil
	})
	run := &engine.Job{ID: "run1", Owner: owner, Chat: chat, State: engine.StateRunning, Vendor: "zhiqite",
		Request: engine.Request{Kind: engine.KindAnime, Prompt: "a cat"}, CreatedAt: time.Now()}
	if err := db.CreateJob(ctx, run, nil); err != nil {
		t.Fatal(err)
	}
	if cfg.Password == "" && cfg.PasswordHash == "" {
		cfg.Password = password
	}
	cfg.Now = e.clock.Now
	h, err := web.New(cfg, db, e.engine, q, db, blobs{"blob1": pngData(t)}, web.Figures{
		Refusals: func() map[string]float64 { return map[string]float64{"quota": 3} },
	})
	if err != nil {
		t.Fatal(err)
	}
	m := http.NewServeMux()
	h.Register(m)
	e.srv = httptest.NewServer(m)
	t.Cleanup(e.srv.Close)
	return e
}

// client is a browser without cookies that does not follow redirects.
type client struct {
	e       *env
	cookies map[string]*http.Cookie
	header  http.Header
}

func (e *env) client() *client {
	return &client{e: e, cookies: map[string]*http.Cookie{}, header: http.Header{}}
}

func (c *client) do(method, path string, form url.Values) (*http.Response, string) {
	c.e.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, c.e.srv.URL+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range c.header {
		req.Header[k] = v
	}
	for _, ck := range c.cookies {
		req.AddCookie(ck)
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		c.e.t.Fatal(err)
	}
	defer resp.Body.Close()
	for _, ck := range resp.Cookies() {
		if ck.MaxAge < 0 {
			delete(c.cookies, ck.Name)
		} else {
			c.cookies[ck.Name] = ck
		}
	}
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func (c *client) get(path string) (*http.Response, string) { return c.do("GET", path, nil) }
func (c *client) post(path string, form url.Values) (*http.Response, string) {
	if form == nil {
		form = url.Values{}
	}
	return c.do("POST", path, form)
}

var csrfRe = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// login logs in and returns the session's CSRF token.
func (c *client) login() string {
	c.e.t.Helper()
	resp, _ := c.post("/admin/login", url.Values{"password": {password}, "name": {"ann"}})
	if resp.StatusCode != http.StatusSeeOther {
		c.e.t.Fatalf("login: %s", resp.Status)
	}
	_, body := c.get("/admin/people")
	m := csrfRe.FindStringSubmatch(body)
	if m == nil {
		c.e.t.Fatalf("no CSRF token on the page:\n%s", body)
	}
	return m[1]
}

func TestLogin(t *testing.T) {
	t.Run("RedirectsWithoutSession", func(t *testing.T) {
		e := newEnv(t, web.Config{})
		for _, p := range []string{"/admin/", "/admin/jobs", "/admin/jobs/done1", "/admin/jobs/done1/images/0", "/admin/people", "/admin/nope"} {
			resp, _ := e.client().get(p)
			if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/admin/login") {
				t.Errorf("GET %s: %s → %q, want a redirect to /admin/login", p, resp.Status, loc)
			}
		}
	})
	t.Run("CookieAttributes", func(t *testing.T) {
		e := newEnv(t, web.Config{})
		c := e.client()
		resp, _ := c.post("/admin/login", url.Values{"password": {password}})
		ck := c.cookies["picbot_admin"]
		if resp.StatusCode != http.StatusSeeOther || ck == nil || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Secure || ck.Path != "/admin/" {
			t.Fatalf("%s, cookie %+v", resp.Status, ck)
		}
		c2 := e.client()
		c2.header.Set("X-Forwarded-Proto", "https")
		c2.post("/admin/login", url.Values{"password": {password}})
		if ck := c2.cookies["picbot_admin"]; ck == nil || !ck.Secure {
			t.Fatalf("over https: cookie %+v, want Secure", ck)
		}
		if resp, _ := c.get("/admin/jobs"); resp.StatusCode != http.StatusOK {
			t.Fatalf("with the session: %s", resp.Status)
		}
	})
	t.Run("WrongPassword", func(t *testing.T) {
		e := newEnv(t, web.Config{})
		c := e.client()
		resp, body := c.post("/admin/login", url.Values{"password": {"nope"}})
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "Wrong password") || c.cookies["picbot_admin"] != nil {
			t.Fatalf("%s, cookies %v", resp.Status, c.cookies)
		}
	})
	t.Run("RateLimitedPerAddress", func(t *testing.T) {
		e := newEnv(t, web.Config{LoginAttempts: 3, LoginWindow: time.Minute})
		c := e.client()
		for range 3 {
			c.post("/admin/login", url.Values{"password": {"guess"}})
		}
		resp, _ := c.post("/admin/login", url.Values{"password": {password}})
		if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || c.cookies["picbot_admin"] != nil {
			t.Fatalf("fourth try, right password: %s; want 429 and no session", resp.Status)
		}
		e.clock.Add(61 * time.Second)
		if resp, _ := c.post("/admin/login", url.Values{"password": {password}}); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("after the window: %s", resp.Status)
		}
	})
	t.Run("SessionExpires", func(t *testing.T) {
		e := newEnv(t, web.Config{SessionTTL: time.Hour})
		c := e.client()
		c.login()
		e.clock.Add(59 * time.Minute)
		if resp, _ := c.get("/admin/jobs"); resp.StatusCode != http.StatusOK {
			t.Fatalf("within the hour: %s", resp.Status)
		}
		e.clock.Add(2 * time.Minute)
		if resp, _ := c.get("/admin/jobs"); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("after the hour: %s, want a redirect to the login", resp.Status)
		}
	})
	t.Run("Logout", func(t *testing.T) {
		e := newEnv(t, web.Config{})
		c := e.client()
		token := c.login()
		stolen := c.cookies["picbot_admin"]
		if resp, _ := c.post("/admin/logout", url.Values{"csrf": {token}}); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("logout: %s", resp.Status)
		}
		c2 := e.client()
		c2.cookies["picbot_admin"] = stolen
		if resp, _ := c2.get("/admin/jobs"); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("old cookie after logout: %s", resp.Status)
		}
	})
	t.Run("NextStaysOnConsole", func(t *testing.T) {
		e := newEnv(t, web.Config{})
		for next, want := range map[string]string{"/admin/jobs/done1": "/admin/jobs/done1", "https://evil.example/": "/admin/", "//evil.example/admin/": "/admin/"} {
			resp, _ := e.client().post("/admin/login", url.Values{"password": {password}, "next": {next}})
			if got := resp.Header.Get("Location"); got != want {
				t.Errorf("next %q: Location %q, want %q", next, got, want)
			}
		}
	})
}

func TestPasswordHash(t *testing.T) {
	bc, _ := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	// Made with the argon2 reference tool: echo -n s3cret-password | argon2 somesaltsomesalt -id -t 2 -m 12 -p 1 -l 32 -e
	const argon = "$argon2id$v=19$m=4096,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$Of0AnF+m+UaBhAHrgEUEmd2OCdJN5KsWklyxFU6qMtU"
	for name, hash := range map[string]string{"bcrypt": string(bc), "argon2id": argon} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, web.Config{PasswordHash: hash})
			if resp, _ := e.client().post("/admin/login", url.Values{"password": {"wrong"}}); resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("wrong password: %s", resp.Status)
			}
			if resp, _ := e.client().post("/admin/login", url.Values{"password": {password}}); resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("right password: %s", resp.Status)
			}
		})
	}
	for _, bad := range []string{"plain", "$argon2id$v=19$m=0,t=2,p=1$c2FsdA$a2V5", "$argon2i$v=19$m=4096,t=2,p=1$c2FsdA$a2V5", "$2b$99$xx"} {
		if err := web.CheckHash(bad); err == nil {
			t.Errorf("CheckHash(%q) accepted", bad)
		}
	}
}

// every state-changing route of the console, with a valid form otherwise.
var posts = []struct {
	path string
	form url.Values
}{
	{"/admin/people/ban", url.Values{"key": {"telegram:42"}}},
	{"/admin/people/unban", url.Values{"key": {"telegram:42"}}},
	{"/admin/people/tier", url.Values{"key": {"telegram:42"}, "tier": {"vip"}}},
	{"/admin/people/quota", url.Values{"key": {"telegram:42"}, "daily": {"3"}}},
	{"/admin/jobs/run1/cancel", url.Values{}},
	{"/admin/jobs/run1/retry", url.Values{}},
	{"/admin/jobs/done1/refund", url.Values{}},
	{"/admin/jobs/done1/images/0/hide", url.Values{}},
	{"/admin/jobs/done1/images/0/delete", url.Values{}},
	{"/admin/logout", url.Values{}},
	{"/admin/no/such/page", url.Values{}},
}

func TestCSRF(t *testing.T) {
	e := newEnv(t, web.Config{})
	c := e.client()
	token := c.login()
	for _, p := range posts {
		for name, tok := range map[string]string{"none": "", "wrong": "x" + token[1:]} {
			form := url.Values{}
			for k, v := range p.form {
				form[k] = v
			}
			if tok != "" {
				form.Set("csrf", tok)
			}
			if resp, _ := c.post(p.path, form); resp.StatusCode != http.StatusForbidden {
				t.Errorf("POST %s, token %s: %s, want 403", p.path, name, resp.Status)
			}
		}
		if resp, _ := e.client().post(p.path, p.form); resp.StatusCode != http.StatusForbidden {
			t.Errorf("POST %s without a session: %s, want 403", p.path, resp.Status)
		}
	}
	// Nothing happened.
	if calls := e.engine.Calls(); calls != "" {
		t.Fatalf("engine called: %s", calls)
	}
	ps, _ := e.quota.People(context.Background())
	for _, p := range ps {
		if p.Banned || p.Tier != "" || p.Daily >= 0 {
			t.Fatalf("changed by a refused POST: %+v", p)
		}
	}
	j, _ := e.db.Job(context.Background(), "done1")
	if len(j.Results) != 1 || j.Meta["web.hidden.0"] != "" || j.Charge.Settled != engine.ChargeCommitted {
		t.Fatalf("job changed by a refused POST: %+v", j)
	}
	entries, _ := e.db.Audit(context.Background(), 100)
	for _, en := range entries {
		if en.Action != "login" {
			t.Fatalf("audited a refused POST: %+v", en)
		}
	}
	t.Run("CrossOrigin", func(t *testing.T) {
		c.header.Set("Origin", "https://evil.example")
		defer c.header.Del("Origin")
		if resp, _ := c.post("/admin/people/ban", url.Values{"key": {"telegram:42"}, "csrf": {token}}); resp.StatusCode != http.StatusForbidden {
			t.Fatalf("cross-origin POST with the token: %s", resp.Status)
		}
		if resp, _ := e.client().do("POST", "/admin/login", url.Values{"password": {password}}); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("same-origin login: %s", resp.Status)
		}
		c.header.Set("Origin", "null")
		if resp, _ := c.post("/admin/people/ban", url.Values{"key": {"telegram:42"}, "csrf": {token}}); resp.StatusCode != http.StatusForbidden {
			t.Fatalf("Origin null with the token: %s", resp.Status)
		}
	})
	t.Run("HeaderToken", func(t *testing.T) {
		c.header.Set("X-CSRF-Token", token)
		defer c.header.Del("X-CSRF-Token")
		if resp, _ := c.post("/admin/people/ban", url.Values{"key": {"telegram:7"}}); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("token in X-CSRF-Token: %s", resp.Status)
		}
	})
}

func TestActions(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, web.Config{})
	c := e.client()
	token := c.login()
	act := func(path string, form url.Values) string {
		t.Helper()
		form.Set("csrf", token)
		resp, _ := c.post(path, form)
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("POST %s: %s", path, resp.Status)
		}
		return resp.Header.Get("Location")
	}
	person := func(key string) quota.Person {
		ps, err := e.quota.People(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range ps {
			if p.Key == key {
				return p
			}
		}
		return quota.Person{Key: key, Daily: -1}
	}
	t.Run("Ban", func(t *testing.T) {
		act("/admin/people/ban", url.Values{"key": {"telegram:42"}})
		if !person("telegram:42").Banned {
			t.Fatal("not banned")
		}
		// The quota refuses the banned user's next command, as after /admin ban.
		if err := e.quota.Admit(ctx, engine.UserRef{Platform: "telegram", ID: "42"}, engine.ChatRef{Platform: "telegram", ChatID: "1"}); engine.ErrorCode(err) != engine.EFORBIDDEN {
			t.Fatalf("admit after ban: %v", err)
		}
		act("/admin/people/unban", url.Values{"key": {"telegram:42"}})
		if person("telegram:42").Banned {
			t.Fatal("still banned")
		}
	})
	t.Run("TierAndQuota", func(t *testing.T) {
		act("/admin/people/tier", url.Values{"key": {"telegram:42"}, "tier": {"vip"}})
		act("/admin/people/quota", url.Values{"key": {"telegram:42"}, "daily": {"7"}})
		if p := person("telegram:42"); p.Tier != "vip" || p.Daily != 7 {
			t.Fatalf("%+v", p)
		}
		loc := act("/admin/people/tier", url.Values{"key": {"telegram:42"}, "tier": {"gold"}})
		if !strings.Contains(loc, "error=") || !strings.Contains(loc, "gold") {
			t.Fatalf("unknown tier: redirected to %q, want the quota's error", loc)
		}
		if loc := act("/admin/people/quota", url.Values{"key": {"telegram:42"}, "daily": {"-2"}}); !strings.Contains(loc, "error=") {
			t.Fatalf("negative quota: %q", loc)
		}
		if loc := act("/admin/people/ban", url.Values{"key": {"42"}}); !strings.Contains(loc, "error=") {
			t.Fatalf("key without platform: %q", loc)
		}
		act("/admin/people/tier", url.Values{"key": {"telegram:42"}, "tier": {"default"}})
		act("/admin/people/quota", url.Values{"key": {"telegram:42"}, "daily": {"default"}})
		if p := person("telegram:42"); p.Tier != "" || p.Daily != -1 {
			t.Fatalf("after default: %+v", p)
		}
	})
	t.Run("JobActions", func(t *testing.T) {
		act("/admin/jobs/run1/cancel", url.Values{})
		act("/admin/jobs/done1/retry", url.Values{})
		if got, want := e.engine.Calls(), "cancel:run1:admin=true retry:done1"; got != want {
			t.Fatalf("engine calls %q, want %q", got, want)
		}
		st, _ := e.quota.Status(ctx, engine.UserRef{Platform: "telegram", ID: "42"})
		if st.Used != 1 {
			t.Fatalf("used %d before the refund", st.Used)
		}
		act("/admin/jobs/done1/refund", url.Values{})
		st, _ = e.quota.Status(ctx, engine.UserRef{Platform: "telegram", ID: "42"})
		if st.Used != 0 {
			t.Fatalf("used %d after the refund", st.Used)
		}
		if loc := act("/admin/jobs/done1/refund", url.Values{}); !strings.Contains(loc, "error=") {
			t.Fatalf("second refund: %q", loc)
		}
	})
	t.Run("HideAndDelete", func(t *testing.T) {
		_, body := c.get("/admin/gallery")
		if !strings.Contains(body, "/admin/jobs/done1/images/0") {
			t.Fatal("image not in the gallery")
		}
		act("/admin/jobs/done1/images/0/hide", url.Values{})
		if _, body := c.get("/admin/gallery"); strings.Contains(body, "/admin/jobs/done1/images/0") {
			t.Fatal("hidden image still in the gallery")
		}
		if _, body := c.get("/admin/gallery?hidden=1"); !strings.Contains(body, "/admin/jobs/done1/images/0") {
			t.Fatal("hidden image not shown with hidden=1")
		}
		if loc := act("/admin/jobs/run1/images/0/delete", url.Values{}); !strings.Contains(loc, "error=") {
			t.Fatalf("delete of a missing image: %q", loc)
		}
		act("/admin/jobs/done1/images/0/delete", url.Values{})
		j, _ := e.db.Job(ctx, "done1")
		if len(j.Results) != 0 || j.Meta["web.hidden.0"] != "" || j.Meta["interaction_token"] == "" {
			t.Fatalf("after delete: results %v meta %v", j.Results, j.Meta)
		}
	})
	t.Run("Audited", func(t *testing.T) {
		_, body := c.get("/admin/audit")
		for _, want := range []string{
			`<td>ann@127.0.0.1</td><td>ban</td><td class="mono">telegram:42</td><td></td><td>ok</td>`,
			`<td>tier</td><td class="mono">telegram:42</td><td>gold</td><td>error: No tier &#34;gold&#34;`,
			`<td>cancel</td><td class="mono">run1</td>`,
			`<td>refund</td><td class="mono">done1</td><td></td><td>ok</td>`,
			`<td>delete image</td><td class="mono">done1</td><td>1</td><td>ok</td>`,
			`<td>login</td>`,
		} {
			if !strings.Contains(body, want) {
				t.Errorf("audit log lacks %s", want)
			}
		}
		entries, _ := e.db.Audit(ctx, 100)
		for _, en := range entries {
			if en.At.IsZero() || en.Who == "" || en.Action == "" {
				t.Errorf("incomplete entry %+v", en)
			}
		}
	})
	t.Run("CancelError", func(t *testing.T) {
		e.engine.cancel = func(string) error { return errors.New("disk on fire: /dev/sda") }
		loc := act("/admin/jobs/run1/cancel", url.Values{})
		if strings.Contains(loc, "sda") || !strings.Contains(loc, "error=") {
			t.Fatalf("internal error shown: %q", loc)
		}
	})
}

func TestPages(t *testing.T) {
	e := newEnv(t, web.Config{Prices: map[string]float64{"zhiqite": 0.05}, Currency: "CNY"})
	c := e.client()
	c.login()
	for _, p := range []struct{ path, want string }{
		{"/admin/overview", "jobs, last 24 h"},
		{"/admin/jobs", "done1"},
		{"/admin/jobs?state=running", "run1"},
		{"/admin/jobs?kind=draw", "done1"},
		{"/admin/jobs?user=Ann", "done1"},
		{"/admin/jobs?fragment=1", "<tr"},
		{"/admin/jobs/done1", "task-77"},
		{"/admin/gallery", "a red fox"},
		{"/admin/people", "telegram:42"},
		{"/admin/vendors", "zhiqite"},
		{"/admin/audit", "login"},
	} {
		resp, body := c.get(p.path)
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, p.want) {
			t.Errorf("GET %s: %s, want %q in:\n%s", p.path, resp.Status, p.want, body)
			continue
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "unsafe") {
			t.Errorf("%s: CSP %q", p.path, csp)
		}
		// no-referrer would make browsers send "Origin: null" on the console's own forms.
		if rp := resp.Header.Get("Referrer-Policy"); rp != "same-origin" {
			t.Errorf("%s: Referrer-Policy %q", p.path, rp)
		}
		// Nothing inline for the CSP to refuse, and no secret.
		for _, bad := range []string{"<script>", "style=\"", " onclick", "CALLBACK-SECRET", "INTERACTION-SECRET", password} {
			if strings.Contains(body, bad) {
				t.Errorf("%s contains %q", p.path, bad)
			}
		}
	}
	c.header.Set("Accept", "application/json")
	resp, body := c.get("/admin/jobs?state=delivered")
	c.header.Del("Accept")
	var list struct {
		Jobs []struct {
			ID, State, User string
			Billed          int `json:"billed_calls"`
		}
	}
	if err := json.Unmarshal([]byte(body), &list); err != nil || resp.Header.Get("Content-Type") != "application/json" ||
		len(list.Jobs) != 1 || list.Jobs[0].ID != "done1" || list.Jobs[0].State != "delivered" || list.Jobs[0].User != "telegram:42" || list.Jobs[0].Billed != 2 {
		t.Errorf("JSON list: %v %s", err, body)
	}
	if strings.Contains(body, "SECRET") {
		t.Errorf("JSON list holds a secret: %s", body)
	}
	if _, body := c.get("/admin/jobs?kind=draw"); !strings.Contains(body, `data-live="/admin/jobs?kind=draw&amp;fragment=1"`) {
		t.Error("the first page does not refresh itself with its filter")
	}
	if _, body := c.get(fmt.Sprintf("/admin/jobs?before=%d", time.Now().Add(time.Hour).UnixNano())); strings.Contains(body, "data-live") || !strings.Contains(body, "done1") {
		t.Error("a later page refreshes itself, or lacks its jobs")
	}
	if _, body := c.get("/admin/jobs?state=running"); strings.Contains(body, "done1") {
		t.Error("state filter kept a delivered job")
	}
	resp, body = c.get("/admin/jobs/done1/images/0")
	if resp.Header.Get("Content-Type") != "image/png" || !strings.HasPrefix(body, "\x89PNG") {
		t.Errorf("image: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	if resp, _ := c.get("/admin/jobs/nope"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("missing job: %s", resp.Status)
	}
	if resp, _ := c.get("/admin/jobs/done1/images/5"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("missing image: %s", resp.Status)
	}
	if resp, _ := c.get("/admin/static/app.js"); resp.StatusCode != http.StatusOK {
		t.Errorf("static: %s", resp.Status)
	}
}

func TestLanguage(t *testing.T) {
	e := newEnv(t, web.Config{})
	c := e.client()
	c.login()
	c.header.Set("Accept-Language", "zh-CN,zh;q=0.9,en;q=0.8")
	if _, body := c.get("/admin/jobs"); !strings.Contains(body, "计费调用") || !strings.Contains(body, "已送达") {
		t.Fatalf("Accept-Language zh: not Chinese:\n%s", body)
	}
	if _, body := c.get("/admin/jobs?lang=en"); !strings.Contains(body, "Billed calls") {
		t.Fatal("?lang=en: not English")
	}
	if _, body := c.get("/admin/jobs"); !strings.Contains(body, "Billed calls") {
		t.Fatal("the switch did not stick")
	}
	c.header.Set("Accept-Language", "en-US,en;q=0.9,zh;q=0.5")
	delete(c.cookies, "picbot_lang")
	if _, body := c.get("/admin/jobs"); !strings.Contains(body, "Billed calls") {
		t.Fatal("en preferred: not English")
	}
}
