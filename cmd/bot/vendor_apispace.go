package main

import "github.com/picbot/picbot/engine"

// APISpaceConfig configures the apispace vendor (engine/apispace). Its keys sit under vendors.apispace.
type APISpaceConfig struct {
	Enabled bool `yaml:"enabled"`
}

// envFields maps PICBOT_APISPACE_* variables to settings.
func (c *APISpaceConfig) envFields() map[string]*string { return nil }

// secrets lists the keys to keep out of logs.
func (c *APISpaceConfig) secrets() []string { return nil }

func (c *APISpaceConfig) validate(bad badFunc) {
	if c.Enabled {
		bad("enabled", "this vendor is not available in this build yet")
	}
}

// newAPISpace returns the vendor, or nil when it is not enabled.
func (a *app) newAPISpace(c APISpaceConfig) (engine.Vendor, error) { return nil, nil }
