package web

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/picbot/picbot/engine"
)

const (
	pageSize = 50
	// scanBound caps the jobs read for one filtered page, so a filter that
	// matches nothing does not read the whole store.
	scanBound = 5000
)

// jobRow is a job as the list shows it. Only what an operator needs is
// copied: a job's Meta (interaction tokens) and callback token never reach a page.
type jobRow struct {
	ID       string            `json:"id"`
	State    engine.State      `json:"state"`
	Kind     engine.Kind       `json:"kind"`
	User     string            `json:"user"`
	UserName string            `json:"user_name,omitempty"`
	Chat     string            `json:"chat"`
	Vendor   string            `json:"vendor,omitempty"`
	TaskID   string            `json:"task_id,omitempty"`
	Created  time.Time         `json:"created_at"`
	Billed   int               `json:"billed_calls"`
	Progress float64           `json:"progress"` // negative: unknown or not running
	Images   int               `json:"images"`
	Err      *engine.ErrorInfo `json:"error,omitempty"`
}

func (h *Handler) row(j *engine.Job) jobRow {
	r := jobRow{ID: j.ID, User: j.Owner.Key(), UserName: j.Owner.Name, Chat: j.Chat.QuotaKey(), Vendor: j.Vendor, TaskID: j.TaskID,
		Kind: j.Request.Kind, State: j.State, Created: j.CreatedAt, Billed: j.BilledCalls, Progress: -1, Images: len(j.Results), Err: j.Err}
	if j.State.AtVendor() {
		if p, ok := h.engine.Progress(j.ID); ok {
			r.Progress = p
		}
	}
	return r
}

// jobFilter is the list's form.
type jobFilter struct {
	State, Kind, Vendor, User, Chat string
	Before                          int64 // unix nanoseconds: the page's start
}

func parseFilter(q url.Values) jobFilter {
	f := jobFilter{State: q.Get("state"), Kind: q.Get("kind"), Vendor: q.Get("vendor"), User: strings.TrimSpace(q.Get("user")), Chat: strings.TrimSpace(q.Get("chat"))}
	f.Before, _ = strconv.ParseInt(q.Get("before"), 10, 64)
	return f
}

func (f jobFilter) keep(j *engine.Job) bool {
	switch {
	case f.State == "active" && j.State.Terminal(), f.State != "" && f.State != "active" && string(j.State) != f.State:
		return false
	case f.Kind != "" && string(j.Request.Kind) != f.Kind, f.Vendor != "" && j.Vendor != f.Vendor:
		return false
	case f.User != "" && !strings.Contains(j.Owner.Key(), f.User) && !strings.Contains(strings.ToLower(j.Owner.Name), strings.ToLower(f.User)):
		return false
	case f.Chat != "" && !strings.Contains(j.Chat.QuotaKey(), f.Chat) && !strings.Contains(j.Chat.Platform+":"+j.Chat.ChatID, f.Chat):
		return false
	}
	return true
}

// query is the filter as a query string, without the page.
func (f jobFilter) Query() string {
	v := url.Values{}
	for k, s := range map[string]string{"state": f.State, "kind": f.Kind, "vendor": f.Vendor, "user": f.User, "chat": f.Chat} {
		if s != "" {
			v.Set(k, s)
		}
	}
	return v.Encode()
}

type jobsData struct {
	Filter  jobFilter
	Rows    []jobRow
	Next    string // the next page's link, "" at the end
	States  []engine.State
	Kinds   []engine.Kind
	Vendors []string
	Live    bool // first page: the list refreshes itself
}

var allStates = []engine.State{engine.StateQueued, engine.StateSubmitted, engine.StateRunning, engine.StateSucceeded,
	engine.StateDelivered, engine.StateFailed, engine.StateCancelled}

// jobsList is the list of jobs, newest first; ?fragment=1 gives only its
// rows, which the page's script fetches every few seconds.
func (h *Handler) jobsList(w http.ResponseWriter, r *http.Request) {
	f := parseFilter(r.URL.Query())
	var before time.Time
	if f.Before > 0 {
		before = time.Unix(0, f.Before)
	}
	jobs, err := h.recent(r, before, pageSize, f.keep)
	if err != nil {
		h.fail(w, err)
		return
	}
	d := jobsData{Filter: f, States: allStates, Kinds: engine.Kinds, Live: f.Before == 0}
	for _, v := range h.engine.Health() {
		d.Vendors = append(d.Vendors, v.Name)
	}
	for _, j := range jobs {
		d.Rows = append(d.Rows, h.row(j))
	}
	if len(jobs) == pageSize {
		q := f.Query()
		if q != "" {
			q += "&"
		}
		d.Next = fmt.Sprintf("/admin/jobs?%sbefore=%d", q, jobs[len(jobs)-1].CreatedAt.UnixNano())
	}
	if r.URL.Query().Get("format") == "json" || strings.Contains(r.Header.Get("Accept"), "application/json") {
		// For scripts: the same rows, the same filters, the next page's link.
		w.Header().Set("Content-Type", "application/json")
		rows := d.Rows
		if rows == nil {
			rows = []jobRow{}
		}
		json.NewEncoder(w).Encode(map[string]any{"jobs": rows, "next": d.Next})
		return
	}
	if r.URL.Query().Get("fragment") == "1" {
		h.fragment(w, r, "jobs", "rows", page{Data: d})
		return
	}
	h.render(w, r, "jobs", page{Title: "Jobs", Nav: "jobs", Data: d})
}

// recent returns up to limit jobs created before before that keep accepts,
// newest first, reading at most scanBound.
func (h *Handler) recent(r *http.Request, before time.Time, limit int, keep func(*engine.Job) bool) ([]*engine.Job, error) {
	var out []*engine.Job
	seen := 0
	err := h.jobs.RecentJobs(r.Context(), before, func(j *engine.Job) bool {
		seen++
		if keep == nil || keep(j) {
			out = append(out, j)
		}
		return len(out) < limit && seen < scanBound
	})
	return out, err
}

// fragment renders one named template of a page, for the live refresh.
func (h *Handler) fragment(w http.ResponseWriter, r *http.Request, pageName, name string, p page) {
	lang := requestLang(w, r)
	t, err := h.clone(pageName, lang)
	if err != nil {
		h.fail(w, err)
		return
	}
	p.Lang = lang
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, name, p); err != nil {
		h.fail(w, err)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(buf.Bytes())
}

// step is one state in a job's timeline.
type step struct {
	What  string
	State engine.State // for "finished": how
	At    time.Time
}

type jobData struct {
	Job                            jobRow
	Request                        engine.Request
	Inputs                         []int // indexes of the request's input images
	Results                        []resultView
	Timeline                       []step
	Charge                         engine.Charge
	Tried                          []string
	Attempts                       int
	Deliver                        int
	Deadline                       time.Time
	CanCancel, CanRetry, CanRefund bool
}

type resultView struct {
	Index         int
	Width, Height int
	Size          int64
	Seed          int64
	Hidden        bool
}

func (h *Handler) jobShow(w http.ResponseWriter, r *http.Request) {
	j, err := h.jobs.Job(r.Context(), r.PathValue("id"))
	if err != nil {
		if engine.ErrorCode(err) == engine.ENOTFOUND {
			http.NotFound(w, r)
			return
		}
		h.fail(w, err)
		return
	}
	d := jobData{Job: h.row(j), Request: j.Request, Charge: j.Charge, Tried: j.Tried, Attempts: j.Attempts,
		Deliver: j.DeliveryAttempts, Deadline: j.Deadline}
	for i := range j.Request.Inputs {
		d.Inputs = append(d.Inputs, i)
	}
	d.Request.Inputs = nil
	for i, res := range j.Results {
		d.Results = append(d.Results, resultView{Index: i, Width: res.Width, Height: res.Height, Size: res.Size, Seed: res.Seed, Hidden: hidden(j, i)})
	}
	for _, s := range []step{{"created (queued)", "", j.CreatedAt}, {"submitted to the vendor", "", j.SubmittedAt}, {"vendor done", "", j.VendorDoneAt},
		{"finished:", j.State, j.FinishedAt}, {"delivered", "", j.DeliveredAt}} {
		if !s.At.IsZero() {
			d.Timeline = append(d.Timeline, s)
		}
	}
	d.CanCancel = !j.State.Terminal() && j.State != engine.StateSucceeded
	d.CanRetry = j.State == engine.StateSucceeded ||
		j.State == engine.StateFailed && j.Err != nil && j.Err.Code == engine.EUNDELIVERED && len(j.Results) > 0
	d.CanRefund = j.Charge.Settled == engine.ChargeCommitted && !j.Charge.Unlimited && j.Charge.Cost > 0
	h.render(w, r, "job", page{Title: tr(requestLang(w, r), "Job") + " " + j.ID, Nav: "jobs", Data: d})
}

// hidden reports whether a moderator hid result i of j.
func hidden(j *engine.Job, i int) bool { return j.Meta[hiddenKey(i)] != "" }

func hiddenKey(i int) string { return "web.hidden." + strconv.Itoa(i) }

func (h *Handler) jobImage(w http.ResponseWriter, r *http.Request) {
	h.serveBlob(w, r, func(j *engine.Job, i int) (string, string, bool) {
		if i >= len(j.Results) {
			return "", "", false
		}
		return j.Results[i].Blob, j.Results[i].Mime, true
	})
}

// jobInput serves an image the user gave with the command.
func (h *Handler) jobInput(w http.ResponseWriter, r *http.Request) {
	h.serveBlob(w, r, func(j *engine.Job, i int) (string, string, bool) {
		if i >= len(j.Request.Inputs) {
			return "", "", false
		}
		return j.Request.Inputs[i].Blob, j.Request.Inputs[i].Mime, true
	})
}

// serveBlob serves image i of the job in the path, as pick finds it.
func (h *Handler) serveBlob(w http.ResponseWriter, r *http.Request, pick func(j *engine.Job, i int) (key, mime string, ok bool)) {
	j, err := h.jobs.Job(r.Context(), r.PathValue("id"))
	i, ierr := strconv.Atoi(r.PathValue("i"))
	if err != nil || ierr != nil || i < 0 {
		http.NotFound(w, r)
		return
	}
	key, mime, ok := pick(j, i)
	if !ok {
		http.NotFound(w, r)
		return
	}
	rc, err := h.blobs.Open(r.Context(), key)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	defer rc.Close()
	if !strings.HasPrefix(mime, "image/") || strings.Contains(mime, "svg") {
		mime = "application/octet-stream" // only raster images are shown inline
	}
	w.Header().Set("Content-Type", mime)
	w.Header().Set("Cache-Control", "private, max-age=3600")
	bufCopy(w, rc)
}
