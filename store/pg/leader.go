package pgstore

import (
	"context"
	"log/slog"
	"time"
)

// LeadEvery is how often a replica that is not the leader tries to
// become it, and how often the leader checks that it still is.
const LeadEvery = time.Second

// Lead runs run while this process holds the session advisory lock named
// name, so that exactly one replica at a time does what must run once
// (Telegram's getUpdates, Discord's gateway). A replica that is not the
// leader tries again every LeadEvery; the lock goes with the leader's
// connection, so when the leader dies another takes over within about
// three LeadEvery. Should the leader lose its connection, run's context
// ends within two LeadEvery, before another starts. Lead returns when ctx ends, or with run's error.
func (s *DB) Lead(ctx context.Context, name string, run func(ctx context.Context) error) error {
	logged := false
	for ctx.Err() == nil {
		led, err := s.leadOnce(ctx, name, run)
		if led && err != nil {
			return err
		}
		if !led && !logged {
			s.log.Info("another replica leads; standing by", slog.String("singleton", name))
			logged = true
		}
		if led {
			logged = false
		}
		select {
		case <-ctx.Done():
		case <-time.After(LeadEvery):
		}
	}
	return nil
}

// leadKey names the advisory lock of the lead name. Advisory locks belong
// to the database, not to a schema, so deployments on separate schemas of
// one database (and tests, each on a schema of its own: pgtest) would have
// one leader between them: the key names the schema. On public it is the
// key of the versions before, so that a rolling upgrade there never has
// two leaders; a deployment on another schema may have two for a moment
// during the upgrade to this version.
func (s *DB) leadKey(name string) string {
	if s.schema == "public" {
		return "picbot:lead:" + name
	}
	return "picbot:lead:" + s.schema + ":" + name
}

// leadOnce tries the lock once; led says run ran.
func (s *DB) leadOnce(ctx context.Context, name string, run func(ctx context.Context) error) (led bool, err error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return false, nil
	}
	var got bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock(hashtextextended($1, 1))`, s.leadKey(name)).Scan(&got); err != nil || !got {
		conn.Release()
		return false, nil
	}
	// A leader cut off from the database (alive, its connection gone, the
	// lock freed) stops within two LeadEvery (a ping's period and timeout):
	// wait that out, so two never run at once.
	select {
	case <-ctx.Done():
		// Never back to the pool with the lock held.
		_ = conn.Conn().Close(context.Background())
		conn.Release()
		return false, nil
	case <-time.After(2*LeadEvery + 100*time.Millisecond):
	}
	s.log.Info("leading", slog.String("singleton", name), slog.String("replica", s.replica))
	rctx, cancel := context.WithCancel(ctx)
	watch := make(chan struct{})
	go func() {
		defer close(watch)
		t := time.NewTicker(LeadEvery)
		defer t.Stop()
		for {
			select {
			case <-rctx.Done():
				return
			case <-t.C:
			}
			pctx, pcancel := context.WithTimeout(rctx, LeadEvery)
			err := conn.Ping(pctx)
			pcancel()
			if err != nil && rctx.Err() == nil {
				s.log.Warn("lost the connection that holds the lead; stopping", slog.String("singleton", name), slog.Any("err", err))
				cancel()
				return
			}
		}
	}()
	err = run(rctx)
	lost := rctx.Err() != nil && ctx.Err() == nil
	cancel()
	<-watch
	uctx, ucancel := context.WithTimeout(context.Background(), 2*time.Second)
	_, uerr := conn.Exec(uctx, `SELECT pg_advisory_unlock(hashtextextended($1, 1))`, s.leadKey(name))
	ucancel()
	if uerr != nil {
		// The lock may still be held by this session: drop the connection.
		_ = conn.Conn().Close(context.Background())
	}
	conn.Release()
	if lost {
		return true, nil // try to lead again
	}
	return true, err
}
