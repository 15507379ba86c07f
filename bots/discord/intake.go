package discord

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/bwmarrin/discordgo"
	"github.com/picbot/picbot/bots/chat"
	"github.com/picbot/picbot/engine"
)

// A deferred response is a promise: Discord shows "thinking…" and never
// posts the interaction again, so an interaction lost by a crash after its
// deferral would never be answered. The interaction is
// therefore recorded in the store before the deferral is sent, and removed
// once its work is done (its job made, or its answer shown); at the next
// start the ones left are taken in again, and one whose job was made
// before the crash is joined to it, not made twice.

// keyIntake is the setting that holds the interactions taken in and not done.
const keyIntake = "dc:intake"

// Settings keeps small named strings in the store: a *store.DB.
type Settings interface {
	View(ctx context.Context, fn func(engine.Counters) error) error
	Update(ctx context.Context, fn func(engine.Counters) error) error
}

// intake is an interaction recorded before its deferral.
type intake struct {
	Body     json.RawMessage `json:"body"` // as Discord posted it (its signature checked)
	Received time.Time       `json:"received"`
	// Taken is when a replica sharing the store took the record in again
	// (resumeIntake), so that no other takes it too.
	Taken time.Time `json:"taken,omitzero"`
}

// intakeGrace is, with replicas sharing the store, how old a record must be
// (and how long ago taken in again) before another replica takes it in:
// far longer than an interaction's work until its job is made, so only a
// record whose replica died is taken, and by one replica.
const intakeGrace = time.Minute

func readIntake(c engine.Counters) map[string]intake {
	out := map[string]intake{}
	if s := c.Setting(keyIntake); s != "" {
		if err := json.Unmarshal([]byte(s), &out); err != nil {
			return map[string]intake{}
		}
	}
	return out
}

func writeIntake(c engine.Counters, m map[string]intake) error {
	if len(m) == 0 {
		c.SetSetting(keyIntake, "")
		return nil
	}
	data, err := json.Marshal(m)
	if err != nil {
		return err
	}
	c.SetSetting(keyIntake, string(data))
	return nil
}

// Pending lists the interactions recorded as taken in whose work is not
// done yet, by id: what the next start takes in again.
func Pending(c engine.Counters) []string {
	return slices.Sorted(maps.Keys(readIntake(c)))
}

// record stores an interaction before its deferral is sent.
func (b *Bot) record(ctx context.Context, id string, body []byte, received time.Time) error {
	if b.settings == nil {
		return nil
	}
	// Marked first: a start taking in what a crash left never takes this one too.
	b.mu.Lock()
	b.recorded[id] = true
	b.mu.Unlock()
	err := b.settings.Update(ctx, func(c engine.Counters) error {
		m := readIntake(c)
		m[id] = intake{Body: body, Received: received}
		return writeIntake(c, m)
	})
	if err != nil {
		b.mu.Lock()
		delete(b.recorded, id)
		b.mu.Unlock()
		return fmt.Errorf("record interaction %s: %w", id, err)
	}
	return nil
}

// done removes an interaction whose work is done.
func (b *Bot) done(id string) {
	if b.settings == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(b.base), 30*time.Second)
	defer cancel()
	err := b.settings.Update(ctx, func(c engine.Counters) error {
		m := readIntake(c)
		if _, ok := m[id]; !ok {
			return nil
		}
		delete(m, id)
		return writeIntake(c, m)
	})
	if err != nil {
		// Taken in again at the next start, and joined to its job if it made one.
		b.log.Warn("interaction done, not recorded", slog.String("interaction_id", id), slog.Any("err", err))
	}
}

// resumeIntake takes in again the interactions a crash left recorded,
// oldest first. On a store of its own (bbolt) that is every record but
// this process's own, at start. With replicas sharing the store (Lead set),
// a record may be a live replica's work under way: only records older than
// intakeGrace are taken, each claimed in one transaction by one replica,
// and every replica looks again each intakeGrace/2 for the records of a
// replica that died, restarted or not.
func (b *Bot) resumeIntake(ctx context.Context) {
	if b.settings == nil {
		return
	}
	b.takeIntake(ctx, b.lead != nil)
	if b.lead == nil {
		return
	}
	if !b.begin() {
		return
	}
	go func() {
		defer b.work.Done()
		t := time.NewTicker(intakeGrace / 2)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				b.takeIntake(ctx, true)
			}
		}
	}()
}

// takeIntake takes in the records left by a dead process (see resumeIntake).
func (b *Bot) takeIntake(ctx context.Context, shared bool) {
	var m map[string]intake
	read := func(c engine.Counters) error {
		m = readIntake(c)
		return nil
	}
	var err error
	if shared {
		// Claimed in the transaction that reads them: two replicas never take one.
		now := time.Now()
		err = b.settings.Update(ctx, func(c engine.Counters) error {
			all := readIntake(c)
			m = map[string]intake{}
			for id, rec := range all {
				if now.Sub(rec.Received) >= intakeGrace && now.Sub(rec.Taken) >= intakeGrace {
					rec.Taken = now
					all[id], m[id] = rec, rec
				}
			}
			if len(m) == 0 {
				return nil
			}
			return writeIntake(c, all)
		})
	} else {
		err = b.settings.View(ctx, read)
	}
	if err != nil {
		b.log.Error("read interactions taken in", slog.Any("err", err))
		return
	}
	ids := slices.SortedFunc(maps.Keys(m), func(x, y string) int { return m[x].Received.Compare(m[y].Received) })
	for _, id := range ids {
		b.mu.Lock()
		mine := b.recorded[id]
		b.mu.Unlock()
		if mine {
			continue // recorded by this process, and under way
		}
		rec := m[id]
		var in discordgo.Interaction
		if err := json.Unmarshal(rec.Body, &in); err != nil || in.ID != id {
			b.log.Error("interaction taken in is unreadable; dropped", slog.String("interaction_id", id), slog.Any("err", err))
			b.done(id)
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, planTime)
		_, work := b.plan(withRaw(pctx, rec.Body), &in, rec.Received, true)
		cancel()
		if work == nil {
			b.done(id)
			continue
		}
		if !b.begin() {
			return
		}
		b.log.Info("interaction taken in again after a restart", slog.String("interaction_id", id), slog.String("chat_id", in.ChannelID))
		go func() {
			defer b.work.Done()
			work(b.base)
		}()
	}
}

// existing finds the job the interaction of ev made before a restart, if any.
func (b *Bot) existing(ctx context.Context, ev *event) (*engine.Job, error) {
	jobs, err := b.eng.Jobs(ctx, ev.user, 50)
	if err != nil {
		return nil, fmt.Errorf("look up the jobs of %s: %w", ev.user.ID, err)
	}
	for _, j := range jobs {
		if j.Chat.Platform == Platform && j.Chat.MessageID == ev.chat.MessageID && j.Chat.ChatID == ev.chat.ChatID {
			return j, nil
		}
	}
	return nil, nil
}

// rejoin attaches an interaction taken in again to the job it made before
// the restart: the job keeps its delivery state (one the engine may be
// delivering right now), gets the interaction's ticket if it was never
// stored, and shows it is queued unless something newer is shown.
func (b *Bot) rejoin(ctx context.Context, ev *event, j *engine.Job) {
	lv := b.lookup(j)
	lv.mu.Lock()
	if j.Meta[metaTicket] == "" && lv.t.Token == "" {
		lv.t = b.ticketFor(ev)
		data, _ := json.Marshal(lv.t)
		if err := b.eng.Annotate(ctx, j.ID, metaTicket, string(data)); err != nil {
			b.log.Error("persist delivery ticket", slog.String("job_id", j.ID), slog.Any("err", err))
		}
	}
	show := !lv.edited && !lv.done && !j.State.Terminal() && j.State != engine.StateSucceeded
	lv.mu.Unlock()
	if show {
		b.accepted(ctx, ev, j, lv, chat.Accepted(j, ev.lang()))
	}
}
