package pgstore

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/picbot/picbot/engine"
)

var _ engine.Leaser = (*DB)(nil)

// Leasing implements engine.Leaser.
func (s *DB) Leasing() { s.leasing = true }

// LeaseEvery implements engine.Leaser.
func (s *DB) LeaseEvery() time.Duration { return s.every }

// LeaseTTL is how long a lease lasts without renewal.
func (s *DB) LeaseTTL() time.Duration { return s.ttl }

// Claim implements engine.Leaser: SKIP LOCKED, so replicas claiming at
// once share the jobs instead of queueing behind each other.
func (s *DB) Claim(ctx context.Context, limit int) ([]*engine.Job, error) {
	// A wake-up asked of the last holder is moot: the claimer steps what is stored.
	return s.jobs(ctx, `UPDATE picbot_jobs SET lease_owner = $1, lease_until = now() + $2::interval, wake = false
		WHERE id IN (
			SELECT id FROM picbot_jobs
			WHERE NOT finished AND (lease_until IS NULL OR lease_until < now())
			ORDER BY created_at LIMIT $3
			FOR UPDATE SKIP LOCKED)
		RETURNING data`, s.replica, interval(s.ttl), limit)
}

// Renew implements engine.Leaser. The wake-ups asked since the last
// renewal are read and cleared in the same statement.
func (s *DB) Renew(ctx context.Context) (held, woken []string, err error) {
	rows, err := s.pool.Query(ctx, `UPDATE picbot_jobs p SET lease_until = now() + $2::interval, wake = false
		FROM (SELECT id, wake FROM picbot_jobs WHERE lease_owner = $1 AND NOT finished FOR UPDATE) o
		WHERE p.id = o.id RETURNING p.id, o.wake`, s.replica, interval(s.ttl))
	if err != nil {
		return nil, nil, wrap(err)
	}
	var id string
	var wake bool
	_, err = pgx.ForEachRow(rows, []any{&id, &wake}, func() error {
		held = append(held, id)
		if wake {
			woken = append(woken, id)
		}
		return nil
	})
	if err != nil {
		return nil, nil, wrap(err)
	}
	return held, woken, nil
}

// Release implements engine.Leaser.
func (s *DB) Release(ctx context.Context, ids []string) error {
	_, err := s.pool.Exec(ctx, `UPDATE picbot_jobs SET lease_owner = NULL, lease_until = NULL
		WHERE lease_owner = $1 AND id = ANY($2)`, s.replica, ids)
	return wrap(err)
}

// Wake implements engine.Leaser: the notice and the flag the holder's
// next Renew reads go in one transaction (a notice is sent at commit), so
// a holder that misses the notice still hears of it within LeaseEvery.
// The commit does not wait for the disk: the flag only backs up the
// notice, and a callback's own write was made durable before.
func (s *DB) Wake(ctx context.Context, id string) error {
	_, err := s.pool.Exec(ctx, `WITH cfg AS (SELECT set_config('synchronous_commit', 'off', true)),
		w AS (UPDATE picbot_jobs SET wake = true WHERE id = $2 AND NOT finished AND lease_owner IS NOT NULL RETURNING id)
		SELECT pg_notify($1, $2) FROM cfg, (SELECT count(*) FROM w) c`, s.wakeChannel(), id)
	return wrap(err)
}

// Woken implements engine.Leaser. It holds one connection of the pool
// for LISTEN while ctx lasts.
func (s *DB) Woken(ctx context.Context, fn func(id string)) {
	for ctx.Err() == nil {
		err := s.listen(ctx, s.wakeChannel(), fn)
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("listen for job wake-ups; again in a second", slog.Any("err", err))
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

func (s *DB) listen(ctx context.Context, channel string, fn func(string)) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{channel}.Sanitize()); err != nil {
		return err
	}
	s.listenPID.Store(conn.Conn().PgConn().PID())
	defer s.listenPID.Store(0)
	defer func() {
		// The connection goes back to the pool: stop listening on it first.
		uctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, _ = conn.Exec(uctx, "UNLISTEN *")
	}()
	for {
		n, err := conn.Conn().WaitForNotification(ctx)
		if err != nil {
			return err
		}
		fn(n.Payload)
	}
}

// interval renders d for PostgreSQL's interval type.
func interval(d time.Duration) string { return fmt.Sprintf("%d milliseconds", d.Milliseconds()) }

// LeaseHolder names the replica holding job id and when its lease ends;
// empty when nobody holds it. For tests and operators.
func (s *DB) LeaseHolder(ctx context.Context, id string) (string, time.Time, error) {
	var owner *string
	var until *time.Time
	err := s.pool.QueryRow(ctx, `SELECT lease_owner, lease_until FROM picbot_jobs WHERE id = $1`, id).Scan(&owner, &until)
	if err != nil {
		return "", time.Time{}, wrap(err)
	}
	if owner == nil || until == nil {
		return "", time.Time{}, nil
	}
	return *owner, *until, nil
}
