package quota

import (
	"context"
	"fmt"
	"math"
	"time"
)

// SharedRates is a store that keeps the per-user rate limit for every
// replica that shares it (PostgreSQL), so that N replicas allow one rate,
// not N times it. When the store offers it, Admit and Precheck use it
// instead of the limiters in memory.
type SharedRates interface {
	// AllowRate takes a token from key's bucket (a token every every, at
	// most burst stored): ok, or the wait until a token is free.
	AllowRate(ctx context.Context, key string, every time.Duration, burst int) (ok bool, wait time.Duration, err error)
	// PeekRate is AllowRate without taking the token.
	PeekRate(ctx context.Context, key string, every time.Duration, burst int) (ok bool, wait time.Duration, err error)
}

// ReservedRates is a SharedRates store whose counters take the token in
// the transaction that creates the job (they are RateTakers): Admit then
// leaves the take to Reserve, where it costs no round trip of its own
// (PostgreSQL: the bucket is locked and read with the batch's other keys).
type ReservedRates interface {
	SharedRates
	RatesInReserve() bool
}

// RateTaker is counters that take a rate-limit token inside their
// transaction: what AllowRate does, committed (or not) with the job.
type RateTaker interface {
	TakeRate(key string, every time.Duration, burst int) (ok bool, wait time.Duration)
}

// rateKey names a user's bucket in a tier: a tier change moves the user to
// a fresh bucket at once, as the limiters in memory do.
func rateKey(user string, t Tier) string {
	return fmt.Sprintf("%s|%d|%d", user, t.Every.Milliseconds(), t.Burst)
}

// rateErr turns a shared limiter's answer into Admit's.
func rateErr(ok bool, wait time.Duration, err error) error {
	if err != nil {
		return err
	}
	if ok {
		return nil
	}
	secs := math.Ceil(wait.Seconds())
	e := tooFast(secs)
	e.RetryAfter = secs
	return e
}
