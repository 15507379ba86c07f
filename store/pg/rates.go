package pgstore

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
)

// AllowRate implements quota.SharedRates as a generic cell rate algorithm:
// each key keeps its theoretical arrival time (tat); a command is allowed
// when moving tat on by every keeps it within burst×every of now. One
// upsert, so replicas taking tokens at once take turns on the row; its
// commit does not wait for the disk (a crash may forget a bucket: harmless).
func (s *DB) AllowRate(ctx context.Context, key string, every time.Duration, burst int) (bool, time.Duration, error) {
	if burst < 1 {
		burst = 1
	}
	var tat time.Time
	err := s.lossy.QueryRow(ctx, `INSERT INTO picbot_rates AS r (key, tat) VALUES ($1, now() + $2 * interval '1 microsecond')
		ON CONFLICT (key) DO UPDATE SET tat = greatest(r.tat, now()) + $2 * interval '1 microsecond'
		WHERE greatest(r.tat, now()) + $2 * interval '1 microsecond' <= now() + $2 * $3 * interval '1 microsecond'
		RETURNING tat`, key, every.Microseconds(), burst).Scan(&tat)
	if err == nil {
		return true, 0, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return false, 0, wrap(err)
	}
	ok, wait, err := s.PeekRate(ctx, key, every, burst)
	if ok { // freed in between: say a moment, not zero
		wait = time.Millisecond
	}
	return false, wait, err
}

// PeekRate implements quota.SharedRates.
func (s *DB) PeekRate(ctx context.Context, key string, every time.Duration, burst int) (bool, time.Duration, error) {
	if burst < 1 {
		burst = 1
	}
	var waitUS int64
	err := s.lossy.QueryRow(ctx, `SELECT (extract(epoch FROM (greatest(tat, now()) + $2 * interval '1 microsecond')
			- (now() + $2 * $3 * interval '1 microsecond')) * 1000000)::bigint
		FROM picbot_rates WHERE key = $1`, key, every.Microseconds(), burst).Scan(&waitUS)
	if errors.Is(err, pgx.ErrNoRows) {
		return true, 0, nil
	}
	if err != nil {
		return false, 0, wrap(err)
	}
	if waitUS <= 0 {
		return true, 0, nil
	}
	return false, time.Duration(waitUS) * time.Microsecond, nil
}
