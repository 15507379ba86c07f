package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

const webPassword = "correct horse battery"

// webBot runs the binary with the console (user alice, no admins) and the
// web console on a loopback port, and returns it with the server's base URL.
func webBot(t *testing.T, dir string) (*bot, string) {
	t.Helper()
	addr := freeAddr(t)
	cfg := filepath.Join(dir, "picbot.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`console:
  user: alice
quota:
  admins: []
http:
  listen: %q
local:
  duration: 300ms
web:
  password: %q
`, addr, webPassword)), 0o600)
	b := startBot(t, dir, "-config", cfg)
	base := "http://" + addr
	waitHTTP(t, base+"/healthz")
	return b, base
}

func waitHTTP(t *testing.T, u string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(u); err == nil {
			resp.Body.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s never answered", u)
}

// waitLine waits for a console line matching re and returns its submatches.
func (b *bot) waitLine(t *testing.T, re *regexp.Regexp, within time.Duration) []string {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case line, ok := <-b.lines:
			if !ok {
				out, errOut := b.output()
				t.Fatalf("bot exited before %s\nstdout:\n%s\nstderr:\n%s", re, out, errOut)
			}
			if m := re.FindStringSubmatch(line); m != nil {
				return m
			}
		case <-deadline:
			out, errOut := b.output()
			t.Fatalf("no line like %s within %s\nstdout:\n%s\nstderr:\n%s", re, within, out, errOut)
		}
	}
}

func getPage(t *testing.T, c *http.Client, u string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func postForm(t *testing.T, c *http.Client, u string, form url.Values) (*http.Response, string) {
	t.Helper()
	resp, err := c.PostForm(u, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

var csrfRe = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// TestWebConsole drives the real binary: a job made on the console is
// listed under /admin/jobs after logging in with web.password, its image
// is served, a POST without the CSRF token is refused and changes
// nothing, a ban with it refuses the user's next command, and the audit
// log shows the ban.
func TestWebConsole(t *testing.T) {
	dir := t.TempDir()
	b, base := webBot(t, dir)
	io.WriteString(b.stdin, "/draw a red fox --seed 7 --size 256x256\n")
	id := b.waitLine(t, doneRe, time.Minute)[1]

	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	noFollow := &http.Client{Jar: jar, Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	resp, _ := getPage(t, noFollow, base+"/admin/jobs")
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/admin/login") {
		t.Fatalf("unauthenticated /admin/jobs: %s, Location %q; want a redirect to /admin/login", resp.Status, loc)
	}
	if resp, _ := postForm(t, c, base+"/admin/login", url.Values{"password": {"wrong password"}}); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong password: %s", resp.Status)
	}
	resp, _ = postForm(t, noFollow, base+"/admin/login", url.Values{"password": {webPassword}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login: %s", resp.Status)
	}
	var cookie *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == "picbot_admin" {
			cookie = ck
		}
	}
	if cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode || cookie.Secure {
		t.Fatalf("session cookie %+v: want HttpOnly, SameSite=Strict, not Secure over http", cookie)
	}

	resp, body := getPage(t, c, base+"/admin/jobs")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, id) || !strings.Contains(body, "delivered") {
		t.Fatalf("/admin/jobs: %s; want job %s delivered in:\n%s", resp.Status, id, body)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "script-src 'self'") {
		t.Errorf("CSP %q", csp)
	}
	if strings.Contains(body, webPassword) {
		t.Error("the password is on the page")
	}
	_, body = getPage(t, c, base+"/admin/jobs/"+id)
	if !strings.Contains(body, "a red fox") || !strings.Contains(body, "/admin/jobs/"+id+"/images/0") {
		t.Fatalf("job page lacks the prompt or the image:\n%s", body)
	}
	resp, img := getPage(t, c, base+"/admin/jobs/"+id+"/images/0")
	if resp.Header.Get("Content-Type") != "image/png" || !strings.HasPrefix(img, "\x89PNG") {
		t.Fatalf("image: %s %q", resp.Status, resp.Header.Get("Content-Type"))
	}

	// No token: refused, and alice is not banned.
	if resp, _ := postForm(t, c, base+"/admin/people/ban", url.Values{"key": {"console:alice"}}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("ban without CSRF token: %s, want 403", resp.Status)
	}
	if resp, _ := postForm(t, c, base+"/admin/people/ban", url.Values{"key": {"console:alice"}, "csrf": {"forged"}}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("ban with a wrong CSRF token: %s, want 403", resp.Status)
	}
	_, body = getPage(t, c, base+"/admin/people")
	if strings.Contains(body, "st-failed\">banned") {
		t.Fatal("a refused POST banned alice")
	}
	m := csrfRe.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no CSRF token on /admin/people:\n%s", body)
	}
	resp, body = postForm(t, c, base+"/admin/people/ban", url.Values{"key": {"console:alice"}, "csrf": {m[1]}, "back": {"/admin/people"}})
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "console:alice") {
		t.Fatalf("ban: %s\n%s", resp.Status, body)
	}
	io.WriteString(b.stdin, "/draw another fox\n")
	b.waitLine(t, regexp.MustCompile(`can't use this bot`), 30*time.Second)

	_, body = getPage(t, c, base+"/admin/audit")
	if !regexp.MustCompile(`(?s)<td>admin@127\.0\.0\.1</td><td>ban</td><td class="mono">console:alice</td><td></td><td>ok</td>`).MatchString(body) {
		t.Fatalf("audit log lacks the ban:\n%s", body)
	}
	for _, p := range []string{"overview", "gallery", "vendors"} {
		if resp, body := getPage(t, c, base+"/admin/"+p); resp.StatusCode != http.StatusOK || strings.Contains(body, webPassword) {
			t.Errorf("/admin/%s: %s", p, resp.Status)
		}
	}
	b.wait(t, time.Minute)
}

var jobLinkRe = regexp.MustCompile(`href="(/admin/jobs/\w+)"`)

// webPages logs in to the console at base and returns every page it
// shows, each job's page included, for a search for secrets.
func webPages(t *testing.T, base, password string) string {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	if resp, _ := postForm(t, c, base+"/admin/login", url.Values{"password": {password}}); resp.StatusCode != http.StatusOK {
		t.Fatalf("web login: %s", resp.Status)
	}
	var all strings.Builder
	for _, p := range []string{"overview", "jobs", "gallery", "people", "vendors", "audit"} {
		resp, body := getPage(t, c, base+"/admin/"+p)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("/admin/%s: %s", p, resp.Status)
		}
		all.WriteString(body)
		if p == "jobs" {
			for _, m := range jobLinkRe.FindAllStringSubmatch(body, -1) {
				_, job := getPage(t, c, base+m[1])
				all.WriteString(job)
			}
		}
	}
	return all.String()
}

func TestWebConfig(t *testing.T) {
	for yaml, want := range map[string]string{
		"web:\n  password: longenoughpassword\n":                          "web.password: line 2: turns the web console on, which needs http.listen",
		"http:\n  listen: :0\nweb:\n  password_hash: nope\n":              "web.password_hash: line 4: not a bcrypt",
		"http:\n  listen: :0\nweb:\n  password_hash: $2b$10$short\n":      "web.password_hash: line 4: bcrypt hash",
		"web:\n  prices:\n    zhiqit: 0.05\n":                             "web.prices.zhiqit",
		"web:\n  session_ttl: 0s\n":                                       "web.session_ttl",
		"http:\n  listen: :0\nweb:\n  password: x\n  login_attempts: 0\n": "web.login_attempts",
	} {
		path := filepath.Join(t.TempDir(), "c.yaml")
		os.WriteFile(path, []byte(yaml), 0o600)
		if _, err := LoadConfig(path); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err %v, want %q", yaml, err, want)
		}
	}
	l, err := load("", func(k string) (string, bool) {
		v, ok := map[string]string{"PICBOT_WEB_PASSWORD": "from-the-environment", "PICBOT_HTTP_LISTEN": ":0"}[k]
		return v, ok
	})
	if err != nil || l.cfg.Web.Password != "from-the-environment" || !slices.Contains(l.cfg.secrets(), "from-the-environment") {
		t.Fatalf("PICBOT_WEB_PASSWORD: %v, %q", err, l.cfg.Web.Password)
	}
}
