package quota

import (
	"context"
	"slices"
	"strconv"
	"strings"

	"github.com/picbot/picbot/engine"
)

// SettingsScanner is what Counters offer when they can list settings by
// prefix (the bbolt store's do): People needs it to find every ban and
// override the admins set.
type SettingsScanner interface {
	ScanSettings(prefix string, fn func(key, value string))
}

// Person is a user or chat key with what the admins set and today's use.
type Person struct {
	Key    string
	Chat   bool   // a chat or guild key, not a user
	Used   int64  // images counted today
	Tier   string // set by /admin tier ("" none); ConfigTier is quota.users'
	Daily  int    // set by /admin quota; -1 none
	Banned bool   // by /admin ban or quota.banned_*
	// ConfigTier is the tier quota.users gives; Admin is in quota.admins.
	ConfigTier string
	Admin      bool
}

// People lists every user and chat with a use today or a setting, users
// first, each group by key.
func (q *Quota) People(ctx context.Context) ([]Person, error) {
	day := q.Day(q.now())
	byKey := map[string]*Person{}
	get := func(key string, chat bool) *Person {
		p := byKey[key]
		if p == nil {
			p = &Person{Key: key, Chat: chat, Daily: -1}
			byKey[key] = p
		}
		return p
	}
	for _, k := range q.cfg.BannedUsers {
		get(k, false).Banned = true
	}
	for _, k := range q.cfg.BannedChats {
		get(k, true).Banned = true
	}
	for k, t := range q.cfg.Users {
		get(k, false).ConfigTier = t
	}
	for _, k := range q.cfg.Admins {
		get(k, false).Admin = true
	}
	err := q.store.View(ctx, func(c engine.Counters) error {
		suffix := ":" + day
		for _, kind := range []struct {
			prefix string
			chat   bool
		}{{"d:u:", false}, {"d:c:", true}} {
			c.Scan(kind.prefix, func(key string, v int64) {
				if who, ok := strings.CutSuffix(strings.TrimPrefix(key, kind.prefix), suffix); ok {
					get(who, kind.chat).Used = v
				}
			})
		}
		s, ok := c.(SettingsScanner)
		if !ok {
			return nil
		}
		s.ScanSettings("ban:", func(key, _ string) {
			who := strings.TrimPrefix(key, "ban:")
			p := byKey[who]
			if p == nil {
				p = get(who, isChatKey(who))
			}
			p.Banned = true
		})
		s.ScanSettings("tier:", func(key, v string) { get(strings.TrimPrefix(key, "tier:"), false).Tier = v })
		s.ScanSettings("daily:", func(key, v string) {
			if n, err := strconv.Atoi(v); err == nil {
				get(strings.TrimPrefix(key, "daily:"), false).Daily = n
			}
		})
		return nil
	})
	out := make([]Person, 0, len(byKey))
	for _, p := range byKey {
		out = append(out, *p)
	}
	slices.SortFunc(out, func(a, b Person) int {
		if a.Chat != b.Chat {
			if a.Chat {
				return 1
			}
			return -1
		}
		return strings.Compare(a.Key, b.Key)
	})
	return out, err
}

// isChatKey guesses from a banned key whether it names a chat: the bans of
// users and chats share one namespace. Telegram groups have negative ids,
// guild keys start with g; anything else is taken for a user.
func isChatKey(k string) bool {
	_, id, _ := strings.Cut(k, ":")
	return strings.HasPrefix(id, "-") || strings.HasPrefix(id, "g")
}

// Tiers lists the configured tier names, sorted, for forms.
func (q *Quota) Tiers() []string {
	names := make([]string, 0, len(q.cfg.Tiers))
	for n := range q.cfg.Tiers {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Refund gives back, inside the transaction that writes j, what a settled
// job cost its owner on its day: an operator's goodwill for a picture that
// was delivered but bad. Once per job: it marks the charge refunded.
func (q *Quota) Refund(c engine.Counters, j *engine.Job) error {
	ch := &j.Charge
	switch {
	case ch.Settled == engine.ChargeRefunded:
		return engine.Errorf(engine.ECONFLICT, "Job %s was refunded already.", "任务 %s 已经退过额度了。", j.ID)
	case ch.Settled == "":
		return engine.Errorf(engine.ECONFLICT, "Job %s is not finished; cancel it instead.", "任务 %s 尚未结束，请改为取消。", j.ID)
	case ch.Unlimited || ch.Cost == 0:
		return engine.Errorf(engine.ECONFLICT, "Job %s cost its owner nothing.", "任务 %s 没有扣用户额度。", j.ID)
	}
	back := ch.Cost
	if n := int64(j.Request.Images()); j.Dropped > 0 && n > 0 {
		back -= min(ch.Cost*int64(j.Dropped)/n, ch.Cost) // given back already at settlement
	}
	user := j.Owner.Key()
	c.Add(userDay(user, ch.Day), -back)
	c.Add(chatDay(j.Chat.QuotaKey(), ch.Day), -back)
	c.Add(globalDay(ch.Day), -back)
	vendor := j.Vendor
	if vendor == "" {
		vendor = "none"
	}
	c.Add(statKey(q.Day(q.now()), vendor, "refunds"), 1)
	ch.Settled = engine.ChargeRefunded
	return nil
}
