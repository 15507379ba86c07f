package main

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/picbot/picbot/bots/command"
	"github.com/picbot/picbot/engine"
	"github.com/picbot/picbot/engine/apispace"
	"github.com/picbot/picbot/engine/showapi"
	"github.com/picbot/picbot/engine/zhiqite"
	"github.com/picbot/picbot/moderation"
	"github.com/picbot/picbot/quota"
)

// Operators' features: moderation, presets and chats' own defaults
// (issue 17). Wired into the shared chat service, so every platform has them.

// wireOps gives the chat service its moderator, presets and settings store.
func (a *app) wireOps() error {
	m, err := moderation.New(a.cfg.Moderation, a.db, a.metrics, a.quota.Day, nil)
	if err != nil {
		return err
	}
	a.svc.Moderator = m
	a.svc.Presets = a.cfg.Presets
	a.svc.Settings = a.db
	a.svc.MoreStats = append(a.svc.MoreStats, a.accountStats)
	if len(a.models.Sources) > 0 {
		a.svc.Adult = a.models.Adult
	}
	return nil
}

// adminWithLockouts is the quota's admin side for the web console: its
// unban also lifts a moderation lockout, as /admin unban does in a chat.
type adminWithLockouts struct {
	*quota.Quota
	lift func(ctx context.Context, user string) error
}

func (a adminWithLockouts) Ban(ctx context.Context, key string, banned bool) error {
	if err := a.Quota.Ban(ctx, key, banned); err != nil || banned || a.lift == nil {
		return err
	}
	return a.lift(ctx, key)
}

// webAdmin is what the web console's People page changes.
func (a *app) webAdmin() adminWithLockouts {
	w := adminWithLockouts{Quota: a.quota}
	if a.svc != nil && a.svc.Moderator != nil {
		w.lift = a.svc.Moderator.Lift
	}
	return w
}

// presetNames are the configured presets, sorted, for Discord's autocomplete.
func (a *app) presetNames() []string {
	names := slices.Collect(maps.Keys(a.cfg.Presets))
	slices.Sort(names)
	return names
}

// validateOps checks the moderation and presets sections.
func (c *Config) validateOps(bad badFunc) {
	m := c.Moderation
	if m.LockoutAfter < 0 {
		bad("moderation.lockout_after", "must not be negative (%d); 0 turns lockouts off", m.LockoutAfter)
	}
	if m.StrikeWindow < 0 {
		bad("moderation.strike_window", "must not be negative (%s); 0 counts refusals forever", m.StrikeWindow)
	}
	for _, d := range m.Lockouts {
		if d <= 0 {
			bad("moderation.lockouts", "each must be a duration above 0, like 1h, not %s", d)
		}
	}
	for _, k := range m.NSFWChats {
		if !strings.Contains(k, ":") {
			bad("moderation.nsfw_chats", "%q needs its platform, like telegram:%s or discord:g<server id>", k, k)
		}
	}
	lim := c.Engine.Limits
	for name, p := range c.Presets {
		key := "presets." + name
		if name == "" || strings.ContainsAny(name, " \t") {
			bad(key, "a preset's name must be one word, not %q", name)
		}
		if p.Size != "" {
			w, h, ok := command.ParseSize(p.Size)
			if !ok || w < lim.MinSide || h < lim.MinSide || w > lim.MaxSide || h > lim.MaxSide || w%8 != 0 || h%8 != 0 {
				bad(key+".size", "must be WIDTHxHEIGHT, each side a multiple of 8 from %d to %d, not %q", lim.MinSide, lim.MaxSide, p.Size)
			}
		}
		if p.Steps < 0 || p.Steps > lim.MaxSteps {
			bad(key+".steps", "must be from 1 to %d (0: the default), not %d", lim.MaxSteps, p.Steps)
		}
	}
}

// opsSummary adds the start summary's lines on vendor accounts, moderation
// and presets, when any is configured.
func (l *loaded) opsSummary(add func(key, format string, args ...any)) {
	c := l.cfg
	var pools []string
	for _, v := range []struct {
		name    string
		enabled bool
		own     AccountConfig
		accts   []AccountConfig
	}{
		{zhiqite.Name, c.Vendors.Zhiqite.Enabled, AccountConfig{AppCode: c.Vendors.Zhiqite.AppCode, AppKey: c.Vendors.Zhiqite.AppKey}, c.Vendors.Zhiqite.Accounts},
		{showapi.Name, c.Vendors.ShowAPI.Enabled, AccountConfig{AppCode: c.Vendors.ShowAPI.AppCode, AppKey: c.Vendors.ShowAPI.AppKey}, c.Vendors.ShowAPI.Accounts},
		{apispace.Name, c.Vendors.APISpace.Enabled, AccountConfig{Token: c.Vendors.APISpace.Token}, c.Vendors.APISpace.Accounts},
	} {
		if !v.enabled || len(v.accts) == 0 {
			continue
		}
		var names []string
		for _, a := range withDefault(v.own, v.accts) {
			names = append(names, a.Name)
		}
		pools = append(pools, v.name+" ("+strings.Join(names, ", ")+")")
	}
	if len(pools) > 0 {
		add("accounts", "%s", strings.Join(pools, "; "))
	}
	m := c.Moderation
	if n := len(m.BlockedWords) + len(m.WordFiles) + len(m.NSFWWords); n > 0 {
		lock := "no lockouts"
		if m.LockoutAfter > 0 && len(m.Lockouts) > 0 {
			var steps []string
			for _, d := range m.Lockouts {
				steps = append(steps, engine.FormatDuration(d, engine.EN))
			}
			lock = fmt.Sprintf("lockout after %d refusals: %s", m.LockoutAfter, strings.Join(steps, ", "))
		}
		add("moderation", "%d blocked words, %d word files, %d NSFW words, %d exceptions; %s",
			len(m.BlockedWords), len(m.WordFiles), len(m.NSFWWords), len(m.Exceptions), lock)
	}
	if len(c.Presets) > 0 {
		names := slices.Collect(maps.Keys(c.Presets))
		slices.Sort(names)
		add("presets", "%s", strings.Join(names, ", "))
	}
}
