package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/picbot/picbot/engine"
	"github.com/picbot/picbot/engine/a1111"
)

// A1111Config configures a self-hosted AUTOMATIC1111 web UI (engine/a1111).
// Its keys sit under vendors.a1111: enabled, then the adapter's own
// (a1111.Config: base_url, base_urls, username, password, token,
// concurrency, model, vae, clip_skip, sampler, scheduler, hires, ...).
type A1111Config struct {
	Enabled      bool `yaml:"enabled"`
	a1111.Config `yaml:",inline"`
}

// envFields maps PICBOT_A1111_* variables to settings.
func (c *A1111Config) envFields() map[string]*string {
	return map[string]*string{
		"PICBOT_A1111_USERNAME": &c.Username,
		"PICBOT_A1111_PASSWORD": &c.Password,
		"PICBOT_A1111_TOKEN":    &c.Token,
	}
}

func (c *A1111Config) secrets() []string { return []string{c.Password, c.Token} }

func (c *A1111Config) validate(bad badFunc) {
	if c.Enabled {
		c.Config.Validate(bad)
	}
}

// newA1111 returns the backend, or nil when it is not enabled. Its lists
// and extensions are read once at start (a web UI that is down is read
// again at the first use), so /swapface and --sampler are checked early.
func (a *app) newA1111(c A1111Config) (engine.Vendor, error) {
	if !c.Enabled {
		return nil, nil
	}
	log := a.log.With(slog.String("vendor", a1111.Name))
	v, err := a1111.New(c.Config, nil, a.blobs, log)
	if err != nil {
		return nil, fmt.Errorf("vendors.a1111: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := v.Probe(ctx); err != nil {
		log.Warn("AUTOMATIC1111 not reachable at start; its lists are read at first use", slog.Any("err", err))
	}
	return v, nil
}
