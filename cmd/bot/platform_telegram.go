package main

import (
	"errors"
	"time"

	"github.com/picbot/picbot/bots/telegram"
)

// TelegramConfig configures the Telegram adapter (bots/telegram). Its keys
// sit under telegram; zero values take the adapter's defaults.
type TelegramConfig struct {
	Enabled bool   `yaml:"enabled"`
	Token   string `yaml:"token"` // from @BotFather; env PICBOT_TELEGRAM_TOKEN
	// Mode is how updates arrive: polling (getUpdates; the default) or
	// webhook (Telegram posts them to webhook_url, served on http.listen).
	Mode          string `yaml:"mode"`
	WebhookURL    string `yaml:"webhook_url"`    // public https URL; its path is served on http.listen
	WebhookSecret string `yaml:"webhook_secret"` // secret_token every webhook request carries; env PICBOT_TELEGRAM_WEBHOOK_SECRET
	// APIEndpoint is the Bot API server: https://api.telegram.org, a
	// self-hosted telegram-bot-api server, or a test fake.
	APIEndpoint string `yaml:"api_endpoint"`
	Proxy       string `yaml:"proxy"` // http://, https:// or socks5:// proxy for every call to the API
	// AllowedChats, when set, are the only chats served (ids like -1001234567890); others are ignored.
	AllowedChats  []int64       `yaml:"allowed_chats"`
	MaxPhotoBytes int64         `yaml:"max_photo_bytes"` // largest photo a user may send
	PollTimeout   time.Duration `yaml:"poll_timeout"`    // getUpdates long-poll timeout
	// PostLanes is how many result posts may be under way at once: a crash
	// repeats at most this many; more lanes, more uploads in parallel.
	PostLanes int `yaml:"post_lanes"`
	// UnsignedChannelPosts is what becomes of a command posted in a channel
	// with no author to check against its administrators: allow or refuse.
	UnsignedChannelPosts string `yaml:"unsigned_channel_posts"`
	// InlineCacheChat is the chat inline mode's pictures are uploaded to
	// first (an inline message takes only a file_id); 0: the user's private
	// chat with the bot, the copy deleted at once.
	InlineCacheChat int64 `yaml:"inline_cache_chat"`
}

// defaultTelegramConfig is the adapter's defaults as configuration.
func defaultTelegramConfig() TelegramConfig {
	d := telegram.DefaultConfig()
	return TelegramConfig{
		Mode:          d.Mode,
		APIEndpoint:   d.APIEndpoint,
		MaxPhotoBytes: d.MaxPhotoBytes,
		PollTimeout:   d.PollTimeout,
		PostLanes:     d.PostLanes,

		UnsignedChannelPosts: d.UnsignedChannelPosts,
	}
}

// envFields maps PICBOT_TELEGRAM_* variables to settings.
func (c *TelegramConfig) envFields() map[string]*string {
	return map[string]*string{
		"PICBOT_TELEGRAM_TOKEN":          &c.Token,
		"PICBOT_TELEGRAM_WEBHOOK_SECRET": &c.WebhookSecret,
		"PICBOT_TELEGRAM_API_ENDPOINT":   &c.APIEndpoint,
	}
}

// secrets lists the values to keep out of logs.
func (c *TelegramConfig) secrets() []string { return []string{c.Token, c.WebhookSecret} }

// validate checks the settings only when the adapter is enabled.
func (c *TelegramConfig) validate(bad badFunc) {
	if !c.Enabled {
		return
	}
	c.adapterConfig().Problems(bad)
}

func (c *TelegramConfig) adapterConfig() telegram.Config {
	return telegram.Config{
		Token:         c.Token,
		Mode:          c.Mode,
		WebhookURL:    c.WebhookURL,
		WebhookSecret: c.WebhookSecret,
		APIEndpoint:   c.APIEndpoint,
		Proxy:         c.Proxy,
		AllowedChats:  c.AllowedChats,
		MaxPhotoBytes: c.MaxPhotoBytes,
		PollTimeout:   c.PollTimeout,
		PostLanes:     c.PostLanes,

		UnsignedChannelPosts: c.UnsignedChannelPosts,
		InlineCacheChat:      c.InlineCacheChat,
	}
}

// newTelegram returns the adapter, or nil when it is not enabled.
func (a *app) newTelegram(c TelegramConfig) (platform, error) {
	if !c.Enabled {
		return nil, nil
	}
	if c.Mode == telegram.ModeWebhook && a.cfg.HTTP.Listen == "" {
		return nil, errors.New("telegram.mode: webhook needs http.listen, where Telegram posts the updates")
	}
	cfg := c.adapterConfig()
	cfg.Logger = a.log
	cfg.StarPacks = a.cfg.Payments.TelegramStars
	cfg.Lead = a.lead("telegram")
	bot, err := telegram.New(cfg, telegram.Deps{Service: a.svc, Jobs: a.engine, Blobs: a.blobs, Settings: a.db, Wallet: a.quota})
	if err != nil {
		return nil, err // names its key already
	}
	return bot, nil
}
