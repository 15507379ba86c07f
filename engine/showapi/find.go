package showapi

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/picbot/picbot/engine"
)

// Finding lost tasks. A crash amid submissions leaves several jobs whose
// creation's answer was lost, and after the restart each looks for its task
// in /yourtasklist, every page billed. Read alone, each search reads the
// same newest pages again (and one whose task was never made reads
// FindPages of them). So searches started within FindGather of each other
// share one sweep of the list: it reads page after page while any of them
// is still unsettled, and judges every page for all of them. A sweep takes
// in only searches that started before its first read, so each page it
// reads was read after its searches began, as a search alone would read it.

// sweep is one read of the task list shared by the searches it took in.
type sweep struct {
	members []*finding
}

// finding is one search for a job's lost task.
type finding struct {
	job   string
	want  [][2]string // the creation's fields, as the record echoes them
	since time.Time   // tasks created earlier are not this job's; zero: any
	at    time.Time   // the submission (bot's clock), for pages with a Date; zero: unknown
	done  chan struct{}
	id    string // the task found; "" none
	err   error
}

// finalTTL bounds how long a finished record read with a page is kept to
// answer its task's poll (a job awaiting a callback that never came).
const finalTTL = 30 * time.Minute

// FindTask looks through /yourtasklist for the task that creating j's
// would have made: the record echoes the creation's fields, so it is the
// one whose prompt, seed, size, model, steps, batch and call_back (the
// job's own URL, when set) are all j's, created no earlier than
// j.Submitting.At less ClockSkew. The engine gives each job a random seed,
// so two jobs' records differ. The latest tasks are read first (see
// ListOrder), and the search ends at a page whose tasks are all older than
// the submission, or after FindPages pages (more when searches share the
// read: their tasks may stand before this one). A finished record found
// answers the task's next poll without another call.
func (v *Vendor) FindTask(ctx context.Context, j *engine.Job, t engine.Task) (string, bool, error) {
	f := &finding{job: j.ID, want: v.createFields(&j.Request, t.CallbackURL), done: make(chan struct{})}
	if j.Submitting != nil {
		f.since, f.at = j.Submitting.At.Add(-v.cfg.ClockSkew), j.Submitting.At
	}
	v.mu.Lock()
	s, lead := v.sweep, false
	if s == nil || v.cfg.FindGather < 0 {
		s, lead = &sweep{}, true
		if v.cfg.FindGather >= 0 {
			v.sweep = s
		}
	}
	s.members = append(s.members, f)
	v.mu.Unlock()
	if lead {
		v.runSweep(ctx, s)
	}
	select {
	case <-f.done:
		return f.id, f.id != "" && f.err == nil, f.err
	case <-ctx.Done():
		return "", false, ctx.Err()
	}
}

// runSweep gathers searches for FindGather, then reads the list for all of
// them on the caller's context (its job is billed the pages).
func (v *Vendor) runSweep(ctx context.Context, s *sweep) {
	start := time.Now()
	d := v.cfg.FindGather
	if dl, ok := ctx.Deadline(); ok {
		d = min(d, time.Until(dl)/4) // leave the reads most of the call's time
	}
	if d > 0 {
		timer := time.NewTimer(d)
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
		}
	}
	v.mu.Lock()
	if v.sweep == s {
		v.sweep = nil // later searches start the next sweep
	}
	members := s.members
	v.mu.Unlock()
	err := ctx.Err()
	read := 0
	if err == nil {
		read, err = v.walk(ctx, members)
	}
	found := 0
	for _, f := range members {
		if f.id != "" {
			found++
		}
	}
	v.log.Info("showapi: searched the task list for tasks whose creation's answer was lost",
		slog.Int("searches", len(members)), slog.Int("found", found), slog.Int("pages", read),
		slog.Duration("took", time.Since(start)), slog.Any("err", err))
	for _, f := range members {
		select {
		case <-f.done:
		default:
			f.err = err
			close(f.done)
		}
	}
}

// walk reads the pages the searches need and settles each one; read is
// how many pages it read.
func (v *Vendor) walk(ctx context.Context, members []*finding) (read int, err error) {
	open := len(members)
	// look judges page p for every search still open; ends, that a page
	// all older than a search's since ends it (false for page 1 of a
	// list oldest first, whose latest tasks are on the last page).
	look := func(p *TaskPage, page int, ends bool) {
		v.keepFinal(p)
		for _, f := range members {
			select {
			case <-f.done:
				continue
			default:
			}
			since := f.since
			if at, ok := p.clock.vendorTime(f.at); ok && !f.at.IsZero() {
				since = at.Add(-v.cfg.DateSkew) // the submission by the vendor's clock
			}
			older := len(p.Tasks) > 0
			for i := range p.Tasks {
				rec := &p.Tasks[i]
				if at, ok := rec.Created(); ok && !since.IsZero() && at.Before(since) {
					continue
				}
				older = false
				if id := strings.TrimSpace(string(rec.TaskID)); id != "" && matches(rec, f.want) {
					v.log.Info("showapi: found a task whose creation's answer was lost", slog.String("job_id", f.job), slog.String("task_id", id), slog.Int("page", page))
					f.id = id
					break
				}
			}
			if f.id != "" || older && ends {
				close(f.done) // found, or every page further on is older still
				open--
			}
		}
	}
	first, err := v.TaskList(ctx, 1)
	if err != nil {
		return 0, err
	}
	order := v.cfg.ListOrder
	if order == "auto" {
		order = listOrder(first)
	}
	look(first, 1, order == "newest")
	if open == 0 {
		return 1, nil
	}
	all, known := first.AllPages.Int()
	if n, ok := first.AllNum.Int(); !known && ok {
		per, ok := first.MaxResult.Int()
		if !ok || per < 1 {
			per = perPage // the document's page size
		}
		all, known = (n+per-1)/per, true
	}
	next, step := 2, 1
	switch {
	case order == "oldest" && known && all > 1:
		next, step = int(all), -1 // page 1 was the oldest: the latest are on the last
	case order == "oldest" && known:
		return 1, nil // one page, read
	case len(first.Tasks) == 0:
		return 1, nil // newest first: nothing later than page 1's
	}
	// Each search's task may stand behind the others' tasks, made as close in time.
	pages := v.cfg.FindPages + (len(members)-1+perPage-1)/perPage
	for read = 1; read < pages && open > 0 && next > 1 && (!known || int64(next) <= all); {
		p, err := v.TaskList(ctx, next)
		if err != nil {
			return read, err
		}
		read++
		look(p, next, true)
		if len(p.Tasks) == 0 {
			break // every page further on is older still
		}
		next += step
	}
	return read, nil
}

// keepFinal keeps the finished and failed records of page p, for finalTTL,
// to answer their tasks' next polls without a call: a lost creation found,
// or a task whose callback was lost while the bot was down.
func (v *Vendor) keepFinal(p *TaskPage) {
	now := v.Now()
	v.mu.Lock()
	defer v.mu.Unlock()
	l := &v.list
	l.init()
	for id, at := range l.kept {
		if now.Sub(at) > finalTTL {
			delete(l.kept, id)
			delete(l.final, id)
		}
	}
	for i := range p.Tasks {
		rec := p.Tasks[i]
		id := strings.TrimSpace(string(rec.TaskID))
		if o, err := v.outcome(&rec); id != "" && err == nil && (o.State == engine.TaskDone || o.State == engine.TaskFailed) {
			l.final[id], l.kept[id] = rec, now
		}
	}
}
