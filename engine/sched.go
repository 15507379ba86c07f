package engine

import (
	"container/heap"
	"context"
	"sync"
	"time"
)

// scheduler holds one wake-up time per job: a heap of timers served by one
// goroutine, so an idle job costs a heap entry rather than a goroutine.
// Scheduling a job again replaces its previous wake-up.
type scheduler struct {
	now func() time.Time

	mu      sync.Mutex
	timers  timerHeap
	seq     uint64
	gen     map[string]uint64 // the generation of each job's live timer
	ready   []string          // due jobs, oldest first
	inReady map[string]bool
	kick    chan struct{} // the heap's head changed
	avail   chan struct{} // ready is not empty
}

type timer struct {
	at  time.Time
	id  string
	gen uint64
}

type timerHeap []timer

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h timerHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *timerHeap) Push(x any)        { *h = append(*h, x.(timer)) }
func (h *timerHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	*h = old[:len(old)-1]
	return t
}

func newScheduler(now func() time.Time) *scheduler {
	return &scheduler{
		now:     now,
		gen:     make(map[string]uint64),
		inReady: make(map[string]bool),
		kick:    make(chan struct{}, 1),
		avail:   make(chan struct{}, 1),
	}
}

// at makes id due at t, replacing any earlier wake-up.
func (s *scheduler) at(id string, t time.Time) {
	s.mu.Lock()
	s.seq++
	s.gen[id] = s.seq
	if s.inReady[id] {
		// Already due: it runs soon, and that run schedules what comes next.
		s.mu.Unlock()
		return
	}
	if !t.After(s.now()) {
		s.makeReady(id)
		s.mu.Unlock()
		return
	}
	heap.Push(&s.timers, timer{at: t, id: id, gen: s.gen[id]})
	head := s.timers[0].id == id
	s.mu.Unlock()
	if head {
		signal(s.kick)
	}
}

// forget drops id's wake-up.
func (s *scheduler) forget(id string) {
	s.mu.Lock()
	delete(s.gen, id)
	s.mu.Unlock()
}

// pending reports how many jobs have a wake-up or are due.
func (s *scheduler) pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.gen)
}

func (s *scheduler) makeReady(id string) {
	s.inReady[id] = true
	s.ready = append(s.ready, id)
	signal(s.avail)
}

// run moves due timers to the ready list until ctx ends.
func (s *scheduler) run(ctx context.Context) {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		s.mu.Lock()
		now := s.now()
		for len(s.timers) > 0 && !s.timers[0].at.After(now) {
			tm := heap.Pop(&s.timers).(timer)
			if g, ok := s.gen[tm.id]; ok && g == tm.gen && !s.inReady[tm.id] {
				s.makeReady(tm.id)
			}
		}
		wait := time.Hour
		if len(s.timers) > 0 {
			wait = s.timers[0].at.Sub(now)
		}
		s.mu.Unlock()
		t.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-s.kick:
		case <-t.C:
		}
	}
}

// take returns the next due job, waiting for one; false when ctx ends.
func (s *scheduler) take(ctx context.Context) (string, bool) {
	for {
		s.mu.Lock()
		if len(s.ready) > 0 {
			id := s.ready[0]
			s.ready[0] = ""
			s.ready = s.ready[1:]
			delete(s.inReady, id)
			more := len(s.ready) > 0
			s.mu.Unlock()
			if more {
				signal(s.avail) // wake another worker
			}
			return id, true
		}
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return "", false
		case <-s.avail:
		}
	}
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}
