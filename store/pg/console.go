package pgstore

// What the operator's web console reads beyond the engine's store: jobs
// newest first, the audit log, and the settings admins set. The same
// methods as the bbolt store's (store/recent.go), checked by one contract.

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/picbot/picbot/engine"
	"github.com/picbot/picbot/store"
)

// recentPage is how many jobs RecentJobs reads at a time.
const recentPage = 100

// RecentJobs calls fn with each job created before before (zero: all),
// newest first, until fn returns false. It reads a page at a time, each
// after the last job of the one before, so a long walk holds no cursor.
func (s *DB) RecentJobs(ctx context.Context, before time.Time, fn func(*engine.Job) bool) error {
	var (
		rows pgx.Rows
		err  error
	)
	if before.IsZero() {
		rows, err = s.pool.Query(ctx, `SELECT id, created_at, data FROM picbot_jobs ORDER BY created_at DESC, id DESC LIMIT $1`, recentPage)
	} else {
		rows, err = s.pool.Query(ctx, `SELECT id, created_at, data FROM picbot_jobs WHERE created_at < $1 ORDER BY created_at DESC, id DESC LIMIT $2`, before, recentPage)
	}
	for {
		if err != nil {
			return wrap(err)
		}
		var (
			n      int
			lastID string
			lastAt time.Time
		)
		for rows.Next() {
			var data []byte
			if err := rows.Scan(&lastID, &lastAt, &data); err != nil {
				rows.Close()
				return wrap(err)
			}
			n++
			j := new(engine.Job)
			if err := json.Unmarshal(data, j); err != nil {
				rows.Close()
				return wrap(fmt.Errorf("decode job: %w", err))
			}
			if !fn(j) {
				rows.Close()
				return nil
			}
		}
		if err := rows.Err(); err != nil {
			return wrap(err)
		}
		if n < recentPage {
			return nil
		}
		rows, err = s.pool.Query(ctx, `SELECT id, created_at, data FROM picbot_jobs WHERE (created_at, id) < ($1, $2)
			ORDER BY created_at DESC, id DESC LIMIT $3`, lastAt, lastID, recentPage)
	}
}

// AppendAudit records e; entries are kept in the order written and never pruned.
func (s *DB) AppendAudit(ctx context.Context, e store.AuditEntry) error {
	data, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode audit entry: %w", err)
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO picbot_audit (data) VALUES ($1)`, data)
	return wrap(err)
}

// Audit returns the newest audit entries first, at most limit.
func (s *DB) Audit(ctx context.Context, limit int) ([]store.AuditEntry, error) {
	rows, err := s.pool.Query(ctx, `SELECT data FROM picbot_audit ORDER BY seq DESC LIMIT $1`, limit)
	if err != nil {
		return nil, wrap(err)
	}
	defer rows.Close()
	var out []store.AuditEntry
	for rows.Next() {
		var data []byte
		if err := rows.Scan(&data); err != nil {
			return nil, wrap(err)
		}
		var e store.AuditEntry
		if err := json.Unmarshal(data, &e); err != nil {
			return nil, fmt.Errorf("decode audit entry: %w", err)
		}
		out = append(out, e)
	}
	return out, wrap(rows.Err())
}

// ScanSettings calls fn for every setting whose key starts with prefix, in
// key order; settings written earlier in the same transaction count, and
// an emptied one is gone.
func (c *counters) ScanSettings(prefix string, fn func(key, value string)) {
	rows, err := c.querier().Query(c.ctx, `SELECT key, value FROM picbot_settings WHERE left(key, length($1)) = $1`, prefix)
	if err != nil {
		c.fail(err)
		return
	}
	found, err := settingRows(rows)
	if err != nil {
		c.fail(err)
		return
	}
	for k, v := range c.settings {
		if strings.HasPrefix(k, prefix) {
			found[k] = v
		}
	}
	for _, k := range slices.Sorted(maps.Keys(found)) {
		if v := found[k]; v != "" {
			fn(k, v)
		}
	}
}
