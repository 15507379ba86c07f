package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"time"

	"github.com/picbot/picbot/engine"
	"github.com/picbot/picbot/store"
	pgstore "github.com/picbot/picbot/store/pg"
)

// appStore is what the program needs of its store, bbolt or PostgreSQL.
type appStore interface {
	engine.Store
	Update(ctx context.Context, fn func(engine.Counters) error) error
	Close() error
	// Size is the bytes the store takes, for /metrics.
	Size() (int64, error)
	// What the web console reads (web.Jobs, web.Audit).
	RecentJobs(ctx context.Context, before time.Time, fn func(*engine.Job) bool) error
	AppendAudit(ctx context.Context, e store.AuditEntry) error
	Audit(ctx context.Context, limit int) ([]store.AuditEntry, error)
}

// appBlobs is what the program needs of its image store.
type appBlobs interface {
	engine.Blobs
	Size(ctx context.Context) (total int64, files int, err error)
}

// usesPostgres reports whether database_url selects PostgreSQL.
func (c *Config) usesPostgres() bool { return c.DatabaseURL != "" }

// openStores opens the store database_url names, PostgreSQL with its
// images, or else bbolt and the image directory in data_dir; with
// blobs_url, the images are in that object store whichever the database.
func openStores(cfg Config, log *slog.Logger) (appStore, appBlobs, error) {
	db, blobs, err := openDatabase(cfg, log)
	if err != nil || cfg.BlobsURL == "" {
		return db, blobs, err
	}
	obj, err := openObjectBlobs(cfg, log)
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	return db, obj, nil
}

func openDatabase(cfg Config, log *slog.Logger) (appStore, appBlobs, error) {
	if cfg.usesPostgres() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		db, err := pgstore.Open(ctx, cfg.DatabaseURL, pgstore.Options{Logger: log})
		if err != nil {
			return nil, nil, fmt.Errorf("database_url: %w", err)
		}
		log.Info("store: PostgreSQL", slog.String("database", redactURL(cfg.DatabaseURL)), slog.String("replica", db.Replica()))
		return pgSized{db}, db.Blobs(0), nil
	}
	db, err := store.Open(filepath.Join(cfg.DataDir, "picbot.db"), store.Options{})
	if err != nil {
		return nil, nil, err
	}
	blobs, err := store.OpenBlobs(filepath.Join(cfg.DataDir, "blobs"), 0)
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	return db, blobs, nil
}

// pgSized gives the PostgreSQL store the Size the program asks of a store,
// and keeps the leases it offers the engine visible through the interface.
type pgSized struct{ *pgstore.DB }

func (p pgSized) Size() (int64, error) { return p.DB.Size(context.Background()) }

// validateDatabaseURL checks database_url when set.
func (c *Config) validateDatabaseURL(bad badFunc) {
	if c.DatabaseURL == "" {
		return
	}
	u, err := url.Parse(c.DatabaseURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" {
		bad("database_url", "must be a postgres:// URL like postgres://picbot:secret@db.example:5432/picbot, or empty for the embedded store in data_dir")
	}
}

// databaseSecrets is the password in database_url, kept out of logs.
func (c *Config) databaseSecrets() []string {
	u, err := url.Parse(c.DatabaseURL)
	if err != nil || u.User == nil {
		return nil
	}
	p, _ := u.User.Password()
	return []string{p}
}

// backupPostgres is what `picbot backup` says for a PostgreSQL store.
var errBackupPostgres = errors.New("backup: this bot keeps its data in PostgreSQL (database_url); back it up with pg_dump")
