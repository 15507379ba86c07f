package main

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// sizeEvery is how often the store's disk usage is measured for /metrics:
// walking a large image directory on every scrape would cost too much.
const sizeEvery = 5 * time.Minute

// housekeeping starts the admin socket, retention and the disk-usage
// gauges; the returned function stops them and waits, before the store closes.
func (a *app) housekeeping(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var stopAdmin func()
	if !a.cfg.usesPostgres() { // PostgreSQL is backed up with pg_dump
		var err error
		stopAdmin, err = a.serveAdmin(ctx)
		if err != nil {
			// The bot runs on without it; only online backup is lost.
			a.log.Warn("no admin socket: picbot backup will not reach this bot", slog.Any("err", err))
		}
	}
	a.measureDatabase()
	var wg sync.WaitGroup
	wg.Go(func() { a.prune(ctx) })
	wg.Go(func() {
		t := time.NewTicker(sizeEvery)
		defer t.Stop()
		for {
			a.measureDatabase()
			if n, files, err := a.blobs.Size(ctx); err == nil {
				a.metrics.ImagesSize(n, files)
			} else if ctx.Err() == nil {
				a.log.Warn("measure image directory", slog.Any("err", err))
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	})
	return func() {
		cancel()
		wg.Wait()
		if stopAdmin != nil {
			stopAdmin()
		}
	}
}

func (a *app) measureDatabase() {
	if n, err := a.db.Size(); err == nil {
		a.metrics.DatabaseSize(n)
	}
}
