package pgstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/picbot/picbot/engine"
	pgstore "github.com/picbot/picbot/store/pg"
	"github.com/picbot/picbot/store/pg/pgtest"
)

// prefetched reads key as admission does (quota.SettingsPrefetcher).
func prefetched(t *testing.T, db *pgstore.DB, key string) string {
	t.Helper()
	var v string
	err := db.View(context.Background(), func(c engine.Counters) error {
		c.(interface{ PrefetchSettings(...string) }).PrefetchSettings(key)
		v = c.Setting(key)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// cached reads key until the replica's cache holds it.
func cached(t *testing.T, db *pgstore.DB, key string) string {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		v := prefetched(t, db, key)
		if c, ok := db.SettingCachedForTest(key); ok && c == v {
			return v
		}
	}
	t.Fatalf("%s never cached", key)
	return ""
}

// becomes waits until db reads key as want, and says how long it took.
func becomes(t *testing.T, db *pgstore.DB, key, want string) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < 10*time.Second {
		if prefetched(t, db, key) == want {
			return time.Since(start)
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("%s still not %q after 10 s", key, want)
	return 0
}

func setSetting(t *testing.T, db *pgstore.DB, key, value string) {
	t.Helper()
	if err := db.Update(context.Background(), func(c engine.Counters) error { c.SetSetting(key, value); return nil }); err != nil {
		t.Fatal(err)
	}
}

// TestSettingsCache: the settings admission reads are cached on each
// replica, and a change made anywhere reaches every replica: at once on
// the one that made it, within milliseconds on the others (the trigger's
// NOTIFY), also when made by hand in SQL, and after a lost LISTEN.
func TestSettingsCache(t *testing.T) {
	ctx := context.Background()
	url := pgtest.URL(t)
	a := mustOpen(t, url, pgstore.Options{})
	b := mustOpen(t, url, pgstore.Options{})
	setSetting(t, a, "ban:u9", "1")
	if v := cached(t, b, "ban:u1"); v != "" {
		t.Fatalf("ban:u1 = %q before any ban", v)
	}
	// A family is read whole: a key never asked for is answered too.
	if v, ok := b.SettingCachedForTest("ban:u9"); !ok || v != "1" {
		t.Fatalf("ban:u9 cached as %q (%v), want 1", v, ok)
	}
	// A ban on one replica reaches the other.
	setSetting(t, a, "ban:u1", "1")
	t.Logf("a ban on replica a applies on replica b after %s", becomes(t, b, "ban:u1", "1"))
	// The replica that writes reads its own write at once: no waiting.
	if v := cached(t, a, "tier:u1"); v != "" {
		t.Fatalf("tier:u1 = %q", v)
	}
	setSetting(t, a, "tier:u1", "gold")
	if v := prefetched(t, a, "tier:u1"); v != "gold" {
		t.Fatalf("replica a reads tier:u1 = %q right after setting it, want gold", v)
	}
	// Removed, and written by hand (an operator at psql): heard as well.
	cached(t, b, "tier:u1")
	setSetting(t, a, "tier:u1", "")
	becomes(t, b, "tier:u1", "")
	cached(t, b, "daily:u1")
	if err := a.ExecForTest(ctx, `INSERT INTO picbot_settings (key, value) VALUES ('daily:u1', '7')`); err != nil {
		t.Fatal(err)
	}
	becomes(t, b, "daily:u1", "7")
	cached(t, b, "ban:u1")
	if err := a.ExecForTest(ctx, `TRUNCATE picbot_settings`); err != nil {
		t.Fatal(err)
	}
	becomes(t, b, "ban:u1", "")
	// A change made while b's LISTEN is down is not heard: b must not
	// keep what it cached before.
	cached(t, b, "ban:u2")
	if err := b.KillSettingsListenerForTest(ctx); err != nil {
		t.Fatal(err)
	}
	setSetting(t, a, "ban:u2", "1")
	becomes(t, b, "ban:u2", "1")
}
