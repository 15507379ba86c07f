package backends

import (
	"context"
	"errors"
	"net/url"
	"sync/atomic"
	"testing"
	"time"
)

func TestPickLeastBusyAndSkip(t *testing.T) {
	p, err := New([]string{"http://a:1", "http://b:2", "http://c:3"}, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1000, 0)
	p.now = func() time.Time { return now }
	p.Busy(0, 2)
	p.Busy(1, 1)
	p.Busy(2, 1)
	if i, _ := p.Pick(); i != 1 {
		t.Fatalf("picked %d, want 1 (least busy, first of equals)", i)
	}
	for range 3 {
		p.Record(1, false)
	}
	if i, _ := p.Pick(); i != 2 {
		t.Fatalf("picked %d after three failures of 1, want 2", i)
	}
	now = now.Add(Skip)
	if i, _ := p.Pick(); i != 1 {
		t.Fatalf("picked %d after the skip, want 1 again", i)
	}
	p.Busy(0, -5)
	if i, _ := p.Pick(); i != 0 {
		t.Fatalf("picked %d, want 0: its count never goes below zero", i)
	}
}

func TestHealthCheck(t *testing.T) {
	var bDown atomic.Bool
	bDown.Store(true)
	ping := func(ctx context.Context, u *url.URL) error {
		if u.Host == "b:2" && bDown.Load() {
			return errors.New("refused")
		}
		return nil
	}
	p, err := New([]string{"http://b:2", "http://a:1"}, ping, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	p.CheckNow()
	if !p.Down(0) {
		t.Fatal("b not down")
	}
	if i, _ := p.Pick(); i != 1 {
		t.Fatalf("picked %d, want a", i)
	}
	bDown.Store(false)
	for range 3 {
		p.Record(0, false) // and failed calls before it came back
	}
	p.CheckNow()
	if i, _ := p.Pick(); i != 0 {
		t.Fatalf("picked %d, want b: a good check ends the skip", i)
	}
	if _, err := New([]string{"ftp://x"}, nil, 0); err == nil {
		t.Fatal("ftp URL accepted")
	}
}

func TestAllSkipped(t *testing.T) {
	p, _ := New([]string{"http://a:1"}, nil, 0)
	for range 3 {
		p.Record(0, false)
	}
	if _, err := p.Pick(); !errors.Is(err, ErrNone) {
		t.Fatalf("err %v", err)
	}
}
