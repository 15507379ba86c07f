package showapi

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/picbot/picbot/engine"
)

// Polling by list. /yourtasklist answers five of the account's tasks, newest
// first, for one billed call, as /yourtaskresult answers one. With several
// polled tasks in flight, a task's poll reads the page that holds it, and
// the finished records it shows answer their tasks' polls without another
// call, at once: the read wakes their jobs (engine.Waker), so a result
// waits for no scheduled poll. A due task whose page holds fewer than four
// other open tasks due already waits (for free, at most ListDefer) for a
// later read of its page: the read that settles it is the one made when
// the page's last task falls due, which finds the others finished too (a
// task merely due soon is still running, and reading early settles only
// the first). The page of a task is found
// from the order of the bot's own creations, which assumes the account
// makes no tasks elsewhere [I]; a task not on its page is asked for alone.
type lister struct {
	order []string             // polled tasks, oldest first; settled ones leave from the front
	due   map[string]time.Time // when each task's first poll falls due
	open  map[string]bool      // not settled yet
	final map[string]Record    // finished or failed records read from a page, not yet answered
	kept  map[string]time.Time // when a search's page (find.go) put a record in final
	jobs  map[string]string    // each polled task's job, to wake
}

func (l *lister) init() {
	if l.due == nil {
		l.due, l.open, l.final, l.kept, l.jobs = map[string]time.Time{}, map[string]bool{}, map[string]Record{}, map[string]time.Time{}, map[string]string{}
	}
}

// perPage is the document's page size (maxResult 5).
const perPage = 5

// track registers a polled task the bot just created.
func (v *Vendor) track(id, job string, due time.Time) {
	if v.cfg.ListPollMin < 0 {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	l := &v.list
	l.init()
	l.jobs[id] = job
	l.order = append(l.order, id)
	l.due[id], l.open[id] = due, true
	// A task the engine stopped polling (cancelled, timed out) never
	// settles here: after an hour past due it is let go.
	for old, at := range l.due {
		if l.open[old] && due.Sub(at) > time.Hour {
			delete(l.open, old)
			delete(l.final, old)
			delete(l.jobs, old)
		}
	}
	for len(l.order) > 0 && !l.open[l.order[0]] {
		delete(l.due, l.order[0])
		l.order = l.order[1:]
	}
}

// settle forgets a task that reached its end.
func (v *Vendor) settle(id string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	l := &v.list
	delete(l.open, id)
	delete(l.final, id)
	delete(l.kept, id)
	delete(l.jobs, id)
	for len(l.order) > 0 && !l.open[l.order[0]] {
		delete(l.due, l.order[0])
		l.order = l.order[1:]
	}
}

// listQuery answers j's poll from a page of the list, or says to ask for
// the task alone (ok false).
func (v *Vendor) listQuery(ctx context.Context, j *engine.Job) (out *engine.Outcome, ok bool, err error) {
	now := v.Now()
	v.mu.Lock()
	l := &v.list
	if rec, hit := l.final[j.TaskID]; hit {
		v.mu.Unlock()
		engine.ReportBilled(ctx, 0) // read with another task's page
		out, err := v.outcome(&rec)
		return out, err == nil, err
	}
	idx := slices.Index(l.order, j.TaskID)
	inflight := len(l.open)
	if idx < 0 || inflight < max(v.cfg.ListPollMin, 2) {
		v.mu.Unlock()
		return nil, false, nil
	}
	// Positions count from the newest; the page holds positions [5(p-1), 5p).
	pos := len(l.order) - 1 - idx
	page := pos/perPage + 1
	newest := len(l.order) - 1 - (page-1)*perPage // the index of the page's newest task
	// The read pays off when it settles others too: open page-mates due
	// already (expected finished; one due later is likely still running).
	ready := 0
	for i := max(newest-perPage+1, 0); i <= newest && i < len(l.order); i++ {
		if id := l.order[i]; id != j.TaskID && l.open[id] && !l.due[id].After(now) {
			ready++
		}
	}
	overdue := now.Sub(l.due[j.TaskID])
	v.mu.Unlock()
	if ready < 4 && overdue < v.cfg.ListDefer {
		engine.ReportBilled(ctx, 0)
		return &engine.Outcome{TaskID: j.TaskID, State: engine.TaskQueued, Progress: -1}, true, nil
	}
	p, err := v.TaskList(ctx, page)
	if err != nil {
		v.log.Debug("showapi: task list page unreadable; asking for the task alone", slog.Int("page", page), slog.Any("err", err))
		return nil, false, nil
	}
	var mine *Record
	var wake []string
	v.mu.Lock()
	for i := range p.Tasks {
		rec := p.Tasks[i]
		id := strings.TrimSpace(string(rec.TaskID))
		if id == j.TaskID {
			mine = &rec
			continue
		}
		if o, err := v.outcome(&rec); err == nil && l.open[id] && (o.State == engine.TaskDone || o.State == engine.TaskFailed) {
			if _, had := l.final[id]; !had && l.jobs[id] != "" {
				wake = append(wake, l.jobs[id])
			}
			l.final[id] = rec
		}
	}
	w := v.wake
	v.mu.Unlock()
	if w != nil {
		for _, id := range wake {
			w(id)
		}
	}
	if mine == nil {
		return nil, false, nil // not where the bot's own order puts it: ask for it alone
	}
	out, err = v.outcome(mine)
	return out, err == nil, err
}

// SetWake implements engine.Waker: a list read that finds another polled
// task finished makes that job's poll due now (answered from the read).
func (v *Vendor) SetWake(wake func(jobID string)) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.wake = wake
}
