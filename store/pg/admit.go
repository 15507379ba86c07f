package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
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
	refused, err := s.admitTries(ctx, live)
	if err == nil {
		for i, r := range live {
			r.done <- refused[i]
		}
		return
	}
	if len(live) == 1 || ctx.Err() != nil || errors.Is(err, errUnknown) {
		// An outcome still unknown is not tried again job by job: a job
		// the lost commit stored would be answered "exists".
		for _, r := range live {
			r.done <- err
		}
		return
	}
	// A failure that is not a race (a job id taken, a job that cannot be
	// encoded) is one job's: each runs alone, so the others still commit.
	for _, r := range live {
		refused, err := s.admitTries(ctx, []*admitReq{r})
		if err == nil {
			err = refused[0]
		}
		r.done <- err
	}
}

// admitTries runs admitOnce again while it loses a race (a deadlock, a
// serialization failure) or its connection before it committed.
func (s *DB) admitTries(ctx context.Context, batch []*admitReq) (refused []error, err error) {
	for try := range maxTries {
		if refused, err = s.admitOnce(ctx, batch); err == nil {
			return refused, nil
		}
		if !retryable(err) && !errors.Is(err, errLost) {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Duration(try+1) * time.Millisecond):
		}
	}
	return nil, err
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
	refused, err = s.admitIn(ctx, tx, batch)
	resolved := errors.Is(err, errLost) || errors.Is(err, errUnknown) // at the commit, by admitIn
	if err != nil && !resolved && tx.begun && conn.Conn().IsClosed() {
		// Lost before its COMMIT: nothing of it is committed, but across a
		// partition its session lives on in the transaction, holding its
		// locks, which the next try (and every admission of the same
		// users) would wait on until the server noticed. It is ended first.
		pid := conn.Conn().PgConn().PID()
		if eerr := s.untilAnswered(func(ctx context.Context) error { return s.endSession(ctx, pid) }); eerr != nil {
			return nil, fmt.Errorf("%w (ending its session: %w)", err, eerr)
		}
		return nil, fmt.Errorf("%w: %w", errLost, err)
	}
	return refused, err
}

// admitIn is admitOnce's work in transaction tx.
func (s *DB) admitIn(ctx context.Context, tx *pipeTx, batch []*admitReq) (refused []error, err error) {
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
		var u *commitUnknown
		if !errors.As(err, &u) {
			var pe *pgconn.PgError
			if len(jobs) == 1 && errors.As(err, &pe) && pe.Code == "23505" && pe.TableName == "picbot_jobs" {
				return nil, fmt.Errorf("job %s exists: %w", jobs[0].ID, err)
			}
			return nil, err
		}
		// The connection was lost after the COMMIT went out: the server
		// may have committed. The answer is read back, never guessed.
		stored, rerr := s.resolve(u.pid, jobs)
		if rerr != nil {
			s.log.Error("admission's commit outcome unknown", slog.Int("jobs", len(jobs)), slog.Any("err", u.err), slog.Any("resolve_err", rerr))
			return nil, fmt.Errorf("%w: %w (reading it back: %w)", errUnknown, u.err, rerr)
		}
		s.log.Warn("admission's connection lost at its commit", slog.Int("jobs", len(jobs)), slog.Bool("committed", stored), slog.Any("err", u.err))
		if !stored {
			return nil, fmt.Errorf("%w: %w", errLost, u.err)
		}
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
// only once the server has said COMMIT. A connection lost once the COMMIT
// may have reached the server is a *commitUnknown: whether it committed
// is for the caller to find out.
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
	cerr := br.Close()
	if err == nil && tag.String() == "COMMIT" {
		// Committed, whatever the connection did after (a session
		// terminated before its ReadyForQuery).
		t.done = true
		return nil
	}
	if err == nil {
		err = cerr
	}
	if err == nil {
		// A transaction that failed earlier answers COMMIT with ROLLBACK.
		return fmt.Errorf("commit answered %q", tag.String())
	}
	// The server's own error comes, in order, before a COMMIT it would
	// have answered: the COMMIT was skipped. Nothing sent: nothing done.
	var pe *pgconn.PgError
	if errors.As(err, &pe) || pgconn.SafeToRetry(err) {
		return err
	}
	return &commitUnknown{pid: t.conn.Conn().PgConn().PID(), err: err}
}

// commitUnknown is a commit whose connection was lost after the COMMIT
// was sent: the server (process pid) may or may not have committed.
type commitUnknown struct {
	pid uint32
	err error
}

func (e *commitUnknown) Error() string { return "commit outcome unknown: " + e.err.Error() }
func (e *commitUnknown) Unwrap() error { return e.err }

// errLost: an admission's connection was lost at its commit, and reading
// back found it had not committed: nothing of it was written, and it may
// run again.
var errLost = errors.New("connection lost before the commit")

// errUnknown: an admission's connection was lost at its commit, and the
// outcome could not be read back.
var errUnknown = errors.New("commit outcome unknown")

// resolveTimeout bounds the reading back of a lost commit's outcome.
const resolveTimeout = 30 * time.Second

// resolve finds out whether the transaction of server process pid, whose
// connection was lost at its commit, stored jobs. First that session is
// ended and awaited: across a partition it may be alive, its transaction
// open and the COMMIT still on its way, and a transaction is committed
// or rolled back, for good, once its session is gone. Then the jobs are
// read back: their ids are the bot's own, so a job found with the
// admission's content is its own, committed with its reservation (one
// transaction), and none found is a rollback. It runs on the store's
// life (untilAnswered), not the batch's context, which may be what ended
// the commit.
func (s *DB) resolve(pid uint32, jobs []*engine.Job) (stored bool, err error) {
	err = s.untilAnswered(func(ctx context.Context) error {
		if err := s.endSession(ctx, pid); err != nil {
			return err
		}
		stored, err = s.readBack(ctx, jobs)
		return err
	})
	return stored, err
}

// untilAnswered runs fn on the store's life, for at most resolveTimeout,
// again while the server is unreachable (restarting, say).
func (s *DB) untilAnswered(fn func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(s.life, resolveTimeout)
	defer cancel()
	for {
		err := fn(ctx)
		var pe *pgconn.PgError
		var mm mismatch
		if err == nil || errors.As(err, &pe) || errors.As(err, &mm) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// endSession ends server process pid, a session of this store whose
// connection was lost, and returns once it is gone: its transaction is
// then committed or rolled back for good, and its locks free. The kernel
// hands out process ids in turn, so the id of a session that has just
// ended is not another's before the whole range has gone round; the
// checks narrow it further to a client of this user on this database.
func (s *DB) endSession(ctx context.Context, pid uint32) error {
	const sess = `FROM pg_stat_activity WHERE pid = $1 AND backend_type = 'client backend'
		AND usename = current_user AND datname = current_database()`
	var alive bool
	if err := s.pool.QueryRow(ctx, `SELECT coalesce(bool_or(pg_terminate_backend(pid)), false) `+sess, int32(pid)).Scan(&alive); err != nil {
		return fmt.Errorf("end session %d: %w", pid, err)
	}
	for alive {
		select {
		case <-ctx.Done():
			return fmt.Errorf("session %d still there: %w", pid, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
		if err := s.pool.QueryRow(ctx, `SELECT count(*) > 0 `+sess, int32(pid)).Scan(&alive); err != nil {
			return fmt.Errorf("await session %d: %w", pid, err)
		}
	}
	return nil
}

// mismatch: jobs read back are not all, nor none, of those an admission wrote.
type mismatch struct{ mine, want, found int }

func (m mismatch) Error() string {
	return fmt.Sprintf("read back %d of %d jobs as the admission wrote them, %d stored", m.mine, m.want, m.found)
}

// readBack reports whether jobs, an ended transaction's, are stored.
func (s *DB) readBack(ctx context.Context, jobs []*engine.Job) (stored bool, err error) {
	if len(jobs) == 0 {
		// Every reservation was refused: the answers hold, committed or not.
		return true, nil
	}
	ids := make([]string, len(jobs))
	for i, j := range jobs {
		ids[i] = j.ID
	}
	rows, err := s.pool.Query(ctx, `SELECT data FROM picbot_jobs WHERE id = ANY($1::text[])`, ids)
	if err != nil {
		return false, fmt.Errorf("read back: %w", err)
	}
	found := map[string]*engine.Job{}
	for rows.Next() {
		j := new(engine.Job)
		if err := rows.Scan(j); err != nil {
			rows.Close()
			return false, fmt.Errorf("read back: %w", err)
		}
		found[j.ID] = j
	}
	if err := rows.Err(); err != nil {
		return false, fmt.Errorf("read back: %w", err)
	}
	mine := 0
	for _, j := range jobs {
		if f := found[j.ID]; f != nil && f.CallbackToken == j.CallbackToken && f.Owner.Key() == j.Owner.Key() && f.CreatedAt.Equal(j.CreatedAt) {
			mine++
		}
	}
	switch {
	case mine == len(jobs):
		return true, nil
	case len(found) == 0:
		return false, nil
	}
	return false, mismatch{mine, len(jobs), len(found)}
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
