package main

import "github.com/picbot/picbot/engine"

// ZhiqiteConfig configures the zhiqite vendor (engine/zhiqite). Its keys sit under vendors.zhiqite.
type ZhiqiteConfig struct {
	Enabled bool `yaml:"enabled"`
}

// envFields maps PICBOT_ZHIQITE_* variables to settings.
func (c *ZhiqiteConfig) envFields() map[string]*string { return nil }

// secrets lists the keys to keep out of logs.
func (c *ZhiqiteConfig) secrets() []string { return nil }

func (c *ZhiqiteConfig) validate(bad badFunc) {
	if c.Enabled {
		bad("enabled", "this vendor is not available in this build yet")
	}
}

// newZhiqite returns the vendor, or nil when it is not enabled.
func (a *app) newZhiqite(c ZhiqiteConfig) (engine.Vendor, error) { return nil, nil }
