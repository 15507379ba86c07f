package engine

import (
	"context"
	"log/slog"
	"time"
)

// Leaser is a store that several replicas of the bot share. Each
// unfinished job is stepped by one replica at a time: the one holding its
// lease. A job is leased to the replica that creates it; the engine renews
// its leases every LeaseEvery and claims the jobs whose lease ran out (a
// replica that died), so they carry on elsewhere. What lands on a replica
// that does not hold the job (a vendor callback, a cancel) is applied there
// and the holder is woken. Without a Leaser the engine owns every
// unfinished job, as with the embedded store.
type Leaser interface {
	// Leasing makes the jobs this replica creates from now on leased to it.
	Leasing()
	// Claim leases to this replica up to limit unfinished jobs whose lease
	// is free or has expired, and returns them.
	Claim(ctx context.Context, limit int) ([]*Job, error)
	// Renew extends this replica's leases and returns the ids of the
	// unfinished jobs it still holds, and of those among them that another
	// replica asked to wake since the last renewal: the backstop for a
	// wake-up whose notice was lost (this replica's listener was
	// reconnecting, or not listening yet).
	Renew(ctx context.Context) (held, woken []string, err error)
	// Release gives up this replica's leases on ids, for another to claim now.
	Release(ctx context.Context, ids []string) error
	// Wake asks whichever replica holds job id to step it now: at once
	// through Woken, and at its next Renew should that notice be lost.
	Wake(ctx context.Context, id string) error
	// Woken calls fn with each job id a replica asked to wake, until ctx
	// ends; it reconnects by itself after a failure.
	Woken(ctx context.Context, fn func(id string))
	// LeaseEvery is how often the engine renews and claims.
	LeaseEvery() time.Duration
}

// claimBatch bounds the jobs one claim takes, so that one replica that
// comes up first does not take every job of a dead one at once.
const claimBatch = 200

// lease runs the lease loop of a shared store until ctx ends: woken jobs
// are stepped, leases renewed, and jobs without a live holder claimed.
func (e *Engine) lease(ctx context.Context, l Leaser) {
	go l.Woken(ctx, func(id string) {
		e.mu.Lock()
		lj := e.live[id]
		if lj != nil {
			if e.notified == nil {
				e.notified = map[string]bool{}
			}
			e.notified[id] = true
		}
		e.mu.Unlock()
		if lj != nil {
			e.sched.at(id, e.cfg.Now())
		}
	})
	t := time.NewTicker(l.LeaseEvery())
	defer t.Stop()
	for {
		e.claim(ctx, l)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		e.renew(ctx, l)
	}
}

// renew keeps this replica's leases, and drops the jobs another replica
// took over (this one stalled past the lease's end).
func (e *Engine) renew(ctx context.Context, l Leaser) {
	start := time.Now()
	e.mu.Lock()
	notified := e.notified
	e.notified = nil
	e.mu.Unlock()
	held, woken, err := l.Renew(ctx)
	if err != nil {
		if ctx.Err() == nil {
			e.log.Warn("renew job leases", slog.Any("err", err))
		}
		return
	}
	keep := make(map[string]bool, len(held))
	for _, id := range held {
		keep[id] = true
	}
	var lost, orphans []string
	e.mu.Lock()
	for id, lj := range e.live {
		// A job tracked after the renewal started may not be in its answer.
		if !keep[id] && lj.since.Before(start) {
			lost = append(lost, id)
		}
	}
	// A lease held and not stepped here (the job forgotten by a step that
	// gave up, or dropped in a takeover race) would keep every replica off
	// the job for as long as this one lives. Given back once seen at two
	// renewals in a row: a job just created is tracked long before that.
	unstepped := map[string]bool{}
	for _, id := range held {
		if e.live[id] == nil {
			if e.unstepped[id] {
				orphans = append(orphans, id)
			} else {
				unstepped[id] = true
			}
		}
	}
	e.unstepped = unstepped
	e.mu.Unlock()
	for _, id := range lost {
		e.log.Warn("job lease lost to another replica", slog.String("job_id", id))
		e.forget(id)
	}
	// Skipped when the notice came (before or during the renewal): a
	// second step of a job waiting at its vendor would be a billed poll.
	for _, id := range woken {
		e.mu.Lock()
		wake := e.live[id] != nil && !notified[id] && !e.notified[id]
		e.mu.Unlock()
		if wake {
			e.sched.at(id, e.cfg.Now())
		}
	}
	if len(orphans) > 0 {
		e.log.Warn("job leases held and not stepped here: given back", slog.Int("jobs", len(orphans)), slog.Any("job_ids", orphans))
		if err := l.Release(ctx, orphans); err != nil && ctx.Err() == nil {
			e.log.Warn("release job leases", slog.Any("err", err))
		}
	}
}

func (e *Engine) claim(ctx context.Context, l Leaser) {
	for {
		jobs, err := l.Claim(ctx, claimBatch)
		if err != nil {
			if ctx.Err() == nil {
				e.log.Warn("claim jobs", slog.Any("err", err))
			}
			return
		}
		if len(jobs) == 0 {
			return
		}
		e.resume(jobs)
		e.log.Info("claimed unfinished jobs", slog.Int("jobs", len(jobs)))
		if len(jobs) < claimBatch {
			return
		}
	}
}

// resume tracks and schedules jobs this engine takes on from the store.
// Tracked first: the workers may be running (a claim), and a worker
// that takes a job not tracked yet drops it for good.
func (e *Engine) resume(jobs []*Job) {
	for _, j := range jobs {
		e.track(j)
		e.syncGates(j)
		e.cfg.Observer.Admitted(j)
	}
	now := e.cfg.Now()
	for id, at := range resumeTimes(jobs, now, e.cfg.ResumeSpread, e.callbackGrace) {
		e.sched.at(id, at)
	}
}

// wake makes job id due now: here if this engine holds it, else at the
// replica that does.
func (e *Engine) wake(ctx context.Context, id string, at time.Time) {
	if e.liveJob(id) != nil {
		e.sched.at(id, at)
		return
	}
	if l, ok := e.store.(Leaser); ok && !at.After(e.cfg.Now()) {
		if err := l.Wake(ctx, id); err != nil {
			e.log.Warn("wake job's replica", slog.String("job_id", id), slog.Any("err", err))
		}
	}
}

// release gives the leases of the jobs this engine holds back to the
// store, so another replica carries them on at once after a clean stop.
func (e *Engine) release(l Leaser) {
	e.mu.Lock()
	ids := make([]string, 0, len(e.live))
	for id := range e.live {
		ids = append(ids, id)
	}
	e.mu.Unlock()
	if len(ids) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := l.Release(ctx, ids); err != nil {
		e.log.Warn("release job leases", slog.Any("err", err))
	}
}
