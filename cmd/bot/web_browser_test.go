package main

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromium finds a Chromium or Chrome to drive, or "".
func chromium() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// TestWebBrowser drives the console in a real headless Chromium at a
// phone's width, against the real binary: log in, see a job delivered
// earlier in the list and a new one appear without a reload, open the
// first and see its image, ban the console user and see the ban refuse
// their next command, and the ban in the audit log. A screenshot of each
// page is saved in the test's artifact directory (go test -artifacts keeps it).
func TestWebBrowser(t *testing.T) {
	exe := chromium()
	if exe == "" && os.Getenv("PICBOT_REQUIRE_CHROMIUM") != "" {
		t.Fatal("no Chromium, and PICBOT_REQUIRE_CHROMIUM is set (.ci/run installs Debian's chromium)")
	}
	if exe == "" {
		t.Skip("no Chromium: install Debian's chromium (apt-get install chromium) to run the browser test; .ci/run does")
	}
	dir := t.TempDir()
	b, base := webBot(t, dir)
	io.WriteString(b.stdin, "/draw a red fox --seed 7 --size 256x256\n")
	first := b.waitLine(t, doneRe, time.Minute)[1]

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.NoSandbox,
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.WindowSize(412, 915))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()

	shots := t.ArtifactDir()
	fail := func(what string, err error) {
		t.Helper()
		out, errOut := b.output()
		t.Fatalf("%s: %v\nbot stdout:\n%s\nstderr:\n%s", what, err, out, errOut)
	}
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			fail(what, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			fail("text of "+sel, err)
		}
		return v
	}
	shot := func(name string) {
		t.Helper()
		buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			fail("screenshot "+name, err)
		}
		if err := os.WriteFile(filepath.Join(shots, name+".png"), buf, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	// click clicks what loads a page, waits for it, and checks where it landed.
	click := func(what, sel, want string) {
		t.Helper()
		resp, err := chromedp.RunResponse(ctx, chromedp.Click(css(sel)))
		if err != nil {
			fail(what, err)
		}
		if resp.Status != 200 || !strings.HasPrefix(resp.URL, base+want) {
			t.Fatalf("%s: %d %s, want 200 at %s", what, resp.Status, resp.URL, want)
		}
	}

	do("open the console", chromedp.Navigate(base+"/admin/jobs"), chromedp.WaitVisible(css(`input[name="password"]`)))
	if url, err := chromedp.Run(ctx, chromedp.Location()); err != nil || !strings.Contains(url, "/admin/login") {
		t.Fatalf("not sent to the login: %s %v", url, err)
	}
	shot("login")
	do("log in", chromedp.SendKeys(css(`input[name="name"]`), "ann"), chromedp.SendKeys(css(`input[name="password"]`), webPassword))
	click("log in", `#login`, "/admin/jobs")
	do("jobs", chromedp.WaitVisible(css(`table.jobs`)))
	if rows := text(`#rows`); !strings.Contains(rows, first) || !strings.Contains(rows, "delivered") {
		t.Fatalf("job %s not listed as delivered:\n%s", first, rows)
	}
	shot("jobs")

	// A job made now appears in the open list by itself (the page's refresh).
	io.WriteString(b.stdin, "/draw a second fox --seed 8 --size 256x256\n")
	second := b.waitLine(t, acceptedRe, time.Minute)[1]
	do("live list", chromedp.WaitVisible(css(`a[href="/admin/jobs/`+second+`"]`)))

	click("open the job", `a[href="/admin/jobs/`+first+`"]`, "/admin/jobs/"+first)
	do("image", chromedp.WaitVisible(css(`img.thumb`)))
	natural, err := chromedp.Run(ctx, chromedp.Poll[int](`document.querySelector("img.thumb").complete && document.querySelector("img.thumb").naturalWidth`))
	if err != nil {
		fail("image", err)
	}
	if page := text(`main`); natural != 256 || !strings.Contains(page, "a red fox") {
		t.Fatalf("job page: image width %d, want 256; text:\n%s", natural, page)
	}
	shot("job")
	for _, p := range []string{"overview", "gallery", "vendors"} {
		do(p, chromedp.Navigate(base+"/admin/"+p), chromedp.WaitVisible(css(`main h1`)))
		shot(p)
	}

	do("people", chromedp.Navigate(base+"/admin/people"), chromedp.WaitVisible(css(`#ban-key`)), chromedp.SendKeys(css(`#ban-key`), "console:alice"))
	click("ban", `#ban`, "/admin/people")
	do("flash", chromedp.WaitVisible(css(`.flash`)))
	if flash := text(`.flash`); !strings.Contains(flash, "ban console:alice") {
		t.Fatalf("after the ban: %q", flash)
	}
	shot("people")
	io.WriteString(b.stdin, "/draw a third fox\n")
	b.waitLine(t, regexp.MustCompile(`can't use this bot`), 30*time.Second)

	do("audit", chromedp.Navigate(base+"/admin/audit"), chromedp.WaitVisible(css(`#audit`)))
	if audit := text(`#audit`); !regexp.MustCompile(`ann@127\.0\.0\.1\s+ban\s+console:alice`).MatchString(audit) {
		t.Fatalf("audit log lacks the ban:\n%s", audit)
	}
	shot("audit")
	do("chinese", chromedp.Navigate(base+"/admin/jobs?lang=zh"), chromedp.WaitVisible(css(`table.jobs`)))
	shot("jobs-zh")
	t.Logf("screenshots in %s", shots)
	b.wait(t, time.Minute)
}
