package pgstore

import (
	"context"
	"log/slog"
	"time"

	"github.com/picbot/picbot/store"
)

// Retention says how long finished work is kept; the same keys as the
// bbolt store's (package store).
type Retention struct {
	Jobs     time.Duration
	Counters time.Duration
	Every    time.Duration
}

// BlobGrace is how old an unreferenced image must be before it can go: an
// image is stored a moment before the job naming it is written.
const BlobGrace = time.Hour

// pruneBatch bounds the rows one statement deletes, so a pass never holds
// locks long enough to delay admission.
const pruneBatch = 500

// Pruner removes old jobs, per-day counters and unreferenced images, as
// the bbolt store's does: an image goes only when two passes in a row
// found it unreferenced (a follow-up job names an existing image without
// storing it again). Any replica may run it; passes from several at once
// delete nothing twice.
type Pruner struct {
	DB        *DB
	Retention Retention
	Log       *slog.Logger
	Passed    func(error)
	// Blobs, when set, is where the images are (an object store,
	// blobs_url) and is swept instead of the database's image tables.
	Blobs store.BlobSweeper

	candidates map[string]bool
}

// Run prunes every Retention.Every until ctx ends.
func (p *Pruner) Run(ctx context.Context) {
	if p.Retention.Every <= 0 {
		return
	}
	t := time.NewTicker(p.Retention.Every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := p.Pass(ctx)
		if err != nil && ctx.Err() == nil && p.Log != nil {
			p.Log.Warn("prune PostgreSQL store", slog.Any("err", err))
		}
		if p.Passed != nil {
			p.Passed(err)
		}
	}
}

// Pass runs one pruning pass and reports what it removed.
func (p *Pruner) Pass(ctx context.Context) error {
	now := time.Now()
	var jobs, counters, blobs int64
	if p.Retention.Jobs > 0 {
		for {
			tag, err := p.DB.pool.Exec(ctx, `DELETE FROM picbot_jobs WHERE id IN (
				SELECT id FROM picbot_jobs WHERE finished AND finished_at < $1 LIMIT $2)`, now.Add(-p.Retention.Jobs), pruneBatch)
			if err != nil {
				return wrap(err)
			}
			jobs += tag.RowsAffected()
			if tag.RowsAffected() < pruneBatch {
				break
			}
		}
	}
	if p.Retention.Counters > 0 {
		if err := p.DB.Compact(ctx); err != nil {
			return err
		}
		c := now.Add(-p.Retention.Counters)
		day := time.Date(c.Year(), c.Month(), c.Day(), 0, 0, 0, 0, time.UTC).Format(time.DateOnly)
		// Per-day keys: quota's "d:<scope>:<who>:<day>", statistics' "st:<day>:...".
		tag, err := p.DB.pool.Exec(ctx, `DELETE FROM picbot_counters WHERE
			(key LIKE 'd:%' AND substring(key from ':(\d{4}-\d{2}-\d{2})$') < $1) OR
			(key LIKE 'st:%' AND substring(key from '^st:(\d{4}-\d{2}-\d{2}):') < $1)`, day)
		if err != nil {
			return wrap(err)
		}
		counters = tag.RowsAffected()
	}
	// A bucket whose arrival time has passed is as good as none.
	if _, err := p.DB.pool.Exec(ctx, `DELETE FROM picbot_rates WHERE tat < now()`); err != nil {
		return wrap(err)
	}
	if p.Blobs != nil {
		n, err := p.sweepBlobs(ctx, now)
		if err != nil {
			return err
		}
		blobs = int64(n)
	} else if err := p.pruneTables(ctx, now, &blobs); err != nil {
		return err
	}
	if p.Log != nil && jobs+counters+blobs > 0 {
		p.Log.Info("pruned", slog.Int64("jobs", jobs), slog.Int64("counters", counters), slog.Int64("images", blobs))
	}
	return nil
}

// sweepBlobs removes from p.Blobs the images no job names, two passes in a
// row, as the tables' sweep does.
func (p *Pruner) sweepBlobs(ctx context.Context, now time.Time) (int, error) {
	refs, err := p.DB.BlobRefs(ctx)
	if err != nil {
		return 0, err
	}
	n, _, next, err := store.SweepUnreferenced(ctx, p.Blobs, now.Add(-BlobGrace), refs, p.candidates)
	p.candidates = next
	return n, err
}

// BlobRefs returns the image keys the stored jobs name: inputs (with the
// ControlNet image and the mask) and results, as the bbolt store's does.
func (s *DB) BlobRefs(ctx context.Context) (map[string]bool, error) {
	rows, err := s.pool.Query(ctx, `SELECT DISTINCT k #>> '{}' FROM picbot_jobs, LATERAL (
		SELECT jsonb_path_query(data, '$.request.inputs[*].blob') UNION ALL
		SELECT jsonb_path_query(data, '$.request.control.input.blob') UNION ALL
		SELECT jsonb_path_query(data, '$.request.mask.blob') UNION ALL
		SELECT jsonb_path_query(data, '$.results[*].blob')) AS r(k)
		WHERE jsonb_typeof(k) = 'string'`)
	if err != nil {
		return nil, wrap(err)
	}
	defer rows.Close()
	refs := make(map[string]bool)
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, wrap(err)
		}
		refs[k] = true
	}
	return refs, wrap(rows.Err())
}

// pruneTables removes the images kept in the database that no job names.
func (p *Pruner) pruneTables(ctx context.Context, now time.Time, blobs *int64) error {
	rows, err := p.DB.pool.Query(ctx, `SELECT b.key FROM picbot_blobs b WHERE b.created_at < $1 AND NOT EXISTS (
		SELECT 1 FROM picbot_jobs j WHERE
			j.data @? format('$.request.inputs[*] ? (@.blob == "%s")', b.key)::jsonpath OR
			j.data @? format('$.request.control.input ? (@.blob == "%s")', b.key)::jsonpath OR
			j.data @? format('$.request.mask ? (@.blob == "%s")', b.key)::jsonpath OR
			j.data @? format('$.results[*] ? (@.blob == "%s")', b.key)::jsonpath)`, now.Add(-BlobGrace))
	if err != nil {
		return wrap(err)
	}
	next := make(map[string]bool)
	var gone []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return wrap(err)
		}
		if p.candidates[k] {
			gone = append(gone, k)
		} else {
			next[k] = true
		}
	}
	if err := rows.Err(); err != nil {
		return wrap(err)
	}
	p.candidates = next
	for _, k := range gone {
		tx, err := p.DB.pool.Begin(ctx)
		if err != nil {
			return wrap(err)
		}
		tag, err := tx.Exec(ctx, `DELETE FROM picbot_blobs WHERE key = $1`, k)
		if err == nil {
			_, err = tx.Exec(ctx, `DELETE FROM picbot_blob_chunks WHERE key = $1`, k)
		}
		if err == nil {
			err = tx.Commit(ctx)
		}
		if err != nil {
			_ = tx.Rollback(ctx)
			return wrap(err)
		}
		*blobs += tag.RowsAffected()
	}
	return nil
}
