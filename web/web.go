// Package web is the operator's console under /admin/ on the bot's HTTP
// server: jobs, images, people, vendors and spend, with the same admin
// actions as the /admin chat command. It is on only when a password is
// configured. Pages are server-rendered (html/template, embedded), work
// offline, and carry a strict Content-Security-Policy; every state change
// needs a session and its CSRF token, and is written to the audit log.
//
// Layout follows miniflux's internal/ui: one file per page or action
// (jobs.go, people.go, ...), routes.go lists them, middleware.go holds what
// every page shares, session.go the sessions.
package web

import (
	"context"
	"io"
	"log/slog"
	"time"

	"github.com/picbot/picbot/engine"
	"github.com/picbot/picbot/quota"
	"github.com/picbot/picbot/store"
)

// Jobs reads jobs from the store.
type Jobs interface {
	Job(ctx context.Context, id string) (*engine.Job, error)
	// RecentJobs calls fn with each job created before before (zero: all),
	// newest first, until fn returns false.
	RecentJobs(ctx context.Context, before time.Time, fn func(*engine.Job) bool) error
	// UpdateJob changes a stored job in one transaction (moderation).
	UpdateJob(ctx context.Context, id string, fn func(*engine.Job, engine.Counters) error) (*engine.Job, error)
}

// Engine is what the console asks of the running engine.
type Engine interface {
	Cancel(ctx context.Context, id string, by engine.UserRef, admin bool) (*engine.Job, error)
	RetryDelivery(ctx context.Context, id string) (*engine.Job, error)
	Health() []engine.VendorHealth
	// Outstanding counts unfinished jobs ("" all platforms): the queue depth.
	Outstanding(platform string) int
	// Progress is an unfinished job's last reported progress, 0..1, negative if unknown.
	Progress(id string) (float64, bool)
}

// Admin is the quota's admin side: the operations /admin runs in a chat,
// so the console and the chat command share one implementation.
type Admin interface {
	SetTier(ctx context.Context, user, tier string) error
	SetDaily(ctx context.Context, user string, n int) error
	Ban(ctx context.Context, key string, banned bool) error
	People(ctx context.Context) ([]quota.Person, error)
	Tiers() []string
	// StatsOn reads one quota day's figures ("2026-12-02").
	StatsOn(ctx context.Context, day string) (quota.Stats, error)
	Day(t time.Time) string
	// Refund gives back what a settled job cost its owner, once.
	Refund(c engine.Counters, j *engine.Job) error
}

// Audit keeps the log of admin actions.
type Audit interface {
	AppendAudit(ctx context.Context, e store.AuditEntry) error
	Audit(ctx context.Context, limit int) ([]store.AuditEntry, error)
}

// Blobs opens stored images.
type Blobs interface {
	Open(ctx context.Context, key string) (io.ReadCloser, error)
}

// Figures are the bot's running figures the overview shows; any may be nil.
type Figures struct {
	// Refusals counts commands refused since start, by error code.
	Refusals func() map[string]float64
	// Disk reports the database's and the images' bytes and the image count.
	Disk func(ctx context.Context) (database, images int64, files int)
	// Catalogues counts each vendor's catalogue entries (models and LoRAs).
	Catalogues func(ctx context.Context) map[string]int
}

// Config configures the console.
type Config struct {
	// Password or PasswordHash (bcrypt, or argon2id in PHC form) turns the console on.
	Password     string
	PasswordHash string
	// SessionTTL is how long a login lasts.
	SessionTTL time.Duration
	// LoginAttempts failed logins per address within LoginWindow; then 429.
	LoginAttempts int
	LoginWindow   time.Duration
	// Prices are each vendor's price of one billed call, for spend.
	Prices map[string]float64
	// Currency names the prices' unit.
	Currency string
	Log      *slog.Logger
	Now      func() time.Time
}

// Enabled reports whether a password is configured.
func (c Config) Enabled() bool { return c.Password != "" || c.PasswordHash != "" }
