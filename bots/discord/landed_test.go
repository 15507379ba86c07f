package discord

import (
	"context"
	"net/http"
	"slices"
	"sync"
	"testing"

	"github.com/bwmarrin/discordgo"
)

// TestTimedOutEditThatLanded: the result's edit by token times out at the
// token's deadline, but Discord had applied it. Posting to the channel as
// well shows the result twice: the bot asks Discord first, and posts to the
// channel only when the edit did not take effect or Discord cannot say.
func TestTimedOutEditThatLanded(t *testing.T) {
	timeout := &apiError{Op: "edit original response", Msg: "request failed", Err: context.DeadlineExceeded}
	expired := &apiError{Op: "get original response", Status: http.StatusUnauthorized, Code: 50027, Msg: "Invalid Webhook Token"}
	for _, tc := range []struct {
		name       string
		applied    bool  // Discord applied the edit
		getErr     error // reading the original by the interaction token fails
		channelErr error // reading it as a channel message by the bot token fails
		wantSend   bool
	}{
		{"Applied", true, nil, nil, false},
		{"NotApplied", false, nil, nil, true},
		// The token expired in the moment between the edit's timeout and
		// the read: the bot token still reads the message.
		{"TokenExpiredApplied", true, expired, nil, false},
		{"TokenExpiredNotApplied", false, expired, nil, true},
		{"CannotTell", true, timeout, timeout, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := newUnit(t, true)
			var mu sync.Mutex
			var shown []*discordgo.MessageAttachment
			u.api.onEdit = func(token string, m *message) (*discordgo.Message, error) {
				if tc.applied {
					mu.Lock()
					shown = nil
					for _, f := range m.files {
						shown = append(shown, &discordgo.MessageAttachment{Filename: f.Name})
					}
					mu.Unlock()
				}
				return nil, timeout
			}
			u.api.onGet = func(token string) (*discordgo.Message, error) {
				if tc.getErr != nil {
					return nil, tc.getErr
				}
				mu.Lock()
				defer mu.Unlock()
				return &discordgo.Message{ID: "m-" + token, Attachments: shown}, nil
			}
			u.api.onChannelGet = func(channel, id string) (*discordgo.Message, error) {
				if channel != "222" || id != "orig-msg" {
					t.Errorf("read channel message %s/%s, want 222/orig-msg", channel, id)
				}
				if tc.channelErr != nil {
					return nil, tc.channelErr
				}
				mu.Lock()
				defer mu.Unlock()
				return &discordgo.Message{ID: id, Attachments: shown}, nil
			}
			if err := u.bot.Deliver(context.Background(), u.job); err != nil {
				t.Fatalf("Deliver: %v", err)
			}
			ops := u.api.ops()
			if sent := slices.Contains(ops, "send 222"); sent != tc.wantSend {
				t.Errorf("calls %v: posted to the channel %v, want %v", ops, sent, tc.wantSend)
			}
		})
	}
}
