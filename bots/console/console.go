// Package console is the chat adapter for a terminal: it reads commands line
// by line, prints replies and progress to its output, and writes result
// images to a directory. It lets anyone try the whole flow with no account.
package console

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/picbot/picbot/bots/chat"
	"github.com/picbot/picbot/engine"
	"golang.org/x/term"
)

// Platform is the console's platform name on jobs.
const Platform = "console"

// Service runs commands.
type Service interface {
	Handle(ctx context.Context, m chat.Message) chat.Reply
}

// Jobs counts unfinished jobs.
type Jobs interface {
	Outstanding(platform string) int
}

// Console implements engine.Notifier for console jobs.
type Console struct {
	In      io.Reader
	Out     io.Writer
	Service Service
	Jobs    Jobs
	Blobs   engine.Blobs
	// OutDir receives result images.
	OutDir string
	// User is who types; Lang is taken from it.
	User engine.UserRef
	// Wait bounds how long Run waits at end of input for jobs to finish.
	Wait time.Duration
	// Term says In and Out are a terminal (see IsTerminal): a banner, a
	// line editor with a prompt, and progress redrawn in place.
	Term bool
	// LogPath, if set, is where the log goes, for the banner.
	LogPath string

	mu      sync.Mutex
	printed map[string]int    // job → last progress decile printed
	term    *term.Terminal    // the line editor, when Term
	status  map[string]string // at a terminal: job → its progress in the prompt
	waiting bool              // input ended: the prompt only shows progress
}

var _ engine.Notifier = (*Console)(nil)

// Chat is the console's one chat.
func Chat() engine.ChatRef {
	return engine.ChatRef{Platform: Platform, ChatID: "console", Private: true}
}

// Run reads commands until end of input or ctx ends. At end of input it
// waits, up to Wait, for every console job to finish, then returns nil.
func (c *Console) Run(ctx context.Context) error {
	if c.Term {
		return c.runTerm(ctx)
	}
	lines := make(chan string)
	readErr := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(c.In)
		sc.Buffer(make([]byte, 64<<10), maxLine)
		sc.Split(splitLines())
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
		readErr <- sc.Err()
		close(lines)
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case line, ok := <-lines:
			if !ok {
				if err := <-readErr; err != nil {
					c.println("input: " + err.Error())
				}
				return c.drain(ctx)
			}
			if line == tooLong {
				c.println(chat.T(c.User.Lang, "That line is too long (over %d MB); it was ignored.", "这一行太长（超过 %d MB），已忽略。", maxLine>>20))
				continue
			}
			c.handle(ctx, line)
		}
	}
}

// handle runs one line of input.
func (c *Console) handle(ctx context.Context, line string) {
	line = strings.TrimSpace(line)
	if line == "" || strings.HasPrefix(line, "#") {
		return
	}
	reply := c.Service.Handle(ctx, chat.Message{User: c.User, Chat: Chat(), Text: line})
	if j := reply.Show; j != nil {
		// /show: the pictures are written out again, as at delivery.
		text := reply.Text
		for i, r := range j.Results {
			path := filepath.Join(c.OutDir, fmt.Sprintf("%s-%d%s", j.ID, i+1, chat.Ext(r.Mime)))
			if err := os.MkdirAll(c.OutDir, 0o755); err != nil {
				text += "\n  " + err.Error()
				break
			}
			if err := c.write(ctx, path, r.Blob); err != nil {
				text += "\n  " + chat.T(c.User.Lang, "cannot write %s", "无法写入 %s", path)
				break
			}
			text += "\n  " + path
		}
		c.println(text)
		return
	}
	c.println(reply.Text)
}

// maxLine bounds a command line. A longer one is skipped with a note, so
// that a stray paste does not end the console's input.
const maxLine = 1 << 20

// tooLong stands for a skipped line; no line read can hold a NUL and a newline.
const tooLong = "\x00\n"

// splitLines is bufio.ScanLines, except that a line longer than maxLine
// comes as tooLong and the rest of it is skipped. The end of a skipped line
// goes on to the next line in the same call: returning no token there would
// make bufio.Scanner read more input before answering a command it holds.
func splitLines() bufio.SplitFunc {
	skipping := false
	var split bufio.SplitFunc
	split = func(data []byte, atEOF bool) (int, []byte, error) {
		if skipping {
			i := bytes.IndexByte(data, '\n')
			if i < 0 {
				return len(data), nil, nil
			}
			skipping = false
			advance, token, err := split(data[i+1:], atEOF)
			return i + 1 + advance, token, err
		}
		advance, token, err := bufio.ScanLines(data, atEOF)
		if advance == 0 && token == nil && err == nil && len(data) >= maxLine {
			skipping = true
			return len(data), []byte(tooLong), nil
		}
		return advance, token, err
	}
	return split
}

// drain waits for the console's jobs, including those resumed from an earlier run.
func (c *Console) drain(ctx context.Context) error {
	deadline := time.Now().Add(c.Wait)
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		n := c.Jobs.Outstanding(Platform)
		if n == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			c.println(chat.T(c.User.Lang, "Stopped waiting for %d unfinished job(s); they carry on at the next start.", "不再等待 %d 个未完成的任务；下次启动时会继续。", n))
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (c *Console) println(s string) {
	c.mu.Lock()
	t := c.term
	if t == nil {
		defer c.mu.Unlock()
		fmt.Fprintln(c.Out, s)
		return
	}
	c.mu.Unlock()
	_, _ = t.Write([]byte(s + "\n")) // above the prompt and what the user is typing
}

// Progress prints a line each time a job passes another tenth; at a
// terminal it redraws the job's progress in the prompt instead.
func (c *Console) Progress(ctx context.Context, j *engine.Job, p engine.Progress) {
	if c.Term {
		c.mu.Lock()
		if c.status == nil {
			c.status = make(map[string]string)
		}
		c.status[j.ID] = shortStatus(j, p)
		c.mu.Unlock()
		c.redraw()
		return
	}
	decile := int(p.Fraction * 10)
	c.mu.Lock()
	if c.printed == nil {
		c.printed = make(map[string]int)
	}
	last, seen := c.printed[j.ID]
	if seen && decile <= last {
		c.mu.Unlock()
		return
	}
	c.printed[j.ID] = decile
	c.mu.Unlock()
	c.println(chat.Status(j, p, c.User.Lang))
}

// Deliver writes the images under OutDir and prints their paths, or prints why the job ended.
func (c *Console) Deliver(ctx context.Context, j *engine.Job) error {
	c.mu.Lock()
	delete(c.printed, j.ID)
	_, shown := c.status[j.ID]
	delete(c.status, j.ID)
	c.mu.Unlock()
	if shown {
		defer c.redraw()
	}
	lang := c.User.Lang
	if j.State != engine.StateSucceeded {
		c.println(chat.Ended(j, lang))
		return nil
	}
	if err := os.MkdirAll(c.OutDir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", c.OutDir, err)
	}
	var paths []string
	for i, r := range j.Results {
		path := filepath.Join(c.OutDir, fmt.Sprintf("%s-%d%s", j.ID, i+1, chat.Ext(r.Mime)))
		if err := c.write(ctx, path, r.Blob); err != nil {
			return err
		}
		paths = append(paths, path)
	}
	var b strings.Builder
	b.WriteString(chat.T(lang, "Job %s done:", "任务 %s 完成：", j.ID))
	for _, p := range paths {
		b.WriteString("\n  " + p)
	}
	b.WriteString("\n  " + strings.ReplaceAll(chat.Caption(j, lang, 300), "\n", "\n  "))
	b.WriteString("\n  " + chat.T(lang, "billed vendor calls: %d", "计费调用次数：%d", j.BilledCalls))
	c.println(b.String())
	return nil
}

func (c *Console) write(ctx context.Context, path, blob string) error {
	rc, err := c.Blobs.Open(ctx, blob)
	if err != nil {
		return err
	}
	defer rc.Close()
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("write result: %w", err)
	}
	if _, err := io.Copy(f, rc); err != nil {
		f.Close()
		return fmt.Errorf("write result: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write result: %w", err)
	}
	return os.Rename(tmp, path)
}
