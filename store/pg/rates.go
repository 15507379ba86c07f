package pgstore

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
)

// The per-user rate limit is a generic cell rate algorithm: each key keeps
// its theoretical arrival time (tat); a command is allowed when moving tat
// on by every keeps it within burst×every of now, the database's clock.
// Every writer of a bucket first takes the transaction advisory lock
// rateLock(key), so a take that reads, decides and writes later (a
// reservation's, below) and one upsert (AllowRate) never interleave.
//
// A command's token is taken in the transaction that creates its job
// (counters.TakeRate, called by quota.Reserve): the bucket is locked and
// read with the batch's other keys and written with its commit, so the
// take costs no round trip and no transaction of its own.

// rateLock names a bucket's advisory lock, beside counters' "c:" and settings' "s:".
func rateLock(key string) string { return "r:" + key }

const (
	rateReadSQL     = `SELECT (SELECT tat FROM picbot_rates WHERE key = $1), clock_timestamp()`
	rateReadManySQL = `SELECT k, (SELECT tat FROM picbot_rates WHERE key = k), clock_timestamp() FROM unnest($1::text[]) AS k`
)

// bucket is a rate bucket read (and locked) in a transaction.
type bucket struct {
	tat   time.Time // zero: no row (a full bucket)
	now   time.Time // the database's clock when read
	dirty bool      // tat moved on: written at flush
}

func (c *counters) keepBucket(key string, tat *time.Time, now time.Time) {
	if c.rates == nil {
		c.rates = make(map[string]*bucket)
	}
	b := &bucket{now: now}
	if tat != nil {
		b.tat = *tat
	}
	c.rates[key] = b
}

// RatesInReserve implements quota.ReservedRates: this store's counters take
// the rate token in the reserving transaction (TakeRate).
func (s *DB) RatesInReserve() bool { return true }

// TakeRate implements quota.RateTaker. The token stays taken even if the
// reservation is then refused (a quota reached), as a command refused
// after the rate check spends its token with the limiters in memory: the
// bucket is no part of what a refusal takes back (snapshot).
func (c *counters) TakeRate(key string, every time.Duration, burst int) (bool, time.Duration) {
	b, ok := c.rates[key]
	switch {
	case c.dry:
		// A rehearsal: note the key and go on as if allowed, to learn the
		// keys the rest of the reservation reads.
		if !ok {
			c.missR[key] = true
		}
		return true, 0
	case !ok:
		var tat *time.Time
		var now time.Time
		if !c.lockedRead(rateLock(key), rateReadSQL, key, &tat, &now) {
			return false, 0 // c.err fails the transaction
		}
		c.keepBucket(key, tat, now)
		b = c.rates[key]
	}
	burst = max(burst, 1)
	next := b.tat
	if next.Before(b.now) {
		next = b.now
	}
	next = next.Add(every)
	if limit := b.now.Add(every * time.Duration(burst)); next.After(limit) {
		return false, next.Sub(limit)
	}
	b.tat, b.dirty = next, true
	return true, 0
}

// queueRates adds the write of the buckets taken from to b.
func (c *counters) queueRates(b *pgx.Batch) {
	var keys []string
	var tats []time.Time
	for _, k := range sortedKeys(c.rates) {
		if r := c.rates[k]; r.dirty {
			keys, tats = append(keys, k), append(tats, r.tat)
			r.dirty = false
		}
	}
	if len(keys) == 0 {
		return
	}
	b.Queue(`INSERT INTO picbot_rates (key, tat) SELECT * FROM unnest($1::text[], $2::timestamptz[])
		ON CONFLICT (key) DO UPDATE SET tat = excluded.tat`, keys, tats)
}

// AllowRate implements quota.SharedRates: the bucket's lock, then one
// upsert, one pipeline on the pool whose commits do not wait for the disk
// (a crash may forget a bucket: harmless).
func (s *DB) AllowRate(ctx context.Context, key string, every time.Duration, burst int) (bool, time.Duration, error) {
	if burst < 1 {
		burst = 1
	}
	var tat time.Time
	b := &pgx.Batch{}
	b.Queue(`SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, rateLock(key))
	b.Queue(`INSERT INTO picbot_rates AS r (key, tat) VALUES ($1, now() + $2 * interval '1 microsecond')
		ON CONFLICT (key) DO UPDATE SET tat = greatest(r.tat, now()) + $2 * interval '1 microsecond'
		WHERE greatest(r.tat, now()) + $2 * interval '1 microsecond' <= now() + $2 * $3 * interval '1 microsecond'
		RETURNING tat`, key, every.Microseconds(), burst)
	br := s.lossy.SendBatch(ctx, b)
	_, err := br.Exec()
	if err == nil {
		err = br.QueryRow().Scan(&tat)
	}
	if cerr := br.Close(); cerr != nil && (err == nil || errors.Is(err, pgx.ErrNoRows)) {
		err = cerr
	}
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
