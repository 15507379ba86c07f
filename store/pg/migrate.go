package pgstore

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// migrations are applied in order, each once, each in its own transaction.
// Append only: a migration that shipped is never edited.
var migrations = []string{
	// 1: everything the bbolt store keeps, plus the leases replicas share.
	`CREATE TABLE picbot_jobs (
		id          text PRIMARY KEY,
		owner_key   text NOT NULL,
		created_at  timestamptz NOT NULL,
		finished    boolean NOT NULL,
		finished_at timestamptz,
		data        jsonb NOT NULL,
		lease_owner text,
		lease_until timestamptz
	);
	CREATE INDEX picbot_jobs_owner ON picbot_jobs (owner_key, created_at DESC, id DESC);
	CREATE INDEX picbot_jobs_unfinished ON picbot_jobs (lease_until) WHERE NOT finished;
	CREATE INDEX picbot_jobs_finished_at ON picbot_jobs (finished_at) WHERE finished;
	CREATE TABLE picbot_counters (
		key   text COLLATE "C" PRIMARY KEY,
		value bigint NOT NULL CHECK (value > 0)
	);
	CREATE TABLE picbot_settings (
		key   text COLLATE "C" PRIMARY KEY,
		value text NOT NULL
	);
	CREATE TABLE picbot_blobs (
		key        text PRIMARY KEY,
		mime       text NOT NULL,
		size       bigint NOT NULL,
		width      int NOT NULL,
		height     int NOT NULL,
		created_at timestamptz NOT NULL DEFAULT now()
	);
	CREATE TABLE picbot_blob_chunks (
		key  text NOT NULL,
		seq  int NOT NULL,
		data bytea NOT NULL,
		PRIMARY KEY (key, seq)
	);`,
	// 2: the per-user rate limit, shared by replicas (rates.go).
	`CREATE TABLE picbot_rates (
		key text PRIMARY KEY,
		tat timestamptz NOT NULL
	);`,
	// 3: counters as a value plus deltas not folded in yet, so that the
	// counters every job adds to are no row transactions queue for.
	`CREATE TABLE picbot_counter_deltas (
		key   text COLLATE "C" NOT NULL,
		delta bigint NOT NULL
	);
	CREATE INDEX picbot_counter_deltas_key ON picbot_counter_deltas (key);
	ALTER TABLE picbot_counters DROP CONSTRAINT picbot_counters_value_check;`,
	// 4: the web console's newest-first job list and its audit log (console.go).
	`CREATE INDEX picbot_jobs_created ON picbot_jobs (created_at DESC, id DESC);
	CREATE TABLE picbot_audit (
		seq  bigserial PRIMARY KEY,
		data jsonb NOT NULL
	);`,
	// 5: a wake-up asked of a job's holder, kept until its next renewal,
	// for when the notice (NOTIFY) is lost (lease.go).
	`ALTER TABLE picbot_jobs ADD COLUMN wake boolean NOT NULL DEFAULT false;`,
	// 6: every change of a setting, by any writer, is announced with its
	// key on picbot_settings ("" for all), so that replicas caching the
	// settings admission reads drop what changed (settings.go). A key too
	// long for a payload announces all.
	`CREATE FUNCTION picbot_settings_notify() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
		IF TG_OP = 'TRUNCATE' THEN
			PERFORM pg_notify('picbot_settings', '');
			RETURN NULL;
		END IF;
		IF TG_OP IN ('UPDATE', 'DELETE') THEN
			PERFORM pg_notify('picbot_settings', CASE WHEN octet_length(OLD.key) < 7000 THEN OLD.key ELSE '' END);
		END IF;
		IF TG_OP IN ('INSERT', 'UPDATE') THEN
			PERFORM pg_notify('picbot_settings', CASE WHEN octet_length(NEW.key) < 7000 THEN NEW.key ELSE '' END);
		END IF;
		RETURN NULL;
	END $$;
	CREATE TRIGGER picbot_settings_notify AFTER INSERT OR UPDATE OR DELETE ON picbot_settings
		FOR EACH ROW EXECUTE FUNCTION picbot_settings_notify();
	CREATE TRIGGER picbot_settings_truncate AFTER TRUNCATE ON picbot_settings
		FOR EACH STATEMENT EXECUTE FUNCTION picbot_settings_notify();`,
}

// SchemaVersion is the newest schema this code knows.
var SchemaVersion = len(migrations)

// migrateLock is the advisory lock key that keeps replicas starting at
// once from migrating together.
const migrateLock = 0x70696362 // "picb"

// migrate applies the migrations the database lacks. It refuses a
// database migrated by a newer picbot.
func migrate(ctx context.Context, pool *pgxpool.Pool, steps []string) error {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, migrateLock); err != nil {
		return fmt.Errorf("lock for migration: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, migrateLock) //nolint:errcheck
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS picbot_schema (
		version int PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return fmt.Errorf("create schema table: %w", err)
	}
	var have int
	if err := conn.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM picbot_schema`).Scan(&have); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if have > len(steps) {
		return fmt.Errorf("schema version %d is newer than this program's %d: upgrade picbot", have, len(steps))
	}
	for v := have + 1; v <= len(steps); v++ {
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, steps[v-1]); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO picbot_schema (version) VALUES ($1)`, v)
			return err
		})
		if err != nil {
			return fmt.Errorf("migration %d: %w", v, err)
		}
	}
	return nil
}

// SchemaVersionStored is the schema version the database is at.
func (s *DB) SchemaVersionStored(ctx context.Context) (int, error) {
	var v int
	err := s.pool.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM picbot_schema`).Scan(&v)
	return v, wrap(err)
}
