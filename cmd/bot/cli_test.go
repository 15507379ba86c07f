package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"maps"

	"github.com/picbot/picbot/bots/telegram/telegramtest"
)

// runBin runs the binary to its end in dir with env added (and every
// PICBOT_ variable of the test's environment removed) and returns its
// stdout, stderr and exit status.
func runBin(t *testing.T, dir string, env []string, stdin string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Dir = dir
	cmd.Env = append(cleanEnv(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%v still running after a minute\nstdout:\n%s\nstderr:\n%s", args, out.String(), errOut.String())
	}
	return out.String(), errOut.String(), exitCode(err)
}

// cleanEnv is the test's environment without PICBOT_ variables, so that an
// operator's token cannot reach a test.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PICBOT_") {
			env = append(env, kv)
		}
	}
	return append(env, "LANG=C")
}

// TestHelpAndVersion: -h lists the flags, every environment variable and
// the README; -version prints one; a stray argument is a usage error, not
// a run on the defaults.
func TestHelpAndVersion(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{{"-h"}, {"-help"}, {"help"}} {
		out, errOut, code := runBin(t, dir, nil, "", args...)
		if code != 0 {
			t.Fatalf("%v: exit %d\n%s", args, code, errOut)
		}
		for _, want := range []string{"-config", "-version", "check config", "backup", "README.md", "config.example.yaml"} {
			if !strings.Contains(out, want) {
				t.Errorf("%v lacks %q:\n%s", args, want, out)
			}
		}
		var cfg Config
		for name := range cfg.envFields() {
			if !strings.Contains(out, name) {
				t.Errorf("%v lacks %s", args, name)
			}
		}
	}
	var cfg Config
	if got, want := slices.Sorted(maps.Keys(envHelp)), slices.Sorted(maps.Keys(cfg.envFields())); !slices.Equal(got, want) {
		t.Errorf("envHelp %v\nenvFields %v", got, want)
	}
	out, _, code := runBin(t, dir, nil, "", "-version")
	if code != 0 || !regexp.MustCompile(`^picbot \S+`).MatchString(out) {
		t.Fatalf("-version: exit %d, %q", code, out)
	}
	// -ldflags sets the version.
	bin := filepath.Join(t.TempDir(), "picbot")
	if b, err := exec.Command("go", "build", "-ldflags", "-X main.version=v9.8.7", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, b)
	}
	if b, err := exec.Command(bin, "-version").Output(); err != nil || !strings.HasPrefix(string(b), "picbot v9.8.7") {
		t.Fatalf("-version with ldflags: %q %v", b, err)
	}
	for _, args := range [][]string{{"config.yaml"}, {"-config"}, {"-nope"}, {"check"}, {"check", "vendorz"}} {
		_, errOut, code := runBin(t, dir, nil, "", args...)
		if code != 2 || !strings.Contains(errOut, "picbot") {
			t.Errorf("%v: exit %d, stderr %q", args, code, errOut)
		}
	}
	if _, errOut, _ := runBin(t, dir, nil, "", "config.yaml"); !strings.Contains(errOut, "-config config.yaml") {
		t.Errorf("no hint: %s", errOut)
	}
	if _, err := os.Stat(filepath.Join(dir, "data")); err == nil {
		t.Fatal("a usage error opened a store")
	}
}

// TestCheckConfig: check config exits 0 on a valid file and prints what it
// would run; non-zero with the errors on a bad one; it starts nothing.
func TestCheckConfig(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, []byte("console:\n  enabled: false\ntelegram:\n  enabled: true\n"), 0o600)
	out, errOut, code := runBin(t, dir, []string{"PICBOT_TELEGRAM_TOKEN=1:check-SECRET"}, "", "check", "config", "-config", good)
	if code != 0 || !strings.Contains(out, "valid") || !strings.Contains(out, "telegram (long polling") {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", code, out, errOut)
	}
	if strings.Contains(out+errOut, "check-SECRET") {
		t.Fatal("the token is shown")
	}
	// Without the token: Telegram is enabled by the file and has none.
	out, errOut, code = runBin(t, dir, nil, "", "check", "config", "-config", good)
	if code != 1 || !strings.Contains(errOut, "telegram.token") || strings.Contains(out, "valid") {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", code, out, errOut)
	}
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("engine:\n  workers: many\nlog:\n  levl: info\n"), 0o600)
	_, errOut, code = runBin(t, dir, nil, "", "check", "config", "-config", bad)
	if code != 1 || !strings.Contains(errOut, `engine.workers: line 2: "many" is not a number`) || !strings.Contains(errOut, "log.levl: line 4") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(dir, "data")); err == nil {
		t.Fatal("check config opened a store")
	}
	// The embedded defaults are valid, and check config FILE works too.
	if out, errOut, code := runBin(t, dir, nil, "", "check", "config"); code != 0 || !strings.Contains(out, "console") {
		t.Fatalf("defaults: exit %d %s %s", code, out, errOut)
	}
	if _, errOut, code := runBin(t, dir, nil, "", "check", "config", bad); code != 1 || !strings.Contains(errOut, "engine.workers") {
		t.Fatalf("check config FILE: exit %d %s", code, errOut)
	}
}

// TestNoPlatform: with every chat off the bot refuses to start, plainly.
func TestNoPlatform(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c.yaml")
	os.WriteFile(path, []byte("console:\n  enabled: false\n"), 0o600)
	start := time.Now()
	_, errOut, code := runBin(t, dir, nil, "", "-config", path)
	if code != 1 || !strings.Contains(errOut, "no chat platform is enabled") || !strings.Contains(errOut, "PICBOT_TELEGRAM_TOKEN") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("took %s to refuse", d)
	}
	// check config says the same.
	if _, errOut, code := runBin(t, dir, nil, "", "check", "config", "-config", path); code != 1 || !strings.Contains(errOut, "no chat platform") {
		t.Fatalf("check config: exit %d %s", code, errOut)
	}
}

// TestDirsWritable: a data_dir or console.out_dir the bot cannot write is
// a startup error naming the key.
func TestDirsWritable(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "afile")
	os.WriteFile(file, []byte("x"), 0o600)
	for key, yaml := range map[string]string{
		"data_dir":        "data_dir: " + file + "\n",
		"console.out_dir": "console:\n  out_dir: " + file + "/out\n",
	} {
		path := filepath.Join(dir, "c.yaml")
		os.WriteFile(path, []byte(yaml), 0o600)
		_, errOut, code := runBin(t, dir, nil, "", "-config", path)
		if code != 1 || !strings.Contains(errOut, key+": line 1") && !strings.Contains(errOut, key+": line 2") || !strings.Contains(errOut, "afile") {
			t.Errorf("%s: exit %d: %s", key, code, errOut)
		}
	}
	if os.Getuid() != 0 { // root writes anywhere
		ro := filepath.Join(dir, "ro")
		os.Mkdir(ro, 0o500)
		path := filepath.Join(dir, "c.yaml")
		os.WriteFile(path, []byte("data_dir: "+ro+"/data\n"), 0o600)
		if _, errOut, code := runBin(t, dir, nil, "", "-config", path); code != 1 || !strings.Contains(errOut, "cannot") {
			t.Errorf("read-only: exit %d %s", code, errOut)
		}
	}
}

// TestStartSummary: the bot says once, at start, what runs and where, in
// the log and on the console's terminal; at shutdown how many jobs will
// resume. No secret is in it.
func TestStartSummary(t *testing.T) {
	const token = "4242:SUMMARY-secret-token"
	fake := telegramtest.New(token, "SummaryBot")
	defer fake.Close()
	dir := t.TempDir()
	addr := freeAddr(t)
	path := filepath.Join(dir, "c.yaml")
	os.WriteFile(path, []byte(fmt.Sprintf(`data_dir: %[1]s/data
console:
  out_dir: %[1]s/out
http:
  listen: %[2]s
  public_url: https://bot.example.com
local:
  duration: 1h
fetch:
  allow_private: true
telegram:
  enabled: true
  api_endpoint: %[3]q
  poll_timeout: 1s
discord:
  enabled: true
  application_id: "112233445566778899"
  mode: http
  public_key: %[4]s
  api_base: http://127.0.0.1:9
`, dir, addr, fake.URL, strings.Repeat("ab", 32))), 0o600)
	b := startBotEnv(t, dir, []string{"PICBOT_TELEGRAM_TOKEN=" + token, "PICBOT_DISCORD_TOKEN=SUMMARY.discord.secret"}, "-config", path)
	wantLines := []string{
		"chats:", "console (user local, images in " + dir + "/out)", "telegram (long polling, " + fake.URL + ")",
		"discord (HTTP interactions, application 112233445566778899)",
		"vendors:", "local (built-in, not an AI model)",
		"routes:", "/draw → local", "/swapface → local",
		"http:", "listening on http://" + addr,
		"callbacks:", "https://bot.example.com/callback/<vendor>/<job>/<token>",
		"metrics:", "http://" + addr + "/metrics",
		"discord interactions:", "https://bot.example.com/discord/interactions",
		"discord invite:", "https://discord.com/oauth2/authorize?client_id=112233445566778899&scope=bot+applications.commands&permissions=274878024704",
		"data:", dir + "/data",
		"warning: fetch.allow_private is true",
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, stderr := b.output()
		missing := ""
		for _, w := range wantLines {
			if !strings.Contains(stderr, w) {
				missing = w
				break
			}
		}
		if missing == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the summary lacks %q:\n%s", missing, stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The log has the same as one record.
	_, stderr := b.output()
	if n := strings.Count(stderr, `msg="picbot started"`); n != 1 {
		t.Fatalf("%d start records:\n%s", n, stderr)
	}
	if !strings.Contains(stderr, `level=WARN msg="fetch.allow_private is true`) {
		t.Errorf("no warning in the log:\n%s", stderr)
	}
	// Two jobs that cannot finish (the renderer takes an hour) are left to resume.
	io.WriteString(b.stdin, "/draw one --size 64x64\n/draw two --size 64x64\n")
	for n := 0; n < 2; {
		line, ok := <-b.lines
		if !ok {
			t.Fatal("the bot ended")
		}
		if acceptedRe.MatchString(line) {
			n++
		}
	}
	b.cmd.Process.Signal(syscall.SIGTERM)
	for range b.lines {
	}
	<-b.done
	stdout, stderr := b.output()
	if !strings.Contains(stderr, "picbot stopped: 2 unfinished jobs will resume at the next start") || !strings.Contains(stderr, `msg="picbot stopped" resume=2`) {
		t.Errorf("no shutdown count:\n%s", stderr)
	}
	for _, s := range []string{token, "SUMMARY.discord.secret"} {
		if strings.Contains(stdout+stderr, s) {
			t.Errorf("secret %q shown", s)
		}
	}
}

// TestPlatformFailureStops: a token Telegram refuses stops the bot with the
// reason and a non-zero status, instead of running on with no chat.
func TestPlatformFailureStops(t *testing.T) {
	fake := telegramtest.New("1:right-token", "RefusingBot")
	defer fake.Close()
	dir := t.TempDir()
	path := filepath.Join(dir, "c.yaml")
	os.WriteFile(path, []byte(fmt.Sprintf("console:\n  enabled: false\ntelegram:\n  api_endpoint: %q\n", fake.URL)), 0o600)
	_, errOut, code := runBin(t, dir, []string{"PICBOT_TELEGRAM_TOKEN=1:wrong-token"}, "", "-config", path)
	if code != 1 || !strings.Contains(errOut, "refused the token") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
}

// dockerRun is how the Dockerfile runs the bot: its ENTRYPOINT and CMD,
// its ENV, and the files it COPYs from the repository, found by reading it.
type dockerRun struct {
	args  []string          // ENTRYPOINT[1:] + CMD, image paths mapped to the repository's files
	env   []string          // ENV
	files map[string]string // image path → repository path
}

func readDockerfile(t *testing.T) dockerRun {
	t.Helper()
	f, err := os.Open("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d := dockerRun{files: map[string]string{}}
	var entry, cmd []string
	jsonList := regexp.MustCompile(`"([^"]*)"`)
	stage := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		switch fields[0] {
		case "FROM":
			stage++
			entry, cmd, d.env = nil, nil, nil // only the last stage counts
		case "COPY":
			if len(fields) == 3 && !strings.HasPrefix(fields[1], "--") {
				src, _ := filepath.Abs(filepath.Join("../..", fields[1]))
				d.files[fields[2]] = src
			}
		case "ENV":
			d.env = append(d.env, fields[1:]...)
		case "ENTRYPOINT", "CMD":
			var list []string
			for _, m := range jsonList.FindAllStringSubmatch(sc.Text(), -1) {
				list = append(list, m[1])
			}
			if fields[0] == "ENTRYPOINT" {
				entry = list
			} else {
				cmd = list
			}
		}
	}
	if len(entry) == 0 || entry[0] != "/picbot" {
		t.Fatalf("ENTRYPOINT %v", entry)
	}
	for _, a := range append(entry[1:], cmd...) {
		if p, ok := d.files[a]; ok {
			a = p
		}
		d.args = append(d.args, a)
	}
	return d
}

// TestDockerImage runs the binary exactly as the image does (the daemon
// cannot pull images here): with no token it says why it will not start;
// with PICBOT_TELEGRAM_TOKEN it serves Telegram.
func TestDockerImage(t *testing.T) {
	d := readDockerfile(t)
	if !slices.Contains(d.args, "-config") {
		t.Fatalf("the image runs %v: no configuration file", d.args)
	}
	dir := t.TempDir()
	env := func(extra ...string) []string {
		var out []string
		for _, kv := range d.env {
			if k, v, _ := strings.Cut(kv, "="); k == "PICBOT_DATA_DIR" && v == "/data" {
				kv = "PICBOT_DATA_DIR=" + filepath.Join(dir, "data") // the volume
			}
			out = append(out, kv)
		}
		// The image listens on :8080; a test takes a free port instead.
		return append(append(out, "PICBOT_HTTP_LISTEN="+freeAddr(t)), extra...)
	}
	_, errOut, code := runBin(t, dir, env(), "", d.args...)
	if code == 0 || !strings.Contains(errOut, "no chat platform is enabled") || !strings.Contains(errOut, "PICBOT_TELEGRAM_TOKEN") {
		t.Fatalf("no token: exit %d: %s", code, errOut)
	}
	// A Discord token without its application id: the bot says which is missing.
	_, errOut, code = runBin(t, dir, env("PICBOT_DISCORD_TOKEN=docker.discord.SECRET"), "", d.args...)
	if code != 1 || !strings.Contains(errOut, "discord.application_id") || !strings.Contains(errOut, "PICBOT_DISCORD_APPLICATION_ID") ||
		strings.Contains(errOut, "docker.discord.SECRET") {
		t.Fatalf("discord token only: exit %d: %s", code, errOut)
	}

	fake := telegramtest.New(tgToken, tgBot)
	defer fake.Close()
	b := &bot{cmd: exec.Command(binary, d.args...), lines: make(chan string, 100), done: make(chan error, 1)}
	b.cmd.Dir = dir
	b.cmd.Env = append(cleanEnv(), env("PICBOT_TELEGRAM_TOKEN="+tgToken, "PICBOT_TELEGRAM_API_ENDPOINT="+fake.URL)...)
	b.cmd.Stdout = &syncWriter{mu: &b.mu, w: &b.stdout}
	b.cmd.Stderr = &syncWriter{mu: &b.mu, w: &b.stderr}
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { b.done <- b.cmd.Wait() }()
	t.Cleanup(func() { b.cmd.Process.Kill() })
	fake.AddUpdate(`{"message": {"message_id": 5, "date": 1700000000,
		"from": {"id": 700, "is_bot": false, "first_name": "Di", "language_code": "en"},
		"chat": {"id": 700, "type": "private"}, "text": "/draw a docker whale --size 64x64"}}`)
	photo := waitCall(t, b, fake, "a photo", sent("sendPhoto", "chat_id", "700"))
	if !strings.Contains(photo.Params["caption"], "docker whale") {
		t.Fatalf("caption %q", photo.Params["caption"])
	}
	b.cmd.Process.Signal(syscall.SIGTERM)
	if err := <-b.done; err != nil {
		_, stderr := b.output()
		t.Fatalf("exit %v\n%s", err, stderr)
	}
	_, stderr := b.output()
	if !strings.Contains(stderr, "telegram (long polling") || !strings.Contains(stderr, "data="+filepath.Join(dir, "data")) {
		t.Fatalf("no start summary:\n%s", stderr)
	}
}

// TestDeployConfigs: each example in deploy/ passes check config with the
// environment its comments ask for, and fails, naming what is missing,
// without it.
func TestDeployConfigs(t *testing.T) {
	for file, env := range map[string][]string{
		"telegram.yaml": {"PICBOT_TELEGRAM_TOKEN=123456:ABC-example"},
		"discord.yaml":  {"PICBOT_DISCORD_TOKEN=example.token", "PICBOT_DISCORD_APPLICATION_ID=112233445566778899"},
		"telegram-discord-vendor.yaml": {"PICBOT_TELEGRAM_TOKEN=123456:ABC-example", "PICBOT_DISCORD_TOKEN=example.token",
			"PICBOT_DISCORD_APPLICATION_ID=112233445566778899", "PICBOT_ZHIQITE_APP_CODE=example-code", "PICBOT_HTTP_PUBLIC_URL=https://picbot.example.com"},
		"docker.yaml": {"PICBOT_TELEGRAM_TOKEN=123456:ABC-example"},
	} {
		path, _ := filepath.Abs(filepath.Join("../../deploy", file))
		dir := t.TempDir()
		out, errOut, code := runBin(t, dir, append(env, "PICBOT_DATA_DIR="+filepath.Join(dir, "data")), "", "check", "config", "-config", path)
		if code != 0 || !strings.Contains(out, "valid") {
			t.Errorf("%s: exit %d\n%s%s", file, code, out, errOut)
		}
		for _, kv := range env {
			if k, _, _ := strings.Cut(kv, "="); k != "PICBOT_DATA_DIR" {
				if !strings.Contains(readFile(t, path), k) {
					t.Errorf("%s does not say to set %s", file, k)
				}
			}
		}
		if _, errOut, code := runBin(t, dir, []string{"PICBOT_DATA_DIR=" + filepath.Join(dir, "data")}, "", "check", "config", "-config", path); code == 0 ||
			!strings.Contains(errOut, "PICBOT_") {
			t.Errorf("%s passed with no environment: %s", file, errOut)
		}
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestReadmeLinks: every relative link in README.md names a file in the
// repository, and none leads out of it, so they work in a clone.
func TestReadmeLinks(t *testing.T) {
	text := readFile(t, "../../README.md")
	links := regexp.MustCompile(`\]\(([^)\s]+)\)`).FindAllStringSubmatch(text, -1)
	if len(links) < 5 {
		t.Fatalf("only %d links", len(links))
	}
	for _, m := range links {
		link := m[1]
		if strings.Contains(link, "://") || strings.HasPrefix(link, "#") || strings.HasPrefix(link, "mailto:") {
			continue
		}
		link, _, _ = strings.Cut(link, "#")
		if strings.HasPrefix(filepath.Clean(link), "..") || filepath.IsAbs(link) {
			t.Errorf("%s leads out of the repository", m[1])
			continue
		}
		if _, err := os.Stat(filepath.Join("../..", link)); err != nil {
			t.Errorf("README links to %s: %v", m[1], err)
		}
	}
	if regexp.MustCompile("`\\.\\./").MatchString(text) {
		t.Error("README names a path outside the repository")
	}
}
