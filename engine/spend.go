package engine

import (
	"context"
	"fmt"
	"time"
)

// Spend makes c's task at v with t and follows it to its end, polling on
// v's own schedule for at most wait: OK with what it made and what the
// vendor billed (where it says), else the vendor's answer and c.Key. The
// wait bounds only the polls; ctx bounds everything.
func Spend(ctx context.Context, v Vendor, c SpendCase, t Task, wait time.Duration) ProbeResult {
	r := ProbeResult{Vendor: v.Name(), Endpoint: c.Endpoint, Key: c.Key}
	fail := func(format string, args ...any) ProbeResult {
		r.Answer = fmt.Sprintf(format, args...)
		return r
	}
	if err := v.Check(&c.Request); err != nil {
		return fail("refused before sending: %v", err)
	}
	mctx, billed := Metered(ctx)
	j := &Job{ID: "picbot-check", Request: c.Request}
	start := time.Now()
	id, err := v.Submit(mctx, j, t)
	if err != nil {
		return fail("%v", err)
	}
	j.TaskID = id
	tm := v.Timing(&c.Request)
	delay, every := tm.First, max(tm.Every, time.Second)
	deadline := start.Add(wait)
	for {
		if d := time.Until(deadline); delay > d {
			delay = max(d, 0)
		}
		select {
		case <-ctx.Done():
			return fail("task %s made (billed), then %v before it ended", id, ctx.Err())
		case <-time.After(delay):
		}
		out, err := v.Query(mctx, j)
		switch {
		case err != nil && ErrorCode(err) == ENOTFOUND:
			return fail("task %s made (billed), then the query does not find it: %v", id, err)
		case err != nil:
			if time.Now().After(deadline) {
				return fail("task %s made (billed); its query: %v", id, err)
			}
		case out.State == TaskDone:
			r.OK = true
			r.Answer = fmt.Sprintf("task %s done in %s, %d image(s)", id, time.Since(start).Round(time.Second), len(out.Images))
			if n, ok := billed(); ok {
				r.Answer += fmt.Sprintf(", billed %d call(s) by the vendor's count", n)
			} else {
				r.Answer += " (billed; the vendor does not say how much)"
			}
			return r
		case out.State == TaskFailed:
			return fail("task %s made (billed), then failed: %v", id, out.Err)
		}
		if !time.Now().Before(deadline) {
			return fail("task %s made (billed), still not done after %s (raise -wait, or check the vendor's console)", id, wait)
		}
		delay = every
		if tm.Max > 0 {
			every = min(every*3/2, tm.Max)
		}
	}
}
