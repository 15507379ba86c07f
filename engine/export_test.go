package engine

import "time"

// Hooks for the tests of package engine_test.

// WakeScheduler has the scheduler look at its clock again, as after a
// test moved Config.Now forward.
func (e *Engine) WakeScheduler() { signal(e.sched.kick) }

// DueAt is when job id is next due: its timer, or now if it is due already;
// false if nothing is scheduled (or a worker holds it).
func (e *Engine) DueAt(id string) (time.Time, bool) {
	s := e.sched
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.gen[id]
	if !ok {
		return time.Time{}, false
	}
	if s.inReady[id] {
		return s.now(), true
	}
	for _, t := range s.timers {
		if t.id == id && t.gen == g {
			return t.at, true
		}
	}
	return time.Time{}, false
}

// ResumeTimes is resumeTimes with no grace for callback jobs.
func ResumeTimes(jobs []*Job, now time.Time, spread time.Duration) map[string]time.Time {
	return resumeTimes(jobs, now, spread, nil)
}

// ResumeTimesGrace is resumeTimes with the same grace for every callback job.
func ResumeTimesGrace(jobs []*Job, now time.Time, spread, grace time.Duration) map[string]time.Time {
	return resumeTimes(jobs, now, spread, func(*Job) time.Duration { return grace })
}
