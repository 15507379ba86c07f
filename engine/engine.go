package engine

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base32"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// Config tunes the engine. Zero fields take the defaults of DefaultConfig.
type Config struct {
	Workers int
	// PublicURL is where vendors reach the bot's HTTP server (callbacks, input
	// images). Empty: vendors are polled and inputs are sent inline.
	PublicURL string
	// Routes gives each kind its vendors, in order of preference.
	Routes map[Kind][]string
	Limits Limits
	// JobTimeout bounds a job from acceptance to the vendor's result.
	JobTimeout time.Duration
	// VendorTimeout bounds one call to a vendor.
	VendorTimeout time.Duration
	// MaxDownload caps one result image, in bytes.
	MaxDownload int64
	// ProgressEvery, when set, polls a vendor that shows progress this often
	// while a chat watches the job; each poll is billed. Zero: no such polls.
	ProgressEvery time.Duration
	// DeliveryAttempts bounds tries to post a result before giving up.
	DeliveryAttempts int
	// BreakerFailures in a row open a vendor's circuit for BreakerCooldown.
	BreakerFailures int
	BreakerCooldown time.Duration
	// UncertainSubmit is what to do with a job whose submission may have
	// reached a vendor that cannot be asked (no TaskFinder):
	// UncertainResubmit (default) sends it again, at most one extra task per
	// lost answer; UncertainFail fails it with a refund. Either is logged.
	UncertainSubmit string
	// HTTPClient downloads vendors' result images.
	HTTPClient *http.Client
	// Observer hears events for metrics; nil for none.
	Observer Observer
	Logger   *slog.Logger
	Now      func() time.Time
	// Concurrency bounds the tasks each named vendor holds at once (the
	// vendors throttle concurrent tasks); the jobs beyond it wait in the
	// bot, in turn between users. Absent or 0: no bound.
	Concurrency map[string]int
	// ResumeSpread caps the window over which Start spreads the polls of
	// jobs at a vendor that are overdue or have no stored schedule, so a
	// restart is not a burst of billed polls. Zero: 30 s.
	ResumeSpread time.Duration
}

// DefaultConfig returns the engine's defaults.
func DefaultConfig() Config {
	return Config{
		Workers:          16,
		Limits:           DefaultLimits(),
		JobTimeout:       15 * time.Minute,
		VendorTimeout:    30 * time.Second,
		MaxDownload:      40 << 20,
		DeliveryAttempts: 10,
		BreakerFailures:  3,
		BreakerCooldown:  30 * time.Second,
		ResumeSpread:     30 * time.Second,
	}
}

func (c *Config) fill() {
	d := DefaultConfig()
	if c.Workers <= 0 {
		c.Workers = d.Workers
	}
	if c.Limits == (Limits{}) {
		c.Limits = d.Limits
	}
	if c.JobTimeout <= 0 {
		c.JobTimeout = d.JobTimeout
	}
	if c.VendorTimeout <= 0 {
		c.VendorTimeout = d.VendorTimeout
	}
	if c.MaxDownload <= 0 {
		c.MaxDownload = d.MaxDownload
	}
	if c.DeliveryAttempts <= 0 {
		c.DeliveryAttempts = d.DeliveryAttempts
	}
	if c.BreakerFailures <= 0 {
		c.BreakerFailures = d.BreakerFailures
	}
	if c.BreakerCooldown <= 0 {
		c.BreakerCooldown = d.BreakerCooldown
	}
	if c.ResumeSpread <= 0 {
		c.ResumeSpread = d.ResumeSpread
	}
	if c.UncertainSubmit == "" {
		c.UncertainSubmit = UncertainResubmit
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: 60 * time.Second}
	}
	if c.Observer == nil {
		c.Observer = nopObserver{}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")
}

// Engine runs jobs: it admits commands, hands them to vendors, follows them
// by callback or poll, keeps the images and has them delivered. Every change
// of a job goes through the store first, so a restart carries on where it stopped.
type Engine struct {
	cfg      Config
	store    Store
	quota    Quota
	blobs    Blobs
	notifier Notifier
	vendors  map[string]Vendor
	breakers map[string]*breaker
	gates    map[string]*gate // Limited vendors' slots and lines
	log      *slog.Logger
	sched    *scheduler

	mu   sync.Mutex
	live map[string]*liveJob
	// unstepped: job ids the last lease renewal found held here and not in
	// live (see renew); guarded by mu.
	unstepped map[string]bool
	// notified: job ids woken by another replica's notice since the last
	// renewal began, which that renewal's backstop need not wake again; guarded by mu.
	notified map[string]bool
	started  bool
	closing  bool
	workers  sync.WaitGroup
	// stopTaking ends the workers' loop; abortSteps cancels the steps under way.
	stopTaking, abortSteps context.CancelFunc
}

// liveJob is the in-memory part of an unfinished job: a flag that keeps one
// step at a time, and what is not worth persisting. mu guards the fields
// only and is never held across I/O, so a callback or a cancel never waits
// for a step's vendor call or post.
type liveJob struct {
	mu       sync.Mutex
	stepping bool // a step of this job is under way
	again    bool // the job was made due during that step: step it once more
	platform string
	since    time.Time // when this engine took the job on (lease.go)
	stepFields
}

// stepFields are what a step works on, copied out of the liveJob for it.
type stepFields struct {
	polls    int // polls of the current task (Job.Polls as stored), or failed submissions
	fetches  int // failed downloads since this process took the job on
	lastPct  float64
	timedOut time.Time // when this process last gave up waiting on a submission
	// marked: this process stored the job's submission marker, so a marker
	// it finds is its own, not one a dead process left (see waitCallback).
	marked bool
	place  int // the place in a vendor's line at the last look (gate.go)
	looks  int // times it looked at its place in line
	// deliveryStarted: the bot-added latency was reported for this job.
	deliveryStarted bool
	tookOn          time.Time // when this engine took the job on, by Config.Now (see waitCallback)
}

// New returns an engine. Call Start to resume stored jobs and run.
func New(cfg Config, store Store, quota Quota, blobs Blobs, notifier Notifier, vendors ...Vendor) *Engine {
	cfg.fill()
	e := &Engine{
		cfg:      cfg,
		store:    store,
		quota:    quota,
		blobs:    blobs,
		notifier: notifier,
		vendors:  make(map[string]Vendor),
		breakers: make(map[string]*breaker),
		gates:    make(map[string]*gate),
		log:      cfg.Logger,
		sched:    newScheduler(cfg.Now),
		live:     make(map[string]*liveJob),
	}
	for _, v := range vendors {
		e.vendors[v.Name()] = v
		e.breakers[v.Name()] = &breaker{}
		if n := gateSlots(v, cfg.Concurrency[v.Name()]); n > 0 {
			e.gates[v.Name()] = newGate(n, cfg.Now)
		}
		if w, ok := v.(Waker); ok {
			w.SetWake(func(id string) { e.sched.at(id, e.cfg.Now()) })
		}
	}
	if w, ok := notifier.(Waker); ok {
		w.SetWake(func(id string) { e.sched.at(id, e.cfg.Now()) })
	}
	if l, ok := store.(Leaser); ok {
		l.Leasing()
	}
	return e
}

// Limits returns the request limits in force.
func (e *Engine) Limits() Limits { return e.cfg.Limits }

// Choices lists, in route order, what each vendor on kind's route lets a
// user choose; a vendor that says nothing has empty Choices.
func (e *Engine) Choices(k Kind) []VendorChoices {
	var out []VendorChoices
	for _, name := range e.cfg.Routes[k] {
		v, ok := e.vendors[name]
		if !ok {
			continue
		}
		vc := VendorChoices{Vendor: name}
		if c, ok := v.(Chooser); ok {
			vc.Choices = c.Choices(k)
		}
		out = append(out, vc)
	}
	return out
}

// Route names the vendors on kind's route that this engine has, in order.
func (e *Engine) Route(k Kind) []string {
	var out []string
	for _, name := range e.cfg.Routes[k] {
		if _, ok := e.vendors[name]; ok {
			out = append(out, name)
		}
	}
	return out
}

// free reports whether j's vendor charges nothing for its calls (the local
// renderer): cancelling such a job costs nobody anything, so it is refunded.
func (e *Engine) free(j *Job) bool {
	v, ok := e.vendors[j.Vendor]
	return ok && !v.Timing(&j.Request).Billed
}

// Start reloads every unfinished job from the store, schedules it, and
// starts the workers. Stop stops them.
func (e *Engine) Start(ctx context.Context) error {
	leaser, shared := e.store.(Leaser)
	if !shared {
		jobs, err := e.store.Unfinished(ctx)
		if err != nil {
			return fmt.Errorf("resume jobs: %w", err)
		}
		e.resume(jobs)
		if len(jobs) > 0 {
			e.log.Info("resumed unfinished jobs", slog.Int("jobs", len(jobs)))
		}
	}
	takeCtx, stopTaking := context.WithCancel(context.Background())
	stepCtx, abortSteps := context.WithCancel(context.Background())
	e.mu.Lock()
	e.started = true
	e.stopTaking, e.abortSteps = stopTaking, abortSteps
	e.mu.Unlock()
	e.workers.Add(e.cfg.Workers + 1)
	go func() {
		defer e.workers.Done()
		e.sched.run(takeCtx)
	}()
	if shared {
		// Jobs come from claims: the unfinished ones nobody holds at once,
		// then those of replicas that stop renewing.
		e.workers.Go(func() { e.lease(takeCtx, leaser) })
	}
	for range e.cfg.Workers {
		go func() {
			defer e.workers.Done()
			for {
				id, ok := e.sched.take(takeCtx)
				if !ok {
					return
				}
				e.step(stepCtx, id)
			}
		}()
	}
	return nil
}

// Stop refuses new commands, lets the steps under way finish until ctx
// ends, then aborts the rest. Jobs not finished stay in the store and carry
// on at the next Start.
func (e *Engine) Stop(ctx context.Context) {
	e.mu.Lock()
	e.closing = true
	stopTaking, abortSteps := e.stopTaking, e.abortSteps
	e.mu.Unlock()
	if stopTaking == nil {
		return
	}
	stopTaking()
	done := make(chan struct{})
	go func() {
		e.workers.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		abortSteps()
		<-done
	}
	abortSteps()
	if l, ok := e.store.(Leaser); ok {
		e.release(l)
	}
}

// Outstanding counts the unfinished jobs of a platform ("" for all).
func (e *Engine) Outstanding(platform string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	if platform == "" {
		return len(e.live)
	}
	n := 0
	for _, lj := range e.live {
		if lj.platform == platform {
			n++
		}
	}
	return n
}

func (e *Engine) track(j *Job) *liveJob {
	e.mu.Lock()
	defer e.mu.Unlock()
	lj, ok := e.live[j.ID]
	if !ok {
		lj = &liveJob{platform: j.Chat.Platform, stepFields: stepFields{lastPct: -1, polls: j.Polls, tookOn: e.cfg.Now()}, since: time.Now()}
		e.live[j.ID] = lj
	}
	return lj
}

func (e *Engine) liveJob(id string) *liveJob {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.live[id]
}

func (e *Engine) forget(id string) {
	e.sched.forget(id)
	e.mu.Lock()
	delete(e.live, id)
	e.mu.Unlock()
}

// Check validates a request as Submit would, without admitting it: bots use
// it to refuse bad input before fetching images or asking the quota.
func (e *Engine) Check(r *Request) error {
	r.Normalize()
	if err := r.Validate(e.cfg.Limits); err != nil {
		return err
	}
	_, err := e.pick(r, nil, false)
	return err
}

// Submit admits a command: it validates the request, asks the quota, and
// persists the job with its charge in one transaction. Only then does it
// return the job, so whatever the bot answers refers to a job that survives a crash.
func (e *Engine) Submit(ctx context.Context, owner UserRef, chat ChatRef, req Request) (*Job, error) {
	e.mu.Lock()
	closing := e.closing
	e.mu.Unlock()
	if closing {
		return nil, Errorf(EUNAVAILABLE, "The bot is restarting; please try again in a minute.", "机器人正在重启，请稍后再试。")
	}
	if err := e.Check(&req); err != nil {
		e.cfg.Observer.Refused(ErrorCode(err))
		return nil, err
	}
	if err := e.quota.Admit(ctx, owner, chat); err != nil {
		e.cfg.Observer.Refused(ErrorCode(err))
		return nil, err
	}
	if req.Seed == -1 {
		req.Seed = int64(randUint32())
	}
	now := e.cfg.Now()
	j := &Job{
		ID:            NewID(),
		Owner:         owner,
		Chat:          chat,
		Request:       req,
		State:         StateQueued,
		CallbackToken: newToken(),
		CreatedAt:     now,
		UpdatedAt:     now,
		Deadline:      now.Add(e.cfg.JobTimeout),
	}
	if err := e.store.CreateJob(ctx, j, func(c Counters) error { return e.quota.Reserve(c, j, now) }); err != nil {
		e.cfg.Observer.Refused(ErrorCode(err))
		if ErrorCode(err) == EINTERNAL {
			// Not a refusal (quota, ban: those are *Error) but the store failing:
			// nothing was accepted, and a platform that resends may try again.
			err = fmt.Errorf("%w: %w", ErrNotRecorded, err)
		}
		return nil, err
	}
	e.cfg.Observer.Admitted(j)
	e.log.Info("job accepted", slog.String("job_id", j.ID), slog.String("kind", string(req.Kind)),
		slog.String("platform", chat.Platform), slog.String("chat_id", chat.ChatID), slog.String("user_id", owner.ID))
	e.track(j)
	e.mu.Lock()
	started := e.started
	e.mu.Unlock()
	if started {
		e.sched.at(j.ID, now)
	}
	return j.Clone(), nil
}

// Job returns a stored job.
func (e *Engine) Job(ctx context.Context, id string) (*Job, error) { return e.store.Job(ctx, id) }

// Jobs returns the owner's newest jobs.
func (e *Engine) Jobs(ctx context.Context, owner UserRef, limit int) ([]*Job, error) {
	return e.store.JobsByOwner(ctx, owner, limit)
}

// Annotate records an adapter's note on a job (a status message id, say).
func (e *Engine) Annotate(ctx context.Context, id, key, value string) error {
	_, err := e.update(ctx, id, func(j *Job, _ Counters) error {
		if j.Meta == nil {
			j.Meta = make(map[string]string)
		}
		j.Meta[key] = value
		return nil
	})
	return err
}

// Cancel stops a job for its owner, or for anyone when admin is true. A job
// no vendor has accepted yet is refunded, and so is one at a vendor that
// charges nothing; one a billing vendor holds is not, since the vendor bills it.
func (e *Engine) Cancel(ctx context.Context, id string, by UserRef, admin bool) (*Job, error) {
	// No wait for a step under way: its result, applied later, sees the job
	// cancelled and is dropped (see save).
	var atVendor bool
	j, err := e.update(ctx, id, func(j *Job, c Counters) error {
		atVendor = j.State.AtVendor()
		if !admin && j.Owner.Key() != by.Key() {
			return Errorf(EFORBIDDEN, "Job %s is not yours to cancel.", "任务 %s 不是你的，不能取消。", j.ID)
		}
		switch {
		case j.State == StateCancelled:
			return Errorf(ECONFLICT, "Job %s is already cancelled.", "任务 %s 已经取消了。", j.ID)
		case j.State.Terminal() || j.State == StateSucceeded:
			return Errorf(ECONFLICT, "Job %s has already finished.", "任务 %s 已经结束了。", j.ID)
		}
		refund := j.State == StateQueued || e.free(j)
		if err := j.Move(StateCancelled, e.cfg.Now()); err != nil {
			return err
		}
		j.Err = Info(Errorf(ECANCELLED, "Cancelled.", "已取消。"))
		e.quota.Settle(c, j, refund)
		return nil
	})
	if err != nil {
		return nil, err
	}
	e.log.Info("job cancelled", slog.String("job_id", id))
	if c, ok := e.vendors[j.Vendor].(Canceller); ok && atVendor {
		// Stop the GPU working for nobody; best effort, the job is cancelled anyway.
		go func(j *Job) {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.cfg.VendorTimeout)
			defer cancel()
			if err := c.CancelTask(cctx, j); err != nil {
				e.log.Warn("stop cancelled task", slog.String("job_id", j.ID), slog.String("vendor", j.Vendor), slog.Any("err", err))
			}
		}(j.Clone())
	}
	e.wake(ctx, id, e.cfg.Now())
	return j, nil
}

// HandleCallback takes a vendor's callback for job id. A wrong token or
// unknown job is ENOTFOUND, and changes nothing; a callback for a job that
// has moved on is acknowledged and ignored, so repeated deliveries are harmless.
// It returns the reply the vendor expects.
func (e *Engine) HandleCallback(ctx context.Context, vendor, id, token string, body []byte) (contentType string, reply []byte, err error) {
	v, ok := e.vendors[vendor].(CallbackVendor)
	if !ok {
		return "", nil, Errorf(ENOTFOUND, "No such callback.", "没有这个回调。")
	}
	j, err := e.store.Job(ctx, id)
	if err != nil || subtle.ConstantTimeCompare([]byte(token), []byte(j.CallbackToken)) != 1 {
		return "", nil, Errorf(ENOTFOUND, "No such callback.", "没有这个回调。")
	}
	contentType, reply = v.CallbackReply()
	lj := e.liveJob(id)
	remote := false
	if lj == nil {
		if _, shared := e.store.(Leaser); !shared || j.Finished() {
			return contentType, reply, nil
		}
		// Another replica holds the job: apply the callback here, in the
		// store, and wake the holder to act on it.
		remote = true
		lj = &liveJob{platform: j.Chat.Platform, stepFields: stepFields{lastPct: -1, polls: j.Polls}}
		e.log.Debug("callback for a job another replica holds: applied here", slog.String("job_id", id), slog.String("vendor", vendor))
	}
	// A step that wrote first makes this write stale: read the job again and
	// apply the callback to what it is now, a few times at most.
	for range 3 {
		after, verdict, stale := e.applyCallback(ctx, lj, v, j, body, remote)
		if stale {
			if j, err = e.store.Job(ctx, id); err != nil {
				return "", nil, err
			}
			continue
		}
		if remote && (verdict || after == 0) {
			// The holder acts on a verdict now, whatever this replica made of it
			// (a write that failed here leaves it a poll), not on its timer.
			if err := e.wakeHolder(ctx, id); err != nil {
				return "", nil, err
			}
		} else if after >= 0 {
			e.wake(ctx, id, e.cfg.Now().Add(after))
		}
		return contentType, reply, nil
	}
	// Still racing a step: let a poll find out.
	if remote {
		if err := e.wakeHolder(ctx, id); err != nil {
			return "", nil, err
		}
	} else {
		e.wake(ctx, id, e.cfg.Now())
	}
	return contentType, reply, nil
}

// wakeHolder asks the replica holding job id to step it now. An error goes
// back to the vendor, whose retried callback wakes the holder again (see
// applyCallback), rather than leaving the job to the holder's timer.
func (e *Engine) wakeHolder(ctx context.Context, id string) error {
	// The vendor hanging up after its call must not stop the wake-up.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.cfg.VendorTimeout)
	defer cancel()
	if err := e.store.(Leaser).Wake(ctx, id); err != nil {
		e.log.Warn("wake job's replica", slog.String("job_id", id), slog.Any("err", err))
		return fmt.Errorf("wake the replica holding job %s: %w", id, err)
	}
	return nil
}

// applyCallback applies a callback's body to j as stored when read. stale
// reports that the job moved on before the write and nothing was applied;
// verdict, that the callback says the task ended (or, on a replica not
// holding the job, repeats a verdict already stored), so its holder must
// step the job now.
func (e *Engine) applyCallback(ctx context.Context, lj *liveJob, v CallbackVendor, j *Job, body []byte, remote bool) (after time.Duration, verdict, stale bool) {
	if m := j.Submitting; m != nil && j.State == StateQueued && m.Vendor == v.Name() && len(j.Pending) == 0 {
		held := e.liveJob(j.ID)
		stepping, marked := lj.under()
		switch {
		case held == lj && !stepping:
			// A submission whose answer was lost (a dead process's, or this
			// process's own call that failed or timed out, its step over):
			// the vendor's callback for its task id proves the task, for
			// free, where sending it again would cost a billed refusal
			// ("任务ID重复") or a second task.
			rec, stale := e.callbackTask(ctx, lj, v, j, body)
			if rec == nil {
				return never, false, stale
			}
			j = rec
		case held == lj:
			// A step of the job is under way: this process's own submission
			// in flight records its task itself (billing it here too would
			// count it twice), and a step on a dead process's marker (its
			// search of the vendor's tasks, say) may miss the task, which
			// the vendor, answered, does not call back about again. So the
			// task is noted on the marker, and the step, or the next one,
			// records it rather than submitting again (mark, submit). A
			// verdict on a dead process's marker wakes the job to act on it.
			wake := noteOnVerdict
			if marked {
				wake = noteQuiet
			}
			return never, false, e.noteCallbackTask(ctx, v, j, body, wake)
		case held == nil:
			// Another replica holds the job: it may be dead (its lease not
			// run out yet) or still waiting for the answer. The task is noted
			// on the marker, for whichever replica steps the job next; the
			// vendor does not call back again once answered, and a search of
			// its task list long after may no longer reach the task.
			return never, false, e.noteCallbackTask(ctx, v, j, body, noteAlways)
		}
	}
	if remote && j.Vendor == v.Name() && j.State.AtVendor() && len(j.Pending) > 0 {
		// A repeated delivery (the first one's wake-up may have failed):
		// the holder fetching already hears it once more, harmlessly.
		return never, true, false
	}
	if j.Vendor != v.Name() || !j.State.AtVendor() || len(j.Pending) > 0 {
		return never, false, false
	}
	out, err := v.ParseCallback(j, body)
	if err != nil {
		// Unreadable: acknowledge anyway and ask the vendor directly instead.
		e.log.Warn("unreadable callback; polling instead", slog.String("job_id", j.ID), slog.String("vendor", v.Name()), slog.Any("err", err))
		return 0, false, false
	}
	if out.TaskID != "" && out.TaskID != j.TaskID {
		e.log.Warn("callback for another task ignored", slog.String("job_id", j.ID), slog.String("task_id", out.TaskID))
		return never, false, false
	}
	// Applied beside any step under way, never behind its I/O (see save).
	st := &stepState{seen: j}
	work := lj.snapshot()
	after = e.apply(withStep(ctx, st), work, j, v, out, 0)
	lj.mu.Lock()
	lj.lastPct = work.lastPct
	lj.mu.Unlock()
	return after, out.State == TaskDone || out.State == TaskFailed, st.stale
}

// under reports whether a step of the job is under way, and whether this
// process stored the job's submission marker (set by mark as it stores
// one, before the step's own copy of the fields comes back).
func (lj *liveJob) under() (stepping, marked bool) {
	lj.mu.Lock()
	defer lj.mu.Unlock()
	return lj.stepping, lj.marked
}

// callbackTask records the task a callback names for a queued job whose
// submission marker holds that task id, as submitted (billed one call, the
// submission whose answer was lost). nil: the callback does not name the
// marker's task, or the write failed or was stale.
func (e *Engine) callbackTask(ctx context.Context, lj *liveJob, v CallbackVendor, j *Job, body []byte) (*Job, bool) {
	m := j.Submitting
	taskID, ok, _ := markerTask(v, j, body)
	if !ok {
		return nil, false
	}
	e.log.Info("submission uncertain: the vendor's callback names the task; recorded without submitting again",
		slog.String("job_id", j.ID), slog.String("vendor", m.Vendor), slog.String("task_id", taskID))
	e.countUncertain(m.Vendor, "callback")
	st := &stepState{seen: j}
	work := lj.snapshot()
	e.submitted(withStep(ctx, st), work, j, v, e.task(j, v, m.TaskID), taskID, calls(v.Timing(&j.Request).Billed))
	if st.stale || st.seen.State != StateSubmitted {
		return nil, st.stale
	}
	return st.seen.Clone(), false
}

// markerTask is the task a callback proves for j's submission marker, if
// it names one that can be the marker's, and whether the callback says the
// task ended.
func markerTask(v CallbackVendor, j *Job, body []byte) (string, bool, bool) {
	m := j.Submitting
	probe := j.Clone()
	probe.Vendor, probe.TaskID = m.Vendor, m.TaskID
	out, err := v.ParseCallback(probe, body)
	if err != nil || out.TaskID == "" {
		return "", false, false // only a callback that names a task proves it
	}
	if out.TaskID != m.TaskID {
		// A vendor that names its tasks itself (ShowAPI): the job's callback
		// URL, secret token and all, went to this vendor only with this
		// job's first submission, so a task calling back is that one.
		if s, ok := v.(IdempotentSubmitter); m.Attempt != 1 || len(j.Tried) > 0 || ok && s.SubmitIdempotent() {
			return "", false, false
		}
	}
	return out.TaskID, true, out.State == TaskDone || out.State == TaskFailed
}

// noteCallbackTask notes on j's marker the task a callback names
// (Submitting.CalledBack), changing nothing else, for a job whose marker
// another replica, or a step under way here, holds: a submission still
// waiting for its answer records the task itself and clears the marker; a
// step that would send the marker's submission again, or the next step,
// records the noted task without asking or submitting (mark, submit).
// stale: the stored marker is no longer the one read (recorded, or
// replaced), so the callback must be applied afresh.
func (e *Engine) noteCallbackTask(ctx context.Context, v CallbackVendor, j *Job, body []byte, wake noteWake) (stale bool) {
	taskID, ok, ended := markerTask(v, j, body)
	if !ok {
		return false
	}
	want := *j.Submitting
	_, err := e.store.UpdateJob(ctx, j.ID, func(j *Job, _ Counters) error {
		stale = false
		if m := j.Submitting; m != nil && j.State == StateQueued && m.Vendor == want.Vendor && m.TaskID == want.TaskID && m.At.Equal(want.At) {
			m.CalledBack = taskID
			return nil
		}
		stale = true
		return errStale
	})
	if stale {
		return true
	}
	if err != nil {
		e.log.Warn("note a callback's task on the marker", slog.String("job_id", j.ID), slog.Any("err", err))
		return false
	}
	e.log.Info("submission uncertain: the vendor's callback names the task; noted on the marker",
		slog.String("job_id", j.ID), slog.String("vendor", want.Vendor), slog.String("task_id", taskID))
	if wake == noteAlways || wake == noteOnVerdict && ended {
		e.wake(ctx, j.ID, e.cfg.Now())
	}
	return false
}

// noteWake is whether a task noted on a marker wakes its job.
type noteWake int

const (
	// noteQuiet: this process's own submission is in flight, and records it.
	noteQuiet noteWake = iota
	// noteOnVerdict: a step here on a dead process's marker records it; the
	// job is stepped again at once only to fetch a task that ended (the
	// callback's outcome is not kept), not to poll one still running.
	noteOnVerdict
	// noteAlways: another replica holds the job, and is woken to record it.
	noteAlways
)

// OpenInput serves a job's input image to a vendor that fetches it by URL.
func (e *Engine) OpenInput(ctx context.Context, id, token string, i int) (io.ReadCloser, string, error) {
	j, err := e.store.Job(ctx, id)
	if err != nil || subtle.ConstantTimeCompare([]byte(token), []byte(j.CallbackToken)) != 1 || i < 0 || i >= len(j.Request.AllInputs()) || j.Finished() {
		return nil, "", Errorf(ENOTFOUND, "No such image.", "没有这张图片。")
	}
	in := j.Request.AllInputs()[i]
	rc, err := e.blobs.Open(ctx, in.Blob)
	return rc, in.Mime, err
}

// CallbackURL is where vendor should report on job j.
func (e *Engine) CallbackURL(vendor string, j *Job) string {
	return fmt.Sprintf("%s/callback/%s/%s/%s", e.cfg.PublicURL, vendor, j.ID, j.CallbackToken)
}

func (e *Engine) inputURLs(j *Job) []string {
	if e.cfg.PublicURL == "" {
		return nil
	}
	urls := make([]string, len(j.Request.AllInputs()))
	for i := range urls {
		urls[i] = fmt.Sprintf("%s/input/%s/%s/%d", e.cfg.PublicURL, j.ID, j.CallbackToken, i)
	}
	return urls
}

// NewID returns a random job id: 16 characters of lowercase base32, 80
// bits. Ids appear in buttons, callback and input URLs, so they must not
// be guessable; 80 bits also keep a button's callback_data short.
func NewID() string {
	var b [10]byte
	_, _ = rand.Read(b[:])
	return strings.ToLower(base32.StdEncoding.EncodeToString(b[:]))
}

func newToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func randUint32() uint32 {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return binary.BigEndian.Uint32(b[:])
}

// breaker is a vendor's circuit: after enough failures in a row the vendor is
// skipped for a cooldown, then tried again.
type breaker struct {
	mu        sync.Mutex
	failures  int
	openUntil time.Time
}

func (b *breaker) allow(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return !now.Before(b.openUntil)
}

func (b *breaker) record(ok bool, now time.Time, threshold int, cooldown time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if ok {
		b.failures = 0
		return
	}
	b.failures++
	if b.failures >= threshold {
		b.openUntil = now.Add(cooldown)
		b.failures = 0
	}
}

// pick returns the first vendor on the kind's route that can run r, has not
// failed this job, and whose circuit is closed. With useBreakers false it
// only asks whether any vendor could, for admission.
func (e *Engine) pick(r *Request, tried []string, useBreakers bool) (Vendor, error) {
	var invalid error
	unavailable := false
	for _, name := range e.cfg.Routes[r.Kind] {
		v, ok := e.vendors[name]
		if !ok || slices.Contains(tried, name) {
			continue
		}
		err := supports(v, r)
		if err == nil {
			err = v.Check(r)
		}
		if err != nil {
			if invalid == nil {
				invalid = err
			}
			continue
		}
		if useBreakers && !e.breakers[name].allow(e.cfg.Now()) {
			unavailable = true
			continue
		}
		return v, nil
	}
	switch {
	case unavailable:
		return nil, Errorf(EUNAVAILABLE, "Every image service is busy right now.", "所有绘图服务暂时都不可用。")
	case invalid != nil:
		return nil, invalid
	case len(tried) > 0:
		return nil, Errorf(EVENDOR, "The image service could not make this picture.", "绘图服务未能生成这张图片。")
	}
	return nil, Errorf(EINVALID, "/%s is not available on this bot.", "本机器人未开放 /%s。", r.Kind)
}

// supports refuses a request that uses an option v does not offer.
func supports(v Vendor, r *Request) error {
	fv, _ := v.(FeatureVendor)
	for _, f := range r.Features() {
		if fv == nil || !fv.Supports(r.Kind, f) {
			return Errorf(EINVALID, "--%[1]s is not offered by the image services this bot uses for /%[2]s.",
				"本机器人用于 /%[2]s 的绘图服务不支持 --%[1]s。", f, r.Kind)
		}
	}
	return nil
}

// isCode reports whether err carries one of codes.
func isCode(err error, codes ...string) bool {
	var e *Error
	return errors.As(err, &e) && slices.Contains(codes, e.Code)
}

// resumeTimes says when Start runs each unfinished job. A job waiting at its
// vendor keeps the schedule its last step stored, since a poll is billed and
// a callback may still come; those overdue or without one (older records)
// are spread evenly over min(10 ms a job, spread) rather than polled in one
// burst. A job waiting for a callback polls no sooner than grace(j) after
// the start: the vendor's calls back that failed while the bot was down
// are tried again, on the vendor's schedule, not the job's, so its
// safety-net poll starts afresh (one due just after the start had beaten
// the vendor's retry by a few milliseconds and paid for what the retry
// told for free). Everything else (queued, to download, to post) goes at
// once.
func resumeTimes(jobs []*Job, now time.Time, spread time.Duration, grace func(*Job) time.Duration) map[string]time.Time {
	at := make(map[string]time.Time, len(jobs))
	type lateJob struct {
		id   string
		from time.Time // no poll before
	}
	var late []lateJob
	for _, j := range jobs {
		if !j.State.AtVendor() || len(j.Pending) > 0 {
			at[j.ID] = now
			continue
		}
		from := now
		if j.Callback && grace != nil {
			from = now.Add(grace(j))
		}
		if j.NextAt.After(now) && !j.NextAt.Before(from) {
			at[j.ID] = j.NextAt
		} else {
			late = append(late, lateJob{j.ID, from})
		}
	}
	window := min(time.Duration(len(late))*10*time.Millisecond, spread)
	for i, l := range late {
		at[l.id] = l.from.Add(window * time.Duration(i) / time.Duration(len(late)))
	}
	return at
}

// callbackGrace is how long after its start a restarted bot (or one that
// took over a dead replica's jobs) leaves a job that waits for a callback
// before its safety-net poll: the wait it had after its submission,
// within its deadline.
func (e *Engine) callbackGrace(j *Job) time.Duration {
	v, ok := e.vendors[j.Vendor]
	if !ok {
		return 0
	}
	t := v.Timing(&j.Request)
	return e.untilDeadline(j, 2*t.First+t.Max)
}
