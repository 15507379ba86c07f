package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// Store persists jobs and the quota counters that must change with them.
// Every method is atomic. The store returns copies: changing a returned job
// changes nothing until it goes through UpdateJob.
type Store interface {
	// CreateJob persists a new job. reserve runs inside the same transaction,
	// before the job is written; if it returns an error, nothing is written
	// and that error is returned. reserve may run more than once (the store
	// may batch commits and retry), so it must only read and write through c.
	CreateJob(ctx context.Context, j *Job, reserve func(c Counters) error) error
	// UpdateJob applies fn to the stored job inside one transaction and writes
	// it back; an error from fn aborts everything. fn may run more than once.
	// Returns the job as written. ENOTFOUND if there is no such job.
	UpdateJob(ctx context.Context, id string, fn func(j *Job, c Counters) error) (*Job, error)
	// Job returns one job. ENOTFOUND if there is no such job.
	Job(ctx context.Context, id string) (*Job, error)
	// Unfinished returns every job for which Finished() is false.
	Unfinished(ctx context.Context) ([]*Job, error)
	// JobsByOwner returns the owner's newest jobs first, at most limit.
	JobsByOwner(ctx context.Context, owner UserRef, limit int) ([]*Job, error)
	// View runs fn with read-only counters.
	View(ctx context.Context, fn func(c Counters) error) error
}

// Counters are named integers kept in the store, changed only inside a store transaction.
type Counters interface {
	Get(key string) int64
	// Add adds delta; a counter never goes below zero. It returns nothing:
	// a store may add without reading (PostgreSQL does, so the counters
	// every job touches are no row transactions queue for), and a caller
	// that needs the new value asks Get, which reads (and there locks) the key.
	Add(key string, delta int64)
	// Setting and SetSetting keep small named strings (tiers, bans) beside the counters.
	Setting(key string) string
	SetSetting(key, value string)
	// Scan calls fn for every stored counter whose key starts with prefix, in key order.
	Scan(prefix string, fn func(key string, value int64))
}

// Quota decides who may start a job and keeps the count of what each costs.
type Quota interface {
	// Admit checks bans, allow-lists and the short-term rate limit. It writes
	// nothing, so a refused command leaves no trace in the store. (Where
	// the store keeps the rate limit in its transactions, PostgreSQL's,
	// Reserve takes the token instead, ERATELIMIT if none is free.)
	Admit(ctx context.Context, owner UserRef, chat ChatRef) error
	// Reserve charges the job inside the transaction that creates it and
	// records the charge on j.Charge; EQUOTA if a limit would be passed.
	Reserve(c Counters, j *Job, now time.Time) error
	// Settle ends the job's charge inside the transaction that moves it to a
	// final state: refund gives the cost back, otherwise it stays spent.
	// Either way the concurrent-jobs slot is freed. Settling twice changes nothing.
	Settle(c Counters, j *Job, refund bool)
}

// TaskState is a vendor task's state, as the engine understands it.
type TaskState int

const (
	TaskQueued TaskState = iota
	TaskRunning
	TaskDone
	TaskFailed
)

// Outcome is what a vendor says about a task, from a poll or a callback.
type Outcome struct {
	TaskID   string // the vendor's task id, when the callback names it
	State    TaskState
	Progress float64 // 0..1; negative when the vendor gives no figure
	Preview  []byte  // a partial image, where the vendor has one
	Images   []Remote
	Dropped  int   // images removed by the vendor's audit
	Err      error // for TaskFailed: EUNSAFE, EINVALID (do not retry elsewhere) or anything else
}

// Task is what the engine hands a vendor with a submission.
type Task struct {
	// ID is an id the engine suggests for the task; vendors that let the
	// client choose it (Zhiqite's id_task) use it, so a lost reply can be found again.
	ID string
	// CallbackURL is where the vendor should report; empty when the engine polls.
	CallbackURL string
	// InputURLs are public links to the job's input images, empty without a public URL.
	InputURLs []string
	// Open reads input image i (of Request.AllInputs), under ctx (see Blobs.Open).
	Open func(ctx context.Context, i int) (io.ReadCloser, error)
}

// Timing says when and how to poll a vendor's task.
type Timing struct {
	First  time.Duration // wait before the first poll: the vendor's typical duration
	Every  time.Duration // the second poll's wait; later waits grow by half each time
	Max    time.Duration // the longest wait between polls
	Billed bool          // every call costs money
	// Progress says a poll shows a running task's progress or a preview, so
	// polling more often is worth it while someone watches.
	Progress bool
}

// Vendor is one image vendor's adapter.
type Vendor interface {
	Name() string
	// Check reports whether the vendor can run r: EINVALID with the reason if not.
	Check(r *Request) error
	// Submit creates a task and returns its id at the vendor. An EINVALID or
	// EUNSAFE error means the vendor refused the request itself; anything else
	// means the vendor could not take it now, and another may.
	Submit(ctx context.Context, j *Job, t Task) (taskID string, err error)
	// Query asks about j.TaskID.
	Query(ctx context.Context, j *Job) (*Outcome, error)
	// Timing gives the poll schedule for r.
	Timing(r *Request) Timing
}

// FeatureVendor is a vendor that offers some of the options only some
// vendors offer (Request.Features). A vendor that is not one offers none:
// the engine never hands it a request that uses one, so an option is
// never dropped silently.
type FeatureVendor interface {
	Supports(kind Kind, feature string) bool
}

// TaskFinder is a vendor that can find a task whose submission's answer was
// lost (a crash, a failed store write, a timeout): the engine asks it before
// submitting the job again, so the vendor does not make and bill a second task.
type TaskFinder interface {
	// FindTask looks for the task that submitting t for j would have made;
	// j.Submitting says when. found false means there is none: submitting
	// again is safe. An error means the vendor could not be asked now.
	FindTask(ctx context.Context, j *Job, t Task) (taskID string, found bool, err error)
}

// MarkNoter is a TaskFinder that keeps a note of its own on each
// submission marker (Submitting.Note), for a later process's search for
// the task: ShowAPI notes what its tasks' creation times told of the
// vendor's clock, which a process restarted on the same machine has not
// learnt yet when it looks for a dead one's lost submission.
type MarkNoter interface {
	MarkNote() string
}

// IdempotentSubmitter is a vendor that makes one task per Task.ID however
// often it is sent: a repeat is refused as a duplicate, and the adapter
// takes the refusal as the task (Zhiqite, whose task ids are the bot's).
// A submission whose answer was lost is sent again to it under the same
// id, which costs one call whether or not the first arrived, and cannot
// make a second task even if the first is still on its way.
type IdempotentSubmitter interface {
	SubmitIdempotent() bool
}

// LookupFirst is an IdempotentSubmitter that is also a TaskFinder and would
// rather be asked about a lost submission's task than sent it again: its
// answer proves the task and reads its state in one call, where a repeat
// costs a duplicate refusal and then a poll, and, for a job with inputs,
// waits for the vendor to download them from the bot again. Asked and
// not found, the job is submitted under the same id, which the vendor
// still takes once.
type LookupFirst interface {
	LookupFirst(j *Job) bool
}

// AccountPool is a vendor with several accounts. Before each new
// submission the engine asks it for an account, stores the choice with the
// submission's marker and then on the job (Job.Account), and hands the job
// to Submit with Account set; Query, ParseCallback and FindTask get the job
// with the account that made its task. A submission sent again under the
// same task id goes to the same account.
type AccountPool interface {
	// PickAccount chooses the account for j's next submission. An error
	// (EUNAVAILABLE: no account has credit now) counts as a failed
	// submission at this vendor: the job waits, or fails over when the
	// vendor's breaker opens.
	PickAccount(j *Job) (string, error)
}

// AccountLimits is an AccountPool whose accounts each hold a bounded
// number of tasks at once: PickAccount picks only an account with a free
// one and counts the job there until Released.
type AccountLimits interface {
	// AccountSlots is the sum of the accounts' limits; 0 when any account
	// has none (the vendor then has no limit of its accounts' making).
	AccountSlots() int
	// Holding counts job id's task at account (a task found after a restart).
	Holding(id, account string)
	// Released frees job id's place at its account: its task ended there.
	Released(id string)
}

// CallbackVendor is a vendor that reports by calling the bot back.
type CallbackVendor interface {
	Vendor
	// ParseCallback decodes a callback body for job j.
	ParseCallback(j *Job, body []byte) (*Outcome, error)
	// CallbackReply is the answer the vendor expects, so it stops retrying.
	CallbackReply() (contentType string, body []byte)
	// WantsCallback reports whether to ask for a callback when the bot has a
	// public URL; false makes the engine poll (an operator's choice).
	WantsCallback() bool
}

// Progress is a job's progress as a chat sees it.
type Progress struct {
	Fraction float64 // 0..1, negative when unknown
	Preview  []byte
	// Position is the job's place in a self-hosted backend's line (1:
	// next), 0 when it waits in none; ETA the wait for it to start.
	Position int
	ETA      time.Duration
}

// Notifier carries engine events back to the chats. The console, Telegram
// and Discord adapters each implement it; cmd/bot multiplexes by platform.
type Notifier interface {
	// Progress tells the chat how the job goes. Best effort and called often:
	// the adapter throttles to what its platform allows.
	Progress(ctx context.Context, j *Job, p Progress)
	// Deliver posts a job that ended: its images if it succeeded, a message
	// if it failed or was cancelled. nil means posted: the engine records that
	// and does not call again for this job. An EUNDELIVERED error means it can
	// never be posted; any other error is retried with backoff.
	Deliver(ctx context.Context, j *Job) error
}

// Later is what a Notifier returns from Deliver when its platform asks the
// bot to wait (a flood limit, a 429's retry_after): the engine schedules the
// job again after After without counting a failed attempt, so no worker
// sleeps on a platform's limit.
type Later struct{ After time.Duration }

func (l *Later) Error() string { return fmt.Sprintf("platform busy: try again in %s", l.After) }

// AsLater reports whether err asks for the post to be tried later, and when.
func AsLater(err error) (time.Duration, bool) {
	var l *Later
	if errors.As(err, &l) {
		return l.After, true
	}
	return 0, false
}

// Watcher is a Notifier that knows whether someone is looking at a job's
// progress (a status message still shown and editable). The engine polls for
// progress, at a cost, only then.
type Watcher interface {
	Watching(j *Job) bool
}

// BlobInfo describes a stored image.
type BlobInfo struct {
	Key    string
	Mime   string
	Size   int64
	Width  int
	Height int
}

// Blobs keeps image bytes: users' inputs and vendors' results.
type Blobs interface {
	// Put stores an image read from r. EINVALID if it is larger than limit
	// bytes, not an image, or of larger dimensions than the store accepts.
	Put(ctx context.Context, r io.Reader, limit int64) (BlobInfo, error)
	// Open reads a stored image. ENOTFOUND if there is none. The reader
	// reads under ctx (a store that reads over the network stops when ctx
	// ends), so ctx must outlive the reading, as a post's does.
	Open(ctx context.Context, key string) (io.ReadCloser, error)
}

// Observer hears what the engine does, for metrics. Calls must be quick and
// must not block; they come from many goroutines at once.
type Observer interface {
	// Admitted counts a job taken on: a command that became a job, or an
	// unfinished job resumed at start. Refused counts a command that did not
	// become a job, by error code.
	Admitted(j *Job)
	Refused(code string)
	// Moved reports a state change, once it is stored.
	Moved(j *Job, from State)
	// Billed counts billed calls to a vendor.
	Billed(vendor string, calls int)
	// DeliveryStarted reports the bot's own latency: from the moment the
	// vendor was seen to be done to the start of the post to the chat.
	DeliveryStarted(j *Job, added time.Duration)
}

// nopObserver is the default Observer.
type nopObserver struct{}

func (nopObserver) Admitted(*Job)                       {}
func (nopObserver) Refused(string)                      {}
func (nopObserver) Moved(*Job, State)                   {}
func (nopObserver) Billed(string, int)                  {}
func (nopObserver) DeliveryStarted(*Job, time.Duration) {}

// Waker is a vendor that learns by itself when a task changes (a blocking
// call that returned, a websocket message): the engine hands it a function
// that makes the job's next step due now, so a finished image waits for
// no scheduled poll. A Notifier may be one too: one that told a delivery
// to come back later (engine.Later) wakes it when it can post after all
// (a post lane freed before the wait it guessed), so no post waits idle.
type Waker interface {
	SetWake(wake func(jobID string))
}

// WakeHook keeps the wake a Waker vendor was handed, for adapters to embed:
// SetWake may come after the vendor's own goroutines have started, so the
// hook is read under its lock. The zero value wakes nothing.
type WakeHook struct {
	mu   sync.Mutex
	wake func(jobID string)
}

// SetWake implements Waker.
func (h *WakeHook) SetWake(wake func(jobID string)) {
	h.mu.Lock()
	h.wake = wake
	h.mu.Unlock()
}

// Wake makes jobID's next step due now, if the engine has set a wake.
func (h *WakeHook) Wake(jobID string) {
	h.mu.Lock()
	wake := h.wake
	h.mu.Unlock()
	if wake != nil {
		wake(jobID)
	}
}

// Canceller is a vendor that can stop a task it holds (a self-hosted GPU's
// interrupt). The engine calls it after a job at the vendor is cancelled;
// best effort, since the job is cancelled whatever it returns.
type Canceller interface {
	CancelTask(ctx context.Context, j *Job) error
}

// Limited is a vendor (a self-hosted GPU, an account) that holds at most
// Slots tasks at once: the engine keeps the rest of its jobs waiting, in
// turn between users, and hands a freed slot to the next at once.
type Limited interface {
	// Slots is how many tasks the vendor may hold at once.
	Slots() int
	// Running is how many of them it works on at once (the rest wait
	// there), for queue positions and ETAs.
	Running() int
	// Typical is the time one task of r takes there, for ETAs.
	Typical(r *Request) time.Duration
}
