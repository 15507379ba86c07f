package main

import (
	"fmt"
	"log/slog"

	"github.com/picbot/picbot/engine"
	"github.com/picbot/picbot/engine/comfyui"
)

// ComfyUIConfig configures a self-hosted ComfyUI (engine/comfyui). Its keys
// sit under vendors.comfyui: enabled, then the adapter's own
// (comfyui.Config: base_url, base_urls, token, client_id, preset,
// workflows, model, sampler, scheduler, concurrency, ...).
type ComfyUIConfig struct {
	Enabled        bool `yaml:"enabled"`
	comfyui.Config `yaml:",inline"`
}

func (c *ComfyUIConfig) envFields() map[string]*string {
	return map[string]*string{"PICBOT_COMFYUI_TOKEN": &c.Token}
}

func (c *ComfyUIConfig) secrets() []string { return []string{c.Token} }

// validate checks the settings, the workflows' patch points included, only
// when the backend is enabled.
func (c *ComfyUIConfig) validate(bad badFunc) {
	if c.Enabled {
		c.Config.Validate(bad)
	}
}

func (a *app) newComfyUI(c ComfyUIConfig) (engine.Vendor, error) {
	if !c.Enabled {
		return nil, nil
	}
	v, err := comfyui.New(c.Config, nil, a.log.With(slog.String("vendor", comfyui.Name)))
	if err != nil {
		return nil, fmt.Errorf("vendors.comfyui: %w", err)
	}
	return v, nil
}
