// Package store keeps jobs, indexes and quota counters in bbolt, and images
// in a content-addressed directory. It is the only package that imports bbolt;
// bbolt's errors are translated here and never leak.
package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/picbot/picbot/engine"
	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// SchemaVersion is the layout this code reads and writes.
const SchemaVersion = 1

var (
	bucketMeta       = []byte("meta")
	bucketJobs       = []byte("jobs")       // id → job JSON
	bucketUnfinished = []byte("unfinished") // id → nil, while !job.Finished()
	bucketOwners     = []byte("owners")     // owner key \x00 created (8 bytes) id → nil
	bucketCounters   = []byte("counters")   // key → int64, big-endian
	bucketSettings   = []byte("settings")   // key → string
	bucketCreated    = []byte("created")    // created (8 bytes) id → nil: jobs newest last, for the web console
	bucketAudit      = []byte("audit")      // sequence (8 bytes) → audit entry JSON
	allBuckets       = [][]byte{bucketMeta, bucketJobs, bucketUnfinished, bucketOwners, bucketCounters, bucketSettings, bucketCreated, bucketAudit}
)

// ErrLocked is returned by Open when another process holds the database.
var ErrLocked = errors.New("store is locked by another process")

// Options tune Open.
type Options struct {
	// LockTimeout bounds the wait for the file lock held by another process.
	LockTimeout time.Duration
	// BatchDelay is how long a write waits for others to share its commit.
	BatchDelay time.Duration
	// NoSync skips fsync: for benchmarks and tests only, never production.
	NoSync bool
}

// DB is the bbolt store. It implements engine.Store.
type DB struct {
	db   *bolt.DB
	path string
}

var _ engine.Store = (*DB)(nil)

// Open opens (creating if needed) the database at path, creates every bucket
// and checks the schema version.
func Open(path string, opt Options) (*DB, error) {
	if opt.LockTimeout <= 0 {
		opt.LockTimeout = time.Second
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create store directory: %w", err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opt.LockTimeout, NoSync: opt.NoSync})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("open %s: %w (is another picbot running on this data directory?)", path, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if opt.BatchDelay > 0 {
		db.MaxBatchDelay = opt.BatchDelay
	} else {
		db.MaxBatchDelay = 2 * time.Millisecond
	}
	err = db.Update(func(tx *bolt.Tx) error {
		fresh := tx.Bucket(bucketCreated) == nil
		for _, name := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		if fresh {
			// A store made before the index: index its jobs once. The
			// index is derived, so no schema version is needed for it.
			if err := indexCreated(tx); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		v := meta.Get([]byte("schema"))
		if v == nil {
			return meta.Put([]byte("schema"), []byte(strconv.Itoa(SchemaVersion)))
		}
		n, err := strconv.Atoi(string(v))
		if err != nil {
			return fmt.Errorf("bad schema version %q", v)
		}
		if n > SchemaVersion {
			return fmt.Errorf("schema version %d is newer than this program's %d: upgrade picbot", n, SchemaVersion)
		}
		return nil // migrations from older versions go here
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("init %s: %w", path, err)
	}
	return &DB{db: db, path: path}, nil
}

// Close closes the database.
func (s *DB) Close() error { return s.db.Close() }

// CreateJob implements engine.Store.
func (s *DB) CreateJob(ctx context.Context, j *engine.Job, reserve func(engine.Counters) error) error {
	var refused error
	err := s.db.Batch(func(tx *bolt.Tx) error {
		refused = nil
		jobs := tx.Bucket(bucketJobs)
		if jobs.Get([]byte(j.ID)) != nil {
			return fmt.Errorf("job %s exists", j.ID)
		}
		c := newCounters(tx)
		if reserve != nil {
			if err := reserve(c); err != nil {
				// Return nil so the rest of the batch commits; this
				// function wrote nothing, since counters are buffered.
				refused = err
				return nil
			}
		}
		if err := c.flush(); err != nil {
			return err
		}
		return putJob(tx, j, nil)
	})
	if err != nil {
		return wrap(err)
	}
	return refused
}

// UpdateJob implements engine.Store.
func (s *DB) UpdateJob(ctx context.Context, id string, fn func(*engine.Job, engine.Counters) error) (*engine.Job, error) {
	var (
		out     *engine.Job
		refused error
	)
	err := s.db.Batch(func(tx *bolt.Tx) error {
		out, refused = nil, nil
		j, err := getJob(tx, id)
		if err != nil {
			refused = err
			return nil
		}
		before := *j
		c := newCounters(tx)
		if err := fn(j, c); err != nil {
			refused = err
			return nil
		}
		if err := c.flush(); err != nil {
			return err
		}
		if err := putJob(tx, j, &before); err != nil {
			return err
		}
		out = j
		return nil
	})
	if err != nil {
		return nil, wrap(err)
	}
	if refused != nil {
		return nil, refused
	}
	return out, nil
}

// Job implements engine.Store.
func (s *DB) Job(ctx context.Context, id string) (*engine.Job, error) {
	var j *engine.Job
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		j, err = getJob(tx, id)
		return err
	})
	return j, err
}

// Unfinished implements engine.Store.
func (s *DB) Unfinished(ctx context.Context) ([]*engine.Job, error) {
	var out []*engine.Job
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketUnfinished).ForEach(func(k, _ []byte) error {
			j, err := getJob(tx, string(k))
			if err != nil {
				return err
			}
			out = append(out, j)
			return nil
		})
	})
	return out, wrap(err)
}

// JobsByOwner implements engine.Store.
func (s *DB) JobsByOwner(ctx context.Context, owner engine.UserRef, limit int) ([]*engine.Job, error) {
	var out []*engine.Job
	prefix := append([]byte(owner.Key()), 0)
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketOwners).Cursor()
		// Walk backwards from just past the prefix: newest first.
		end := append(bytes.Clone(prefix[:len(prefix)-1]), 1)
		k, _ := c.Seek(end)
		if k == nil {
			k, _ = c.Last()
		} else {
			k, _ = c.Prev()
		}
		for ; k != nil && bytes.HasPrefix(k, prefix) && len(out) < limit; k, _ = c.Prev() {
			j, err := getJob(tx, string(k[len(prefix)+8:]))
			if err != nil {
				return err
			}
			out = append(out, j)
		}
		return nil
	})
	return out, wrap(err)
}

// View implements engine.Store.
func (s *DB) View(ctx context.Context, fn func(engine.Counters) error) error {
	return s.db.View(func(tx *bolt.Tx) error { return fn(newCounters(tx)) })
}

// Update runs fn with writable counters in one transaction: for admin
// commands and adapters' small settings (a Telegram update offset).
func (s *DB) Update(ctx context.Context, fn func(engine.Counters) error) error {
	var refused error
	err := s.db.Batch(func(tx *bolt.Tx) error {
		refused = nil
		c := newCounters(tx)
		if err := fn(c); err != nil {
			refused = err
			return nil
		}
		return c.flush()
	})
	if err != nil {
		return wrap(err)
	}
	return refused
}

func getJob(tx *bolt.Tx, id string) (*engine.Job, error) {
	v := tx.Bucket(bucketJobs).Get([]byte(id))
	if v == nil {
		return nil, engine.Errorf(engine.ENOTFOUND, "There is no job %s.", "没有任务 %s。", id)
	}
	j := new(engine.Job)
	if err := json.Unmarshal(v, j); err != nil {
		return nil, fmt.Errorf("decode job %s: %w", id, err)
	}
	return j, nil
}

// putJob writes j and keeps the indexes in step; before is the stored
// version, nil for a new job.
func putJob(tx *bolt.Tx, j *engine.Job, before *engine.Job) error {
	v, err := json.Marshal(j)
	if err != nil {
		return fmt.Errorf("encode job %s: %w", j.ID, err)
	}
	id := []byte(j.ID)
	if err := tx.Bucket(bucketJobs).Put(id, v); err != nil {
		return err
	}
	if before == nil {
		key := append([]byte(j.Owner.Key()), 0)
		key = binary.BigEndian.AppendUint64(key, uint64(j.CreatedAt.UnixNano()))
		key = append(key, id...)
		if err := tx.Bucket(bucketOwners).Put(key, nil); err != nil {
			return err
		}
		if err := tx.Bucket(bucketCreated).Put(createdKey(j), nil); err != nil {
			return err
		}
	}
	unfinished := tx.Bucket(bucketUnfinished)
	switch {
	case j.Finished() && (before == nil || !before.Finished()):
		return unfinished.Delete(id)
	case !j.Finished() && (before == nil || before.Finished()):
		return unfinished.Put(id, nil)
	}
	return nil
}

// counters buffers writes, so a function that fails half-way leaves nothing behind.
type counters struct {
	tx       *bolt.Tx
	ints     map[string]int64
	settings map[string]string
}

func newCounters(tx *bolt.Tx) *counters {
	return &counters{tx: tx}
}

func (c *counters) Get(key string) int64 {
	if v, ok := c.ints[key]; ok {
		return v
	}
	v := c.tx.Bucket(bucketCounters).Get([]byte(key))
	if len(v) != 8 {
		return 0
	}
	return int64(binary.BigEndian.Uint64(v))
}

func (c *counters) Add(key string, delta int64) {
	v := max(c.Get(key)+delta, 0)
	if c.ints == nil {
		c.ints = make(map[string]int64)
	}
	c.ints[key] = v
}

func (c *counters) Scan(prefix string, fn func(string, int64)) {
	cur := c.tx.Bucket(bucketCounters).Cursor()
	p := []byte(prefix)
	for k, v := cur.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = cur.Next() {
		if pending, ok := c.ints[string(k)]; ok {
			fn(string(k), pending)
		} else if len(v) == 8 {
			fn(string(k), int64(binary.BigEndian.Uint64(v)))
		}
	}
}

func (c *counters) Setting(key string) string {
	if v, ok := c.settings[key]; ok {
		return v
	}
	return string(c.tx.Bucket(bucketSettings).Get([]byte(key)))
}

func (c *counters) SetSetting(key, value string) {
	if c.settings == nil {
		c.settings = make(map[string]string)
	}
	c.settings[key] = value
}

func (c *counters) flush() error {
	if len(c.ints) > 0 {
		b := c.tx.Bucket(bucketCounters)
		for k, v := range c.ints {
			var err error
			if v == 0 {
				err = b.Delete([]byte(k))
			} else {
				err = b.Put([]byte(k), binary.BigEndian.AppendUint64(nil, uint64(v)))
			}
			if err != nil {
				return err
			}
		}
	}
	if len(c.settings) > 0 {
		b := c.tx.Bucket(bucketSettings)
		for k, v := range c.settings {
			var err error
			if v == "" {
				err = b.Delete([]byte(k))
			} else {
				err = b.Put([]byte(k), []byte(v))
			}
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// wrap turns bbolt's errors into internal engine errors, keeping engine errors as they are.
func wrap(err error) error {
	if err == nil {
		return nil
	}
	var e *engine.Error
	if errors.As(err, &e) {
		return err
	}
	return engine.Wrap(engine.EINTERNAL, fmt.Errorf("store: %w", err), "The bot's storage failed.", "机器人的存储出错了。")
}
