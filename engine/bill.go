package engine

import (
	"context"
	"maps"
	"sync"
)

// Bill records n billed calls made to vendor: the job's total and the
// vendor's share, so that a job that failed over is counted, in /admin stats
// and the metrics, at each vendor that billed it, not only at the last.
func (j *Job) Bill(vendor string, n int) {
	if n <= 0 {
		return
	}
	if vendor == "" {
		vendor = "none"
	}
	j.BilledCalls += n
	if j.BilledBy == nil {
		j.BilledBy = map[string]int{}
	}
	j.BilledBy[vendor] += n
}

// callee is the vendor that j's calls go to now: the one holding its task,
// else the one a submission under way was sent to.
func callee(j *Job) string {
	if j.Vendor != "" {
		return j.Vendor
	}
	if j.Submitting != nil {
		return j.Submitting.Vendor
	}
	return ""
}

// billedSince returns, per vendor, the calls billed in after and not in before.
func billedSince(before, after *Job) map[string]int {
	var out map[string]int
	for v, n := range after.BilledBy {
		if d := n - before.BilledBy[v]; d > 0 {
			if out == nil {
				out = map[string]int{}
			}
			out[v] = d
		}
	}
	return out
}

// meter counts what a vendor says it billed during one engine call.
type meter struct {
	mu       sync.Mutex
	n        int
	reported bool
}

type meterKey struct{}

// withMeter returns a context in which the vendor's ReportBilled calls are counted.
func withMeter(ctx context.Context) (context.Context, *meter) {
	m := &meter{}
	return context.WithValue(ctx, meterKey{}, m), m
}

// ReportBilled is for a vendor adapter that learns from each answer what
// it was billed (ShowAPI's showapi_fee_num): n is one answer's bill, 0
// included. When an adapter reports during a call the engine made
// (Submit, Query, FindTask), the engine records exactly the reported sum
// for that call instead of its own rule: every query billed when
// Timing.Billed, answered or not; a submission billed when it made a task
// or was refused, not when it failed otherwise. A call for which nothing
// is reported follows that rule.
func ReportBilled(ctx context.Context, n int) {
	m, ok := ctx.Value(meterKey{}).(*meter)
	if !ok {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.n += max(n, 0)
	m.reported = true
}

// billed is what the vendor reported, or guess if it reported nothing.
func (m *meter) billed(guess int) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.reported {
		return m.n
	}
	return guess
}

// cloneBilled copies a BilledBy map (nil stays nil).
func cloneBilled(b map[string]int) map[string]int { return maps.Clone(b) }

// Metered returns a context in which ReportBilled calls are added up, and
// a function that reads the sum and whether anything was reported. The
// engine meters each vendor call this way; an adapter's tests use it to
// compare what the adapter reports with what a fake vendor billed.
func Metered(ctx context.Context) (context.Context, func() (n int, reported bool)) {
	ctx, m := withMeter(ctx)
	return ctx, func() (int, bool) {
		m.mu.Lock()
		defer m.mu.Unlock()
		return m.n, m.reported
	}
}
