//go:build linux

package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// pty is a pseudo-terminal: the test holds the master, the bot gets the slave.
type pty struct {
	master, slave *os.File
	mu            sync.Mutex
	out           bytes.Buffer
}

func openPTY(t *testing.T) *pty {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetUint32(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlSetWinsize(int(s.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 40, Col: 120}); err != nil {
		t.Fatal(err)
	}
	p := &pty{master: m, slave: s}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := m.Read(buf)
			p.mu.Lock()
			p.out.Write(buf[:n])
			p.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { m.Close(); s.Close() })
	return p
}

func (p *pty) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

func (p *pty) waitFor(t *testing.T, timeout time.Duration, re string) string {
	t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if m := rx.FindString(p.output()); m != "" {
			return m
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no %q within %s; terminal:\n%q", re, timeout, p.output())
	return ""
}

// startOnPTY runs the binary in dir with its stdin, stdout and stderr on a
// terminal, as a person runs it, with env added.
func startOnPTY(t *testing.T, dir string, env ...string) (*pty, *exec.Cmd, chan error) {
	t.Helper()
	p := openPTY(t)
	cmd := exec.Command(binary)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "LANG=C", "LC_ALL=", "LC_MESSAGES="), env...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = p.slave, p.slave, p.slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-done
		}
	})
	return p, cmd, done
}

// TestConsoleTerminal: at a terminal the console greets, prompts, keeps
// log lines off the screen (they go to data/picbot.log), and shows progress
// in the prompt redrawn in place rather than as new lines; Ctrl-D waits
// for the job and quits.
func TestConsoleTerminal(t *testing.T) {
	dir := t.TempDir()
	p, _, done := startOnPTY(t, dir)
	p.waitFor(t, 10*time.Second, `picbot console: type a command`)
	p.waitFor(t, 5*time.Second, `picbot> `)
	fmt.Fprint(p.master, "/draw a red fox --seed 7 --size 64x64\r")
	id := strings.Fields(p.waitFor(t, 10*time.Second, `Job [a-z2-7]{16} queued`))[1]
	p.waitFor(t, 10*time.Second, `Job `+id+` done:`)
	out := p.output()
	start := strings.Index(out, "Job "+id+" queued")
	between := out[start:strings.Index(out, "Job "+id+" done:")]
	if n := strings.Count(between, "\n"); n > 2 {
		t.Errorf("progress took %d new lines:\n%q", n, between)
	}
	if !strings.Contains(between, "%] picbot> ") {
		t.Errorf("no progress shown in the prompt:\n%q", between)
	}
	if strings.Contains(out, "level=") || strings.Contains(out, "msg=") {
		t.Errorf("log lines on the terminal:\n%q", out)
	}
	log, err := os.ReadFile(filepath.Join(dir, "data", "picbot.log"))
	if err != nil || !strings.Contains(string(log), `msg="job accepted"`) {
		t.Errorf("log file: %v\n%s", err, log)
	}
	if _, err := os.Stat(filepath.Join(dir, "out", id+"-1.png")); err != nil {
		t.Error(err)
	}
	fmt.Fprint(p.master, "\x04") // Ctrl-D
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit: %v\n%q", err, p.output())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("still running after Ctrl-D:\n%q", p.output())
	}
}

// TestConsoleTerminalChinese: LC_ALL chooses the language over LANG, and
// Ctrl-C stops the bot at once, leaving the terminal as it was.
func TestConsoleTerminalChinese(t *testing.T) {
	dir := t.TempDir()
	p, _, done := startOnPTY(t, dir, "LC_ALL=zh_CN.UTF-8", "LANG=en_US.UTF-8")
	p.waitFor(t, 10*time.Second, `picbot 控制台`)
	fmt.Fprint(p.master, "/draw 猫 --steps 0\r")
	p.waitFor(t, 10*time.Second, `--steps 必须是 1 到 60 之间的整数`)
	fmt.Fprint(p.master, "\x03") // Ctrl-C
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("still running after Ctrl-C:\n%q", p.output())
	}
	var tio *unix.Termios
	tio, err := unix.IoctlGetTermios(int(p.slave.Fd()), unix.TCGETS)
	if err != nil || tio.Lflag&unix.ECHO == 0 || tio.Lflag&unix.ICANON == 0 {
		t.Fatalf("terminal left in raw mode: %v", err)
	}
}
