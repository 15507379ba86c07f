// Package pgstore keeps jobs, indexes, quota counters, settings and images
// in PostgreSQL, so that several replicas of the bot share them. It is the
// only package that imports pgx; pgx's errors are translated here.
//
// It keeps every promise of the bbolt store (package store): a job and its
// quota reservation in one transaction, counters that never go below zero,
// functions that may run more than once. Counters read inside a write
// transaction are locked for it (a transaction-scoped advisory lock per
// key, taken before the read), so two replicas reserving the last unit of
// a quota at once cannot both get it.
package pgstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/picbot/picbot/engine"
)

// Options tune Open.
type Options struct {
	// Replica names this process in leases; empty: a random name.
	Replica string
	// LeaseTTL is how long a lease lasts without renewal; zero: 6 s. A dead
	// replica's jobs are claimed by another within LeaseTTL + LeaseEvery.
	LeaseTTL time.Duration
	// LeaseEvery is how often the engine renews and claims; zero: LeaseTTL/4.
	LeaseEvery time.Duration
	// MaxConns bounds the pool; zero: pool_max_conns in the URL, or DefaultMaxConns.
	MaxConns int32
	// Logger hears what goes wrong in the background (a lost LISTEN); nil: discarded.
	Logger *slog.Logger
}

// DefaultMaxConns is the pool's size when neither Options nor the URL say.
const DefaultMaxConns = 20

// DB is the PostgreSQL store. It implements engine.Store and engine.Leaser.
type DB struct {
	pool    *pgxpool.Pool
	lossy   *pgxpool.Pool // synchronous_commit off: rate-limit buckets only
	replica string
	// schema is the one the tables live in (the URL's search_path): the
	// advisory locks and notification channels that are the database's,
	// not the schema's, are named after it (scope.go).
	schema string
	ttl    time.Duration
	every  time.Duration
	log    *slog.Logger
	// stopCompact ends the loop that folds counter deltas (compact).
	stopCompact context.CancelFunc
	compacting  sync.WaitGroup
	// life ends at Close: the batcher (admit.go) stops with it.
	life context.Context
	// admitQ hands CreateJob's requests to the batcher; unbuffered, so a
	// request is either taken by the batcher (and answered) or never sent.
	admitQ chan *admitReq
	// onBatch, if set (tests), hears each batch's job ids before it runs.
	onBatch func(ids []string)
	// leasing: jobs created here are leased here (see Leasing).
	leasing bool
	// listenPID is the server process of the connection listening for
	// wake-ups, 0 while there is none (tests end it to lose a notice).
	listenPID atomic.Uint32
	// settings caches what admission reads of the settings (settings.go);
	// its listener starts on first use, under bgMu, unless closed.
	settings    settingsCache
	bgMu        sync.Mutex
	closed      bool
	listening   bool
	settingsPID atomic.Uint32 // the settings listener's server process, for tests
}

var _ engine.Store = (*DB)(nil)

// Open connects to url (postgres://...), checks it answers, and applies the
// migrations the database lacks.
func Open(ctx context.Context, url string, opt Options) (*DB, error) {
	return open(ctx, url, opt, nil)
}

// open is Open; tracer, if set (tests), hears every statement sent.
func open(ctx context.Context, url string, opt Options, tracer pgx.QueryTracer) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("database_url: %w", redactErr(err))
	}
	cfg.ConnConfig.Tracer = tracer
	switch {
	case opt.MaxConns > 0:
		cfg.MaxConns = opt.MaxConns
	case !strings.Contains(url, "pool_max_conns"):
		// pgx's default (4 on 2 cores) is too few: a LISTEN and a leader
		// hold one each, and every worker's write waits for one.
		cfg.MaxConns = DefaultMaxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to PostgreSQL: %w", redactErr(err))
	}
	// A second, small pool whose commits do not wait for the disk: for the
	// rate limiter, whose buckets a crash may forget at no cost.
	lcfg := cfg.Copy()
	lcfg.MaxConns = max(cfg.MaxConns/4, 2)
	lcfg.ConnConfig.RuntimeParams["synchronous_commit"] = "off"
	lossy, err := pgxpool.NewWithConfig(ctx, lcfg)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to PostgreSQL: %w", redactErr(err))
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		pool.Close()
		lossy.Close()
		return nil, fmt.Errorf("connect to PostgreSQL at %s: %w", cfg.ConnConfig.Host, redactErr(err))
	}
	if err := migrate(pctx, pool, migrations); err != nil {
		pool.Close()
		lossy.Close()
		return nil, fmt.Errorf("migrate PostgreSQL schema: %w", err)
	}
	var schema string
	if err := pool.QueryRow(pctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		pool.Close()
		lossy.Close()
		return nil, fmt.Errorf("read the current schema: %w", redactErr(err))
	}
	if opt.Replica == "" {
		var b [6]byte
		_, _ = rand.Read(b[:])
		opt.Replica = hex.EncodeToString(b[:])
	}
	if opt.LeaseTTL <= 0 {
		opt.LeaseTTL = 6 * time.Second
	}
	if opt.LeaseEvery <= 0 {
		opt.LeaseEvery = opt.LeaseTTL / 4
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	s := &DB{pool: pool, lossy: lossy, replica: opt.Replica, schema: schema, ttl: opt.LeaseTTL, every: opt.LeaseEvery, log: opt.Logger}
	cctx, stop := context.WithCancel(context.Background())
	s.stopCompact = stop
	s.compacting.Go(func() { s.compactLoop(cctx) })
	s.life, s.admitQ = cctx, make(chan *admitReq)
	s.compacting.Go(func() { s.batchLoop(cctx, batchers(cfg.MaxConns)) })
	return s, nil
}

// redactErr keeps a password in a connection string out of an error text.
func redactErr(err error) error {
	var pe *pgconn.ParseConfigError
	if errors.As(err, &pe) {
		return errors.New("cannot parse the URL (check its form: postgres://user:password@host:5432/db)")
	}
	return err
}

// Close closes the pool.
func (s *DB) Close() error {
	s.bgMu.Lock()
	s.closed = true
	s.bgMu.Unlock()
	s.stopCompact()
	s.compacting.Wait()
	s.lossy.Close()
	s.pool.Close()
	return nil
}

// CompactEvery is how often each replica folds counter deltas into the counters.
const CompactEvery = time.Second

func (s *DB) compactLoop(ctx context.Context) {
	t := time.NewTicker(CompactEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := s.Compact(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("fold counter deltas", slog.Any("err", err))
		}
	}
}

// Compact folds the counter deltas committed so far into the counters, in
// one statement, so that a reader sees the same sum before and after.
// Replicas compacting at once fold each delta once: a row deleted by one
// is skipped by the other.
func (s *DB) Compact(ctx context.Context) error {
	_, err := s.pool.Exec(ctx, `WITH d AS (DELETE FROM picbot_counter_deltas RETURNING key, delta),
		t AS (SELECT key, sum(delta) AS delta FROM d GROUP BY key)
		INSERT INTO picbot_counters AS c (key, value) SELECT key, delta FROM t
		ON CONFLICT (key) DO UPDATE SET value = c.value + excluded.value`)
	if err != nil {
		return wrap(err)
	}
	_, err = s.pool.Exec(ctx, `DELETE FROM picbot_counters WHERE value <= 0`)
	return wrap(err)
}

// Size is the bytes the store's tables take, indexes and images included.
func (s *DB) Size(ctx context.Context) (int64, error) {
	var n int64
	err := s.pool.QueryRow(ctx, `SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint
		FROM pg_class c JOIN pg_namespace ns ON ns.oid = c.relnamespace
		WHERE c.relkind = 'r' AND c.relname LIKE 'picbot\_%' AND ns.nspname = current_schema()`).Scan(&n)
	return n, wrap(err)
}

// Replica is this process's name in leases.
func (s *DB) Replica() string { return s.replica }

// maxTries bounds the retries of a transaction that lost a deadlock or a
// serialization race; each function given to the store may run again.
const maxTries = 20

// write runs fn in a read-committed transaction, again on a deadlock or a
// serialization failure. fn's own error (refused) aborts and is returned as is.
func (s *DB) write(ctx context.Context, fn func(tx pgx.Tx, c *counters) error) error {
	var err error
	for try := range maxTries {
		err = s.writeOnce(ctx, fn)
		if !retryable(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return wrap(ctx.Err())
		case <-time.After(time.Duration(try+1) * time.Millisecond):
		}
	}
	return wrap(err)
}

type refusal struct{ err error }

func (r refusal) Error() string { return r.err.Error() }

func (s *DB) writeOnce(ctx context.Context, fn func(tx pgx.Tx, c *counters) error) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return wrap(err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck
	c := &counters{ctx: ctx, tx: tx, write: true}
	err = fn(tx, c)
	if c.err != nil {
		// A failed read (a deadlock, say) may have misled fn: its verdict
		// does not count, and the whole transaction runs again.
		return c.err
	}
	if err != nil {
		var r refusal
		if errors.As(err, &r) {
			return r.err
		}
		return err
	}
	if err := c.flush(); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return err
	}
	s.committed(c)
	return nil
}

// committed drops from the settings cache what c's transaction changed,
// so this replica reads its own change at once, not when the
// notification comes back.
func (s *DB) committed(c *counters) {
	for _, k := range c.wroteS {
		s.settings.drop(k)
	}
}

func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}

// finishedAt is when a finished job ended, for retention; nil while unfinished.
func finishedAt(j *engine.Job) *time.Time {
	if !j.Finished() {
		return nil
	}
	t := j.FinishedAt
	if t.IsZero() {
		t = j.UpdatedAt
	}
	if t.IsZero() {
		t = j.CreatedAt
	}
	return &t
}

// UpdateJob implements engine.Store. The job's row is locked for the
// transaction, so updates of one job from several replicas take turns.
func (s *DB) UpdateJob(ctx context.Context, id string, fn func(*engine.Job, engine.Counters) error) (*engine.Job, error) {
	var out *engine.Job
	err := s.write(ctx, func(tx pgx.Tx, c *counters) error {
		out = nil
		j, err := scanJob(tx.QueryRow(ctx, `SELECT data FROM picbot_jobs WHERE id = $1 FOR UPDATE`, id), id)
		if err != nil {
			return refusal{err}
		}
		if err := fn(j, c); err != nil {
			return refusal{err}
		}
		if c.err != nil {
			return c.err
		}
		if err := c.flush(); err != nil {
			return err
		}
		data, err := json.Marshal(j)
		if err != nil {
			return fmt.Errorf("encode job %s: %w", j.ID, err)
		}
		// A finished job's lease goes with it: nothing is left to step.
		if _, err := tx.Exec(ctx, `UPDATE picbot_jobs SET data = $2, finished = $3, finished_at = $4,
			lease_owner = CASE WHEN $3 THEN NULL ELSE lease_owner END,
			lease_until = CASE WHEN $3 THEN NULL ELSE lease_until END
			WHERE id = $1`, id, data, j.Finished(), finishedAt(j)); err != nil {
			return err
		}
		out = j
		return nil
	})
	if err != nil {
		return nil, wrap(err)
	}
	return out, nil
}

func scanJob(row pgx.Row, id string) (*engine.Job, error) {
	var data []byte
	if err := row.Scan(&data); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, engine.Errorf(engine.ENOTFOUND, "There is no job %s.", "没有任务 %s。", id)
		}
		return nil, wrap(err)
	}
	j := new(engine.Job)
	if err := json.Unmarshal(data, j); err != nil {
		return nil, wrap(fmt.Errorf("decode job %s: %w", id, err))
	}
	return j, nil
}

// Job implements engine.Store.
func (s *DB) Job(ctx context.Context, id string) (*engine.Job, error) {
	return scanJob(s.pool.QueryRow(ctx, `SELECT data FROM picbot_jobs WHERE id = $1`, id), id)
}

func (s *DB) jobs(ctx context.Context, sql string, args ...any) ([]*engine.Job, error) {
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, wrap(err)
	}
	var out []*engine.Job
	for rows.Next() {
		var data []byte
		if err := rows.Scan(&data); err != nil {
			return nil, wrap(err)
		}
		j := new(engine.Job)
		if err := json.Unmarshal(data, j); err != nil {
			rows.Close()
			return nil, wrap(fmt.Errorf("decode job: %w", err))
		}
		out = append(out, j)
	}
	return out, wrap(rows.Err())
}

// Unfinished implements engine.Store.
func (s *DB) Unfinished(ctx context.Context) ([]*engine.Job, error) {
	return s.jobs(ctx, `SELECT data FROM picbot_jobs WHERE NOT finished ORDER BY id`)
}

// JobsByOwner implements engine.Store.
func (s *DB) JobsByOwner(ctx context.Context, owner engine.UserRef, limit int) ([]*engine.Job, error) {
	if limit <= 0 {
		return nil, nil
	}
	return s.jobs(ctx, `SELECT data FROM picbot_jobs WHERE owner_key = $1 ORDER BY created_at DESC, id DESC LIMIT $2`, owner.Key(), limit)
}

// View implements engine.Store. Its reads are plain reads of what is committed.
func (s *DB) View(ctx context.Context, fn func(engine.Counters) error) error {
	c := &counters{ctx: ctx, q: s.pool, db: s}
	if err := fn(c); err != nil {
		return err
	}
	return c.err
}

// Update runs fn with writable counters in one transaction: for admin
// commands and adapters' small settings (a Telegram update offset).
func (s *DB) Update(ctx context.Context, fn func(engine.Counters) error) error {
	return wrap(s.write(ctx, func(_ pgx.Tx, c *counters) error {
		if err := fn(c); err != nil {
			return refusal{err}
		}
		return nil
	}))
}

// querier is a transaction or the pool.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// txQuerier is a write transaction: a pgx.Tx, or an admission batch's
// pipeTx (admit.go).
type txQuerier interface {
	querier
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// counters implements engine.Counters over a transaction (write) or the
// pool (View). A counter is its row in picbot_counters plus the deltas in
// picbot_counter_deltas that the compactor has not folded in yet (see
// compact): a transaction only inserts deltas, so the hot counters every
// job touches (the day's totals, the statistics) are no row that
// transactions queue for. Writes are buffered and flushed before the
// commit, so a function that fails half-way leaves nothing behind. In a
// write transaction a key is locked (an advisory lock) before its first
// read, and the value read is kept: nobody else that reads it can change
// it until the commit, so a limit checked holds.
type counters struct {
	ctx      context.Context
	tx       txQuerier
	q        querier
	write    bool
	read     map[string]int64 // values read (locked) in this transaction
	ints     map[string]int64 // pending values of keys read
	blind    map[string]int64 // pending additions to keys not read (no lock)
	sread    map[string]string
	settings map[string]string
	err      error // the first failed read: the transaction fails with it
	// dry: a rehearsal (admit.go) that reads nothing from the database and
	// notes the keys it would have read, to fetch them all in one round trip.
	dry                 bool
	missC, missS, missR map[string]bool
	// rates are the rate buckets read (locked) in this transaction (rates.go).
	rates map[string]*bucket
	// db, on a View's counters, lends PrefetchSettings its cache.
	db *DB
	// cache, in an admission batch, answers settings of the families it
	// holds (admit.go).
	cache *settingsCache
	// wroteS are the settings flush wrote, to drop from the cache at commit.
	wroteS []string
}

func (c *counters) querier() querier {
	if c.tx != nil {
		return c.tx
	}
	return c.q
}

func (c *counters) fail(err error) {
	if c.err == nil {
		c.err = err
	}
}

const sumSQL = `SELECT greatest(coalesce((SELECT value FROM picbot_counters WHERE key = $1), 0)
	+ coalesce((SELECT sum(delta) FROM picbot_counter_deltas WHERE key = $1), 0), 0)::bigint`

// stored reads a counter's committed value.
func (c *counters) stored(key string) int64 {
	var v int64
	if err := c.querier().QueryRow(c.ctx, sumSQL, key).Scan(&v); err != nil {
		c.fail(err)
		return 0
	}
	return v
}

func (c *counters) Get(key string) int64 {
	if v, ok := c.ints[key]; ok {
		return v
	}
	if !c.write {
		return c.stored(key)
	}
	stored, ok := c.read[key]
	switch {
	case ok:
	case c.dry:
		c.missC[key] = true
		return c.blind[key]
	case !c.lockedRead("c:"+key, sumSQL, key, &stored):
		return 0
	}
	// A key read (or fetched) before, whose pending value a refused
	// reservation took back (restore), carries the blind additions since.
	v := stored + c.blind[key]
	delete(c.blind, key) // from now on the key's pending value says it all
	if c.read == nil {
		c.read = make(map[string]int64)
	}
	c.read[key] = stored
	if c.ints == nil {
		c.ints = make(map[string]int64)
	}
	c.ints[key] = v
	return v
}

// lockedRead takes the transaction's advisory lock on lockKey, then reads
// one value with sql, in one round trip: two statements of one pipeline,
// so that in read committed the read, a statement of its own, sees what
// the lock's last holder committed. false if the read failed (c.err);
// no row leaves dst as it is.
func (c *counters) lockedRead(lockKey, sql, key string, dst ...any) bool {
	if c.err != nil || c.dry {
		return false
	}
	b := &pgx.Batch{}
	b.Queue(`SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, lockKey)
	b.Queue(sql, key)
	br := c.tx.SendBatch(c.ctx, b)
	_, err := br.Exec()
	if err == nil {
		err = br.QueryRow().Scan(dst...)
		if errors.Is(err, pgx.ErrNoRows) {
			err = nil
		}
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		c.fail(err)
		return false
	}
	return true
}

// Add implements engine.Counters. On a key this transaction read, or with
// a negative delta (a counter never goes below zero: that takes the lock),
// the new value is kept exactly. On a key not read, a positive delta is
// added blind: no lock and no read, so the hot counters every job adds to
// (the day's statistics) cost no round trip; the stored sum is exact.
func (c *counters) Add(key string, delta int64) {
	_, known := c.ints[key]
	if !c.write || known || delta < 0 {
		v := max(c.Get(key)+delta, 0)
		if c.ints == nil {
			c.ints = make(map[string]int64)
		}
		c.ints[key] = v
		return
	}
	if delta == 0 {
		return
	}
	if c.blind == nil {
		c.blind = make(map[string]int64)
	}
	c.blind[key] += delta
}

func (c *counters) Scan(prefix string, fn func(string, int64)) {
	rows, err := c.querier().Query(c.ctx, `SELECT key, sum(v)::bigint FROM (
			SELECT key, value AS v FROM picbot_counters WHERE left(key, length($1)) = $1
			UNION ALL
			SELECT key, delta FROM picbot_counter_deltas WHERE left(key, length($1)) = $1) a
		GROUP BY key HAVING sum(v) > 0 ORDER BY key`, prefix)
	if err != nil {
		c.fail(err)
		return
	}
	type kv struct {
		k string
		v int64
	}
	var all []kv
	for rows.Next() {
		var p kv
		if err := rows.Scan(&p.k, &p.v); err != nil {
			c.fail(err)
			rows.Close()
			return
		}
		all = append(all, p)
	}
	if err := rows.Err(); err != nil {
		c.fail(err)
	}
	// As bbolt's store does: pending values of keys stored before win.
	sort.Slice(all, func(i, j int) bool { return all[i].k < all[j].k })
	for _, p := range all {
		if v, ok := c.ints[p.k]; ok {
			if v > 0 {
				fn(p.k, v)
			}
			continue
		}
		fn(p.k, p.v+c.blind[p.k])
	}
}

func (c *counters) Setting(key string) string {
	if v, ok := c.settings[key]; ok {
		return v
	}
	if v, ok := c.sread[key]; ok {
		return v
	}
	if c.cache != nil {
		if v, ok := c.cache.get(key); ok {
			if c.sread == nil {
				c.sread = make(map[string]string)
			}
			c.sread[key] = v
			return v
		}
	}
	var v string
	if c.dry {
		c.missS[key] = true
		return ""
	}
	if c.write {
		if !c.lockedRead("s:"+key, `SELECT value FROM picbot_settings WHERE key = $1`, key, &v) {
			return ""
		}
	} else if err := c.q.QueryRow(c.ctx, `SELECT value FROM picbot_settings WHERE key = $1`, key).Scan(&v); err != nil && !errors.Is(err, pgx.ErrNoRows) {
		c.fail(err)
		return ""
	}
	if c.write {
		if c.sread == nil {
			c.sread = make(map[string]string)
		}
		c.sread[key] = v
	}
	return v
}

// PrefetchSettings implements quota.SettingsPrefetcher, for read-only
// counters (View): from the replica's cache when it holds every key
// (settings.go), else in one round trip, kept for next time. In a write
// transaction it does nothing, since there a setting read takes its key's
// lock.
func (c *counters) PrefetchSettings(keys ...string) {
	if c.write || c.err != nil {
		return
	}
	if c.sread == nil {
		c.sread = make(map[string]string, len(keys))
	}
	if c.db == nil {
		got, err := c.readSettings(keys, nil)
		if err != nil {
			c.fail(err)
			return
		}
		for _, k := range keys {
			c.sread[k] = got[k] // no row: no setting
		}
		return
	}
	sc := c.db.cachedSettings()
	hit, m := sc.lookup(keys, c.sread)
	if hit {
		return
	}
	// The keys, and every setting of the families not cached yet, in one
	// round trip.
	got, err := c.readSettings(keys, m.loads)
	if err != nil {
		c.fail(err)
		return
	}
	read := make(map[string]string, len(keys))
	for _, k := range keys {
		read[k] = got[k]
		c.sread[k] = got[k]
	}
	loaded := make(map[string]map[string]string, len(m.loads))
	for _, name := range m.loads {
		loaded[name] = make(map[string]string)
	}
	for k, v := range got {
		if vals, ok := loaded[familyOf(k)]; ok {
			vals[k] = v
		}
	}
	sc.put(m, loaded, read)
}

// readSettings reads keys, and every setting whose key starts with one of
// prefixes (a range of the primary key: keys sort bytewise, COLLATE "C").
func (c *counters) readSettings(keys, prefixes []string) (map[string]string, error) {
	var lo, hi []string
	for _, p := range prefixes {
		if p == "" || p[len(p)-1] == 0xff {
			return nil, fmt.Errorf("no range for setting prefix %q", p)
		}
		lo, hi = append(lo, p), append(hi, p[:len(p)-1]+string([]byte{p[len(p)-1] + 1}))
	}
	rows, err := c.q.Query(c.ctx, `SELECT key, value FROM picbot_settings WHERE key = ANY($1::text[])
		UNION ALL
		SELECT s.key, s.value FROM unnest($2::text[], $3::text[]) AS r(lo, hi)
			JOIN picbot_settings s ON s.key >= r.lo AND s.key < r.hi`, keys, lo, hi)
	if err != nil {
		return nil, err
	}
	return settingRows(rows)
}

func (c *counters) SetSetting(key, value string) {
	if c.settings == nil {
		c.settings = make(map[string]string)
	}
	c.settings[key] = value
}

// flush writes the pending changes: every counter's as a delta row, all
// in one statement, the rate buckets taken from, then the settings in key
// order, in one round trip. Called twice, the second call writes nothing.
func (c *counters) flush() error {
	if c.err != nil {
		return c.err
	}
	if !c.write {
		return nil
	}
	b := &pgx.Batch{}
	c.queueWrites(b)
	if b.Len() > 0 {
		if err := c.tx.SendBatch(c.ctx, b).Close(); err != nil {
			return err
		}
	}
	return nil
}

// queueWrites adds flush's statements to b (an admission batch sends them
// with its jobs and its commit) and takes them off the pending changes.
func (c *counters) queueWrites(b *pgx.Batch) {
	var keys []string
	var deltas []int64
	for _, k := range sortedKeys(c.ints) {
		if d := c.ints[k] - c.read[k]; d != 0 {
			keys, deltas = append(keys, k), append(deltas, d)
		}
		c.read[k] = c.ints[k]
	}
	for _, k := range sortedKeys(c.blind) {
		if d := c.blind[k]; d != 0 {
			keys, deltas = append(keys, k), append(deltas, d)
		}
	}
	c.blind = nil
	if len(keys) > 0 {
		b.Queue(`INSERT INTO picbot_counter_deltas (key, delta)
			SELECT * FROM unnest($1::text[], $2::bigint[])`, keys, deltas)
	}
	c.queueRates(b)
	for _, k := range sortedKeys(c.settings) {
		if v := c.settings[k]; v == "" {
			b.Queue(`DELETE FROM picbot_settings WHERE key = $1`, k)
		} else {
			b.Queue(`INSERT INTO picbot_settings (key, value) VALUES ($1, $2)
				ON CONFLICT (key) DO UPDATE SET value = excluded.value`, k, v)
		}
	}
	for k, v := range c.settings {
		if c.sread == nil {
			c.sread = make(map[string]string)
		}
		c.sread[k] = v
		c.wroteS = append(c.wroteS, k)
	}
	c.settings = nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// wrap turns pgx's errors into internal engine errors, keeping engine errors as they are.
func wrap(err error) error {
	if err == nil {
		return nil
	}
	var e *engine.Error
	if errors.As(err, &e) || retryable(err) {
		return err
	}
	return engine.Wrap(engine.EINTERNAL, fmt.Errorf("store: %w", err), "The bot's storage failed.", "机器人的存储出错了。")
}

// settingRows reads rows of key and value into a map, and closes them.
func settingRows(rows pgx.Rows) (map[string]string, error) {
	out := make(map[string]string)
	var k, v string
	_, err := pgx.ForEachRow(rows, []any{&k, &v}, func() error { out[k] = v; return nil })
	return out, err
}
