package engine

import (
	"testing"
	"time"
)

func TestGatePositions(t *testing.T) {
	g := newGate(1, time.Now)
	g.enter("a1", "A", 0)
	g.enter("a2", "A", 0)
	g.enter("b1", "B", 0)
	if p, _ := g.position("a2"); p != 1 {
		t.Fatalf("a2 %d", p)
	}
	if p, _ := g.position("b1"); p != 2 {
		t.Fatalf("b1 %d", p)
	}
}
