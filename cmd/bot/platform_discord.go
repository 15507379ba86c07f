package main

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/picbot/picbot/bots/discord"
	"github.com/picbot/picbot/bots/postlane"
)

// DiscordConfig configures the Discord adapter (bots/discord). Its keys sit
// under discord; zero values take the adapter's defaults.
type DiscordConfig struct {
	Enabled       bool   `yaml:"enabled"`
	Token         string `yaml:"token"`          // the bot token; env PICBOT_DISCORD_TOKEN
	ApplicationID string `yaml:"application_id"` // the application (client) id
	PublicKey     string `yaml:"public_key"`     // hex Ed25519 key for HTTP interactions; env PICBOT_DISCORD_PUBLIC_KEY
	// Mode is how interactions arrive: gateway (a websocket session; the
	// default) or http (Discord posts them to interactions_path on http.listen).
	Mode string `yaml:"mode"`
	// GuildIDs, when set, registers the commands in these guilds only, which
	// takes effect at once (for development); otherwise they are global.
	GuildIDs []string `yaml:"guild_ids"`
	Proxy    string   `yaml:"proxy"`    // HTTP proxy URL for Discord's API, gateway and attachments
	APIBase  string   `yaml:"api_base"` // replaces https://discord.com/api (tests, API proxies)
	// ButtonUsers says who may press the buttons under a result: author or anyone.
	ButtonUsers      string        `yaml:"button_users"`
	MaxUploadBytes   int64         `yaml:"max_upload_bytes"`  // images per message; default 10 MiB
	TokenLifetime    time.Duration `yaml:"token_lifetime"`    // default 15m, Discord's
	InteractionsPath string        `yaml:"interactions_path"` // default /discord/interactions
	// PostLanes is how many results may be being posted at once: a crash
	// repeats at most this many; more lanes, more uploads in parallel.
	PostLanes int `yaml:"post_lanes"`
	// ThreadGuilds are the guilds where each job opens a thread of its own
	// for its result (a command's thread option says otherwise).
	ThreadGuilds []string `yaml:"thread_guilds"`
}

// envFields maps PICBOT_DISCORD_* variables to settings.
func (c *DiscordConfig) envFields() map[string]*string {
	return map[string]*string{
		"PICBOT_DISCORD_TOKEN":          &c.Token,
		"PICBOT_DISCORD_PUBLIC_KEY":     &c.PublicKey,
		"PICBOT_DISCORD_APPLICATION_ID": &c.ApplicationID,
	}
}

// secrets lists the values to keep out of logs.
func (c *DiscordConfig) secrets() []string { return []string{c.Token} }

var snowflake = regexp.MustCompile(`^[0-9]{1,20}$`)

// validate checks the settings only when the adapter is enabled.
func (c *DiscordConfig) validate(bad badFunc) {
	if !c.Enabled {
		return
	}
	for i, g := range c.ThreadGuilds {
		if !snowflake.MatchString(g) {
			bad(fmt.Sprintf("thread_guilds[%d]", i), "%q is not a guild id", g)
		}
	}
	if strings.TrimSpace(strings.TrimPrefix(c.Token, "Bot ")) == "" {
		bad("token", "must be set (or PICBOT_DISCORD_TOKEN)")
	}
	if !snowflake.MatchString(c.ApplicationID) {
		bad("application_id", "must be the application's numeric id (Developer Portal, General Information: Application ID; or PICBOT_DISCORD_APPLICATION_ID), not %q", c.ApplicationID)
	}
	switch c.Mode {
	case "", discord.ModeGateway:
	case discord.ModeHTTP:
		if _, err := discord.ParsePublicKey(c.PublicKey); err != nil {
			bad("public_key", "must be the application's public key, 64 hex digits (or PICBOT_DISCORD_PUBLIC_KEY)")
		}
	default:
		bad("mode", "must be gateway or http, not %q", c.Mode)
	}
	if c.PublicKey != "" && c.Mode != discord.ModeHTTP {
		if _, err := discord.ParsePublicKey(c.PublicKey); err != nil {
			bad("public_key", "must be 64 hex digits")
		}
	}
	for _, g := range c.GuildIDs {
		if !snowflake.MatchString(g) {
			bad("guild_ids", "%q is not a numeric guild id", g)
		}
	}
	if c.Proxy != "" {
		if u, err := url.Parse(c.Proxy); err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "socks5") {
			bad("proxy", "must be a URL like http://host:port, not %q", c.Proxy)
		}
	}
	if c.APIBase != "" {
		if u, err := url.Parse(c.APIBase); err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			bad("api_base", "must be an http(s) URL, not %q", c.APIBase)
		}
	}
	switch c.ButtonUsers {
	case "", discord.ButtonsAuthor, discord.ButtonsAnyone:
	default:
		bad("button_users", "must be author or anyone, not %q", c.ButtonUsers)
	}
	if c.MaxUploadBytes < 0 || (c.MaxUploadBytes > 0 && c.MaxUploadBytes < 64<<10) {
		bad("max_upload_bytes", "must be at least 65536 (64 KiB), or 0 for the default 10 MiB")
	}
	if c.TokenLifetime < 0 || c.TokenLifetime > discord.DefaultTokenLifetime {
		bad("token_lifetime", "must be between 0 (default) and %s, Discord's lifetime", discord.DefaultTokenLifetime)
	}
	if c.PostLanes < 0 || c.PostLanes > postlane.Max {
		bad("post_lanes", "must be from 1 to %d, or 0 for the default 1", postlane.Max)
	}
	if c.InteractionsPath != "" && (!strings.HasPrefix(c.InteractionsPath, "/") || strings.ContainsAny(c.InteractionsPath, " {}")) {
		bad("interactions_path", "must be a path starting with /, not %q", c.InteractionsPath)
	}
}

// newDiscord returns the adapter, or nil when it is not enabled.
func (a *app) newDiscord(c DiscordConfig) (platform, error) {
	if !c.Enabled {
		return nil, nil
	}
	bot, err := discord.New(discord.Config{
		Token:            c.Token,
		ApplicationID:    c.ApplicationID,
		PublicKey:        c.PublicKey,
		Mode:             c.Mode,
		GuildIDs:         c.GuildIDs,
		Proxy:            c.Proxy,
		APIBase:          c.APIBase,
		ButtonUsers:      c.ButtonUsers,
		MaxUpload:        c.MaxUploadBytes,
		TokenLifetime:    c.TokenLifetime,
		InteractionsPath: c.InteractionsPath,
		PostLanes:        c.PostLanes,
		ThreadGuilds:     c.ThreadGuilds,
		PublicURL:        a.cfg.HTTP.PublicURL,
		Limits:           a.engine.Limits(),
		MaxInput:         a.cfg.Engine.MaxInput,
	}, discord.Deps{
		Service:  a.svc,
		Engine:   a.engine,
		Blobs:    a.blobs,
		Catalog:  a.catalogFunc(),
		Settings: a.db,
		Log:      a.log,
		Presets:  a.presetNames(),
		Lead:     a.lead("discord"),
	})
	if err != nil {
		return nil, fmt.Errorf("discord: %w", err)
	}
	return bot, nil
}
