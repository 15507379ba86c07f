package pgstore

import "context"

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
