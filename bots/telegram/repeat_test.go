package telegram

import (
	"context"
	"image/color"
	"strconv"
	"strings"
	"testing"
	"time"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"
	"github.com/picbot/picbot/bots/telegram/telegramtest"
	"github.com/picbot/picbot/engine"
	"github.com/picbot/picbot/internal/testclock"
)

// drainedChat is a harness on a hand-moved clock with a succeeded job for
// private chat, whose status message was posted (then deleted, if gone) and
// whose first done steps are noted as sent.
func drainedChat(t *testing.T, chat int64, gone bool, done string) (*harness, *testclock.Clock, *engine.Job) {
	t.Helper()
	clk := testclock.New(time.Now())
	h := newHarness(t, "", nil, withConfig(func(c *Config) { c.Now = clk.Now }))
	ctx := context.Background()
	raw, err := h.bot.api.do(ctx, tgbotapi.NewMessage(chat, "queued"))
	if err != nil {
		t.Fatal(err)
	}
	status, err := sent(raw)
	if err != nil {
		t.Fatal(err)
	}
	if gone {
		if _, err := h.bot.api.do(ctx, tgbotapi.NewDeleteMessage(chat, status.MessageID)); err != nil {
			t.Fatal(err)
		}
	}
	j := h.storedJob(strconv.FormatInt(chat, 10), true, engine.EN, testPNG(t, 64, 64, color.White))
	if err := h.engine.Annotate(ctx, j.ID, metaStatus, strconv.Itoa(status.MessageID)); err != nil {
		t.Fatal(err)
	}
	if done != "" {
		if err := h.engine.Annotate(ctx, j.ID, metaSent, done); err != nil {
			t.Fatal(err)
		}
	}
	return h, clk, j
}

// deliverRounds drains chat's flood bucket, then calls Deliver on next()'s
// job once a round, with room for one message each (as progress edits leave
// a chat), until it answers other than "post later", and returns that.
// Ten rounds of "later" fail the test.
func deliverRounds(t *testing.T, h *harness, clk *testclock.Clock, chat int64, next func() *engine.Job) error {
	t.Helper()
	for h.bot.flood.try(chat, true) {
	}
	for range 10 {
		clk.Add(h.cfg.PrivateEvery)
		err := h.bot.Deliver(context.Background(), next())
		if _, later := engine.AsLater(err); !later {
			return err
		}
	}
	t.Fatalf("Deliver still answers later after 10 rounds with room for a message each:\n%s", dump(h.fake.Calls()))
	return nil
}

// jobAs reads job id afresh for each round, in state.
func jobAs(h *harness, id string, state engine.State) func() *engine.Job {
	return func() *engine.Job {
		j := h.job(id)
		j.State = state
		return j
	}
}

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
			const chat = 601
			// The status message gone: deleted by the Deliver whose record was dropped.
			h, clk, j := drainedChat(t, chat, true, tc.sent)
			if tc.photo {
				for range 10 { // each round's photo
					h.fake.Fail("sendPhoto", telegramtest.Failure{Code: 400, Description: "Bad Request: IMAGE_PROCESS_FAILED"})
				}
			}
			err := deliverRounds(t, h, clk, chat, jobAs(h, j.ID, tc.state))
			if err != nil && engine.ErrorCode(err) != engine.EUNDELIVERED {
				t.Fatalf("Deliver: %v", err)
			}
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
		if !f.try(chat, true) {
			break
		}
		clk.Add(time.Millisecond)
	}
	const chat = 601
	for range 5 {
		clk.Add(time.Millisecond)
		if f.try(chat, true) {
			t.Fatal("room with the global limit spent")
		}
	}
	for i := range 3 { // the chat never sent: its burst is whole
		if ok, d := f.private.Allow(strconv.Itoa(chat)); !ok {
			t.Fatalf("message %d of the chat's burst of 3 told to wait %s: its room was spent by messages that did not go", i+1, d)
		}
	}
}

// TestDeliverInlineRefusedOnDrainedChat: an inline job's picture is first
// uploaded to the user's private chat (for a file_id), which a user who
// never started the bot refuses (403); the placeholder then says to press
// Start. In a chat whose bucket has room for one message a round (progress
// edits leave it so), the refused upload spent the round's room and the
// edit, made to find room of its own, found none: "post later", and the
// next round's upload, refused again, spent the room again, for good. A
// refused request posts nothing: the edit goes on its room, in the same
// round, and the upload is made once.
func TestDeliverInlineRefusedOnDrainedChat(t *testing.T) {
	clk := testclock.New(time.Now())
	h := newHarness(t, "", nil, withConfig(func(c *Config) { c.Now = clk.Now }))
	const user = 909
	inline := h.fake.NewInline("🎨 Drawing: noise…")
	j := h.storedJobIn(inlineRef(user, inline), engine.EN, testPNG(t, 64, 64, color.White))
	for range 10 { // each round's upload
		h.fake.Fail("sendPhoto", telegramtest.Failure{Code: 403, Description: "Forbidden: bot can't initiate conversation with a user"})
	}
	err := deliverRounds(t, h, clk, user, func() *engine.Job { return h.job(j.ID) })
	if engine.ErrorCode(err) != engine.EUNDELIVERED {
		t.Fatalf("Deliver: %v, want undelivered", err)
	}
	if text, _, _ := h.fake.Inline(inline); !strings.Contains(text, "press Start") {
		t.Fatalf("placeholder %q, want it to say to press Start", text)
	}
	if n := len(h.fake.Calls("sendPhoto")); n != 1 {
		t.Fatalf("%d uploads, want 1", n)
	}
}

// TestDeliverForbiddenOnDrainedChat: a chat that refuses the bot (403:
// blocked, kicked) refuses a fallback there too. A failed job's edit of its
// status message refused, the reply made instead needed room of its own,
// found none in a drained chat, and the next round's edit, refused again,
// spent the room again: "post later" for good; so did the edit made when a
// posted job's status message could not be deleted. Now neither fallback
// is made: the job is undelivered, or its status left as it is.
func TestDeliverForbiddenOnDrainedChat(t *testing.T) {
	forbidden := telegramtest.Failure{Code: 403, Description: "Forbidden: bot was kicked from the group chat"}
	for _, tc := range []struct {
		name   string
		state  engine.State
		sent   string // steps noted as done
		method string // refused
	}{
		{"failed job's edit", engine.StateFailed, "", "editMessageText"},
		{"posted job's delete", engine.StateSucceeded, "1", "deleteMessage"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const chat = 602
			h, clk, j := drainedChat(t, chat, false, tc.sent)
			for range 10 {
				h.fake.Fail(tc.method, forbidden)
				h.fake.Fail("sendMessage", forbidden)
				h.fake.Fail("editMessageText", forbidden)
			}
			err := deliverRounds(t, h, clk, chat, jobAs(h, j.ID, tc.state))
			if err != nil && engine.ErrorCode(err) != engine.EUNDELIVERED {
				t.Fatalf("Deliver: %v", err)
			}
			if n := len(h.fake.Calls(tc.method)); n != 1 {
				t.Fatalf("%d calls of %s, want 1", n, tc.method)
			}
		})
	}
}

// TestDeliverInlineCacheChatRefuses: an inline cache chat that refuses the
// bot (removed from it) is the operator's to mend: the placeholder says
// the picture could not be posted, not that the user should press Start
// (they need not have started the bot when there is a cache chat), and
// the refusal is logged as an error.
func TestDeliverInlineCacheChatRefuses(t *testing.T) {
	const cache = -100777
	h := newHarness(t, "", nil, withConfig(func(c *Config) { c.InlineCacheChat = cache }))
	inline := h.fake.NewInline("🎨 Drawing: noise…")
	j := h.storedJobIn(inlineRef(909, inline), engine.EN, testPNG(t, 64, 64, color.White))
	h.fake.Fail("sendPhoto", telegramtest.Failure{Code: 403, Description: "Forbidden: bot is not a member of the channel chat"})
	if err := h.bot.Deliver(context.Background(), h.job(j.ID)); engine.ErrorCode(err) != engine.EUNDELIVERED {
		t.Fatalf("Deliver: %v, want undelivered", err)
	}
	text, _, _ := h.fake.Inline(inline)
	if text != "The picture could not be posted here. Your quota was refunded." {
		t.Fatalf("placeholder %q", text)
	}
	if logs := h.logs.String(); !strings.Contains(logs, "level=ERROR") || !strings.Contains(logs, "inline_cache_chat") {
		t.Fatalf("the cache chat's refusal is not logged as an error:\n%s", logs)
	}
}

// TestGlobalLimitTurns: twenty results for twenty chats come while the
// bot-wide limit (30 messages a second) is spent, and are stepped as the
// engine steps them, on a hand-moved clock: each told "later" comes back
// after its wait, at least the engine's 50 ms. Each is told its turn
// behind those told before it, so it is tried again about once; told only
// the wait for the next token, all came back at once, one took it and the
// rest were told again, 9 to 19 steps (each a store read) per delivery.
func TestGlobalLimitTurns(t *testing.T) {
	clk := testclock.New(time.Now())
	h := newHarness(t, "", nil, withConfig(func(c *Config) { c.Now = clk.Now; c.GlobalRate = 30 }))
	pic := testPNG(t, 16, 16, color.White)
	const n = 20
	type due struct {
		at time.Time
		j  *engine.Job
	}
	var queue []due
	for i := range n {
		queue = append(queue, due{clk.Now(), h.storedJob(strconv.Itoa(7000+i), true, engine.EN, pic)})
	}
	for chat := int64(1); h.bot.flood.try(chat, true); chat++ { // other chats spend the global limit
	}
	steps := 0
	for len(queue) > 0 {
		next := 0
		for i, d := range queue {
			if d.at.Before(queue[next].at) {
				next = i
			}
		}
		d := queue[next]
		queue = append(queue[:next], queue[next+1:]...)
		if d.at.After(clk.Now()) {
			clk.Set(d.at)
		}
		steps++
		if steps > 10*n {
			t.Fatalf("%d steps and %d deliveries still to go", steps, len(queue)+1)
		}
		err := h.bot.Deliver(context.Background(), d.j)
		if after, later := engine.AsLater(err); later {
			queue = append(queue, due{clk.Now().Add(max(after, 50*time.Millisecond)), h.job(d.j.ID)}) // the engine's minLater
			continue
		}
		if err != nil {
			t.Fatalf("Deliver %s: %v", d.j.ID, err)
		}
	}
	if max := 2 * n; steps > max {
		t.Errorf("%d steps for %d deliveries through a spent global limit: want at most %d, each tried again about once", steps, n, max)
	}
	t.Logf("%d steps for %d deliveries", steps, n)
	for i := range n {
		if got := len(ok(inChat(h, "sendPhoto", strconv.Itoa(7000+i)))); got != 1 {
			t.Errorf("chat %d: %d photos, want 1", 7000+i, got)
		}
	}
}
