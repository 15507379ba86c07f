package telegram

import (
	"cmp"
	"context"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"
	"github.com/picbot/picbot/engine"
)

// Keys of the adapter's settings in the store.
const (
	keyOffset = "tg:offset" // the next update id to ask getUpdates for
	keySeen   = "tg:seen"   // recently handled update ids, space-separated, oldest first
	keyAlbums = "tg:albums" // albums received but not yet handled: JSON
	// keyAlbumsTaken marks the albums being handled, id → unix ms, so that
	// replicas sharing the store handle each once (see takeAlbum).
	keyAlbumsTaken = "tg:albums-taken"
)

// minPoll is the least time between two getUpdates that found nothing.
const minPoll = 250 * time.Millisecond

// seenKept is how many handled update ids the store remembers.
const seenKept = 1000

// handleTimeout bounds the handling of one update. Shutdown does not cut it
// short at once: a command under way has shutdownGrace to be answered.
const (
	handleTimeout = 2 * time.Minute
	shutdownGrace = 10 * time.Second
)

// handling is the context an update is handled under.
func handling(ctx context.Context) (context.Context, context.CancelFunc) {
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), handleTimeout)
	stop := context.AfterFunc(ctx, func() { time.AfterFunc(shutdownGrace, cancel) })
	return hctx, func() {
		stop()
		cancel()
	}
}

// allowedUpdates are the update types the bot asks for.
// edited_message and edited_channel_post are not among them: an edited
// command is not run again.
var allowedUpdates = []string{"message", "channel_post", "callback_query", "inline_query", "chosen_inline_result", "pre_checkout_query"}

// hello asks getMe for the bot's username, retrying while the network or
// the server is down. A token the server refuses is an error.
func (b *Bot) hello(ctx context.Context) error {
	wait := time.Second
	for {
		cctx, cancel := context.WithTimeout(ctx, callTimeout)
		raw, err := b.api.call(cctx, "getMe", nil)
		cancel()
		if err == nil {
			var me tgbotapi.User
			if err = json.Unmarshal(raw, &me); err == nil && me.UserName != "" {
				b.username = me.UserName
				b.log.Info("telegram bot ready", slog.String("username", me.UserName), slog.String("mode", b.cfg.Mode))
				return nil
			}
			err = fmt.Errorf("getMe: no username in %s", raw)
		}
		if te, ok := apiError(err); ok && (te.Code == 401 || te.Code == 404) {
			err = fmt.Errorf("telegram: the Bot API refused the token (check telegram.token and telegram.api_endpoint): %w", err)
			b.log.Error("telegram stopped", slog.Any("err", err))
			return err
		}
		b.log.Warn("telegram getMe failed; retrying", slog.Duration("in", wait), slog.Any("err", err))
		if err := sleep(ctx, wait); err != nil {
			return err
		}
		wait = min(wait*2, time.Minute)
	}
}

// setCommands fills the command menu, in English and Chinese, for private
// chats and groups. Best effort: a failure is logged.
func (b *Bot) setCommands(ctx context.Context) {
	for _, scope := range []tgbotapi.BotCommandScope{{Type: "all_private_chats"}, {Type: "all_group_chats"}} {
		for _, lang := range []engine.Lang{engine.EN, engine.ZH} {
			cfg := tgbotapi.SetMyCommandsConfig{Commands: menu(lang), Scope: &scope}
			if lang == engine.ZH {
				cfg.LanguageCode = "zh"
			}
			if _, err := b.post(ctx, 0, false, callTimeout, fixed(cfg)); err != nil {
				if ctx.Err() != nil {
					return
				}
				b.log.Warn("setMyCommands failed", slog.String("scope", scope.Type), slog.String("lang", string(lang)), slog.Any("err", err))
			}
		}
	}
}

// setWebhook registers the webhook with its secret token, retrying while
// the network is down.
func (b *Bot) setWebhook(ctx context.Context) error {
	updates, _ := json.Marshal(allowedUpdates)
	p := tgbotapi.Params{"url": b.cfg.WebhookURL, "secret_token": b.cfg.WebhookSecret, "allowed_updates": string(updates)}
	wait := time.Second
	for {
		cctx, cancel := context.WithTimeout(ctx, callTimeout)
		_, err := b.api.call(cctx, "setWebhook", p)
		cancel()
		if err == nil {
			b.log.Info("telegram webhook set", slog.String("path", b.hookPath))
			return nil
		}
		if d := retryAfter(err); d > 0 {
			wait = d
		} else if isBadRequest(err) {
			return fmt.Errorf("telegram: setWebhook refused telegram.webhook_url: %w", err)
		}
		b.log.Warn("telegram setWebhook failed; retrying", slog.Duration("in", wait), slog.Any("err", err))
		if err := sleep(ctx, wait); err != nil {
			return err
		}
		wait = min(wait*2, time.Minute)
	}
}

// loadState reads the handled update ids and the albums left from the last run.
func (b *Bot) loadState(ctx context.Context) error {
	var seen, albums string
	if err := b.settings.View(ctx, func(c engine.Counters) error {
		seen, albums = c.Setting(keySeen), c.Setting(keyAlbums)
		return nil
	}); err != nil {
		return fmt.Errorf("telegram: load state: %w", err)
	}
	b.mu.Lock()
	for _, f := range strings.Fields(seen) {
		if id, err := strconv.Atoi(f); err == nil {
			b.seen[id] = true
		}
	}
	b.mu.Unlock()
	pending := map[string][]update{}
	if albums != "" {
		if err := json.Unmarshal([]byte(albums), &pending); err != nil {
			b.log.Error("stored albums unreadable; dropped", slog.Any("err", err))
		}
	}
	for id, parts := range pending {
		b.mu.Lock()
		b.albums[id] = &album{parts: parts}
		b.mu.Unlock()
		// After the usual wait: another replica sharing the store may still
		// be collecting it, and handles it first (takeAlbum).
		b.scheduleAlbum(id, b.cfg.AlbumWait)
	}
	return nil
}

// poll is the long-polling loop. Each batch is handled, one goroutine per
// chat so a slow chat holds up no other, each chat's updates in order (the
// replies wait in the chat's outbox, not here); only
// then is the offset stored, and only then asked of Telegram, which forgets
// the updates below it. A crash mid-batch fetches the batch again, and the
// handled ids make the second pass skip what the first did.
func (b *Bot) poll(ctx context.Context) error {
	if _, err := b.post(ctx, 0, false, callTimeout, fixed(tgbotapi.DeleteWebhookConfig{})); err != nil && ctx.Err() == nil {
		b.log.Warn("deleteWebhook failed", slog.Any("err", err))
	}
	offset, err := b.storedOffset(ctx)
	if err != nil {
		return err
	}
	failures := 0
	for ctx.Err() == nil {
		asked := time.Now()
		updates, err := b.getUpdates(ctx, offset)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			failures++
			wait := min(time.Duration(failures)*time.Second, 30*time.Second)
			if d := retryAfter(err); d > 0 {
				wait = d
			}
			b.log.Warn("getUpdates failed", slog.Duration("retry_in", wait), slog.Any("err", err))
			if sleep(ctx, wait) != nil {
				break
			}
			continue
		}
		failures = 0
		if len(updates) == 0 {
			// A server that does not hold the long poll is not asked in a tight loop.
			if wait := minPoll - time.Since(asked); wait > 0 && sleep(ctx, wait) != nil {
				break
			}
			continue
		}
		next, ok := b.handleBatch(ctx, updates, offset)
		if !ok && sleep(ctx, time.Second) != nil {
			break // the store failed: not in a tight loop
		}
		if next > offset {
			if err := b.settings.Update(context.WithoutCancel(ctx), func(c engine.Counters) error {
				if cur, _ := strconv.Atoi(c.Setting(keyOffset)); next > cur {
					c.SetSetting(keyOffset, strconv.Itoa(next))
				}
				return nil
			}); err != nil {
				b.log.Error("store offset", slog.Any("err", err))
				continue // ask again from the old offset; handled ids are skipped
			}
			offset = next
		}
	}
	return nil
}

func (b *Bot) storedOffset(ctx context.Context) (int, error) {
	var offset int
	err := b.settings.View(ctx, func(c engine.Counters) error {
		offset, _ = strconv.Atoi(c.Setting(keyOffset))
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("telegram: load offset: %w", err)
	}
	return offset, nil
}

func (b *Bot) getUpdates(ctx context.Context, offset int) ([]update, error) {
	timeout := int(b.cfg.PollTimeout / time.Second)
	cctx, cancel := context.WithTimeout(ctx, b.cfg.PollTimeout+callTimeout)
	defer cancel()
	raw, err := b.api.do(cctx, tgbotapi.UpdateConfig{Offset: offset, Limit: 100, Timeout: timeout, AllowedUpdates: allowedUpdates})
	if err != nil {
		return nil, err
	}
	var updates []update
	if err := json.Unmarshal(raw, &updates); err != nil {
		return nil, fmt.Errorf("getUpdates: %w", err)
	}
	slices.SortFunc(updates, func(a, b update) int { return cmp.Compare(a.UpdateID, b.UpdateID) })
	return updates, nil
}

// handleBatch handles updates and returns the offset to store: past the
// last update, or, with ok false, at the first one whose handling could not
// be recorded.
func (b *Bot) handleBatch(ctx context.Context, updates []update, offset int) (next int, ok bool) {
	byChat := map[int64][]update{}
	var order []int64
	for _, u := range updates {
		if u.UpdateID < offset {
			continue
		}
		key := chatOf(&u)
		if _, ok := byChat[key]; !ok {
			order = append(order, key)
		}
		byChat[key] = append(byChat[key], u)
	}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		failedAt = -1
	)
	for _, key := range order {
		wg.Go(func() {
			for _, u := range byChat[key] {
				if err := b.dispatch(ctx, u); err != nil {
					b.log.Error("update not recorded; it will be fetched again", slog.Int("update_id", u.UpdateID), slog.Any("err", err))
					mu.Lock()
					if failedAt < 0 || u.UpdateID < failedAt {
						failedAt = u.UpdateID
					}
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	if failedAt >= 0 {
		return failedAt, false
	}
	return updates[len(updates)-1].UpdateID + 1, true
}

func chatOf(u *update) int64 {
	switch {
	case u.Message != nil && u.Message.Chat != nil:
		return u.Message.Chat.ID
	case u.ChannelPost != nil && u.ChannelPost.Chat != nil:
		return u.ChannelPost.Chat.ID
	case u.CallbackQuery != nil && u.CallbackQuery.Message != nil && u.CallbackQuery.Message.Chat != nil:
		return u.CallbackQuery.Message.Chat.ID
	case u.ChosenInlineResult != nil && u.ChosenInlineResult.From != nil:
		return u.ChosenInlineResult.From.ID // a user's inline jobs in order, beside the chats'
	case u.InlineQuery != nil && u.InlineQuery.From != nil:
		return u.InlineQuery.From.ID
	}
	return 0
}

// serveWebhook takes one update from Telegram. The secret token must match;
// the answer is 200 once the update is handled and recorded (its job made,
// its id marked), so Telegram sends again what the bot did not take. Replies
// and status messages go out afterwards, from the chat's outbox: the answer
// never waits for a chat's flood limit.
func (b *Bot) serveWebhook(w http.ResponseWriter, r *http.Request) {
	got := r.Header.Get(SecretHeader)
	if b.cfg.WebhookSecret == "" || subtle.ConstantTimeCompare([]byte(got), []byte(b.cfg.WebhookSecret)) != 1 {
		http.Error(w, "forbidden", http.StatusForbidden)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		http.Error(w, "bad body", http.StatusBadRequest)
		return
	}
	var u update
	if err := json.Unmarshal(body, &u); err != nil {
		http.Error(w, "bad update", http.StatusBadRequest)
		return
	}
	select {
	case <-b.ready:
	case <-r.Context().Done():
		return
	case <-time.After(10 * time.Second):
		http.Error(w, "starting", http.StatusServiceUnavailable)
		return
	}
	ctx := b.context()
	if err := b.dispatch(ctx, u); err != nil {
		b.log.Error("webhook update not recorded", slog.Int("update_id", u.UpdateID), slog.Any("err", err))
		http.Error(w, "try again", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, "{}")
}

// context is the context updates are handled under: Run's, or, before Run, a background one.
func (b *Bot) context() context.Context {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.runCtx != nil {
		return b.runCtx
	}
	return context.Background()
}

// dispatch handles one update once. It returns an error only when the
// update's handling could not be recorded in the store.
func (b *Bot) dispatch(ctx context.Context, u update) error {
	if !b.claim(u.UpdateID) {
		return nil
	}
	defer b.release(u.UpdateID)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	hctx, cancel := handling(ctx)
	defer cancel()
	switch {
	case u.Message != nil && u.Message.MediaGroupID != "" && b.chatAllowed(u.Message.Chat):
		return b.collect(hctx, u)
	case u.Message != nil && u.Message.SuccessfulPayment != nil:
		if err := b.onPaid(hctx, u.Message, u.messageTopic()); err != nil {
			return fmt.Errorf("credit payment of update %d: %w", u.UpdateID, err)
		}
	case u.Message != nil:
		if err := b.onMessage(hctx, u.UpdateID, u.Message, u.messageTopic(), nil); err != nil {
			return err
		}
	case u.ChannelPost != nil:
		if err := b.onMessage(hctx, u.UpdateID, u.ChannelPost, u.messageTopic(), nil); err != nil {
			return err
		}
	case u.CallbackQuery != nil:
		b.onCallback(hctx, u.UpdateID, u.CallbackQuery, u.messageTopic())
	case u.InlineQuery != nil:
		b.onInlineQuery(hctx, u.InlineQuery)
	case u.ChosenInlineResult != nil:
		b.onChosen(hctx, u.ChosenInlineResult)
	case u.PreCheckoutQuery != nil:
		b.onPreCheckout(hctx, u.PreCheckoutQuery)
	}
	return b.markSeen(hctx, u.UpdateID, nil)
}

// claim reserves update id for handling; false if it was handled or is being handled.
func (b *Bot) claim(id int) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.seen[id] || b.inflight[id] {
		return false
	}
	b.inflight[id] = true
	return true
}

func (b *Bot) release(id int) {
	b.mu.Lock()
	delete(b.inflight, id)
	b.mu.Unlock()
}

// markSeen records update ids as handled, and changes the stored albums
// with albums (nil: no change) in the same transaction.
func (b *Bot) markSeen(ctx context.Context, id int, albums func(map[string][]update)) error {
	err := b.settings.Update(ctx, func(c engine.Counters) error {
		ids := strings.Fields(c.Setting(keySeen))
		if id != 0 {
			ids = append(ids, strconv.Itoa(id))
		}
		if len(ids) > seenKept {
			ids = ids[len(ids)-seenKept:]
		}
		c.SetSetting(keySeen, strings.Join(ids, " "))
		if albums != nil {
			pending := map[string][]update{}
			if s := c.Setting(keyAlbums); s != "" {
				if err := json.Unmarshal([]byte(s), &pending); err != nil {
					pending = map[string][]update{}
				}
			}
			albums(pending)
			if len(pending) == 0 {
				c.SetSetting(keyAlbums, "")
			} else {
				data, err := json.Marshal(pending)
				if err != nil {
					return err
				}
				c.SetSetting(keyAlbums, string(data))
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("record update %d: %w", id, err)
	}
	if id != 0 {
		b.mu.Lock()
		b.seen[id] = true
		if len(b.seen) > 4*seenKept {
			// Ids only grow; forget the oldest half.
			ids := make([]int, 0, len(b.seen))
			for k := range b.seen {
				ids = append(ids, k)
			}
			slices.Sort(ids)
			for _, k := range ids[:len(ids)/2] {
				delete(b.seen, k)
			}
		}
		b.mu.Unlock()
	}
	return nil
}

// outboxKept is how many replies may wait for one chat; more are dropped.
const outboxKept = 200

// outbox is a chat's replies waiting for its flood limit, sent in order by
// one goroutine while there are any. Intake and the webhook hand replies
// here and go on, so a flooded chat holds up no other chat and no update.
type outbox struct {
	queue []func(ctx context.Context)
}

// outbox queues send for chat to. A reply lost to a crash before it goes
// out is not sent again; a job's own messages come from the engine.
func (b *Bot) outbox(to int64, send func(ctx context.Context)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	o := b.outboxes[to]
	if o != nil {
		if len(o.queue) >= outboxKept {
			b.log.Warn("too many replies waiting for the chat; one dropped", slog.Int64("chat_id", to))
			return
		}
		o.queue = append(o.queue, send)
		return
	}
	o = &outbox{queue: []func(context.Context){send}}
	b.outboxes[to] = o
	b.workers.Add(1)
	go b.drain(to, o)
}

// drain sends chat to's replies until none are left, or Run ends.
func (b *Bot) drain(to int64, o *outbox) {
	defer b.workers.Done()
	for {
		ctx := b.context()
		b.mu.Lock()
		if len(o.queue) == 0 || ctx.Err() != nil {
			delete(b.outboxes, to)
			b.mu.Unlock()
			return
		}
		send := o.queue[0]
		o.queue = o.queue[1:]
		b.mu.Unlock()
		hctx, cancel := handling(ctx)
		send(hctx)
		cancel()
	}
}

// album is a media group being collected: Telegram sends each photo of an
// album as its own message, with the caption on one of them.
type album struct {
	parts    []update
	timer    *time.Timer
	deferred bool // once waited for a replica holding a later part
}

// albumTakenFor is how long an album taken by one replica is left to it
// before another may take it: longer than handling an album takes (its
// job made), so only a taker that died is taken over.
const albumTakenFor = 30 * time.Second

// collect keeps an album's part, in the store as well, and (re)starts the
// wait for the rest. The part counts as handled once it is stored.
func (b *Bot) collect(ctx context.Context, u update) error {
	id := albumID(u.Message)
	err := b.markSeen(ctx, u.UpdateID, func(pending map[string][]update) {
		if !slices.ContainsFunc(pending[id], func(p update) bool { return p.UpdateID == u.UpdateID }) {
			pending[id] = append(pending[id], u)
		}
	})
	if err != nil {
		return err
	}
	b.mu.Lock()
	a := b.albums[id]
	if a == nil {
		a = &album{}
		b.albums[id] = a
	}
	a.parts = append(a.parts, u)
	b.mu.Unlock()
	b.scheduleAlbum(id, b.cfg.AlbumWait)
	return nil
}

func albumID(m *tgbotapi.Message) string {
	return strconv.FormatInt(m.Chat.ID, 10) + "/" + m.MediaGroupID
}

// scheduleAlbum handles album id after d, unless another part comes first.
func (b *Bot) scheduleAlbum(id string, d time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	a := b.albums[id]
	if a == nil {
		return
	}
	if a.timer != nil {
		a.timer.Stop()
	}
	var t *time.Timer
	t = time.AfterFunc(d, func() {
		b.mu.Lock()
		current := b.albums[id] != nil && b.albums[id].timer == t
		b.mu.Unlock()
		if current && b.enter() {
			defer b.workers.Done()
			b.handleAlbum(id)
		}
	})
	a.timer = t
}

// enter counts a background task that Run waits for; false once Run is ending.
func (b *Bot) enter() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return false
	}
	b.workers.Add(1)
	return true
}

// handleAlbum runs the command an album carries, then forgets the album.
func (b *Bot) handleAlbum(id string) {
	ctx := b.context()
	if ctx.Err() != nil {
		return // kept in the store: the next run handles it
	}
	b.mu.Lock()
	a := b.albums[id]
	var parts []update
	if a != nil {
		parts = slices.Clone(a.parts)
	}
	b.mu.Unlock()
	hctx, cancel := handling(ctx)
	defer cancel()
	parts, wait, ok := b.takeAlbum(hctx, id, parts)
	if !ok {
		b.mu.Lock()
		if a := b.albums[id]; a != nil && wait > 0 {
			a.deferred = true
		} else {
			delete(b.albums, id)
		}
		b.mu.Unlock()
		if wait > 0 {
			b.scheduleAlbum(id, wait)
		}
		return
	}
	slices.SortFunc(parts, func(x, y update) int { return cmp.Compare(x.Message.MessageID, y.Message.MessageID) })
	parts = slices.CompactFunc(parts, func(x, y update) bool { return x.UpdateID == y.UpdateID })
	// The command is the first caption that is one; without one the album is ignored.
	cmdIdx := slices.IndexFunc(parts, func(p update) bool { return isCommand(p.Message.Caption) })
	msgs := make([]*tgbotapi.Message, len(parts))
	for i := range parts {
		msgs[i] = parts[i].Message
	}
	lead := max(cmdIdx, 0)
	if lead < len(parts) {
		if err := b.onMessage(hctx, parts[lead].UpdateID, parts[lead].Message, parts[lead].messageTopic(), msgs); err != nil {
			// The store could not record the job: the album stays stored, and
			// is taken again (here or by another replica) once its mark passes.
			b.log.Error("album not recorded; it will be tried again", slog.String("album", id), slog.Any("err", err))
			b.mu.Lock()
			if a := b.albums[id]; a != nil {
				a.deferred = true
			}
			b.mu.Unlock()
			b.scheduleAlbum(id, albumTakenFor+time.Second)
			return
		}
	}
	err := b.markSeen(hctx, 0, func(pending map[string][]update) { delete(pending, id) })
	if err == nil {
		err = b.settings.Update(hctx, func(c engine.Counters) error {
			taken := readTaken(c)
			delete(taken, id)
			return writeTaken(c, taken)
		})
	}
	if err != nil {
		b.log.Error("forget album", slog.Any("err", err))
	}
	b.mu.Lock()
	delete(b.albums, id)
	b.mu.Unlock()
}

// takeAlbum decides, in one transaction of the shared store, whether this
// process handles album id now, with the parts it holds (local) and those
// other replicas stored: several replicas behind a load balancer each get
// some of an album's parts. The replica holding the latest part handles
// it, once its wait after that part is over; another waits (wait > 0)
// once for it and then takes the album itself, its holder presumably dead.
// An album another replica took less than albumTakenFor ago is left to it
// (asked again then); one gone from the store was handled (ok false, wait 0).
func (b *Bot) takeAlbum(ctx context.Context, id string, local []update) (parts []update, wait time.Duration, ok bool) {
	b.mu.Lock()
	deferred := b.albums[id] != nil && b.albums[id].deferred
	b.mu.Unlock()
	latest := 0
	for _, p := range local {
		latest = max(latest, p.UpdateID)
	}
	now := time.Now()
	err := b.settings.Update(ctx, func(c engine.Counters) error {
		pending := map[string][]update{}
		if s := c.Setting(keyAlbums); s != "" {
			_ = json.Unmarshal([]byte(s), &pending)
		}
		stored, there := pending[id]
		if !there {
			return nil
		}
		taken := readTaken(c)
		if at, ok := taken[id]; ok && now.Sub(time.UnixMilli(at)) < albumTakenFor {
			wait = albumTakenFor - now.Sub(time.UnixMilli(at)) + time.Second
			return nil
		}
		if !deferred && slices.ContainsFunc(stored, func(p update) bool { return p.UpdateID > latest }) {
			wait = 2 * b.cfg.AlbumWait
			return nil
		}
		taken[id] = now.UnixMilli()
		parts, ok = append(slices.Clone(local), stored...), true
		return writeTaken(c, taken)
	})
	if err != nil {
		// Unknown whether another replica took it: try again later.
		b.log.Error("take album", slog.String("album", id), slog.Any("err", err))
		return nil, b.cfg.AlbumWait, false
	}
	return parts, wait, ok
}

func readTaken(c engine.Counters) map[string]int64 {
	out := map[string]int64{}
	if s := c.Setting(keyAlbumsTaken); s != "" {
		_ = json.Unmarshal([]byte(s), &out)
	}
	return out
}

func writeTaken(c engine.Counters, m map[string]int64) error {
	if len(m) == 0 {
		c.SetSetting(keyAlbumsTaken, "")
		return nil
	}
	data, err := json.Marshal(m)
	if err != nil {
		return err
	}
	c.SetSetting(keyAlbumsTaken, string(data))
	return nil
}

// chatAllowed reports whether the bot serves chat.
func (b *Bot) chatAllowed(c *tgbotapi.Chat) bool {
	if c == nil {
		return false
	}
	return b.allowed == nil || b.allowed[c.ID]
}
