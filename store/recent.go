package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/picbot/picbot/engine"
	bolt "go.etcd.io/bbolt"
)

// createdKey is a job's key in the index by creation time: the time, then the id.
func createdKey(j *engine.Job) []byte {
	key := binary.BigEndian.AppendUint64(nil, uint64(j.CreatedAt.UnixNano()))
	return append(key, j.ID...)
}

// indexCreated fills the index by creation time from the jobs bucket.
func indexCreated(tx *bolt.Tx) error {
	idx := tx.Bucket(bucketCreated)
	return tx.Bucket(bucketJobs).ForEach(func(k, v []byte) error {
		var j engine.Job
		if err := json.Unmarshal(v, &j); err != nil {
			return fmt.Errorf("decode job %s: %w", k, err)
		}
		return idx.Put(createdKey(&j), nil)
	})
}

// RecentJobs calls fn with each job created before before (zero: every
// job), newest first, until fn returns false: the web console's lists. The
// jobs are read in one read transaction, so fn should be quick.
func (s *DB) RecentJobs(ctx context.Context, before time.Time, fn func(*engine.Job) bool) error {
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketCreated).Cursor()
		var k []byte
		if before.IsZero() {
			k, _ = c.Last()
		} else {
			k, _ = c.Seek(binary.BigEndian.AppendUint64(nil, uint64(before.UnixNano())))
			if k == nil {
				k, _ = c.Last()
			} else {
				k, _ = c.Prev()
			}
		}
		for ; k != nil; k, _ = c.Prev() {
			if err := ctx.Err(); err != nil {
				return err
			}
			j, err := getJob(tx, string(k[8:]))
			if engine.ErrorCode(err) == engine.ENOTFOUND {
				continue // an index entry without its job: skip it rather than fail the page
			}
			if err != nil {
				return err
			}
			if !fn(j) {
				return nil
			}
		}
		return nil
	})
	return wrap(err)
}

// AuditEntry is one admin action, as the web console records it.
type AuditEntry struct {
	At     time.Time `json:"at"`
	Who    string    `json:"who"`    // the session's operator and address
	Action string    `json:"action"` // "ban", "tier", "cancel", ...
	Target string    `json:"target"` // a user or chat key, a job id
	Detail string    `json:"detail,omitempty"`
	Result string    `json:"result"` // "ok" or the error's message
}

// AppendAudit records e; entries are kept in the order written and never pruned.
func (s *DB) AppendAudit(ctx context.Context, e AuditEntry) error {
	v, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode audit entry: %w", err)
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketAudit)
		n, err := b.NextSequence()
		if err != nil {
			return err
		}
		return b.Put(binary.BigEndian.AppendUint64(nil, n), v)
	})
	return wrap(err)
}

// Audit returns the newest audit entries first, at most limit.
func (s *DB) Audit(ctx context.Context, limit int) ([]AuditEntry, error) {
	var out []AuditEntry
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketAudit).Cursor()
		for k, v := c.Last(); k != nil && len(out) < limit; k, v = c.Prev() {
			var e AuditEntry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("decode audit entry: %w", err)
			}
			out = append(out, e)
		}
		return nil
	})
	return out, wrap(err)
}

// ScanSettings calls fn for every setting whose key starts with prefix, in
// key order (bans, tiers and quotas the admins set), for the web console.
// Settings written earlier in the same transaction count.
func (c *counters) ScanSettings(prefix string, fn func(key, value string)) {
	found := map[string]string{}
	cur := c.tx.Bucket(bucketSettings).Cursor()
	p := []byte(prefix)
	for k, v := cur.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = cur.Next() {
		found[string(k)] = string(v)
	}
	for k, v := range c.settings {
		if strings.HasPrefix(k, prefix) {
			found[k] = v
		}
	}
	for _, k := range slices.Sorted(maps.Keys(found)) {
		if v := found[k]; v != "" {
			fn(k, v)
		}
	}
}
