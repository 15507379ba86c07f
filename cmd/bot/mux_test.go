package main

import (
	"context"
	"slices"
	"testing"

	"github.com/picbot/picbot/engine"
)

// wakingNotifier is a platform adapter that calls deliveries back (engine.Waker).
type wakingNotifier struct{ wake func(string) }

func (*wakingNotifier) Progress(context.Context, *engine.Job, engine.Progress) {}
func (*wakingNotifier) Deliver(context.Context, *engine.Job) error             { return nil }
func (w *wakingNotifier) SetWake(wake func(string))                            { w.wake = wake }

// TestMuxWake: the engine hands the mux its wake before any platform is
// added (main adds them after engine.New); a platform added later that
// calls deliveries back still reaches the engine's.
func TestMuxWake(t *testing.T) {
	m := &mux{by: map[string]engine.Notifier{}}
	var woken []string
	var n engine.Notifier = m
	n.(engine.Waker).SetWake(func(id string) { woken = append(woken, id) })
	p := &wakingNotifier{}
	m.add("telegram", p)
	if p.wake == nil {
		t.Fatal("a platform added after the engine's wake was given none")
	}
	p.wake("j1")
	if want := []string{"j1"}; !slices.Equal(woken, want) {
		t.Errorf("woken %q, want %q", woken, want)
	}
}
