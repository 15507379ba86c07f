package engine

import (
	"context"
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

// RetryDelivery has a job waiting between tries to post its result tried
// again now, with its count of failed tries reset: for an operator who
// fixed what kept the post from going through.
func (e *Engine) RetryDelivery(ctx context.Context, id string) (*Job, error) {
	j, err := e.update(ctx, id, func(j *Job, _ Counters) error {
		if j.State != StateSucceeded {
			return Errorf(ECONFLICT, "Job %s is not waiting to be posted (it is %s).", "任务 %s 不在等待发送（状态：%s）。", j.ID, StateText(j.State, EN))
		}
		j.DeliveryAttempts = 0
		return nil
	})
	if err != nil {
		return nil, err
	}
	e.sched.at(id, e.cfg.Now())
	return j, nil
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
