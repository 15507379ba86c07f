package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/picbot/picbot/engine"
	bolt "go.etcd.io/bbolt"
)

// Retention says how long finished work is kept.
type Retention struct {
	// Jobs: delivered, failed and cancelled jobs finished longer ago are
	// removed with their indexes; 0 keeps them forever.
	Jobs time.Duration `yaml:"jobs"`
	// Counters: per-day quota and statistics counters of older days are
	// dropped; 0 keeps them forever.
	Counters time.Duration `yaml:"counters"`
	// Every is the pause between two passes; 0 turns pruning off.
	Every time.Duration `yaml:"every"`
}

// DefaultRetention keeps jobs 30 days and daily counters 90, pruning hourly.
func DefaultRetention() Retention {
	return Retention{Jobs: 30 * 24 * time.Hour, Counters: 90 * 24 * time.Hour, Every: time.Hour}
}

// pruneBatch bounds the keys one write transaction deletes, so a pass never
// holds bbolt's single writer long enough to delay admission.
const pruneBatch = 500

// DefaultBlobGrace is how old an unreferenced image file must be before it
// can go: an image is stored a moment before the job naming it is written.
const DefaultBlobGrace = time.Hour

// PruneStats counts what one pass removed.
type PruneStats struct {
	Jobs, Counters, Blobs int
	BlobBytes             int64
}

// Pruner removes old jobs, counters and unreferenced images. A blob is
// removed only when two passes in a row found it unreferenced: a follow-up
// job (an upscale of a result) names an existing image without storing it
// again, so its file's age says nothing; the pause between passes leaves
// time for such a job to be written and seen.
type Pruner struct {
	DB        *DB
	Blobs     BlobSweeper // nil: images are left alone
	Retention Retention
	Log       *slog.Logger
	// Now is the clock; nil is time.Now.
	Now func() time.Time
	// BlobGrace overrides DefaultBlobGrace. It is measured on the wall
	// clock, as file times are, whatever Now says.
	BlobGrace time.Duration
	// Passed, if set, is called after each pass of Run.
	Passed func(PruneStats, error)

	candidates map[string]bool // unreferenced at the last pass
}

// Run prunes every Retention.Every until ctx ends.
func (p *Pruner) Run(ctx context.Context) {
	if p.Retention.Every <= 0 {
		return
	}
	t := time.NewTicker(p.Retention.Every)
	defer t.Stop()
	for {
		st, err := p.Pass(ctx)
		if err != nil && ctx.Err() == nil {
			p.log().Error("prune", slog.Any("err", err))
		} else if st != (PruneStats{}) {
			p.log().Info("pruned", slog.Int("jobs", st.Jobs), slog.Int("counters", st.Counters),
				slog.Int("blobs", st.Blobs), slog.Int64("blob_bytes", st.BlobBytes))
		}
		if p.Passed != nil {
			p.Passed(st, err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (p *Pruner) log() *slog.Logger {
	if p.Log == nil {
		return slog.Default()
	}
	return p.Log
}

// Pass runs one pruning pass: jobs first, so the images only they named are
// unreferenced when the blob sweep looks.
func (p *Pruner) Pass(ctx context.Context) (PruneStats, error) {
	now := time.Now()
	if p.Now != nil {
		now = p.Now()
	}
	var st PruneStats
	var err error
	if p.Retention.Jobs > 0 {
		if st.Jobs, err = p.DB.PruneJobs(ctx, now.Add(-p.Retention.Jobs)); err != nil {
			return st, err
		}
	}
	if p.Retention.Counters > 0 {
		if st.Counters, err = p.DB.PruneCounters(ctx, now.Add(-p.Retention.Counters)); err != nil {
			return st, err
		}
	}
	if p.Blobs != nil {
		refs, err := p.DB.BlobRefs(ctx)
		if err != nil {
			return st, err
		}
		grace := p.BlobGrace
		if grace <= 0 {
			grace = DefaultBlobGrace
		}
		st.Blobs, st.BlobBytes, p.candidates, err = SweepUnreferenced(ctx, p.Blobs, time.Now().Add(-grace), refs, p.candidates)
		if err != nil {
			return st, err
		}
	}
	return st, nil
}

// finishedAt is when j reached its final state, for retention.
func finishedAt(j *engine.Job) time.Time {
	if !j.FinishedAt.IsZero() {
		return j.FinishedAt
	}
	return j.UpdatedAt
}

// PruneJobs removes finished jobs that finished before cutoff, with their
// index entries, pruneBatch at a time. Unfinished jobs are never touched.
func (s *DB) PruneJobs(ctx context.Context, cutoff time.Time) (int, error) {
	total := 0
	var after []byte
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		var ids [][]byte
		var last []byte
		err := s.db.View(func(tx *bolt.Tx) error {
			unfinished := tx.Bucket(bucketUnfinished)
			c := tx.Bucket(bucketJobs).Cursor()
			k, v := c.First()
			if after != nil {
				k, v = c.Seek(after)
				if bytes.Equal(k, after) {
					k, v = c.Next()
				}
			}
			// Scan a bounded number of keys per read, too, so a huge
			// store is walked in steps rather than decoded in one go.
			for n := 0; k != nil && n < 4*pruneBatch && len(ids) < pruneBatch; k, v = c.Next() {
				n++
				last = bytes.Clone(k)
				if unfinished.Get(k) != nil {
					continue
				}
				var j engine.Job
				if err := json.Unmarshal(v, &j); err != nil {
					continue // undecodable: leave it for a person to look at
				}
				if j.Finished() && finishedAt(&j).Before(cutoff) {
					ids = append(ids, bytes.Clone(k))
				}
			}
			return nil
		})
		if err != nil {
			return total, wrap(err)
		}
		if len(ids) > 0 {
			n, err := s.deleteJobs(ids, cutoff)
			total += n
			if err != nil {
				return total, err
			}
		}
		if last == nil {
			return total, nil
		}
		after = last
	}
}

// deleteJobs removes the given jobs, checking again under the write lock
// that each is still finished and old.
func (s *DB) deleteJobs(ids [][]byte, cutoff time.Time) (int, error) {
	n := 0
	err := s.db.Update(func(tx *bolt.Tx) error {
		n = 0
		jobs, owners, unfinished := tx.Bucket(bucketJobs), tx.Bucket(bucketOwners), tx.Bucket(bucketUnfinished)
		for _, id := range ids {
			v := jobs.Get(id)
			if v == nil || unfinished.Get(id) != nil {
				continue
			}
			var j engine.Job
			if err := json.Unmarshal(v, &j); err != nil || !j.Finished() || !finishedAt(&j).Before(cutoff) {
				continue
			}
			key := append([]byte(j.Owner.Key()), 0)
			key = binary.BigEndian.AppendUint64(key, uint64(j.CreatedAt.UnixNano()))
			key = append(key, id...)
			if err := owners.Delete(key); err != nil {
				return err
			}
			if err := tx.Bucket(bucketCreated).Delete(createdKey(&j)); err != nil {
				return err
			}
			if err := jobs.Delete(id); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, wrap(err)
}

// counterDay finds the day a per-day counter belongs to: quota's
// "d:<scope>:<who>:<day>" and statistics' "st:<day>:...". Other keys
// (running counts, rate limits) have none and are kept.
func counterDay(key string) (time.Time, bool) {
	var day string
	switch {
	case strings.HasPrefix(key, "d:"):
		day = key[strings.LastIndexByte(key, ':')+1:]
	case strings.HasPrefix(key, "st:"):
		day, _, _ = strings.Cut(key[len("st:"):], ":")
	default:
		return time.Time{}, false
	}
	t, err := time.Parse(time.DateOnly, day)
	return t, err == nil
}

// PruneCounters drops per-day counters of days before cutoff's day.
func (s *DB) PruneCounters(ctx context.Context, cutoff time.Time) (int, error) {
	// Compare whole days: a day is dropped once it ended before cutoff.
	limit := time.Date(cutoff.Year(), cutoff.Month(), cutoff.Day(), 0, 0, 0, 0, time.UTC)
	total := 0
	for _, prefix := range []string{"d:", "st:"} {
		after, resumed := []byte(prefix), false
		for {
			if err := ctx.Err(); err != nil {
				return total, err
			}
			var keys [][]byte
			var last []byte
			err := s.db.View(func(tx *bolt.Tx) error {
				c := tx.Bucket(bucketCounters).Cursor()
				p := []byte(prefix)
				k, _ := c.Seek(after)
				if resumed && bytes.Equal(k, after) {
					k, _ = c.Next()
				}
				for n := 0; k != nil && bytes.HasPrefix(k, p) && n < 8*pruneBatch && len(keys) < pruneBatch; k, _ = c.Next() {
					n++
					last = bytes.Clone(k)
					if d, ok := counterDay(string(k)); ok && d.Before(limit) {
						keys = append(keys, bytes.Clone(k))
					}
				}
				return nil
			})
			if err != nil {
				return total, wrap(err)
			}
			if len(keys) > 0 {
				err := s.db.Update(func(tx *bolt.Tx) error {
					b := tx.Bucket(bucketCounters)
					for _, k := range keys {
						if err := b.Delete(k); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					return total, wrap(err)
				}
				total += len(keys)
			}
			if last == nil {
				break
			}
			after, resumed = last, true
		}
	}
	return total, nil
}

// BlobRefs returns the image keys the stored jobs name: inputs and results.
func (s *DB) BlobRefs(ctx context.Context) (map[string]bool, error) {
	refs := make(map[string]bool)
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketJobs).ForEach(func(k, v []byte) error {
			var j struct {
				Request struct {
					Inputs []struct {
						Blob string `json:"blob"`
					} `json:"inputs"`
					Control *struct {
						Input struct {
							Blob string `json:"blob"`
						} `json:"input"`
					} `json:"control"`
					Mask *struct {
						Blob string `json:"blob"`
					} `json:"mask"`
				} `json:"request"`
				Results []struct {
					Blob string `json:"blob"`
				} `json:"results"`
			}
			if err := json.Unmarshal(v, &j); err != nil {
				return fmt.Errorf("decode job %s: %w", k, err)
			}
			for _, in := range j.Request.Inputs {
				refs[in.Blob] = true
			}
			if c := j.Request.Control; c != nil { // the ControlNet image and the mask are inputs too
				refs[c.Input.Blob] = true
			}
			if m := j.Request.Mask; m != nil {
				refs[m.Blob] = true
			}
			for _, r := range j.Results {
				refs[r.Blob] = true
			}
			return nil
		})
	})
	return refs, wrap(err)
}

// Size is the database file's size in bytes.
func (s *DB) Size() (int64, error) {
	fi, err := os.Stat(s.path)
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// Used is the bytes of the database's pages holding data: the file grows in
// large steps and keeps freed pages for reuse, so its size alone says little.
func (s *DB) Used() (int64, error) {
	var n int64
	err := s.db.View(func(tx *bolt.Tx) error {
		n = tx.Size() - int64(s.db.Stats().FreeAlloc)
		return nil
	})
	return n, wrap(err)
}

// Backup writes a consistent copy of the database to w from one read
// transaction, so writers carry on meanwhile.
func (s *DB) Backup(ctx context.Context, w io.Writer) (int64, error) {
	var n int64
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	if err != nil {
		return n, fmt.Errorf("backup: %w", err)
	}
	return n, nil
}

// Size walks the image directory and returns its files' total size and count.
func (b *Blobs) Size(ctx context.Context) (total int64, files int, err error) {
	err = b.walkFiles(ctx, func(_ string, _ fs.DirEntry, fi fs.FileInfo) error {
		total += fi.Size()
		files++
		return nil
	})
	return total, files, err
}

// walkFiles calls fn for every regular file under the image directory,
// skipping files removed while walking, until ctx ends.
func (b *Blobs) walkFiles(ctx context.Context, fn func(path string, d fs.DirEntry, fi fs.FileInfo) error) error {
	return filepath.WalkDir(b.dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed while walking
			}
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if d.IsDir() {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		return fn(path, d, fi)
	})
}

// BlobSweeper is an image store that retention can prune: this package's
// files, or an object store (package s3blobs).
type BlobSweeper interface {
	// Sweep removes the images stored before olderThan for which remove
	// says yes, and returns how many it removed and their bytes. An image
	// stored again meanwhile must survive.
	Sweep(ctx context.Context, olderThan time.Time, remove func(key string) bool) (int, int64, error)
}

var _ BlobSweeper = (*Blobs)(nil)

// SweepUnreferenced removes from s the images stored before olderThan that
// no job names (refs) and that the pass before found unnamed too
// (candidates): two passes, so an image stored for a job not written yet
// survives the first. It returns the candidates for the next pass.
func SweepUnreferenced(ctx context.Context, s BlobSweeper, olderThan time.Time, refs, candidates map[string]bool) (n int, bytes int64, next map[string]bool, err error) {
	next = make(map[string]bool)
	n, bytes, err = s.Sweep(ctx, olderThan, func(key string) bool {
		if refs[key] {
			return false
		}
		if candidates[key] {
			return true
		}
		next[key] = true
		return false
	})
	return n, bytes, next, err
}

// Sweep removes image files modified before olderThan for which remove says
// yes, and leftover temporary files of the same age.
func (b *Blobs) Sweep(ctx context.Context, olderThan time.Time, remove func(key string) bool) (int, int64, error) {
	n, size := 0, int64(0)
	err := b.walkFiles(ctx, func(path string, d fs.DirEntry, fi fs.FileInfo) error {
		if !fi.ModTime().Before(olderThan) {
			return nil
		}
		if filepath.Base(filepath.Dir(path)) == "tmp" {
			// A Put that died with the process.
			if os.Remove(path) == nil {
				n++
				size += fi.Size()
			}
			return nil
		}
		key := d.Name()
		if len(key) != 64 || strings.Trim(key, "0123456789abcdef") != "" || !remove(key) {
			return nil
		}
		// A Put of the same image may rename a fresh file onto this path at
		// any moment. Move the file aside first, then look at what was moved:
		// a fresh one goes back (same bytes, so overwriting is harmless).
		trash := filepath.Join(b.dir, "tmp", "prune-"+key)
		if err := os.Rename(path, trash); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if moved, err := os.Stat(trash); err == nil && !moved.ModTime().Before(olderThan) {
			return os.Rename(trash, path)
		}
		if err := os.Remove(trash); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		n++
		size += fi.Size()
		return nil
	})
	return n, size, err
}
