package moderation

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/picbot/picbot/engine"
)

// Config is the moderation section of the configuration.
type Config struct {
	// BlockedWords and the words in WordFiles (one a line) are refused everywhere.
	BlockedWords []string `yaml:"blocked_words"`
	WordFiles    []string `yaml:"word_files"`
	// Exceptions are phrases allowed though they contain a blocked word.
	Exceptions []string `yaml:"exceptions"`
	// NSFWWords are refused except in chats whose NSFW policy is on.
	NSFWWords []string `yaml:"nsfw_words"`
	// NSFWChats are chat keys ("telegram:-100123", "discord:g<guild id>")
	// whose NSFW policy is on unless their admins turn it off. On Discord
	// a channel flagged age-restricted is on as well.
	NSFWChats []string `yaml:"nsfw_chats"`
	// LockoutAfter refusals within StrikeWindow lock a user out for the next
	// of Lockouts (the last one repeats). 0 or no Lockouts: no lockouts.
	LockoutAfter int             `yaml:"lockout_after"`
	StrikeWindow time.Duration   `yaml:"strike_window"`
	Lockouts     []time.Duration `yaml:"lockouts"`
}

// DefaultConfig blocks nothing; a user refused 3 times in a day is locked
// out for 1 h, then 2 h, then 10 h.
func DefaultConfig() Config {
	return Config{LockoutAfter: 3, StrikeWindow: 24 * time.Hour, Lockouts: []time.Duration{time.Hour, 2 * time.Hour, 10 * time.Hour}}
}

// Validate names the first problem by its key.
func (c Config) Validate() error {
	if c.LockoutAfter < 0 {
		return fmt.Errorf("moderation.lockout_after: must not be negative")
	}
	if c.StrikeWindow < 0 {
		return fmt.Errorf("moderation.strike_window: must not be negative")
	}
	for _, d := range c.Lockouts {
		if d <= 0 {
			return fmt.Errorf("moderation.lockouts: %s is not a positive duration", d)
		}
	}
	return nil
}

// Store keeps the strikes and lockouts (store.DB is one).
type Store interface {
	View(ctx context.Context, fn func(engine.Counters) error) error
	Update(ctx context.Context, fn func(engine.Counters) error) error
}

// Observer counts refusals and lockouts, for metrics.
type Observer interface {
	ModerationRefused(reason string) // "blocked", "nsfw", "locked"
	ModerationLockout()
}

// Moderator checks prompts and keeps lockouts.
type Moderator struct {
	cfg     Config
	blocked *List
	nsfw    *List
	store   Store
	obs     Observer
	now     func() time.Time
	day     func(time.Time) string
}

// New reads the word files and compiles the lists. day names the quota
// day a time falls on, for the daily figures; now may be nil.
func New(cfg Config, store Store, obs Observer, day func(time.Time) string, now func() time.Time) (*Moderator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	words := slices.Clone(cfg.BlockedWords)
	for _, p := range cfg.WordFiles {
		w, err := ReadWordFile(p)
		if err != nil {
			return nil, fmt.Errorf("moderation.word_files: %w", err)
		}
		words = append(words, w...)
	}
	if now == nil {
		now = time.Now
	}
	if day == nil {
		day = func(t time.Time) string { return t.UTC().Format(time.DateOnly) }
	}
	return &Moderator{cfg: cfg, blocked: Compile(words, cfg.Exceptions), nsfw: Compile(cfg.NSFWWords, cfg.Exceptions),
		store: store, obs: obs, now: now, day: day}, nil
}

// Keys in the store. Lockouts are counters (unix seconds) so that admins
// can list them with a scan; daily figures follow quota's "d:" scheme so
// that retention prunes them.
func strikesKey(u string) string   { return "mod:strikes:" + u }
func firstKey(u string) string     { return "mod:first:" + u }
func levelKey(u string) string     { return "mod:level:" + u }
func untilKey(u string) string     { return "mod:until:" + u }
func refusedKey(day string) string { return "d:mod:refused:" + day }
func lockedKey(day string) string  { return "d:mod:lockouts:" + day }

// NSFWChat reports whether key is listed in nsfw_chats.
func (m *Moderator) NSFWChat(key string) bool { return slices.Contains(m.cfg.NSFWChats, key) }

// Check decides whether user may run a job with prompt in a chat whose
// NSFW policy is nsfw. It returns nil or an EFORBIDDEN error in the
// user's language that names no word. A refusal of the prompt counts as
// a strike and may start a lockout; it is stored before Check returns.
func (m *Moderator) Check(ctx context.Context, u engine.UserRef, prompt string, nsfw bool) error {
	if m == nil {
		return nil
	}
	now := m.now()
	if until, err := m.lockedUntil(ctx, u.Key(), now); err != nil {
		return err
	} else if !until.IsZero() {
		m.count("locked")
		return lockedError(until.Sub(now))
	}
	reason := ""
	switch {
	case m.blocked.Match(prompt):
		reason = "blocked"
	case !nsfw && m.nsfw.Match(prompt):
		reason = "nsfw"
	default:
		return nil
	}
	m.count(reason)
	lock, err := m.strike(ctx, u.Key(), now)
	if err != nil {
		return err
	}
	if lock > 0 {
		if m.obs != nil {
			m.obs.ModerationLockout()
		}
		e := refusedError(reason)
		e.EN += " " + fmt.Sprintf("After repeated refusals you cannot start jobs for %s.", engine.FormatDuration(lock, engine.EN))
		e.ZH += fmt.Sprintf("多次被拒后，%s内不能再创建任务。", engine.FormatDuration(lock, engine.ZH))
		return e
	}
	return refusedError(reason)
}

func (m *Moderator) count(reason string) {
	if m.obs != nil {
		m.obs.ModerationRefused(reason)
	}
}

func refusedError(reason string) *engine.Error {
	if reason == "nsfw" {
		return engine.Errorf(engine.EFORBIDDEN, "Sorry, this prompt is not allowed in this chat (adult content is off here). Nothing was charged.",
			"抱歉，本聊天不允许这个提示词（此处未开放成人内容）。未扣除额度。")
	}
	return engine.Errorf(engine.EFORBIDDEN, "Sorry, this prompt contains words that are not allowed. Nothing was charged.",
		"抱歉，提示词包含不允许使用的词语。未扣除额度。")
}

func lockedError(left time.Duration) *engine.Error {
	left = left.Round(time.Minute)
	if left < time.Minute {
		left = time.Minute
	}
	return engine.Errorf(engine.EFORBIDDEN, "You are locked out after repeated refused prompts; try again in %[1]s.",
		"由于多次提交不允许的提示词，你已被暂时禁止使用；请%[2]s后再试。", engine.FormatDuration(left, engine.EN), engine.FormatDuration(left, engine.ZH))
}

func (m *Moderator) lockedUntil(ctx context.Context, user string, now time.Time) (time.Time, error) {
	if m.store == nil {
		return time.Time{}, nil
	}
	var until int64
	err := m.store.View(ctx, func(c engine.Counters) error {
		until = c.Get(untilKey(user))
		return nil
	})
	if err != nil || until <= now.Unix() {
		return time.Time{}, err
	}
	return time.Unix(until, 0), nil
}

// strike records a refusal and returns the lockout it started, if any.
func (m *Moderator) strike(ctx context.Context, user string, now time.Time) (time.Duration, error) {
	if m.store == nil {
		return 0, nil
	}
	var lock time.Duration
	err := m.store.Update(ctx, func(c engine.Counters) error {
		lock = 0
		day := m.day(now)
		c.Add(refusedKey(day), 1)
		if until := c.Get(untilKey(user)); until != 0 && until <= now.Unix() {
			set(c, untilKey(user), 0) // a lockout that ended: no longer listed
		}
		if m.cfg.LockoutAfter <= 0 || len(m.cfg.Lockouts) == 0 {
			return nil
		}
		if first := c.Get(firstKey(user)); first == 0 || (m.cfg.StrikeWindow > 0 && now.Unix()-first > int64(m.cfg.StrikeWindow/time.Second)) {
			set(c, firstKey(user), now.Unix())
			set(c, strikesKey(user), 0)
		}
		c.Add(strikesKey(user), 1)
		if c.Get(strikesKey(user)) < int64(m.cfg.LockoutAfter) {
			return nil
		}
		level := c.Get(levelKey(user))
		lock = m.cfg.Lockouts[min(int(level), len(m.cfg.Lockouts)-1)]
		c.Add(levelKey(user), 1)
		set(c, untilKey(user), now.Add(lock).Unix())
		set(c, strikesKey(user), 0)
		set(c, firstKey(user), 0)
		c.Add(lockedKey(day), 1)
		return nil
	})
	return lock, err
}

// set gives a counter an absolute value (0 removes it).
func set(c engine.Counters, key string, v int64) { c.Add(key, v-c.Get(key)) }

// Lift ends user's lockout and forgets their strikes and lockout level.
func (m *Moderator) Lift(ctx context.Context, user string) error {
	if m == nil || m.store == nil {
		return nil
	}
	return m.store.Update(ctx, func(c engine.Counters) error {
		for _, k := range []string{untilKey(user), strikesKey(user), firstKey(user), levelKey(user)} {
			set(c, k, 0)
		}
		return nil
	})
}

// Lockout is one user locked out now.
type Lockout struct {
	User  string
	Until time.Time
}

// Stats are today's refusals and lockouts, and who is locked out now.
type Stats struct {
	Refused  int64
	Lockouts int64
	Locked   []Lockout
}

// Stats reads today's figures and the current lockouts.
func (m *Moderator) Stats(ctx context.Context) (Stats, error) {
	var st Stats
	if m == nil || m.store == nil {
		return st, nil
	}
	now := m.now()
	day := m.day(now)
	err := m.store.View(ctx, func(c engine.Counters) error {
		st.Refused = c.Get(refusedKey(day))
		st.Lockouts = c.Get(lockedKey(day))
		c.Scan("mod:until:", func(key string, v int64) {
			if v > now.Unix() {
				st.Locked = append(st.Locked, Lockout{User: strings.TrimPrefix(key, "mod:until:"), Until: time.Unix(v, 0)})
			}
		})
		return nil
	})
	return st, err
}

// String is the /admin stats paragraph.
func (s Stats) String(now time.Time) string {
	var b strings.Builder
	fmt.Fprintf(&b, "moderation: %d prompts refused · %d lockouts today", s.Refused, s.Lockouts)
	for _, l := range s.Locked {
		fmt.Fprintf(&b, "\nlocked out: %s for %s more (/admin unban %s)", l.User, engine.FormatDuration(l.Until.Sub(now).Round(time.Minute), engine.EN), l.User)
	}
	return b.String()
}

// Report is Stats as the /admin stats paragraph.
func (m *Moderator) Report(ctx context.Context) (string, error) {
	st, err := m.Stats(ctx)
	if err != nil {
		return "", err
	}
	return st.String(m.now()), nil
}
