package telegram

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"
	"github.com/picbot/picbot/bots/chat"
	"github.com/picbot/picbot/engine"
)

// SetWake implements engine.Waker: a delivery told to come back later for
// a busy post lane is called back when a lane frees (postlane.Lanes.SetWake).
func (b *Bot) SetWake(wake func(jobID string)) { b.lanes.SetWake(wake) }

// Watching implements engine.Watcher: every job has a status message,
// edited as it moves, until it ends.
func (b *Bot) Watching(j *engine.Job) bool { return !j.State.Terminal() }

// Notes the adapter keeps on jobs (engine.Annotate), so they survive a restart.
const (
	metaStatus      = "tg_status"       // the status message's id
	metaStatusPhoto = "tg_status_photo" // "1" when the status message is a photo (a vendor's preview)
	metaSent        = "tg_sent"         // how many delivery steps are done
)

// Telegram's limits on a photo; anything beyond goes as a document.
const (
	maxPhotoBytes = 10_000_000
	maxPhotoSides = 10000 // width + height
	maxPhotoRatio = 20
	maxAlbum      = 10
	maxButtons    = 20 // results that get vary and upscale buttons under an album
)

// jobState is what the adapter keeps in memory about a job: its status
// message and the pacing of its edits. Its lock keeps the command's reply,
// progress edits and delivery of one job in order.
type jobState struct {
	mu       sync.Mutex
	status   int // the status message's id; 0: none known; -1: gone
	photo    bool
	lastEdit time.Time
	lastText string
	// lastPreview is the preview shown last (chat.PreviewKey): a vendor
	// repeats its latest one, so that one the edit limit skipped is shown later.
	lastPreview uint64
	replied     bool // the command's reply was handled in this process
	pending     bool // the status message waits in the chat's outbox
	done        bool // delivered or told

	doneAt time.Time // guarded by Bot.mu
}

// state returns job id's state, made on first use. Finished states are
// dropped after a while.
func (b *Bot) state(id string) *jobState {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.cfg.Now()
	if now.Sub(b.swept) > time.Minute {
		b.swept = now
		for k, st := range b.states {
			if !st.doneAt.IsZero() && now.Sub(st.doneAt) > 10*time.Minute {
				delete(b.states, k)
			}
		}
	}
	st, ok := b.states[id]
	if !ok {
		st = &jobState{}
		b.states[id] = st
	}
	return st
}

// finish marks a job's state done. Called with st.mu held.
func (b *Bot) finish(id string, st *jobState) {
	st.done = true
	b.mu.Lock()
	defer b.mu.Unlock()
	if st.replied {
		delete(b.states, id)
	} else {
		st.doneAt = b.cfg.Now() // the command's reply may still come; it will find this
	}
}

// statusOf returns the status message of j. Called with st.mu held.
func (b *Bot) statusOf(st *jobState, j *engine.Job) (id int, photo bool) {
	if st.status == 0 {
		if n, err := strconv.Atoi(j.Meta[metaStatus]); err == nil && n > 0 {
			st.status, st.photo = n, j.Meta[metaStatusPhoto] == "1"
		}
	}
	if st.status < 0 {
		return 0, false
	}
	return st.status, st.photo
}

// replyStatus answers a command that made job j with text: the status
// message, edited as the job moves. It is sent from the chat's outbox, so
// the update is recorded (and a webhook answered) without waiting for the
// chat's flood limit; its id is noted on the job.
func (b *Bot) replyStatus(ctx context.Context, j *engine.Job, text string) {
	if _, user, ok := inlineOf(j.Chat); ok {
		st := b.state(j.ID)
		st.mu.Lock()
		st.pending = true
		st.mu.Unlock()
		b.outbox(user, func(ctx context.Context) { b.inlineStatus(ctx, j, st, text) })
		return
	}
	id, err := chatID(j.Chat)
	if err != nil {
		return
	}
	st := b.state(j.ID)
	st.mu.Lock()
	st.pending = true
	st.mu.Unlock()
	b.outbox(id, func(ctx context.Context) { b.sendStatus(ctx, j, id, st, text) })
}

// sendStatus sends the status message of replyStatus. The chat's limiter is
// waited for without the job's lock, so Deliver never waits behind it.
func (b *Bot) sendStatus(ctx context.Context, j *engine.Job, to int64, st *jobState, text string) {
	ctx = inThread(ctx, j.Chat)
	for {
		if err := b.waitRoom(ctx, to, j.Chat.Private); err != nil {
			return
		}
		st.mu.Lock()
		if st.done {
			// Delivered before the reply could go out: the result says it all.
			st.mu.Unlock()
			b.mu.Lock()
			delete(b.states, j.ID)
			b.mu.Unlock()
			return
		}
		if st.status != 0 {
			st.pending = false // a progress update posted one first
			st.mu.Unlock()
			return
		}
		st.replied, st.pending = true, false
		m := tgbotapi.NewMessage(to, cut(text, maxText))
		m.ReplyToMessageID = replyTo(j.Chat)
		m.AllowSendingWithoutReply = true
		m.DisableWebPagePreview = true
		cctx, cancel := context.WithTimeout(ctx, callTimeout)
		raw, err := b.api.do(cctx, m)
		cancel()
		if d := retryAfter(err); d > 0 {
			b.flood.pause(to, d)
			st.pending = true
			st.mu.Unlock()
			continue
		}
		var msg tgbotapi.Message
		if err == nil {
			msg, err = sent(raw)
		}
		if err != nil {
			st.mu.Unlock()
			b.log.Warn("status message failed", slog.String("job_id", j.ID), slog.String("chat_id", j.Chat.ChatID), slog.Any("err", err))
			return
		}
		st.status, st.photo, st.lastText = msg.MessageID, false, text
		if err := b.jobs.Annotate(ctx, j.ID, metaStatus, strconv.Itoa(msg.MessageID)); err != nil {
			b.log.Warn("note status message", slog.String("job_id", j.ID), slog.Any("err", err))
		}
		st.mu.Unlock()
		return
	}
}

// editEvery is the least time between two edits of a status message in the chat.
func (b *Bot) editEvery(private bool) time.Duration {
	if private {
		return b.cfg.PrivateEvery
	}
	return b.cfg.GroupEvery
}

// Progress edits the job's status message: a progress bar, or the vendor's
// preview. It never waits: an edit too soon after the last one, or while the
// chat is rate limited, is skipped.
func (b *Bot) Progress(ctx context.Context, j *engine.Job, p engine.Progress) {
	if _, _, ok := inlineOf(j.Chat); ok {
		b.inlineProgress(ctx, j, p)
		return
	}
	chat64, err := chatID(j.Chat)
	if err != nil {
		return
	}
	ctx = inThread(ctx, j.Chat)
	st := b.state(j.ID)
	if !st.mu.TryLock() {
		return // the reply or the delivery is under way
	}
	defer st.mu.Unlock()
	status, photo := b.statusOf(st, j)
	if st.done {
		return
	}
	if status == 0 {
		b.lateStatus(ctx, j, chat64, st)
		return
	}
	now := b.cfg.Now()
	if !st.lastEdit.IsZero() && now.Sub(st.lastEdit) < b.editEvery(j.Chat.Private) {
		return
	}
	text := chat.Status(j, p, j.Owner.Lang)
	if p.Preview != nil && chat.PreviewKey(p.Preview) == st.lastPreview {
		p.Preview = nil // shown already
	}
	if p.Preview == nil && text == st.lastText {
		return
	}
	if !b.flood.try(chat64, j.Chat.Private) {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	log := b.log.With(slog.String("job_id", j.ID), slog.String("chat_id", j.Chat.ChatID))
	switch {
	case p.Preview != nil && !photo:
		// A text message cannot become a photo: post the preview as the new status.
		cfg := tgbotapi.NewPhoto(chat64, tgbotapi.FileBytes{Name: "preview.jpg", Bytes: p.Preview})
		cfg.Caption = cut(text, maxCaption)
		cfg.ReplyToMessageID = replyTo(j.Chat)
		cfg.AllowSendingWithoutReply = true
		raw, err := b.api.do(cctx, cfg)
		if err != nil {
			b.edited(log, chat64, err)
			return
		}
		msg, err := sent(raw)
		if err != nil {
			return
		}
		old := status
		st.status, st.photo = msg.MessageID, true
		if err := b.jobs.Annotate(cctx, j.ID, metaStatus, strconv.Itoa(msg.MessageID)); err != nil {
			log.Warn("note status message", slog.Any("err", err))
		}
		if err := b.jobs.Annotate(cctx, j.ID, metaStatusPhoto, "1"); err != nil {
			log.Warn("note status message", slog.Any("err", err))
		}
		if _, err := b.api.do(cctx, tgbotapi.NewDeleteMessage(chat64, old)); err != nil {
			log.Debug("delete old status message", slog.Any("err", err))
		}
	case p.Preview != nil:
		media := tgbotapi.NewInputMediaPhoto(tgbotapi.FileBytes{Name: "preview.jpg", Bytes: p.Preview})
		media.Caption = cut(text, maxCaption)
		_, err := b.api.do(cctx, tgbotapi.EditMessageMediaConfig{BaseEdit: tgbotapi.BaseEdit{ChatID: chat64, MessageID: status}, Media: media})
		if err != nil && !b.edited(log, chat64, err) {
			st.status = -1
			return
		}
	case photo:
		_, err := b.api.do(cctx, tgbotapi.NewEditMessageCaption(chat64, status, cut(text, maxCaption)))
		if err != nil && !b.edited(log, chat64, err) {
			st.status = -1
			return
		}
	default:
		_, err := b.api.do(cctx, tgbotapi.NewEditMessageText(chat64, status, cut(text, maxText)))
		if err != nil && !b.edited(log, chat64, err) {
			st.status = -1
			return
		}
	}
	st.lastEdit, st.lastText = now, text
	if p.Preview != nil {
		st.lastPreview = chat.PreviewKey(p.Preview)
	}
}

// lateStatus posts the status message of a job that has none and will get
// none from this process: its update was recorded before a restart, and the
// status message was still in the chat's outbox. Called with st.mu held;
// like any progress, skipped when the chat has no room now.
func (b *Bot) lateStatus(ctx context.Context, j *engine.Job, to int64, st *jobState) {
	if st.status != 0 || st.pending || st.replied || j.Meta[metaStatus] != "" || !b.flood.try(to, j.Chat.Private) {
		return
	}
	text := chat.Accepted(j, j.Owner.Lang)
	m := tgbotapi.NewMessage(to, cut(text, maxText))
	m.ReplyToMessageID = replyTo(j.Chat)
	m.AllowSendingWithoutReply = true
	m.DisableWebPagePreview = true
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	raw, err := b.api.do(cctx, m)
	if d := retryAfter(err); d > 0 {
		b.flood.pause(to, d)
		return
	}
	msg, err := sent(raw)
	if err != nil || msg.MessageID == 0 {
		return
	}
	st.replied = true
	st.status, st.photo, st.lastText, st.lastEdit = msg.MessageID, false, text, b.cfg.Now()
	if err := b.jobs.Annotate(cctx, j.ID, metaStatus, strconv.Itoa(msg.MessageID)); err != nil {
		b.log.Warn("note status message", slog.String("job_id", j.ID), slog.Any("err", err))
	}
}

// edited looks at a failed progress edit. It returns false when the status
// message is gone (deleted by someone), true otherwise.
func (b *Bot) edited(log *slog.Logger, to int64, err error) bool {
	if d := retryAfter(err); d > 0 {
		b.flood.pause(to, d)
		return true
	}
	if hasText(err, "message is not modified") {
		return true
	}
	if hasText(err, "message to edit not found") || hasText(err, "message can't be edited") {
		return false
	}
	log.Debug("progress edit failed", slog.Any("err", err))
	return true
}

// Deliver posts a finished job: its pictures with buttons, or why it ended.
// Each step it completes is noted on the job, so a Deliver repeated after a
// crash resumes where the last one stopped, posting again at most the step
// under way when the process died.
func (b *Bot) Deliver(ctx context.Context, j *engine.Job) error {
	if _, _, ok := inlineOf(j.Chat); ok {
		return b.deliverInline(ctx, j)
	}
	chat64, err := chatID(j.Chat)
	if err != nil {
		return engine.Wrap(engine.EUNDELIVERED, err, "The picture could not be posted here.", "图片无法发送到这里。")
	}
	ctx = inThread(ctx, j.Chat)
	st := b.state(j.ID)
	st.mu.Lock()
	defer st.mu.Unlock()
	status, photo := b.statusOf(st, j)
	lang := j.Owner.Lang
	done, _ := strconv.Atoi(j.Meta[metaSent])
	log := b.log.With(slog.String("job_id", j.ID), slog.String("chat_id", j.Chat.ChatID), slog.String("user_id", j.Owner.ID))

	if j.State != engine.StateSucceeded {
		if done == 0 {
			text := chat.Ended(j, lang)
			post, err := b.roomed(j.ID, chat64, j.Chat.Private)
			if err != nil {
				return err
			}
			err = errNoStatus
			if status != 0 {
				err = b.editStatus(ctx, post, chat64, j.Chat.Private, status, photo, text)
			}
			if _, later := engine.AsLater(err); later {
				return err
			}
			if cannotPost(err) {
				return b.deliveryError(err) // a reply there would be refused too
			}
			if err != nil {
				if _, err := b.sendText(ctx, post, chat64, j.Chat.Private, replyTo(j.Chat), text, nil); err != nil {
					return b.deliveryError(err)
				}
			}
			if err := b.jobs.Annotate(ctx, j.ID, metaSent, "1"); err != nil {
				log.Warn("note delivery", slog.Any("err", err))
			}
		}
		b.finish(j.ID, st)
		return nil
	}

	steps := plan(j)
	for i := done; i < len(steps); i++ {
		if err := b.postStep(ctx, j, chat64, i, steps[i]); err != nil {
			return err
		}
	}
	if status != 0 {
		if err := b.removeStatus(ctx, j.ID, chat64, j.Chat.Private, status, photo, chat.T(lang, "Job %s: done.", "任务 %s：已完成。", j.ID)); err != nil {
			return err // only a Later: the pictures are posted and noted
		}
	}
	b.finish(j.ID, st)
	return nil
}

// postStep posts step i of j's delivery and notes it on the job, holding a
// post lane from the request to the note, so that at most as many posts as
// there are lanes are made and not recorded. The chat's room is looked at
// first (a chat waiting for its flood limit holds no lane) and taken once
// the lane is, so a busy lane has nothing to give back. A lane busy, or the
// room gone meanwhile, takes nothing and returns an *engine.Later, like a
// chat with no room; one that waits for the bot-wide limit is told its
// turn among those waiting for it (flood.turn).
func (b *Bot) postStep(ctx context.Context, j *engine.Job, to int64, i int, s step) error {
	if d, global := b.flood.peek(to, j.Chat.Private); d > 0 {
		return b.flood.later(j.ID, d, global)
	}
	b.flood.served(j.ID) // its turn came; one waiting for the lane holds none
	wctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(b.context(), cancel) // a shutdown ends a wait in line too
	release, later := b.lanes.Take(wctx, j.ID)
	stop()
	cancel()
	if release == nil {
		return &engine.Later{After: later}
	}
	defer release()
	if d, global := b.flood.room(to, j.Chat.Private); d > 0 {
		return b.flood.later(j.ID, d, global)
	}
	if err := b.deliverStep(ctx, j, to, s, b.roomedPoster()); err != nil {
		return b.deliveryError(err)
	}
	if err := b.jobs.Annotate(ctx, j.ID, metaSent, strconv.Itoa(i+1)); err != nil {
		return fmt.Errorf("note delivery step %d of job %s: %w", i+1, j.ID, err)
	}
	return nil
}

// roomedPoster is a poster for requests made once the chat's room is taken:
// the first spends that room, and it stays for the next while a request
// with it is refused (400: the status message gone, a photo Telegram will
// not take; 403: the bot may not post there, as for an inline job's upload
// to a user who never started the bot), since a refused request posts
// nothing. So a fallback goes in the same round: made to find room of its
// own, it found none in a chat with room for one message a second
// (progress edits leave it so), and the repeated round's first request,
// refused again, spent the room again, for good. Once the room is spent, a
// request takes room of its own.
func (b *Bot) roomedPoster() poster {
	roomed := true
	return func(ctx context.Context, to int64, private bool, timeout time.Duration, build builder) (json.RawMessage, error) {
		if !roomed {
			return b.send(ctx, to, private, timeout, build)
		}
		raw, err := b.sendRoomed(ctx, to, timeout, build)
		roomed = err != nil && (isBadRequest(err) || isForbidden(err))
		return raw, err
	}
}

// roomed takes the chat's room now for job id's delivery and returns a
// roomedPoster on it, or an *engine.Later when there is none.
func (b *Bot) roomed(id string, to int64, private bool) (poster, error) {
	if d, global := b.flood.room(to, private); d > 0 {
		return nil, b.flood.later(id, d, global)
	}
	b.flood.served(id)
	return b.roomedPoster(), nil
}

// deliveryError tells the engine whether trying again can help.
func (b *Bot) deliveryError(err error) error {
	var later *engine.Later
	if errors.As(err, &later) {
		return later // the engine comes back after it, counting no failure
	}
	if isForbidden(err) || isBadRequest(err) || hasText(err, "chat not found") || hasText(err, "upgraded to a supergroup") ||
		engine.ErrorCode(err) == engine.ENOTFOUND { // the picture is gone from the blob store
		return engine.Wrap(engine.EUNDELIVERED, err, "The picture could not be posted here.", "图片无法发送到这里。")
	}
	return fmt.Errorf("telegram: %w", err)
}

// errNoStatus stands for a status message there is none of.
var errNoStatus = errors.New("no status message")

// editStatus turns the status message into text, by post (never waiting:
// an *engine.Later says when there will be room).
func (b *Bot) editStatus(ctx context.Context, post poster, to int64, private bool, status int, photo bool, text string) error {
	var c tgbotapi.Chattable = tgbotapi.NewEditMessageText(to, status, cut(text, maxText))
	if photo {
		c = tgbotapi.NewEditMessageCaption(to, status, cut(text, maxCaption))
	}
	_, err := post(ctx, to, private, callTimeout, fixed(c))
	if hasText(err, "message is not modified") {
		return nil
	}
	return err
}

// removeStatus deletes the status message once the result is posted, or,
// where it may not be deleted, edits it into a last line. Its only error is
// an *engine.Later: anything else leaves the message as it is. A message
// already gone (a Deliver repeated after its record was dropped) is done.
func (b *Bot) removeStatus(ctx context.Context, id string, to int64, private bool, status int, photo bool, text string) error {
	post, err := b.roomed(id, to, private)
	if err != nil {
		return err
	}
	_, err = post(ctx, to, private, callTimeout, fixed(tgbotapi.NewDeleteMessage(to, status)))
	if err == nil || hasText(err, "message to delete not found") || cannotPost(err) {
		return nil // an edit there would be refused too
	}
	if _, later := engine.AsLater(err); !later {
		err = b.editStatus(ctx, post, to, private, status, photo, text)
	}
	if _, later := engine.AsLater(err); later {
		return err
	}
	return nil
}

// stepKind is what one delivery step sends.
type stepKind int

const (
	stepPhoto stepKind = iota
	stepDocument
	stepPhotoAlbum
	stepDocumentAlbum
	stepButtons // the buttons under an album, in a message of their own
)

// step is one message (or album) of a delivery.
type step struct {
	kind    stepKind
	results []int // indexes into the job's results
	caption bool  // the first item carries the caption
	buttons bool  // with the result's buttons (a single picture)
}

// plan splits a job's results into messages: one picture is a photo (or a
// document, when beyond a photo's limits) with the caption and buttons;
// several go as albums of up to ten, photos and documents apart, the caption
// on the first, then the buttons in a message of their own (albums take
// none). It depends on the results alone, so a repeated Deliver plans the same.
func plan(j *engine.Job) []step {
	switch len(j.Results) {
	case 0:
		return []step{{kind: stepButtons}}
	case 1:
		k := stepDocument
		if fitsPhoto(j.Results[0]) {
			k = stepPhoto
		}
		return []step{{kind: k, results: []int{0}, caption: true, buttons: true}}
	}
	var photos, docs []int
	for i, r := range j.Results {
		if fitsPhoto(r) {
			photos = append(photos, i)
		} else {
			docs = append(docs, i)
		}
	}
	var steps []step
	for _, g := range []struct {
		idx           []int
		single, album stepKind
	}{{photos, stepPhoto, stepPhotoAlbum}, {docs, stepDocument, stepDocumentAlbum}} {
		for _, c := range chunks(g.idx, maxAlbum) {
			k := g.album
			if len(c) == 1 {
				k = g.single
			}
			steps = append(steps, step{kind: k, results: c})
		}
	}
	steps[0].caption = true
	return append(steps, step{kind: stepButtons})
}

// chunks splits idx into as few parts of at most n as it can, of even sizes
// (11 → 6 + 5), so no album is left with one picture.
func chunks(idx []int, n int) [][]int {
	if len(idx) == 0 {
		return nil
	}
	k := (len(idx) + n - 1) / n
	out := make([][]int, 0, k)
	start := 0
	for i := range k {
		size := len(idx) / k
		if i < len(idx)%k {
			size++
		}
		out = append(out, idx[start:start+size])
		start += size
	}
	return out
}

// fitsPhoto reports whether r is within Telegram's limits for a photo:
// at most 10 MB, width + height at most 10000, sides at most 20 to 1.
func fitsPhoto(r engine.Result) bool {
	switch r.Mime {
	case "image/jpeg", "image/png", "image/webp":
	default:
		return false
	}
	if r.Size > maxPhotoBytes {
		return false
	}
	if r.Width > 0 && r.Height > 0 {
		if r.Width+r.Height > maxPhotoSides {
			return false
		}
		long, short := max(r.Width, r.Height), min(r.Width, r.Height)
		if long > maxPhotoRatio*short {
			return false
		}
	}
	return true
}

func fileName(j *engine.Job, i int) string {
	ext := ".png"
	switch j.Results[i].Mime {
	case "image/jpeg":
		ext = ".jpg"
	case "image/webp":
		ext = ".webp"
	case "image/gif":
		ext = ".gif"
	}
	return fmt.Sprintf("picbot-%s-%d%s", j.ID, i+1, ext)
}

// caption is the result's caption: prompt, seed, vendor, within Telegram's 1024.
func caption(j *engine.Job) string {
	return cut(chat.Caption(j, j.Owner.Lang, maxCaption), maxCaption)
}

// deliverStep sends one step, each request by post.
func (b *Bot) deliverStep(ctx context.Context, j *engine.Job, to int64, s step, post poster) error {
	lang := j.Owner.Lang
	private := j.Chat.Private
	reply := replyTo(j.Chat)
	var text string
	if s.caption {
		text = caption(j)
	}
	switch s.kind {
	case stepPhoto:
		var kb *tgbotapi.InlineKeyboardMarkup
		if s.buttons && !j.Chat.Broadcast {
			kb = resultKeyboard(j, lang, s.results[0], true)
		}
		err := b.sendFile(ctx, post, j, to, private, reply, s.results[0], true, text, kb)
		if err == nil || !isBadRequest(err) {
			return err
		}
		// Telegram would not take it as a photo after all: send the file.
		b.log.Warn("photo refused; sending a document", slog.String("job_id", j.ID), slog.Any("err", err))
		fallthrough
	case stepDocument:
		var kb *tgbotapi.InlineKeyboardMarkup
		if s.buttons && !j.Chat.Broadcast {
			kb = resultKeyboard(j, lang, s.results[0], false)
		}
		return b.sendFile(ctx, post, j, to, private, reply, s.results[0], false, text, kb)
	case stepPhotoAlbum:
		err := b.sendAlbum(ctx, post, j, to, private, reply, s.results, true, text)
		if err == nil || !isBadRequest(err) {
			return err
		}
		b.log.Warn("photo album refused; sending documents", slog.String("job_id", j.ID), slog.Any("err", err))
		return b.sendAlbum(ctx, post, j, to, private, reply, s.results, false, text)
	case stepDocumentAlbum:
		return b.sendAlbum(ctx, post, j, to, private, reply, s.results, false, text)
	case stepButtons:
		body := chat.T(lang, "#%s · %d pictures. 🎨 n: a variation of picture n; 🔍 n: upscale it.", "#%s · %d 张图片。🎨 n：第 n 张的变体；🔍 n：放大第 n 张。", j.ID, len(j.Results))
		kb := albumKeyboard(j, lang)
		if j.Chat.Broadcast {
			// A channel's readers get no buttons: they would post into the channel.
			if len(j.Results) > 0 {
				return nil
			}
			kb = nil
		}
		if len(j.Results) == 0 {
			body = caption(j)
		}
		_, err := b.sendText(ctx, post, to, private, reply, body, kb)
		return err
	}
	return fmt.Errorf("unknown delivery step %d", s.kind)
}

// poster sends a request: Bot.send (never waits: the engine's paths) or
// Bot.post (waits for room: a chat's outbox).
type poster func(ctx context.Context, to int64, private bool, timeout time.Duration, build builder) (json.RawMessage, error)

// sendFile sends result i as a photo or a document.
func (b *Bot) sendFile(ctx context.Context, post poster, j *engine.Job, to int64, private bool, reply, i int, asPhoto bool, text string, kb *tgbotapi.InlineKeyboardMarkup) error {
	method := "sendDocument"
	if asPhoto {
		method = "sendPhoto"
	}
	_, err := post(ctx, to, private, uploadTimeout, func(ctx context.Context) (tgbotapi.Chattable, func(), error) {
		rc, err := b.blobs.Open(ctx, j.Results[i].Blob)
		if err != nil {
			return nil, nil, fmt.Errorf("open result %d of job %s: %w", i+1, j.ID, err)
		}
		file := tgbotapi.FileReader{Name: fileName(j, i), Reader: rc}
		base := tgbotapi.BaseChat{ChatID: to, ReplyToMessageID: reply, AllowSendingWithoutReply: true}
		if kb != nil {
			base.ReplyMarkup = kb
		}
		var c tgbotapi.Chattable
		if asPhoto {
			c = tgbotapi.PhotoConfig{BaseFile: tgbotapi.BaseFile{BaseChat: base, File: file}, Caption: text}
		} else {
			c = tgbotapi.DocumentConfig{BaseFile: tgbotapi.BaseFile{BaseChat: base, File: file}, Caption: text}
		}
		return c, func() { rc.Close() }, nil
	})
	if err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	return nil
}

// sendAlbum sends results idx as one album of photos or of documents.
func (b *Bot) sendAlbum(ctx context.Context, post poster, j *engine.Job, to int64, private bool, reply int, idx []int, asPhoto bool, text string) error {
	send := func(reply int) error {
		_, err := post(ctx, to, private, uploadTimeout, func(ctx context.Context) (tgbotapi.Chattable, func(), error) {
			var (
				media  []any
				closes []func() error
			)
			release := func() {
				for _, c := range closes {
					c()
				}
			}
			for n, i := range idx {
				rc, err := b.blobs.Open(ctx, j.Results[i].Blob)
				if err != nil {
					release()
					return nil, nil, fmt.Errorf("open result %d of job %s: %w", i+1, j.ID, err)
				}
				closes = append(closes, rc.Close)
				file := tgbotapi.FileReader{Name: fileName(j, i), Reader: rc}
				var capt string
				if n == 0 {
					capt = text
				}
				if asPhoto {
					m := tgbotapi.NewInputMediaPhoto(file)
					m.Caption = capt
					media = append(media, m)
				} else {
					m := tgbotapi.NewInputMediaDocument(file)
					m.Caption = capt
					media = append(media, m)
				}
			}
			cfg := tgbotapi.NewMediaGroup(to, media)
			cfg.ReplyToMessageID = reply
			return cfg, release, nil
		})
		return err
	}
	err := send(reply)
	if err != nil && reply != 0 && hasText(err, "message not found") {
		// The command was deleted; the SDK cannot ask for allow_sending_without_reply here.
		err = send(0)
	}
	if err != nil {
		return fmt.Errorf("sendMediaGroup: %w", err)
	}
	return nil
}

// sendOriginals sends results as documents (index -1: all of them), as
// replies to the message whose button asked.
func (b *Bot) sendOriginals(ctx context.Context, j *engine.Job, cref engine.ChatRef, index int) error {
	chat, err := chatID(cref)
	if err != nil {
		return err
	}
	ctx = inThread(ctx, cref)
	var idx []int
	if index >= 0 && index < len(j.Results) {
		idx = []int{index}
	} else {
		for i := range j.Results {
			idx = append(idx, i)
		}
	}
	for _, c := range chunks(idx, maxAlbum) {
		if len(c) == 1 {
			err = b.sendFile(ctx, b.post, j, chat, cref.Private, replyTo(cref), c[0], false, "", nil)
		} else {
			err = b.sendAlbum(ctx, b.post, j, chat, cref.Private, replyTo(cref), c, false, "")
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// resultKeyboard is the buttons under one picture.
func resultKeyboard(j *engine.Job, lang engine.Lang, i int, original bool) *tgbotapi.InlineKeyboardMarkup {
	rows := [][]tgbotapi.InlineKeyboardButton{{
		tgbotapi.NewInlineKeyboardButtonData(chat.T(lang, "🔁 Again", "🔁 再来一张"), button(chat.ActionAgain, j.ID, i)),
		tgbotapi.NewInlineKeyboardButtonData(chat.T(lang, "🎨 Vary", "🎨 变体"), button(chat.ActionVary, j.ID, i)),
		tgbotapi.NewInlineKeyboardButtonData(chat.T(lang, "🔍 Upscale", "🔍 放大"), button(chat.ActionUpscale, j.ID, i)),
	}}
	if original {
		rows = append(rows, []tgbotapi.InlineKeyboardButton{
			tgbotapi.NewInlineKeyboardButtonData(chat.T(lang, "📄 Original file", "📄 原图文件"), button(actionOriginal, j.ID, i)),
		})
	}
	kb := tgbotapi.NewInlineKeyboardMarkup(rows...)
	return &kb
}

// albumKeyboard is the buttons under an album: again and the original files
// for all, vary and upscale for each picture.
func albumKeyboard(j *engine.Job, lang engine.Lang) *tgbotapi.InlineKeyboardMarkup {
	rows := [][]tgbotapi.InlineKeyboardButton{{
		tgbotapi.NewInlineKeyboardButtonData(chat.T(lang, "🔁 Again", "🔁 再来一组"), button(chat.ActionAgain, j.ID, 0)),
	}}
	if len(j.Results) > 0 {
		rows[0] = append(rows[0], tgbotapi.NewInlineKeyboardButtonData(chat.T(lang, "📄 Original files", "📄 全部原图"), button(actionOriginal, j.ID, -1)))
	}
	n := min(len(j.Results), maxButtons)
	for _, pair := range []struct {
		action, icon string
	}{{chat.ActionVary, "🎨"}, {chat.ActionUpscale, "🔍"}} {
		var row []tgbotapi.InlineKeyboardButton
		for i := range n {
			row = append(row, tgbotapi.NewInlineKeyboardButtonData(fmt.Sprintf("%s %d", pair.icon, i+1), button(pair.action, j.ID, i)))
			if len(row) == 5 || i == n-1 {
				rows = append(rows, row)
				row = nil
			}
		}
	}
	kb := tgbotapi.NewInlineKeyboardMarkup(rows...)
	return &kb
}
