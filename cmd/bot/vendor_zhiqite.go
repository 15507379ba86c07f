package main

import (
	"fmt"
	"log/slog"

	"github.com/picbot/picbot/engine"
	"github.com/picbot/picbot/engine/zhiqite"
)

// ZhiqiteConfig configures the zhiqite vendor (engine/zhiqite). Its keys sit
// under vendors.zhiqite: enabled, then the adapter's own (zhiqite.Config:
// base_url, app_code, app_key, app_secret, model, sampler, output_format,
// callbacks, draw_duration, tool_duration, poll_every, poll_max, ...).
type ZhiqiteConfig struct {
	Enabled        bool `yaml:"enabled"`
	zhiqite.Config `yaml:",inline"`
	// Accounts pool several accounts (accounts.go).
	Accounts []AccountConfig `yaml:"accounts"`
	// Concurrency bounds the tasks held at the vendor at once (vqueue.go).
	Concurrency int `yaml:"concurrency"`
}

// envFields maps PICBOT_ZHIQITE_* variables to settings.
func (c *ZhiqiteConfig) envFields() map[string]*string {
	m := accountEnvFields(zhiqite.Name, c.Accounts)
	m["PICBOT_ZHIQITE_APP_CODE"], m["PICBOT_ZHIQITE_APP_KEY"], m["PICBOT_ZHIQITE_APP_SECRET"] = &c.AppCode, &c.AppKey, &c.AppSecret
	m["PICBOT_ZHIQITE_ACCESS_KEY_SECRET"] = &c.AccessKeySecret
	return m
}

// secrets lists the values to keep out of logs. The app key identifies the
// account rather than proving it, but it is kept out too.
func (c *ZhiqiteConfig) secrets() []string {
	return append([]string{c.AppCode, c.AppKey, c.AppSecret, c.AccessKeySecret}, accountSecrets(c.Accounts)...)
}

// validate checks the settings only when the vendor is enabled, so a
// half-filled block can sit disabled in a file.
func (c *ZhiqiteConfig) validate(bad badFunc) {
	if !c.Enabled {
		return
	}
	cc := c.Config
	if len(c.Accounts) > 0 && cc.AppCode == "" && cc.AppKey == "" {
		cc.AppCode = "from-accounts" // each account brings its own, checked below
	}
	cc.Validate(bad)
	validateAccounts(zhiqite.Name, c.Accounts, bad)
	validateConcurrency(c.Concurrency, c.AppCode != "" || c.AppKey != "", c.Accounts, bad)
}

// newZhiqite returns the vendor, or nil when it is not enabled. Zhiqite
// reads input images by link only, so it takes jobs with inputs only when
// the bot has a public URL to serve them at.
func (a *app) newZhiqite(c ZhiqiteConfig) (engine.Vendor, error) {
	if !c.Enabled {
		return nil, nil
	}
	c.InputURLs = a.cfg.HTTP.PublicURL != ""
	if len(c.Accounts) > 0 {
		own := AccountConfig{AppCode: c.AppCode, AppKey: c.AppKey, AppSecret: c.AppSecret, Concurrency: c.Concurrency}
		return a.pooled(zhiqite.Name, withDefault(own, c.Accounts), func(ac AccountConfig) (engine.Vendor, error) {
			cc := c.Config
			cc.AppCode, cc.AppKey, cc.AppSecret = ac.AppCode, ac.AppKey, ac.AppSecret
			return zhiqite.New(cc, nil, a.log.With(slog.String("vendor", zhiqite.Name), slog.String("account", ac.Name)))
		})
	}
	v, err := zhiqite.New(c.Config, nil, a.log.With(slog.String("vendor", zhiqite.Name)))
	if err != nil {
		return nil, fmt.Errorf("vendors.zhiqite: %w", err)
	}
	return v, nil
}
