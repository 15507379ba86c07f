package main

import "github.com/picbot/picbot/engine"

// ShowAPIConfig configures the showapi vendor (engine/showapi). Its keys sit under vendors.showapi.
type ShowAPIConfig struct {
	Enabled bool `yaml:"enabled"`
}

// envFields maps PICBOT_SHOWAPI_* variables to settings.
func (c *ShowAPIConfig) envFields() map[string]*string { return nil }

// secrets lists the keys to keep out of logs.
func (c *ShowAPIConfig) secrets() []string { return nil }

func (c *ShowAPIConfig) validate(bad badFunc) {
	if c.Enabled {
		bad("enabled", "this vendor is not available in this build yet")
	}
}

// newShowAPI returns the vendor, or nil when it is not enabled.
func (a *app) newShowAPI(c ShowAPIConfig) (engine.Vendor, error) { return nil, nil }
