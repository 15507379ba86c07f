// Package pool spreads one vendor's work over several accounts: each
// account is the vendor's own adapter with its own keys. A new task goes to
// an account picked by weight among those with credit left today; an
// account that says its purchased calls are used up, or that fails
// several calls in a row, is parked for a while, then given one task as a
// probe. A task is always queried, and its callback read, on the account
// that made it: the engine stores the account with the submission
// (engine.AccountPool, Job.Account).
package pool

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/picbot/picbot/engine"
)

// Account is one of the vendor's accounts.
type Account struct {
	Name   string
	Vendor engine.Vendor
	// Weight is the account's share of new tasks (default 1).
	Weight int
	// DailyLimit bounds the billed calls made through the account a day
	// (0: no bound); past it, the account takes no new task until the day ends.
	DailyLimit int
	// Concurrency bounds the tasks the account holds at once (0: no
	// bound); either every account of a pool has one or none does.
	Concurrency int
}

// Store keeps each account's daily spend (store.DB is one).
type Store interface {
	View(ctx context.Context, fn func(engine.Counters) error) error
	Update(ctx context.Context, fn func(engine.Counters) error) error
}

// Observer counts what the pool does, for metrics.
type Observer interface {
	AccountBilled(vendor, account string, calls int)
	AccountParked(vendor, account, reason string)
}

// Parking reasons.
const (
	ReasonExhausted = "exhausted" // the vendor said the purchased calls are used up
	ReasonFailing   = "failing"   // several calls in a row failed
	ReasonLimit     = "daily_limit"
)

// Config tunes the pool.
type Config struct {
	// Failures in a row park an account (default 3).
	Failures int
	// Cooldown is how long a failing account is parked before its probe
	// (default 5 minutes); ExhaustedFor the same for an exhausted one
	// (default 1 hour: a bought package of calls does not come back by itself).
	Cooldown     time.Duration
	ExhaustedFor time.Duration
	// Exhausted reports whether an error says the account's purchased
	// calls are used up (zhiqite.IsQuotaExhausted, ...). nil: never.
	Exhausted func(error) bool
	// Day names the day t falls on, for daily spend; ResetAt when that
	// day ends. Both default to UTC days.
	Day     func(t time.Time) string
	ResetAt func(t time.Time) time.Time
	Store   Store
	Obs     Observer
	Log     *slog.Logger
	Now     func() time.Time
	// Rand returns a number in [0, n): the weighted choice (tests fix it).
	Rand func(n int) int
}

type account struct {
	Account
	fails       int
	parkedUntil time.Time
	reason      string
}

// Pool is a vendor made of several accounts of one vendor.
type Pool struct {
	name     string
	cfg      Config
	mu       sync.Mutex
	accounts []*account
	byName   map[string]*account
	limited  bool              // every account has a Concurrency
	held     map[string]string // job id → the account whose slot it holds
	inFlight map[string]int    // account → jobs holding its slots
}

// New returns the pool as an engine.Vendor that offers exactly the
// optional interfaces its accounts' adapter does (a callback vendor, a
// task finder, a catalogue, idempotent submissions).
func New(cfg Config, accounts ...Account) (engine.Vendor, error) {
	if len(accounts) == 0 {
		return nil, errors.New("pool: no accounts")
	}
	p := &Pool{name: accounts[0].Vendor.Name(), cfg: cfg, byName: map[string]*account{}, held: map[string]string{}, inFlight: map[string]int{}}
	if p.cfg.Failures <= 0 {
		p.cfg.Failures = 3
	}
	if p.cfg.Cooldown <= 0 {
		p.cfg.Cooldown = 5 * time.Minute
	}
	if p.cfg.ExhaustedFor <= 0 {
		p.cfg.ExhaustedFor = time.Hour
	}
	if p.cfg.Now == nil {
		p.cfg.Now = time.Now
	}
	if p.cfg.Day == nil {
		p.cfg.Day = func(t time.Time) string { return t.UTC().Format(time.DateOnly) }
	}
	if p.cfg.ResetAt == nil {
		p.cfg.ResetAt = func(t time.Time) time.Time { return t.UTC().Truncate(24 * time.Hour).Add(24 * time.Hour) }
	}
	if p.cfg.Rand == nil {
		p.cfg.Rand = rand.IntN
	}
	if p.cfg.Log == nil {
		p.cfg.Log = slog.New(slog.DiscardHandler)
	}
	first := accounts[0].Vendor
	p.limited = accounts[0].Concurrency > 0
	defer p.restore()
	for _, a := range accounts {
		if a.Name == "" || strings.ContainsAny(a.Name, ": /") {
			return nil, fmt.Errorf("pool %s: account name %q must be one word without : or /", p.name, a.Name)
		}
		if _, dup := p.byName[a.Name]; dup {
			return nil, fmt.Errorf("pool %s: two accounts named %q", p.name, a.Name)
		}
		if a.Vendor.Name() != p.name || fmt.Sprintf("%T", a.Vendor) != fmt.Sprintf("%T", first) {
			return nil, fmt.Errorf("pool %s: account %s is another vendor", p.name, a.Name)
		}
		if a.Weight <= 0 {
			a.Weight = 1
		}
		if (a.Concurrency > 0) != p.limited {
			return nil, fmt.Errorf("pool %s: either every account has a concurrency or none does", p.name)
		}
		ac := &account{Account: a}
		p.accounts = append(p.accounts, ac)
		p.byName[a.Name] = ac
	}
	_, cb := first.(engine.CallbackVendor)
	_, finder := first.(engine.TaskFinder)
	_, cat := first.(engine.Cataloguer)
	idem := false
	if i, ok := first.(engine.IdempotentSubmitter); ok {
		idem = i.SubmitIdempotent()
	}
	switch {
	case cb && !finder && !cat && !idem:
		return &callbackPool{p}, nil
	case cb && finder && cat && !idem:
		return &finderPool{callbackPool{p}}, nil
	case cb && finder && cat && idem:
		return &idempotentPool{finderPool{callbackPool{p}}}, nil
	}
	return nil, fmt.Errorf("pool %s: the adapter's kind (callback %v, finder %v, catalogue %v, idempotent %v) has no pool", p.name, cb, finder, cat, idem)
}

func spendKey(vendor, account, day string) string {
	return "d:acct:" + vendor + "/" + account + ":" + day
}

// parkKey keeps a park that outlives a restart (exhausted, failing): the
// time it ends, in unix seconds, with the reason as a setting beside it.
func parkKey(vendor, account string) string { return "acct:park:" + vendor + "/" + account }

// Name implements engine.Vendor.
func (p *Pool) Name() string { return p.name }

func (p *Pool) first() engine.Vendor { return p.accounts[0].Vendor }

// Check and Timing are the adapter's: every account runs the same code.
func (p *Pool) Check(r *engine.Request) error          { return p.first().Check(r) }
func (p *Pool) Timing(r *engine.Request) engine.Timing { return p.first().Timing(r) }

// Choices implements engine.Chooser when the adapter does.
func (p *Pool) Choices(k engine.Kind) engine.Choices {
	if c, ok := p.first().(engine.Chooser); ok {
		return c.Choices(k)
	}
	return engine.Choices{}
}

// AccountSlots implements engine.AccountLimits: the accounts' concurrency
// summed, the vendor's slots in the engine.
func (p *Pool) AccountSlots() int {
	if !p.limited {
		return 0
	}
	n := 0
	for _, a := range p.accounts {
		n += a.Concurrency
	}
	return n
}

// Holding implements engine.AccountLimits.
func (p *Pool) Holding(id, account string) {
	if !p.limited {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.byName[account]; ok {
		p.holdLocked(id, account)
	}
}

// Released implements engine.AccountLimits.
func (p *Pool) Released(id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.releaseLocked(id)
}

func (p *Pool) holdLocked(id, account string) {
	if p.held[id] == account {
		return
	}
	p.releaseLocked(id)
	p.held[id] = account
	p.inFlight[account]++
}

func (p *Pool) releaseLocked(id string) {
	if a, ok := p.held[id]; ok {
		delete(p.held, id)
		p.inFlight[a]--
	}
}

// PickAccount implements engine.AccountPool: a weighted choice among the
// accounts not parked, under their daily limit and, with concurrency
// limits, with a task slot free (counted for j at once, so two jobs picking
// together never share the last one).
func (p *Pool) PickAccount(j *engine.Job) (string, error) {
	now := p.cfg.Now()
	spent := p.spent(now)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.limited {
		p.releaseLocked(j.ID) // a new submission: its old account's slot is not kept
	}
	var ok []*account
	total := 0
	busy := false
	for _, a := range p.accounts {
		if now.Before(a.parkedUntil) {
			continue
		}
		if p.limited && p.inFlight[a.Name] >= a.Concurrency {
			busy = true
			continue
		}
		if a.DailyLimit > 0 && spent[a.Name] >= int64(a.DailyLimit) {
			p.parkLocked(a, ReasonLimit, p.cfg.ResetAt(now))
			continue
		}
		ok = append(ok, a)
		total += a.Weight
	}
	if len(ok) == 0 {
		if busy {
			return "", engine.Errorf(engine.EUNAVAILABLE, "The image service's accounts are all busy; please try again shortly.", "绘图服务的账号都在忙，请稍后再试。")
		}
		return "", engine.Errorf(engine.EUNAVAILABLE, "The image service's accounts are all used up for now.", "绘图服务的账号暂时都已用完。")
	}
	pick := ok[len(ok)-1]
	n := p.cfg.Rand(total)
	for _, a := range ok {
		if n < a.Weight {
			pick = a
			break
		}
		n -= a.Weight
	}
	if p.limited {
		p.holdLocked(j.ID, pick.Name)
	}
	return pick.Name, nil
}

// restore reads the parks stored before a restart.
func (p *Pool) restore() {
	if p.cfg.Store == nil {
		return
	}
	now := p.cfg.Now()
	err := p.cfg.Store.View(context.Background(), func(c engine.Counters) error {
		for _, a := range p.accounts {
			if until := c.Get(parkKey(p.name, a.Name)); until > now.Unix() {
				a.parkedUntil, a.reason = time.Unix(until, 0), c.Setting(parkKey(p.name, a.Name))
				a.fails = p.cfg.Failures - 1
			}
		}
		return nil
	})
	if err != nil {
		p.cfg.Log.Warn("read parked accounts", slog.String("vendor", p.name), slog.Any("err", err))
	}
}

// persist stores a park, or with a zero until its end, so a restart keeps it.
func (p *Pool) persist(ctx context.Context, name string, until time.Time, reason string) {
	if p.cfg.Store == nil {
		return
	}
	key := parkKey(p.name, name)
	err := p.cfg.Store.Update(context.WithoutCancel(ctx), func(c engine.Counters) error {
		v := int64(0)
		if !until.IsZero() {
			v = until.Unix()
		}
		c.Add(key, v-c.Get(key))
		c.SetSetting(key, reason)
		return nil
	})
	if err != nil {
		p.cfg.Log.Warn("store parked account", slog.String("vendor", p.name), slog.String("account", name), slog.Any("err", err))
	}
}

// spent reads today's billed calls per account.
func (p *Pool) spent(now time.Time) map[string]int64 {
	out := map[string]int64{}
	if p.cfg.Store == nil {
		return out
	}
	day := p.cfg.Day(now)
	err := p.cfg.Store.View(context.Background(), func(c engine.Counters) error {
		for _, a := range p.accounts {
			out[a.Name] = c.Get(spendKey(p.name, a.Name, day))
		}
		return nil
	})
	if err != nil {
		p.cfg.Log.Warn("read account spend", slog.String("vendor", p.name), slog.Any("err", err))
	}
	return out
}

// parkLocked parks a until until; p.mu is held.
func (p *Pool) parkLocked(a *account, reason string, until time.Time) {
	if !until.After(a.parkedUntil) {
		return
	}
	newly := !p.cfg.Now().Before(a.parkedUntil)
	a.parkedUntil, a.reason = until, reason
	if !newly {
		return
	}
	p.cfg.Log.Warn("vendor account parked", slog.String("vendor", p.name), slog.String("account", a.Name),
		slog.String("reason", reason), slog.Time("until", until))
	if p.cfg.Obs != nil {
		p.cfg.Obs.AccountParked(p.name, a.Name, reason)
	}
}

// account returns the account named on the job; a job from before the
// pool (no account) or naming one no longer configured goes to the first.
func (p *Pool) account(name string) *account {
	if a, ok := p.byName[name]; ok {
		return a
	}
	if name != "" {
		p.cfg.Log.Warn("job names a vendor account that is not configured; using the first", slog.String("vendor", p.name), slog.String("account", name))
	}
	return p.accounts[0]
}

// call runs one call on account a and keeps its books: the billed calls
// (what the adapter reports, else guess(err)), reported on to the engine;
// failures in a row; parking on exhaustion.
func (p *Pool) call(ctx context.Context, a *account, guess func(error) int, fn func(ctx context.Context) error) error {
	mctx, read := engine.Metered(ctx)
	err := fn(mctx)
	n, reported := read()
	if reported {
		engine.ReportBilled(ctx, n) // the engine's own meter, shadowed by ours
	} else {
		n = guess(err)
	}
	p.bill(ctx, a, n)
	err, changed, until, reason := p.judge(ctx, a, err)
	if changed {
		p.persist(ctx, a.Name, until, reason)
	}
	return err
}

// judge updates a's record after a call that ended in err: failures in a
// row, parking, a probe that worked. changed says the stored park must
// change to until and reason (zero: none).
func (p *Pool) judge(ctx context.Context, a *account, err error) (_ error, changed bool, until time.Time, reason string) {
	now := p.cfg.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	before := a.parkedUntil
	defer func() {
		changed = !a.parkedUntil.Equal(before)
		until, reason = a.parkedUntil, a.reason
	}()
	switch {
	case err == nil || isRefusal(err):
		a.fails = 0
		if a.reason != "" && !now.Before(a.parkedUntil) {
			p.cfg.Log.Info("vendor account back in use", slog.String("vendor", p.name), slog.String("account", a.Name), slog.String("was", a.reason))
			a.reason, a.parkedUntil = "", time.Time{}
		}
	case p.cfg.Exhausted != nil && p.cfg.Exhausted(err):
		a.fails = p.cfg.Failures - 1 // after the park, one failure parks it again
		p.parkLocked(a, ReasonExhausted, now.Add(p.cfg.ExhaustedFor))
		// Refused at the gateway: no task exists, so a retry may go to
		// another account under a new task id.
		err = fmt.Errorf("%w: %w", engine.ErrNotTaken, err)
	case ctx.Err() != nil:
		// Shutting down: says nothing of the account.
	default:
		a.fails++
		if a.fails >= p.cfg.Failures {
			a.fails = p.cfg.Failures - 1
			p.parkLocked(a, ReasonFailing, now.Add(p.cfg.Cooldown))
		}
	}
	return err, false, time.Time{}, ""
}

func isRefusal(err error) bool {
	switch engine.ErrorCode(err) {
	case engine.EINVALID, engine.EUNSAFE, engine.ENOTFOUND:
		return true // the request or the task, not the account
	}
	return false
}

// bill counts n billed calls against a today.
func (p *Pool) bill(ctx context.Context, a *account, n int) {
	if n <= 0 {
		return
	}
	if p.cfg.Obs != nil {
		p.cfg.Obs.AccountBilled(p.name, a.Name, n)
	}
	if p.cfg.Store == nil {
		return
	}
	key := spendKey(p.name, a.Name, p.cfg.Day(p.cfg.Now()))
	if err := p.cfg.Store.Update(context.WithoutCancel(ctx), func(c engine.Counters) error { c.Add(key, int64(n)); return nil }); err != nil {
		p.cfg.Log.Warn("count account spend", slog.String("vendor", p.name), slog.String("account", a.Name), slog.Any("err", err))
	}
}

func (p *Pool) billedRule(r *engine.Request) int {
	if p.Timing(r).Billed {
		return 1
	}
	return 0
}

// Submit implements engine.Vendor on the job's account.
func (p *Pool) Submit(ctx context.Context, j *engine.Job, t engine.Task) (string, error) {
	a := p.account(j.Account)
	var id string
	err := p.call(ctx, a, func(err error) int {
		if err == nil || isRefusal(err) {
			return p.billedRule(&j.Request)
		}
		return 0
	}, func(ctx context.Context) error {
		var err error
		id, err = a.Vendor.Submit(ctx, j, t)
		return err
	})
	return id, err
}

// Query implements engine.Vendor on the account that made the task.
func (p *Pool) Query(ctx context.Context, j *engine.Job) (*engine.Outcome, error) {
	a := p.account(j.Account)
	var out *engine.Outcome
	err := p.call(ctx, a, func(error) int { return p.billedRule(&j.Request) }, func(ctx context.Context) error {
		var err error
		out, err = a.Vendor.Query(ctx, j)
		return err
	})
	return out, err
}

// callbackPool adds the callback side.
type callbackPool struct{ *Pool }

func (p *callbackPool) cb(name string) engine.CallbackVendor {
	return p.account(name).Vendor.(engine.CallbackVendor)
}

func (p *callbackPool) ParseCallback(j *engine.Job, body []byte) (*engine.Outcome, error) {
	return p.cb(j.Account).ParseCallback(j, body)
}
func (p *callbackPool) CallbackReply() (string, []byte) { return p.cb("").CallbackReply() }
func (p *callbackPool) WantsCallback() bool             { return p.cb("").WantsCallback() }

// finderPool adds the task search and the catalogue.
type finderPool struct{ callbackPool }

// FindTask searches the account the lost submission went to.
func (p *finderPool) FindTask(ctx context.Context, j *engine.Job, t engine.Task) (string, bool, error) {
	a := p.account(submissionAccount(j))
	var (
		id    string
		found bool
	)
	err := p.call(ctx, a, func(error) int { return 0 }, func(ctx context.Context) error {
		var err error
		id, found, err = a.Vendor.(engine.TaskFinder).FindTask(ctx, j, t)
		return err
	})
	return id, found, err
}

// Catalog lists the first account not parked's catalogue: every account
// sees the vendor's same models.
func (p *finderPool) Catalog(ctx context.Context) ([]engine.CatalogEntry, error) {
	now := p.cfg.Now()
	p.mu.Lock()
	a := p.accounts[0]
	for _, c := range p.accounts {
		if !now.Before(c.parkedUntil) {
			a = c
			break
		}
	}
	p.mu.Unlock()
	return a.Vendor.(engine.Cataloguer).Catalog(ctx)
}

// idempotentPool is a finderPool whose adapter takes each task id once.
type idempotentPool struct{ finderPool }

func (p *idempotentPool) SubmitIdempotent() bool { return true }

// LookupFirst asks the adapter of the account the lost submission went to:
// without it, a pool of Zhiqite accounts sent a lost submission again (a
// duplicate refusal, then a poll) where one account alone asks once.
func (p *idempotentPool) LookupFirst(j *engine.Job) bool {
	l, ok := p.account(submissionAccount(j)).Vendor.(engine.LookupFirst)
	return ok && l.LookupFirst(j)
}

// submissionAccount is the account a lost submission of j went to.
func submissionAccount(j *engine.Job) string {
	if j.Submitting != nil && j.Submitting.Account != "" {
		return j.Submitting.Account
	}
	return j.Account
}

// AccountStats are one account's figures today.
type AccountStats struct {
	Vendor, Account string
	Billed          int64
	DailyLimit      int
	ParkedUntil     time.Time
	Reason          string
}

// Stats reads each account's spend today and whether it is parked.
func Stats(v engine.Vendor) []AccountStats {
	p := unwrap(v)
	if p == nil {
		return nil
	}
	now := p.cfg.Now()
	spent := p.spent(now)
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []AccountStats
	for _, a := range p.accounts {
		st := AccountStats{Vendor: p.name, Account: a.Name, Billed: spent[a.Name], DailyLimit: a.DailyLimit}
		if now.Before(a.parkedUntil) {
			st.ParkedUntil, st.Reason = a.parkedUntil, a.reason
		}
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Account < out[j].Account })
	return out
}

func unwrap(v engine.Vendor) *Pool {
	switch p := v.(type) {
	case *Pool:
		return p
	case *callbackPool:
		return p.Pool
	case *finderPool:
		return p.Pool
	case *idempotentPool:
		return p.Pool
	}
	return nil
}

// String is one line of /admin stats.
func (s AccountStats) String() string {
	limit := ""
	if s.DailyLimit > 0 {
		limit = fmt.Sprintf(" of %d", s.DailyLimit)
	}
	line := fmt.Sprintf("%s/%s: %d billed calls today%s", s.Vendor, s.Account, s.Billed, limit)
	if !s.ParkedUntil.IsZero() {
		line += fmt.Sprintf(" · parked (%s) until %s", s.Reason, s.ParkedUntil.UTC().Format("15:04 UTC"))
	}
	return line
}

// Probe checks every account (`picbot check vendors`): the adapter's own
// probe, once per account, each endpoint named with the account.
func (p *Pool) Probe(ctx context.Context) []engine.ProbeResult {
	var out []engine.ProbeResult
	for _, a := range p.accounts {
		pr, ok := a.Vendor.(engine.Prober)
		if !ok {
			continue
		}
		for _, r := range pr.Probe(ctx) {
			r.Endpoint = "account " + a.Name + ": " + r.Endpoint
			out = append(out, r)
		}
	}
	return out
}

// SetWake implements engine.Waker for accounts that learn by themselves
// when a task changes (ShowAPI's list reads): each is handed the engine's
// wake, so a pool loses none of its members' promptness.
func (p *Pool) SetWake(wake func(jobID string)) {
	for _, a := range p.accounts {
		if w, ok := a.Vendor.(engine.Waker); ok {
			w.SetWake(wake)
		}
	}
}

// Member is one account's own adapter.
type Member struct {
	Account string
	Vendor  engine.Vendor
}

// Members lists v's accounts with their adapters, for calls made past the
// pool (`picbot check vendors --spend` makes a task at each account); a
// vendor that is not a pool is its own one member, with no account name.
func Members(v engine.Vendor) []Member {
	p := unwrap(v)
	if p == nil {
		return []Member{{Vendor: v}}
	}
	out := make([]Member, len(p.accounts))
	for i, a := range p.accounts {
		out[i] = Member{Account: a.Name, Vendor: a.Vendor}
	}
	return out
}
