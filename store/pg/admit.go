package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/picbot/picbot/engine"
)

// Group commit. PostgreSQL's fsync per commit and the round trips of a
// reservation (lock and read each key) bound what one admission per
// transaction can reach; so admissions that arrive together share one
// transaction. Each caller still returns only after that transaction
// committed (or failed): a job acknowledged is a job persisted. Batches
// form by themselves: the next batch is every request that arrived while
// the one before ran, so under no load a batch is one job and costs no
// waiting window.
//
// One batch runs at a time. A transaction costs the server far more than
// a job in it (on 2 cores, about 0.45 ms of its CPU against 0.04 ms a
// job), so under load two at once only halve each batch: with three
// replicas of two batchers each, batches of 6 and about 190 µs of CPU
// (bot and server) a command; one at a time, batches of 11 and 150 µs. A
// second starts beside it only when the first has stalled (it waits on a
// lock that another replica's transaction holds, say: the commands behind
// it must not all wait), or when a batch is full. A stall is told from the
// batches' usual time, which a loaded machine stretches: four times their
// moving average, at least minStall.

// maxBatch bounds the jobs of one transaction.
const maxBatch = 64

// minStall is the least time a running batch holds up the next one.
const minStall = 20 * time.Millisecond

// batchTimeout bounds one batch's transaction, which runs on the store's
// context rather than a caller's: one caller giving up must not abort the
// others' commit.
const batchTimeout = 30 * time.Second

// batchers bounds the admission transactions one store runs at once: a
// fifth of the pool, 1 to 4.
func batchers(maxConns int32) int {
	return int(min(max(maxConns/5, 1), 4))
}

type admitReq struct {
	ctx     context.Context
	j       *engine.Job
	reserve func(engine.Counters) error
	done    chan error // buffered: the batcher never waits for the caller
}

// CreateJob implements engine.Store: the job joins the next batch, and the
// call returns when its transaction has committed.
func (s *DB) CreateJob(ctx context.Context, j *engine.Job, reserve func(engine.Counters) error) error {
	r := &admitReq{ctx: ctx, j: j, reserve: reserve, done: make(chan error, 1)}
	select {
	case s.admitQ <- r:
	case <-ctx.Done():
		return wrap(ctx.Err())
	case <-s.life.Done():
		return wrap(errors.New("store closed"))
	}
	// Once taken, the answer is awaited even if ctx ends: the transaction
	// may commit, and a caller told "failed" of a job that exists would lie.
	return wrap(<-r.done)
}

// batchLoop gathers the requests into batches and starts each batch's
// transaction (see Group commit), at most most at once.
func (s *DB) batchLoop(ctx context.Context, most int) {
	ended := make(chan time.Duration, most) // a batch's transaction is over, after so long
	running := 0
	var usual time.Duration // the batches' moving average
	var last time.Time      // when the newest running batch started
	var batch []*admitReq
	stall := time.NewTimer(time.Hour)
	stall.Stop()
	defer func() {
		for _, r := range batch { // taken, never sent: nothing was written
			r.done <- errors.New("store closed")
		}
		for ; running > 0; running-- {
			<-ended
		}
	}()
	for {
		stallAfter := max(4*usual, minStall)
		if len(batch) > 0 && running < most && (running == 0 || len(batch) >= maxBatch || time.Since(last) >= stallAfter) {
		drain:
			for len(batch) < maxBatch {
				select {
				case r := <-s.admitQ:
					batch = append(batch, r)
				default:
					break drain
				}
			}
			b := batch
			batch, last = nil, time.Now()
			running++
			go func() {
				t := time.Now()
				s.admitBatch(ctx, b)
				ended <- time.Since(t)
			}()
			continue
		}
		in := s.admitQ
		if len(batch) >= maxBatch {
			in = nil // full: it waits for a transaction to end
		}
		var stalled <-chan time.Time
		if len(batch) > 0 && running < most {
			stall.Reset(stallAfter - time.Since(last))
			stalled = stall.C
		}
		select {
		case <-ctx.Done():
			stall.Stop()
			return
		case r := <-in:
			batch = append(batch, r)
		case d := <-ended:
			running--
			usual += (d - usual) / 8
		case <-stalled:
		}
		stall.Stop()
	}
}

// admitBatch answers every request of batch.
func (s *DB) admitBatch(ctx context.Context, batch []*admitReq) {
	live := batch[:0]
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.done <- err
			continue
		}
		live = append(live, r)
	}
	if len(live) == 0 {
		return
	}
	if s.onBatch != nil {
		ids := make([]string, len(live))
		for i, r := range live {
			ids[i] = r.j.ID
		}
		s.onBatch(ids)
	}
	ctx, cancel := context.WithTimeout(ctx, batchTimeout)
	defer cancel()
	var err error
	for try := range maxTries {
		var refused []error
		if refused, err = s.admitOnce(ctx, live); err == nil {
			for i, r := range live {
				r.done <- refused[i]
			}
			return
		}
		if !retryable(err) {
			break
		}
		select {
		case <-ctx.Done():
			err = ctx.Err()
		case <-time.After(time.Duration(try+1) * time.Millisecond):
			continue
		}
		break
	}
	if len(live) == 1 || ctx.Err() != nil {
		for _, r := range live {
			r.done <- err
		}
		return
	}
	// A failure that is not a race (a job id taken, a job that cannot be
	// encoded) is one job's: each runs alone, so the others still commit.
	for _, r := range live {
		r.done <- s.createOne(ctx, r.j, r.reserve)
	}
}

// admitOnce runs the batch's reservations in one transaction, one after
// the other on the same counters, so that each sees the ones before it (the
// last unit of a quota goes to one job only). refused[i] is the i-th
// reservation's refusal: its changes are taken back and its job not
// written. A non-nil error fails the whole transaction.
func (s *DB) admitOnce(ctx context.Context, batch []*admitReq) (refused []error, err error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	tx := &pipeTx{conn: conn}
	defer tx.end(context.WithoutCancel(ctx))
	// Settings the cache holds (bans, tiers, daily quotas: admins' few,
	// which reservations only read) come from it, unlocked, so a command
	// admitted as an admin changes its user's tier sees one or the other,
	// as the checks before admission do; any other is locked and read.
	c := &counters{ctx: ctx, tx: tx, write: true, cache: &s.settings}
	if err := c.rehearse(batch); err != nil {
		return nil, err
	}
	refused = make([]error, len(batch))
	var jobs []*engine.Job
	for i, r := range batch {
		if r.reserve != nil {
			snap := c.snapshot()
			err := r.reserve(c)
			if c.err != nil {
				return nil, c.err
			}
			if err != nil {
				c.restore(snap)
				refused[i] = err
				continue
			}
		}
		jobs = append(jobs, r.j)
	}
	// The writes, the jobs and the commit: one round trip.
	b := &pgx.Batch{}
	c.queueWrites(b)
	if err := s.queueJobs(b, jobs); err != nil {
		return nil, err
	}
	if err := tx.commit(ctx, b); err != nil {
		return nil, err
	}
	s.committed(c)
	return refused, nil
}

// pipeTx is an admission batch's transaction on a connection of its own,
// whose BEGIN goes out with its first statements and whose COMMIT with its
// last, so that a batch costs two round trips (the locks and reads, then
// the writes), not five. In one pipeline a statement that fails skips the
// rest, the COMMIT too, so nothing of a failed batch is committed.
type pipeTx struct {
	conn  *pgxpool.Conn
	begun bool // BEGIN sent
	done  bool // COMMIT sent and answered
}

// begin sends BEGIN alone, for a statement that cannot carry it.
func (t *pipeTx) begin(ctx context.Context) error {
	if t.begun {
		return nil
	}
	t.begun = true
	_, err := t.conn.Exec(ctx, "BEGIN")
	return err
}

func (t *pipeTx) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	if err := t.begin(ctx); err != nil {
		return errRow{err}
	}
	return t.conn.QueryRow(ctx, sql, args...)
}

func (t *pipeTx) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if err := t.begin(ctx); err != nil {
		return nil, err
	}
	return t.conn.Query(ctx, sql, args...)
}

// SendBatch sends b, with BEGIN before it if none was sent yet.
func (t *pipeTx) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	if t.begun {
		return t.conn.SendBatch(ctx, b)
	}
	t.begun = true
	b.QueuedQueries = append([]*pgx.QueuedQuery{{SQL: "BEGIN"}}, b.QueuedQueries...)
	br := t.conn.SendBatch(ctx, b)
	if _, err := br.Exec(); err != nil {
		_ = br.Close()
		return pgx.FailedBatchResults(b, err)
	}
	return br
}

// commit sends b and COMMIT in one pipeline, and reads every answer: nil
// only once the server has said COMMIT.
func (t *pipeTx) commit(ctx context.Context, b *pgx.Batch) error {
	b.Queue("COMMIT")
	n := b.Len() // answers to read: SendBatch reads BEGIN's
	br := t.SendBatch(ctx, b)
	var tag pgconn.CommandTag
	var err error
	for range n {
		if tag, err = br.Exec(); err != nil {
			break
		}
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	// A transaction that failed earlier answers COMMIT with ROLLBACK.
	if tag.String() != "COMMIT" {
		return fmt.Errorf("commit answered %q", tag.String())
	}
	t.done = true
	return nil
}

// end rolls back a transaction that did not commit, and gives the
// connection back (the pool drops one left in a transaction).
func (t *pipeTx) end(ctx context.Context) {
	if t.begun && !t.done {
		_, _ = t.conn.Exec(ctx, "ROLLBACK")
	}
	t.conn.Release()
}

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

// rehearse runs each reservation dry, on a copy of the counters' state, to
// learn the keys it reads (counters, settings, rate buckets), and fetches
// (and locks) them all in one round trip; again if what was fetched led a reservation to other keys (a tier
// set by an admin, bought images), at most three times. The real run then
// finds almost every key already read; one it does not is read then.
func (c *counters) rehearse(batch []*admitReq) error {
	c.dry = true
	defer func() { c.dry, c.missC, c.missS, c.missR = false, nil, nil, nil }()
	for range 3 {
		c.missC, c.missS, c.missR = map[string]bool{}, map[string]bool{}, map[string]bool{}
		for _, r := range batch {
			if r.reserve == nil {
				continue
			}
			snap := c.snapshot()
			_ = r.reserve(c)
			c.restore(snap)
		}
		if c.err != nil {
			return c.err
		}
		if len(c.missC)+len(c.missS)+len(c.missR) == 0 {
			return nil
		}
		if err := c.prefetch(sortedKeys(c.missC), sortedKeys(c.missS), sortedKeys(c.missR)); err != nil {
			return err
		}
	}
	return nil
}

// prefetch locks the keys, in one order so that batches locking the same
// keys do not deadlock, then reads them: statements of one pipeline, so
// that (read committed) the reads see what the locks' last holders
// committed, as lockedRead's do.
func (c *counters) prefetch(ckeys, skeys, rkeys []string) error {
	locks := make([]string, 0, len(ckeys)+len(skeys)+len(rkeys))
	for _, k := range ckeys {
		locks = append(locks, "c:"+k)
	}
	for _, k := range skeys {
		locks = append(locks, "s:"+k)
	}
	for _, k := range rkeys {
		locks = append(locks, rateLock(k))
	}
	sort.Strings(locks)
	b := &pgx.Batch{}
	// count() makes every row's lock run; unnest yields the array's order.
	b.Queue(`SELECT count(pg_advisory_xact_lock(hashtextextended(k, 0))) FROM unnest($1::text[]) AS k`, locks)
	b.Queue(`SELECT k, greatest(coalesce((SELECT value FROM picbot_counters WHERE key = k), 0)
		+ coalesce((SELECT sum(delta) FROM picbot_counter_deltas WHERE key = k), 0), 0)::bigint
		FROM unnest($1::text[]) AS k`, ckeys)
	if len(skeys) > 0 { // most batches read settings from the cache only
		b.Queue(`SELECT key, value FROM picbot_settings WHERE key = ANY($1::text[])`, skeys)
	}
	if len(rkeys) > 0 {
		b.Queue(rateReadManySQL, rkeys)
	}
	br := c.tx.SendBatch(c.ctx, b)
	err := c.readPrefetch(br, ckeys, skeys, rkeys)
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		c.fail(err)
	}
	return err
}

func (c *counters) readPrefetch(br pgx.BatchResults, ckeys, skeys, rkeys []string) error {
	if _, err := br.Exec(); err != nil {
		return err
	}
	if c.read == nil {
		c.read = make(map[string]int64)
	}
	rows, err := br.Query()
	if err != nil {
		return err
	}
	for rows.Next() {
		var k string
		var v int64
		if err := rows.Scan(&k, &v); err != nil {
			rows.Close()
			return err
		}
		c.read[k] = v
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if c.sread == nil {
		c.sread = make(map[string]string)
	}
	if len(skeys) > 0 {
		if err := c.readPrefetchSettings(br, skeys); err != nil {
			return err
		}
	}
	for _, k := range ckeys {
		if _, ok := c.read[k]; !ok {
			return fmt.Errorf("prefetch: no value for counter %q", k)
		}
	}
	if len(rkeys) == 0 {
		return nil
	}
	rows, err = br.Query()
	if err != nil {
		return err
	}
	for rows.Next() {
		var k string
		var tat *time.Time
		var now time.Time
		if err := rows.Scan(&k, &tat, &now); err != nil {
			rows.Close()
			return err
		}
		c.keepBucket(k, tat, now)
	}
	return rows.Err()
}

func (c *counters) readPrefetchSettings(br pgx.BatchResults, skeys []string) error {
	for _, k := range skeys {
		c.sread[k] = "" // no row: no setting
	}
	rows, err := br.Query()
	if err != nil {
		return err
	}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			rows.Close()
			return err
		}
		c.sread[k] = v
	}
	return rows.Err()
}

// pending is what a transaction's counters would write: taken before a
// reservation and put back if it is refused.
type pending struct {
	ints, blind map[string]int64
	settings    map[string]string
}

func (c *counters) snapshot() pending {
	return pending{ints: clone(c.ints), blind: clone(c.blind), settings: clone(c.settings)}
}

func (c *counters) restore(p pending) {
	c.ints, c.blind, c.settings = p.ints, p.blind, p.settings
}

func clone[V any](m map[string]V) map[string]V {
	if m == nil {
		return nil
	}
	out := make(map[string]V, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// queueJobs adds the insert of jobs, one statement, to b. A job whose id
// exists fails it, and the transaction with it (admitBatch then tries each
// job alone).
func (s *DB) queueJobs(b *pgx.Batch, jobs []*engine.Job) error {
	if len(jobs) == 0 {
		return nil
	}
	n := len(jobs)
	ids, owners, datas := make([]string, n), make([]string, n), make([]string, n)
	created, finAt := make([]time.Time, n), make([]*time.Time, n)
	fin := make([]bool, n)
	leaseOwner, leaseUntil := make([]*string, n), make([]*time.Time, n)
	for i, j := range jobs {
		data, err := json.Marshal(j)
		if err != nil {
			return fmt.Errorf("encode job %s: %w", j.ID, err)
		}
		ids[i], owners[i], datas[i] = j.ID, j.Owner.Key(), string(data)
		created[i], fin[i], finAt[i] = j.CreatedAt, j.Finished(), finishedAt(j)
		if s.leasing && !j.Finished() {
			// Leased by its creator, which schedules it at once.
			u := time.Now().Add(s.ttl)
			leaseOwner[i], leaseUntil[i] = &s.replica, &u
		}
	}
	b.Queue(`INSERT INTO picbot_jobs (id, owner_key, created_at, finished, finished_at, data, lease_owner, lease_until)
		SELECT id, o, c, f, fa, d::jsonb, lo, lu
		FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::bool[], $5::timestamptz[], $6::text[], $7::text[], $8::timestamptz[])
			AS t(id, o, c, f, fa, d, lo, lu)`, ids, owners, created, fin, finAt, datas, leaseOwner, leaseUntil)
	return nil
}
