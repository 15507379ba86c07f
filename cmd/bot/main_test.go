package main

import (
	"bufio"
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// binary is the bot built once for the end-to-end tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "picbot-e2e")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "picbot")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// bot is a running picbot process.
type bot struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	mu     sync.Mutex
	stdout bytes.Buffer
	stderr bytes.Buffer
	lines  chan string
	done   chan error
}

// startBot runs the binary in dir with args; its stdout lines arrive on b.lines.
func startBot(t *testing.T, dir string, args ...string) *bot {
	t.Helper()
	return startBin(t, binary, dir, args...)
}

// startBin is startBot with another build of the bot (the race detector's).
func startBin(t *testing.T, bin, dir string, args ...string) *bot {
	t.Helper()
	b := &bot{cmd: exec.Command(bin, args...), lines: make(chan string, 1000), done: make(chan error, 1)}
	b.cmd.Dir = dir
	b.cmd.Env = append(os.Environ(), "LANG=C", "LC_ALL=", "LC_MESSAGES=") // the console takes its language from these
	b.cmd.Stderr = &syncWriter{mu: &b.mu, w: &b.stderr}
	var err error
	if b.stdin, err = b.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	out, err := b.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			b.mu.Lock()
			b.stdout.WriteString(sc.Text() + "\n")
			b.mu.Unlock()
			b.lines <- sc.Text()
		}
		close(b.lines)
		b.done <- b.cmd.Wait()
	}()
	t.Cleanup(func() { b.cmd.Process.Kill() })
	return b
}

type syncWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func (b *bot) output() (string, string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.stdout.String(), b.stderr.String()
}

// wait waits for the process to exit and returns its stdout.
func (b *bot) wait(t *testing.T, within time.Duration) string {
	t.Helper()
	b.stdin.Close()
	for range b.lines {
	}
	select {
	case err := <-b.done:
		out, errOut := b.output()
		if err != nil {
			t.Fatalf("bot exited with %v\nstdout:\n%s\nstderr:\n%s", err, out, errOut)
		}
		return out
	case <-time.After(within):
		out, errOut := b.output()
		t.Fatalf("bot still running after %s\nstdout:\n%s\nstderr:\n%s", within, out, errOut)
		return ""
	}
}

// runBot feeds input to a fresh process in dir and returns its stdout.
func runBot(t *testing.T, dir, input string, args ...string) string {
	t.Helper()
	b := startBot(t, dir, args...)
	io.WriteString(b.stdin, input)
	return b.wait(t, time.Minute)
}

var pngPath = regexp.MustCompile(`\S+\.png`)

func TestQuickStart(t *testing.T) {
	dir := t.TempDir()
	var first []byte
	for run := range 2 {
		out := runBot(t, dir, "/draw a red fox --seed 7\n")
		path := pngPath.FindString(out)
		if path == "" {
			t.Fatalf("no PNG path in output:\n%s", out)
		}
		data, err := os.ReadFile(filepath.Join(dir, path))
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		if b := img.Bounds(); b.Dx() != 512 || b.Dy() != 512 {
			t.Fatalf("size %v, want 512x512", b)
		}
		if !strings.Contains(out, "not by an AI model") {
			t.Fatalf("no local-renderer notice:\n%s", out)
		}
		if run == 0 {
			first = data
		} else if !bytes.Equal(first, data) {
			t.Fatal("second run's PNG differs from the first")
		}
	}
}

func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	out := runBot(t, dir, "/draw\n/draw x --size 13x13\n/frobnicate\n")
	for _, want := range []string{"Please describe the picture.", "--size 13x13 is not allowed", "Unknown command /frobnicate."} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "queued") {
		t.Fatalf("a job was created:\n%s", out)
	}
	if out := runBot(t, dir, "/jobs\n"); !strings.Contains(out, "no jobs yet") {
		t.Fatalf("jobs were stored:\n%s", out)
	}
}

func TestStoreLocked(t *testing.T) {
	dir := t.TempDir()
	first := startBot(t, dir)
	io.WriteString(first.stdin, "/help\n")
	<-first.lines // the first process is up and holds the store
	start := time.Now()
	cmd := exec.Command(binary)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatal("second bot on the same data directory did not fail")
	}
	if !strings.Contains(string(out), "locked") {
		t.Fatalf("no clear message: %s", out)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("second bot took %s to give up", d)
	}
	first.wait(t, time.Minute)
}

var (
	acceptedRe = regexp.MustCompile(`^Job (\w+) queued`)
	doneRe     = regexp.MustCompile(`^Job (\w+) done:`)
)

// TestCrashRestart kills the bot with SIGKILL while jobs render, restarts it on
// the same data directory, and checks every accepted job is reported once.
func TestCrashRestart(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "picbot.yaml")
	os.WriteFile(cfg, []byte("local:\n  enabled: true\n  duration: 3s\n"), 0o600)

	b := startBot(t, dir, "-config", cfg)
	accepted := map[string]bool{}
	const jobs = 6
	for i := range jobs {
		fmt.Fprintf(b.stdin, "/draw job number %d --seed %d --size 256x256\n", i, i)
	}
	deadline := time.After(30 * time.Second)
	for len(accepted) < jobs {
		select {
		case line := <-b.lines:
			if m := acceptedRe.FindStringSubmatch(line); m != nil {
				accepted[m[1]] = true
			}
		case <-deadline:
			t.Fatalf("only %d jobs accepted", len(accepted))
		}
	}
	// The kill comes mid-render: once a job shows progress, which on a
	// loaded machine may take longer than an idle one's 1.5 s.
	for progress := false; !progress; {
		select {
		case line := <-b.lines:
			progress = strings.Contains(line, "%")
		case <-deadline:
			t.Fatalf("no progress shown")
		}
	}
	if err := b.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-b.done
	before, _ := b.output()

	after := runBot(t, dir, "", "-config", cfg)
	reported := map[string]int{}
	for _, line := range strings.Split(before+after, "\n") {
		if m := doneRe.FindStringSubmatch(line); m != nil {
			reported[m[1]]++
		}
	}
	for id := range accepted {
		if reported[id] != 1 {
			t.Errorf("job %s reported %d times", id, reported[id])
		}
		if _, err := os.Stat(filepath.Join(dir, "out", id+"-1.png")); err != nil {
			t.Errorf("job %s: %v", id, err)
		}
	}
	if len(reported) != len(accepted) {
		t.Errorf("reported %d jobs, accepted %d", len(reported), len(accepted))
	}
	if t.Failed() {
		t.Logf("before the kill:\n%s\nafter the restart:\n%s", before, after)
	}
}

// freeAddr returns a loopback address nothing listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// smallPNG is a w×h gradient, a valid input image.
func smallPNG(t *testing.T, w, h int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.SetRGBA(x, y, color.RGBA{uint8(x * 4), uint8(y * 4), 120, 255})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// writePNG writes smallPNG(w, h) to path.
func writePNG(t *testing.T, path string, w, h int) {
	t.Helper()
	if err := os.WriteFile(path, smallPNG(t, w, h), 0o600); err != nil {
		t.Fatal(err)
	}
}

// pngSize reads an image file's dimensions (PNG or JPEG).
func pngSize(t *testing.T, path string) image.Point {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg, _, err := image.DecodeConfig(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return image.Pt(cfg.Width, cfg.Height)
}
