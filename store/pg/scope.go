package pgstore

import (
	"crypto/sha256"
	"encoding/hex"
)

// Advisory locks and LISTEN/NOTIFY channels belong to the database, not
// to a schema, so two deployments in two schemas of one database (or two
// tests, each in its throw-away schema) would share them: one's Telegram
// leader would keep the other's from polling, and each would hear the
// other's wake-ups. These names carry the schema. In "public", the usual
// schema, they are the names used before there was a schema in them, so
// that replicas of an older picbot and of this one, side by side during a
// rolling upgrade, still share one leader and hear each other's wake-ups.
// (The settings trigger's channel, migration 6, is not scoped: another
// schema's notice only makes a replica read that setting again.)

// leadLock is the text whose hash is the advisory lock of singleton name.
func (s *DB) leadLock(name string) string {
	if s.schema == "public" {
		return "picbot:lead:" + name
	}
	return "picbot:lead:" + s.schema + ":" + name
}

// wakeChannel is the LISTEN/NOTIFY channel on which replicas wake the
// holder of a job; the payload is the job id. A channel name is an
// identifier (at most 63 bytes), so another schema's is named by a hash.
func (s *DB) wakeChannel() string {
	if s.schema == "public" {
		return "picbot_wake"
	}
	h := sha256.Sum256([]byte(s.schema))
	return "picbot_wake_" + hex.EncodeToString(h[:16])
}
