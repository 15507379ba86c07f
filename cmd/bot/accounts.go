package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/picbot/picbot/engine"
	"github.com/picbot/picbot/engine/apispace"
	"github.com/picbot/picbot/engine/pool"
	"github.com/picbot/picbot/engine/showapi"
	"github.com/picbot/picbot/engine/zhiqite"
)

// Vendor account pools (issue 17): vendors.<vendor>.accounts lists several
// accounts of one vendor; the single-key form (the vendor's own app_code,
// token...) stays valid and, when set beside accounts, is an account named
// "default".

// AccountConfig is one account of a vendor. Which credentials it takes is
// the vendor's: app_code or app_key and app_secret (Zhiqite, ShowAPI),
// token (APISpace).
type AccountConfig struct {
	Name      string `yaml:"name"`
	AppCode   string `yaml:"app_code"`
	AppKey    string `yaml:"app_key"`
	AppSecret string `yaml:"app_secret"`
	Token     string `yaml:"token"`
	// Weight is the account's share of new tasks (default 1).
	Weight int `yaml:"weight"`
	// DailyLimit bounds the billed calls made through it a day (0: none).
	DailyLimit int `yaml:"daily_limit"`
	// Concurrency bounds its tasks at the vendor at once (0: none; vqueue.go).
	Concurrency int `yaml:"concurrency"`
}

// PoolConfig tunes every vendor's account pool (vendors.pool).
type PoolConfig struct {
	// Failures in a row park an account for Cooldown; an account out of
	// purchased calls is parked for ExhaustedFor. Then one task probes it.
	Failures     int           `yaml:"failures"`
	Cooldown     time.Duration `yaml:"cooldown"`
	ExhaustedFor time.Duration `yaml:"exhausted_for"`
}

func defaultPoolConfig() PoolConfig {
	return PoolConfig{Failures: 3, Cooldown: 5 * time.Minute, ExhaustedFor: time.Hour}
}

// accountEnv is the prefix of an account's environment variables:
// PICBOT_ZHIQITE_ACCOUNT_<NAME>_APP_CODE and so on.
func accountEnv(vendor, name string) string {
	n := strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(name))
	return "PICBOT_" + strings.ToUpper(vendor) + "_ACCOUNT_" + n + "_"
}

// accountEnvFields maps each account's secrets to its variables.
func accountEnvFields(vendor string, accts []AccountConfig) map[string]*string {
	out := map[string]*string{}
	for i := range accts {
		a := &accts[i]
		p := accountEnv(vendor, a.Name)
		if vendor == apispace.Name {
			out[p+"TOKEN"] = &a.Token
			continue
		}
		out[p+"APP_CODE"], out[p+"APP_KEY"], out[p+"APP_SECRET"] = &a.AppCode, &a.AppKey, &a.AppSecret
	}
	return out
}

func accountSecrets(accts []AccountConfig) []string {
	var out []string
	for _, a := range accts {
		out = append(out, a.AppCode, a.AppKey, a.AppSecret, a.Token)
	}
	return out
}

// validateAccounts checks a vendor's accounts; key is "accounts".
func validateAccounts(vendor string, accts []AccountConfig, bad badFunc) {
	seen := map[string]bool{}
	for i, a := range accts {
		key := fmt.Sprintf("accounts[%d]", i)
		switch {
		case a.Name == "" || strings.ContainsAny(a.Name, ": /"):
			bad(key+".name", "must be one word without : or / (it names the account in logs and /admin stats), not %q", a.Name)
		case seen[a.Name] || a.Name == "default":
			bad(key+".name", "%q is taken (default is the vendor's own key)", a.Name)
		}
		seen[a.Name] = true
		if a.Weight < 0 || a.DailyLimit < 0 {
			bad(key, "weight and daily_limit must not be negative")
		}
		env := accountEnv(vendor, a.Name)
		if vendor == apispace.Name {
			if a.Token == "" {
				bad(key+".token", "is required (or set %sTOKEN)", env)
			}
			if a.AppCode+a.AppKey+a.AppSecret != "" {
				bad(key, "APISpace takes a token, not app_code, app_key or app_secret")
			}
			continue
		}
		if a.Token != "" {
			bad(key+".token", "%s takes app_code, or app_key and app_secret, not a token", vendor)
		}
		if a.AppCode == "" && (a.AppKey == "" || a.AppSecret == "") {
			bad(key+".app_code", "is required, or app_key and app_secret (or set %sAPP_CODE)", env)
		}
	}
}

// withAccount returns the accounts to pool: the vendor's own key first as
// "default" when it has one, then the listed accounts.
func withDefault(own AccountConfig, accts []AccountConfig) []AccountConfig {
	if own.AppCode == "" && own.AppKey == "" && own.Token == "" {
		return accts
	}
	own.Name, own.Weight = "default", 1
	return append([]AccountConfig{own}, accts...)
}

// exhausted reports each vendor's "out of purchased calls".
func exhausted(vendor string) func(error) bool {
	switch vendor {
	case zhiqite.Name:
		return func(err error) bool { return errors.Is(err, zhiqite.ErrQuotaExhausted) }
	case showapi.Name:
		// showapi_res_code -2 is what the fake answers for no calls left;
		// the real code is not in the seed (unverified).
		return func(err error) bool {
			var ge *showapi.GatewayError
			return errors.As(err, &ge) && ge.Code == "-2"
		}
	}
	// APISpace: its answers about the account's balance (unverified).
	return func(err error) bool {
		s := strings.ToLower(err.Error())
		for _, w := range []string{"余额", "次数已用完", "欠费", "quota", "insufficient"} {
			if strings.Contains(s, w) {
				return true
			}
		}
		return false
	}
}

// pooled builds one adapter per account and pools them.
func (a *app) pooled(vendor string, accts []AccountConfig, build func(AccountConfig) (engine.Vendor, error)) (engine.Vendor, error) {
	var list []pool.Account
	for _, ac := range accts {
		v, err := build(ac)
		if err != nil {
			return nil, fmt.Errorf("vendors.%s.accounts %s: %w", vendor, ac.Name, err)
		}
		list = append(list, pool.Account{Name: ac.Name, Vendor: v, Weight: ac.Weight, DailyLimit: ac.DailyLimit, Concurrency: ac.Concurrency})
	}
	pc := a.cfg.Vendors.Pool
	cfg := pool.Config{
		Failures: pc.Failures, Cooldown: pc.Cooldown, ExhaustedFor: pc.ExhaustedFor,
		Exhausted: exhausted(vendor), Log: a.log.With(slog.String("vendor", vendor)),
	}
	// `picbot check vendors` builds the vendors with no store, quota or metrics.
	if a.quota != nil {
		cfg.Day, cfg.ResetAt = a.quota.Day, a.quota.ResetAt
	}
	if a.db != nil {
		cfg.Store = a.db
	}
	if a.metrics != nil {
		cfg.Obs = a.metrics
	}
	v, err := pool.New(cfg, list...)
	if err != nil {
		return nil, fmt.Errorf("vendors.%s.accounts: %w", vendor, err)
	}
	a.pools = append(a.pools, v)
	a.log.Info("vendor account pool", slog.String("vendor", vendor), slog.Int("accounts", len(list)))
	return v, nil
}

// accountStats is /admin stats' paragraph on the pools.
func (a *app) accountStats(context.Context) (string, error) {
	var lines []string
	for _, v := range a.pools {
		for _, st := range pool.Stats(v) {
			lines = append(lines, st.String())
		}
	}
	if len(lines) == 0 {
		return "", nil
	}
	return "accounts:\n" + strings.Join(lines, "\n"), nil
}
