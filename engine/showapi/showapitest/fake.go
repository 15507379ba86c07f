// Package showapitest is a fake of ShowAPI's AI drawing service on Huawei
// Cloud's API market, for tests: an httptest server on loopback that checks
// the gateway's authentication, answers with the vendor document's own
// examples, creates tasks that go from waiting to finish over time, serves
// their images, calls back, counts billed calls, and fails on request.
//
// Failures can be asked for in code (FailNext, FailTask, Forget, Expire) or,
// so that a test through the real binary can reach them, by a magic word in
// the prompt:
//
//	fail500     the first creation with this prompt answers HTTP 500
//	timeout     the first creation with this prompt hangs until the client gives up
//	lostreply   the first creation with this prompt makes (and bills) the task, then hangs: its answer is lost
//	gateway     the first creation with this prompt answers showapi_res_code -1
//	quota       every creation answers showapi_res_code -2 (no calls left)
//	refuse      the creation is refused: ret_code -1, "参数错误"
//	sensitive   the creation is refused for sensitive words
//	unsafe      the task ends "fail", its cause the content audit
//	vendorfail  the task ends "fail" for another cause
//	badjson     the task's first query answers broken JSON
//	expired     the task finishes, but its image links answer 404
//	forget      the vendor forgets the task: queries answer "没有找到这个任务"
//	nocallback  the task never calls back
//
// Task creation is not in the vendor's document; the fake takes the fields
// the task record echoes, as a form or as JSON, at Options.CreatePath.
package showapitest

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math/big"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The vendor document's examples, as valid JSON.
var (
	//go:embed seed/models.json
	modelsJSON []byte
	//go:embed seed/taskresult.json
	taskResultJSON []byte
	//go:embed seed/notfound.json
	notFoundJSON []byte
)

// SeedTaskID is the task of the document's examples, known to every fake
// unless Options.NoSeedTask. Its image link points off the fake.
const SeedTaskID = "sk202308152miohYCStMIdFRrvZGEfc"

// Options configure a fake. Zero values mean the defaults.
type Options struct {
	// AppCode, when set, is accepted in X-Apig-AppCode.
	AppCode string
	// AppKey and AppSecret, when set, are accepted as an SDK-HMAC-SHA256 signature.
	// With no credential set at all, any request is accepted.
	AppKey, AppSecret string

	CreatePath string        // default /createtask
	Duration   time.Duration // a task's time from waiting to finish; default 8s
	// CallbackAttempts and CallbackInterval: a callback answered other than
	// 2xx is tried again, up to CallbackAttempts times in all. Defaults 3, 2s.
	CallbackAttempts int
	CallbackInterval time.Duration
	// CallbackBare sends the task record alone, not in the envelope.
	CallbackBare bool
	// Hang is how long a "timeout" request waits for the client to give up; default 2m.
	Hang time.Duration
	// Now is the fake's clock for task states and signature dates. Timers
	// (callbacks) run on real time; with another clock, call Finish.
	Now func() time.Time
	// NoSeedTask leaves the document's example task out.
	NoSeedTask bool
	// ListOldestFirst makes /yourtasklist start with the oldest tasks; by
	// default page 1 holds the latest. The document does not say which.
	ListOldestFirst bool

	// What the fake bills. The document shows showapi_fee_num 1 on every
	// answer that worked (/models, /yourtaskresult, each /yourtasklist
	// page) and 0 on its one failure, the query for an unknown task: that
	// much is fixed. It shows no other failure, so the rest is a choice:
	//   RefusalFee: a business refusal (ret_code -1: a creation refused,
	//     a bad page or task_id), default 0 like the document's failure;
	//   FaultFee: an injected backend failure (HTTP 500, broken JSON,
	//     showapi_res_code -1), default 0.
	// Huawei's gateway's own refusals (401, 429) and "no calls left"
	// (showapi_res_code -2) are never billed, and an answer that never
	// came (a timeout) neither. A fee is counted when the answer is sent,
	// and an envelope carries it in showapi_fee_num.
	RefusalFee, FaultFee int
}

// Fault is a failure FailNext injects.
type Fault int

const (
	Fault500      Fault = iota + 1 // HTTP 500 from the backend
	FaultTimeout                   // no answer until the client gives up
	FaultBadJSON                   // HTTP 200 with a body that is not JSON
	FaultGateway                   // showapi_res_code -1: ShowAPI's platform failed
	FaultQuota                     // showapi_res_code -2: no calls left
	FaultThrottle                  // HTTP 429 APIG.0308 from Huawei's gateway
	FaultAuth                      // HTTP 401 APIG.0303, whatever the credentials
)

// Request is one API call the fake received.
type Request struct {
	Method string
	Path   string
	Query  url.Values
	Header http.Header
	Body   []byte
}

// Callback is one attempt to call a task's call_back.
type Callback struct {
	TaskID string
	Status int // 0 if the request failed
	Body   []byte
}

// Server is a running fake.
type Server struct {
	// URL is the base URL, for Config.BaseURL.
	URL string

	opts   Options
	srv    *httptest.Server
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu         sync.Mutex
	tasks      map[string]*task
	order      []string // task ids, oldest first
	billed     int
	billedTask map[string]int
	calls      map[string]int
	faults     map[string][]Fault
	requests   []Request
	callbacks  []Callback
	seen       map[string]bool // "word\x00prompt" pairs whose one failure happened
}

type task struct {
	rec       map[string]any // the record as /yourtaskresult shows it, but status and result_list
	created   time.Time
	done      time.Time // when it finishes (or fails)
	fail      string    // the cause, when it fails
	forgotten bool
	expired   bool
	badJSON   bool // the next query answers broken JSON
	noCall    bool
	called    bool // its callback was started
	timer     *time.Timer
	images    int
}

// Start runs a fake on loopback. Stop it with Close.
func Start(opts Options) *Server {
	if opts.CreatePath == "" {
		opts.CreatePath = "/createtask"
	}
	if opts.Duration == 0 {
		opts.Duration = 8 * time.Second
	}
	if opts.CallbackAttempts == 0 {
		opts.CallbackAttempts = 3
	}
	if opts.CallbackInterval == 0 {
		opts.CallbackInterval = 2 * time.Second
	}
	if opts.Hang == 0 {
		opts.Hang = 2 * time.Minute
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Server{opts: opts, tasks: map[string]*task{}, billedTask: map[string]int{}, calls: map[string]int{},
		faults: map[string][]Fault{}, seen: map[string]bool{}}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if !opts.NoSeedTask {
		s.addSeedTask()
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+opts.CreatePath, s.api(s.create))
	mux.HandleFunc("GET /yourtaskresult", s.api(s.result))
	mux.HandleFunc("GET /yourtasklist", s.api(s.list))
	mux.HandleFunc("GET /models", s.api(s.models))
	mux.HandleFunc("GET /images/{id}/{file}", s.image)
	mux.HandleFunc("/", s.api(func(w http.ResponseWriter, r *http.Request, _ []byte) {
		apigError(w, http.StatusNotFound, "APIG.0101", "The API does not exist or has not been published in the environment")
	}))
	s.srv = httptest.NewServer(mux)
	s.URL = s.srv.URL
	return s
}

// Close stops the server, its timers and its callbacks.
func (s *Server) Close() {
	s.cancel()
	s.mu.Lock()
	for _, t := range s.tasks {
		if t.timer != nil {
			t.timer.Stop()
		}
	}
	s.mu.Unlock()
	s.srv.Close()
	s.wg.Wait()
}

// FailNext makes the next call to path ("/yourtaskresult", the create path,
// ...) fail with f. Several queue up in order.
func (s *Server) FailNext(path string, f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[path] = append(s.faults[path], f)
}

// Finish makes task id end now, as it would have ended (finish, or fail
// for a magic word), and calls back.
func (s *Server) Finish(id string) bool { return s.end(id, nil) }

// FailTask makes task id fail now with cause, and calls back.
func (s *Server) FailTask(id, cause string) bool {
	if cause == "" {
		cause = "创作失败" // an empty cause would read as success
	}
	return s.end(id, &cause)
}

func (s *Server) end(id string, cause *string) bool {
	s.mu.Lock()
	t, ok := s.tasks[id]
	if ok {
		t.done = s.opts.Now()
		if cause != nil {
			t.fail = *cause
		}
		if t.timer != nil {
			t.timer.Stop()
		}
	}
	s.mu.Unlock()
	if ok {
		s.callback(id)
	}
	return ok
}

// Forget makes the vendor lose task id.
func (s *Server) Forget(id string) bool {
	return s.change(id, func(t *task) { t.forgotten = true })
}

// Expire makes task id's image links answer 404.
func (s *Server) Expire(id string) bool {
	return s.change(id, func(t *task) { t.expired = true })
}

func (s *Server) change(id string, fn func(t *task)) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tasks[id]
	if ok {
		fn(t)
	}
	return ok
}

// Billed is the number of billed calls (showapi_fee_num 1) so far.
func (s *Server) Billed() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.billed
}

// BilledFor is the number of billed calls about task id: its creation and queries.
func (s *Server) BilledFor(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.billedTask[id]
}

// Calls is the number of calls to path, answered or not.
func (s *Server) Calls(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[path]
}

// Requests returns every API call received, oldest first.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Callbacks returns every callback attempt, oldest first.
func (s *Server) Callbacks() []Callback {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Callback(nil), s.callbacks...)
}

// TaskIDs lists the tasks, oldest first.
func (s *Server) TaskIDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.order...)
}

// Ended is when task id finishes (or fails) on the fake's clock, so a
// load run can measure how late the bot saw it.
func (s *Server) Ended(id string) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tasks[id]
	if !ok {
		return time.Time{}, false
	}
	return t.done, true
}

// Task returns task id's record as /yourtaskresult would show it now.
func (s *Server) Task(id string) (map[string]any, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tasks[id]
	if !ok || t.forgotten {
		return nil, false
	}
	return s.record(id, t), true
}

// api wraps an endpoint: it records the call, checks the credentials, and
// applies an injected fault.
func (s *Server) api(h func(w http.ResponseWriter, r *http.Request, body []byte)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		// HTTP's Date, on the fake's clock, as the records' ct are.
		w.Header().Set("Date", s.opts.Now().UTC().Format(http.TimeFormat))
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		s.calls[r.URL.Path]++
		s.requests = append(s.requests, Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Header: r.Header.Clone(), Body: body})
		var fault Fault
		if q := s.faults[r.URL.Path]; len(q) > 0 {
			fault, s.faults[r.URL.Path] = q[0], q[1:]
		}
		s.mu.Unlock()
		if msg := s.authenticate(r, body); msg != "" {
			apigError(w, http.StatusUnauthorized, "APIG.0303", "Incorrect app authentication information: "+msg)
			return
		}
		if fault != 0 {
			s.fault(w, r, fault)
			return
		}
		h(w, r, body)
	}
}

// fault answers with f.
func (s *Server) fault(w http.ResponseWriter, r *http.Request, f Fault) {
	switch f {
	case Fault500:
		s.bill("", s.opts.FaultFee)
		http.Error(w, "Internal Server Error", http.StatusInternalServerError)
	case FaultTimeout:
		select {
		case <-r.Context().Done():
		case <-s.ctx.Done():
		case <-time.After(s.opts.Hang):
		}
		http.Error(w, "Gateway Timeout", http.StatusGatewayTimeout)
	case FaultBadJSON:
		s.bill("", s.opts.FaultFee)
		w.Header().Set("Content-Type", "application/json;charset=UTF-8")
		io.WriteString(w, `{"showapi_res_error": "", "showapi_res_code": 0, "showapi_res_body": {"ret_code": 0, `)
	case FaultGateway:
		s.envelope(w, "", -1, "系统调用错误", s.opts.FaultFee, map[string]any{})
	case FaultQuota:
		s.envelope(w, "", -2, "可调用次数或金额为0", 0, map[string]any{})
	case FaultThrottle:
		apigError(w, http.StatusTooManyRequests, "APIG.0308", "The throttling threshold has been reached: policy user over ratelimit,limit:100,time:1 minute")
	case FaultAuth:
		apigError(w, http.StatusUnauthorized, "APIG.0303", "Incorrect app authentication information: app not found")
	}
}

// authenticate returns why r's credentials are refused, or "".
func (s *Server) authenticate(r *http.Request, body []byte) string {
	o := s.opts
	if o.AppCode == "" && o.AppKey == "" {
		return ""
	}
	if code := r.Header.Get("X-Apig-AppCode"); code != "" {
		if o.AppCode != "" && subtle.ConstantTimeCompare([]byte(code), []byte(o.AppCode)) == 1 {
			return ""
		}
		return "app code not found"
	}
	if auth := r.Header.Get("Authorization"); auth != "" && o.AppKey != "" {
		return s.verify(r, auth, body)
	}
	return "app code or signature required"
}

// verify recomputes an SDK-HMAC-SHA256 signature the way Huawei's gateway
// does; it shares no code with the adapter, so that it can catch its bugs.
func (s *Server) verify(r *http.Request, auth string, body []byte) string {
	rest, ok := strings.CutPrefix(auth, "SDK-HMAC-SHA256 ")
	if !ok {
		return "unknown algorithm"
	}
	parts := map[string]string{}
	for _, p := range strings.Split(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		parts[k] = v
	}
	if parts["Access"] != s.opts.AppKey {
		return "app key not found"
	}
	signed := strings.Split(parts["SignedHeaders"], ";")
	if !contains(signed, "host") || !contains(signed, "x-sdk-date") {
		return "host and x-sdk-date must be signed"
	}
	date := r.Header.Get("X-Sdk-Date")
	at, err := time.Parse("20060102T150405Z", date)
	if err != nil {
		return "bad X-Sdk-Date"
	}
	if d := s.opts.Now().Sub(at); d > 15*time.Minute || d < -15*time.Minute {
		return "X-Sdk-Date is more than 15 minutes off"
	}
	var canon strings.Builder
	canon.WriteString(r.Method + "\n")
	path := r.URL.EscapedPath()
	if !strings.HasSuffix(path, "/") {
		path += "/"
	}
	canon.WriteString(path + "\n")
	query := r.URL.Query()
	names := make([]string, 0, len(query))
	for k := range query {
		names = append(names, k)
	}
	sort.Strings(names)
	var q []string
	for _, k := range names {
		vs := query[k]
		sort.Strings(vs)
		for _, v := range vs {
			q = append(q, pct(k)+"="+pct(v))
		}
	}
	canon.WriteString(strings.Join(q, "&") + "\n")
	for _, h := range signed {
		v := r.Header.Get(h)
		if h == "host" {
			v = r.Host
		}
		canon.WriteString(h + ":" + strings.TrimSpace(v) + "\n")
	}
	bodySum := sha256.Sum256(body)
	canon.WriteString("\n" + parts["SignedHeaders"] + "\n" + hex.EncodeToString(bodySum[:]))
	sum := sha256.Sum256([]byte(canon.String()))
	mac := hmac.New(sha256.New, []byte(s.opts.AppSecret))
	fmt.Fprintf(mac, "SDK-HMAC-SHA256\n%s\n%s", date, hex.EncodeToString(sum[:]))
	if !hmac.Equal([]byte(hex.EncodeToString(mac.Sum(nil))), []byte(parts["Signature"])) {
		return "signature mismatch"
	}
	return ""
}

func pct(s string) string {
	var b strings.Builder
	for _, c := range []byte(s) {
		if strings.IndexByte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// create makes a task from a form or JSON body.
func (s *Server) create(w http.ResponseWriter, r *http.Request, body []byte) {
	in, err := createFields(r, body)
	if err != nil {
		s.refuse(w, "参数错误："+err.Error())
		return
	}
	prompt := in["prompt"]
	lower := strings.ToLower(prompt)
	has := func(word string) bool { return strings.Contains(lower, word) }
	s.mu.Lock()
	once := func(word string) bool {
		if !has(word) || s.seen[word+"\x00"+prompt] {
			return false
		}
		s.seen[word+"\x00"+prompt] = true
		return true
	}
	f500, hang, gw, lostReply := once("fail500"), once("timeout"), once("gateway"), once("lostreply")
	s.mu.Unlock()
	switch {
	case f500:
		s.fault(w, r, Fault500)
		return
	case hang:
		s.fault(w, r, FaultTimeout)
		return
	case gw:
		s.fault(w, r, FaultGateway)
		return
	case has("quota"):
		s.fault(w, r, FaultQuota)
		return
	case has("sensitive"):
		s.refuse(w, "提示词包含敏感词，请修改后重试")
		return
	case has("refuse"):
		s.refuse(w, "参数错误")
		return
	}
	if strings.TrimSpace(prompt) == "" {
		s.refuse(w, "prompt不能为空")
		return
	}
	rec := map[string]any{
		"prompt": prompt, "negetive_prompt": in["negetive_prompt"], "model_id": def(in["model_id"], "4zdwGOB"),
		"lora": in["lora"], "lora_scale": def(in["lora_scale"], "0.9"), "width": def(in["width"], "512"),
		"height": def(in["height"], "512"), "steps": def(in["steps"], "25"), "scale": def(in["scale"], "8"),
		"seed": def(in["seed"], "-1"), "scheduler": def(in["scheduler"], "K_EULER"), "batch_size": def(in["batch_size"], "1"),
		"call_back": in["call_back"], "cause": "", "remark": "",
	}
	// The record holds a LoRA's id (one of /models' loras[].id) and its
	// weight apart, lora and lora_scale; "ID:0.6" is no id.
	if l, _ := rec["lora"].(string); l != "" && !knownLoRA(l) {
		s.refuse(w, "lora不存在")
		return
	}
	if _, err := strconv.ParseFloat(rec["lora_scale"].(string), 64); err != nil {
		s.refuse(w, "参数 lora_scale 不合法")
		return
	}
	images := 1
	for _, k := range []string{"width", "height", "steps", "batch_size", "seed"} {
		n, err := strconv.ParseInt(rec[k].(string), 10, 64)
		if err != nil || (k != "seed" && n < 1) || ((k == "width" || k == "height") && n > 2048) || (k == "batch_size" && n > 4) {
			s.refuse(w, "参数 "+k+" 不合法")
			return
		}
		if k == "batch_size" {
			images = int(n)
		}
	}
	if _, err := strconv.ParseFloat(rec["scale"].(string), 64); err != nil {
		s.refuse(w, "参数 scale 不合法")
		return
	}
	now := s.opts.Now()
	id := newTaskID(now)
	rec["task_id"] = id
	rec["ct"] = now.In(beijing).Format("2006-01-02 15:04:05.000")
	t := &task{rec: rec, created: now, done: now.Add(s.opts.Duration), images: images,
		expired: has("expired"), badJSON: has("badjson"), noCall: has("nocallback"), forgotten: has("forget")}
	switch {
	case has("unsafe"):
		t.fail = "提示词包含敏感内容，创作失败"
	case has("vendorfail"):
		t.fail = "创作失败，请稍后重试"
	}
	s.mu.Lock()
	s.tasks[id] = t
	s.order = append(s.order, id)
	if in["call_back"] != "" && !t.noCall && !t.forgotten {
		t.timer = time.AfterFunc(s.opts.Duration, func() { s.callback(id) })
	}
	s.mu.Unlock()
	if lostReply {
		// The task is made and billed, but its answer never arrives (a
		// crash or a timeout on the way): the client must find it again.
		s.bill(id, 1)
		s.fault(w, r, FaultTimeout)
		return
	}
	s.envelope(w, id, 0, "", 1, map[string]any{"ret_code": 0, "remark": "", "task_id": id})
}

// createFields reads the creation's fields, all as strings, from a form or JSON.
func createFields(r *http.Request, body []byte) (map[string]string, error) {
	out := map[string]string{}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct == "application/json" {
		var m map[string]any
		d := json.NewDecoder(bytes.NewReader(body))
		d.UseNumber()
		if err := d.Decode(&m); err != nil {
			return nil, fmt.Errorf("body is not JSON")
		}
		for k, v := range m {
			switch v := v.(type) {
			case string:
				out[k] = v
			case json.Number:
				out[k] = v.String()
			case nil:
			default:
				return nil, fmt.Errorf("%s must be a string or number", k)
			}
		}
		return out, nil
	}
	q, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, fmt.Errorf("body is not a form")
	}
	for k := range q {
		out[k] = q.Get(k)
	}
	for k, v := range r.URL.Query() {
		if _, ok := out[k]; !ok {
			out[k] = v[0]
		}
	}
	return out, nil
}

// result answers /yourtaskresult.
func (s *Server) result(w http.ResponseWriter, r *http.Request, _ []byte) {
	id := r.URL.Query().Get("task_id")
	if id == "" {
		s.refuse(w, "task_id不能为空")
		return
	}
	s.mu.Lock()
	t, ok := s.tasks[id]
	if !ok || t.forgotten {
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json;charset=UTF-8")
		w.Write(notFoundJSON) // the document's own example
		return
	}
	if t.badJSON {
		t.badJSON = false
		s.mu.Unlock()
		s.fault(w, r, FaultBadJSON)
		return
	}
	rec := s.record(id, t)
	s.mu.Unlock()
	rec["ret_code"] = 0
	s.envelope(w, id, 0, "", 1, rec)
}

// list answers /yourtasklist: newest first (unless ListOldestFirst), five a page.
func (s *Server) list(w http.ResponseWriter, r *http.Request, _ []byte) {
	page, err := strconv.Atoi(r.URL.Query().Get("page"))
	if err != nil || page < 1 {
		s.refuse(w, "page不合法")
		return
	}
	const per = 5
	s.mu.Lock()
	var ids []string
	for i := len(s.order) - 1; i >= 0; i-- {
		if !s.tasks[s.order[i]].forgotten {
			ids = append(ids, s.order[i])
		}
	}
	if s.opts.ListOldestFirst {
		slices.Reverse(ids)
	}
	content := []map[string]any{}
	for i := (page - 1) * per; i < len(ids) && i < page*per; i++ {
		content = append(content, s.record(ids[i], s.tasks[ids[i]]))
	}
	s.mu.Unlock()
	s.envelope(w, "", 0, "", 1, map[string]any{
		"allPages": max(1, (len(ids)+per-1)/per), "ret_code": 0, "contentlist": content,
		"currentPage": page, "allNum": len(ids), "maxResult": per,
	})
}

// models answers with the document's example.
func (s *Server) models(w http.ResponseWriter, _ *http.Request, _ []byte) {
	s.bill("", 1) // the example's showapi_fee_num
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.Write(modelsJSON)
}

// knownLoRA reports whether id is one of the loras /models lists.
func knownLoRA(id string) bool {
	var m struct {
		Body struct {
			LoRAs []struct {
				ID string `json:"id"`
			} `json:"loras"`
		} `json:"showapi_res_body"`
	}
	_ = json.Unmarshal(modelsJSON, &m)
	for _, l := range m.Body.LoRAs {
		if l.ID == id {
			return true
		}
	}
	return false
}

// image serves a result: a real PNG of the task's size.
func (s *Server) image(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	i, err := strconv.Atoi(strings.TrimSuffix(r.PathValue("file"), ".png"))
	s.mu.Lock()
	t, ok := s.tasks[id]
	var wd, ht int
	if ok {
		wd, _ = strconv.Atoi(t.rec["width"].(string))
		ht, _ = strconv.Atoi(t.rec["height"].(string))
		ok = !t.expired && err == nil && i >= 0 && i < t.images && !s.opts.Now().Before(t.done) && t.fail == ""
	}
	s.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "image/png")
	png.Encode(w, picture(min(wd, 2048), min(ht, 2048), id, i))
}

// picture is a gradient that differs by task and index.
func picture(w, h int, id string, i int) image.Image {
	sum := sha256.Sum256([]byte(fmt.Sprintf("%s/%d", id, i)))
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{sum[0] + uint8(x*255/max(w, 1)), sum[1] + uint8(y*255/max(h, 1)), sum[2], 255})
		}
	}
	return img
}

// record is task t's record now. Call with s.mu held.
func (s *Server) record(id string, t *task) map[string]any {
	rec := make(map[string]any, len(t.rec)+2)
	for k, v := range t.rec {
		rec[k] = v
	}
	results := []string{}
	switch {
	case s.opts.Now().Before(t.done):
		rec["status"] = "waiting"
	case t.fail != "":
		rec["status"], rec["cause"] = "fail", t.fail
	default:
		rec["status"] = "finish"
		if r, ok := t.rec["result_list"].([]string); ok {
			results = r // the seed task's
		} else {
			for i := range t.images {
				results = append(results, fmt.Sprintf("%s/images/%s/%d.png", s.URL, id, i))
			}
		}
	}
	rec["result_list"] = results
	return rec
}

// callback posts task id's record to its call_back, trying again on failure.
func (s *Server) callback(id string) {
	s.mu.Lock()
	t, ok := s.tasks[id]
	if !ok || t.called || t.noCall || t.forgotten || t.rec["call_back"] == "" || s.ctx.Err() != nil {
		s.mu.Unlock()
		return
	}
	t.called = true
	target := t.rec["call_back"].(string)
	rec := s.record(id, t)
	s.wg.Add(1) // under s.mu, after the check: Close cancels first, so Wait sees every Add
	s.mu.Unlock()
	var payload any = rec
	if !s.opts.CallbackBare {
		rec["ret_code"] = 0
		payload = map[string]any{"showapi_res_error": "", "showapi_fee_num": 0, "showapi_res_code": 0, "showapi_res_id": resID(), "showapi_res_body": rec}
	}
	body, _ := json.Marshal(payload)
	go func() {
		defer s.wg.Done()
		client := &http.Client{Timeout: 10 * time.Second}
		for attempt := range s.opts.CallbackAttempts {
			if attempt > 0 {
				select {
				case <-s.ctx.Done():
					return
				case <-time.After(s.opts.CallbackInterval):
				}
			}
			status := 0
			req, err := http.NewRequestWithContext(s.ctx, http.MethodPost, target, bytes.NewReader(body))
			if err == nil {
				req.Header.Set("Content-Type", "application/json;charset=UTF-8")
				if resp, err := client.Do(req); err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					status = resp.StatusCode
				}
			}
			s.mu.Lock()
			s.callbacks = append(s.callbacks, Callback{TaskID: id, Status: status, Body: body})
			s.mu.Unlock()
			if status >= 200 && status < 300 {
				return
			}
		}
	}()
}

// bill counts fee billed calls, to task id if set.
func (s *Server) bill(id string, fee int) {
	if fee <= 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.billed += fee
	if id != "" {
		s.billedTask[id] += fee
	}
}

// refuse answers a business refusal (ret_code -1), billed Options.RefusalFee.
func (s *Server) refuse(w http.ResponseWriter, remark string) {
	s.envelope(w, "", 0, "", s.opts.RefusalFee, map[string]any{"ret_code": -1, "remark": remark})
}

// envelope writes ShowAPI's wrapper around body; fee bills the call, to task id if set.
func (s *Server) envelope(w http.ResponseWriter, id string, code int, msg string, fee int, body map[string]any) {
	s.bill(id, fee)
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	json.NewEncoder(w).Encode(map[string]any{
		"showapi_res_error": msg, "showapi_fee_num": fee, "showapi_res_code": code,
		"showapi_res_id": resID(), "showapi_res_body": body,
	})
}

// apigError is an error from Huawei's gateway itself.
func apigError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error_code": code, "error_msg": msg, "request_id": resID()})
}

func (s *Server) addSeedTask() {
	var env struct {
		Body map[string]any `json:"showapi_res_body"`
	}
	if err := json.Unmarshal(taskResultJSON, &env); err != nil {
		panic(err)
	}
	rec := env.Body
	delete(rec, "ret_code")
	delete(rec, "status")
	var results []string
	for _, u := range rec["result_list"].([]any) {
		results = append(results, u.(string))
	}
	rec["result_list"] = results
	created, _ := time.ParseInLocation("2006-01-02 15:04:05.000", rec["ct"].(string), beijing)
	s.tasks[SeedTaskID] = &task{rec: rec, created: created, done: created, images: len(results)}
	s.order = append(s.order, SeedTaskID)
}

var beijing = time.FixedZone("CST", 8*3600)

// newTaskID makes an id like the document's: "sk", the date, 21 letters and digits.
func newTaskID(now time.Time) string {
	return "sk" + now.In(beijing).Format("20060102") + randomString(21, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
}

func resID() string { return randomString(24, "0123456789abcdef") }

func randomString(n int, alphabet string) string {
	b := make([]byte, n)
	for i := range b {
		k, _ := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
		b[i] = alphabet[k.Int64()]
	}
	return string(b)
}

func def(v, d string) string {
	if strings.TrimSpace(v) == "" {
		return d
	}
	return v
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
