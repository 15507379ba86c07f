package showapi

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"time"

	"github.com/picbot/picbot/engine"
)

// Finding lost tasks. A crash amid submissions leaves several jobs whose
// creation's answer was lost, and after the restart each looks for its task
// in /yourtasklist, every page billed. Read alone, each search reads the
// same newest pages again (and one whose task was never made reads
// FindPages of them). So searches started within FindGather of each other
// share one sweep of the list: it reads page after page while any of them
// is still unsettled, and judges every page for all of them. A sweep takes
// in only searches that started before its first read, so each page it
// reads was read after its searches began, as a search alone would read it.

// sweep is one read of the task list shared by the searches it took in.
type sweep struct {
	members []*finding
}

// finding is one search for a job's lost task.
type finding struct {
	job   string
	want  [][2]string // the creation's fields, as the record echoes them
	since time.Time   // tasks created earlier are not this job's; zero: any
	at    time.Time   // the submission (bot's clock), for pages with a Date; zero: unknown
	here  bool        // at was told by this machine's clock (calibration applies)
	noted calibration // what the marker's note said of the vendor's clock (MarkNote)
	// beforeMine: marked here before this process made any task (a dead
	// process's), as the sweep found it when it began (see belowMine).
	beforeMine bool
	done       chan struct{}
	id         string // the task found; "" none
	err        error
}

// finalTTL bounds how long a finished record read with a page is kept to
// answer its task's poll (a job awaiting a callback that never came).
const finalTTL = 30 * time.Minute

// FindTask looks through /yourtasklist for the task that creating j's
// would have made: the record echoes the creation's fields, so it is the
// one whose prompt, seed, size, model, steps, batch and call_back (the
// job's own URL, when set) are all j's, created no earlier than
// j.Submitting.At less ClockSkew. The engine gives each job a random seed,
// so two jobs' records differ. The latest tasks are read first (see
// ListOrder), and the search ends once every page that can hold the task
// by its time was read, or after FindPages pages (FindDeepPages once a
// page read is wholly newer than the submission; more when searches share
// the read: their tasks may stand before this one); see walk. A finished
// record found answers the task's next poll without another call.
func (v *Vendor) FindTask(ctx context.Context, j *engine.Job, t engine.Task) (string, bool, error) {
	f := &finding{job: j.ID, want: v.createFields(&j.Request, t.CallbackURL), done: make(chan struct{})}
	if j.Submitting != nil {
		f.since, f.at = j.Submitting.At.Add(-v.cfg.ClockSkew), j.Submitting.At
		f.here = j.Submitting.Host != "" && j.Submitting.Host == engine.HostName()
		if c, ok := noteCalibration(j.Submitting.Note); ok && f.here {
			f.noted = c
		}
	}
	v.mu.Lock()
	s, lead := v.sweep, false
	if s == nil || v.cfg.FindGather < 0 {
		s, lead = &sweep{}, true
		if v.cfg.FindGather >= 0 {
			v.sweep = s
		}
	}
	s.members = append(s.members, f)
	v.mu.Unlock()
	if lead {
		v.runSweep(ctx, s)
	}
	select {
	case <-f.done:
		return f.id, f.id != "" && f.err == nil, f.err
	case <-ctx.Done():
		return "", false, ctx.Err()
	}
}

// runSweep gathers searches for FindGather, then reads the list for all of
// them on the caller's context (its job is billed the pages).
func (v *Vendor) runSweep(ctx context.Context, s *sweep) {
	start := time.Now()
	d := v.cfg.FindGather
	if dl, ok := ctx.Deadline(); ok {
		d = min(d, time.Until(dl)/4) // leave the reads most of the call's time
	}
	if d > 0 {
		timer := time.NewTimer(d)
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
		}
	}
	v.mu.Lock()
	if v.sweep == s {
		v.sweep = nil // later searches start the next sweep
	}
	members := s.members
	v.mu.Unlock()
	err := ctx.Err()
	var pages []int
	var cal calibration
	if err == nil {
		pages, cal, err = v.walk(ctx, members)
	}
	found := 0
	for _, f := range members {
		if f.id != "" {
			found++
		}
	}
	v.log.Info("showapi: searched the task list for tasks whose creation's answer was lost",
		slog.Int("searches", len(members)), slog.Int("found", found), slog.Int("pages", len(pages)), slog.Any("read", pages), slog.Int("calibrated_by", cal.n), slog.Duration("calibrated_within", cal.hi-cal.lo), slog.Duration("longest_creation", cal.span),
		slog.Duration("took", time.Since(start)), slog.Any("err", err))
	for _, f := range members {
		select {
		case <-f.done:
		default:
			f.err = err
			close(f.done)
		}
	}
}

// walk reads the pages the searches need and settles each one; pages
// lists the pages it read, in order, and cal what the markers' notes and
// the tasks this process made told of the vendor's clock (see window).
//
// Where to read: the list runs by creation time, so each task has a rank
// (counted from the oldest, which tasks made meanwhile do not move, unlike
// a page number) and a search wants the ranks whose times can be its
// submission's: not those on a page all older than the submission less
// date_skew, nor those on a page all newer than it plus date_skew and the
// Date header's second. The next page read holds the wanted rank nearest to
// where the submission's time lies, estimated from the times read
// (interpolated, or extrapolated at the rate the tasks were made), among
// the ranks next to those read, as the pages run; but while every page read
// is wholly older or newer (with find_jump), it may be any page between
// them: a list where more than find_pages pages of tasks were made after
// the submission is not read page by page to it, at a billed call a page,
// but entered where the task should be.
func (v *Vendor) walk(ctx context.Context, members []*finding) (pages []int, cal calibration, err error) {
	open := len(members)
	settled := func(f *finding) bool {
		select {
		case <-f.done:
			return true
		default:
			return false
		}
	}
	// look judges page p for every search still open.
	look := func(p *TaskPage, page int) {
		v.keepFinal(p)
		for _, f := range members {
			if settled(f) {
				continue
			}
			since := f.since
			if at, ok := p.clock.vendorTime(f.at); ok && !f.at.IsZero() {
				since = at.Add(-v.cfg.DateSkew) // the submission by the vendor's clock
			}
			for i := range p.Tasks {
				rec := &p.Tasks[i]
				if at, ok := rec.Created(); ok && !since.IsZero() && at.Before(since) {
					continue
				}
				if id := strings.TrimSpace(string(rec.TaskID)); id != "" && matches(rec, f.want) {
					v.log.Info("showapi: found a task whose creation's answer was lost", slog.String("job_id", f.job), slog.String("task_id", id), slog.Int("page", page))
					f.id = id
					close(f.done)
					open--
					break
				}
			}
		}
	}
	v.mu.Lock()
	for _, f := range members {
		cal.add(f.noted) // one machine's clock against the vendor's: all of a kind
		f.beforeMine = f.here && !v.firstMark.IsZero() && f.at.Before(v.firstMark)
	}
	v.mu.Unlock()
	first, err := v.TaskList(ctx, 1)
	if err != nil {
		return nil, cal, err
	}
	pages = append(pages, 1)
	order := v.cfg.ListOrder
	if order == "auto" {
		order = listOrder(first)
	}
	l := newListView(order == "newest", first, *v.cfg.FindJump)
	l.add(first, 1, v.calibrate(&cal, first))
	look(first, 1)
	// Each search's task may stand behind the others' tasks, made as close in time.
	extra := (len(members) - 1 + perPage - 1) / perPage
	for open > 0 {
		// The search whose task is likely the latest first: the pages it
		// wants are on the way to the others'. A page read wholly newer
		// than a search's submission shows its task lies deeper than the
		// tasks made since: find_deep_pages may be read for it.
		var f *finding
		budget := v.cfg.FindPages
		for _, m := range members {
			if settled(m) {
				continue
			}
			if f == nil || !f.at.IsZero() && (m.at.IsZero() || m.at.After(f.at)) {
				f = m
			}
			if l.deeper(v.window(m, l.clock, &cal)) {
				budget = max(budget, v.cfg.FindDeepPages)
			}
		}
		if len(pages) >= budget+extra {
			break
		}
		page, ok := l.next(v.window(f, l.clock, &cal))
		if !ok {
			close(f.done) // every page that can hold its task was read
			open--
			continue
		}
		p, err := v.TaskList(ctx, page)
		if err != nil {
			return pages, cal, err
		}
		pages = append(pages, page)
		l.add(p, page, v.calibrate(&cal, p))
		look(p, page)
	}
	return pages, cal, nil
}

// window is where search f's task can be in the list's times: from lo to
// hi, most likely at at; known false for a search with no submission time.
type window struct {
	at, lo, hi time.Time
	known      bool
	beforeMine bool // marked on this machine before this process made any task
}

// window is f's window by the vendor's clock as a page's Date header told
// it, else by the bot's, within clock_skew; narrowed by cal, when the
// pages read showed tasks this process made (see calibration).
func (v *Vendor) window(f *finding, clock vendorClock, cal *calibration) window {
	if f.at.IsZero() {
		return window{}
	}
	w := window{at: f.at, lo: f.since, hi: f.at.Add(v.cfg.ClockSkew), known: true}
	if at, ok := clock.vendorTime(f.at); ok {
		// Date is cut to the second: the vendor's clock may be that much later.
		w = window{at: at, lo: at.Add(-v.cfg.DateSkew), hi: at.Add(time.Second + v.cfg.DateSkew), known: true}
	}
	w.beforeMine = f.beforeMine
	if cal == nil || cal.n == 0 || cal.lo > cal.hi || !f.here || !*v.cfg.FindCalibrate {
		return w
	}
	c := window{at: f.at.Add(cal.hi), lo: f.at.Add(cal.lo - calSlack), hi: f.at.Add(cal.hi + 2*cal.span + calSlack), known: true}
	if c.lo.After(w.hi) || c.hi.Before(w.lo) {
		return w // at odds with the Date header: trust neither more than before
	}
	c.lo, c.hi = later(c.lo, w.lo), earlier(c.hi, w.hi)
	c.at = later(earlier(c.at, c.hi), c.lo)
	c.beforeMine = w.beforeMine
	return c
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// Calibration. A page's Date header gives the vendor's clock to the
// second, and ct may be off it by date_skew [I]: a window of twice
// date_skew and a second, every task of which a search for a task never
// made must read (25 tasks made in a second were seen after a run of
// crashes: five pages). Tasks this process made tell more: each one's ct
// was stamped between the moment its job marked the submission and the
// answer, by the bot's clock, so the vendor's ct less the bot's clock lies
// in [ct - answered, ct - marked] for each one a page shows. With any
// shown, a search's window is its own mark moved by that offset, from
// calSlack before to twice the longest creation this process saw (mark to
// answer; the lost one may have been slower [I]) and calSlack after,
// within the Date header's window, for a submission this machine marked
// (another replica's clock is not this one's). Clocks that disagree (tasks stamped by
// servers whose clocks differ) leave the offset's interval empty, and the
// Date header's window stands. find_calibrate (default true) turns it off.
type calibration struct {
	n      int           // tasks of this process the pages showed
	lo, hi time.Duration // the vendor's ct less the bot's clock lies in [lo, hi]
	span   time.Duration // the longest creation call seen, mark to answer
}

// calSlack covers ct's cut to the millisecond, the two clocks' reads, and
// their drift since the tasks that calibrated them were made (a marker's
// note may be minutes old; NTP slews a clock by at most 0.5 ms a second)
// [I]. It was 100 ms, and a search for a task never made read every page
// of a burst (15 tasks in 150 ms after a crash: three pages more).
const calSlack = 20 * time.Millisecond

// madeCall is when a task this process made was marked and answered, and
// how many it had made before.
type madeCall struct {
	marked, answered time.Time
	seq              int
}

// calibration is what a record of the task, created at ct by the
// vendor's clock, tells: its ct was stamped between the mark and the answer.
func (m madeCall) calibration(ct time.Time) calibration {
	return calibration{n: 1, lo: ct.Sub(m.answered), hi: ct.Sub(m.marked), span: m.answered.Sub(m.marked)}
}

// madeKept bounds the creations kept for calibration (the latest).
const madeKept = 256

// noteMade keeps task id's creation times, for calibration.
func (v *Vendor) noteMade(id string, marked, answered time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.made == nil {
		v.made = map[string]madeCall{}
	}
	if v.madeSeq == 0 {
		v.firstMark = marked
	}
	v.made[id] = madeCall{marked, answered, v.madeSeq}
	v.madeSeq++
	v.madeOrder = append(v.madeOrder, id)
	if len(v.madeOrder) > madeKept {
		delete(v.made, v.madeOrder[0])
		v.madeOrder = v.madeOrder[1:]
	}
}

// calibrate adds to c the tasks of page p this process made, and says
// which they are: by their index on p, how many this process made before each.
func (v *Vendor) calibrate(c *calibration, p *TaskPage) (mine map[int]int) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for i := range p.Tasks {
		m, ok := v.made[strings.TrimSpace(string(p.Tasks[i].TaskID))]
		if !ok {
			continue
		}
		if mine == nil {
			mine = map[int]int{}
		}
		mine[i] = m.seq
		ct, ok := p.Tasks[i].Created()
		if !ok {
			continue
		}
		c.add(m.calibration(ct))
	}
	return mine
}

// add narrows c by what o saw (the offset lies in both intervals).
func (c *calibration) add(o calibration) {
	if o.n == 0 {
		return
	}
	if c.n == 0 {
		c.lo, c.hi = o.lo, o.hi
	}
	c.lo, c.hi = max(c.lo, o.lo), min(c.hi, o.hi)
	c.span = max(c.span, o.span)
	c.n += o.n
}

// Calibration across a restart. A restarted process that has made no task
// yet has nothing to calibrate a dead process's search by, and reads every
// page within the Date header's window (find_pages, four, seen in the
// crash suite for tasks never made). But the vendor's clock against this
// machine's does not change with the process: so each process learns it
// from the ct its tasks' records show in callbacks and polls (the latest
// clockKept), and every submission marker carries it (MarkNote), for a
// search on this machine to start from. A note whose intervals disagree
// with what the pages show leaves the Date header's window (see window).

// clockKept bounds the records kept for the marker's note: the latest, as
// the two clocks drift apart slowly.
const clockKept = 32

// learnClock keeps what rec, a record of a task this process made, tells
// of the vendor's clock.
func (v *Vendor) learnClock(rec *Record) {
	ct, ok := rec.Created()
	id := strings.TrimSpace(string(rec.TaskID))
	if !ok || id == "" {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	m, ok := v.made[id]
	if !ok {
		return
	}
	v.clockSeen = append(v.clockSeen, m.calibration(ct))
	if len(v.clockSeen) > clockKept {
		v.clockSeen = v.clockSeen[1:]
	}
}

// MarkNote is the note on each submission marker (engine.MarkNoter): the
// calibration the latest records of this process's tasks gave, "" with
// none or with records that disagree.
func (v *Vendor) MarkNote() string {
	if !*v.cfg.FindCalibrate {
		return ""
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	var c calibration
	for _, s := range v.clockSeen {
		c.add(s)
	}
	if c.n == 0 || c.lo > c.hi {
		return ""
	}
	return fmt.Sprintf("%s %d %d %d %d", noteClock, c.n, c.lo, c.hi, c.span)
}

const noteClock = "clock"

// noteCalibration reads MarkNote's note.
func noteCalibration(note string) (calibration, bool) {
	var c calibration
	var tag string
	if n, err := fmt.Sscanf(note, "%s %d %d %d %d", &tag, &c.n, &c.lo, &c.hi, &c.span); err != nil || n != 5 || tag != noteClock || c.n <= 0 || c.lo > c.hi || c.span < 0 {
		return calibration{}, false
	}
	return c, true
}

// listView is what a sweep read of the list: each task's creation time
// by its rank, and the ranks each page held.
type listView struct {
	newestFirst bool
	jump        bool
	per         int
	total       int // allNum at the latest read; -1: not said
	// floor and ceil bound the ranks that exist: [floor, ceil).
	floor, ceil int
	ranks       map[int]time.Time // judged ranks; zero time: undated
	// mine holds the ranks read of tasks this process made. They are
	// newer than any lost one, and made at this process's pace, so the
	// pace of the others is reckoned without them.
	mine map[int]bool
	// first is the newest rank the first task this process made can hold
	// (a task made n-th stands at least n ranks above it), once one is read.
	first    int
	hasFirst bool
	spans    []span
	clock    vendorClock // the latest Date header
}

// span is one page read: ranks [from, to), created oldest to newest; dated
// false if a task's time could not be read.
type span struct {
	from, to       int
	oldest, newest time.Time
	dated          bool
}

// unsaid stands for the list's length when no page says it: ranks are then
// counted from it down, as if it were (newest first).
const unsaid = 1 << 40

func newListView(newestFirst bool, first *TaskPage, jump bool) *listView {
	per := perPage // the document's page size
	if n, ok := first.MaxResult.Int(); ok && n >= 1 {
		per = int(n)
	}
	return &listView{newestFirst: newestFirst, jump: jump, per: per, total: -1, ceil: unsaid, ranks: map[int]time.Time{}, mine: map[int]bool{}}
}

// base is the length the ranks of a newest-first list are counted from.
func (l *listView) base() int {
	if l.total >= 0 {
		return l.total
	}
	return unsaid
}

// add records page p, read as page number page; mine are the indexes on
// p of tasks this process made.
func (l *listView) add(p *TaskPage, page int, mine map[int]int) {
	if n, ok := p.AllNum.Int(); ok && n >= 0 {
		l.total = int(n)
		l.floor, l.ceil = 0, int(n)
	}
	if !p.clock.date.IsZero() {
		l.clock = p.clock
	}
	start := (page - 1) * l.per // the position of its first task
	rank := func(pos int) int {
		if l.newestFirst {
			return l.base() - 1 - pos
		}
		return pos
	}
	if len(p.Tasks) < l.per && l.total < 0 {
		// The end of the list: no task further on.
		if l.newestFirst {
			l.floor = max(l.floor, rank(start+len(p.Tasks)-1))
		} else {
			l.ceil = min(l.ceil, start+len(p.Tasks))
		}
	}
	if len(p.Tasks) == 0 {
		return
	}
	s := span{from: rank(start), to: rank(start) + 1, dated: true}
	for i := range p.Tasks {
		r := rank(start + i)
		s.from, s.to = min(s.from, r), max(s.to, r+1)
		if seq, ok := mine[i]; ok {
			l.mine[r] = true
			if !l.hasFirst || r-seq < l.first {
				l.first, l.hasFirst = r-seq, true
			}
		}
		at, ok := p.Tasks[i].Created()
		if !ok {
			s.dated = false
			l.ranks[r] = time.Time{}
			continue
		}
		l.ranks[r] = at
		if s.oldest.IsZero() || at.Before(s.oldest) {
			s.oldest = at
		}
		if at.After(s.newest) {
			s.newest = at
		}
	}
	l.spans = append(l.spans, s)
}

// deeper reports whether a page read is wholly newer than window w.
func (l *listView) deeper(w window) bool {
	for _, s := range l.spans {
		if w.known && s.dated && s.oldest.After(w.hi) {
			return true
		}
	}
	return false
}

// page is the page that holds rank r now, as far as the list's length is known.
func (l *listView) page(r int) int {
	pos := r
	if l.newestFirst {
		pos = l.base() - 1 - r
	}
	return max(pos, 0)/l.per + 1
}

// next is the page to read for a search in window w; ok false when no
// rank its task can hold is left unread.
func (l *listView) next(w window) (int, bool) {
	lo, hi := l.floor, l.ceil // the ranks wanted: [lo, hi)
	if w.known {
		for _, s := range l.spans {
			if !s.dated {
				continue
			}
			if s.newest.Before(w.lo) {
				lo = max(lo, s.to) // it and every older page: before the submission
			}
			if s.oldest.After(w.hi) {
				hi = min(hi, s.from) // it and every newer page: after it
			}
		}
		if l.jump {
			// The list runs by ct (find_jump's assumption): a rank read
			// older than the window bounds it from below, one newer from
			// above, whatever else its page held.
			for r, at := range l.ranks {
				switch {
				case at.IsZero():
				case at.Before(w.lo):
					lo = max(lo, r+1)
				case at.After(w.hi):
					hi = min(hi, r)
				}
			}
		}
	}
	inside := 0
	for r := range l.ranks {
		if r >= lo && r < hi {
			inside++
		}
	}
	if hi-lo <= inside {
		return 0, false
	}
	if !w.known {
		// No time to go by: the newest rank not read, the pages in order.
		r := hi - 1
		for _, read := l.ranks[r]; read && r > lo; _, read = l.ranks[r] {
			r--
		}
		return l.page(r), true
	}
	want := float64(hi - 1)
	if x, ok := l.estimate(w.at); ok {
		want = x
	}
	if r, ok := l.belowMine(w); ok {
		want = float64(r)
	}
	if inside == 0 {
		// Every page read lies wholly outside: any rank between may be read,
		// where the submission's time lies; else the newest, in order.
		if !l.jump {
			return l.page(hi - 1), true
		}
		return l.page(min(max(int(math.Round(want)), lo), hi-1)), true
	}
	// Next to the ranks read, on the side where the submission lies.
	best, found := 0, false
	for r := range l.ranks {
		for _, c := range []int{r - 1, r + 1} {
			if c < lo || c >= hi {
				continue
			}
			if _, read := l.ranks[c]; read {
				continue
			}
			d, bd := math.Abs(float64(c)-want), math.Abs(float64(best)-want)
			if !found || d < bd || d == bd && c > best {
				best, found = c, true
			}
		}
	}
	if !found {
		best = hi - 1 // nothing read next to the wanted ranks: from their newest
	}
	return l.page(best), true
}

// belowMine is where to look for a submission marked before this process
// made any task (a dead process's) while the only tasks read newer than it
// are this process's: just below the first of them. Their pace says
// nothing of the time before this process began, when the bot was down:
// reckoned at it, the task seemed hundreds of ranks deeper than the few
// the dead process made after its mark, and the search read the oldest
// page, then walked back (seen in the crash suite: pages 1, 8, 5, 6, 7 for
// a task never made, whose window lay on page 2).
func (l *listView) belowMine(w window) (int, bool) {
	if !w.beforeMine || !l.hasFirst || !l.jump {
		return 0, false
	}
	for r, at := range l.ranks {
		if !at.IsZero() && !at.Before(w.at) && !l.mine[r] {
			return 0, false
		}
	}
	return l.first - 1, true
}

// estimate is the rank at which a task made at t would stand, from the
// creation times read: between the nearest read on either side, else
// beyond the nearest at the rate the tasks read were made.
func (l *listView) estimate(t time.Time) (float64, bool) {
	type point struct {
		r  int
		at time.Time
	}
	var newer, newest, older, oldest *point // newer: the earliest at or after t; older: the latest before
	var newestOther *point                  // the latest after t not made by this process
	for r, at := range l.ranks {
		if at.IsZero() {
			continue
		}
		p := &point{r, at}
		if !at.Before(t) {
			if newer == nil || at.Before(newer.at) || at.Equal(newer.at) && r < newer.r {
				newer = p
			}
			if newest == nil || at.After(newest.at) || at.Equal(newest.at) && r > newest.r {
				newest = p
			}
			if !l.mine[r] && (newestOther == nil || at.After(newestOther.at) || at.Equal(newestOther.at) && r > newestOther.r) {
				newestOther = p
			}
			continue
		}
		if older == nil || at.After(older.at) || at.Equal(older.at) && r > older.r {
			older = p
		}
		if oldest == nil || at.Before(oldest.at) || at.Equal(oldest.at) && r < oldest.r {
			oldest = p
		}
	}
	switch {
	case newer != nil && newest.r > newer.r && newest.at.After(newer.at):
		// Back from the nearest later task at the rate of those read since:
		// the tasks just before the submission may be far older (an idle
		// account), and interpolating towards them would aim too deep.
		rate := float64(newest.r-newer.r) / float64(newest.at.Sub(newer.at))
		if o := newestOther; o != nil && o.r > newer.r && o.at.After(newer.at) {
			rate = float64(o.r-newer.r) / float64(o.at.Sub(newer.at)) // without this process's pace
		}
		x := float64(newer.r) - rate*float64(newer.at.Sub(t))
		if older != nil && x <= float64(older.r) {
			// That pace overshoots a task read older than t. Where the
			// tasks between the two were made at no less than a twentieth
			// of that pace (no idle spell between: bursts run at ten times
			// their average, and at half it a crash run's search stepped
			// back a page at a time, TestFindTaskBurstyDeep), aim between
			// them by time, so that a read lands near rather than a step
			// from the older one; else step.
			x = float64(older.r)
			pace := rate // the slower of the paces read on either side
			if older.r > oldest.r && older.at.After(oldest.at) {
				pace = min(pace, float64(older.r-oldest.r)/float64(older.at.Sub(oldest.at)))
			}
			span := float64(newer.at.Sub(older.at))
			if between := float64(newer.r-older.r) / span; span > 0 && between >= pace/20 {
				f := float64(t.Sub(older.at)) / span
				x = min(max(float64(older.r)+f*float64(newer.r-older.r), float64(older.r+1)), float64(newer.r-1))
			}
		}
		return x, true
	case newer != nil && older != nil:
		f := float64(t.Sub(older.at)) / float64(newer.at.Sub(older.at))
		return float64(older.r) + f*float64(newer.r-older.r), true
	case newer != nil:
		return float64(newer.r) - 1, true
	case older != nil:
		if older.r > oldest.r && older.at.After(oldest.at) {
			rate := float64(older.r-oldest.r) / float64(older.at.Sub(oldest.at))
			return float64(older.r) + rate*float64(t.Sub(older.at)), true
		}
		return float64(older.r) + 1, true
	}
	return 0, false
}

// keepFinal keeps the finished and failed records of page p, for finalTTL,
// to answer their tasks' next polls without a call: a lost creation found,
// or a task whose callback was lost while the bot was down.
func (v *Vendor) keepFinal(p *TaskPage) {
	now := v.Now()
	v.mu.Lock()
	defer v.mu.Unlock()
	l := &v.list
	l.init()
	for id, at := range l.kept {
		if now.Sub(at) > finalTTL {
			delete(l.kept, id)
			delete(l.final, id)
		}
	}
	for i := range p.Tasks {
		rec := p.Tasks[i]
		id := strings.TrimSpace(string(rec.TaskID))
		if o, err := v.outcome(&rec); id != "" && err == nil && (o.State == engine.TaskDone || o.State == engine.TaskFailed) {
			l.final[id], l.kept[id] = rec, now
		}
	}
}
