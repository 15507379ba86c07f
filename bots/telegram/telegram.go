// Package telegram is the Telegram chat adapter. It takes updates by long
// polling (its own getUpdates loop, with the offset kept in the store) or by
// a webhook on the bot's HTTP server, turns messages and button presses into
// chat.Messages for chat.Service, and implements engine.Notifier: one status
// message per job, edited as the job moves, then the pictures with buttons.
//
// Every update is handled once across restarts: handled update ids and the
// polling offset are kept in the store, and a job records the update that
// started it (ChatRef.MessageID is "<message id>:<update id>"), so an update
// handled up to the job's creation but not marked is not run twice.
//
// The SDK (go-telegram-bot-api v5) sits behind the private botAPI interface.
package telegram

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/picbot/picbot/bots/chat"
	"github.com/picbot/picbot/bots/postlane"
	"github.com/picbot/picbot/engine"
)

// Platform is Telegram's platform name on jobs.
const Platform = "telegram"

// Modes of taking updates.
const (
	ModePolling = "polling"
	ModeWebhook = "webhook"
)

// DefaultAPIEndpoint is the public Bot API server.
const DefaultAPIEndpoint = "https://api.telegram.org"

// SecretHeader carries the webhook's secret_token on every request from Telegram.
const SecretHeader = "X-Telegram-Bot-Api-Secret-Token"

// Config configures the adapter. Zero fields take the defaults of DefaultConfig.
type Config struct {
	Token string
	Mode  string // ModePolling or ModeWebhook
	// WebhookURL is the public URL Telegram posts updates to; its path is
	// served on the bot's HTTP server. WebhookSecret is the secret_token.
	WebhookURL    string
	WebhookSecret string
	// APIEndpoint is the Bot API server: the public one, a self-hosted one, a test fake.
	APIEndpoint string
	// Proxy is an http://, https:// or socks5:// URL for every call to the API.
	Proxy string
	// AllowedChats, when not empty, are the only chats served; others are ignored.
	AllowedChats []int64
	// MaxPhotoBytes caps a photo a user sends.
	MaxPhotoBytes int64
	// PollTimeout is getUpdates' long-poll timeout.
	PollTimeout time.Duration
	// AlbumWait is how long to wait for more photos of an album after the last one.
	AlbumWait time.Duration
	// PrivateEvery and GroupEvery are the least time between two edits of a
	// status message, and the rate of messages per chat.
	PrivateEvery time.Duration
	GroupEvery   time.Duration
	// GlobalRate is how many messages a second the bot sends in all.
	GlobalRate int
	// InlineCacheChat is where inline mode's pictures are uploaded to get a
	// file_id (an inline message takes no upload); 0: the user's private
	// chat with the bot, the copy deleted at once. See inline.go.
	InlineCacheChat int64
	// StarPacks are the packs of images /buy offers for Telegram Stars.
	StarPacks []StarPack
	// UnsignedChannelPosts is what becomes of a command posted in a channel
	// that names no author: UnsignedAllow (only administrators can post in a
	// channel) or UnsignedRefuse. See channel.go.
	UnsignedChannelPosts string
	// PostLanes is how many result posts may be under way at once, each held
	// with its note on the job (see package postlane): a crash repeats at most this
	// many posts; more lanes, more uploads at a time.
	PostLanes int
	// HTTPClient calls the API; nil builds one with Proxy.
	HTTPClient *http.Client
	Logger     *slog.Logger
	Now        func() time.Time
	// Lead, when set, runs getUpdates polling only while this replica leads
	// (several replicas on one store: one polls); nil polls at once.
	Lead func(ctx context.Context, run func(context.Context) error) error
}

// DefaultConfig returns the adapter's defaults.
func DefaultConfig() Config {
	return Config{
		Mode:          ModePolling,
		APIEndpoint:   DefaultAPIEndpoint,
		MaxPhotoBytes: 20 << 20, // what getFile can serve from the public server
		PollTimeout:   50 * time.Second,
		AlbumWait:     1500 * time.Millisecond,
		PrivateEvery:  time.Second,
		GroupEvery:    3 * time.Second,
		GlobalRate:    30,
		PostLanes:     1,

		UnsignedChannelPosts: UnsignedAllow,
	}
}

var secretRe = regexp.MustCompile(`^[A-Za-z0-9_-]{1,256}$`)

// Check reports every problem with c, each message naming the setting's
// YAML key ("telegram.token: ..."). Defaults are applied first.
func (c Config) Check() error {
	c.fill()
	return errors.Join(c.problems(func(key, format string, args ...any) error {
		return fmt.Errorf("telegram.%s: %s", key, fmt.Sprintf(format, args...))
	})...)
}

// Problems lists every problem with c through bad, which receives the key
// (without the telegram. prefix) and a message. Defaults are applied first.
func (c Config) Problems(bad func(key, format string, args ...any)) {
	c.fill()
	c.problems(func(key, format string, args ...any) error {
		bad(key, format, args...)
		return nil
	})
}

func (c *Config) problems(bad func(key, format string, args ...any) error) []error {
	var errs []error
	add := func(key, format string, args ...any) {
		if err := bad(key, format, args...); err != nil {
			errs = append(errs, err)
		}
	}
	if c.Token == "" {
		add("token", "is required (or set PICBOT_TELEGRAM_TOKEN)")
	} else if strings.ContainsAny(c.Token, "/ \t\n?#") {
		add("token", "does not look like a bot token")
	}
	switch c.Mode {
	case ModePolling:
	case ModeWebhook:
		u, err := url.Parse(c.WebhookURL)
		switch {
		case c.WebhookURL == "":
			add("webhook_url", "is required when mode is webhook")
		case err != nil || u.Scheme != "https" && u.Scheme != "http" || u.Host == "":
			add("webhook_url", "must be an https:// URL")
		case u.Path == "" || u.Path == "/":
			add("webhook_url", "needs a path, like https://bot.example.com/telegram/hook")
		}
		if c.WebhookSecret == "" {
			add("webhook_secret", "is required when mode is webhook (or set PICBOT_TELEGRAM_WEBHOOK_SECRET)")
		} else if !secretRe.MatchString(c.WebhookSecret) {
			add("webhook_secret", "must be 1-256 characters of A-Z, a-z, 0-9, _ and -")
		}
	default:
		add("mode", "must be polling or webhook, not %q", c.Mode)
	}
	if c.Mode != ModeWebhook && c.WebhookSecret != "" && !secretRe.MatchString(c.WebhookSecret) {
		add("webhook_secret", "must be 1-256 characters of A-Z, a-z, 0-9, _ and -")
	}
	if u, err := url.Parse(c.APIEndpoint); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		add("api_endpoint", "must be an http(s):// URL")
	}
	if c.Proxy != "" {
		u, err := url.Parse(c.Proxy)
		if err != nil || u.Host == "" {
			add("proxy", "must be a URL like socks5://127.0.0.1:1080 or http://proxy:3128")
		} else {
			switch u.Scheme {
			case "http", "https", "socks5", "socks5h":
			default:
				add("proxy", "scheme must be http, https, socks5 or socks5h, not %q", u.Scheme)
			}
		}
	}
	if c.MaxPhotoBytes <= 0 {
		add("max_photo_bytes", "must be positive")
	}
	if c.PollTimeout < time.Second || c.PollTimeout > 10*time.Minute {
		add("poll_timeout", "must be from 1s to 10m")
	}
	if c.UnsignedChannelPosts != UnsignedAllow && c.UnsignedChannelPosts != UnsignedRefuse {
		add("unsigned_channel_posts", "must be allow or refuse, not %q", c.UnsignedChannelPosts)
	}
	for i, p := range c.StarPacks {
		if p.Images <= 0 || p.Stars <= 0 || p.Stars > 10000 {
			add(fmt.Sprintf("star_packs[%d]", i), "needs images and stars above 0 (at most 10000 stars)")
		}
	}
	if c.PostLanes < 1 || c.PostLanes > postlane.Max {
		add("post_lanes", "must be from 1 to %d", postlane.Max)
	}
	return errs
}

func (c *Config) fill() {
	d := DefaultConfig()
	if c.Mode == "" {
		c.Mode = d.Mode
	}
	if c.APIEndpoint == "" {
		c.APIEndpoint = d.APIEndpoint
	}
	c.APIEndpoint = strings.TrimRight(c.APIEndpoint, "/")
	if c.MaxPhotoBytes == 0 {
		c.MaxPhotoBytes = d.MaxPhotoBytes
	}
	if c.PollTimeout == 0 {
		c.PollTimeout = d.PollTimeout
	}
	if c.AlbumWait <= 0 {
		c.AlbumWait = d.AlbumWait
	}
	if c.PrivateEvery <= 0 {
		c.PrivateEvery = d.PrivateEvery
	}
	if c.GroupEvery <= 0 {
		c.GroupEvery = d.GroupEvery
	}
	if c.GlobalRate <= 0 {
		c.GlobalRate = d.GlobalRate
	}
	if c.PostLanes == 0 {
		c.PostLanes = d.PostLanes
	}
	if c.UnsignedChannelPosts == "" {
		c.UnsignedChannelPosts = d.UnsignedChannelPosts
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Service runs commands: a *chat.Service.
type Service interface {
	Handle(ctx context.Context, m chat.Message) chat.Reply
	Follow(ctx context.Context, m chat.Message, parentID, action string, index int) chat.Reply
}

// Jobs is what the adapter needs of the engine.
type Jobs interface {
	Job(ctx context.Context, id string) (*engine.Job, error)
	Jobs(ctx context.Context, owner engine.UserRef, limit int) ([]*engine.Job, error)
	Annotate(ctx context.Context, id, key, value string) error
}

// Settings keeps small named strings in the store: a *store.DB.
type Settings interface {
	View(ctx context.Context, fn func(engine.Counters) error) error
	Update(ctx context.Context, fn func(engine.Counters) error) error
}

// Deps are the adapter's collaborators.
type Deps struct {
	Service  Service
	Jobs     Jobs
	Blobs    engine.Blobs
	Settings Settings
	// Wallet keeps bought images; nil: /buy sells nothing.
	Wallet Wallet
}

// Bot is the Telegram adapter. It implements engine.Notifier.
type Bot struct {
	cfg      Config
	api      botAPI
	svc      Service
	jobs     Jobs
	blobs    engine.Blobs
	settings Settings
	wallet   Wallet
	log      *slog.Logger
	flood    *flood
	lanes    *postlane.Lanes
	allowed  map[int64]bool
	hookPath string

	ready    chan struct{} // closed once the username and the handled updates are known
	username string        // the bot's own username (getMe), set before ready is closed

	mu       sync.Mutex
	states   map[string]*jobState // per job: its status message and edit pacing
	swept    time.Time
	seen     map[int]bool // handled update ids
	inflight map[int]bool // update ids being handled
	albums   map[string]*album
	outboxes map[int64]*outbox // per chat: replies waiting for the chat's flood limit
	channels map[int64]channelAdmins
	runCtx   context.Context
	closed   bool           // Run is ending: no new background tasks
	workers  sync.WaitGroup // background tasks (albums, outboxes) Run waits for
}

var _ engine.Notifier = (*Bot)(nil)

// New returns the adapter. It calls nothing on the network; Run does.
func New(cfg Config, d Deps) (*Bot, error) {
	cfg.fill()
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	client := cfg.HTTPClient
	if client == nil {
		var err error
		if client, err = newHTTPClient(cfg.Proxy); err != nil {
			return nil, err
		}
	}
	return newBot(cfg, newSDK(cfg.Token, cfg.APIEndpoint, client), d), nil
}

// newBot wires a Bot over any botAPI: tests pass a fake.
func newBot(cfg Config, api botAPI, d Deps) *Bot {
	cfg.fill()
	b := &Bot{
		cfg:      cfg,
		api:      api,
		svc:      d.Service,
		jobs:     d.Jobs,
		blobs:    d.Blobs,
		settings: d.Settings,
		wallet:   d.Wallet,
		log:      cfg.Logger.With(slog.String("platform", Platform)),
		flood:    newFlood(cfg),
		lanes:    postlane.New(cfg.PostLanes, cfg.Now),
		ready:    make(chan struct{}),
		states:   make(map[string]*jobState),
		seen:     make(map[int]bool),
		inflight: make(map[int]bool),
		albums:   make(map[string]*album),
		outboxes: make(map[int64]*outbox),
		channels: make(map[int64]channelAdmins),
	}
	if len(cfg.AllowedChats) > 0 {
		b.allowed = make(map[int64]bool)
		for _, id := range cfg.AllowedChats {
			b.allowed[id] = true
		}
	}
	if cfg.Mode == ModeWebhook {
		if u, err := url.Parse(cfg.WebhookURL); err == nil {
			b.hookPath = u.EscapedPath()
		}
	}
	return b
}

func newHTTPClient(proxy string) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if proxy != "" {
		u, err := url.Parse(proxy)
		if err != nil {
			return nil, errors.New("telegram: proxy: not a URL") // the URL may hold a password: not repeated
		}
		tr.Proxy = http.ProxyURL(u) // net/http speaks http, https and socks5 proxies
	}
	// No client timeout: every call has its own deadline, and long polls are long.
	return &http.Client{Transport: tr}, nil
}

// Name is the platform name on the jobs this adapter starts.
func (b *Bot) Name() string { return Platform }

// Username is the bot's username from getMe; empty before Run has it.
func (b *Bot) Username() string {
	select {
	case <-b.ready:
		return b.username
	default:
		return ""
	}
}

// Run serves until ctx ends: it learns the bot's username (getMe), sets the
// command menus, then takes updates by polling or by webhook. An unknown
// token is an error; a network that is down is waited out.
func (b *Bot) Run(ctx context.Context) error {
	b.mu.Lock()
	b.runCtx = ctx
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		b.closed = true
		b.mu.Unlock()
		b.workers.Wait()
	}()
	if err := b.hello(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	b.setCommands(ctx)
	if err := b.loadState(ctx); err != nil {
		return err
	}
	close(b.ready)
	if b.cfg.Mode == ModeWebhook {
		if err := b.setWebhook(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		<-ctx.Done()
		return nil
	}
	if b.cfg.Lead != nil {
		return b.cfg.Lead(ctx, b.poll) // poll reads the stored offset each time it starts
	}
	return b.poll(ctx)
}

// Routes serves the webhook, in webhook mode, on the bot's HTTP server.
func (b *Bot) Routes(m *http.ServeMux) {
	if b.cfg.Mode != ModeWebhook || b.hookPath == "" {
		return
	}
	m.HandleFunc("POST "+b.hookPath, b.serveWebhook)
}

// WebhookPath is the path Routes serves; empty in polling mode.
func (b *Bot) WebhookPath() string {
	if b.cfg.Mode != ModeWebhook {
		return ""
	}
	return b.hookPath
}
