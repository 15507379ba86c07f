// Package pgtest gives tests a throw-away PostgreSQL schema of their own on
// the server named by PICBOT_TEST_DATABASE_URL, and skips them when the
// variable is not set.
package pgtest

import (
	"context"
	"os"
	"testing"
	"time"

	pgstore "github.com/picbot/picbot/store/pg"
)

// Env names the variable that points the tests at a PostgreSQL server.
const Env = "PICBOT_TEST_DATABASE_URL"

// URL returns a connection URL whose search_path is a new, empty schema,
// dropped when the test ends. The test is skipped without Env.
func URL(tb testing.TB) string {
	tb.Helper()
	base := os.Getenv(Env)
	if base == "" {
		tb.Skipf("PostgreSQL tests skipped: set %s (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable); .ci/run sets it", Env)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	u, drop, err := pgstore.ThrowAwaySchema(ctx, base)
	if err != nil {
		tb.Fatalf("%s: %v", Env, err)
	}
	tb.Cleanup(drop)
	return u
}
