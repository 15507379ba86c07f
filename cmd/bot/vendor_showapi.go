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
}

// envFields maps PICBOT_SHOWAPI_* variables to settings.
func (c *ShowAPIConfig) envFields() map[string]*string {
	return map[string]*string{
		"PICBOT_SHOWAPI_APP_CODE":   &c.AppCode,
		"PICBOT_SHOWAPI_APP_KEY":    &c.AppKey,
		"PICBOT_SHOWAPI_APP_SECRET": &c.AppSecret,
	}
}

// secrets lists the values to keep out of logs. The app key is an access
// key id rather than a secret, but it names the account: kept out too.
func (c *ShowAPIConfig) secrets() []string {
	return []string{c.AppCode, c.AppKey, c.AppSecret}
}

// validate checks the settings only when the vendor is enabled, so a
// half-filled block can sit disabled in a file.
func (c *ShowAPIConfig) validate(bad badFunc) {
	if c.Enabled {
		c.Config.Validate(bad)
	}
}

// newShowAPI returns the vendor, or nil when it is not enabled.
func (a *app) newShowAPI(c ShowAPIConfig) (engine.Vendor, error) {
	if !c.Enabled {
		return nil, nil
	}
	v, err := showapi.New(c.Config, nil, a.log.With(slog.String("vendor", showapi.Name)))
	if err != nil {
		return nil, fmt.Errorf("vendors.showapi: %w", err)
	}
	return v, nil
}
