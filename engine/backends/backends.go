// Package backends picks among several servers of one self-hosted kind
// (several GPUs, several machines): the least busy first; one that fails
// three calls in a row, or its health check, is skipped until it answers
// again. It is shared by engine/a1111 and engine/comfyui.
package backends

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Skip is how long a backend that failed three calls in a row is left
// alone when no health check runs (the engine breaker's figure).
const Skip = 30 * time.Second

// ErrNone is returned by Pick when every backend is skipped.
var ErrNone = errors.New("every backend failed recently")

// Ping checks one backend: nil when it answers.
// URLs joins a config's single base URL and its list, the single one first.
func URLs(base string, more []string) []string {
	var out []string
	if base != "" {
		out = append(out, base)
	}
	return append(out, more...)
}

type Ping func(ctx context.Context, base *url.URL) error

type server struct {
	base     *url.URL
	busy     atomic.Int64
	mu       sync.Mutex
	failures int
	until    time.Time // skipped until then, after failed calls
	down     bool      // the last health check failed
}

// Pool is a list of backends.
type Pool struct {
	servers []*server
	ping    Ping
	every   time.Duration
	now     func() time.Time

	ctx  context.Context
	stop context.CancelFunc
}

// New returns a pool of the base URLs. ping, every > 0 and more than one
// URL turn on a health check every that often, until Close.
func New(urls []string, ping Ping, every time.Duration) (*Pool, error) {
	if len(urls) == 0 {
		return nil, errors.New("no base URL")
	}
	ctx, stop := context.WithCancel(context.Background())
	p := &Pool{ping: ping, every: every, now: time.Now, ctx: ctx, stop: stop}
	for _, s := range urls {
		u, err := url.Parse(strings.TrimRight(s, "/") + "/")
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("%q is not an http(s) URL", s)
		}
		p.servers = append(p.servers, &server{base: u})
	}
	if ping != nil && every > 0 && len(p.servers) > 1 {
		go p.check()
	}
	return p, nil
}

// Close stops the health checks.
func (p *Pool) Close() { p.stop() }

// Len is the number of backends.
func (p *Pool) Len() int { return len(p.servers) }

// Base is backend i's base URL, ending in "/".
func (p *Pool) Base(i int) *url.URL { return p.servers[i].base }

// Pick returns the least busy backend that is not skipped.
func (p *Pool) Pick() (int, error) {
	best, now := -1, p.now()
	for i, s := range p.servers {
		s.mu.Lock()
		skip := s.down || now.Before(s.until)
		s.mu.Unlock()
		if !skip && (best < 0 || s.busy.Load() < p.servers[best].busy.Load()) {
			best = i
		}
	}
	if best < 0 {
		return 0, ErrNone
	}
	return best, nil
}

// Busy adds delta to backend i's count of jobs under way.
func (p *Pool) Busy(i int, delta int64) {
	if n := p.servers[i].busy.Add(delta); n < 0 {
		p.servers[i].busy.Add(-n) // never below zero: a restart forgets what was counted
	}
}

// Record counts a call to backend i: three failures in a row skip it for Skip.
func (p *Pool) Record(i int, ok bool) {
	s := p.servers[i]
	s.mu.Lock()
	defer s.mu.Unlock()
	if ok {
		s.failures = 0
		return
	}
	if s.failures++; s.failures >= 3 {
		s.until, s.failures = p.now().Add(Skip), 0
	}
}

// Down reports whether backend i failed its last health check.
func (p *Pool) Down(i int) bool {
	s := p.servers[i]
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.down
}

func (p *Pool) check() {
	t := time.NewTicker(p.every)
	defer t.Stop()
	for {
		p.CheckNow()
		select {
		case <-p.ctx.Done():
			return
		case <-t.C:
		}
	}
}

// CheckNow pings every backend once: one that fails is skipped until a
// check finds it answering, which also ends a skip for failed calls.
func (p *Pool) CheckNow() {
	var wg sync.WaitGroup
	for _, s := range p.servers {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
			err := p.ping(ctx, s.base)
			cancel()
			s.mu.Lock()
			s.down = err != nil
			if err == nil {
				s.until, s.failures = time.Time{}, 0
			}
			s.mu.Unlock()
		})
	}
	wg.Wait()
}
