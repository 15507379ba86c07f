package main

import (
	"fmt"
	"log/slog"

	"github.com/picbot/picbot/engine"
	"github.com/picbot/picbot/engine/apispace"
)

// APISpaceConfig configures the apispace vendor (engine/apispace). Its keys
// sit under vendors.apispace: enabled, then the adapter's own
// (apispace.Config: base_url, token, model, sampler, paths.*, tasks.*,
// styles, callbacks, durations, ...).
type APISpaceConfig struct {
	Enabled         bool `yaml:"enabled"`
	apispace.Config `yaml:",inline"`
	// Accounts pool several accounts (accounts.go).
	Accounts []AccountConfig `yaml:"accounts"`
	// Concurrency bounds the tasks held at the vendor at once (vqueue.go).
	Concurrency int `yaml:"concurrency"`
}

// envFields maps PICBOT_APISPACE_* variables to settings.
func (c *APISpaceConfig) envFields() map[string]*string {
	m := accountEnvFields(apispace.Name, c.Accounts)
	m["PICBOT_APISPACE_TOKEN"] = &c.Token
	return m
}

// secrets lists the values to keep out of logs.
func (c *APISpaceConfig) secrets() []string {
	return append([]string{c.Token}, accountSecrets(c.Accounts)...)
}

// validate checks the settings only when the vendor is enabled, so a
// half-filled block can sit disabled in a file.
func (c *APISpaceConfig) validate(bad badFunc) {
	if !c.Enabled {
		return
	}
	cc := c.Config
	if len(c.Accounts) > 0 && cc.Token == "" {
		cc.Token = "from-accounts" // each account brings its own, checked below
	}
	validateAccounts(apispace.Name, c.Accounts, bad)
	validateConcurrency(c.Concurrency, c.Token != "", c.Accounts, bad)
	cc.Validate(func(key, format string, args ...any) {
		if key == "token" {
			format += " when the vendor is enabled (or set PICBOT_APISPACE_TOKEN)"
		}
		bad(key, format, args...)
	})
}

// newAPISpace returns the vendor, or nil when it is not enabled. APISpace
// reads input images by link only, so it takes jobs with inputs only when
// the bot has a public URL to serve them at.
func (a *app) newAPISpace(c APISpaceConfig) (engine.Vendor, error) {
	if !c.Enabled {
		return nil, nil
	}
	c.PublicInputs = a.cfg.HTTP.PublicURL != ""
	if len(c.Accounts) > 0 {
		return a.pooled(apispace.Name, withDefault(AccountConfig{Token: c.Token, Concurrency: c.Concurrency}, c.Accounts), func(ac AccountConfig) (engine.Vendor, error) {
			cc := c.Config
			cc.Token = ac.Token
			return apispace.New(cc, nil, a.log.With(slog.String("account", ac.Name)))
		})
	}
	v, err := apispace.New(c.Config, nil, a.log)
	if err != nil {
		return nil, fmt.Errorf("vendors.apispace: %w", err)
	}
	return v, nil
}
