package main

import (
	"context"

	"github.com/picbot/picbot/store"
	pgstore "github.com/picbot/picbot/store/pg"
)

// lead returns what runs a platform's singleton (Telegram's getUpdates,
// Discord's gateway) on one replica at a time: leader election by an
// advisory lock when replicas share PostgreSQL; nil on bbolt, where one
// process owns the store.
func (a *app) lead(name string) func(ctx context.Context, run func(context.Context) error) error {
	p, ok := a.db.(pgSized)
	if !ok {
		return nil
	}
	return func(ctx context.Context, run func(context.Context) error) error {
		return p.Lead(ctx, name, run)
	}
}

// prune applies retention until ctx ends.
func (a *app) prune(ctx context.Context) {
	// The files in data_dir or an object store; nil: PostgreSQL's own
	// image tables, which its pruner sweeps without being told.
	blobs, _ := a.blobs.(store.BlobSweeper)
	switch db := a.db.(type) {
	case *store.DB:
		p := &store.Pruner{DB: db, Blobs: blobs, Retention: a.cfg.Retention, Log: a.log,
			Passed: func(store.PruneStats, error) { a.measureDatabase() }}
		p.Run(ctx)
	case pgSized:
		p := &pgstore.Pruner{DB: db.DB, Blobs: blobs, Retention: pgstore.Retention(a.cfg.Retention), Log: a.log,
			Passed: func(error) { a.measureDatabase() }}
		p.Run(ctx)
	}
}
