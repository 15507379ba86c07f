// Package apispacetest is a fake APISpace AIGC server on loopback, faithful
// to the vendor's documents (the seed shared/seeds/002_*.txt, digested in
// shared/VENDORS.md §3): it checks the three headers and the body shape of the
// seed's Python sample (params repeated at the top level), answers submit
// and query as {"code","data","msg"}, moves tasks pending → working →
// finished over time, serves real PNGs at cdn and cos links, and POSTs the
// seed's callback to notify_url, retrying a few times on failure.
//
// It fails on request, through Inject or by a magic word in the prompt
// (the Fault values), so an end-to-end test can trigger every failure
// through the real binary. It counts billed calls per task and overall.
//
// It keeps its own copy of the documented paths, tasks and limits instead
// of importing the adapter's, so that a mistake in one is caught by the other.
package apispacetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"image"
	"image/color"
	"image/draw"
	_ "image/gif" // inputs may be any format the bot accepts
	_ "image/jpeg"
	"image/png"
	"io"
	"maps"
	"mime"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	_ "golang.org/x/image/webp"
)

// Fault is a failure the fake acts out. Its value is also the magic word
// that triggers it when it appears in a prompt (case-insensitive).
type Fault string

const (
	FaultNone        Fault = ""
	Fault500         Fault = "fail500"     // submit answers HTTP 500
	FaultTimeout     Fault = "timeout"     // submit holds its reply until the client gives up (or Hang passes)
	FaultBadJSON     Fault = "badjson"     // submit answers 200 with a body cut short
	FaultQuota       Fault = "noquota"     // the account's calls are used up: HTTP 403
	FaultSensitive   Fault = "sensitive"   // submit refuses the prompt as sensitive
	FaultUnsafe      Fault = "unsafe"      // the task finishes with success true, safe false, empty cdn and cos
	FaultException   Fault = "vendorfail"  // the task ends in status exception, success false
	FaultExpired     Fault = "expired"     // the task finishes, but its result links answer 404
	FaultForget      Fault = "forget"      // the vendor loses the task: query says not_found, no callback
	FaultInterrupted Fault = "interrupted" // the task stops while working: status interrupted
	FaultBadCallback Fault = "badcallback" // the callback body is the seed's sample style: curly quotes, Python True
)

// Faults lists every fault, in the order magic words are looked for.
var Faults = []Fault{Fault500, FaultTimeout, FaultBadJSON, FaultQuota, FaultSensitive, FaultUnsafe, FaultException, FaultExpired, FaultForget, FaultBadCallback, FaultInterrupted}

// Business codes the fake answers with HTTP 200 (the adapter must not rely on them).
const (
	CodeOK        = 0
	CodeBadParams = 400
	CodeSensitive = 20001
)

// Options configure the fake. Zero values take defaults.
type Options struct {
	Token string // the one token accepted; default "test-token"
	// Queue is how long a task stays pending; Duration how long txt2img,
	// img2img and anime tasks then work (default 300ms), SuperResDuration
	// super-resolution (default ¾ of Duration: the seed's 6 s against 8 s).
	Queue            time.Duration
	Duration         time.Duration
	SuperResDuration time.Duration
	// CallbackRetries are the waits before each new try of a callback that
	// failed; default 20ms, 50ms, 100ms (three retries).
	CallbackRetries []time.Duration
	// Hang bounds how long FaultTimeout holds a reply; default 30s.
	Hang time.Duration
	// Paths under /aigc, and the task each expects.
	Txt2ImgPath, Img2ImgPath, AnimePath, SuperResPath, QueryPath string
	Txt2ImgTask, Img2ImgTask, AnimeTask, SuperResTask            string
	// Styles and Samplers accepted; MaxSide bounds w and h (768);
	// SuperResMaxSide bounds a super-resolution input's sides (1024).
	Styles          []string
	Samplers        []string
	MaxSide         int
	SuperResMaxSide int
	Now             func() time.Time
}

func (o *Options) fill() {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&o.Token, "test-token")
	def(&o.Txt2ImgPath, "/txt2img")
	def(&o.Img2ImgPath, "/img2img")
	def(&o.AnimePath, "/portrait2anime")
	def(&o.SuperResPath, "/superres")
	def(&o.QueryPath, "/query-image")
	def(&o.Txt2ImgTask, "txt2img.sd")
	def(&o.Img2ImgTask, "img2img.sd")
	def(&o.AnimeTask, "img2img.acg")
	def(&o.SuperResTask, "img2img.sr")
	if o.Duration <= 0 {
		o.Duration = 300 * time.Millisecond
	}
	if o.SuperResDuration <= 0 {
		o.SuperResDuration = o.Duration * 3 / 4
	}
	if o.CallbackRetries == nil {
		o.CallbackRetries = []time.Duration{20 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond}
	}
	if o.Hang <= 0 {
		o.Hang = 30 * time.Second
	}
	if len(o.Styles) == 0 {
		o.Styles = []string{"Chinese_style", "American_style", "Cute_style", "Gorgeous_style", "Horrible_style", "Avatar_style",
			"Fighting_style", "Machine_style", "Cyberfuture_style", "JOJO_style", "Bunny_style", "CatEar_style"}
	}
	if len(o.Samplers) == 0 {
		o.Samplers = []string{"ddim", "plms", "klms", "solver", "k_euler", "k_euler_a"}
	}
	if o.MaxSide <= 0 {
		o.MaxSide = 768
	}
	if o.SuperResMaxSide <= 0 {
		o.SuperResMaxSide = 1024
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Server is the running fake.
type Server struct {
	opts   Options
	srv    *httptest.Server
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	client *http.Client

	mu         sync.Mutex
	tasks      map[string]*task
	order      []string
	images     map[string]*task
	faults     []Fault
	billed     int
	violations []string
}

// task is one task at the fake.
type task struct {
	uid, name, path, text, notify string
	fault                         Fault
	created                       time.Time
	work                          time.Duration
	header                        http.Header
	body, params                  map[string]any
	input                         image.Image
	reason                        string // set: the task ends in exception
	image                         string // the result's file name at the cdn and cos
	billed                        int
	cbStarted, cbDelivered        bool
	cbAttempts                    int

	once sync.Once
	png  []byte
	size image.Point
}

// New starts a fake on a loopback port. Close it when done.
func New(opts Options) *Server {
	opts.fill()
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{opts: opts, ctx: ctx, cancel: cancel, client: &http.Client{Timeout: 5 * time.Second},
		tasks: make(map[string]*task), images: make(map[string]*task)}
	m := http.NewServeMux()
	for _, p := range []string{opts.Txt2ImgPath, opts.Img2ImgPath, opts.AnimePath, opts.SuperResPath} {
		m.HandleFunc("POST /aigc"+p, s.handleSubmit)
	}
	m.HandleFunc("POST /aigc"+opts.QueryPath, s.handleQuery)
	m.HandleFunc("GET /cdn/aigc/images/{file}", s.handleImage)
	m.HandleFunc("GET /cos/aigc/images/{file}", s.handleImage)
	s.srv = httptest.NewServer(m)
	s.wg.Add(1)
	go s.loop()
	return s
}

// BaseURL is the adapter's base_url: the fake's /aigc.
func (s *Server) BaseURL() string { return s.srv.URL + "/aigc" }

// URL is the fake's root.
func (s *Server) URL() string { return s.srv.URL }

// Token is the token the fake accepts.
func (s *Server) Token() string { return s.opts.Token }

// Close stops the fake, cutting off held replies and callbacks under way.
func (s *Server) Close() {
	s.cancel()
	s.srv.Close()
	s.wg.Wait()
}

// Inject makes the next submission act out f, whatever its prompt says.
func (s *Server) Inject(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, f)
}

// Billed counts billed calls overall: every authenticated submission or
// query the fake answered with its JSON.
func (s *Server) Billed() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.billed
}

// BilledFor counts the billed calls about one task: its submission and its queries.
func (s *Server) BilledFor(uid string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.tasks[uid]; ok {
		return t.billed
	}
	return 0
}

// Violations lists what clients sent that the documents do not allow:
// missing headers, a body unlike the Python sample, a wrong task for a path.
func (s *Server) Violations() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.violations)
}

// Task is a snapshot of one task.
type Task struct {
	UID, Task, Path, Text, NotifyURL string
	Fault                            Fault
	Status                           string // as a query would say now
	Billed                           int
	Header                           http.Header
	Body                             map[string]any // the submission, numbers as json.Number
	CallbackAttempts                 int
	CallbackDelivered                bool
	// Done is when the task finished on the fake's own clock (the end_time
	// it reports), so a client's added latency can be measured from it.
	Done time.Time
}

// Tasks returns every task, oldest first.
func (s *Server) Tasks() []Task {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.opts.Now()
	out := make([]Task, 0, len(s.order))
	for _, uid := range s.order {
		t := s.tasks[uid]
		out = append(out, Task{UID: t.uid, Task: t.name, Path: t.path, Text: t.text, NotifyURL: t.notify, Fault: t.fault,
			Status: s.status(t, now), Billed: t.billed, Header: t.header.Clone(), Body: t.body,
			CallbackAttempts: t.cbAttempts, CallbackDelivered: t.cbDelivered, Done: t.created.Add(s.opts.Queue + t.work)})
	}
	return out
}

func (s *Server) violation(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.violations = append(s.violations, fmt.Sprintf(format, args...))
}

func reply(w http.ResponseWriter, status, code int, msg string, data any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"code": code, "msg": msg, "data": data})
}

// authorized checks the three headers [S]; a missing or malformed one is a
// violation, a wrong token only a 401.
func (s *Server) authorized(w http.ResponseWriter, r *http.Request) bool {
	if got := r.Header.Get("Authorization-Type"); got != "apikey" {
		s.violation("%s: Authorization-Type %q, want apikey", r.URL.Path, got)
		reply(w, http.StatusUnauthorized, 401, "Authorization-Type 必须为 apikey", nil)
		return false
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		s.violation("%s: Content-Type %q, want application/json", r.URL.Path, r.Header.Get("Content-Type"))
		reply(w, http.StatusBadRequest, 400, "Content-Type 必须为 application/json", nil)
		return false
	}
	switch tok := r.Header.Get("X-APISpace-Token"); {
	case tok == "":
		s.violation("%s: no X-APISpace-Token", r.URL.Path)
		reply(w, http.StatusUnauthorized, 401, "缺少 X-APISpace-Token", nil)
		return false
	case tok != s.opts.Token:
		reply(w, http.StatusUnauthorized, 401, "token 无效 (invalid token)", nil)
		return false
	}
	return true
}

func decode(r *http.Request) (map[string]any, error) {
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	return m, nil
}

// required lists each task's params, per the seed's Python sample for
// txt2img; the others add or use an image link.
func (s *Server) required(path string) (task string, keys []string) {
	sd := []string{"model", "text", "w", "h", "guidance_scale", "negative_prompt", "sampler", "seed", "num_steps"}
	switch path {
	case s.opts.Txt2ImgPath:
		return s.opts.Txt2ImgTask, sd
	case s.opts.Img2ImgPath:
		return s.opts.Img2ImgTask, append(sd, "url")
	case s.opts.AnimePath:
		return s.opts.AnimeTask, []string{"style"}
	}
	return s.opts.SuperResTask, []string{"url"}
}

func (s *Server) handleSubmit(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(w, r) {
		return
	}
	path := strings.TrimPrefix(r.URL.Path, "/aigc")
	body, err := decode(r)
	if err != nil {
		s.violation("%s: body is not a JSON object: %v", path, err)
		s.bill(nil)
		reply(w, http.StatusOK, CodeBadParams, "参数错误: 请求体不是合法的 JSON", nil)
		return
	}
	params, _ := body["params"].(map[string]any)
	text, _ := params["text"].(string)
	fault := s.fault(text)

	switch fault { // the gateway's failures: nothing billed, no task
	case Fault500:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		io.WriteString(w, `{"code":500,"msg":"服务内部错误"}`)
		return
	case FaultTimeout:
		select {
		case <-r.Context().Done():
		case <-s.ctx.Done():
		case <-time.After(s.opts.Hang):
		}
		reply(w, http.StatusGatewayTimeout, 504, "上游超时", nil)
		return
	case FaultQuota:
		reply(w, http.StatusForbidden, 403, "剩余调用次数不足，请充值 (calls used up)", nil)
		return
	case FaultBadJSON:
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"code":0,"data":{"uid":"`)
		return
	}

	if msg := s.checkShape(path, body, params); msg != "" {
		s.violation("%s: %s", path, msg)
		s.bill(nil)
		reply(w, http.StatusOK, CodeBadParams, "参数错误: "+msg, nil)
		return
	}
	if msg := s.checkValues(path, params); msg != "" {
		s.bill(nil)
		reply(w, http.StatusOK, CodeBadParams, "参数错误: "+msg, nil)
		return
	}
	if fault == FaultSensitive {
		s.bill(nil)
		reply(w, http.StatusOK, CodeSensitive, "提示词包含敏感词 (sensitive prompt)", nil)
		return
	}

	name, _ := body["task"].(string)
	notify, _ := body["notify_url"].(string)
	t := &task{uid: newID(), name: name, path: path, text: text, notify: notify, fault: fault, created: s.opts.Now(),
		work: s.opts.Duration, header: r.Header.Clone(), body: body, params: params, image: newID()}
	if path == s.opts.SuperResPath {
		t.work = s.opts.SuperResDuration
	}
	if link := imageLink(params); link != "" {
		// The vendor fetches the input itself; a link it cannot read fails the task, not the call.
		img, err := s.fetch(r.Context(), link)
		switch {
		case err != nil:
			t.reason = "输入图片下载失败: " + err.Error()
		case path == s.opts.SuperResPath && (img.Bounds().Dx() > s.opts.SuperResMaxSide || img.Bounds().Dy() > s.opts.SuperResMaxSide):
			t.reason = fmt.Sprintf("输入图片过大: 最大 %d", s.opts.SuperResMaxSide)
		default:
			t.input = img
		}
	}
	if fault == FaultException {
		t.reason = "算法执行异常 (algorithm exception)"
	}
	s.mu.Lock()
	s.tasks[t.uid] = t
	s.order = append(s.order, t.uid)
	s.images[t.image] = t
	s.mu.Unlock()
	s.bill(t)
	if t.reason == "" && t.fault != FaultUnsafe && t.fault != FaultForget {
		// The picture is made while the task runs, as at the vendor, so a
		// query that finds it finished answers at once rather than after
		// the render: a client killed mid-call loses no more than a
		// vendor's own answer time.
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.render(t)
		}()
	}
	reply(w, http.StatusOK, CodeOK, "success", map[string]any{"uid": t.uid})
}

// fault picks an injected fault, else a magic word in the prompt.
func (s *Server) fault(text string) Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.faults) > 0 {
		f := s.faults[0]
		s.faults = s.faults[1:]
		return f
	}
	lower := strings.ToLower(text)
	for _, f := range Faults {
		if strings.Contains(lower, string(f)) {
			return f
		}
	}
	return FaultNone
}

func (s *Server) bill(t *task) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.billed++
	if t != nil {
		t.billed++
	}
}

// checkShape is the document's shape: the task for the path, params, the
// same params again at the top level, notify_url. It returns what is wrong.
func (s *Server) checkShape(path string, body, params map[string]any) string {
	want, keys := s.required(path)
	if got, _ := body["task"].(string); got != want {
		return fmt.Sprintf("task %q, want %q for %s", body["task"], want, path)
	}
	if params == nil {
		return "params missing or not an object"
	}
	for _, k := range keys {
		if _, ok := params[k]; !ok {
			return "params." + k + " missing"
		}
	}
	if path == s.opts.AnimePath && imageLink(params) == "" {
		return "params.url missing"
	}
	for k, v := range params {
		if top, ok := body[k]; !ok || !reflect.DeepEqual(top, v) {
			return fmt.Sprintf("top-level %s is %v, params.%s is %v: the sample repeats every param", k, top, k, v)
		}
	}
	if n, ok := body["notify_url"]; !ok {
		return "notify_url missing"
	} else if _, ok := n.(string); !ok {
		return "notify_url is not a string"
	}
	return ""
}

// checkValues are the documented limits [S]: at most 768 a side, prompts
// given, known samplers and styles.
func (s *Server) checkValues(path string, params map[string]any) string {
	switch path {
	case s.opts.Txt2ImgPath, s.opts.Img2ImgPath:
		if text, _ := params["text"].(string); strings.TrimSpace(text) == "" {
			return "text 不能为空"
		}
		for _, k := range []string{"w", "h"} {
			n, err := number(params[k])
			if err != nil || n < 1 || n > float64(s.opts.MaxSide) || n != float64(int(n)) {
				return fmt.Sprintf("%s 必须是 1 到 %d 之间的整数 (got %v)", k, s.opts.MaxSide, params[k])
			}
		}
		for _, k := range []string{"guidance_scale", "seed", "num_steps"} {
			if _, err := number(params[k]); err != nil {
				return fmt.Sprintf("%s 必须是数字", k)
			}
		}
		if sampler, _ := params["sampler"].(string); !slices.Contains(s.opts.Samplers, sampler) {
			return fmt.Sprintf("不支持的 sampler %q", params["sampler"])
		}
		// The callback echoes these params (seed 002); Nolibox types them so.
		for k, kind := range map[string]string{"use_circular": "bool", "clip_skip": "int", "variation_seed": "int", "variation_strength": "number"} {
			v, present := params[k]
			if !present {
				continue
			}
			if _, isBool := v.(bool); kind == "bool" && !isBool {
				return k + " 必须是布尔值"
			}
			if kind != "bool" {
				n, err := number(v)
				if err != nil || (kind == "int" && n != float64(int64(n))) || (k == "variation_strength" && (n < 0 || n > 1)) {
					return k + " 取值错误"
				}
			}
		}
	case s.opts.SuperResPath:
		if v, present := params["is_anime"]; present {
			if _, ok := v.(bool); !ok {
				return "is_anime 必须是布尔值"
			}
		}
	case s.opts.AnimePath:
		if style, _ := params["style"].(string); !slices.Contains(s.opts.Styles, style) {
			return fmt.Sprintf("不支持的 style %q", params["style"])
		}
	}
	return ""
}

func number(v any) (float64, error) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, fmt.Errorf("%v is not a number", v)
	}
	return n.Float64()
}

// imageLink is the input's link: url, or Nolibox's image_url.
func imageLink(params map[string]any) string {
	if u, _ := params["url"].(string); u != "" {
		return u
	}
	u, _ := params["image_url"].(string)
	return u
}

func (s *Server) fetch(ctx context.Context, link string) (image.Image, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, link, nil)
	if err != nil {
		return nil, err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	img, _, err := image.Decode(io.LimitReader(resp.Body, 32<<20))
	return img, err
}

func (s *Server) handleQuery(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(w, r) {
		return
	}
	body, err := decode(r)
	uid, _ := body["uid"].(string)
	if err != nil || uid == "" {
		s.violation("%s: body %v without uid (err %v)", s.opts.QueryPath, body, err)
		s.bill(nil)
		reply(w, http.StatusOK, CodeBadParams, "参数错误: uid 不能为空", nil)
		return
	}
	s.mu.Lock()
	t := s.tasks[uid]
	s.mu.Unlock()
	s.bill(t)
	if t == nil {
		reply(w, http.StatusOK, CodeOK, "success", map[string]any{"uid": uid, "status": "not_found"})
		return
	}
	reply(w, http.StatusOK, CodeOK, "success", s.data(t, s.opts.Now()))
}

// status is the task's status at now: pending, working, finished,
// exception, interrupted or not_found (Nolibox's statuses).
func (s *Server) status(t *task, now time.Time) string {
	el := now.Sub(t.created)
	switch {
	case t.fault == FaultForget:
		return "not_found"
	case el < s.opts.Queue:
		return "pending"
	case el < s.opts.Queue+t.work:
		return "working"
	case t.fault == FaultInterrupted:
		return "interrupted"
	case t.reason != "":
		return "exception"
	}
	return "finished"
}

// data is the task as the query and the callback report it.
func (s *Server) data(t *task, now time.Time) map[string]any {
	s.mu.Lock()
	status := s.status(t, now)
	s.mu.Unlock()
	d := map[string]any{"uid": t.uid, "status": status, "cdn": "", "cos": "", "safe": true, "reason": ""}
	if status == "not_found" || status == "pending" {
		return d
	}
	start := t.created.Add(s.opts.Queue)
	// The backend's keys; the seed's sample writes createtime/starttime (typos).
	d["create_time"] = unix(t.created)
	d["start_time"] = unix(start)
	switch status {
	case "exception":
		d["reason"] = t.reason
	case "finished":
		end := start.Add(t.work)
		d["end_time"] = unix(end)
		d["duration"] = end.Sub(t.created).Seconds()
		if t.fault == FaultUnsafe {
			d["safe"] = false
		} else {
			s.render(t)
			d["cdn"] = s.srv.URL + "/cdn/aigc/images/" + t.image + ".png"
			d["cos"] = s.srv.URL + "/cos/aigc/images/" + t.image + ".png"
		}
	}
	return d
}

func unix(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

// loop calls back every finished task that asked for it.
func (s *Server) loop() {
	defer s.wg.Done()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-tick.C:
		}
		now := s.opts.Now()
		var due []*task
		s.mu.Lock()
		for _, uid := range s.order {
			t := s.tasks[uid]
			if st := s.status(t, now); t.notify != "" && !t.cbStarted && (st == "finished" || st == "exception") {
				t.cbStarted = true
				due = append(due, t)
			}
		}
		s.mu.Unlock()
		for _, t := range due {
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.callBack(t, now)
			}()
		}
	}
}

// callBack POSTs the seed's payload to the task's notify_url, retrying on
// anything but a 2xx.
func (s *Server) callBack(t *task, now time.Time) {
	d := s.data(t, now)
	delete(d, "status") // not in the seed's callback
	d["elapsed_times"] = map[string]any{
		"pending": s.opts.Queue.Seconds(), "run_algorithm": t.work.Seconds() * 0.8,
		"algorithm_latencies": map[string]any{"get_model": 0.1, "inference": t.work.Seconds() * 0.7, "cleanup": 0.000007867813110351562, "__total": t.work.Seconds() * 0.8},
		"upload":              0.05, "audit": 0.05,
	}
	model := map[string]any{"callback_url": "", "use_circular": "", "variation_seed": 0, "variation_strength": 0, "variations": []any{},
		"is_anime": "", "version": "dreamlike_v1", "clip_skip": -1, "custom_embeddings": map[string]any{}, "max_wh": 1024}
	maps.Copy(model, t.params)
	d["request"] = map[string]any{"task": t.name, "model": model}
	body, _ := json.Marshal(map[string]any{"uid": t.uid, "success": d["reason"] == "", "data": d})
	if t.fault == FaultBadCallback {
		body = pythonish(body)
	}
	for attempt := 0; ; attempt++ {
		ok := s.post(t.notify, body)
		s.mu.Lock()
		t.cbAttempts++
		t.cbDelivered = ok
		s.mu.Unlock()
		if ok || attempt >= len(s.opts.CallbackRetries) {
			return
		}
		select {
		case <-s.ctx.Done():
			return
		case <-time.After(s.opts.CallbackRetries[attempt]):
		}
	}
}

// pythonish writes JSON the way the seed's sample does: curly quotes and
// Python's True and False.
func pythonish(body []byte) []byte {
	s := strings.NewReplacer(`":true`, `”: True`, `":false`, `”: False`, `"`, `“`).Replace(string(body))
	return []byte(s)
}

func (s *Server) post(url string, body []byte) bool {
	req, err := http.NewRequestWithContext(s.ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return false
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return false
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode >= 200 && resp.StatusCode <= 299
}

func (s *Server) handleImage(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimSuffix(r.PathValue("file"), ".png")
	s.mu.Lock()
	t := s.images[name]
	ok := t != nil && t.fault != FaultExpired && t.fault != FaultUnsafe && s.status(t, s.opts.Now()) == "finished"
	s.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	s.render(t)
	w.Header().Set("Content-Type", "image/png")
	w.Write(t.png)
}

// ImageSize is the size of a finished task's result, once made.
func (s *Server) ImageSize(uid string) image.Point {
	s.mu.Lock()
	t := s.tasks[uid]
	s.mu.Unlock()
	if t == nil {
		return image.Point{}
	}
	s.render(t)
	return t.size
}

// render makes the task's PNG once: txt2img a picture of w×h from the
// prompt, img2img the input at w×h tinted by the prompt, anime the input
// posterised, super-resolution the input 4× each side.
func (s *Server) render(t *task) {
	t.once.Do(func() {
		var img *image.RGBA
		switch t.path {
		case s.opts.Txt2ImgPath, s.opts.Img2ImgPath:
			w, _ := number(t.params["w"])
			h, _ := number(t.params["h"])
			img = image.NewRGBA(image.Rect(0, 0, int(w), int(h)))
			c := hue(t.text + fmt.Sprint(t.params["seed"]))
			for y := range img.Rect.Dy() {
				for x := range img.Rect.Dx() {
					k := uint8(255 * y / max(img.Rect.Dy(), 1))
					img.SetRGBA(x, y, color.RGBA{c.R ^ k, c.G, c.B ^ uint8(x), 255})
				}
			}
			if t.input != nil {
				in := scale(t.input, int(w), int(h))
				for i := 0; i < len(img.Pix); i += 4 {
					img.Pix[i], img.Pix[i+1], img.Pix[i+2] = in.Pix[i]/2+img.Pix[i]/2, in.Pix[i+1]/2+img.Pix[i+1]/2, in.Pix[i+2]/2+img.Pix[i+2]/2
				}
			}
		case s.opts.AnimePath:
			b := t.input.Bounds()
			img = scale(t.input, b.Dx(), b.Dy())
			c := hue(fmt.Sprint(t.params["style"]))
			for i := 0; i < len(img.Pix); i += 4 {
				img.Pix[i], img.Pix[i+1], img.Pix[i+2] = img.Pix[i]&0xC0|c.R>>2, img.Pix[i+1]&0xC0|c.G>>2, img.Pix[i+2]&0xC0|c.B>>2
			}
		default:
			b := t.input.Bounds()
			img = scale(t.input, 4*b.Dx(), 4*b.Dy())
		}
		var buf bytes.Buffer
		if err := png.Encode(&buf, img); err != nil {
			panic(err) // encoding an in-memory RGBA cannot fail
		}
		t.png, t.size = buf.Bytes(), img.Rect.Size()
	})
}

func hue(s string) color.RGBA {
	h := fnv.New32a()
	h.Write([]byte(s))
	v := h.Sum32()
	return color.RGBA{uint8(v), uint8(v >> 8), uint8(v >> 16), 255}
}

// scale resizes src to w×h, nearest neighbour.
func scale(src image.Image, w, h int) *image.RGBA {
	b := src.Bounds()
	in := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	draw.Draw(in, in.Rect, src, b.Min, draw.Src)
	out := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		sy := y * b.Dy() / h
		for x := range w {
			sx := x * b.Dx() / w
			copy(out.Pix[out.PixOffset(x, y):out.PixOffset(x, y)+4], in.Pix[in.PixOffset(sx, sy):in.PixOffset(sx, sy)+4])
		}
	}
	return out
}

func newID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
