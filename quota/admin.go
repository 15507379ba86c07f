package quota

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/picbot/picbot/engine"
)

// Admin commands change settings kept in the store, so they outlive restarts
// and need no edit of the configuration file.

// SetTier assigns user (a key such as "telegram:123") a configured tier;
// "default" or "" goes back to the configured assignment.
func (q *Quota) SetTier(ctx context.Context, user, tier string) error {
	if tier == "default" {
		tier = ""
	}
	if _, ok := q.cfg.Tiers[tier]; tier != "" && !ok {
		names := make([]string, 0, len(q.cfg.Tiers))
		for n := range q.cfg.Tiers {
			names = append(names, n)
		}
		sort.Strings(names)
		return engine.Errorf(engine.EINVALID, "No tier %q; tiers: default %s.", "没有等级 %q；可选：default %s。", tier, strings.Join(names, " "))
	}
	return q.store.Update(ctx, func(c engine.Counters) error { c.SetSetting(tierKey(user), tier); return nil })
}

// SetDaily overrides user's daily image quota; n < 0 removes the override.
func (q *Quota) SetDaily(ctx context.Context, user string, n int) error {
	v := ""
	if n >= 0 {
		v = strconv.Itoa(n)
	}
	return q.store.Update(ctx, func(c engine.Counters) error { c.SetSetting(dailyKey(user), v); return nil })
}

// Ban bans (or, with banned false, unbans) a user or chat key.
func (q *Quota) Ban(ctx context.Context, key string, banned bool) error {
	v := ""
	if banned {
		v = "1"
	}
	return q.store.Update(ctx, func(c engine.Counters) error { c.SetSetting(banKey(key), v); return nil })
}

// VendorStats are one vendor's figures for a day.
type VendorStats struct {
	Vendor    string
	Delivered int64
	Failed    int64
	Cancelled int64
	Calls     int64
	Refunds   int64
}

// Stats are a day's figures.
type Stats struct {
	Day     string
	Zone    string // the time zone the day is counted in
	Jobs    int64  // accepted
	Vendors []VendorStats
}

// Stats reads today's figures.
func (q *Quota) Stats(ctx context.Context) (Stats, error) { return q.StatsOn(ctx, q.Day(q.now())) }

// StatsOn reads one quota day's figures (day as Day gives it).
func (q *Quota) StatsOn(ctx context.Context, day string) (Stats, error) {
	st := Stats{Day: day, Zone: q.cfg.TimeZone}
	byVendor := map[string]*VendorStats{}
	prefix := "st:" + st.Day + ":"
	err := q.store.View(ctx, func(c engine.Counters) error {
		c.Scan(prefix, func(key string, v int64) {
			rest := strings.TrimPrefix(key, prefix)
			vendor, what, ok := strings.Cut(rest, ":")
			if !ok {
				if rest == "jobs" {
					st.Jobs = v
				}
				return
			}
			vs := byVendor[vendor]
			if vs == nil {
				vs = &VendorStats{Vendor: vendor}
				byVendor[vendor] = vs
			}
			switch what {
			case string(engine.StateDelivered):
				vs.Delivered = v
			case string(engine.StateFailed):
				vs.Failed = v
			case string(engine.StateCancelled):
				vs.Cancelled = v
			case "calls":
				vs.Calls = v
			case "refunds":
				vs.Refunds = v
			}
		})
		return nil
	})
	for _, vs := range byVendor {
		st.Vendors = append(st.Vendors, *vs)
	}
	sort.Slice(st.Vendors, func(i, j int) bool { return st.Vendors[i].Vendor < st.Vendors[j].Vendor })
	return st, err
}

// String renders stats as a small table.
func (s Stats) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (day from midnight %s): %d jobs accepted", s.Day, s.Zone, s.Jobs)
	for _, v := range s.Vendors {
		fmt.Fprintf(&b, "\n%-9s delivered %d · failed %d · cancelled %d · billed calls %d · refunds %d",
			v.Vendor, v.Delivered, v.Failed, v.Cancelled, v.Calls, v.Refunds)
	}
	return b.String()
}
