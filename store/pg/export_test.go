package pgstore

import "context"

func (s *DB) SetSchemaVersionForTest(ctx context.Context, v int) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO picbot_schema (version) VALUES ($1)`, v)
	return err
}
