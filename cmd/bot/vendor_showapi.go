package main

import (
	"fmt"
	"log/slog"

	"github.com/picbot/picbot/engine"
	"github.com/picbot/picbot/engine/showapi"
)

// ShowAPIConfig configures the showapi vendor (engine/showapi). Its keys sit
// under vendors.showapi: enabled, then the adapter's own (showapi.Config:
// base_url, app_code, app_key, app_secret, create_path, callbacks, ...).
type ShowAPIConfig struct {
	Enabled        bool `yaml:"enabled"`
	showapi.Config `yaml:",inline"`
	// Accounts pool several accounts (accounts.go).
	Accounts []AccountConfig `yaml:"accounts"`
	// Concurrency bounds the tasks held at the vendor at once (vqueue.go).
	Concurrency int `yaml:"concurrency"`
}

// envFields maps PICBOT_SHOWAPI_* variables to settings.
func (c *ShowAPIConfig) envFields() map[string]*string {
	m := accountEnvFields(showapi.Name, c.Accounts)
	m["PICBOT_SHOWAPI_APP_CODE"], m["PICBOT_SHOWAPI_APP_KEY"], m["PICBOT_SHOWAPI_APP_SECRET"] = &c.AppCode, &c.AppKey, &c.AppSecret
	return m
}

// secrets lists the values to keep out of logs. The app key is an access
// key id rather than a secret, but it names the account: kept out too.
func (c *ShowAPIConfig) secrets() []string {
	return append([]string{c.AppCode, c.AppKey, c.AppSecret}, accountSecrets(c.Accounts)...)
}

// validate checks the settings only when the vendor is enabled, so a
// half-filled block can sit disabled in a file.
func (c *ShowAPIConfig) validate(bad badFunc) {
	if !c.Enabled {
		return
	}
	cc := c.Config
	if len(c.Accounts) > 0 && cc.AppCode == "" && cc.AppKey == "" {
		cc.AppCode = "from-accounts" // each account brings its own, checked below
	}
	cc.Validate(bad)
	validateAccounts(showapi.Name, c.Accounts, bad)
	validateConcurrency(c.Concurrency, c.AppCode != "" || c.AppKey != "", c.Accounts, bad)
}

// newShowAPI returns the vendor, or nil when it is not enabled.
func (a *app) newShowAPI(c ShowAPIConfig) (engine.Vendor, error) {
	if !c.Enabled {
		return nil, nil
	}
	if len(c.Accounts) > 0 {
		own := AccountConfig{AppCode: c.AppCode, AppKey: c.AppKey, AppSecret: c.AppSecret, Concurrency: c.Concurrency}
		return a.pooled(showapi.Name, withDefault(own, c.Accounts), func(ac AccountConfig) (engine.Vendor, error) {
			cc := c.Config
			cc.AppCode, cc.AppKey, cc.AppSecret = ac.AppCode, ac.AppKey, ac.AppSecret
			return showapi.New(cc, nil, a.log.With(slog.String("vendor", showapi.Name), slog.String("account", ac.Name)))
		})
	}
	v, err := showapi.New(c.Config, nil, a.log.With(slog.String("vendor", showapi.Name)))
	if err != nil {
		return nil, fmt.Errorf("vendors.showapi: %w", err)
	}
	return v, nil
}
