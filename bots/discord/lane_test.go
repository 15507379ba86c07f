package discord

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bwmarrin/discordgo"
	"github.com/picbot/picbot/engine"
)

// TestPostLanes: four jobs are posted to their channels at once while the
// fake holds the posts. No more posts than there are lanes are under way
// before the first is answered and noted on its job: a crash then would
// repeat that many, not four. Let through, every job is posted once and
// noted, and a bot started afresh (a restart before the engine recorded
// the deliveries) posts none of them again.
func TestPostLanes(t *testing.T) {
	for _, lanes := range []int{1, 2} {
		t.Run(fmt.Sprintf("lanes=%d", lanes), func(t *testing.T) {
			u := newUnit(t, false)
			b, err := newBot(Config{ApplicationID: "app", Mode: ModeGateway, PostLanes: lanes},
				Deps{Engine: u.eng, Blobs: u.bot.blobs, Now: time.Now}, u.api)
			if err != nil {
				t.Fatal(err)
			}
			var started atomic.Int32
			gate := make(chan struct{})
			u.api.onSend = func(channel string, m *message) (*discordgo.Message, error) {
				started.Add(1)
				<-gate
				return &discordgo.Message{ID: "c-" + channel}, nil
			}
			var ids []string
			for i := range 4 {
				j := u.job.Clone()
				j.ID, j.Chat.ChatID, j.Chat.MessageID = fmt.Sprintf("job%d", i), fmt.Sprint(300+i), ""
				u.eng.jobs[j.ID] = j
				ids = append(ids, j.ID)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			errs := make(chan error, len(ids))
			for _, id := range ids {
				go func() { errs <- deliverAll(ctx, b, u.eng, id) }()
			}
			for started.Load() == 0 {
				time.Sleep(time.Millisecond)
			}
			// The others would reach the fake within milliseconds: give them time to try.
			for end := time.Now().Add(500 * time.Millisecond); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
				if n := started.Load(); n > int32(lanes) {
					close(gate)
					t.Fatalf("%d posts under way and not recorded at once; %d post lanes", n, lanes)
				}
			}
			if n := started.Load(); n != int32(lanes) {
				t.Errorf("%d posts under way with %d post lanes free to take them", n, lanes)
			}
			close(gate)
			for range ids {
				if err := <-errs; err != nil {
					t.Fatalf("Deliver: %v", err)
				}
			}
			if n := started.Load(); n != int32(len(ids)) {
				t.Errorf("%d posts for %d jobs", n, len(ids))
			}
			again, err := newBot(Config{ApplicationID: "app", Mode: ModeGateway, PostLanes: lanes},
				Deps{Engine: u.eng, Blobs: u.bot.blobs, Now: time.Now}, u.api)
			if err != nil {
				t.Fatal(err)
			}
			for _, id := range ids {
				if err := deliverAll(ctx, again, u.eng, id); err != nil {
					t.Fatal(err)
				}
			}
			if n := started.Load(); n != int32(len(ids)) {
				t.Errorf("after a restart, %d posts for %d jobs: posted again", n, len(ids))
			}
		})
	}
}

// deliverAll calls Deliver as the engine does: after a Later, again once
// its wait has passed, with the job as stored then.
func deliverAll(ctx context.Context, b *Bot, eng *fakeEngine, id string) error {
	for {
		j, err := eng.Job(ctx, id)
		if err != nil {
			return err
		}
		err = b.Deliver(ctx, j)
		d, later := engine.AsLater(err)
		if !later {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d):
		}
	}
}
