// Package testclock is a clock for tests that stands still until the test
// moves it, so that flood buckets, deadlines, polls and fakes see exactly
// the time the test gives them. It is safe for concurrent use: the code
// under test reads it from its own goroutines.
package testclock

import (
	"sync"
	"time"
)

// Clock is a time moved by hand. Pass its Now where code takes a
// func() time.Time.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// New returns a clock standing at t.
func New(t time.Time) *Clock { return &Clock{t: t} }

// Now is the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Add moves the clock by d.
func (c *Clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Set puts the clock at t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}
