package quota_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/picbot/picbot/engine"
	"github.com/picbot/picbot/quota"
	"github.com/picbot/picbot/store"
)

// sharedStore is a store whose rate limit another replica also draws on:
// the fake's bucket is the whole truth, whatever this process's memory says.
type sharedStore struct {
	*store.DB
	allowed bool
	keys    []string
}

func (s *sharedStore) AllowRate(_ context.Context, key string, every time.Duration, burst int) (bool, time.Duration, error) {
	s.keys = append(s.keys, key)
	return s.allowed, 7 * time.Second, nil
}

func (s *sharedStore) PeekRate(ctx context.Context, key string, every time.Duration, burst int) (bool, time.Duration, error) {
	return s.allowed, 7 * time.Second, nil
}

func TestSharedRates(t *testing.T) {
	db, err := store.Open(filepath.Join(t.TempDir(), "db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s := &sharedStore{DB: db}
	cfg := quota.DefaultConfig()
	q, err := quota.New(cfg, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	u := engine.UserRef{Platform: "telegram", ID: "1"}
	c := engine.ChatRef{Platform: "telegram", ChatID: "1"}
	// The memory limiter would allow the first command (a burst of 3); the shared bucket is empty.
	err = q.Admit(context.Background(), u, c)
	if engine.ErrorCode(err) != engine.ERATELIMIT {
		t.Fatalf("Admit: %v, want ERATELIMIT from the shared bucket", err)
	}
	if e := engine.AsError(err); e == nil || e.RetryAfter != 7 {
		t.Fatalf("retry after %v, want 7", e)
	}
	if err := q.Precheck(context.Background(), u, c, &engine.Request{Kind: engine.KindDraw}); engine.ErrorCode(err) != engine.ERATELIMIT {
		t.Fatalf("Precheck: %v", err)
	}
	s.allowed = true
	if err := q.Admit(context.Background(), u, c); err != nil {
		t.Fatal(err)
	}
	if len(s.keys) != 2 || s.keys[0] != "telegram:1|10000|3" {
		t.Fatalf("keys %v", s.keys)
	}
}
