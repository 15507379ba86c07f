package engine

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

func TestSchedulerOrderAndReplace(t *testing.T) {
	start := time.Unix(1000, 0)
	var clock atomic.Int64 // the scheduler's goroutine reads it
	clock.Store(start.UnixNano())
	s := newScheduler(func() time.Time { return time.Unix(0, clock.Load()) })
	s.at("late", start.Add(2*time.Second))
	s.at("early", start.Add(time.Second))
	s.at("moved", start.Add(time.Hour))
	s.at("moved", start.Add(1500*time.Millisecond)) // replaces the hour
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.run(ctx)
	clock.Store(start.Add(3 * time.Second).UnixNano())
	signal(s.kick)
	var got []string
	for range 3 {
		id, _ := s.take(ctx)
		got = append(got, id)
	}
	if fmt.Sprint(got) != "[early moved late]" {
		t.Fatalf("order %v", got)
	}
	if s.pending() != 3 {
		t.Fatalf("pending %d", s.pending())
	}
}

// BenchmarkScheduler is one job's wake-up: scheduled, made due, taken.
func BenchmarkScheduler(b *testing.B) {
	s := newScheduler(time.Now)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.run(ctx)
	ids := make([]string, 1024)
	for i := range ids {
		ids[i] = fmt.Sprint(i)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s.at(ids[i%len(ids)], time.Time{})
		s.take(ctx)
	}
}

// BenchmarkSchedulerHeap is 10,000 idle jobs' wake-ups pushed and replaced.
func BenchmarkSchedulerHeap(b *testing.B) {
	s := newScheduler(time.Now)
	far := time.Now().Add(time.Hour)
	ids := make([]string, 10000)
	for i := range ids {
		ids[i] = fmt.Sprint(i)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s.at(ids[i%len(ids)], far.Add(time.Duration(i)))
	}
}
