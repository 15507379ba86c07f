package main

import (
	"fmt"

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
}

// envFields maps PICBOT_APISPACE_* variables to settings.
func (c *APISpaceConfig) envFields() map[string]*string {
	return map[string]*string{"PICBOT_APISPACE_TOKEN": &c.Token}
}

// secrets lists the values to keep out of logs.
func (c *APISpaceConfig) secrets() []string { return []string{c.Token} }

// validate checks the settings only when the vendor is enabled, so a
// half-filled block can sit disabled in a file.
func (c *APISpaceConfig) validate(bad badFunc) {
	if !c.Enabled {
		return
	}
	c.Config.Validate(func(key, format string, args ...any) {
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
	v, err := apispace.New(c.Config, nil, a.log)
	if err != nil {
		return nil, fmt.Errorf("vendors.apispace: %w", err)
	}
	return v, nil
}
