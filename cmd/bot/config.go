package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/picbot/picbot/bots/chat"
	"github.com/picbot/picbot/bots/discord"
	"github.com/picbot/picbot/engine"
	"github.com/picbot/picbot/engine/a1111"
	"github.com/picbot/picbot/engine/apispace"
	"github.com/picbot/picbot/engine/comfyui"
	"github.com/picbot/picbot/engine/showapi"
	"github.com/picbot/picbot/engine/zhiqite"
	"github.com/picbot/picbot/moderation"
	"github.com/picbot/picbot/quota"
	"github.com/picbot/picbot/store"
	"go.yaml.in/yaml/v4"
)

// Config is the whole configuration. config.example.yaml documents every key.
type Config struct {
	DataDir string `yaml:"data_dir"`
	// DatabaseURL, a postgres:// URL, keeps jobs, counters and images in
	// PostgreSQL, shared by several replicas; empty: bbolt in data_dir.
	DatabaseURL string        `yaml:"database_url"`
	Log         LogConfig     `yaml:"log"`
	Console     ConsoleConfig `yaml:"console"`
	HTTP        HTTPConfig    `yaml:"http"`
	Engine      EngineConfig  `yaml:"engine"`
	Local       LocalConfig   `yaml:"local"`
	Quota       quota.Config  `yaml:"quota"`
	// Retention bounds how long finished jobs, their images and daily counters are kept.
	Retention store.Retention `yaml:"retention"`
	Fetch     FetchConfig     `yaml:"fetch"`
	Catalog   CatalogConfig   `yaml:"catalog"`
	Vendors   VendorsConfig   `yaml:"vendors"`
	// Moderation and Presets are in ops.go.
	Moderation moderation.Config      `yaml:"moderation"`
	Presets    map[string]chat.Preset `yaml:"presets"`
	// Chat platforms besides the console.
	Telegram TelegramConfig `yaml:"telegram"`
	Discord  DiscordConfig  `yaml:"discord"`
	// Web is the operator's console under /admin/ (cmd/bot/web.go).
	Web      WebConfig      `yaml:"web"`
	Payments PaymentsConfig `yaml:"payments"`

	// BlobsURL, an s3:// URL, keeps images in an S3-compatible object
	// store (store_s3.go); empty: with the database (data_dir or PostgreSQL).
	BlobsURL       string `yaml:"blobs_url"`
	BlobsAccessKey string `yaml:"blobs_access_key"`
	BlobsSecretKey string `yaml:"blobs_secret_key"`
	// The AWS_* credentials for blobs_url, read from the environment only.
	awsAccessKey, awsSecretKey, awsSessionToken string
}

// VendorsConfig configures the remote vendors; each lives in vendor_<name>.go.
type VendorsConfig struct {
	Zhiqite  ZhiqiteConfig  `yaml:"zhiqite"`
	ShowAPI  ShowAPIConfig  `yaml:"showapi"`
	APISpace APISpaceConfig `yaml:"apispace"`
	// Pool tunes the account pools (accounts.go).
	Pool    PoolConfig    `yaml:"pool"`
	A1111   A1111Config   `yaml:"a1111"`
	ComfyUI ComfyUIConfig `yaml:"comfyui"`
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
	MaxInputPixels   int64               `yaml:"max_input_pixels"`
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
	c := Config{
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
			MaxInputPixels:   chat.DefaultMaxInputPixels,
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
			A1111:    A1111Config{Config: a1111.Defaults()},
			ComfyUI:  ComfyUIConfig{Config: comfyui.Defaults()},
		},
		Telegram: defaultTelegramConfig(),
		Web:      defaultWebConfig(),
		Discord: DiscordConfig{
			Mode: discord.ModeGateway, ButtonUsers: discord.ButtonsAuthor, MaxUploadBytes: discord.DefaultMaxUpload,
			TokenLifetime: discord.DefaultTokenLifetime, InteractionsPath: discord.DefaultInteractionsPath, PostLanes: 1,
		},

		Moderation: moderation.DefaultConfig(),
	}
	c.Vendors.Pool = defaultPoolConfig()
	return c
}

// LoadConfig reads path over the defaults, then the environment. Unknown keys are errors.
func LoadConfig(path string) (Config, error) {
	l, err := load(path, os.LookupEnv)
	if l == nil {
		return DefaultConfig(), err
	}
	return l.cfg, err
}

// loaded is a configuration with what the bot says about it at start.
type loaded struct {
	cfg   Config
	file  string
	lines map[string]int // key path → its line in the file, for each key the file sets
	// warnings are settings that work but deserve a word in the log.
	warnings []string
}

// set reports whether the file gives key a value.
func (l *loaded) set(key string) bool { _, ok := l.lines[key]; return ok }

// load reads path (none: the defaults), the environment through lookup, and
// validates the result. Every error is a *ConfigError naming keys and lines.
func load(path string, lookup func(string) (string, bool)) (*loaded, error) {
	l := &loaded{cfg: DefaultConfig(), file: path, lines: map[string]int{}}
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read config: %w", err)
		}
		if err := l.decode(data); err != nil {
			return nil, err
		}
	}
	l.cfg.applyEnv(lookup)
	l.envPlatforms(lookup)
	if err := l.validate(); err != nil {
		return l, err
	}
	return l, nil
}

// decode checks the document's keys and values against the configuration's
// types, so that an error names its key and line, then decodes it.
func (l *loaded) decode(data []byte) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		if bytes.Contains(data, []byte("\n\t")) || bytes.HasPrefix(data, []byte("\t")) {
			msg += " (YAML indents with spaces, not tabs)"
		}
		return &ConfigError{File: l.file, Problems: []Problem{{Msg: msg}}}
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil // an empty file: the defaults
	}
	c := nodeChecker{lines: l.lines}
	c.check("", &doc, reflect.TypeFor[Config]())
	if len(c.problems) > 0 {
		return &ConfigError{File: l.file, Problems: c.problems}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&l.cfg); err != nil && !errors.Is(err, io.EOF) {
		// The checker above should have caught it; say where at least.
		return &ConfigError{File: l.file, Problems: []Problem{{Msg: strings.TrimPrefix(err.Error(), "yaml: ")}}}
	}
	return nil
}

// envPlatforms turns a platform on when its token comes from the
// environment, unless the file turns it off, which is then said at start.
func (l *loaded) envPlatforms(lookup func(string) (string, bool)) {
	for _, p := range []struct {
		env, key, name string
		enabled        *bool
	}{
		{"PICBOT_TELEGRAM_TOKEN", "telegram.enabled", "Telegram", &l.cfg.Telegram.Enabled},
		{"PICBOT_DISCORD_TOKEN", "discord.enabled", "Discord", &l.cfg.Discord.Enabled},
	} {
		if v, ok := lookup(p.env); !ok || v == "" || *p.enabled {
			continue
		}
		if line, ok := l.lines[p.key]; ok {
			l.warnings = append(l.warnings, fmt.Sprintf("%s is set, but %s: false (%s line %d) keeps %s off", p.env, p.key, l.file, line, p.name))
			continue
		}
		*p.enabled = true
	}
}

// validate runs Validate and gives each problem its line in the file.
func (l *loaded) validate() error {
	probs := l.cfg.problems()
	if len(probs) == 0 {
		return nil
	}
	for i, p := range probs {
		if line, ok := l.lines[p.Key]; ok {
			probs[i].Line = line
		}
	}
	// In file order; problems with no line (defaults, environment) last.
	slices.SortStableFunc(probs, func(a, b Problem) int {
		if (a.Line == 0) != (b.Line == 0) {
			return b.Line - a.Line // positive when a has no line: a goes last
		}
		return a.Line - b.Line
	})
	return &ConfigError{File: l.file, Problems: probs}
}

// applyEnv overrides settings, secrets above all, from PICBOT_* variables,
// so that no secret has to be written in a file.
func (c *Config) applyEnv(lookup func(string) (string, bool)) {
	for name, field := range c.envFields() {
		if v, ok := lookup(name); ok && v != "" {
			*field = v
		}
	}
	// The AWS SDKs' variables, used for blobs_url when nothing else is set.
	c.awsAccessKey, _ = lookup("AWS_ACCESS_KEY_ID")
	c.awsSecretKey, _ = lookup("AWS_SECRET_ACCESS_KEY")
	c.awsSessionToken, _ = lookup("AWS_SESSION_TOKEN")
}

// envFields maps environment variables to the string settings they override.
func (c *Config) envFields() map[string]*string {
	fields := map[string]*string{
		"PICBOT_DATA_DIR":         &c.DataDir,
		"PICBOT_DATABASE_URL":     &c.DatabaseURL,
		"PICBOT_BLOBS_URL":        &c.BlobsURL,
		"PICBOT_BLOBS_ACCESS_KEY": &c.BlobsAccessKey,
		"PICBOT_BLOBS_SECRET_KEY": &c.BlobsSecretKey,
		"PICBOT_HTTP_LISTEN":      &c.HTTP.Listen,
		"PICBOT_HTTP_PUBLIC_URL":  &c.HTTP.PublicURL,
		"PICBOT_LOG_LEVEL":        &c.Log.Level,
		"PICBOT_LOG_FORMAT":       &c.Log.Format,
	}
	for _, more := range []map[string]*string{
		c.Vendors.Zhiqite.envFields(), c.Vendors.ShowAPI.envFields(), c.Vendors.APISpace.envFields(), c.Vendors.A1111.envFields(), c.Vendors.ComfyUI.envFields(),
		c.Telegram.envFields(), c.Discord.envFields(), c.Web.envFields(),
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
		c.Vendors.Zhiqite.secrets(), c.Vendors.ShowAPI.secrets(), c.Vendors.APISpace.secrets(), c.Vendors.A1111.secrets(), c.Vendors.ComfyUI.secrets(),
		c.Telegram.secrets(), c.Discord.secrets(), c.Web.secrets(), c.databaseSecrets(), c.blobsSecrets(),
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
	if probs := c.problems(); len(probs) > 0 {
		return &ConfigError{Problems: probs}
	}
	return nil
}

// problems lists what is wrong with the configuration, each at its key.
func (c *Config) problems() []Problem {
	var probs []Problem
	bad := func(key, format string, args ...any) {
		probs = append(probs, Problem{Key: key, Msg: fmt.Sprintf(format, args...)})
	}
	notNegative := func(key string, v int64) {
		if v < 0 {
			bad(key, "must not be negative (%d); 0 means unlimited", v)
		}
	}
	positiveDur := func(key string, d time.Duration) {
		if d <= 0 {
			bad(key, "must be a duration above 0, like 30s, not %s", d)
		}
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
	if c.Console.Enabled {
		if c.Console.OutDir == "" {
			bad("console.out_dir", "must not be empty")
		}
		if strings.TrimSpace(c.Console.User) == "" || strings.ContainsAny(c.Console.User, ": \t") {
			bad("console.user", "must be a name without spaces or colons, not %q", c.Console.User)
		}
	}
	if c.Console.Wait < 0 {
		bad("console.wait", "must not be negative (%s)", c.Console.Wait)
	}
	if l := c.Console.Lang; l != "" && !consoleLang.MatchString(l) {
		bad("console.lang", "must be en or zh (or empty: from $LANG), not %q", l)
	}
	c.validateHTTP(bad)
	c.validateDatabaseURL(bad)
	c.validateBlobsURL(bad)
	c.validateEngine(bad)
	if r := c.Retention; r.Jobs < 0 || r.Counters < 0 || r.Every < 0 {
		for key, d := range map[string]time.Duration{"retention.jobs": r.Jobs, "retention.counters": r.Counters, "retention.every": r.Every} {
			if d < 0 {
				bad(key, "must not be negative (%s); 0 keeps forever", d)
			}
		}
	}
	if c.Local.Duration < 0 {
		bad("local.duration", "must not be negative (%s)", c.Local.Duration)
	}
	positiveDur("fetch.timeout", c.Fetch.Timeout)
	c.validateQuota(bad, notNegative)
	c.validateOps(bad)
	c.Vendors.Zhiqite.validate(prefixed(bad, "vendors.zhiqite."))
	c.Vendors.ShowAPI.validate(prefixed(bad, "vendors.showapi."))
	c.Vendors.APISpace.validate(prefixed(bad, "vendors.apispace."))
	c.Vendors.A1111.validate(prefixed(bad, "vendors.a1111."))
	c.Vendors.ComfyUI.validate(prefixed(bad, "vendors.comfyui."))
	c.Telegram.validate(prefixed(bad, "telegram."))
	c.Discord.validate(prefixed(bad, "discord."))
	c.validateWeb(bad)
	c.Payments.validate(prefixed(bad, "payments."))
	if c.Discord.Enabled && c.Discord.Mode == "http" && c.HTTP.Listen == "" {
		bad("http.listen", "must be set for discord.mode http: Discord posts interactions there")
	}
	return probs
}

var consoleLang = regexp.MustCompile(`^(?i)(en|zh)([-_][A-Za-z0-9.@-]+)?$`)

func (c *Config) validateHTTP(bad badFunc) {
	h := c.HTTP
	if h.Listen != "" {
		if _, port, err := net.SplitHostPort(h.Listen); err != nil || port == "" {
			bad("http.listen", "must be host:port or :port, like :8080 or 127.0.0.1:8080, not %q", h.Listen)
		}
	}
	if h.PublicURL != "" {
		if u, err := url.Parse(h.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("http.public_url", "must start with http:// or https:// and name a host, not %q", h.PublicURL)
		} else if u.RawQuery != "" || u.Fragment != "" {
			bad("http.public_url", "must be a base URL with no ?query or #fragment")
		}
		if h.Listen == "" {
			bad("http.listen", "must be set when http.public_url is")
		}
	}
	if h.MaxBody <= 0 {
		bad("http.max_body", "must be more than 0, not %d", h.MaxBody)
	}
	for _, t := range []struct {
		key string
		d   time.Duration
	}{{"read_header_timeout", h.ReadHeaderTimeout}, {"read_timeout", h.ReadTimeout}, {"write_timeout", h.WriteTimeout}, {"idle_timeout", h.IdleTimeout}} {
		if t.d <= 0 {
			bad("http."+t.key, "must be a duration above 0, like 30s, not %s", t.d)
		}
	}
}

func (c *Config) validateEngine(bad badFunc) {
	e := c.Engine
	if e.Workers <= 0 {
		bad("engine.workers", "must be more than 0, not %d", e.Workers)
	}
	for _, t := range []struct {
		key string
		d   time.Duration
	}{{"job_timeout", e.JobTimeout}, {"vendor_timeout", e.VendorTimeout}, {"shutdown_timeout", e.ShutdownTimeout}} {
		if t.d <= 0 {
			bad("engine."+t.key, "must be a duration above 0, like 30s, not %s", t.d)
		}
	}
	if e.ProgressEvery < 0 {
		bad("engine.progress_every", "must not be negative (%s); 0 turns progress polls off", e.ProgressEvery)
	}
	if e.MaxDownload <= 0 {
		bad("engine.max_download", "must be more than 0 bytes, not %d", e.MaxDownload)
	}
	if e.MaxInput <= 0 {
		bad("engine.max_input", "must be more than 0 bytes, not %d", e.MaxInput)
	}
	if e.MaxInputPixels <= 0 {
		bad("engine.max_input_pixels", "must be more than 0 pixels, not %d", e.MaxInputPixels)
	}
	if e.DeliveryAttempts < 1 {
		bad("engine.delivery_attempts", "must be at least 1, not %d", e.DeliveryAttempts)
	}
	if u := e.UncertainSubmit; u != "" && u != engine.UncertainResubmit && u != engine.UncertainFail {
		bad("engine.uncertain_submit", "must be resubmit or fail, not %q", u)
	}
	c.validateRoutes(bad)
	lim := e.Limits
	atLeast := func(key string, v, low int) {
		if v < low {
			bad("engine.limits."+key, "must be at least %d, not %d", low, v)
		}
	}
	atLeast("max_prompt_runes", lim.MaxPromptRunes, 1)
	atLeast("min_side", lim.MinSide, 8)
	atLeast("max_side", lim.MaxSide, max(lim.MinSide, 8))
	atLeast("max_steps", lim.MaxSteps, 1)
	atLeast("max_images", lim.MaxImages, 1)
	atLeast("max_scale", lim.MaxScale, 2)
	atLeast("max_output_side", lim.MaxOutputSide, max(lim.MaxSide, 8))
	if lim.MaxGuidance <= 0 {
		bad("engine.limits.max_guidance", "must be more than 0, not %v", lim.MaxGuidance)
	}
}

// vendorKinds are the commands each vendor can run at all.
var vendorKinds = map[string][]engine.Kind{
	"local":    engine.Kinds,
	"zhiqite":  {engine.KindDraw, engine.KindUpscale, engine.KindSwapface},
	"showapi":  {engine.KindDraw},
	"apispace": {engine.KindDraw, engine.KindAnime, engine.KindUpscale},
	// /swapface only where the ReActor extension is installed (checked at run time).
	"a1111": engine.Kinds,
	// /swapface only with a face-swap workflow (vendors.comfyui.workflows.swapface).
	"comfyui": engine.Kinds,
}

// byLink are the vendors that read input images by link, from http.public_url.
var byLink = map[string]bool{"zhiqite": true, "apispace": true}

func (c *Config) validateRoutes(bad badFunc) {
	enabled := c.vendorNames()
	names := slices.Sorted(maps.Keys(vendorKinds))
	kinds := make([]string, len(engine.Kinds))
	for i, k := range engine.Kinds {
		kinds[i] = string(k)
	}
	for _, kind := range slices.Sorted(maps.Keys(c.Engine.Routes)) {
		key := "engine.routes." + kind
		if !slices.Contains(engine.Kinds, engine.Kind(kind)) {
			if s := suggest(kind, kinds); s != "" {
				bad(key, "is not a command (did you mean %s?)", s)
			} else {
				bad(key, "is not a command; use %s", strings.Join(kinds, ", "))
			}
			continue
		}
		seen := map[string]bool{}
		for _, v := range c.Engine.Routes[kind] {
			switch {
			case vendorKinds[v] == nil:
				hint := ""
				if s := suggest(v, names); s != "" {
					hint = fmt.Sprintf(" (did you mean %s?)", s)
				}
				bad(key, "no vendor is named %q%s; the vendors are %s", v, hint, strings.Join(names, ", "))
			case !enabled[v]:
				block := "vendors." + v
				if v == "local" {
					block = "local"
				}
				bad(key, "%s is not enabled (set %s.enabled: true, or take %s off this route)", block, block, v)
			case !slices.Contains(vendorKinds[v], engine.Kind(kind)):
				bad(key, "%s does not offer /%s", v, kind)
			case seen[v]:
				bad(key, "names %s twice", v)
			case kind != string(engine.KindDraw) && byLink[v] && c.HTTP.PublicURL == "":
				bad(key, "%s reads input images by link, which needs http.public_url (and http.listen): set them, or route /%s elsewhere", v, kind)
			}
			seen[v] = true
		}
		if len(c.Engine.Routes[kind]) == 0 {
			bad(key, "needs at least one vendor")
		}
	}
	for _, k := range engine.Kinds {
		if _, ok := c.Engine.Routes[string(k)]; !ok {
			bad("engine.routes."+string(k), "needs at least one vendor")
		}
	}
}

func (c *Config) validateQuota(bad badFunc, notNegative func(string, int64)) {
	q := c.Quota
	if _, err := time.LoadLocation(q.TimeZone); err != nil || q.TimeZone == "" {
		bad("quota.time_zone", "%q is not a time zone like Asia/Shanghai or UTC", q.TimeZone)
	}
	tier := func(key string, t quota.Tier) {
		for _, f := range []struct {
			name string
			v    int
		}{{"daily", t.Daily}, {"concurrent", t.Concurrent}, {"burst", t.Burst}} {
			if f.v < 0 {
				bad(key+"."+f.name, "must not be negative (%d); 0 means unlimited", f.v)
			}
		}
		if t.Every < 0 {
			bad(key+".every", "must not be negative (%s); 0 means no rate limit", t.Every)
		}
		if t.Every > 0 && t.Burst < 1 {
			bad(key+".burst", "must be at least 1 when %s.every is set, or no command would ever pass", key)
		}
	}
	tier("quota.default", q.Default)
	for _, name := range slices.Sorted(maps.Keys(q.Tiers)) {
		tier("quota.tiers."+name, q.Tiers[name])
	}
	for _, kv := range []struct {
		key string
		m   map[string]string
	}{{"quota.users", q.Users}, {"quota.roles", q.Roles}} {
		for _, who := range slices.Sorted(maps.Keys(kv.m)) {
			if _, ok := q.Tiers[kv.m[who]]; !ok {
				bad(kv.key+"."+who, "tier %q is not in quota.tiers", kv.m[who])
			}
		}
	}
	for who := range q.Users {
		checkUserKey(bad, "quota.users", who)
	}
	for _, list := range []struct {
		key  string
		keys []string
	}{{"quota.admins", q.Admins}, {"quota.allowed_users", q.AllowedUsers}, {"quota.banned_users", q.BannedUsers},
		{"quota.allowed_chats", q.AllowedChats}, {"quota.banned_chats", q.BannedChats}} {
		for _, k := range list.keys {
			checkUserKey(bad, list.key, k)
		}
	}
	notNegative("quota.chat_daily", int64(q.ChatDaily))
	notNegative("quota.global_daily", int64(q.GlobalDaily))
	for _, kind := range slices.Sorted(maps.Keys(q.Costs)) {
		if !slices.Contains(engine.Kinds, kind) {
			bad("quota.costs."+string(kind), "is not a command; use draw, anime, upscale or swapface")
		} else if q.Costs[kind] < 0 {
			bad("quota.costs."+string(kind), "must not be negative (%d)", q.Costs[kind])
		}
	}
}

// checkUserKey checks a quota key names its platform, "telegram:12345":
// a bare id would never match anyone.
func checkUserKey(bad badFunc, key, k string) {
	platform, id, ok := strings.Cut(k, ":")
	switch platform {
	case "console", "telegram", "discord":
	default:
		ok = false
	}
	if !ok || id == "" {
		bad(key, "%q must name its platform, like telegram:12345, discord:67890 or console:local", k)
	}
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
	names["a1111"] = c.Vendors.A1111.Enabled
	names["comfyui"] = c.Vendors.ComfyUI.Enabled
	return names
}
