package pgstore

import (
	"context"
	"time"
)

func (s *DB) SetSchemaVersionForTest(ctx context.Context, v int) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO picbot_schema (version) VALUES ($1)`, v)
	return err
}

// TerminateLeaderForTest ends the sessions that hold an advisory lock.
func (s *DB) TerminateLeaderForTest(ctx context.Context) error {
	_, err := s.pool.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND pid <> pg_backend_pid() AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`)
	return err
}

// AgeBlobsForTest makes every stored image older than BlobGrace.
func (s *DB) AgeBlobsForTest(ctx context.Context) error {
	_, err := s.pool.Exec(ctx, `UPDATE picbot_blobs SET created_at = now() - interval '2 hours'`)
	return err
}

// OnBatchForTest makes the store call fn with each admission batch's size.
func (s *DB) OnBatchForTest(fn func(n int)) { s.onBatch = fn }

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
