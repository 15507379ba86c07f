package console

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/picbot/picbot/bots/chat"
	"github.com/picbot/picbot/engine"
	"golang.org/x/term"
)

// IsTerminal reports whether in and out are both a terminal: then the
// console talks to a person, with a banner, a prompt and progress redrawn
// in place. Piped input or output keeps the plain line-by-line form.
func IsTerminal(in io.Reader, out io.Writer) bool {
	fi, ok1 := in.(*os.File)
	fo, ok2 := out.(*os.File)
	return ok1 && ok2 && term.IsTerminal(int(fi.Fd())) && term.IsTerminal(int(fo.Fd()))
}

// EnvLang picks the console's language from the locale variables in the
// order POSIX gives them: LC_ALL, then LC_MESSAGES, then LANG.
func EnvLang(getenv func(string) string) engine.Lang {
	for _, k := range []string{"LC_ALL", "LC_MESSAGES", "LANG"} {
		if v := getenv(k); v != "" {
			return engine.ParseLang(v)
		}
	}
	return engine.EN
}

// prompt is what the console shows where the user types.
const prompt = "picbot> "

// banner greets the user at a terminal.
func (c *Console) banner() string {
	lang := c.User.Lang
	b := chat.T(lang, "picbot console: type a command and press Enter, e.g. /draw a red fox. /help lists them all.",
		"picbot 控制台：输入命令后回车，例如 /draw 一只红狐狸。/help 查看全部命令。")
	b += "\n" + chat.T(lang, "Pictures go to %s. Ctrl-D quits when jobs are done; Ctrl-C quits now (jobs resume next time).",
		"图片保存在 %s。Ctrl-D 等任务完成后退出；Ctrl-C 立即退出（任务下次继续）。", strings.TrimSuffix(c.OutDir, "/")+"/")
	if c.LogPath != "" {
		b += "\n" + chat.T(lang, "The log is in %s.", "日志在 %s。", c.LogPath)
	}
	return b
}

// runTerm is Run at a terminal: the line is edited by x/term, whose
// Write keeps the prompt and what the user is typing below any output, and
// the progress of running jobs is shown in the prompt, redrawn in place.
func (c *Console) runTerm(ctx context.Context) error {
	in, ok := c.In.(*os.File)
	if !ok {
		return fmt.Errorf("console: Term needs a terminal as input")
	}
	restore, err := makeRaw(int(in.Fd()))
	if err != nil {
		return fmt.Errorf("console: %w", err)
	}
	defer func() {
		restore()
		fmt.Fprint(c.Out, "\r\n")
	}()
	t := term.NewTerminal(struct {
		io.Reader
		io.Writer
	}{c.In, c.Out}, prompt)
	if out, ok := c.Out.(*os.File); ok {
		if w, h, err := term.GetSize(int(out.Fd())); err == nil {
			t.SetSize(w, h)
		}
	}
	c.mu.Lock()
	c.term = t
	c.mu.Unlock()
	c.println(c.banner())

	lines := make(chan string)
	go func() {
		defer close(lines)
		for {
			line, err := t.ReadLine()
			if err != nil { // io.EOF: Ctrl-D on an empty line
				return
			}
			select {
			case lines <- line:
			case <-ctx.Done():
				return
			}
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case line, ok := <-lines:
			if !ok {
				if n := c.Jobs.Outstanding(Platform); n > 0 {
					c.mu.Lock()
					c.waiting = true
					c.mu.Unlock()
					c.println(chat.T(c.User.Lang, "Waiting for %d job(s) to finish (Ctrl-C quits now; they resume at the next start)…",
						"等待 %d 个任务完成（Ctrl-C 立即退出，任务下次启动时继续）……", n))
					c.redraw()
				}
				return c.drain(ctx)
			}
			c.handle(ctx, line)
		}
	}
}

// redraw puts the running jobs' progress in the prompt and repaints the
// prompt line, keeping what the user has typed.
func (c *Console) redraw() {
	c.mu.Lock()
	t := c.term
	ids := make([]string, 0, len(c.status))
	for id := range c.status {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var parts []string
	for i, id := range ids {
		if i == 3 {
			parts = append(parts, fmt.Sprintf("+%d", len(ids)-3))
			break
		}
		parts = append(parts, c.status[id])
	}
	p := prompt
	if c.waiting {
		p = ""
	}
	if len(parts) > 0 {
		p = "[" + strings.Join(parts, " · ") + "] " + p
	}
	c.mu.Unlock()
	if t == nil {
		return
	}
	t.SetPrompt(p)
	_, _ = t.Write(nil) // repaints the prompt line in place
}

// shortStatus is a job's progress in a few characters: "ab12 ▓▓▓░░░░░░░ 30%".
func shortStatus(j *engine.Job, p engine.Progress) string {
	id := j.ID
	if len(id) > 4 {
		id = id[:4]
	}
	if j.State == engine.StateQueued {
		return id + " …"
	}
	return id + " " + chat.Bar(p.Fraction)
}
