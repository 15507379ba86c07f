package pgstore

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// The settings admission reads for every command (bans, a user's tier and
// daily quota: quota.SettingsPrefetcher) are kept in memory, so that a
// command's ban check costs no round trip. They are few (what admins set),
// and most users have none, so the cache holds every setting of each key
// family (the key up to its first colon: "ban:", "tier:") that admission
// has asked for, read whole once: a key it lacks is a setting that does not
// exist. Every change of a setting, by any replica or by hand, is
// announced by a trigger (migration 6) on settingsChannel with its key;
// each replica LISTENs and marks that key unknown until it reads it again.
// A replica's own writes are marked as soon as they commit, so it reads
// its own changes at once; another replica once the notification reaches
// it (a few milliseconds). Without a LISTEN that works the cache is not
// used at all, and it starts again empty whenever one starts, since what
// changed in between was not heard.

// settingsChannel carries the key of each setting written; "" means all.
const settingsChannel = "picbot_settings"

// settingsCacheMax bounds the settings of one family kept; a larger family
// is not cached (each read goes to the database).
const settingsCacheMax = 100_000

type settingsCache struct {
	mu       sync.Mutex
	live     bool // a LISTEN is in place: families may be kept and used
	families map[string]*family
}

// family is the cached settings whose keys share a prefix.
type family struct {
	gen     uint64            // moves on at every change heard, so a read that raced one is not kept
	loaded  bool              // vals holds every setting of the family, but the unknown
	vals    map[string]string // the family's settings (none: not set)
	unknown map[string]bool   // changed since: read from the database
}

// familyOf is the family of key: up to its first colon.
func familyOf(key string) string {
	if i := strings.IndexByte(key, ':'); i >= 0 {
		return key[:i+1]
	}
	return key
}

// miss is what lookup could not answer: the keys to read and the families
// to load whole, with the generations their reads are kept under.
type miss struct {
	gens  map[string]uint64 // by family
	loads []string          // families to read whole
}

// lookup answers keys into into if the cache can, else says what to read.
func (sc *settingsCache) lookup(keys []string, into map[string]string) (bool, miss) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	m := miss{gens: make(map[string]uint64)}
	hit := sc.live
	for _, k := range keys {
		name := familyOf(k)
		f := sc.families[name]
		if f == nil {
			f = &family{}
			if sc.families == nil {
				sc.families = make(map[string]*family)
			}
			sc.families[name] = f
		}
		if _, seen := m.gens[name]; !seen {
			m.gens[name] = f.gen
			if !f.loaded {
				m.loads = append(m.loads, name)
			}
		}
		if !f.loaded || f.unknown[k] {
			hit = false
		}
	}
	if !hit {
		return false, m
	}
	for _, k := range keys {
		into[k] = sc.families[familyOf(k)].vals[k]
	}
	return true, m
}

// get answers one key if its family is cached and the key not unknown.
func (sc *settingsCache) get(key string) (string, bool) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	f := sc.families[familyOf(key)]
	if !sc.live || f == nil || !f.loaded || f.unknown[key] {
		return "", false
	}
	return f.vals[key], true
}

// put keeps what was read for m: every setting of the families loaded
// whole (loaded), and the values of keys read (read), unless a change of
// their family was heard since.
func (sc *settingsCache) put(m miss, loaded map[string]map[string]string, read map[string]string) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if !sc.live {
		return
	}
	for name, vals := range loaded {
		if f := sc.families[name]; f != nil && f.gen == m.gens[name] && len(vals) <= settingsCacheMax {
			f.loaded, f.vals, f.unknown = true, vals, nil
		}
	}
	for k, v := range read {
		f := sc.families[familyOf(k)]
		if f == nil || !f.loaded || f.gen != m.gens[familyOf(k)] {
			continue
		}
		delete(f.unknown, k)
		if v == "" {
			delete(f.vals, k)
		} else if len(f.vals) < settingsCacheMax {
			f.vals[k] = v
		} else {
			f.loaded, f.vals, f.unknown = false, nil, nil
		}
	}
}

// drop marks key unknown, or forgets everything when key is "".
func (sc *settingsCache) drop(key string) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if key == "" {
		for _, f := range sc.families {
			f.gen++
			f.loaded, f.vals, f.unknown = false, nil, nil
		}
		return
	}
	f := sc.families[familyOf(key)]
	if f == nil {
		return // a family admission does not read
	}
	f.gen++
	if f.loaded {
		if f.unknown == nil {
			f.unknown = make(map[string]bool)
		}
		f.unknown[key] = true
		delete(f.vals, key)
	}
}

// setLive turns the cache on (a LISTEN just started) or off (it ended),
// empty either way.
func (sc *settingsCache) setLive(live bool) {
	sc.mu.Lock()
	sc.live = live
	sc.mu.Unlock()
	sc.drop("")
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
	s.settingsPID.Store(conn.PgConn().PID())
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
