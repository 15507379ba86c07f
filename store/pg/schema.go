package pgstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"strings"

	"github.com/jackc/pgx/v5"
)

// ThrowAwaySchema creates an empty schema on the server base names and
// returns a URL whose search_path is it, and a function that drops it: for
// tests and the load tool, so that runs never meet each other's tables.
func ThrowAwaySchema(ctx context.Context, base string) (string, func(), error) {
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "picbot_t_" + hex.EncodeToString(b[:])
	u, err := url.Parse(base)
	if err != nil {
		return "", nil, fmt.Errorf("database URL: %w", err)
	}
	// The pool's own parameters (pool_max_conns) mean nothing to one connection.
	direct := *u
	dq := direct.Query()
	for k := range dq {
		if strings.HasPrefix(k, "pool_") {
			dq.Del(k)
		}
	}
	direct.RawQuery = dq.Encode()
	base = direct.String()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		return "", nil, fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		return "", nil, fmt.Errorf("create schema: %w", err)
	}
	drop := func() {
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			return
		}
		defer conn.Close(ctx)
		_, _ = conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE")
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), drop, nil
}

// SessionPIDs lists the server processes of the sessions connected with
// application_name name: for the load tool, which reads their CPU time
// when the server runs on the same machine.
func SessionPIDs(ctx context.Context, url, name string) ([]int, error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT pid FROM pg_stat_activity WHERE application_name = $1`, name)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[int])
}
