package telegram

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"
	"github.com/picbot/picbot/engine"
	"github.com/picbot/picbot/quota"
)

// Call deadlines.
const (
	callTimeout   = 30 * time.Second
	uploadTimeout = 5 * time.Minute
)

// flood keeps the bot inside Telegram's limits: about one message a second
// in a private chat, twenty a minute in a group, thirty a second in all; and
// after a 429, nothing to that chat until retry_after has passed.
type flood struct {
	private, group, global *quota.Keyed
	every                  time.Duration // between two of the global limit's tokens
	now                    func() time.Time

	mu     sync.Mutex
	paused map[int64]time.Time // chat id → no calls before; 0: every chat
	seq    uint64
	line   map[string]turn // deliveries told to wait for the global limit → their turn
}

func newFlood(cfg Config) *flood {
	every := time.Second / time.Duration(cfg.GlobalRate)
	return &flood{
		private: quota.NewKeyed(cfg.PrivateEvery, 3, cfg.Now),
		group:   quota.NewKeyed(cfg.GroupEvery, 3, cfg.Now),
		global:  quota.NewKeyed(every, cfg.GlobalRate, cfg.Now),
		every:   every,
		now:     cfg.Now,
		paused:  make(map[int64]time.Time),
		line:    make(map[string]turn),
	}
}

// turn is a delivery's place in line for the global limit, and until when
// it counts as waiting there.
type turn struct {
	place uint64
	until time.Time
}

// minLater is the engine's least wait after a Later: the soonest a
// delivery told to come back does.
const minLater = 50 * time.Millisecond

// turn is how long delivery id, finding no room in the bot-wide limit for
// d, should wait: until its turn, after one token for each delivery told
// to wait before it, still waiting (it keeps its place when it comes back
// to find none again). Told d alone, every one of them came back at once
// (the engine's least wait, 50 ms, for a token every 33 ms), one took the
// token and the rest were told again: 9 to 19 steps, each with a store
// read, for one delivery.
func (f *flood) turn(id string, d time.Duration) time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now()
	me, ok := f.line[id]
	if !ok || !me.until.After(now) {
		f.seq++
		me.place = f.seq
	}
	ahead := 0
	for k, t := range f.line {
		switch {
		case !t.until.After(now):
			delete(f.line, k) // gone: posted elsewhere, failed, or shut down
		case t.place < me.place:
			ahead++
		}
	}
	wait := d + time.Duration(ahead)*f.every
	me.until = now.Add(wait + wait/2 + minLater)
	f.line[id] = me
	return wait
}

// served takes delivery id out of the global limit's line: it found room.
func (f *flood) served(id string) {
	f.mu.Lock()
	delete(f.line, id)
	f.mu.Unlock()
}

func (f *flood) limiter(private bool) *quota.Keyed {
	if private {
		return f.private
	}
	return f.group
}

// pausedFor is how long calls to chat to must still wait after a 429.
func (f *flood) pausedFor(to int64) time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now()
	until := f.paused[to]
	if all := f.paused[0]; all.After(until) {
		until = all
	}
	return until.Sub(now)
}

// pause holds every call to chat to (0: to all chats) for d.
func (f *flood) pause(to int64, d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now()
	for id, until := range f.paused {
		if !until.After(now) {
			delete(f.paused, id)
		}
	}
	if until := now.Add(d); until.After(f.paused[to]) {
		f.paused[to] = until
	}
}

// wait blocks until a message to chat to (0: no chat) may go.
func (f *flood) wait(ctx context.Context, to int64, private bool) error {
	for {
		d := f.pausedFor(to)
		if d <= 0 {
			break
		}
		if err := sleep(ctx, d); err != nil {
			return err
		}
	}
	if to != 0 {
		if err := f.limiter(private).Wait(ctx, strconv.FormatInt(to, 10)); err != nil {
			return err
		}
	}
	return f.global.Wait(ctx, "all")
}

// room takes room for a message to chat to now, or, taking nothing, says
// how long until there is some: the chat's 429 pause, its own limit, the
// bot's global one (global: the wait is that one's). The chat's token is
// given back when the global limit says no, so a message that does not go
// spends nothing (a delivery retried while other chats kept the global
// limit busy once found its chat empty at every try).
func (f *flood) room(to int64, private bool) (wait time.Duration, global bool) {
	if d := f.pausedFor(to); d > 0 {
		return d, false
	}
	wait, undo := f.limiter(private).Reserve(strconv.FormatInt(to, 10))
	if wait > 0 {
		return wait, false
	}
	if ok, d := f.global.Allow("all"); !ok {
		undo()
		return d, true
	}
	return 0, false
}

// peek is room without taking any.
func (f *flood) peek(to int64, private bool) (wait time.Duration, global bool) {
	if d := f.pausedFor(to); d > 0 {
		return d, false
	}
	if ok, d := f.limiter(private).Peek(strconv.FormatInt(to, 10)); !ok {
		return d, false
	}
	_, d := f.global.Peek("all")
	return d, d > 0
}

// later is the *engine.Later for delivery id told by room or peek to wait
// d: after its turn in line when the wait is the global limit's. One that
// waits for its chat leaves the line: it takes no global token till then,
// and would only put off those behind it.
func (f *flood) later(id string, d time.Duration, global bool) error {
	if !global {
		f.served(id)
		return &engine.Later{After: d}
	}
	return &engine.Later{After: f.turn(id, d)}
}

// try takes room for a message to chat to, if there is some now: for progress
// edits, which are skipped rather than delayed.
func (f *flood) try(to int64, private bool) bool { d, _ := f.room(to, private); return d == 0 }

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// retryAfter is the wait a 429 asks for; 0 for any other error. The SDK
// reports it in Error.RetryAfter, and on uploads without a status code.
func retryAfter(err error) time.Duration {
	var te *tgbotapi.Error
	if !errors.As(err, &te) {
		return 0
	}
	if te.RetryAfter > 0 {
		return time.Duration(te.RetryAfter) * time.Second
	}
	if te.Code == 429 || strings.HasPrefix(te.Message, "Too Many Requests") {
		return 3 * time.Second
	}
	return 0
}

// apiError is the Bot API's own error in err's chain, if any.
func apiError(err error) (*tgbotapi.Error, bool) {
	var te *tgbotapi.Error
	ok := errors.As(err, &te)
	return te, ok
}

// isBadRequest reports a 400: the request itself is wrong and will not succeed as it is.
func isBadRequest(err error) bool {
	te, ok := apiError(err)
	return ok && (te.Code == 400 || strings.HasPrefix(te.Message, "Bad Request"))
}

// isForbidden reports a 403: the bot may not write to the chat (blocked, kicked).
func isForbidden(err error) bool {
	te, ok := apiError(err)
	return ok && (te.Code == 403 || strings.HasPrefix(te.Message, "Forbidden"))
}

// cannotPost reports that the bot may not post to the chat at all: a 403
// (blocked, kicked, a user who never started the bot) or a chat that is
// not there. Another request to that chat is refused as well.
func cannotPost(err error) bool { return isForbidden(err) || hasText(err, "chat not found") }

// hasText reports whether the API error's description contains s, case-insensitively.
func hasText(err error, s string) bool {
	te, ok := apiError(err)
	return ok && strings.Contains(strings.ToLower(te.Message), strings.ToLower(s))
}

// post sends a request that must go through: a reply, a result. It waits
// for the limiters and, after a 429, for retry_after, then sends again,
// until ctx ends. build makes the request afresh for each try (an upload's
// reader is spent by a try) and may return a func that releases it.
func (b *Bot) post(ctx context.Context, to int64, private bool, timeout time.Duration, build builder) (json.RawMessage, error) {
	for {
		if err := b.waitRoom(ctx, to, private); err != nil {
			return nil, err
		}
		raw, d, err := b.once(ctx, to, timeout, build)
		if d > 0 {
			b.log.Warn("flood control: waiting", slog.Int64("chat_id", to), slog.Duration("retry_after", d))
			continue
		}
		return raw, err
	}
}

// once makes one request built by build; after a 429 it pauses the chat and
// returns retry_after.
func (b *Bot) once(ctx context.Context, to int64, timeout time.Duration, build builder) (json.RawMessage, time.Duration, error) {
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c, release, err := build(cctx)
	if err != nil {
		return nil, 0, err
	}
	raw, err := b.api.do(cctx, c)
	if release != nil {
		release()
	}
	if d := retryAfter(err); d > 0 {
		b.flood.pause(to, d)
		return nil, d, err
	}
	return raw, 0, err
}

// send is post for the engine's calls (Deliver): it never waits. When the
// chat's limits or a 429 say not now, it returns *engine.Later with the wait,
// having taken nothing, and the engine comes back then; no worker sleeps.
func (b *Bot) send(ctx context.Context, to int64, private bool, timeout time.Duration, build builder) (json.RawMessage, error) {
	if d, _ := b.flood.room(to, private); d > 0 {
		return nil, &engine.Later{After: d}
	}
	return b.sendRoomed(ctx, to, timeout, build)
}

// sendRoomed is send once the chat's room is taken.
func (b *Bot) sendRoomed(ctx context.Context, to int64, timeout time.Duration, build builder) (json.RawMessage, error) {
	raw, d, err := b.once(ctx, to, timeout, build)
	if d > 0 {
		b.log.Warn("flood control: delivery later", slog.Int64("chat_id", to), slog.Duration("retry_after", d))
		return nil, &engine.Later{After: d}
	}
	return raw, err
}

// waitRoom waits for room for a message to chat to. The wait ends with Run
// as well: waiting for a flood limit is not worth a shutdown's grace, which
// is for calls under way.
func (b *Bot) waitRoom(ctx context.Context, to int64, private bool) error {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(b.context(), cancel)()
	return b.flood.wait(wctx, to, private)
}

// builder makes a request for one try. Its ctx is the try's (the caller's,
// within the call's timeout): what it opens to read (an upload's images)
// reads under it, so a read that waits (a store's busy connection pool)
// ends with the try, and with the post lane's hold it is made in.
type builder func(ctx context.Context) (tgbotapi.Chattable, func(), error)

// fixed builds the same request for every try.
func fixed(c tgbotapi.Chattable) builder {
	return func(context.Context) (tgbotapi.Chattable, func(), error) { return c, nil, nil }
}

// sent decodes the message a send method returns.
func sent(raw json.RawMessage) (tgbotapi.Message, error) {
	var m tgbotapi.Message
	err := json.Unmarshal(raw, &m)
	return m, err
}
