package main

import (
	"context"
	"maps"
	"sync"
	"time"

	"github.com/picbot/picbot/engine"
	"github.com/picbot/picbot/web"
)

// WebConfig is the operator's web console under /admin/ on http.listen
// (package web). It is on only when a password or a hash is set.
type WebConfig struct {
	// Password, or PasswordHash (bcrypt or argon2id, PHC form), to log in.
	Password     string `yaml:"password"`
	PasswordHash string `yaml:"password_hash"`
	// SessionTTL is how long a login lasts.
	SessionTTL time.Duration `yaml:"session_ttl"`
	// LoginAttempts failed logins per address within LoginWindow, then refused.
	LoginAttempts int           `yaml:"login_attempts"`
	LoginWindow   time.Duration `yaml:"login_window"`
	// Prices are each vendor's price of one billed call, for the spend
	// chart; the vendors' own price lists decide them (unverified here).
	Prices   map[string]float64 `yaml:"prices"`
	Currency string             `yaml:"currency"`
}

func defaultWebConfig() WebConfig {
	return WebConfig{SessionTTL: 12 * time.Hour, LoginAttempts: 5, LoginWindow: 15 * time.Minute, Currency: "CNY"}
}

func (c *WebConfig) envFields() map[string]*string {
	return map[string]*string{"PICBOT_WEB_PASSWORD": &c.Password, "PICBOT_WEB_PASSWORD_HASH": &c.PasswordHash}
}

func (c *WebConfig) secrets() []string { return []string{c.Password, c.PasswordHash} }

func (c *WebConfig) enabled() bool { return c.Password != "" || c.PasswordHash != "" }

func (c *Config) validateWeb(bad badFunc) {
	w := c.Web
	if w.PasswordHash != "" {
		if err := web.CheckHash(w.PasswordHash); err != nil {
			bad("web.password_hash", "%v", err)
		}
	}
	if w.enabled() && c.HTTP.Listen == "" {
		key := "web.password"
		if w.Password == "" {
			key = "web.password_hash"
		}
		bad(key, "turns the web console on, which needs http.listen (the console is served there under /admin/)")
	}
	if w.SessionTTL <= 0 {
		bad("web.session_ttl", "must be a duration above 0, like 12h, not %s", w.SessionTTL)
	}
	if w.LoginAttempts < 1 {
		bad("web.login_attempts", "must be at least 1, not %d", w.LoginAttempts)
	}
	if w.LoginWindow <= 0 {
		bad("web.login_window", "must be a duration above 0, like 15m, not %s", w.LoginWindow)
	}
	for v, p := range w.Prices {
		if _, ok := vendorKinds[v]; !ok {
			bad("web.prices."+v, "no vendor is named %q", v)
		} else if p < 0 {
			bad("web.prices."+v, "must not be negative (%v)", p)
		}
	}
}

// buildWeb makes the console when a password is configured.
func (a *app) buildWeb() error {
	c := a.cfg.Web
	if !c.enabled() || a.cfg.HTTP.Listen == "" {
		return nil
	}
	if c.Password != "" && len(c.Password) < 12 {
		a.log.Warn("web.password is short (under 12 characters); logins are limited per address, but a long password or a hash is safer")
	}
	disk := &diskCache{a: a}
	h, err := web.New(web.Config{
		Password: c.Password, PasswordHash: c.PasswordHash, SessionTTL: c.SessionTTL,
		LoginAttempts: c.LoginAttempts, LoginWindow: c.LoginWindow, Prices: maps.Clone(c.Prices), Currency: c.Currency, Log: a.log,
	}, a.db, a.engine, a.webAdmin(), a.db, a.blobs, web.Figures{
		Refusals: a.metrics.Refusals,
		Disk:     disk.get,
		Catalogues: func(ctx context.Context) map[string]int {
			// The vendors' cached lists; one past its cache time is fetched
			// (billed, as for /models), and a slow vendor must not hold the page.
			ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			out := map[string]int{}
			for _, e := range a.models.Entries(ctx) {
				out[e.Vendor]++
			}
			return out
		},
	})
	if err != nil {
		return err
	}
	a.web = h
	return nil
}

// diskCache measures the store for the overview at most once a minute:
// walking a large image directory on every page would cost too much.
type diskCache struct {
	a     *app
	mu    sync.Mutex
	at    time.Time
	db    int64
	blobs int64
	files int
}

func (d *diskCache) get(ctx context.Context) (int64, int64, int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if time.Since(d.at) > time.Minute {
		d.db, _ = d.a.db.Size()
		d.blobs, d.files, _ = d.a.blobs.Size(ctx)
		d.at = time.Now()
	}
	return d.db, d.blobs, d.files
}

var _ web.Engine = (*engine.Engine)(nil)
