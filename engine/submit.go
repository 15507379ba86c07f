package engine

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"
)

// Submitting marks a submission under way. It is stored before the vendor
// is called, so a step that finds it on a queued job knows the vendor may
// hold a task whose id was never recorded: the answer was lost to a crash,
// a failed store write, a shutdown or a timeout.
type Submitting struct {
	Vendor  string    `json:"vendor"`
	TaskID  string    `json:"task_id"` // the Task.ID the vendor was given
	Attempt int       `json:"attempt"`
	At      time.Time `json:"at"`
	// Account is the vendor account it was sent to (an AccountPool's).
	Account string `json:"account,omitempty"`
	// Host is the machine whose clock told At (HostName): an adapter
	// that reads a vendor's clock against the bot's may apply what it
	// learnt to a mark made on its own machine only.
	Host string `json:"host,omitempty"`
	// CalledBack is the task a vendor's callback named while another
	// replica held the job, or a step of it was under way here
	// (noteCallbackTask): the submission made it.
	CalledBack string `json:"called_back,omitempty"`
	// Note is the vendor's own, for its search for the task (MarkNoter).
	Note string `json:"note,omitempty"`
}

// Policies for a submission that may have reached a vendor that cannot be asked.
const (
	UncertainResubmit = "resubmit" // send it again: at most one extra task per lost answer
	UncertainFail     = "fail"     // fail the job with a refund: never a second task
)

// SubmitObserver is an Observer that also counts uncertain submissions, by
// vendor and what became of them: "found", "absent", "resubmit", "fail".
type SubmitObserver interface {
	SubmitUncertain(vendor, outcome string)
}

// task is what vendor v is handed for job j, with id as its suggested id.
func (e *Engine) task(j *Job, v Vendor, id string) Task {
	t := Task{
		ID:        id,
		InputURLs: e.inputURLs(j),
		Open: func(ctx context.Context, i int) (io.ReadCloser, error) {
			return e.blobs.Open(ctx, j.Request.AllInputs()[i].Blob)
		},
	}
	if cv, ok := v.(CallbackVendor); ok && cv.WantsCallback() && e.cfg.PublicURL != "" {
		t.CallbackURL = e.CallbackURL(v.Name(), j)
	}
	return t
}

// mark stores the marker before vendor is called; ok false if the write
// failed. A stored marker on which a callback noted its task meanwhile
// (CalledBack: this step's search missed it, say) is kept instead, and
// returned as noted: that task is recorded, nothing is sent again.
func (e *Engine) mark(ctx context.Context, j *Job, vendor, taskID string) (ok bool, noted *Submitting) {
	m := &Submitting{Vendor: vendor, TaskID: taskID, Attempt: j.Attempts + 1, At: e.cfg.Now(), Account: j.Account, Host: HostName()}
	if n, ok := e.vendors[vendor].(MarkNoter); ok {
		m.Note = n.MarkNote()
	}
	if live := e.liveJob(j.ID); live != nil {
		// Before the store has it: a callback must take the marker for
		// this process's own at once (applyCallback), though the step's
		// copy of the fields comes back only when it ends. A failed write
		// is undone then, by that copy.
		live.mu.Lock()
		live.marked = true
		live.mu.Unlock()
	}
	updated := e.save(ctx, j.ID, func(j *Job, _ Counters) error {
		noted = nil
		if old := j.Submitting; old != nil && old.CalledBack != "" {
			c := *old
			noted = &c
			return nil
		}
		j.Submitting = m
		return nil
	})
	if updated == nil {
		return false, nil
	}
	if noted != nil {
		j.Submitting = noted
		return true, noted
	}
	j.Submitting = m
	return true, nil
}

// calledBack records the task a callback noted on j's marker
// (Submitting.CalledBack), as submitted (billed one call, the submission
// whose answer was lost), without asking the vendor or sending it again.
func (e *Engine) calledBack(ctx context.Context, lj *liveJob, j *Job) (time.Duration, bool) {
	m := j.Submitting
	if m == nil || m.CalledBack == "" {
		return 0, false
	}
	v, ok := e.vendors[m.Vendor]
	if !ok {
		return 0, false
	}
	e.log.Info("submission uncertain: the vendor's callback named the task; recorded without submitting again",
		slog.String("job_id", j.ID), slog.String("vendor", m.Vendor), slog.String("task_id", m.CalledBack))
	e.countUncertain(m.Vendor, "callback")
	return e.submitted(ctx, lj, j, v, e.task(j, v, m.TaskID), m.CalledBack, calls(v.Timing(&j.Request).Billed)), true
}

// unmark clears the marker after a submission that certainly made no task.
// A failed write only costs a question to the vendor at the next step.
func (e *Engine) unmark(ctx context.Context, id string) {
	e.save(ctx, id, func(j *Job, _ Counters) error {
		j.Submitting = nil
		return nil
	})
}

func (e *Engine) countUncertain(vendor, outcome string) {
	if o, ok := e.cfg.Observer.(SubmitObserver); ok {
		o.SubmitUncertain(vendor, outcome)
	}
}

// uncertain settles a queued job whose last submission may have made a
// task: it asks a vendor that can be asked, and otherwise follows
// Config.UncertainSubmit. done false means: submit as usual.
func (e *Engine) uncertain(ctx context.Context, lj *liveJob, j *Job) (time.Duration, bool) {
	m := j.Submitting
	log := e.log.With(slog.String("job_id", j.ID), slog.String("vendor", m.Vendor), slog.String("task_id", m.TaskID), slog.Time("submitted_at", m.At))
	v, ok := e.vendors[m.Vendor]
	if !ok {
		log.Warn("submission uncertain at a vendor no longer configured; submitting again")
		return 0, false
	}
	// The vendor may still be acting on a call this process gave up on:
	// asked (or sent again) before it has had as long again, it would say
	// "no task", and the task it made late would be orphaned and billed.
	if wait := lj.timedOut.Add(e.cfg.VendorTimeout).Sub(e.cfg.Now()); wait > 0 {
		return e.untilDeadline(j, wait), true
	}
	task := e.task(j, v, m.TaskID)
	f, ok := v.(TaskFinder)
	if !ok {
		if e.cfg.UncertainSubmit == UncertainFail {
			log.Warn("submission uncertain and the vendor cannot be asked: failing the job (uncertain_submit: fail)")
			e.countUncertain(m.Vendor, "fail")
			return e.fail(ctx, j, Errorf(EVENDOR, "The image service may or may not have taken this job, and it cannot be asked; so as not to pay twice it was not sent again. Please try again.",
				"无法确认绘图服务是否已接下这个任务，也无法查询；为免重复计费未再次提交。请重试。"), 0), true
		}
		log.Warn("submission uncertain and the vendor cannot be asked: submitting again (uncertain_submit: resubmit)")
		e.countUncertain(m.Vendor, "resubmit")
		return 0, false
	}
	// A dead process's submission is asked about once its first poll
	// would be due: asked earlier, a task it made is most likely still
	// running, and the answer only proves it, where one from then on
	// often reads its result too (kept for its next poll).
	if wait := m.At.Add(v.Timing(&j.Request).First).Sub(e.cfg.Now()); !lj.marked && wait > 0 {
		return e.untilDeadline(j, wait), true
	}
	fctx, cancel := context.WithTimeout(ctx, e.cfg.VendorTimeout)
	fctx, bill := withMeter(fctx)
	taskID, found, err := f.FindTask(fctx, j, task)
	cancel()
	if ctx.Err() != nil {
		return never, true
	}
	// The search's own calls (list pages) are billed by the vendor asked,
	// found or not; a vendor that reports nothing is taken to bill nothing.
	searched := bill.billed(0)
	if err != nil || !found {
		if updated := e.billCalls(ctx, j.ID, m.Vendor, searched); updated != nil {
			*j = *updated.Clone()
		}
	}
	if err != nil {
		log.Warn("submission uncertain and the vendor could not be asked; asking again later", slog.Any("err", err))
		lj.polls++
		return e.untilDeadline(j, backoff(time.Second, lj.polls, time.Minute)), true
	}
	if !found {
		log.Info("submission uncertain: the vendor has no such task; submitting again")
		e.countUncertain(m.Vendor, "absent")
		return 0, false
	}
	log.Info("submission uncertain: the vendor holds the task; recorded without submitting again", slog.String("found_task_id", taskID))
	e.countUncertain(m.Vendor, "found")
	// The submission whose answer was lost made the task: billed as one.
	return e.submitted(ctx, lj, j, v, task, taskID, searched+calls(v.Timing(&j.Request).Billed)), true
}

// billCalls records n billed calls at vendor that change nothing else; nil
// if there were none or the write failed (they then go uncounted).
func (e *Engine) billCalls(ctx context.Context, id, vendor string, n int) *Job {
	if n <= 0 {
		return nil
	}
	return e.save(ctx, id, func(j *Job, _ Counters) error {
		j.Bill(vendor, n)
		return nil
	})
}

// waitCallback holds back a submission a dead process left uncertain at a
// vendor that calls back, for the safety-net wait a recorded task gets
// before its first poll (firstWait), from when it was sent or, if later,
// from when this process took the job on: a task the vendor made calls
// back meanwhile, its retries of the calls that failed while the bot was
// down included (they come on the vendor's schedule, not the job's), and
// applyCallback records it for free, where sending it again or asking
// costs a billed call. A task never made costs only that wait. A marker
// this process stored (a failed or timed-out call of its own) is not
// waited on: no callback is owed.
func (e *Engine) waitCallback(lj *liveJob, j *Job) (time.Duration, bool) {
	m := j.Submitting
	v, ok := e.vendors[m.Vendor].(CallbackVendor)
	if lj.marked || !ok || !v.WantsCallback() || e.cfg.PublicURL == "" {
		return 0, false
	}
	t := v.Timing(&j.Request)
	from := m.At
	if lj.tookOn.After(from) {
		from = lj.tookOn
	}
	wait := from.Add(2*t.First + t.Max).Sub(e.cfg.Now())
	if wait <= 0 {
		return 0, false
	}
	return e.untilDeadline(j, wait), true
}

// sameTask is where a submission whose answer was lost goes again without
// asking first: to a vendor that takes each task id once, under the same
// id, while that vendor is not failed for the job and its breaker lets
// calls through. Nil: ask the vendor (uncertain), then pick as usual.
func (e *Engine) sameTask(lj *liveJob, j *Job) (Vendor, string) {
	m := j.Submitting
	v, ok := e.vendors[m.Vendor]
	if !ok || slices.Contains(j.Tried, m.Vendor) || !e.breakers[m.Vendor].allow(e.cfg.Now()) {
		return nil, ""
	}
	if s, ok := v.(IdempotentSubmitter); !ok || !s.SubmitIdempotent() || v.Check(&j.Request) != nil {
		return nil, ""
	}
	if l, ok := v.(LookupFirst); ok && !lj.marked && l.LookupFirst(j) {
		// A dead process's marker: uncertain asks, and if the task is
		// absent the same id goes again. This process's own timed-out
		// call is sent again at once: asked before the vendor has had as
		// long again, it would only be asked later (see uncertain).
		if _, ask := v.(TaskFinder); ask {
			return nil, ""
		}
	}
	e.log.Info("submission uncertain: sent again under the same task id, which the vendor takes once",
		slog.String("job_id", j.ID), slog.String("vendor", m.Vendor), slog.String("task_id", m.TaskID), slog.Time("submitted_at", m.At))
	e.countUncertain(m.Vendor, "same-id")
	return v, m.TaskID
}

// ErrNotTaken in a submission's error chain says the vendor certainly made
// no task (a gateway that refused the account before the backend saw the
// call): the marker goes, and the next try may pick another account or
// vendor under a new task id.
var ErrNotTaken = errors.New("the vendor made no task")

// pickAccount sets j.Account for a submission to v, when v is an
// AccountPool: the marker's account when the same task id is sent again,
// else the pool's choice. ok false: no account can take it now, and d is
// when to try again (counted as a failure at v, so its breaker can open).
func (e *Engine) pickAccount(ctx context.Context, lj *liveJob, j *Job, v Vendor, sameID bool) (d time.Duration, ok bool) {
	p, pool := v.(AccountPool)
	switch {
	case !pool:
		j.Account = ""
		return 0, true
	case sameID && j.Submitting != nil && j.Submitting.Account != "":
		j.Account = j.Submitting.Account
		if al, ok := v.(AccountLimits); ok {
			al.Holding(j.ID, j.Account) // the same task: its account's slot
		}
		return 0, true
	}
	account, err := p.PickAccount(j)
	if err != nil {
		e.breakers[v.Name()].record(false, e.cfg.Now(), e.cfg.BreakerFailures, e.cfg.BreakerCooldown)
		e.log.Warn("no vendor account can take the job now", slog.String("job_id", j.ID), slog.String("vendor", v.Name()), slog.Any("err", err))
		lj.polls++
		return e.untilDeadline(j, backoff(time.Second, lj.polls, time.Minute)), false
	}
	j.Account = account
	return 0, true
}

// taskAccount is the account that holds the task being recorded: the one
// the submission was sent to (its marker), else the job's.
func (j *Job) taskAccount() string {
	if j.Submitting != nil && j.Submitting.Account != "" {
		return j.Submitting.Account
	}
	return j.Account
}

// HostName is this machine's name, as os.Hostname tells it ("" if it
// cannot), for Submitting.Host.
var HostName = sync.OnceValue(func() string {
	h, _ := os.Hostname()
	return h
})
