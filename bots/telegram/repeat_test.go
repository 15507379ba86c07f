package telegram

import (
	"context"
	"image/color"
	"strconv"
	"testing"
	"time"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"
	"github.com/picbot/picbot/bots/telegram/telegramtest"
	"github.com/picbot/picbot/engine"
	"github.com/picbot/picbot/internal/testclock"
)

// TestDeliverRepeatedOnDrainedChat: a Deliver repeated after its posts went
// out and the status message was removed (the engine's record of the
// delivery dropped: a callback or a takeover moved the job meanwhile), in a
// chat whose flood bucket has room for one message a round, as progress
// edits leave it. The removal's delete is refused (the message is gone) and
// its fallback edit found no room of its own: "post later" at every round
// for good (issue 15, TestReplicasRandomKills). The same for a failed job
// whose status message is gone (the edit refused, the fallback reply) and a
// photo Telegram refuses (the document fallback).
func TestDeliverRepeatedOnDrainedChat(t *testing.T) {
	for _, tc := range []struct {
		name  string
		state engine.State
		sent  string // steps noted as done
		photo bool   // Telegram refuses the photo
	}{
		{"status gone after the posts", engine.StateSucceeded, "1", false},
		{"failed job, status gone", engine.StateFailed, "", false},
		{"photo refused", engine.StateSucceeded, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := testclock.New(time.Now())
			h := newHarness(t, "", nil, withConfig(func(c *Config) { c.Now = clk.Now }))
			ctx := context.Background()
			const chat = 601
			// The status message, then gone (deleted by the Deliver whose record was dropped).
			raw, err := h.bot.api.do(ctx, tgbotapi.NewMessage(chat, "queued"))
			if err != nil {
				t.Fatal(err)
			}
			status, err := sent(raw)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := h.bot.api.do(ctx, tgbotapi.NewDeleteMessage(chat, status.MessageID)); err != nil {
				t.Fatal(err)
			}
			j := h.storedJob(strconv.Itoa(chat), true, engine.EN, testPNG(t, 64, 64, color.White))
			if err := h.engine.Annotate(ctx, j.ID, metaStatus, strconv.Itoa(status.MessageID)); err != nil {
				t.Fatal(err)
			}
			if tc.sent != "" {
				if err := h.engine.Annotate(ctx, j.ID, metaSent, tc.sent); err != nil {
					t.Fatal(err)
				}
			}
			if tc.photo {
				for range 10 { // each round's photo
					h.fake.Fail("sendPhoto", telegramtest.Failure{Code: 400, Description: "Bad Request: IMAGE_PROCESS_FAILED"})
				}
			}
			// Drain the chat's bucket: one message's room each round from here on.
			for {
				if d := h.bot.flood.room(chat, true); d > 0 {
					break
				}
			}
			for round := range 10 {
				clk.Add(h.cfg.PrivateEvery)
				j = h.job(j.ID)
				j.State = tc.state
				err := h.bot.Deliver(ctx, j)
				if _, later := engine.AsLater(err); !later {
					if err != nil && engine.ErrorCode(err) != engine.EUNDELIVERED {
						t.Fatalf("round %d: Deliver: %v", round, err)
					}
					return
				}
			}
			t.Fatalf("Deliver still answers later after 10 rounds with room for a message each:\n%s", dump(h.fake.Calls()))
		})
	}
}

// TestFloodNoRoomSpendsNothing: a message that finds the chat's room but not
// the bot's global room (other chats spent it) does not go, and must not
// spend the chat's room either. The chat's token was given back with
// rate.Reservation.CancelAt at a later time, which restores nothing once
// the reservation's moment has passed: each try lost the chat's token, so
// a delivery retried while the global limit was busy found its chat empty
// at every round, "post later" about 1 s for good (issue 15).
func TestFloodNoRoomSpendsNothing(t *testing.T) {
	clk := testclock.New(time.Now())
	// Each reading of the clock a microsecond on, as a real one moves
	// between a reservation and its undo.
	ticking := func() time.Time { clk.Add(time.Microsecond); return clk.Now() }
	f := newFlood(Config{PrivateEvery: time.Second, GroupEvery: 3 * time.Second, GlobalRate: 2, Now: ticking})
	// Other chats spend the global room.
	for chat := int64(1); ; chat++ {
		if f.room(chat, true) > 0 {
			break
		}
		clk.Add(time.Millisecond)
	}
	const chat = 601
	for range 5 {
		clk.Add(time.Millisecond)
		if d := f.room(chat, true); d == 0 {
			t.Fatal("room with the global limit spent")
		}
	}
	for i := range 3 { // the chat never sent: its burst is whole
		if ok, d := f.private.Allow(strconv.Itoa(chat)); !ok {
			t.Fatalf("message %d of the chat's burst of 3 told to wait %s: its room was spent by messages that did not go", i+1, d)
		}
	}
}
