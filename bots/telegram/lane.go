package telegram

import (
	"context"
	"sync"
	"time"
)

// Bounds of the wait a delivery is told to come back after when every post
// lane and every seat in line is taken.
const (
	minLaneRetry = 50 * time.Millisecond // the engine's own floor (minLater)
	maxLaneRetry = 5 * time.Second
	// laneWait caps a seated delivery's wait for a lane: a lane is held for
	// one upload (uploadTimeout at worst); past this the worker goes back to
	// the engine and the delivery comes back later.
	laneWait = callTimeout

	maxPostLanes = 32 // the most telegram.post_lanes may be
)

// postLanes bounds the result posts made and not yet recorded in this
// process. A lane is held from a delivery step's request to its note on the
// job (metaSent), so a crash repeats at most one post per lane, whatever the
// number of jobs delivering at once. The price is throughput: N lanes allow
// up to N duplicate posts per crash, and at most N uploads at a time.
//
// A delivery that finds every lane taken does not sleep on one for long:
// one delivery per lane may wait in line, so a lane is never idle while
// others want it, and it waits one post at most (laneWait at the very
// worst); the others are told to come back later, after about the time the
// deliveries ahead of them take, so they do not spin. At most N of the
// engine's workers wait on the lanes, besides the N posting.
type postLanes struct {
	slots chan struct{} // one token per lane, held from a post's request to its record
	seats chan struct{} // one token per lane: the next in line waits for a lane
	now   func() time.Time

	mu   sync.Mutex
	hold time.Duration        // moving average of a lane's hold: one post and its record
	told map[string]time.Time // deliveries told to come back → until when they count as waiting
}

func newPostLanes(n int, now func() time.Time) *postLanes {
	n = max(n, 1) // Check refuses less
	return &postLanes{
		slots: make(chan struct{}, n),
		seats: make(chan struct{}, n),
		now:   now,
		told:  make(map[string]time.Time),
	}
}

// take takes a lane for job id's post: at once when one is free; else, if
// a seat in line is free, once a lane is, unless ctx or laneWait ends
// first. It returns release, to call once the post is recorded (or did not
// go), or, having taken nothing, how long to wait before trying again.
func (l *postLanes) take(ctx context.Context, id string) (release func(), later time.Duration) {
	select {
	case l.slots <- struct{}{}:
		return l.taken(id), 0
	default:
	}
	select {
	case l.seats <- struct{}{}:
		t := time.NewTimer(laneWait)
		defer t.Stop()
		defer func() { <-l.seats }()
		select {
		case l.slots <- struct{}{}:
			return l.taken(id), 0
		case <-ctx.Done():
		case <-t.C:
		}
	default:
	}
	return nil, l.retry(id)
}

// taken starts id's hold of a lane and returns its release.
func (l *postLanes) taken(id string) func() {
	start := l.now()
	l.mu.Lock()
	delete(l.told, id)
	l.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			d := l.now().Sub(start)
			l.mu.Lock()
			if l.hold == 0 {
				l.hold = d
			} else {
				l.hold += (d - l.hold) / 8
			}
			l.mu.Unlock()
			<-l.slots
		})
	}
}

// retry is when delivery id should try for a lane again: after the posts
// of the deliveries already told to wait, shared among the lanes, and its
// own. It counts id among those waiting until a while after that.
func (l *postLanes) retry(id string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	ahead := 0
	for k, until := range l.told {
		switch {
		case !until.After(now):
			delete(l.told, k) // gone: delivered elsewhere, failed, or shut down
		case k != id:
			ahead++
		}
	}
	n := cap(l.slots)
	d := l.hold * time.Duration(ahead/n+1)
	d = min(max(d, minLaneRetry), maxLaneRetry)
	l.told[id] = now.Add(d + d/2 + minLaneRetry)
	return d
}
