package engine

import (
	"context"
	"log/slog"
	"slices"
	"time"
)

// VendorHealth is a vendor's circuit breaker as the operator sees it.
type VendorHealth struct {
	Name string
	// Open is set while the vendor is skipped, until OpenUntil.
	Open      bool
	OpenUntil time.Time
	// Failures counts failures in a row since the last success or opening.
	Failures int
	Billed   bool // the vendor's calls cost money
}

// Health reports every vendor's breaker, by name.
func (e *Engine) Health() []VendorHealth {
	now := e.cfg.Now()
	out := make([]VendorHealth, 0, len(e.vendors))
	for name, v := range e.vendors {
		b := e.breakers[name]
		b.mu.Lock()
		h := VendorHealth{Name: name, Open: now.Before(b.openUntil), OpenUntil: b.openUntil, Failures: b.failures,
			Billed: v.Timing(&Request{Kind: KindDraw}).Billed}
		b.mu.Unlock()
		out = append(out, h)
	}
	slices.SortFunc(out, func(a, b VendorHealth) int {
		if a.Name < b.Name {
			return -1
		}
		return 1
	})
	return out
}

// RetryDelivery has a job's result posted again now, for an operator who
// fixed what kept it from going through: a job waiting between tries is
// tried at once with its count of failed tries reset; one that failed
// because its images could not be posted (EUNDELIVERED, images kept) goes
// back to succeeded and is posted. That job's charge was refunded when it
// failed and stays so: the picture is the user's for free.
func (e *Engine) RetryDelivery(ctx context.Context, id string) (*Job, error) {
	revived := false
	// Through the store, not e.update: a job taken back from failed is
	// counted by the observer as taken on (Admitted), not as a move out of
	// a final state, which its gauges do not hold.
	j, err := e.store.UpdateJob(ctx, id, func(j *Job, _ Counters) error {
		revived = false
		switch {
		case j.State == StateSucceeded:
		case j.State == StateFailed && j.Err != nil && j.Err.Code == EUNDELIVERED && len(j.Results) > 0:
			// Not a move the state machine makes by itself (Move refuses it).
			j.State, j.Err, j.Notified, j.FinishedAt = StateSucceeded, nil, false, time.Time{}
			j.UpdatedAt = e.cfg.Now()
			revived = true
		default:
			return Errorf(ECONFLICT, "Job %s has no result waiting to be posted (it is %s).", "任务 %s 没有等待发送的结果（状态：%s）。", j.ID, StateText(j.State, EN))
		}
		j.DeliveryAttempts = 0
		return nil
	})
	if err != nil {
		return nil, err
	}
	if revived {
		e.cfg.Observer.Admitted(j)
		e.log.Info("job taken back to be posted again", slog.String("job_id", id))
	}
	e.track(j)
	e.sched.at(id, e.cfg.Now())
	return j.Clone(), nil
}

// Progress is the last progress a vendor reported for an unfinished job
// (0..1, negative when unknown); ok is false for a job not in hand.
func (e *Engine) Progress(id string) (fraction float64, ok bool) {
	lj := e.liveJob(id)
	if lj == nil {
		return 0, false
	}
	lj.mu.Lock()
	defer lj.mu.Unlock()
	return lj.lastPct, true
}
