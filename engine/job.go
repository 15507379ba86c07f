package engine

import (
	"fmt"
	"time"
)

// State is where a job is in its life.
//
//	queued → submitted → running → succeeded → delivered
//	   ╰──────────┴──────────┴──→ failed | cancelled
//	                 succeeded ──→ failed (the result could not be posted)
type State string

const (
	StateQueued    State = "queued"    // persisted, not yet accepted by a vendor
	StateSubmitted State = "submitted" // a vendor accepted it; task id recorded
	StateRunning   State = "running"   // the vendor reported progress
	StateSucceeded State = "succeeded" // images downloaded and kept; not yet posted
	StateDelivered State = "delivered" // images posted to the chat
	StateFailed    State = "failed"
	StateCancelled State = "cancelled"
)

var transitions = map[State][]State{
	StateQueued:    {StateSubmitted, StateFailed, StateCancelled},
	StateSubmitted: {StateRunning, StateSucceeded, StateFailed, StateCancelled, StateQueued},
	StateRunning:   {StateSucceeded, StateFailed, StateCancelled, StateQueued},
	StateSucceeded: {StateDelivered, StateFailed},
}

// CanMove reports whether a job may move from s to next. Submitted and running
// may go back to queued: the vendor failed the task and another one will try.
func (s State) CanMove(next State) bool {
	for _, t := range transitions[s] {
		if t == next {
			return true
		}
	}
	return false
}

// Terminal reports whether no vendor work remains for a job in s.
func (s State) Terminal() bool {
	return s == StateDelivered || s == StateFailed || s == StateCancelled
}

// AtVendor reports whether a vendor holds a task for a job in s.
func (s State) AtVendor() bool { return s == StateSubmitted || s == StateRunning }

// UserRef names a user on a platform.
type UserRef struct {
	Platform string   `json:"platform"`
	ID       string   `json:"id"`
	Name     string   `json:"name,omitempty"`
	Lang     Lang     `json:"lang,omitempty"`
	Roles    []string `json:"roles,omitempty"` // Discord role ids, for tiers
}

// Key is the user's identity across the store: "platform:id".
func (u UserRef) Key() string { return u.Platform + ":" + u.ID }

// ChatRef says where a job came from and where its result goes.
type ChatRef struct {
	Platform string `json:"platform"`
	ChatID   string `json:"chat_id"`
	// GuildID is the Discord guild or, elsewhere, empty; quotas per chat use it when set.
	GuildID   string `json:"guild_id,omitempty"`
	MessageID string `json:"message_id,omitempty"` // the command's message, to reply to
	Private   bool   `json:"private,omitempty"`
	// ThreadID is the topic of a forum (Telegram's message_thread_id) the
	// command came from; every message for the job goes there. Empty: the
	// chat itself (a forum's General topic).
	ThreadID string `json:"thread_id,omitempty"`
	// Broadcast marks a channel: anyone reads it, only its admins post, so
	// results carry no buttons a reader could spend the channel's quota with.
	Broadcast bool `json:"broadcast,omitempty"`
}

// QuotaKey is the chat's identity for per-chat quotas: the guild if there is one.
func (c ChatRef) QuotaKey() string {
	if c.GuildID != "" {
		return c.Platform + ":g" + c.GuildID
	}
	return c.Platform + ":" + c.ChatID
}

// Result is one image a job produced, kept in the blob store until delivered.
type Result struct {
	Blob   string `json:"blob"`
	Mime   string `json:"mime"`
	Width  int    `json:"w"`
	Height int    `json:"h"`
	Size   int64  `json:"size"`
	Seed   int64  `json:"seed,omitempty"`
}

// Remote is an image a vendor reported but the bot has not downloaded yet.
type Remote struct {
	URL  string `json:"url,omitempty"`
	Data []byte `json:"data,omitempty"` // inline images (base64 in the vendor's JSON)
	Seed int64  `json:"seed,omitempty"`
	// Late says the link may answer 403/404 for a while after the vendor
	// reported the task done (its storage lags its status): the download
	// is tried again with backoff before the job fails.
	Late bool `json:"late,omitempty"`
}

// Charge records what a job costs its owner and whether that is settled.
// It lives on the job so that settling is idempotent: the store updates the
// job and the counters in one transaction.
type Charge struct {
	Cost      int64  `json:"cost"`
	Day       string `json:"day,omitempty"`       // the quota day the cost was counted on
	Unlimited bool   `json:"unlimited,omitempty"` // admin: nothing counted
	Released  bool   `json:"released,omitempty"`  // the concurrent-jobs slot was given back
	Settled   string `json:"settled,omitempty"`   // "", "committed" or "refunded"
	// Bought is the part of Cost paid from the owner's bought images (past
	// the daily free quota); a refund gives it back there.
	Bought int64 `json:"bought,omitempty"`
	// Priority is the owner's tier's: among jobs waiting for a limited
	// vendor, a higher one goes first.
	Priority int `json:"priority,omitempty"`
}

const (
	ChargeCommitted = "committed"
	ChargeRefunded  = "refunded"
)

// Job is one command's whole life. It is the unit the store persists.
type Job struct {
	ID      string  `json:"id"`
	Owner   UserRef `json:"owner"`
	Chat    ChatRef `json:"chat"`
	Request Request `json:"request"`
	State   State   `json:"state"`

	// Vendor and TaskID name the task at the vendor, once submitted.
	Vendor string `json:"vendor,omitempty"`
	TaskID string `json:"task_id,omitempty"`
	// Account is the vendor account that holds the task, for a vendor with
	// several (an AccountPool): the task is queried on it, never another.
	Account string `json:"account,omitempty"`
	// Tried lists vendors that failed this job, so failover does not go back to them.
	Tried []string `json:"tried,omitempty"`
	// CallbackToken is the unguessable part of this job's callback URL.
	CallbackToken string `json:"callback_token,omitempty"`
	// Callback is set when the vendor was asked to call back rather than be polled.
	Callback bool `json:"callback,omitempty"`
	// Attempts counts submissions to vendors; BilledCalls counts billed vendor calls.
	Attempts    int `json:"attempts,omitempty"`
	BilledCalls int `json:"billed_calls,omitempty"`
	// BilledBy splits BilledCalls by the vendor that billed them, so a job
	// that failed over is counted at each vendor it cost (see Bill).
	BilledBy map[string]int `json:"billed_by,omitempty"`
	// Submitting is set just before a vendor is asked to take the job and
	// cleared when its answer is recorded: found set on a queued job, the
	// vendor may hold a task the bot never recorded (see submit.go).
	Submitting *Submitting `json:"submitting,omitempty"`

	Pending []Remote   `json:"pending,omitempty"` // reported by the vendor, not yet downloaded
	Results []Result   `json:"results,omitempty"`
	Dropped int        `json:"dropped,omitempty"` // images the vendor's audit removed
	Err     *ErrorInfo `json:"error,omitempty"`
	// Notified is set once the chat was told of a failure or cancellation.
	Notified bool `json:"notified,omitempty"`
	// DeliveryAttempts counts failed tries to post the result.
	DeliveryAttempts int `json:"delivery_attempts,omitempty"`

	Charge Charge `json:"charge"`
	// Meta holds platform adapters' own notes: a status message id, an interaction token.
	Meta map[string]string `json:"meta,omitempty"`

	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
	SubmittedAt time.Time `json:"submitted_at,omitzero"`
	FinishedAt  time.Time `json:"finished_at,omitzero"`
	// VendorDoneAt is when the bot learnt the vendor had finished.
	VendorDoneAt time.Time `json:"vendor_done_at,omitzero"`
	DeliveredAt  time.Time `json:"delivered_at,omitzero"`
	Deadline     time.Time `json:"deadline"`
	// NextAt is when the job's next step is due, kept so that a restart
	// leaves a job waiting at its vendor on its own schedule. Zero in older records.
	NextAt time.Time `json:"next_at,omitzero"`
	// Polls counts the polls of the current task, for its backoff: kept so
	// that a restarted bot goes on with the same waits, not the shortest.
	Polls int `json:"polls,omitempty"`
}

// Finished reports whether nothing remains to do for the job: it is
// delivered, or it ended otherwise and the chat was told.
func (j *Job) Finished() bool {
	switch j.State {
	case StateDelivered:
		return true
	case StateFailed, StateCancelled:
		return j.Notified
	}
	return false
}

// Move changes the job's state, refusing transitions the state machine does not allow.
func (j *Job) Move(next State, now time.Time) error {
	if j.State == next {
		return nil
	}
	if !j.State.CanMove(next) {
		return &Error{Code: ECONFLICT, EN: fmt.Sprintf("The job is already %s.", j.State), ZH: fmt.Sprintf("任务已经是%s状态。", stateZH[j.State]),
			Err: fmt.Errorf("job %s: %s → %s not allowed", j.ID, j.State, next)}
	}
	j.State = next
	j.UpdatedAt = now
	switch next {
	case StateSubmitted:
		j.SubmittedAt = now
	case StateSucceeded, StateFailed, StateCancelled:
		j.FinishedAt = now
	case StateDelivered:
		j.DeliveredAt = now
	}
	return nil
}

// Clone returns a deep copy, so a caller may keep a job while the engine changes its own.
func (j *Job) Clone() *Job {
	c := *j
	c.Request.Inputs = append([]Input(nil), j.Request.Inputs...)
	c.Request.ExtraLoRAs = append([]string(nil), j.Request.ExtraLoRAs...)
	c.Request.Embeddings = append([]string(nil), j.Request.Embeddings...)
	if r := j.Request.Control; r != nil {
		cc := *r
		c.Request.Control = &cc
	}
	if r := j.Request.Mask; r != nil {
		m := *r
		c.Request.Mask = &m
	}
	if r := j.Request.Hires; r != nil {
		h := *r
		c.Request.Hires = &h
	}
	c.Tried = append([]string(nil), j.Tried...)
	c.Pending = append([]Remote(nil), j.Pending...)
	c.Results = append([]Result(nil), j.Results...)
	c.Owner.Roles = append([]string(nil), j.Owner.Roles...)
	if j.Submitting != nil {
		m := *j.Submitting
		c.Submitting = &m
	}
	if j.Err != nil {
		e := *j.Err
		c.Err = &e
	}
	if j.BilledBy != nil {
		c.BilledBy = make(map[string]int, len(j.BilledBy))
		for k, v := range j.BilledBy {
			c.BilledBy[k] = v
		}
	}
	if j.Meta != nil {
		c.Meta = make(map[string]string, len(j.Meta))
		for k, v := range j.Meta {
			c.Meta[k] = v
		}
	}
	return &c
}

var stateZH = map[State]string{
	StateQueued: "排队中", StateSubmitted: "已提交", StateRunning: "生成中", StateSucceeded: "已完成",
	StateDelivered: "已送达", StateFailed: "失败", StateCancelled: "已取消",
}

// StateText returns s for a user in lang.
func StateText(s State, lang Lang) string {
	if lang == ZH {
		return stateZH[s]
	}
	return string(s)
}
