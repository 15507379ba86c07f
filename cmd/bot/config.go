package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/picbot/picbot/bots/discord"
	"github.com/picbot/picbot/engine"
	"github.com/picbot/picbot/engine/apispace"
	"github.com/picbot/picbot/engine/showapi"
	"github.com/picbot/picbot/engine/zhiqite"
	"github.com/picbot/picbot/quota"
	"github.com/picbot/picbot/store"
	"go.yaml.in/yaml/v4"
)

// Config is the whole configuration. config.example.yaml documents every key.
type Config struct {
	DataDir string        `yaml:"data_dir"`
	Log     LogConfig     `yaml:"log"`
	Console ConsoleConfig `yaml:"console"`
	HTTP    HTTPConfig    `yaml:"http"`
	Engine  EngineConfig  `yaml:"engine"`
	Local   LocalConfig   `yaml:"local"`
	Quota   quota.Config  `yaml:"quota"`
	// Retention bounds how long finished jobs, their images and daily counters are kept.
	Retention store.Retention `yaml:"retention"`
	Fetch     FetchConfig     `yaml:"fetch"`
	Catalog   CatalogConfig   `yaml:"catalog"`
	Vendors   VendorsConfig   `yaml:"vendors"`
	// Chat platforms besides the console.
	Telegram TelegramConfig `yaml:"telegram"`
	Discord  DiscordConfig  `yaml:"discord"`
}

// VendorsConfig configures the remote vendors; each lives in vendor_<name>.go.
type VendorsConfig struct {
	Zhiqite  ZhiqiteConfig  `yaml:"zhiqite"`
	ShowAPI  ShowAPIConfig  `yaml:"showapi"`
	APISpace APISpaceConfig `yaml:"apispace"`
}

type LogConfig struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // text or json
}

type ConsoleConfig struct {
	Enabled bool          `yaml:"enabled"`
	OutDir  string        `yaml:"out_dir"`
	Wait    time.Duration `yaml:"wait"`
	User    string        `yaml:"user"`
	Lang    string        `yaml:"lang"` // en or zh; empty: from $LANG
}

type HTTPConfig struct {
	Listen    string `yaml:"listen"`
	PublicURL string `yaml:"public_url"`
	MaxBody   int64  `yaml:"max_body"`
	// Metrics serves /metrics; keep it off the public internet (firewall or proxy).
	Metrics bool `yaml:"metrics"`
	// The server's timeouts, which cut off slow and idle clients.
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	ReadTimeout       time.Duration `yaml:"read_timeout"`
	WriteTimeout      time.Duration `yaml:"write_timeout"`
	IdleTimeout       time.Duration `yaml:"idle_timeout"`
}

type EngineConfig struct {
	Workers          int                 `yaml:"workers"`
	JobTimeout       time.Duration       `yaml:"job_timeout"`
	VendorTimeout    time.Duration       `yaml:"vendor_timeout"`
	MaxDownload      int64               `yaml:"max_download"`
	MaxInput         int64               `yaml:"max_input"`
	ShutdownTimeout  time.Duration       `yaml:"shutdown_timeout"`
	DeliveryAttempts int                 `yaml:"delivery_attempts"`
	ProgressEvery    time.Duration       `yaml:"progress_every"`
	Routes           map[string][]string `yaml:"routes"`
	Limits           engine.Limits       `yaml:"limits"`
	// UncertainSubmit is resubmit or fail: what becomes of a job whose
	// submission's answer was lost at a vendor that cannot be asked (APISpace).
	UncertainSubmit string `yaml:"uncertain_submit"`
}

// FetchConfig governs downloads of image links users give.
type FetchConfig struct {
	// AllowPrivate lets links reach loopback and private addresses: tests only.
	AllowPrivate bool          `yaml:"allow_private"`
	Timeout      time.Duration `yaml:"timeout"`
}

// CatalogConfig governs /models and Discord's autocomplete.
type CatalogConfig struct {
	AllowAdult bool `yaml:"allow_adult"`
}

type LocalConfig struct {
	Enabled  bool          `yaml:"enabled"`
	Duration time.Duration `yaml:"duration"`
}

// DefaultConfig is what the bot runs on with no -config: the console, the
// local renderer, and a bbolt file under ./data.
func DefaultConfig() Config {
	q := quota.DefaultConfig()
	q.Admins = []string{"console:local"}
	routes := make(map[string][]string)
	for _, k := range engine.Kinds {
		routes[string(k)] = []string{"local"}
	}
	d := engine.DefaultConfig()
	return Config{
		DataDir: "data",
		Log:     LogConfig{Level: "info", Format: "text"},
		Console: ConsoleConfig{Enabled: true, OutDir: "out", Wait: 10 * time.Minute, User: "local"},
		HTTP: HTTPConfig{MaxBody: 1 << 20, Metrics: true,
			ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 15 * time.Second, WriteTimeout: 60 * time.Second, IdleTimeout: 60 * time.Second},
		Engine: EngineConfig{
			Workers:          d.Workers,
			JobTimeout:       d.JobTimeout,
			VendorTimeout:    d.VendorTimeout,
			MaxDownload:      d.MaxDownload,
			MaxInput:         20 << 20,
			ShutdownTimeout:  20 * time.Second,
			DeliveryAttempts: d.DeliveryAttempts,
			Routes:           routes,
			Limits:           d.Limits,
			UncertainSubmit:  engine.UncertainResubmit,
		},
		Local:     LocalConfig{Enabled: true, Duration: 2 * time.Second},
		Fetch:     FetchConfig{Timeout: 30 * time.Second},
		Quota:     q,
		Retention: store.DefaultRetention(),
		Vendors: VendorsConfig{
			Zhiqite:  ZhiqiteConfig{Config: zhiqite.Defaults()},
			ShowAPI:  ShowAPIConfig{Config: showapi.Defaults()},
			APISpace: APISpaceConfig{Config: apispace.Defaults()},
		},
		Telegram: defaultTelegramConfig(),
		Discord: DiscordConfig{
			Mode: discord.ModeGateway, ButtonUsers: discord.ButtonsAuthor, MaxUploadBytes: discord.DefaultMaxUpload,
			TokenLifetime: discord.DefaultTokenLifetime, InteractionsPath: discord.DefaultInteractionsPath, PostLanes: 1,
		},
	}
}

// LoadConfig reads path over the defaults, then the environment. Unknown keys are errors.
func LoadConfig(path string) (Config, error) {
	cfg := DefaultConfig()
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return cfg, fmt.Errorf("read config: %w", err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) { // empty file: defaults
			return cfg, fmt.Errorf("config %s: %w", path, err)
		}
	}
	cfg.applyEnv(os.LookupEnv)
	return cfg, cfg.Validate()
}

// applyEnv overrides settings, secrets above all, from PICBOT_* variables,
// so that no secret has to be written in a file.
func (c *Config) applyEnv(lookup func(string) (string, bool)) {
	for name, field := range c.envFields() {
		if v, ok := lookup(name); ok && v != "" {
			*field = v
		}
	}
}

// envFields maps environment variables to the string settings they override.
func (c *Config) envFields() map[string]*string {
	fields := map[string]*string{
		"PICBOT_DATA_DIR":        &c.DataDir,
		"PICBOT_HTTP_LISTEN":     &c.HTTP.Listen,
		"PICBOT_HTTP_PUBLIC_URL": &c.HTTP.PublicURL,
		"PICBOT_LOG_LEVEL":       &c.Log.Level,
	}
	for _, more := range []map[string]*string{
		c.Vendors.Zhiqite.envFields(), c.Vendors.ShowAPI.envFields(), c.Vendors.APISpace.envFields(),
		c.Telegram.envFields(), c.Discord.envFields(),
	} {
		for k, v := range more {
			fields[k] = v
		}
	}
	return fields
}

// secrets returns every configured secret, for the log redactor.
func (c *Config) secrets() []string {
	var out []string
	for _, s := range [][]string{
		c.Vendors.Zhiqite.secrets(), c.Vendors.ShowAPI.secrets(), c.Vendors.APISpace.secrets(),
		c.Telegram.secrets(), c.Discord.secrets(),
	} {
		for _, v := range s {
			if v != "" {
				out = append(out, v)
			}
		}
	}
	return out
}

// Validate checks the whole configuration; each message names the YAML key.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if c.DataDir == "" {
		bad("data_dir", "must not be empty")
	}
	switch strings.ToLower(c.Log.Level) {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "must be debug, info, warn or error, not %q", c.Log.Level)
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		bad("log.format", "must be text or json, not %q", c.Log.Format)
	}
	if c.Console.Enabled && c.Console.OutDir == "" {
		bad("console.out_dir", "must not be empty")
	}
	if c.HTTP.PublicURL != "" && !strings.HasPrefix(c.HTTP.PublicURL, "http://") && !strings.HasPrefix(c.HTTP.PublicURL, "https://") {
		bad("http.public_url", "must start with http:// or https://")
	}
	if c.HTTP.PublicURL != "" && c.HTTP.Listen == "" {
		bad("http.listen", "must be set when http.public_url is")
	}
	if c.HTTP.MaxBody <= 0 {
		bad("http.max_body", "must be positive")
	}
	for key, d := range map[string]time.Duration{"read_header_timeout": c.HTTP.ReadHeaderTimeout, "read_timeout": c.HTTP.ReadTimeout,
		"write_timeout": c.HTTP.WriteTimeout, "idle_timeout": c.HTTP.IdleTimeout} {
		if d <= 0 {
			bad("http."+key, "must be positive")
		}
	}
	if c.Engine.Workers <= 0 {
		bad("engine.workers", "must be positive")
	}
	if u := c.Engine.UncertainSubmit; u != "" && u != engine.UncertainResubmit && u != engine.UncertainFail {
		bad("engine.uncertain_submit", "must be resubmit or fail, not %q", u)
	}
	known := c.vendorNames()
	for kind, vendors := range c.Engine.Routes {
		if !slices.Contains(engine.Kinds, engine.Kind(kind)) {
			bad("engine.routes."+kind, "is not a command; use draw, anime, upscale or swapface")
		}
		for _, v := range vendors {
			if !known[v] {
				bad("engine.routes."+kind, "vendor %q is not configured", v)
			}
		}
	}
	for _, k := range engine.Kinds {
		if len(c.Engine.Routes[string(k)]) == 0 {
			bad("engine.routes."+string(k), "needs at least one vendor")
		}
	}
	lim := c.Engine.Limits
	if lim.MinSide < 8 || lim.MaxSide < lim.MinSide || lim.MaxImages < 1 || lim.MaxPromptRunes < 1 || lim.MaxSteps < 1 || lim.MaxScale < 2 {
		bad("engine.limits", "min_side ≥ 8, max_side ≥ min_side, max_images, max_prompt_runes and max_steps ≥ 1, max_scale ≥ 2")
	}
	if r := c.Retention; r.Jobs < 0 || r.Counters < 0 || r.Every < 0 {
		bad("retention", "jobs, counters and every must not be negative")
	}
	if c.Local.Duration < 0 {
		bad("local.duration", "must not be negative")
	}
	c.Vendors.Zhiqite.validate(prefixed(bad, "vendors.zhiqite."))
	c.Vendors.ShowAPI.validate(prefixed(bad, "vendors.showapi."))
	c.Vendors.APISpace.validate(prefixed(bad, "vendors.apispace."))
	c.Telegram.validate(prefixed(bad, "telegram."))
	c.Discord.validate(prefixed(bad, "discord."))
	if c.Discord.Enabled && c.Discord.Mode == "http" && c.HTTP.Listen == "" {
		bad("http.listen", "must be set for discord.mode http: Discord posts interactions there")
	}
	return errors.Join(errs...)
}

// badFunc reports a configuration error at key.
type badFunc func(key, format string, args ...any)

func prefixed(bad badFunc, prefix string) badFunc {
	return func(key, format string, args ...any) { bad(prefix+key, format, args...) }
}

// vendorNames are the vendors this configuration enables.
func (c *Config) vendorNames() map[string]bool {
	names := map[string]bool{}
	names["local"] = c.Local.Enabled
	names["zhiqite"] = c.Vendors.Zhiqite.Enabled
	names["showapi"] = c.Vendors.ShowAPI.Enabled
	names["apispace"] = c.Vendors.APISpace.Enabled
	return names
}
