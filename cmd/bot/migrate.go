package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/picbot/picbot/engine"
	"github.com/picbot/picbot/store"
	pgstore "github.com/picbot/picbot/store/pg"
)

// migrateCommand is `picbot migrate -config FILE --to postgres://...`: it
// copies the bbolt data directory the configuration names (jobs, counters,
// settings, images) into PostgreSQL. Only what the database lacks is
// written, so running it again copies nothing twice. The bot must be
// stopped: bbolt's lock says so.
func migrateCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("picbot migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "YAML configuration `file` whose data_dir to copy")
	to := fs.String("to", "", "the PostgreSQL `URL` to copy into (postgres://user:password@host:5432/db)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *to == "" || fs.NArg() != 0 {
		return &usageError{"usage: picbot migrate [-config FILE] --to postgres://..."}
	}
	probe := Config{DatabaseURL: *to}
	var bad []string
	probe.validateDatabaseURL(func(key, format string, a ...any) { bad = append(bad, fmt.Sprintf(format, a...)) })
	if len(bad) > 0 {
		return &usageError{"--to " + bad[0]}
	}
	cfg, err := LoadConfig(*configPath)
	if err != nil {
		return err
	}
	path := filepath.Join(cfg.DataDir, "picbot.db")
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("migrate: no store to copy: %w", err)
	}
	src, err := store.Open(path, store.Options{LockTimeout: 2 * time.Second})
	if errors.Is(err, store.ErrLocked) {
		return fmt.Errorf("migrate: %w: stop the bot first", err)
	}
	if err != nil {
		return err
	}
	defer src.Close()
	blobs, err := store.OpenBlobs(filepath.Join(cfg.DataDir, "blobs"), 0)
	if err != nil {
		return err
	}
	dst, err := pgstore.Open(ctx, *to, pgstore.Options{})
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer dst.Close()
	// Images go where the replicas will read them: blobs_url's bucket when
	// the configuration names one, else the database.
	var images imageDst = dst.Blobs(0)
	if cfg.BlobsURL != "" {
		obj, err := openObjectBlobs(cfg, slog.New(slog.DiscardHandler))
		if err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		images = obj.(imageDst)
	}
	c, err := copyStore(ctx, src, blobs, dst, images)
	fmt.Fprintf(stdout, "jobs: %d copied, %d there already\ncounters: %d copied, %d there already\nsettings: %d copied, %d there already\nimages: %d copied, %d there already\n",
		c.jobs[0], c.jobs[1], c.counters[0], c.counters[1], c.settings[0], c.settings[1], c.images[0], c.images[1])
	if err != nil {
		return fmt.Errorf("migrate: %w (run it again: what was copied stays, the rest follows)", err)
	}
	fmt.Fprintf(stdout, "done: set database_url to this URL (or PICBOT_DATABASE_URL) and start the bot\n")
	return nil
}

// copied counts, per kind, what was written and what was there already.
type copied struct{ jobs, counters, settings, images [2]int }

func count(n *[2]int, wrote bool, err error) error {
	if err != nil {
		return err
	}
	if wrote {
		n[0]++
	} else {
		n[1]++
	}
	return nil
}

// imageDst is where migrate copies images: PostgreSQL or an object store.
type imageDst interface {
	engine.Blobs
	Stat(ctx context.Context, key string) (engine.BlobInfo, error)
}

// copyStore copies images first: a job copied names only images already there.
func copyStore(ctx context.Context, src *store.DB, blobs *store.Blobs, dst *pgstore.DB, images imageDst) (copied, error) {
	var c copied
	err := blobs.EachKey(ctx, func(key string) error {
		if _, err := images.Stat(ctx, key); err == nil {
			c.images[1]++
			return nil
		} else if engine.ErrorCode(err) != engine.ENOTFOUND {
			return err
		}
		rc, err := blobs.Open(ctx, key)
		if err != nil {
			return err
		}
		defer rc.Close()
		info, err := images.Put(ctx, rc, 1<<40)
		if err != nil {
			return fmt.Errorf("image %s: %w", key, err)
		}
		if info.Key != key {
			return fmt.Errorf("image %s: its bytes hash to %s (damaged file)", key, info.Key)
		}
		c.images[0]++
		return nil
	})
	if err != nil {
		return c, err
	}
	err = src.Each(ctx,
		func(j *engine.Job) error { ok, err := dst.ImportJob(ctx, j); return count(&c.jobs, ok, err) },
		func(k string, v int64) error {
			ok, err := dst.ImportCounter(ctx, k, v)
			return count(&c.counters, ok, err)
		},
		func(k, v string) error { ok, err := dst.ImportSetting(ctx, k, v); return count(&c.settings, ok, err) })
	return c, err
}
