package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/bwmarrin/discordgo"
	"github.com/picbot/picbot/bots/discord"
	"github.com/picbot/picbot/bots/telegram"
	"github.com/picbot/picbot/engine"
)

// discordPermissions are what the bot needs in a channel: see it, and, for
// results that outlive the 15-minute interaction token, post a message with
// images in embeds that replies to the command (in threads too).
const discordPermissions = discordgo.PermissionViewChannel | discordgo.PermissionSendMessages |
	discordgo.PermissionSendMessagesInThreads | discordgo.PermissionEmbedLinks |
	discordgo.PermissionAttachFiles | discordgo.PermissionReadMessageHistory

// discordInvite is the URL that adds the bot to a server, with the scopes
// for a bot user and slash commands.
func discordInvite(appID string) string {
	return fmt.Sprintf("https://discord.com/oauth2/authorize?client_id=%s&scope=bot+applications.commands&permissions=%d",
		url.QueryEscape(appID), discordPermissions)
}

// startSummary is what the bot says once at start: what runs, and where.
type startSummary struct {
	items    [][2]string // label, value
	warnings []string
}

func (s *startSummary) add(label, format string, args ...any) {
	s.items = append(s.items, [2]string{label, fmt.Sprintf(format, args...)})
}

// text is the summary for a person, one item a line.
func (s *startSummary) text() string {
	var b strings.Builder
	for _, it := range s.items {
		fmt.Fprintf(&b, "  %-21s %s\n", it[0]+":", it[1])
	}
	for _, w := range s.warnings {
		fmt.Fprintf(&b, "  warning: %s\n", w)
	}
	return b.String()
}

// attrs is the summary as one log record's attributes.
func (s *startSummary) attrs() []any {
	var out []any
	for _, it := range s.items {
		out = append(out, slog.String(strings.ReplaceAll(it[0], " ", "_"), it[1]))
	}
	return out
}

// summary describes the configuration; addr is the HTTP server's address
// when it listens (nil: from http.listen).
func (l *loaded) summary(addr net.Addr) *startSummary {
	c := &l.cfg
	s := &startSummary{warnings: slices.Clone(l.warnings)}
	var chats []string
	if c.Console.Enabled {
		chats = append(chats, fmt.Sprintf("console (user %s, images in %s)", c.Console.User, absPath(c.Console.OutDir)))
	}
	if c.Telegram.Enabled {
		if c.Telegram.Mode == telegram.ModeWebhook {
			chats = append(chats, "telegram (webhook)")
		} else {
			chats = append(chats, fmt.Sprintf("telegram (long polling, %s)", redactURL(c.Telegram.APIEndpoint)))
		}
	}
	if c.Discord.Enabled {
		mode := "gateway"
		if c.Discord.Mode == discord.ModeHTTP {
			mode = "HTTP interactions"
		}
		chats = append(chats, fmt.Sprintf("discord (%s, application %s)", mode, c.Discord.ApplicationID))
	}
	if len(chats) == 0 {
		chats = append(chats, "none")
	}
	s.add("chats", "%s", strings.Join(chats, "; "))

	var vendors []string
	for _, v := range l.enabledVendors() {
		switch {
		case v == "local":
			vendors = append(vendors, "local (built-in, not an AI model)")
		case v == "a1111" || v == "comfyui":
			vendors = append(vendors, v+" (your GPU at "+l.gpuURLs(v)+")")
		case c.HTTP.PublicURL != "" && l.callbacks(v):
			vendors = append(vendors, v+" (callbacks)")
		default:
			vendors = append(vendors, v+" (polled)")
		}
	}
	s.add("vendors", "%s", strings.Join(vendors, ", "))
	l.opsSummary(s.add) // accounts, moderation, presets (ops.go)
	var routes []string
	for _, k := range engine.Kinds {
		routes = append(routes, fmt.Sprintf("/%s → %s", k, strings.Join(c.Engine.Routes[string(k)], ", ")))
	}
	s.add("routes", "%s", strings.Join(routes, "; "))

	public := strings.TrimRight(c.HTTP.PublicURL, "/")
	if c.HTTP.Listen == "" {
		s.add("http", "off (no http.listen)")
	} else {
		local := "http://" + localHost(c.HTTP.Listen, addr)
		s.add("http", "listening on %s", local)
		if public != "" {
			s.add("callbacks", "%s/callback/<vendor>/<job>/<token>", redactURL(public))
		} else {
			s.add("callbacks", "none (no http.public_url: vendors are polled)")
		}
		if c.HTTP.Metrics {
			s.add("metrics", "%s/metrics (keep it private), %[1]s/healthz, %[1]s/readyz", local)
		}
		if c.Web.enabled() {
			s.add("web console", "%s/admin/ (password login; put it behind TLS)", local)
		} else {
			s.add("web console", "off (no web.password)")
		}
	}
	if c.Telegram.Enabled && c.Telegram.Mode == telegram.ModeWebhook {
		s.add("telegram webhook", "%s", redactURL(c.Telegram.WebhookURL))
	}
	if c.Discord.Enabled {
		if c.Discord.Mode == discord.ModeHTTP {
			path := c.Discord.InteractionsPath
			if path == "" {
				path = discord.DefaultInteractionsPath
			}
			if public != "" {
				s.add("discord interactions", "%s%s (the Interactions Endpoint URL)", redactURL(public), path)
			} else {
				s.add("discord interactions", "path %s on http.listen, behind your public https address", path)
			}
		}
		s.add("discord invite", "%s", discordInvite(c.Discord.ApplicationID))
	}
	if c.DatabaseURL != "" {
		s.add("database", "PostgreSQL %s (shared by replicas)", redactURL(c.DatabaseURL))
	} else {
		s.add("data", "%s", absPath(c.DataDir))
	}
	if c.BlobsURL != "" {
		s.add("images", "object store %s", redactURL(c.BlobsURL))
	}
	return s
}

// enabledVendors are the enabled vendors, in a fixed order.
func (l *loaded) enabledVendors() []string {
	var out []string
	names := l.cfg.vendorNames()
	for _, v := range []string{"local", "zhiqite", "showapi", "apispace", "a1111", "comfyui"} {
		if names[v] {
			out = append(out, v)
		}
	}
	return out
}

// gpuURLs are a self-hosted backend's base URLs, without credentials.
func (l *loaded) gpuURLs(vendor string) string {
	urls := l.cfg.Vendors.A1111.URLs()
	if vendor == "comfyui" {
		urls = l.cfg.Vendors.ComfyUI.URLs()
	}
	for i, u := range urls {
		urls[i] = redactURL(u)
	}
	return strings.Join(urls, ", ")
}

func (l *loaded) callbacks(vendor string) bool {
	v := l.cfg.Vendors
	var p *bool
	switch vendor {
	case "zhiqite":
		p = v.Zhiqite.Callbacks
	case "showapi":
		p = v.ShowAPI.Callbacks
	case "apispace":
		p = v.APISpace.Callbacks
	}
	return p == nil || *p
}

// preflight is what the bot checks before it starts, beyond the
// configuration's own validity: a chat to serve and directories it can
// write. It adds warnings for settings that work but are risky.
func (l *loaded) preflight() error {
	c := &l.cfg
	var probs []Problem
	if !c.Console.Enabled && !c.Telegram.Enabled && !c.Discord.Enabled {
		where := "the configuration"
		if l.file != "" {
			where = l.file
		}
		probs = append(probs, Problem{Msg: "no chat platform is enabled, so nobody could use the bot: set PICBOT_TELEGRAM_TOKEN, " +
			"or PICBOT_DISCORD_TOKEN and PICBOT_DISCORD_APPLICATION_ID, or turn on console, telegram or discord in " + where})
	}
	dirs := []Problem{{Key: "data_dir", Msg: c.DataDir}}
	if c.Console.Enabled {
		dirs = append(dirs, Problem{Key: "console.out_dir", Msg: c.Console.OutDir})
	}
	for _, d := range dirs {
		if err := checkWritable(d.Msg); err != nil {
			probs = append(probs, Problem{Key: d.Key, Line: l.lines[d.Key], Msg: err.Error()})
		}
	}
	if len(probs) > 0 {
		return &ConfigError{File: l.file, Problems: probs}
	}
	if c.Fetch.AllowPrivate && !slices.ContainsFunc(l.warnings, func(w string) bool { return strings.HasPrefix(w, "fetch.allow_private") }) {
		l.warnings = append(l.warnings, "fetch.allow_private is true: users' links may reach this machine's and its network's private addresses (for tests only)")
	}
	routed := map[string]bool{}
	for _, vs := range c.Engine.Routes {
		for _, v := range vs {
			routed[v] = true
		}
	}
	for _, v := range l.enabledVendors() {
		if !routed[v] && v != "local" {
			l.warnings = append(l.warnings, fmt.Sprintf("vendors.%s is enabled but on no route in engine.routes, so it is never used", v))
		}
	}
	return nil
}

// checkWritable reports whether the bot can create files in dir, or create
// dir, without leaving anything behind.
func checkWritable(dir string) error {
	path := dir
	for {
		fi, err := os.Stat(path)
		if err == nil {
			if !fi.IsDir() {
				if path == dir {
					return fmt.Errorf("%s is a file, not a directory", absPath(dir))
				}
				return fmt.Errorf("cannot create %s: %s is a file", absPath(dir), absPath(path))
			}
			break
		}
		if !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("cannot use %s: %w", absPath(dir), errors.Unwrap(err))
		}
		parent := filepath.Dir(path)
		if parent == path {
			break
		}
		path = parent
	}
	f, err := os.CreateTemp(path, ".picbot-write-check-*")
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		if path == dir {
			return fmt.Errorf("cannot write in %s: %w", absPath(dir), err)
		}
		return fmt.Errorf("cannot create %s: cannot write in %s: %w", absPath(dir), absPath(path), err)
	}
	f.Close()
	return os.Remove(f.Name())
}

func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

// redactURL drops a URL's password, should one be written in it.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	return u.Redacted()
}

// localHost is the server's address as a URL host: a wildcard listen
// address is shown as localhost.
func localHost(listen string, addr net.Addr) string {
	if addr != nil {
		listen = addr.String()
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}
