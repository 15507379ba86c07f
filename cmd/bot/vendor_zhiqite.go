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
}

// envFields maps PICBOT_ZHIQITE_* variables to settings.
func (c *ZhiqiteConfig) envFields() map[string]*string {
	return map[string]*string{
		"PICBOT_ZHIQITE_APP_CODE":          &c.AppCode,
		"PICBOT_ZHIQITE_APP_KEY":           &c.AppKey,
		"PICBOT_ZHIQITE_APP_SECRET":        &c.AppSecret,
		"PICBOT_ZHIQITE_ACCESS_KEY_SECRET": &c.AccessKeySecret,
	}
}

// secrets lists the values to keep out of logs. The app key identifies the
// account rather than proving it, but it is kept out too.
func (c *ZhiqiteConfig) secrets() []string {
	return []string{c.AppCode, c.AppKey, c.AppSecret, c.AccessKeySecret}
}

// validate checks the settings only when the vendor is enabled, so a
// half-filled block can sit disabled in a file.
func (c *ZhiqiteConfig) validate(bad badFunc) {
	if c.Enabled {
		c.Config.Validate(bad)
	}
}

// newZhiqite returns the vendor, or nil when it is not enabled. Zhiqite
// reads input images by link only, so it takes jobs with inputs only when
// the bot has a public URL to serve them at.
func (a *app) newZhiqite(c ZhiqiteConfig) (engine.Vendor, error) {
	if !c.Enabled {
		return nil, nil
	}
	c.InputURLs = a.cfg.HTTP.PublicURL != ""
	v, err := zhiqite.New(c.Config, nil, a.log.With(slog.String("vendor", zhiqite.Name)))
	if err != nil {
		return nil, fmt.Errorf("vendors.zhiqite: %w", err)
	}
	return v, nil
}
