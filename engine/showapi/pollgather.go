package showapi

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/picbot/picbot/engine"
)

// Shared polls. A task this process does not poll by list is asked for
// alone, a billed call each. After a restart several of a previous
// process's tasks come due together: the jobs whose callbacks came while
// the bot was down, their calls back given up, each of which the engine
// polls once its grace is over, all within a few milliseconds of each
// other. So polls of such tasks started within PollGather of each other
// share a read of the list: each page read answers every poll whose task
// it shows, in whatever state, and keeps the finished records of other
// tasks for their polls (keepFinal). Fewer than sharedPollMin ask alone:
// a read for two saves at most one call and a miss costs one. The read is
// bounded, since a task may not be on the pages (a task the vendor forgot,
// whose query alone is not billed): after the first page it reads
// another (where the latest unanswered task should be by its submission's
// time) only while two or more polls are unanswered and the page before
// answered one of them or showed them all older, and no more than one
// page per five polls and two more (the first page, and one where their
// tasks straddle two). A poll a read did not answer asks alone, so a miss costs one page.
// This process's own tasks are not shared: a poll of one whose callback
// has not come is most often of a task the vendor lost, free alone.

// sharedPollMin is the fewest polls that share a read. Seen in the crash
// suite: pairs of a previous process's tasks, behind page 1's newer ones,
// each read a loss of one call.
const sharedPollMin = 3

// sharedPoll answers j's poll from a shared read of the list, or says to
// ask for the task alone (ok false).
func (v *Vendor) sharedPoll(ctx context.Context, j *engine.Job) (out *engine.Outcome, ok bool, err error) {
	if v.cfg.PollGather < 0 || j.TaskID == "" {
		return nil, false, nil
	}
	f := &finding{job: j.ID, task: j.TaskID, at: j.SubmittedAt, done: make(chan struct{})}
	if !f.at.IsZero() {
		f.since = f.at.Add(-v.cfg.ClockSkew)
	}
	v.mu.Lock()
	s, lead := v.polls, false
	if s == nil {
		s, lead = &sweep{}, true
		v.polls = s
	}
	s.members = append(s.members, f)
	v.mu.Unlock()
	if lead {
		v.runPollSweep(ctx, s)
	}
	select {
	case <-f.done:
	case <-ctx.Done():
		engine.ReportBilled(ctx, 0) // gave up waiting: no call made
		return nil, false, ctx.Err()
	}
	if f.rec == nil {
		return nil, false, nil
	}
	if !lead {
		engine.ReportBilled(ctx, 0) // read with the leader's pages, billed to its job
	}
	out, err = v.outcome(f.rec)
	return out, err == nil, err
}

// runPollSweep gathers polls for PollGather, then, for sharedPollMin or more, reads
// the list for them on the caller's context (its job is billed the pages).
func (v *Vendor) runPollSweep(ctx context.Context, s *sweep) {
	gather(ctx, v.cfg.PollGather)
	v.mu.Lock()
	if v.polls == s {
		v.polls = nil // later polls start the next sweep
	}
	members := s.members
	v.mu.Unlock()
	if len(members) >= sharedPollMin && ctx.Err() == nil {
		start := time.Now()
		pages, err := v.pollWalk(ctx, members)
		var unanswered []string
		for _, f := range members {
			if f.rec == nil {
				unanswered = append(unanswered, f.task)
			}
		}
		v.log.Info("showapi: polled tasks by a shared read of the task list",
			slog.Int("polls", len(members)), slog.Int("answered", len(members)-len(unanswered)),
			slog.Any("unanswered", unanswered[:min(len(unanswered), 5)]), slog.Any("read", pages),
			slog.Duration("took", time.Since(start)), slog.Any("err", err))
	}
	for _, f := range members {
		select {
		case <-f.done:
		default:
			close(f.done) // unanswered: asks alone
		}
	}
}

// gather waits d, or less when ctx's deadline leaves the call's reads
// under three quarters of its time.
func gather(ctx context.Context, d time.Duration) {
	if dl, ok := ctx.Deadline(); ok {
		d = min(d, time.Until(dl)/4)
	}
	if d <= 0 {
		return
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-ctx.Done():
	}
}

// pollWalk reads the pages that hold the polls' tasks, within the bound
// the comment at the top gives; pages lists those read.
func (v *Vendor) pollWalk(ctx context.Context, members []*finding) (pages []int, err error) {
	open := len(members)
	look := func(p *TaskPage) (answered int) {
		v.keepFinal(p)
		for i := range p.Tasks {
			id := strings.TrimSpace(string(p.Tasks[i].TaskID))
			for _, f := range members {
				if f.rec == nil && f.task == id && !isClosed(f.done) {
					rec := p.Tasks[i]
					f.rec = &rec
					close(f.done)
					open--
					answered++
				}
			}
		}
		return answered
	}
	first, err := v.TaskList(ctx, 1)
	if err != nil {
		return nil, err
	}
	pages = append(pages, 1)
	order := v.cfg.ListOrder
	if order == "auto" {
		order = listOrder(first)
	}
	l := newListView(order == "newest", first, *v.cfg.FindJump)
	l.add(first, 1)
	hit := look(first)
	// Their pages, one more where they straddle two, and the first page.
	budget := (len(members)+perPage-1)/perPage + 2
	for open >= 2 && len(pages) < budget {
		// The latest task first, as a search goes: the pages it wants are
		// on the way to the others'.
		var f *finding
		older := true // every open poll's task lies deeper than a page read
		for _, m := range members {
			if isClosed(m.done) {
				continue
			}
			if f == nil || !f.at.IsZero() && (m.at.IsZero() || m.at.After(f.at)) {
				f = m
			}
			older = older && l.deeper(v.window(m, l.clock))
		}
		if hit == 0 && !older {
			break // the last page answered none, nor shows where they are
		}
		page, ok := l.next(v.window(f, l.clock))
		if !ok {
			close(f.done) // no page left that can hold it: it asks alone
			open--
			continue
		}
		p, err := v.TaskList(ctx, page)
		if err != nil {
			return pages, err
		}
		pages = append(pages, page)
		l.add(p, page)
		hit = look(p)
	}
	return pages, nil
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
