package store

import (
	"context"
	"encoding/binary"
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/picbot/picbot/engine"
	bolt "go.etcd.io/bbolt"
)

// Each calls the given functions for every stored job, counter and setting,
// from one read transaction: `picbot migrate` copies a data directory with it.
// A nil function skips its kind.
func (s *DB) Each(ctx context.Context, job func(*engine.Job) error, counter func(key string, v int64) error, setting func(key, v string) error) error {
	return wrap(s.db.View(func(tx *bolt.Tx) error {
		if job != nil {
			if err := tx.Bucket(bucketJobs).ForEach(func(k, _ []byte) error {
				if err := ctx.Err(); err != nil {
					return err
				}
				j, err := getJob(tx, string(k))
				if err != nil {
					return err
				}
				return job(j)
			}); err != nil {
				return err
			}
		}
		if counter != nil {
			if err := tx.Bucket(bucketCounters).ForEach(func(k, v []byte) error {
				if len(v) != 8 {
					return nil
				}
				return counter(string(k), int64(binary.BigEndian.Uint64(v)))
			}); err != nil {
				return err
			}
		}
		if setting != nil {
			return tx.Bucket(bucketSettings).ForEach(func(k, v []byte) error { return setting(string(k), string(v)) })
		}
		return nil
	}))
}

// EachKey calls fn with the key of every stored image.
func (b *Blobs) EachKey(ctx context.Context, fn func(key string) error) error {
	return b.walkFiles(ctx, func(path string, d fs.DirEntry, _ fs.FileInfo) error {
		key := d.Name()
		if filepath.Base(filepath.Dir(path)) == "tmp" || len(key) != 64 || strings.Trim(key, "0123456789abcdef") != "" {
			return nil
		}
		return fn(key)
	})
}
