// Package postlane bounds the result posts a platform adapter has made and
// not yet recorded: a lane is held from a post's request to its record on
// the job, so a crash repeats at most one post per lane.
package postlane

import (
	"context"
	"sync"
	"time"
)

// Max is the most lanes a configuration may ask for.
const Max = 32

const (
	// laneWait caps a wait in line, however long the post ahead takes (an
	// upload's timeout at worst): past it the worker goes back to the engine.
	laneWait = 30 * time.Second

	// Bounds of the wait a delivery told to come back later is given.
	minLaneRetry = 50 * time.Millisecond // the engine's own floor (minLater)
	maxLaneRetry = 5 * time.Second
)

// Lanes bounds the result posts made and not yet recorded in this
// process. A lane is held from a post's request to its record on the
// job, so a crash repeats at most one post per lane, whatever the
// number of jobs delivering at once. The price is throughput: N lanes allow
// up to N duplicate posts per crash, and at most N uploads at a time.
//
// An engine worker does not sleep on a busy lane for long. At most one
// delivery per lane waits in line (with its context), to take the lane the
// moment it frees; any other is told to come back later, after about the
// time the deliveries ahead of it take, so that it does not spin. So however
// quick the holds were before, a hold that stalls (a slow upload, a slow
// store) keeps at most two workers per lane, one holding and one in line,
// and the engine's other workers go on with other chats' jobs. That turn is
// a guess from earlier holds: each release calls back the first delivery
// told (SetWake), to take the lane, or the place in line the one waiting
// there leaves, so the lane does not stand idle until the guess ends.
type Lanes struct {
	slots chan struct{} // one token per lane, held from a post's request to its record
	now   func() time.Time

	mu      sync.Mutex
	n       int                  // lanes
	hold    time.Duration        // moving average of a lane's hold: one post and its record; 0: none yet
	holders map[uint64]time.Time // holds under way → their start
	seq     uint64
	line    int             // deliveries waiting in line
	told    map[string]told // deliveries told to come back
	wake    func(id string) // asks for a delivery told to come back to come now; nil: none
}

// New returns n lanes (at least one) timed by now.
func New(n int, now func() time.Time) *Lanes {
	n = max(n, 1) // configurations refuse less
	return &Lanes{
		slots:   make(chan struct{}, n),
		now:     now,
		n:       n,
		holders: make(map[uint64]time.Time),
		told:    make(map[string]told),
	}
}

// SetWake gives the lanes a way to call back a delivery told to come back
// later (the engine's wake-up of its job): when a lane is released, the
// first of those told is asked to come now, for the lane or for the place
// in line its new holder left, so the lane does not stand idle until the
// wait, guessed from earlier holds, ends.
func (l *Lanes) SetWake(wake func(id string)) {
	l.mu.Lock()
	l.wake = wake
	l.mu.Unlock()
}

// Take takes a lane for job id's post: at once when one is free; else, if
// there is a place in line, once a lane is, unless ctx or laneWait ends first.
// It returns release, to call once the post is recorded (or did not go),
// or, having taken nothing, how long to wait before trying again.
func (l *Lanes) Take(ctx context.Context, id string) (release func(), later time.Duration) {
	select {
	case l.slots <- struct{}{}:
		return l.taken(id), 0
	default:
	}
	if !l.queue() {
		return nil, l.retry(id)
	}
	t := time.NewTimer(laneWait)
	defer t.Stop()
	defer l.dequeue()
	select {
	case l.slots <- struct{}{}:
		return l.taken(id), 0
	case <-ctx.Done():
	case <-t.C:
	}
	return nil, l.retry(id)
}

// queue puts a delivery in line if there is a place: one per lane. More
// would hold workers the engine needs for other chats' jobs, waiting out
// a hold that stalls.
func (l *Lanes) queue() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.line >= l.n {
		return false
	}
	l.line++
	return true
}

func (l *Lanes) dequeue() {
	l.mu.Lock()
	l.line--
	l.mu.Unlock()
}

// expected is how long a hold is expected to take: the recent average, or
// longer when a hold under way has lasted longer (an upload that stalls);
// 0 before any hold ended. Called with l.mu held.
func (l *Lanes) expected() time.Duration {
	if l.hold == 0 {
		return 0
	}
	h := l.hold
	now := l.now()
	for _, start := range l.holders {
		h = max(h, now.Sub(start))
	}
	return h
}

// taken starts id's hold of a lane and returns its release.
func (l *Lanes) taken(id string) func() {
	l.mu.Lock()
	delete(l.told, id)
	l.seq++
	key, start := l.seq, l.now()
	l.holders[key] = start
	l.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			d := l.now().Sub(start)
			if l.hold == 0 {
				l.hold = d
			} else {
				l.hold += (d - l.hold) / 8
			}
			l.hold = max(l.hold, time.Microsecond) // 0 means none yet
			delete(l.holders, key)
			next := l.nextTold()
			wake := l.wake
			l.mu.Unlock()
			<-l.slots
			if next != "" && wake != nil {
				wake(next)
			}
		})
	}
}

// nextTold is the delivery to call back for a lane being released: the
// first of those told to come back, and not called back since it was told.
// With nobody in line it takes the lane; else the one in line does, and it
// takes the place in line left. Called with l.mu held.
func (l *Lanes) nextTold() string {
	if l.wake == nil {
		return ""
	}
	now := l.now()
	var (
		next  string
		place uint64
	)
	for id, t := range l.told {
		if t.woken || !t.until.After(now) {
			continue
		}
		if next == "" || t.place < place {
			next, place = id, t.place
		}
	}
	if next != "" {
		t := l.told[next]
		t.woken = true
		l.told[next] = t
	}
	return next
}

// retry is when delivery id should try for a lane again: after the posts
// of those in line and of the deliveries told to wait before it (it keeps
// its place among them), shared among the lanes, and its own. It counts
// as waiting until a while after that.
func (l *Lanes) retry(id string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	me, ok := l.told[id]
	if !ok || !me.until.After(now) {
		l.seq++
		me.place = l.seq
	}
	me.woken = false
	ahead := l.line
	for k, t := range l.told {
		switch {
		case !t.until.After(now):
			delete(l.told, k) // gone: delivered elsewhere, failed, or shut down
		case t.place < me.place:
			ahead++
		}
	}
	d := l.expected() * time.Duration(ahead/l.n+1)
	d = min(max(d, minLaneRetry), maxLaneRetry)
	me.until = now.Add(d + d/2 + minLaneRetry)
	l.told[id] = me
	return d
}

// told is a delivery told to come back later: its place among those, and
// until when it counts as waiting.
type told struct {
	place uint64
	until time.Time
	woken bool // called back since it was told (see nextTold)
}
