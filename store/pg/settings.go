package pgstore

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// The settings admission reads for every command (bans, a user's tier and
// daily quota: quota.SettingsPrefetcher) are kept in memory, so that a
// command's ban check costs no round trip. Every change of a setting, by
// any replica or by hand, is announced by a trigger (migration 5) on
// settingsChannel with its key; each replica LISTENs and drops that key.
// A replica's own writes drop their keys as soon as they commit, so it
// reads its own changes at once; another replica reads them once the
// notification reaches it (a few milliseconds). Without a LISTEN that
// works the cache is not used at all, and it is emptied whenever one
// starts, since what changed in between was not heard.

// settingsChannel carries the key of each setting written; "" means all.
const settingsChannel = "picbot_settings"

// settingsCacheMax bounds the entries kept (about 20,000 users' five keys);
// past it the cache starts again empty, which costs only reads.
const settingsCacheMax = 100_000

type settingsCache struct {
	mu   sync.Mutex
	live bool   // a LISTEN is in place: entries may be kept and used
	gen  uint64 // moves on at every drop, so a read that raced one is not kept
	m    map[string]string
}

// lookup returns the values of keys if every one is cached (a missing
// setting is cached as ""), else the generation to hand to put with what
// is read instead.
func (sc *settingsCache) lookup(keys []string, into map[string]string) (hit bool, gen uint64) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if !sc.live {
		return false, sc.gen
	}
	for _, k := range keys {
		if _, ok := sc.m[k]; !ok {
			return false, sc.gen
		}
	}
	for _, k := range keys {
		into[k] = sc.m[k]
	}
	return true, sc.gen
}

// put keeps values read from the database, unless a drop came since gen.
func (sc *settingsCache) put(gen uint64, values map[string]string) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if !sc.live || gen != sc.gen {
		return
	}
	if len(sc.m)+len(values) > settingsCacheMax {
		sc.m = make(map[string]string)
	}
	for k, v := range values {
		sc.m[k] = v
	}
}

// drop forgets key, or everything when key is "".
func (sc *settingsCache) drop(key string) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	sc.gen++
	if key == "" {
		sc.m = make(map[string]string)
		return
	}
	delete(sc.m, key)
}

// setLive turns the cache on (a LISTEN just started) or off (it ended),
// empty either way.
func (sc *settingsCache) setLive(live bool) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	sc.gen++
	sc.live = live
	sc.m = make(map[string]string)
}

// cachedSettings returns the cache, starting the listener that keeps it
// true the first time admission reads settings.
func (s *DB) cachedSettings() *settingsCache {
	s.bgMu.Lock()
	defer s.bgMu.Unlock()
	if !s.closed && !s.listening {
		s.listening = true
		s.compacting.Go(func() { s.settingsListen(s.life) })
	}
	return &s.settings
}

// settingsListen keeps a LISTEN on settingsChannel on a connection of its
// own (outside the pool, so admissions never wait for it), again a second
// after it fails, until ctx ends.
func (s *DB) settingsListen(ctx context.Context) {
	for ctx.Err() == nil {
		err := s.settingsListenOnce(ctx)
		s.settings.setLive(false)
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("listen for settings changes; cache off, again in a second", slog.Any("err", err))
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

func (s *DB) settingsListenOnce(ctx context.Context) error {
	conn, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig.Copy())
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx)) //nolint:errcheck
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{settingsChannel}.Sanitize()); err != nil {
		return err
	}
	s.listenPID.Store(conn.PgConn().PID())
	// Only changes committed from now on are heard: start empty.
	s.settings.setLive(true)
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		s.settings.drop(n.Payload)
	}
}
