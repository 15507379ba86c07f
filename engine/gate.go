package engine

import (
	"cmp"
	"context"
	"maps"
	"slices"
	"sync"
	"time"
)

// gate keeps the tasks a Limited vendor holds at its slot count, and the
// jobs waiting for a slot in turn between their owners: each owner with
// jobs waiting has one place in a rotation, and a freed slot goes to the
// oldest job of the owner whose turn it is, so one user's hundred jobs do
// not keep everyone else waiting behind them.
//
// Among the owners waiting, those of a higher priority (their quota tier's)
// come first; the rotation holds within a priority.
type gate struct {
	limit int

	mu      sync.Mutex
	holders map[string]time.Time // job ids that hold a slot (granted, or at the vendor) → since when
	waiting map[string][]string  // owner key → waiting job ids, oldest first
	owners  []string             // owners with jobs waiting, whose turn comes first first
	owner   map[string]string    // waiting job id → owner key
	prio    map[string]int       // owner with jobs waiting → priority
	// typical is the measured time a slot is held (a moving average), for
	// ETAs at a vendor that does not say its own.
	typical time.Duration
	now     func() time.Time
}

func newGate(limit int, now func() time.Time) *gate {
	return &gate{limit: max(limit, 1), holders: map[string]time.Time{}, waiting: map[string][]string{}, owner: map[string]string{}, prio: map[string]int{}, now: now}
}

// next is the index in owners of the owner whose turn it is: the first of
// the highest priority.
func (g *gate) next(owners []string) int {
	best := 0
	for i, o := range owners {
		if g.prio[o] > g.prio[owners[best]] {
			best = i
		}
	}
	return best
}

// enter reports whether job id holds a slot, taking a free one if no job
// waits for it; otherwise the job waits in its owner's line.
func (g *gate) enter(id, owner string, prio int) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.holders[id]; ok {
		return true
	}
	if _, ok := g.owner[id]; ok {
		return false
	}
	if len(g.holders) < g.limit && len(g.owners) == 0 {
		g.holders[id] = g.now()
		return true
	}
	if len(g.waiting[owner]) == 0 {
		g.owners = append(g.owners, owner)
		g.prio[owner] = prio
	}
	g.waiting[owner] = append(g.waiting[owner], id)
	g.owner[id] = owner
	return false
}

// hold counts job id as holding a slot, whatever the count: a task the
// vendor holds already (found after a restart) is not sent back to wait.
func (g *gate) hold(id string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.dropWaitingLocked(id)
	if _, ok := g.holders[id]; !ok {
		g.holders[id] = g.now()
	}
}

// leave frees job id's slot or its place in line, and returns the jobs
// that were granted the slots now free: the caller wakes them.
func (g *gate) leave(id string) []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	if since, ok := g.holders[id]; ok {
		delete(g.holders, id)
		if d := g.now().Sub(since); d > 0 {
			if g.typical == 0 {
				g.typical = d
			} else {
				g.typical = (g.typical*3 + d) / 4
			}
		}
	} else if !g.dropWaitingLocked(id) {
		return nil
	}
	var granted []string
	for len(g.holders) < g.limit && len(g.owners) > 0 {
		i := g.next(g.owners)
		o := g.owners[i]
		g.owners = slices.Delete(g.owners, i, i+1)
		next := g.waiting[o][0]
		g.waiting[o] = g.waiting[o][1:]
		if len(g.waiting[o]) > 0 {
			g.owners = append(g.owners, o) // to the back of the rotation
		} else {
			delete(g.waiting, o)
			delete(g.prio, o)
		}
		delete(g.owner, next)
		g.holders[next] = g.now()
		granted = append(granted, next)
	}
	return granted
}

func (g *gate) dropWaitingLocked(id string) bool {
	o, ok := g.owner[id]
	if !ok {
		return false
	}
	delete(g.owner, id)
	g.waiting[o] = slices.DeleteFunc(g.waiting[o], func(s string) bool { return s == id })
	if len(g.waiting[o]) == 0 {
		delete(g.waiting, o)
		delete(g.prio, o)
		g.owners = slices.DeleteFunc(g.owners, func(s string) bool { return s == o })
	}
	return true
}

// position is job id's place in line (1: next to get a slot; 0: not
// waiting) and how many slots are held.
func (g *gate) position(id string) (pos, held int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	held = len(g.holders)
	if _, ok := g.owner[id]; !ok {
		return 0, held
	}
	// Play the rotation forward on copies until id's turn comes.
	owners := slices.Clone(g.owners)
	taken := map[string]int{}
	for n := 1; len(owners) > 0; n++ {
		i := g.next(owners)
		o := owners[i]
		owners = slices.Delete(owners, i, i+1)
		line := g.waiting[o]
		if line[taken[o]] == id {
			return n, held
		}
		taken[o]++
		if taken[o] < len(line) {
			owners = append(owners, o)
		}
	}
	return 0, held
}

// guess takes d, the vendor's typical duration, as the time a slot is held
// until one is measured.
func (g *gate) guess(d time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.typical == 0 {
		g.typical = d
	}
}

// wakeAhead is how many of the first in line are woken to show their new
// place when the line moves.
const wakeAhead = 10

// first is the first n jobs in line, in turn.
func (g *gate) first(n int) []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	owners := slices.Clone(g.owners)
	taken := map[string]int{}
	var out []string
	for len(owners) > 0 && len(out) < n {
		i := g.next(owners)
		o := owners[i]
		owners = slices.Delete(owners, i, i+1)
		line := g.waiting[o]
		out = append(out, line[taken[o]])
		taken[o]++
		if taken[o] < len(line) {
			owners = append(owners, o)
		}
	}
	return out
}

// waitingCount is how many jobs wait for a slot.
func (g *gate) waitingCount() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.owner)
}

// holdsAt reports whether j, as stored, occupies a slot at vendor: a task
// there that is not done yet, or a queued job that may have been granted one.
func holdsAt(j *Job, vendor string) (holds, keep bool) {
	switch {
	case j.State == StateQueued:
		return false, true // waiting or granted: left as it is
	case j.State.AtVendor() && j.Vendor == vendor && len(j.Pending) == 0:
		return true, true
	}
	return false, false
}

// syncGates brings the gates in line with j as just stored: a job whose
// task ended (or moved on, or that finished) frees its slot, and the jobs
// granted it are woken at once, so the vendor never waits for the bot.
func (e *Engine) syncGates(j *Job) {
	for name, g := range e.gates {
		holds, keep := holdsAt(j, name)
		al, _ := e.vendors[name].(AccountLimits)
		if holds {
			g.hold(j.ID)
			if al != nil && j.Account != "" {
				al.Holding(j.ID, j.Account)
			}
			continue
		}
		if keep {
			continue
		}
		if al != nil {
			al.Released(j.ID)
		}
		granted := g.leave(j.ID)
		for _, id := range granted {
			e.sched.at(id, e.cfg.Now())
		}
		if len(granted) > 0 {
			// The line moved: the first in it show their new places now,
			// the rest at their next look (queueWait).
			for _, id := range g.first(wakeAhead) {
				e.sched.at(id, e.cfg.Now())
			}
		}
	}
}

// queueWait is how often a job waiting for a slot looks at its place in
// line, to show it; a freed slot wakes it at once anyway.
const queueWait = 10 * time.Second

// QueueInfo is a job's place in a limited vendor's line (a self-hosted
// backend, or a vendor with a concurrency limit).
type QueueInfo struct {
	Vendor   string
	Position int // 1: next; 0: not waiting
	Held     int // tasks at the backend
	Waiting  int // jobs waiting in all
	ETA      time.Duration
	Slots    int  // tasks it may hold at once
	GPU      bool // a self-hosted backend (Limited), not a vendor's bound
}

// Queue reports where job id waits, for /queue and status messages; the
// zero QueueInfo when it waits nowhere.
func (e *Engine) Queue(id string) QueueInfo {
	for name, g := range e.gates {
		pos, held := g.position(id)
		if pos == 0 {
			continue
		}
		return e.queueInfo(name, g, pos, held)
	}
	return QueueInfo{}
}

// Queues reports every gated vendor's line: its tasks held and jobs waiting.
func (e *Engine) Queues() []QueueInfo {
	var out []QueueInfo
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for n := range e.gates {
			if !yield(n) {
				return
			}
		}
	}) {
		g := e.gates[name]
		_, held := g.position("")
		out = append(out, e.queueInfo(name, g, 0, held))
	}
	return out
}

func (e *Engine) queueInfo(name string, g *gate, pos, held int) QueueInfo {
	q := QueueInfo{Vendor: name, Position: pos, Held: held, Waiting: g.waitingCount(), Slots: g.limit}
	if l, ok := e.vendors[name].(Limited); ok && l.Slots() > 0 {
		q.GPU = true
	}
	if pos == 0 {
		return q
	}
	// Until it starts: everything ahead of it (at the backend and in
	// line), shared by what runs at once.
	if l, ok := e.vendors[name].(Limited); ok && l.Slots() > 0 {
		run := max(l.Running(), 1)
		q.ETA = time.Duration(held+pos-1) * l.Typical(nil) / time.Duration(run)
		return q
	}
	// A vendor limited by configuration: its slots all run at once, for
	// about as long as they were measured to.
	g.mu.Lock()
	typical := g.typical
	g.mu.Unlock()
	q.ETA = time.Duration(held+pos-1) * typical / time.Duration(g.limit)
	return q
}

// WaitingJob is a job waiting for a limited vendor's slot.
type WaitingJob struct {
	Vendor   string
	ID       string
	Owner    string // the owner's key (UserRef.Key)
	Position int
}

// Waiting lists the jobs waiting for a slot at every limited vendor, by
// vendor and then in the order they will get one, for admins' /queue.
func (e *Engine) Waiting() []WaitingJob {
	var out []WaitingJob
	for name, g := range e.gates {
		g.mu.Lock()
		owners := maps.Clone(g.owner)
		g.mu.Unlock()
		for id, o := range owners {
			if pos, _ := g.position(id); pos > 0 {
				out = append(out, WaitingJob{Vendor: name, ID: id, Owner: o, Position: pos})
			}
		}
	}
	slices.SortFunc(out, func(a, b WaitingJob) int {
		return cmp.Or(cmp.Compare(a.Vendor, b.Vendor), cmp.Compare(a.Position, b.Position))
	})
	return out
}

// gateSlots is how many tasks v may hold at once, 0 for no limit: the
// least of its own limit (a self-hosted backend's, its accounts' sum) and
// the configured one.
func gateSlots(v Vendor, configured int) int {
	n := 0
	if l, ok := v.(Limited); ok && l.Slots() > 0 {
		n = l.Slots()
	}
	if al, ok := v.(AccountLimits); ok && al.AccountSlots() > 0 {
		n = al.AccountSlots()
	}
	if configured > 0 && (n == 0 || configured < n) {
		n = configured
	}
	return n
}

// slot reports whether j may be sent to v now: v has no limit, or j holds
// one of its slots. A job that waits is shown its place in line.
func (e *Engine) slot(ctx context.Context, lj *liveJob, j *Job, v Vendor) bool {
	g := e.gates[v.Name()]
	if g == nil || g.enter(j.ID, j.Owner.Key(), j.Charge.Priority) {
		return true
	}
	g.guess(v.Timing(&j.Request).First)
	// Shown at every look, not only when it moves: a platform skips an
	// edit too soon after the last (or while the reply is being posted),
	// and drops one that says nothing new.
	q := e.Queue(j.ID)
	if q.Position != lj.place {
		// Moved: look again soon, as at the start, so a platform that
		// skipped this edit (too soon after the last) shows the place.
		lj.place, lj.looks = q.Position, 0
	}
	lj.looks++
	e.notifier.Progress(ctx, j, Progress{Fraction: -1, Position: q.Position, ETA: q.ETA})
	return false
}

// waitLook is when a job waiting for a slot looks at its place again: soon
// after it joined the line or moved in it (its status message may not have
// been posted yet, or the edit been skipped), then every queueWait.
func waitLook(lj *liveJob) time.Duration {
	if lj.looks <= 2 {
		return firstLook
	}
	return queueWait
}

// firstLook is the wait after a job's first looks at its place in line.
const firstLook = 1500 * time.Millisecond
