package chat_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/picbot/picbot/bots/chat"
	"github.com/picbot/picbot/engine"
)

// queueEngine is an engine with a self-hosted backend's line, as the
// real engine reports it through chat.Queuer.
type queueEngine struct {
	chat.Engine
	jobs []*engine.Job
	at   map[string]engine.QueueInfo
}

func (q queueEngine) Jobs(context.Context, engine.UserRef, int) ([]*engine.Job, error) {
	return q.jobs, nil
}
func (q queueEngine) Queue(id string) engine.QueueInfo { return q.at[id] }
func (q queueEngine) Queues() []engine.QueueInfo {
	return []engine.QueueInfo{{Vendor: "a1111", Held: 2, Waiting: 5, Slots: 2, GPU: true}, {Vendor: "zhiqite", Held: 1, Waiting: 2, Slots: 1}}
}
func (q queueEngine) Waiting() []engine.WaitingJob {
	return []engine.WaitingJob{{Vendor: "zhiqite", ID: "w1", Owner: "t:bob", Position: 1}, {Vendor: "zhiqite", ID: "w2", Owner: "t:carol", Position: 2}}
}

func TestQueue(t *testing.T) {
	s, _ := newService(t)
	if r := say(s, root, "/queue"); !strings.Contains(r.Text, "No queue here") {
		t.Fatalf("without a backend: %q", r.Text)
	}
	bob := engine.UserRef{Platform: "t", ID: "bob"}
	s.Engine = queueEngine{Engine: s.Engine,
		jobs: []*engine.Job{
			{ID: "waiting1", State: engine.StateQueued},
			{ID: "atgpu", State: engine.StateRunning, Vendor: "a1111"},
			{ID: "old", State: engine.StateDelivered},
		},
		at: map[string]engine.QueueInfo{"waiting1": {Vendor: "a1111", Position: 3, ETA: 40 * time.Second}},
	}
	r := say(s, bob, "/queue")
	for _, want := range []string{"a1111: 2 at the GPU, 5 waiting.", "zhiqite: 1 of 1 running, 2 waiting.", "Job waiting1: number 3 in line for a1111, about 40 s.", "Job atgpu: at a1111 now."} {
		if !strings.Contains(r.Text, want) {
			t.Errorf("reply %q lacks %q", r.Text, want)
		}
	}
	if strings.Contains(r.Text, "old") {
		t.Errorf("a finished job is listed: %q", r.Text)
	}
	if strings.Contains(r.Text, "carol") {
		t.Errorf("a user sees another's waiting job: %q", r.Text)
	}
	// An admin sees every waiting job, by user, in order.
	if r := say(s, root, "/queue"); !strings.Contains(r.Text, "zhiqite #1: job w1 of t:bob.\nzhiqite #2: job w2 of t:carol.") {
		t.Errorf("admin's /queue %q lacks the waiting jobs", r.Text)
	}
	if zh := say(s, alice, "/queue"); !strings.Contains(zh.Text, "任务 waiting1：a1111 排队第 3 位，约 40 秒。") {
		t.Errorf("Chinese %q", zh.Text)
	}
}

func TestStatusInLine(t *testing.T) {
	j := &engine.Job{ID: "j1", State: engine.StateQueued}
	if got := chat.Status(j, engine.Progress{Fraction: -1, Position: 2, ETA: 90 * time.Second}, engine.EN); got != "Job j1: queued, number 2 in line, about 2 min." {
		t.Errorf("en %q", got)
	}
	if got := chat.Status(j, engine.Progress{Fraction: -1, Position: 1, ETA: 3 * time.Second}, engine.ZH); got != "任务 j1：排队中，第 1 位，约 3 秒。" {
		t.Errorf("zh %q", got)
	}
	if got := chat.Status(j, engine.Progress{Fraction: -1}, engine.EN); got != "Job j1: queued." {
		t.Errorf("not in a line %q", got)
	}
}
