package pgstore

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

func (s *DB) SetSchemaVersionForTest(ctx context.Context, v int) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO picbot_schema (version) VALUES ($1)`, v)
	return err
}

// TerminateLeaderForTest ends the session that holds this schema's lock
// of singleton name, and no other: a test running beside it in another
// schema holds advisory locks of its own. A bigint lock is shown in
// pg_locks as its high 32 bits (classid) and low ones (objid).
func (s *DB) TerminateLeaderForTest(ctx context.Context, name string) error {
	_, err := s.pool.Exec(ctx, `WITH k AS (SELECT hashtextextended($1, 1) AS k)
		SELECT pg_terminate_backend(l.pid) FROM pg_locks l, k
		WHERE l.locktype = 'advisory' AND l.objsubid = 1 AND l.granted AND l.pid <> pg_backend_pid()
			AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
			AND l.classid::bigint = (k.k >> 32) & 4294967295 AND l.objid::bigint = k.k & 4294967295`, s.leadLock(name))
	return err
}

// AgeBlobsForTest makes every stored image older than BlobGrace.
func (s *DB) AgeBlobsForTest(ctx context.Context) error {
	_, err := s.pool.Exec(ctx, `UPDATE picbot_blobs SET created_at = now() - interval '2 hours'`)
	return err
}

// OnBatchForTest makes the store call fn with each admission batch's size.
func (s *DB) OnBatchForTest(fn func(n int)) {
	s.onBatch = func(ids []string) { fn(len(ids)) }
}

// OnBatchIDsForTest makes the store call fn with each admission batch's job ids.
func (s *DB) OnBatchIDsForTest(fn func(ids []string)) { s.onBatch = fn }

// HoldLockForTest takes key's advisory lock (a counter's is "c:" and its
// key) in a transaction of its own, until release is called.
func (s *DB) HoldLockForTest(ctx context.Context, key string) (release func(), err error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, key); err != nil {
		_ = tx.Rollback(ctx)
		return nil, err
	}
	return func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }, nil
}

// ListenerPIDForTest is the server process listening for wake-ups, 0 while none.
func (s *DB) ListenerPIDForTest() uint32 { return s.listenPID.Load() }

// TerminateForTest ends server process pid and waits until it is gone.
func (s *DB) TerminateForTest(ctx context.Context, pid uint32) error {
	if _, err := s.pool.Exec(ctx, `SELECT pg_terminate_backend($1)`, int32(pid)); err != nil {
		return err
	}
	for {
		var n int
		if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE pid = $1`, int32(pid)).Scan(&n); err != nil || n == 0 {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// OpenCountingForTest is Open, with every round trip to the server (a
// statement, or a pipeline of them) counted in trips.
func OpenCountingForTest(ctx context.Context, url string, opt Options, trips *atomic.Int64) (*DB, error) {
	return open(ctx, url, opt, tripCounter{trips})
}

type tripCounter struct{ n *atomic.Int64 }

func (t tripCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	t.n.Add(1)
	return ctx
}
func (tripCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
func (t tripCounter) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	t.n.Add(1)
	return ctx
}
func (tripCounter) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}
func (tripCounter) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData)     {}

// SettingCachedForTest reports whether the settings cache answers key, and its value.
func (s *DB) SettingCachedForTest(key string) (string, bool) {
	return s.settings.get(key)
}

// KillSettingsListenerForTest ends the server session of the settings listener.
func (s *DB) KillSettingsListenerForTest(ctx context.Context) error {
	_, err := s.pool.Exec(ctx, `SELECT pg_terminate_backend($1)`, int64(s.settingsPID.Load()))
	return err
}

// ExecForTest runs sql as an operator at a psql prompt would.
func (s *DB) ExecForTest(ctx context.Context, sql string) error {
	_, err := s.pool.Exec(ctx, sql)
	return err
}

// HoldConnsForTest takes every connection of the pool until release: what
// a pool busy with other callers is to the next one.
func (s *DB) HoldConnsForTest(ctx context.Context) (release func(), err error) {
	var held []*pgxpool.Conn
	release = func() {
		for _, c := range held {
			c.Release()
		}
	}
	for range s.pool.Config().MaxConns {
		c, err := s.pool.Acquire(ctx)
		if err != nil {
			release()
			return nil, err
		}
		held = append(held, c)
	}
	return release, nil
}
