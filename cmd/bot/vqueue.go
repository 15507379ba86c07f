package main

import (
	"fmt"

	"github.com/picbot/picbot/engine/apispace"
	"github.com/picbot/picbot/engine/showapi"
	"github.com/picbot/picbot/engine/zhiqite"
)

// Concurrency at the vendors (issue 17): vendors.<v>.concurrency bounds the
// tasks the bot holds at a vendor at once, accounts[].concurrency those at
// each account; the jobs beyond wait in the engine's gate, in turn between
// users (quota tiers' priority first), and /queue shows the line.

// vendorConcurrency is each enabled seed vendor's configured bound, for
// engine.Config.Concurrency (0s left out: no bound).
func (c *Config) vendorConcurrency() map[string]int {
	out := map[string]int{}
	v := c.Vendors
	for name, n := range map[string]int{
		zhiqite.Name:  enabledInt(v.Zhiqite.Enabled, v.Zhiqite.Concurrency),
		showapi.Name:  enabledInt(v.ShowAPI.Enabled, v.ShowAPI.Concurrency),
		apispace.Name: enabledInt(v.APISpace.Enabled, v.APISpace.Concurrency),
	} {
		if n > 0 {
			out[name] = n
		}
	}
	return out
}

func enabledInt(on bool, n int) int {
	if !on {
		return 0
	}
	return n
}

// validateConcurrency checks a vendor's concurrency and its accounts': none
// negative, and with accounts either every account has one or none does
// (the vendor's own key, an account named default, takes the vendor's).
func validateConcurrency(conc int, ownKey bool, accts []AccountConfig, bad badFunc) {
	if conc < 0 {
		bad("concurrency", "must not be negative (0: no bound)")
	}
	limited := 0
	for i, a := range accts {
		if a.Concurrency < 0 {
			bad(fmt.Sprintf("accounts[%d].concurrency", i), "must not be negative (0: no bound)")
		}
		if a.Concurrency > 0 {
			limited++
		}
	}
	if limited > 0 && limited < len(accts) {
		bad("accounts", "either every account has a concurrency or none does (%d of %d have one)", limited, len(accts))
	}
	if limited > 0 && ownKey && conc == 0 {
		bad("concurrency", "is required when the accounts have one: the vendor's own key is an account (default) that takes it")
	}
}
