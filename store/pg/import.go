package pgstore

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/picbot/picbot/engine"
)

// The Import methods copy another store's records in (`picbot migrate`).
// Each writes only what the database lacks and reports whether it wrote,
// so a copy run twice, or after the bot ran on PostgreSQL, changes nothing
// the first run or the bot wrote.

// ImportJob stores j as it is, unleased, unless a job with its id exists.
func (s *DB) ImportJob(ctx context.Context, j *engine.Job) (bool, error) {
	data, err := json.Marshal(j)
	if err != nil {
		return false, fmt.Errorf("encode job %s: %w", j.ID, err)
	}
	tag, err := s.pool.Exec(ctx, `INSERT INTO picbot_jobs (id, owner_key, created_at, finished, finished_at, data)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING`,
		j.ID, j.Owner.Key(), j.CreatedAt, j.Finished(), finishedAt(j), data)
	if err != nil {
		return false, wrap(err)
	}
	return tag.RowsAffected() == 1, nil
}

// ImportCounter stores a counter unless the database has one of that key.
func (s *DB) ImportCounter(ctx context.Context, key string, v int64) (bool, error) {
	if v <= 0 {
		return false, nil
	}
	tag, err := s.pool.Exec(ctx, `INSERT INTO picbot_counters (key, value) SELECT $1, $2
		WHERE NOT EXISTS (SELECT 1 FROM picbot_counter_deltas WHERE key = $1)
		ON CONFLICT (key) DO NOTHING`, key, v)
	if err != nil {
		return false, wrap(err)
	}
	return tag.RowsAffected() == 1, nil
}

// ImportSetting stores a setting unless the database has one of that key.
func (s *DB) ImportSetting(ctx context.Context, key, v string) (bool, error) {
	if v == "" {
		return false, nil
	}
	tag, err := s.pool.Exec(ctx, `INSERT INTO picbot_settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING`, key, v)
	if err != nil {
		return false, wrap(err)
	}
	return tag.RowsAffected() == 1, nil
}
