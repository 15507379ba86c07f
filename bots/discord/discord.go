// Package discord is the Discord adapter: slash commands in, pictures out.
//
// Interactions arrive by the gateway (a discordgo session) or by HTTP
// (Discord posts them to the bot's interactions endpoint, signed with
// Ed25519). Either way the bot acknowledges at once with a deferred response,
// then runs the command through bots/chat, edits the original response with
// progress, and finally posts the images there with buttons under them. The
// interaction token lives 15 minutes: a result that comes later goes to the
// channel (or DM) as a normal message that replies to the command. What
// delivery needs is kept on the job (engine.Annotate), so it survives a restart;
// buttons name jobs in the store, so they work after one too.
package discord

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/bwmarrin/discordgo"
	"github.com/picbot/picbot/bots/chat"
	"github.com/picbot/picbot/bots/postlane"
	"github.com/picbot/picbot/engine"
	"github.com/picbot/picbot/quota"
)

// Platform is Discord's platform name on jobs.
const Platform = "discord"

// Modes: how interactions reach the bot.
const (
	ModeGateway = "gateway"
	ModeHTTP    = "http"
)

// Who may press the buttons under a result.
const (
	ButtonsAuthor = "author"
	ButtonsAnyone = "anyone"
)

// Defaults for the zero values of Config.
const (
	DefaultMaxUpload        = 10 << 20
	DefaultTokenLifetime    = 15 * time.Minute
	DefaultInteractionsPath = "/discord/interactions"
	DefaultProgressEvery    = 2 * time.Second
	// MaxTimestampSkew is how old (or how far ahead) a signed interaction may be.
	MaxTimestampSkew = 5 * time.Minute
)

// Config configures the adapter. Zero values take the defaults above.
type Config struct {
	Token         string   // the bot token, with or without "Bot "
	ApplicationID string   // the application (client) id
	PublicKey     string   // hex Ed25519 key that signs HTTP interactions
	Mode          string   // ModeGateway or ModeHTTP
	GuildIDs      []string // register commands in these guilds only (instant; for testing)
	Proxy         string   // HTTP proxy URL for REST, the gateway and attachments
	APIBase       string   // replaces https://discord.com/api (tests, API proxies)
	ButtonUsers   string   // ButtonsAuthor or ButtonsAnyone
	// ThreadGuilds are the guilds where every job opens a thread of its own
	// unless its command says thread: false (places.go).
	ThreadGuilds  []string
	MaxUpload     int64 // bytes per message of images
	TokenLifetime time.Duration
	// InteractionsPath is where Discord posts interactions in HTTP mode.
	InteractionsPath string
	// PublicURL is the bot's public base URL; with it, originals too large to
	// post are offered as links.
	PublicURL string
	// Limits bound the commands' options, as the engine will.
	Limits engine.Limits
	// MaxInput caps an attachment, in bytes.
	MaxInput int64
	// ProgressEvery is the least time between two progress edits of one job.
	ProgressEvery time.Duration
	// PostLanes is how many results may be being posted at once, each held
	// with its note on the job (see package postlane): a crash repeats at
	// most this many posts; more lanes, more uploads at a time.
	PostLanes int
}

func (c *Config) fill() {
	if c.Mode == "" {
		c.Mode = ModeGateway
	}
	if c.ButtonUsers == "" {
		c.ButtonUsers = ButtonsAuthor
	}
	if c.MaxUpload <= 0 {
		c.MaxUpload = DefaultMaxUpload
	}
	if c.TokenLifetime <= 0 {
		c.TokenLifetime = DefaultTokenLifetime
	}
	if c.InteractionsPath == "" {
		c.InteractionsPath = DefaultInteractionsPath
	}
	if c.Limits == (engine.Limits{}) {
		c.Limits = engine.DefaultLimits()
	}
	if c.MaxInput <= 0 {
		c.MaxInput = 20 << 20
	}
	if c.ProgressEvery <= 0 {
		c.ProgressEvery = DefaultProgressEvery
	}
	if c.PostLanes <= 0 {
		c.PostLanes = 1
	}
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")
}

// Service runs commands: chat.Service.
type Service interface {
	Handle(ctx context.Context, m chat.Message) chat.Reply
	Follow(ctx context.Context, m chat.Message, parentID, action string, index int) chat.Reply
}

// Engine is what the adapter needs of the engine.
type Engine interface {
	Job(ctx context.Context, id string) (*engine.Job, error)
	Jobs(ctx context.Context, owner engine.UserRef, limit int) ([]*engine.Job, error)
	Annotate(ctx context.Context, id, key, value string) error
}

// Deps are the bot's collaborators.
type Deps struct {
	Service Service
	Engine  Engine
	Blobs   engine.Blobs
	// Catalog lists the vendors' models and LoRAs for autocomplete; nil: none.
	Catalog func(ctx context.Context) ([]engine.CatalogEntry, error)
	// Settings records interactions before their deferral, so a crash
	// loses none (intake.go); nil: not recorded.
	Settings Settings
	Log      *slog.Logger
	Now      func() time.Time
	// Presets are /draw's preset names, for autocomplete.
	Presets []string
	// Lead, when set, holds the gateway session only while this replica
	// leads (several replicas on one store: one session); nil: at once.
	Lead func(ctx context.Context, run func(context.Context) error) error
}

// Bot is the Discord adapter. It implements engine.Notifier for Discord jobs.
type Bot struct {
	cfg      Config
	key      ed25519.PublicKey
	api      rest
	sess     *discordgo.Session // nil when the REST seam is a fake
	svc      Service
	eng      Engine
	blobs    engine.Blobs
	settings Settings
	presets  []string
	catalog  *catalogue
	fetch    *http.Client
	log      *slog.Logger
	now      func() time.Time
	lead     func(ctx context.Context, run func(context.Context) error) error
	edits    *quota.Keyed // progress edits per job
	lanes    *postlane.Lanes

	// base is the context of work that outlives a request; ended by Run's end.
	base   context.Context
	stop   context.CancelFunc
	work   sync.WaitGroup
	wmu    sync.Mutex
	closed bool

	mu            sync.Mutex
	byJob         map[string]*live
	byInteraction map[string]*live
	swept         time.Time
	recorded      map[string]bool // interactions this process recorded (intake.go)
	faces         faces           // "Use as face" picks (places.go)
}

var _ engine.Notifier = (*Bot)(nil)

// New returns the adapter. It connects to nothing until Run.
func New(cfg Config, d Deps) (*Bot, error) {
	cfg.fill()
	sess, err := newSession(cfg.Token, cfg.APIBase, cfg.Proxy)
	if err != nil {
		return nil, err
	}
	b, err := newBot(cfg, d, &session{s: sess})
	if err != nil {
		return nil, err
	}
	b.sess = sess
	b.fetch = &http.Client{Transport: sess.Client.Transport, Timeout: 60 * time.Second}
	return b, nil
}

func newBot(cfg Config, d Deps, api rest) (*Bot, error) {
	cfg.fill()
	if cfg.Mode != ModeGateway && cfg.Mode != ModeHTTP {
		return nil, fmt.Errorf("discord mode %q: want %s or %s", cfg.Mode, ModeGateway, ModeHTTP)
	}
	if cfg.ApplicationID == "" {
		return nil, errors.New("discord: the application id is required")
	}
	var key ed25519.PublicKey
	if cfg.PublicKey != "" || cfg.Mode == ModeHTTP {
		k, err := ParsePublicKey(cfg.PublicKey)
		if err != nil {
			return nil, err
		}
		key = k
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	base, stop := context.WithCancel(context.Background())
	return &Bot{
		cfg: cfg, key: key, api: api,
		svc: d.Service, eng: d.Engine, blobs: d.Blobs, settings: d.Settings, presets: d.Presets, lead: d.Lead,
		catalog: &catalogue{list: d.Catalog, now: d.Now, ttl: 5 * time.Minute},
		fetch:   &http.Client{Timeout: 60 * time.Second},
		log:     d.Log.With(slog.String("platform", Platform)),
		now:     d.Now,
		edits:   quota.NewKeyed(cfg.ProgressEvery, 1, d.Now),
		lanes:   postlane.New(cfg.PostLanes, d.Now),
		base:    base, stop: stop,
		byJob:         make(map[string]*live),
		byInteraction: make(map[string]*live),
		recorded:      make(map[string]bool),
	}, nil
}

// ParsePublicKey reads a hex Ed25519 public key.
func ParsePublicKey(s string) (ed25519.PublicKey, error) {
	k, err := hex.DecodeString(strings.TrimSpace(s))
	if err != nil || len(k) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("discord public key: want %d bytes of hex", ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(k), nil
}

// Name is the platform name on the jobs the bot starts.
func (b *Bot) Name() string { return Platform }

// Run registers the commands and, in gateway mode, serves the gateway until
// ctx ends. In HTTP mode the interactions come through Routes. On return,
// the work under way has finished or been cancelled.
func (b *Bot) Run(ctx context.Context) error {
	defer b.shutdown()
	ictx, stopIntake := context.WithCancel(ctx) // ended before shutdown waits for the work
	defer stopIntake()
	b.resumeIntake(ictx)
	b.register(ctx)
	if b.cfg.Mode == ModeHTTP {
		<-ctx.Done()
		return nil
	}
	if b.lead != nil {
		return b.lead(ctx, b.runGateway)
	}
	return b.runGateway(ctx)
}

// shutdown lets running commands finish for a while, then cancels them.
func (b *Bot) shutdown() {
	b.wmu.Lock()
	b.closed = true
	b.wmu.Unlock()
	done := make(chan struct{})
	go func() {
		b.work.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
	}
	b.stop()
	<-done
}

// register replaces the application's commands: in each development guild
// if there are any (instant), otherwise globally. A failure is logged: the
// commands registered before stay in force.
func (b *Bot) register(ctx context.Context) {
	cmds := Commands(b.cfg.Limits)
	if ch, ok := b.eng.(interface {
		Choices(engine.Kind) []engine.VendorChoices
	}); ok {
		cmds = CommandsFor(b.cfg.Limits, ch.Choices)
	}
	guilds := b.cfg.GuildIDs
	if len(guilds) == 0 {
		guilds = []string{""}
	}
	for _, g := range guilds {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := b.api.overwriteCommands(cctx, b.cfg.ApplicationID, g, cmds)
		cancel()
		scope := "global"
		if g != "" {
			scope = "guild " + g
		}
		if err != nil {
			b.log.Error("register commands", slog.String("scope", scope), slog.Any("err", err))
			continue
		}
		b.log.Info("commands registered", slog.String("scope", scope), slog.Int("commands", len(cmds)))
	}
}

// begin reserves a place for work that outlives a request; false once the
// bot is stopping. Each true must be followed by exactly one b.work.Done.
func (b *Bot) begin() bool {
	b.wmu.Lock()
	defer b.wmu.Unlock()
	if b.closed {
		return false
	}
	b.work.Add(1)
	return true
}
