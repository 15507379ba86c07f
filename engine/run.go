package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"time"
)

// never is the step result that schedules nothing: the job is finished.
const never = time.Duration(-1)

// step moves job id one step on, according to its stored state, then
// schedules the next step. Steps of one job never overlap, but no lock is
// held during the step's I/O: the step works on the job as read, and its
// write is dropped if a callback or a cancel moved the job on meanwhile.
func (e *Engine) step(ctx context.Context, id string) {
	lj := e.liveJob(id)
	if lj == nil {
		e.sched.forget(id)
		return
	}
	lj.mu.Lock()
	if lj.stepping {
		// Made due while a step runs (a callback, a cancel): that step
		// steps the job once more when it ends.
		lj.again = true
		lj.mu.Unlock()
		return
	}
	lj.stepping = true
	work := &liveJob{platform: lj.platform, stepFields: lj.stepFields}
	lj.mu.Unlock()
	after := e.stepOnce(ctx, work, id)
	lj.mu.Lock()
	started := lj.deliveryStarted || work.deliveryStarted
	lj.stepFields = work.stepFields
	lj.deliveryStarted = started
	lj.stepping = false
	again := lj.again
	lj.again = false
	lj.mu.Unlock()
	if ctx.Err() != nil {
		return // shutting down: the restart carries on from the store
	}
	if again {
		after = 0
	}
	if after == never {
		e.forget(id)
		return
	}
	e.sched.at(id, e.cfg.Now().Add(after))
}

// snapshot copies the fields a step or a callback works on.
func (lj *liveJob) snapshot() *liveJob {
	lj.mu.Lock()
	defer lj.mu.Unlock()
	return &liveJob{platform: lj.platform, stepFields: lj.stepFields}
}

func (e *Engine) stepOnce(ctx context.Context, lj *liveJob, id string) time.Duration {
	if ctx.Err() != nil {
		return never
	}
	j, err := e.store.Job(ctx, id)
	if err != nil {
		if ErrorCode(err) == ENOTFOUND {
			return never
		}
		e.log.Error("load job", slog.String("job_id", id), slog.Any("err", err))
		return time.Second
	}
	st := &stepState{seen: j.Clone()}
	after := e.advance(withStep(ctx, st), lj, j)
	if ctx.Err() != nil {
		return never
	}
	if st.stale {
		return 0 // the job moved on during the step: look at it afresh
	}
	if after >= resumeKeep && !st.scheduled && st.seen != nil && !st.seen.Finished() {
		// Kept so that a restart does not poll before this is due (see
		// resumeTimes), when the step's own write did not keep it already.
		next := e.cfg.Now().Add(after)
		if _, err := e.store.UpdateJob(ctx, id, func(j *Job, _ Counters) error {
			if !sameStep(j, st.seen) {
				return errStale
			}
			j.NextAt = next
			return nil
		}); err != nil && !errors.Is(err, errStale) {
			e.log.Warn("record next step", slog.String("job_id", id), slog.Any("err", err))
		}
	}
	return after
}

// resumeKeep is the shortest wait worth a store write of its own to
// survive a restart. A step that writes the job anyway (a billed poll, a
// submission) keeps its next step in that write, however short the wait.
const resumeKeep = 2 * time.Second

// stepState is what a step (or a callback) read of its job, so that its
// write can tell whether the job moved on in the meantime.
type stepState struct {
	seen  *Job
	stale bool
	// scheduled: the step's write recorded when the job is next due (keepNext).
	scheduled bool
}

// keepNext records on j, inside a write the step makes anyway, that its
// next step is due after wait: a restart then polls nothing before that,
// however short the wait (see resumeTimes).
func (e *Engine) keepNext(ctx context.Context, j *Job, wait time.Duration) {
	j.NextAt = e.cfg.Now().Add(wait)
	if st, _ := ctx.Value(stepKey{}).(*stepState); st != nil {
		st.scheduled = true
	}
}

type stepKey struct{}

func withStep(ctx context.Context, st *stepState) context.Context {
	return context.WithValue(ctx, stepKey{}, st)
}

var errStale = errors.New("job moved on during the step")

// sameStep reports whether stored job j is still where a step read it as
// seen: same state, same vendor task, same downloads and delivery tries.
// Notes that change nothing of that (Meta, NextAt) do not count.
func sameStep(j, seen *Job) bool {
	return j.State == seen.State && j.Vendor == seen.Vendor && j.TaskID == seen.TaskID &&
		j.Attempts == seen.Attempts && len(j.Pending) == len(seen.Pending) &&
		j.DeliveryAttempts == seen.DeliveryAttempts && j.Notified == seen.Notified
}

// discardCounters reads through to the transaction's counters and keeps no
// write: a stale step's change is replayed on it only to learn its billing.
type discardCounters struct{ Counters }

func (discardCounters) Add(string, int64)         {}
func (discardCounters) SetSetting(string, string) {}

func (e *Engine) advance(ctx context.Context, lj *liveJob, j *Job) time.Duration {
	if j.Finished() {
		return never
	}
	if (j.State == StateQueued || j.State.AtVendor()) && e.cfg.Now().After(j.Deadline) {
		if j.State == StateQueued {
			// No vendor took it: all down, out of credit, or refusing calls.
			return e.fail(ctx, j, Errorf(ETIMEOUT, "No image service could take the job in time.", "没有绘图服务能及时接手这个任务。"), 0)
		}
		return e.fail(ctx, j, Errorf(ETIMEOUT, "The image service took too long.", "绘图服务超时。"), 0)
	}
	switch j.State {
	case StateQueued:
		return e.submit(ctx, lj, j)
	case StateSubmitted, StateRunning:
		if len(j.Pending) > 0 {
			return e.fetch(ctx, lj, j)
		}
		return e.poll(ctx, lj, j)
	case StateSucceeded:
		return e.deliver(ctx, lj, j)
	case StateFailed, StateCancelled:
		return e.notify(ctx, j)
	}
	return never
}

// update writes fn's change to job id and tells the observer what changed.
func (e *Engine) update(ctx context.Context, id string, fn func(j *Job, c Counters) error) (*Job, error) {
	var (
		from   State
		billed int
		by     map[string]int
		vendor string
	)
	j, err := e.store.UpdateJob(ctx, id, func(j *Job, c Counters) error {
		from, billed, by, vendor = j.State, j.BilledCalls, cloneBilled(j.BilledBy), callee(j)
		return fn(j, c)
	})
	if err != nil {
		return nil, err
	}
	if len(e.gates) > 0 {
		e.syncGates(j)
	}
	if j.State != from {
		e.cfg.Observer.Moved(j, from)
	}
	// Each call under the vendor that billed it (Job.Bill); anything added
	// to the total alone under the vendor the job was at before fn.
	n := j.BilledCalls - billed
	for v, d := range billedSince(&Job{BilledBy: by}, j) {
		e.cfg.Observer.Billed(v, d)
		n -= d
	}
	if n > 0 {
		if vendor == "" {
			vendor = "none"
		}
		e.cfg.Observer.Billed(vendor, n)
	}
	return j, nil
}

// save is update for steps: it logs a failed write and returns nil, and the
// step is then tried again. Inside a step it applies fn only if the job is
// still as the step read it; otherwise only the vendor calls the step was
// billed for are recorded, and the step is marked stale.
func (e *Engine) save(ctx context.Context, id string, fn func(j *Job, c Counters) error) *Job {
	st, _ := ctx.Value(stepKey{}).(*stepState)
	write, dropped := fn, false
	if st != nil {
		write = func(j *Job, c Counters) error {
			dropped = false
			if sameStep(j, st.seen) {
				return fn(j, c)
			}
			dropped = true
			// Replay the change on the job as read to learn its billing, and keep only that.
			probe := st.seen.Clone()
			_ = fn(probe, discardCounters{c})
			if probe.BilledCalls <= st.seen.BilledCalls {
				return errStale
			}
			rest := probe.BilledCalls - st.seen.BilledCalls
			for v, n := range billedSince(st.seen, probe) {
				j.Bill(v, n)
				rest -= n
			}
			j.Bill(callee(st.seen), rest)
			return nil
		}
	}
	j, err := e.update(ctx, id, write)
	if dropped && (err == nil || errors.Is(err, errStale)) {
		e.log.Info("step result dropped: the job moved on", slog.String("job_id", id))
		st.stale = true
		return nil
	}
	if err != nil {
		e.log.Error("update job", slog.String("job_id", id), slog.Any("err", err))
		return nil
	}
	if st != nil {
		st.seen = j.Clone()
	}
	return j
}

// minLater keeps a platform that keeps answering "later, in 0 s" from
// spinning a worker.
const minLater = 50 * time.Millisecond

// retry is the wait after a failed store write.
const retry = time.Second

// fail ends a job that will not produce images, and refunds it. billed
// counts the vendor calls that told of the failure, stored in the same write.
func (e *Engine) fail(ctx context.Context, j *Job, cause error, billed int) time.Duration {
	info := Info(cause)
	ok := e.save(ctx, j.ID, func(j *Job, c Counters) error {
		if err := j.Move(StateFailed, e.cfg.Now()); err != nil {
			return err
		}
		j.Bill(callee(j), billed)
		j.Err = info
		j.Pending = nil
		e.quota.Settle(c, j, true)
		return nil
	})
	if ok == nil {
		return retry
	}
	e.log.Warn("job failed", slog.String("job_id", j.ID), slog.String("vendor", j.Vendor), slog.String("code", info.Code), slog.Any("err", cause))
	return 0
}

// submit hands a queued job to the first vendor that can take it. A
// marker stored before the vendor is called (j.Submitting) lets a later
// step know that a task may exist though no id was recorded (submit.go).
func (e *Engine) submit(ctx context.Context, lj *liveJob, j *Job) time.Duration {
	var (
		v      Vendor
		taskID string
		err    error
	)
	if d, ok := e.calledBack(ctx, lj, j); ok {
		return d
	}
	if j.Submitting != nil {
		if d, wait := e.waitCallback(lj, j); wait {
			return d
		}
		v, taskID = e.sameTask(lj, j)
		if v == nil {
			if d, done := e.uncertain(ctx, lj, j); done {
				return d
			}
		}
	}
	if v == nil {
		v, err = e.pick(&j.Request, j.Tried, true)
		if err == nil && !e.slot(ctx, lj, j, v) {
			// Waiting for the vendor's slot: a freed one wakes the job.
			return e.untilDeadline(j, waitLook(lj))
		}
	} else if g := e.gates[v.Name()]; g != nil {
		g.hold(j.ID) // the same task again: it had its slot
	}
	if err != nil {
		if ErrorCode(err) == EUNAVAILABLE {
			return e.untilDeadline(j, e.cfg.BreakerCooldown/2)
		}
		if j.Err != nil && ErrorCode(err) == EVENDOR {
			err = &Error{Code: j.Err.Code, EN: j.Err.EN, ZH: j.Err.ZH}
		}
		return e.fail(ctx, j, err, 0)
	}
	name := v.Name()
	timing := v.Timing(&j.Request)
	if d, ok := e.pickAccount(ctx, lj, j, v, taskID != ""); !ok {
		return d
	}
	if taskID == "" {
		taskID = fmt.Sprintf("%s-%d", j.ID, j.Attempts+1)
	}
	task := e.task(j, v, taskID)
	ok, noted := e.mark(ctx, j, name, task.ID)
	if !ok {
		return retry
	}
	if noted != nil {
		// A callback named the task of the marker this step read while the
		// step was under way: the write noticed it (sameStep, which lets
		// marker notes pass, would not).
		d, _ := e.calledBack(ctx, lj, j)
		return d
	}
	lj.marked = true
	sctx, cancel := context.WithTimeout(ctx, e.cfg.VendorTimeout)
	sctx, bill := withMeter(sctx)
	taskID, err = v.Submit(sctx, j, task)
	cancel()
	if ctx.Err() != nil {
		if err != nil {
			return never // the marker stays: the next start asks the vendor
		}
		// Shutting down, but the vendor took the task: record it anyway,
		// or the next start would make a second one.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.cfg.VendorTimeout)
		defer cancel()
		ctx = dctx
	}
	refused := isCode(err, EINVALID, EUNSAFE)
	e.breakers[name].record(err == nil || refused, e.cfg.Now(), e.cfg.BreakerFailures, e.cfg.BreakerCooldown)
	if refused {
		// A refusal is billed (unless the vendor says otherwise), under the vendor that refused.
		return e.fail(ctx, j, err, bill.billed(calls(timing.Billed)))
	}
	if err != nil {
		e.log.Warn("vendor submit failed", slog.String("job_id", j.ID), slog.String("vendor", name), slog.Any("err", err))
		if _, ask := v.(TaskFinder); errors.Is(err, ErrNotTaken) || !ask && !errors.Is(err, context.DeadlineExceeded) {
			// The vendor answered, or was never reached: no task to fear, and
			// uncertain_submit must not fail a job for a plain 503. A vendor
			// that can be asked keeps the marker: asking is cheap and sure.
			e.unmark(ctx, j.ID)
		}
		// A failure the vendor says it billed is counted, under that vendor.
		e.billCalls(ctx, j.ID, name, bill.billed(0))
		lj.polls++
		if errors.Is(err, context.DeadlineExceeded) {
			lj.timedOut = e.cfg.Now() // see uncertain
		}
		return e.untilDeadline(j, backoff(time.Second, lj.polls, time.Minute))
	}
	return e.submitted(ctx, lj, j, v, task, taskID, bill.billed(calls(timing.Billed)))
}

// submitted records that vendor v holds j's task, and clears the marker.
// billed counts the calls this cost at v: the submission, or the search
// that found its task and the submission whose answer was lost.
func (e *Engine) submitted(ctx context.Context, lj *liveJob, j *Job, v Vendor, task Task, taskID string, billed int) time.Duration {
	name := v.Name()
	timing := v.Timing(&j.Request)
	now := e.cfg.Now()
	probe := j.Clone()
	probe.Callback = task.CallbackURL != ""
	// Within the deadline: a task submitted late (after retries) would
	// otherwise fail a whole first wait past it.
	wait := e.untilDeadline(j, e.firstWait(probe, timing))
	updated := e.save(ctx, j.ID, func(j *Job, _ Counters) error {
		if err := j.Move(StateSubmitted, now); err != nil {
			return err
		}
		j.Vendor, j.TaskID = name, taskID
		j.Account = probe.taskAccount()
		j.Callback = probe.Callback
		j.Attempts++
		j.Submitting = nil
		j.Bill(name, billed)
		j.Polls = 0
		e.keepNext(ctx, j, wait)
		return nil
	})
	if updated == nil {
		return retry // the marker stays: the next step finds the task
	}
	e.log.Info("job submitted", slog.String("job_id", j.ID), slog.String("vendor", name), slog.String("task_id", taskID))
	lj.polls = 0
	e.notifier.Progress(ctx, updated, Progress{Fraction: 0})
	return wait
}

// firstWait is how long to leave a freshly submitted task alone. With a
// callback, the first poll is only a safety net for a callback that never comes.
func (e *Engine) firstWait(j *Job, t Timing) time.Duration {
	d := t.First
	if j.Callback {
		d = 2*t.First + t.Max
	}
	return e.forProgress(j, t, d)
}

// forProgress shortens a wait to ProgressEvery while a chat watches a job
// whose vendor shows progress.
func (e *Engine) forProgress(j *Job, t Timing, d time.Duration) time.Duration {
	if e.cfg.ProgressEvery <= 0 || !t.Progress || d <= e.cfg.ProgressEvery {
		return d
	}
	if w, ok := e.notifier.(Watcher); ok && w.Watching(j) {
		return e.cfg.ProgressEvery
	}
	return d
}

// calls is the number of billed calls one vendor call made.
func calls(billed bool) int {
	if billed {
		return 1
	}
	return 0
}

// backoff grows base by half for each earlier attempt, up to max.
func backoff(base time.Duration, attempt int, max time.Duration) time.Duration {
	d := time.Duration(float64(base) * math.Pow(1.5, float64(attempt-1)))
	if d > max || d <= 0 {
		return max
	}
	return d
}

// poll asks the vendor about a task it holds.
func (e *Engine) poll(ctx context.Context, lj *liveJob, j *Job) time.Duration {
	v, ok := e.vendors[j.Vendor]
	if !ok {
		return e.requeue(ctx, j, Errorf(EVENDOR, "The image service was removed from the configuration.", "绘图服务已从配置中移除。"), 0)
	}
	timing := v.Timing(&j.Request)
	qctx, cancel := context.WithTimeout(ctx, e.cfg.VendorTimeout)
	qctx, bill := withMeter(qctx)
	out, err := v.Query(qctx, j)
	cancel()
	if ctx.Err() != nil {
		return never
	}
	lj.polls++
	// The call was made and the vendor bills it, answered or not, unless
	// the vendor says what it billed (ReportBilled).
	billed := bill.billed(calls(timing.Billed))
	if err != nil {
		if ErrorCode(err) == ENOTFOUND {
			// The vendor forgot the task: it failed there, so another may try.
			return e.requeue(ctx, j, err, billed)
		}
		e.log.Warn("vendor query failed", slog.String("job_id", j.ID), slog.String("vendor", j.Vendor), slog.Any("err", err))
		wait := e.nextPoll(lj, j, timing)
		if billed > 0 {
			polls := lj.polls
			e.save(ctx, j.ID, func(j *Job, _ Counters) error {
				j.Bill(callee(j), billed)
				j.Polls = polls
				e.keepNext(ctx, j, wait)
				return nil
			})
		}
		return wait
	}
	return e.apply(ctx, lj, j, v, out, billed)
}

func (e *Engine) nextPoll(lj *liveJob, j *Job, t Timing) time.Duration {
	d := backoff(t.Every, lj.polls, t.Max)
	if j.Callback {
		d = max(d, 2*t.First+t.Max) // the callback reports; polls are a safety net
	}
	return e.untilDeadline(j, e.forProgress(j, t, d))
}

// untilDeadline shortens a wait d that would pass j's deadline, so that a
// job no vendor will take fails at its deadline, not a wait later.
func (e *Engine) untilDeadline(j *Job, d time.Duration) time.Duration {
	if until := j.Deadline.Sub(e.cfg.Now()); until < d {
		d = max(until, 0) + time.Millisecond
	}
	return d
}

// apply records what a vendor said about j's task, from a poll (billed is
// what that call cost) or a callback (0).
func (e *Engine) apply(ctx context.Context, lj *liveJob, j *Job, v Vendor, out *Outcome, billed int) time.Duration {
	add := billed
	switch out.State {
	case TaskDone:
		if len(out.Images) == 0 {
			if out.Dropped > 0 {
				return e.fail(ctx, j, Errorf(EUNSAFE, "The image service's content check removed the picture.", "图片未通过内容审核。"), add)
			}
			return e.fail(ctx, j, Errorf(EVENDOR, "The image service returned no picture.", "绘图服务没有返回图片。"), add)
		}
		ok := e.save(ctx, j.ID, func(j *Job, _ Counters) error {
			if err := j.Move(StateRunning, e.cfg.Now()); err != nil {
				return err
			}
			j.Pending = out.Images
			j.Dropped = out.Dropped
			j.Bill(callee(j), add)
			j.VendorDoneAt = e.cfg.Now()
			return nil
		})
		if ok == nil {
			return retry
		}
		return 0
	case TaskFailed:
		if isCode(out.Err, EUNSAFE, EINVALID) {
			return e.fail(ctx, j, out.Err, add)
		}
		return e.requeue(ctx, j, out.Err, add)
	}
	wait := e.nextPoll(lj, j, v.Timing(&j.Request))
	if out.State == TaskRunning && j.State == StateSubmitted || add > 0 {
		polls := lj.polls
		updated := e.save(ctx, j.ID, func(j *Job, _ Counters) error {
			if out.State == TaskRunning {
				if err := j.Move(StateRunning, e.cfg.Now()); err != nil {
					return err
				}
			}
			j.Bill(callee(j), add)
			j.Polls = polls
			e.keepNext(ctx, j, wait)
			return nil
		})
		if updated == nil {
			return retry
		}
		j = updated
	}
	if out.Progress != lj.lastPct || out.Preview != nil {
		lj.lastPct = out.Progress
		e.notifier.Progress(ctx, j, Progress{Fraction: out.Progress, Preview: out.Preview})
	}
	return wait
}

// requeue takes a job back from a vendor that failed it, so the next vendor
// on the route may try; with none left, the job fails.
func (e *Engine) requeue(ctx context.Context, j *Job, cause error, billed int) time.Duration {
	e.log.Warn("vendor failed task", slog.String("job_id", j.ID), slog.String("vendor", j.Vendor), slog.String("task_id", j.TaskID), slog.Any("err", cause))
	info := Info(cause)
	if info.Code == EINTERNAL {
		info = Info(Errorf(EVENDOR, "The image service could not make this picture.", "绘图服务未能生成这张图片。"))
	}
	ok := e.save(ctx, j.ID, func(j *Job, _ Counters) error {
		if err := j.Move(StateQueued, e.cfg.Now()); err != nil {
			return err
		}
		j.Bill(callee(j), billed)
		j.Tried = append(j.Tried, j.Vendor)
		j.Vendor, j.TaskID, j.Callback = "", "", false
		j.Polls, j.NextAt = 0, time.Time{}
		j.Err = info
		return nil
	})
	if ok == nil {
		return retry
	}
	return 0
}

// fetch downloads the images a vendor reported, at once, because vendor
// links expire. The blob store is content-addressed, so a fetch repeated
// after a crash stores nothing twice.
func (e *Engine) fetch(ctx context.Context, lj *liveJob, j *Job) time.Duration {
	results := make([]Result, 0, len(j.Pending))
	for _, r := range j.Pending {
		info, err := e.download(ctx, r)
		if ctx.Err() != nil {
			return never
		}
		if err != nil {
			lj.fetches++
			e.log.Warn("download result", slog.String("job_id", j.ID), slog.String("vendor", j.Vendor), slog.Int("attempt", lj.fetches), slog.Any("err", err))
			gone := isCode(err, EINVALID) || isCode(err, ENOTFOUND) && !r.Late
			if gone || lj.fetches >= lateFetches {
				return e.fail(ctx, j, Errorf(EVENDOR, "The finished picture could not be downloaded from the image service.", "无法从绘图服务下载生成的图片。"), 0)
			}
			return backoff(time.Second, lj.fetches, 30*time.Second)
		}
		results = append(results, Result{Blob: info.Key, Mime: info.Mime, Width: info.Width, Height: info.Height, Size: info.Size, Seed: r.Seed})
	}
	ok := e.save(ctx, j.ID, func(j *Job, _ Counters) error {
		if err := j.Move(StateSucceeded, e.cfg.Now()); err != nil {
			return err
		}
		j.Results = results
		j.Pending = nil
		return nil
	})
	if ok == nil {
		return retry
	}
	return 0
}

// lateFetches bounds the downloads of a job's results: a link marked Late
// that answers 404 is tried this often (about 20 s of backoff) before the job fails.
const lateFetches = 5

func (e *Engine) download(ctx context.Context, r Remote) (BlobInfo, error) {
	if r.URL == "" {
		return e.blobs.Put(ctx, bytes.NewReader(r.Data), e.cfg.MaxDownload)
	}
	dctx, cancel := context.WithTimeout(ctx, e.cfg.VendorTimeout*2)
	defer cancel()
	req, err := http.NewRequestWithContext(dctx, http.MethodGet, r.URL, nil)
	if err != nil {
		return BlobInfo{}, Wrap(EINVALID, err, "Bad result link.", "结果链接无效。")
	}
	resp, err := e.cfg.HTTPClient.Do(req)
	if err != nil {
		return BlobInfo{}, fmt.Errorf("get result: %w", err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusGone:
		return BlobInfo{}, Errorf(ENOTFOUND, "The result link has expired.", "结果链接已过期。")
	case resp.StatusCode != http.StatusOK:
		return BlobInfo{}, fmt.Errorf("get result: status %d", resp.StatusCode)
	}
	return e.blobs.Put(dctx, resp.Body, e.cfg.MaxDownload)
}

// deliver has the chat post a succeeded job's images, then records that and
// commits the charge. A crash between the post and the record posts twice,
// never zero times.
func (e *Engine) deliver(ctx context.Context, lj *liveJob, j *Job) time.Duration {
	first := !lj.deliveryStarted
	lj.deliveryStarted = true // lj is this step's own copy
	if first && j.DeliveryAttempts == 0 && !j.VendorDoneAt.IsZero() {
		// Once per job: a post tried again after a Later is not a new start.
		e.cfg.Observer.DeliveryStarted(j, e.cfg.Now().Sub(j.VendorDoneAt))
	}
	err := e.notifier.Deliver(ctx, j)
	if ctx.Err() != nil {
		return never
	}
	if after, ok := AsLater(err); ok {
		e.log.Debug("post later", slog.String("job_id", j.ID), slog.Duration("after", after))
		return max(after, minLater) // the platform's limit, not a failed try: no attempt counted
	}
	if err == nil {
		ok := e.save(ctx, j.ID, func(j *Job, c Counters) error {
			if err := j.Move(StateDelivered, e.cfg.Now()); err != nil {
				return err
			}
			e.quota.Settle(c, j, false)
			return nil
		})
		if ok == nil {
			return retry
		}
		e.log.Info("job delivered", slog.String("job_id", j.ID), slog.String("vendor", j.Vendor),
			slog.Int("billed_calls", ok.BilledCalls), slog.Duration("took", ok.DeliveredAt.Sub(ok.CreatedAt)))
		return never
	}
	e.log.Warn("deliver job", slog.String("job_id", j.ID), slog.Int("attempt", j.DeliveryAttempts+1), slog.Any("err", err))
	if ErrorCode(err) == EUNDELIVERED || j.DeliveryAttempts+1 >= e.cfg.DeliveryAttempts {
		// Nobody can be told: fail, refund, and stop trying.
		ok := e.save(ctx, j.ID, func(j *Job, c Counters) error {
			if err := j.Move(StateFailed, e.cfg.Now()); err != nil {
				return err
			}
			j.Err = Info(Errorf(EUNDELIVERED, "The picture could not be posted here.", "图片无法发送到这里。"))
			j.Notified = true
			e.quota.Settle(c, j, true)
			return nil
		})
		if ok == nil {
			return retry
		}
		return never
	}
	return e.deliveryRetry(ctx, j)
}

func (e *Engine) deliveryRetry(ctx context.Context, j *Job) time.Duration {
	ok := e.save(ctx, j.ID, func(j *Job, _ Counters) error { j.DeliveryAttempts++; return nil })
	if ok == nil {
		return retry
	}
	return backoff(2*time.Second, ok.DeliveryAttempts, 5*time.Minute)
}

// notify tells the chat that a job failed or was cancelled.
func (e *Engine) notify(ctx context.Context, j *Job) time.Duration {
	err := e.notifier.Deliver(ctx, j)
	if ctx.Err() != nil {
		return never
	}
	if after, ok := AsLater(err); ok {
		e.log.Debug("post later", slog.String("job_id", j.ID), slog.Duration("after", after))
		return max(after, minLater) // the platform's limit, not a failed try: no attempt counted
	}
	if err != nil && ErrorCode(err) != EUNDELIVERED && j.DeliveryAttempts+1 < e.cfg.DeliveryAttempts {
		e.log.Warn("notify job", slog.String("job_id", j.ID), slog.Any("err", err))
		return e.deliveryRetry(ctx, j)
	}
	if e.save(ctx, j.ID, func(j *Job, _ Counters) error { j.Notified = true; return nil }) == nil {
		return retry
	}
	return never
}
