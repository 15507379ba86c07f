package web

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"sync"
	"time"
)

// Sessions live in memory: a restart logs the operator out, which costs a
// login and keeps no session secret on disk.
type sessions struct {
	mu   sync.Mutex
	byID map[string]*session
	ttl  time.Duration
	now  func() time.Time
}

type session struct {
	id      string
	csrf    string
	who     string // the operator's name as given at login, with the address
	expires time.Time
}

func newSessions(ttl time.Duration, now func() time.Time) *sessions {
	return &sessions{byID: map[string]*session{}, ttl: ttl, now: now}
}

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (s *sessions) create(who string) *session {
	se := &session{id: randomToken(), csrf: randomToken(), who: who, expires: s.now().Add(s.ttl)}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	for id, old := range s.byID { // expired ones go when someone logs in: no timer needed
		if !now.Before(old.expires) {
			delete(s.byID, id)
		}
	}
	s.byID[se.id] = se
	return se
}

// get returns the live session with id, or nil.
func (s *sessions) get(id string) *session {
	if id == "" {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	se := s.byID[id]
	if se == nil {
		return nil
	}
	if !s.now().Before(se.expires) {
		delete(s.byID, id)
		return nil
	}
	return se
}

func (s *sessions) remove(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.byID, id)
}

func (se *session) validCSRF(token string) bool {
	return token != "" && subtle.ConstantTimeCompare([]byte(token), []byte(se.csrf)) == 1
}

// limiter counts failed logins per address in a fixed window.
type limiter struct {
	mu     sync.Mutex
	max    int
	window time.Duration
	now    func() time.Time
	fails  map[string]*attempts
}

type attempts struct {
	n     int
	since time.Time
}

// blocked reports whether addr has used its attempts, and for how long still.
func (l *limiter) blocked(addr string) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	a := l.fails[addr]
	if a == nil {
		return false, 0
	}
	left := a.since.Add(l.window).Sub(l.now())
	if left <= 0 {
		delete(l.fails, addr)
		return false, 0
	}
	return a.n >= l.max, left
}

func (l *limiter) failed(addr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	for k, a := range l.fails { // bounded by the addresses that failed within a window
		if now.Sub(a.since) >= l.window {
			delete(l.fails, k)
		}
	}
	a := l.fails[addr]
	if a == nil {
		a = &attempts{since: now}
		l.fails[addr] = a
	}
	a.n++
}

func (l *limiter) succeeded(addr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.fails, addr)
}
