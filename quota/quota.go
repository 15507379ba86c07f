// Package quota decides who may start a job and counts what jobs cost. It is
// the only package that imports golang.org/x/time/rate. Short-term rate
// limits live in memory; daily and concurrent counts live in the store and
// change in the same transaction as the job they belong to.
package quota

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/picbot/picbot/engine"
)

// Tier is a set of limits. Zero means unlimited for counts.
type Tier struct {
	Daily      int           `yaml:"daily"`      // images a day
	Concurrent int           `yaml:"concurrent"` // jobs at once
	Every      time.Duration `yaml:"every"`      // one command per Every...
	Burst      int           `yaml:"burst"`      // ...with bursts of this many
	// Priority orders the users waiting for a busy vendor: higher first,
	// in turn among equals (default 0).
	Priority int `yaml:"priority"`
}

// Config holds every limit.
type Config struct {
	TimeZone string          `yaml:"time_zone"` // where the quota day starts at midnight
	Default  Tier            `yaml:"default"`
	Tiers    map[string]Tier `yaml:"tiers"`
	// Users assigns tiers by user key ("telegram:123"); Roles by Discord role id.
	Users map[string]string `yaml:"users"`
	Roles map[string]string `yaml:"roles"`
	// Admins are unlimited and may run admin commands.
	Admins []string `yaml:"admins"`
	// ChatDaily bounds images a day per chat or guild; GlobalDaily across all users.
	ChatDaily   int `yaml:"chat_daily"`
	GlobalDaily int `yaml:"global_daily"`
	// Costs is the price of one image of each kind, in quota units (default 1).
	Costs map[engine.Kind]int `yaml:"costs"`
	// AllowedUsers and AllowedChats, when not empty, are the only ones served.
	AllowedUsers []string `yaml:"allowed_users"`
	AllowedChats []string `yaml:"allowed_chats"`
	BannedUsers  []string `yaml:"banned_users"`
	BannedChats  []string `yaml:"banned_chats"`
	// BoughtExpireAfter, when positive, makes bought images expire this long
	// after the user's last purchase (set from payments.expire_after); 0: never.
	BoughtExpireAfter time.Duration `yaml:"-"`
}

// DefaultConfig: 20 images a day, 2 running at once, 1 command per 10 s with a burst of 3.
func DefaultConfig() Config {
	return Config{
		TimeZone: "Asia/Shanghai",
		Default:  Tier{Daily: 20, Concurrent: 2, Every: 10 * time.Second, Burst: 3},
		Costs:    map[engine.Kind]int{engine.KindDraw: 1, engine.KindAnime: 1, engine.KindUpscale: 1, engine.KindSwapface: 1},
	}
}

// Store reads and writes the store's counters and settings.
type Store interface {
	View(ctx context.Context, fn func(engine.Counters) error) error
	Update(ctx context.Context, fn func(engine.Counters) error) error
}

// SettingsPrefetcher is counters that can read several settings at once
// (PostgreSQL: in one round trip instead of one each); Setting then
// answers from what was read.
type SettingsPrefetcher interface {
	PrefetchSettings(keys ...string)
}

// Quota implements engine.Quota.
type Quota struct {
	cfg   Config
	loc   *time.Location
	store Store
	now   func() time.Time

	// reserveRates: the store's reservations take the rate token (ReservedRates).
	reserveRates bool

	mu       sync.Mutex
	limiters map[Tier]*Keyed // users' command rates, one set per tier
}

var _ engine.Quota = (*Quota)(nil)

// New returns a Quota over store. now may be nil (time.Now).
func New(cfg Config, store Store, now func() time.Time) (*Quota, error) {
	if cfg.TimeZone == "" {
		cfg.TimeZone = "Asia/Shanghai"
	}
	loc, err := time.LoadLocation(cfg.TimeZone)
	if err != nil {
		return nil, fmt.Errorf("quota.time_zone %q: %w", cfg.TimeZone, err)
	}
	for user, tier := range cfg.Users {
		if _, ok := cfg.Tiers[tier]; !ok {
			return nil, fmt.Errorf("quota.users: %s has unknown tier %q", user, tier)
		}
	}
	for role, tier := range cfg.Roles {
		if _, ok := cfg.Tiers[tier]; !ok {
			return nil, fmt.Errorf("quota.roles: %s has unknown tier %q", role, tier)
		}
	}
	if now == nil {
		now = time.Now
	}
	rr, ok := store.(ReservedRates)
	return &Quota{cfg: cfg, loc: loc, store: store, now: now, limiters: make(map[Tier]*Keyed),
		reserveRates: ok && rr.RatesInReserve()}, nil
}

// IsAdmin reports whether u may run admin commands.
func (q *Quota) IsAdmin(u engine.UserRef) bool { return slices.Contains(q.cfg.Admins, u.Key()) }

// Counter and setting keys.
func userDay(u, day string) string { return "d:u:" + u + ":" + day }
func chatDay(c, day string) string { return "d:c:" + c + ":" + day }
func globalDay(day string) string  { return "d:g:" + day }
func running(u string) string      { return "r:u:" + u }
func banKey(k string) string       { return "ban:" + k }
func tierKey(u string) string      { return "tier:" + u }
func dailyKey(u string) string     { return "daily:" + u }
func boughtKey(u string) string    { return "b:u:" + u } // bought images left; see wallet.go

// Day returns the quota day t falls on.
func (q *Quota) Day(t time.Time) string { return t.In(q.loc).Format(time.DateOnly) }

// ResetAt returns when the quota day holding t ends.
func (q *Quota) ResetAt(t time.Time) time.Time {
	y, m, d := t.In(q.loc).Date()
	return time.Date(y, m, d+1, 0, 0, 0, 0, q.loc)
}

// Admit implements engine.Quota.
func (q *Quota) Admit(ctx context.Context, owner engine.UserRef, chat engine.ChatRef) error {
	user := owner.Key()
	if q.IsAdmin(owner) {
		return nil
	}
	// The tier is read with the bans, so an /admin tier change applies to
	// the next command: limiters are kept per tier, so the user moves to the
	// new tier's bucket at once.
	tier, err := q.allowed(ctx, user, owner, chat)
	if err != nil {
		return err
	}
	if tier.Every <= 0 || q.reserveRates {
		return nil // no limit, or Reserve takes the token
	}
	if shared, ok := q.store.(SharedRates); ok {
		return rateErr(shared.AllowRate(ctx, rateKey(user, tier), tier.Every, tier.Burst))
	}
	q.mu.Lock()
	lim, ok := q.limiters[tier]
	if !ok {
		lim = NewKeyed(tier.Every, tier.Burst, q.now)
		q.limiters[tier] = lim
	}
	q.mu.Unlock()
	if ok, wait := lim.Allow(user); !ok {
		secs := math.Ceil(wait.Seconds())
		e := tooFast(secs)
		e.RetryAfter = secs
		return e
	}
	return nil
}

// tooFast is the rate limit's refusal, with the wait said naturally: "8s", "2m", "1h 5m".
func tooFast(secs float64) *engine.Error {
	wait := time.Duration(secs) * time.Second
	return engine.Errorf(engine.ERATELIMIT, "You're sending commands too fast; try again in %[1]s.", "操作太频繁了，请%[2]s后再试。",
		engine.FormatDuration(wait, engine.EN), engine.FormatDuration(wait, engine.ZH))
}

// Precheck says, writing nothing and taking no rate-limit token, whether a
// command of req by owner would be admitted now: bans, allow-lists, rate
// limit, concurrent and daily counts. Callers run it before downloading the
// command's input images; Admit and Reserve stay the authority.
func (q *Quota) Precheck(ctx context.Context, owner engine.UserRef, chat engine.ChatRef, req *engine.Request) error {
	if q.IsAdmin(owner) {
		return nil
	}
	user := owner.Key()
	tier, err := q.allowed(ctx, user, owner, chat)
	if err != nil {
		return err
	}
	if shared, ok := q.store.(SharedRates); ok && tier.Every > 0 {
		if err := rateErr(shared.PeekRate(ctx, rateKey(user, tier), tier.Every, tier.Burst)); err != nil {
			return err
		}
	} else if tier.Every > 0 {
		q.mu.Lock()
		lim := q.limiters[tier]
		q.mu.Unlock()
		if lim != nil {
			if ok, wait := lim.Peek(user); !ok {
				secs := math.Ceil(wait.Seconds())
				e := tooFast(secs)
				e.RetryAfter = secs
				return e
			}
		}
	}
	if q.store == nil {
		return nil
	}
	now := q.now()
	return q.store.View(ctx, func(c engine.Counters) error {
		_, err := q.limits(c, owner, chat, q.Cost(req), now)
		return err
	})
}

// Limiters reports how many users hold a rate limiter, for tests and metrics.
func (q *Quota) Limiters() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := 0
	for _, k := range q.limiters {
		n += k.Len()
	}
	return n
}

func (q *Quota) allowed(ctx context.Context, user string, owner engine.UserRef, chat engine.ChatRef) (Tier, error) {
	chatKey := chat.QuotaKey()
	chatIDKey := chat.Platform + ":" + chat.ChatID
	banned := slices.Contains(q.cfg.BannedUsers, user)
	chatBanned := slices.Contains(q.cfg.BannedChats, chatKey) || slices.Contains(q.cfg.BannedChats, chatIDKey)
	tier := q.tier(nil, owner)
	if !banned && !chatBanned && q.store != nil {
		err := q.store.View(ctx, func(c engine.Counters) error {
			if p, ok := c.(SettingsPrefetcher); ok {
				p.PrefetchSettings(banKey(user), banKey(chatKey), banKey(chatIDKey), tierKey(user), dailyKey(user))
			}
			banned = c.Setting(banKey(user)) != ""
			chatBanned = c.Setting(banKey(chatKey)) != "" || c.Setting(banKey(chatIDKey)) != ""
			tier = q.tier(c, owner)
			return nil
		})
		if err != nil {
			return Tier{}, err
		}
	}
	switch {
	case banned || len(q.cfg.AllowedUsers) > 0 && !slices.Contains(q.cfg.AllowedUsers, user):
		return Tier{}, engine.Errorf(engine.EFORBIDDEN, "Sorry, you can't use this bot.", "抱歉，你无法使用这个机器人。")
	case chatBanned || len(q.cfg.AllowedChats) > 0 && !slices.Contains(q.cfg.AllowedChats, chatKey) && !slices.Contains(q.cfg.AllowedChats, chatIDKey):
		return Tier{}, engine.Errorf(engine.EFORBIDDEN, "Sorry, this bot is not available in this chat.", "抱歉，这个机器人在本群不可用。")
	}
	return tier, nil
}

// better reports whether a is a better tier than b: more images a day, zero
// (unlimited) being best.
func better(a, b Tier) bool {
	switch {
	case a.Daily == b.Daily:
		return false
	case a.Daily == 0:
		return true
	case b.Daily == 0:
		return false
	}
	return a.Daily > b.Daily
}

// tier returns owner's limits: an admin-set tier, then the configured user
// tier, then the best tier among their roles, then the default. c may be nil.
func (q *Quota) tier(c engine.Counters, owner engine.UserRef) Tier {
	user := owner.Key()
	t := q.cfg.Default
	if name, ok := q.cfg.Users[user]; ok {
		t = q.cfg.Tiers[name]
	} else {
		for _, role := range owner.Roles {
			if name, ok := q.cfg.Roles[role]; ok && better(q.cfg.Tiers[name], t) {
				t = q.cfg.Tiers[name]
			}
		}
	}
	if c != nil {
		if name := c.Setting(tierKey(user)); name != "" {
			if set, ok := q.cfg.Tiers[name]; ok {
				t = set
			}
		}
		if v := c.Setting(dailyKey(user)); v != "" {
			if n, err := strconv.Atoi(v); err == nil {
				t.Daily = n
			}
		}
	}
	return t
}

// Cost returns what r costs in quota units.
func (q *Quota) Cost(r *engine.Request) int64 {
	price, ok := q.cfg.Costs[r.Kind]
	if !ok {
		price = 1
	}
	return int64(price) * int64(r.Images())
}

// Reserve implements engine.Quota. Every limit is checked before anything is
// counted, so a refusal changes nothing.
func (q *Quota) Reserve(c engine.Counters, j *engine.Job, now time.Time) error {
	cost := q.Cost(&j.Request)
	day := q.Day(now)
	j.Charge = engine.Charge{Cost: cost, Day: day, Priority: q.tier(c, j.Owner).Priority}
	if q.IsAdmin(j.Owner) {
		j.Charge.Unlimited = true
		c.Add(statKey(day, "", "jobs"), 1) // /admin stats counts every job, admins' too
		return nil
	}
	if err := q.takeRate(c, j.Owner); err != nil {
		return err
	}
	bought, err := q.limits(c, j.Owner, j.Chat, cost, now)
	if err != nil {
		return err
	}
	user, chat := j.Owner.Key(), j.Chat.QuotaKey()
	j.Charge.Bought = bought
	c.Add(statKey(day, "", "jobs"), 1)
	c.Add(running(user), 1)
	c.Add(userDay(user, day), cost-bought)
	c.Add(boughtKey(user), -bought)
	c.Add(chatDay(chat, day), cost)
	c.Add(globalDay(day), cost)
	return nil
}

// takeRate takes owner's rate-limit token in the reserving transaction,
// where the store does that (reserveRates); first, as Admit would have.
func (q *Quota) takeRate(c engine.Counters, owner engine.UserRef) error {
	if !q.reserveRates {
		return nil
	}
	t := q.tier(c, owner)
	if t.Every <= 0 {
		return nil
	}
	rt, ok := c.(RateTaker)
	if !ok {
		return engine.Errorf(engine.EINTERNAL, "The bot's storage failed.", "机器人的存储出错了。")
	}
	ok, wait := rt.TakeRate(rateKey(owner.Key(), t), t.Every, t.Burst)
	return rateErr(ok, wait, nil)
}

// limits checks the counted limits for a job of cost, reading c only, and
// returns how much of cost the owner's bought images pay: what the day's
// free quota does not cover.
func (q *Quota) limits(c engine.Counters, owner engine.UserRef, chatRef engine.ChatRef, cost int64, now time.Time) (bought int64, err error) {
	day := q.Day(now)
	user, chat := owner.Key(), chatRef.QuotaKey()
	t := q.tier(c, owner)
	if t.Concurrent > 0 && c.Get(running(user)) >= int64(t.Concurrent) {
		return 0, engine.Errorf(engine.EQUOTA, "You already have %d jobs running; please wait for one to finish.", "你已有 %d 个任务在进行，请等其中一个完成。", t.Concurrent)
	}
	if t.Daily > 0 {
		if used := c.Get(userDay(user, day)); used+cost > int64(t.Daily) {
			bought = used + cost - max(int64(t.Daily), used)
			if left := boughtLeft(c, user, now); bought > left {
				return 0, q.dailyError(used, int64(t.Daily), cost, left, now)
			}
		}
	}
	if q.cfg.ChatDaily > 0 && c.Get(chatDay(chat, day))+cost > int64(q.cfg.ChatDaily) {
		return 0, engine.Errorf(engine.EQUOTA, "This chat has used its %[1]d images for today; it resets in %[2]s.", "本群今天的 %[1]d 张图片额度已用完，%[3]s后重置。", q.cfg.ChatDaily, q.untilReset(now, engine.EN), q.untilReset(now, engine.ZH))
	}
	if q.cfg.GlobalDaily > 0 && c.Get(globalDay(day))+cost > int64(q.cfg.GlobalDaily) {
		return 0, engine.Errorf(engine.EQUOTA, "The bot has reached its budget for today; it resets in %[1]s.", "机器人今天的总额度已用完，%[2]s后重置。", q.untilReset(now, engine.EN), q.untilReset(now, engine.ZH))
	}
	return bought, nil
}

func (q *Quota) dailyError(used, limit, cost, bought int64, now time.Time) error {
	if bought > 0 {
		left := max(limit-used, 0) + bought
		return engine.Errorf(engine.EQUOTA, "This needs %[1]d images but you have %[2]d left (today's and bought); today's reset in %[3]s.", "这需要 %[1]d 张图片额度，你只剩 %[2]d 张（含购买的），今日额度%[4]s后重置。", cost, left, q.untilReset(now, engine.EN), q.untilReset(now, engine.ZH))
	}
	if used < limit {
		return engine.Errorf(engine.EQUOTA, "This needs %[1]d images but you have %[2]d left today; it resets in %[3]s.", "这需要 %[1]d 张图片额度，你今天只剩 %[2]d 张，%[4]s后重置。", cost, limit-used, q.untilReset(now, engine.EN), q.untilReset(now, engine.ZH))
	}
	return engine.Errorf(engine.EQUOTA, "You've used all %[1]d images for today; it resets in %[2]s.", "你今天的 %[1]d 张图片额度已用完，%[3]s后重置。", limit, q.untilReset(now, engine.EN), q.untilReset(now, engine.ZH))
}

func (q *Quota) untilReset(now time.Time, lang engine.Lang) string {
	return engine.FormatDuration(q.ResetAt(now).Sub(now), lang)
}

// Settle implements engine.Quota. The job's Charge record makes it idempotent.
func (q *Quota) Settle(c engine.Counters, j *engine.Job, refund bool) {
	ch := &j.Charge
	if ch.Settled != "" {
		return
	}
	q.count(c, j, refund)
	if ch.Unlimited {
		ch.Released = true
		ch.Settled = engine.ChargeCommitted
		return
	}
	user := j.Owner.Key()
	if !ch.Released {
		c.Add(running(user), -1)
		ch.Released = true
	}
	if refund {
		c.Add(userDay(user, ch.Day), -(ch.Cost - ch.Bought))
		c.Add(boughtKey(user), ch.Bought)
		c.Add(chatDay(j.Chat.QuotaKey(), ch.Day), -ch.Cost)
		c.Add(globalDay(ch.Day), -ch.Cost)
		ch.Settled = engine.ChargeRefunded
		return
	}
	// The vendor's audit removed some images of a batch: those are not
	// delivered, so their share of the cost goes back. Settled makes it once.
	if n := int64(j.Request.Images()); j.Dropped > 0 && n > 0 {
		back := min(ch.Cost*int64(j.Dropped)/n, ch.Cost)
		if back > 0 {
			// Bought images go back first: they were spent last.
			toBought := min(back, ch.Bought)
			c.Add(boughtKey(user), toBought)
			c.Add(userDay(user, ch.Day), -(back - toBought))
			c.Add(chatDay(j.Chat.QuotaKey(), ch.Day), -back)
			c.Add(globalDay(ch.Day), -back)
		}
	}
	ch.Settled = engine.ChargeCommitted
}

// count keeps today's figures per vendor for /admin stats: jobs by final
// state, billed calls, refunds. It runs once per job, with the settlement.
func (q *Quota) count(c engine.Counters, j *engine.Job, refund bool) {
	day := q.Day(q.now())
	vendor := j.Vendor
	if vendor == "" && len(j.Tried) > 0 {
		vendor = j.Tried[len(j.Tried)-1]
	}
	if vendor == "" {
		vendor = "none"
	}
	c.Add(statKey(day, vendor, string(j.State)), 1)
	// Billed calls under the vendor that billed each (a job that failed
	// over cost something at every vendor it went to); calls recorded
	// without a vendor (jobs stored before BilledBy) under the last one.
	rest := j.BilledCalls
	for v, n := range j.BilledBy {
		if n > 0 {
			c.Add(statKey(day, v, "calls"), int64(n))
			rest -= n
		}
	}
	if rest > 0 {
		c.Add(statKey(day, vendor, "calls"), int64(rest))
	}
	if refund && !j.Charge.Unlimited {
		c.Add(statKey(day, vendor, "refunds"), 1)
	}
}

// statKey names a statistic: "st:<day>:<vendor>:<what>"; vendor "" is the whole bot.
func statKey(day, vendor, what string) string {
	if vendor == "" {
		return "st:" + day + ":" + what
	}
	return "st:" + day + ":" + vendor + ":" + what
}

// Status is what /quota shows.
type Status struct {
	Unlimited bool
	Used      int64
	Limit     int64 // 0: unlimited
	Running   int64
	ResetAt   time.Time
	Bought    int64     // bought images left, used after the daily quota
	Expires   time.Time // when they expire; zero: never
}

// Status reads owner's standing today.
func (q *Quota) Status(ctx context.Context, owner engine.UserRef) (Status, error) {
	now := q.now()
	st := Status{ResetAt: q.ResetAt(now), Unlimited: q.IsAdmin(owner)}
	err := q.store.View(ctx, func(c engine.Counters) error {
		t := q.tier(c, owner)
		st.Used = c.Get(userDay(owner.Key(), q.Day(now)))
		st.Limit = int64(t.Daily)
		st.Running = c.Get(running(owner.Key()))
		st.Bought = boughtLeft(c, owner.Key(), now)
		if st.Bought > 0 {
			st.Expires = boughtExpiry(c, owner.Key())
		}
		return nil
	})
	return st, err
}
