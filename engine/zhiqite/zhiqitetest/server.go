// Package zhiqitetest is a fake Zhiqite AIGC image server (seeds/001) on
// loopback, for the adapter's tests and the bot's end-to-end tests.
//
// It checks authentication as the Aliyun API gateway does (APPCODE, or the
// HmacSHA256 signature recomputed from the request), insists on
// Content-Type application/json;charset=UTF-8, validates bodies against
// the document's rules, answers in the document's own JSON shapes, moves
// tasks through queued → running (progress, base64 preview) → uploading →
// done over a configurable time, serves real result images, calls back with
// the document's retry schedule (shortened), and counts billed calls.
//
// Failures come programmatically (FailNext, SetFate, SetQuota, Forget) or by
// magic words in a /draw prompt, so a test through the real binary can ask
// for them:
//
//	fail500     the first submission of the task gets HTTP 500 (no task made)
//	badjson     the first submission gets a reply that is not JSON (no task made)
//	hang        the first submission makes the task, then never answers (also "timeout")
//	quota       HTTP 403 with X-Ca-Error-Message: Quota Exhausted
//	sensitive   refused: code "400", msg about sensitive words
//	unsafe      every image fails the audit (img_audit_status false)
//	deleted     the first image is deleted (image_status 2)
//	vendorfail  the task ends failed (status 0)
//	expired     result links answer 404
//	forget      queries say the task does not exist; no callback
//	nocallback  no callback is sent
//
// Where the document is silent the fake makes a choice, marked [I]: an
// unknown task is code "400" "任务不存在"; a reused task id is code "400"
// "任务ID重复"; the callback body is the query reply for the finished task.
package zhiqitetest

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image"
	"io"
	"math"
	"math/rand/v2"
	"mime"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// BasePath is where the API sits on the gateway.
const BasePath = "/AIGCImgOpenServ/"

// Options configure a fake. Zero values take the defaults.
type Options struct {
	// AppCode is the accepted APPCODE; AppKey and AppSecret the accepted signature credentials.
	// With neither, every call is refused.
	AppCode, AppKey, AppSecret string
	// MoreAppCodes are accepted too: other accounts of the same API (account pools).
	MoreAppCodes []string
	// Duration is how long an SD task takes (default 3s); ToolDuration a tool task (default 2s).
	Duration, ToolDuration time.Duration
	// CallbackDelays are the waits before each retry of a callback; the
	// default is the seed's 3, 5, 15, 30, 60, 600, 3600 s divided by 100.
	// After the last, its wait repeats.
	CallbackDelays []time.Duration
	// CallbackRetries bounds the retries after the first POST (the seed: 10).
	CallbackRetries int
	// Hang is how long a hanging call holds its reply (default 30s), unless the client leaves.
	Hang time.Duration
	// ToolStatusString sends tool status as a string, as the queryTask table has it,
	// instead of a number, as its example has it.
	ToolStatusString bool
	// DoneIsOne reports a finished tool task with status 1, the reading of
	// roop's and queryTask's tables ("1:成功"), instead of enhance's 2.
	DoneIsOne bool
	// Catalog is what the lists serve; zero: DefaultCatalog.
	Catalog *Catalog
	// RefuseEmptyVAEName refuses queryVaeList without a concrete
	// vaeFileName: the seed marks it required and shows only a real name.
	RefuseEmptyVAEName bool
	// Now is the fake's clock for "仅查询当月" (only the current month, in
	// Beijing time, is queryable); nil: time.Now.
	Now func() time.Time
	// Logf, if set, hears what the fake does (t.Logf).
	Logf func(format string, args ...any)
}

// Fault is a failure of one call.
type Fault int

const (
	Fault500     Fault = iota + 1 // HTTP 500 from the backend
	FaultTimeout                  // the call is carried out, but the reply hangs
	FaultBadJSON                  // HTTP 200 with a body that is not JSON
	FaultQuota                    // HTTP 403, X-Ca-Error-Message: Quota Exhausted
	FaultRefuse                   // code "400" with a message about a bad parameter
)

// Fate is what becomes of a task.
type Fate struct {
	Unsafe     bool          // every image fails the audit
	Deleted    int           // this many images, from the first, are deleted
	Fail       bool          // the task fails
	Expired    bool          // result links answer 404
	Forget     bool          // the vendor forgets the task
	NoCallback bool          // no callback is sent
	Duration   time.Duration // overrides the task's duration
	// LinkLag keeps a tool task's result link answering 404 this long
	// after the task reports status 2 (a storage that lags the status).
	LinkLag time.Duration
}

// Call is one request the fake received.
type Call struct {
	Endpoint string // the path after BasePath
	Header   http.Header
	Body     []byte
	Status   int // HTTP status of the reply
}

// Server is the fake. Close it when done.
type Server struct {
	// URL is the base URL to configure the adapter with; it ends in BasePath.
	URL string

	opts   Options
	hs     *httptest.Server
	client *http.Client
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu        sync.Mutex
	tasks     map[string]*task
	billed    int
	billedBy  map[string]int
	faults    []queuedFault
	fates     []Fate
	calls     []Call
	nonces    map[string]time.Time
	once      map[string]bool // magic words that act once per task id
	quota     int             // calls left; negative: no limit
	callbacks map[string]*callbackState
	seq       int
}

type queuedFault struct {
	endpoint string
	fault    Fault
}

type callbackState struct {
	attempts  int
	delivered bool
}

type task struct {
	id       string
	vendorID string // tools' own taskId
	tool     string // "" for SD, "roop", "enhance"
	created  time.Time
	duration time.Duration
	images   [][]byte
	ext      string
	seeds    []int64
	fate     Fate
	callback string
}

// New starts a fake on 127.0.0.1.
func New(opts Options) *Server {
	if opts.Duration <= 0 {
		opts.Duration = 3 * time.Second
	}
	if opts.ToolDuration <= 0 {
		opts.ToolDuration = 2 * time.Second
	}
	if opts.CallbackDelays == nil {
		for _, sec := range []int{3, 5, 15, 30, 60, 600, 3600} {
			opts.CallbackDelays = append(opts.CallbackDelays, time.Duration(sec)*time.Second/100)
		}
	}
	if opts.CallbackRetries <= 0 {
		opts.CallbackRetries = 10
	}
	if opts.Hang <= 0 {
		opts.Hang = 30 * time.Second
	}
	if opts.Catalog == nil {
		c := DefaultCatalog()
		opts.Catalog = &c
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		opts: opts, ctx: ctx, cancel: cancel,
		client:   &http.Client{Timeout: 10 * time.Second},
		tasks:    make(map[string]*task),
		billedBy: make(map[string]int), nonces: make(map[string]time.Time),
		once: make(map[string]bool), quota: -1, callbacks: make(map[string]*callbackState),
	}
	s.hs = httptest.NewServer(s) // httptest listens on 127.0.0.1
	s.URL = s.hs.URL + BasePath
	return s
}

// Close stops the server and its callbacks.
func (s *Server) Close() {
	s.cancel()
	s.hs.Close()
	s.wg.Wait()
}

// FailNext makes the next call to endpoint (e.g. "saas/sd/v2/queryTaskInfo";
// "" for any) fail with f. Faults queue up.
func (s *Server) FailNext(endpoint string, f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, queuedFault{endpoint, f})
}

// SetFate decides the fate of the next task submitted. Fates queue up.
func (s *Server) SetFate(f Fate) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fates = append(s.fates, f)
}

// SetQuota leaves n billed calls; then every call is 403 Quota Exhausted. Negative: no limit.
func (s *Server) SetQuota(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.quota = n
}

// Forget makes the vendor forget task id.
func (s *Server) Forget(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t := s.tasks[id]; t != nil {
		t.fate.Forget = true
	}
}

// Billed is the number of billed calls so far: every call answered with HTTP 200.
func (s *Server) Billed() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.billed
}

// BilledFor is the number of billed calls that named task id.
func (s *Server) BilledFor(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.billedBy[id]
}

// Calls returns the calls received so far.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.calls...)
}

// CallbackAttempts is how many times the fake POSTed task id's callback, and
// whether one was acknowledged with code 200.
func (s *Server) CallbackAttempts(id string) (attempts int, delivered bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.callbacks[id]; c != nil {
		return c.attempts, c.delivered
	}
	return 0, false
}

// Tasks returns the ids of the tasks submitted so far.
func (s *Server) Tasks() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]string, 0, len(s.tasks))
	for id := range s.tasks {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// ServeHTTP is the gateway and the vendor behind it, plus the result file host.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if (r.Method == http.MethodGet || r.Method == http.MethodHead) && strings.HasPrefix(r.URL.Path, "/files/") {
		s.serveFile(w, r)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 10<<20))
	if err != nil {
		http.Error(w, "read body", http.StatusBadRequest)
		return
	}
	endpoint, ok := strings.CutPrefix(r.URL.Path, BasePath)
	rec := &recorder{ResponseWriter: w}
	switch {
	case !ok:
		gatewayError(rec, http.StatusNotFound, "Invalid Url")
	case r.Method != http.MethodPost:
		gatewayError(rec, http.StatusMethodNotAllowed, "Invalid Method")
	default:
		s.handle(rec, r, endpoint, body)
	}
	s.record(r, endpoint, body, rec.status())
}

type recorder struct {
	http.ResponseWriter
	code int
}

func (r *recorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

func (r *recorder) status() int {
	if r.code == 0 {
		return http.StatusOK
	}
	return r.code
}

// record logs the call and bills it if it was answered with HTTP 200.
func (s *Server) record(r *http.Request, endpoint string, body []byte, status int) {
	id := taskIDOf(body)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, Call{Endpoint: endpoint, Header: r.Header.Clone(), Body: body, Status: status})
	if status == http.StatusOK {
		s.billed++
		if id != "" {
			s.billedBy[id]++
		}
		if s.quota > 0 {
			s.quota--
		}
	}
	s.opts.Logf("zhiqitetest: %s %s → %d (task %q)", r.Method, endpoint, status, id)
}

// taskIDOf finds the task a call names: id_task (SD submissions) or businessTaskId.
func taskIDOf(body []byte) string {
	var b struct {
		BusinessTaskID any `json:"businessTaskId"`
		Scripts        struct {
			IDTask any `json:"id_task"`
		} `json:"alwayson_scripts"`
		Scripts2 struct {
			IDTask any `json:"id_task"`
		} `json:"always_on_scripts"`
	}
	if json.Unmarshal(body, &b) != nil {
		return ""
	}
	for _, v := range []any{b.Scripts.IDTask, b.Scripts2.IDTask, b.BusinessTaskID} {
		if v != nil {
			return fmt.Sprint(v)
		}
	}
	return ""
}

func gatewayError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("X-Ca-Error-Message", msg)
	w.Header().Set("X-Ca-Request-Id", "FAKE-"+strconv.Itoa(rand.IntN(1e6)))
	w.WriteHeader(status)
}

// reply writes the vendor's envelope with HTTP 200.
func reply(w http.ResponseWriter, code, msg string, data any) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	b, _ := json.Marshal(map[string]any{"code": code, "msg": msg, "data": data})
	w.Write(b)
}

func refuse(w http.ResponseWriter, msg string) { reply(w, "400", msg, nil) }

func (s *Server) handle(w http.ResponseWriter, r *http.Request, endpoint string, body []byte) {
	if status, msg := s.authenticate(r, body); status != 0 {
		gatewayError(w, status, msg)
		return
	}
	s.mu.Lock()
	quotaLeft := s.quota
	fault := s.takeFault(endpoint)
	s.mu.Unlock()
	if quotaLeft == 0 || fault == FaultQuota {
		gatewayError(w, http.StatusForbidden, "Quota Exhausted")
		return
	}
	switch fault {
	case Fault500:
		http.Error(w, "Internal Server Error", http.StatusInternalServerError)
		return
	case FaultBadJSON:
		w.Header().Set("Content-Type", "application/json;charset=UTF-8")
		io.WriteString(w, `{"code":"200","msg":"succ`)
		return
	case FaultRefuse:
		refuse(w, "参数错误")
		return
	case FaultTimeout:
		// Do the work, then hold the reply: the caller's submission exists but it never hears so.
		defer s.hang(r.Context())
	}
	if ct, params, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || ct != "application/json" || !strings.EqualFold(params["charset"], "UTF-8") {
		refuse(w, "Content-Type必须为application/json;charset=UTF-8")
		return
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var in map[string]any
	if err := dec.Decode(&in); err != nil {
		refuse(w, "请求参数格式错误")
		return
	}
	switch {
	case endpoint == "saas/sd/v2/text2image" || endpoint == "saas/sd/v2/image2image" || endpoint == "saas/sd/v2/controlnet":
		s.submitSD(w, r, endpoint, in)
	case endpoint == "saas/sd/v2/queryTaskInfo":
		s.queryTaskInfo(w, in)
	case endpoint == "saas/tool/roop" || endpoint == "saas/tool/enhance":
		s.submitTool(w, r, strings.TrimPrefix(endpoint, "saas/tool/"), in)
	case strings.HasPrefix(endpoint, "saas/tool/") && strings.HasSuffix(endpoint, "/queryTask"):
		s.queryTool(w, strings.TrimSuffix(strings.TrimPrefix(endpoint, "saas/tool/"), "/queryTask"), in)
	case endpoint == "saas/sd/v2/queryModelList", endpoint == "saas/sd/v2/queryLoraList",
		endpoint == "saas/sd/v2/queryVaeList", endpoint == "saas/sd/v2/queryEmbeddingList":
		s.list(w, endpoint, in)
	default:
		gatewayError(w, http.StatusNotFound, "Invalid Url")
	}
}

// hang holds a reply until the client leaves, the fake closes, or Hang passes.
func (s *Server) hang(ctx context.Context) {
	select {
	case <-ctx.Done():
	case <-s.ctx.Done():
	case <-time.After(s.opts.Hang):
	}
}

func (s *Server) takeFault(endpoint string) Fault {
	for i, f := range s.faults {
		if f.endpoint == "" || f.endpoint == endpoint {
			s.faults = append(s.faults[:i], s.faults[i+1:]...)
			return f.fault
		}
	}
	return 0
}

// authenticate checks the APPCODE or the signature as the API gateway does.
// It returns 0 when the call may pass, else the status and X-Ca-Error-Message.
func (s *Server) authenticate(r *http.Request, body []byte) (int, string) {
	if a := r.Header.Get("Authorization"); a != "" {
		code, ok := strings.CutPrefix(a, "APPCODE ")
		for _, want := range append([]string{s.opts.AppCode}, s.opts.MoreAppCodes...) {
			if ok && want != "" && subtle.ConstantTimeCompare([]byte(strings.TrimSpace(code)), []byte(want)) == 1 {
				return 0, ""
			}
		}
		return http.StatusUnauthorized, "Invalid AppCode"
	}
	key := r.Header.Get("X-Ca-Key")
	if key == "" {
		return http.StatusUnauthorized, "Missing AppCode or AppKey"
	}
	if s.opts.AppKey == "" || key != s.opts.AppKey {
		return http.StatusBadRequest, "Invalid AppKey"
	}
	if m := r.Header.Get("X-Ca-Signature-Method"); m != "" && m != "HmacSHA256" {
		return http.StatusBadRequest, "Invalid Signature Method"
	}
	ms, err := strconv.ParseInt(r.Header.Get("X-Ca-Timestamp"), 10, 64)
	if err != nil || time.Since(time.UnixMilli(ms)).Abs() > 15*time.Minute {
		return http.StatusBadRequest, "Invalid Timestamp"
	}
	nonce := r.Header.Get("X-Ca-Nonce")
	if nonce != "" {
		s.mu.Lock()
		_, used := s.nonces[nonce]
		s.nonces[nonce] = time.Now()
		s.mu.Unlock()
		if used {
			return http.StatusBadRequest, "Nonce Used"
		}
	}
	if m := r.Header.Get("Content-MD5"); m != "" {
		sum := md5.Sum(body)
		if m != base64.StdEncoding.EncodeToString(sum[:]) {
			return http.StatusBadRequest, "Invalid Content-MD5"
		}
	}
	sts := serverStringToSign(r)
	mac := hmac.New(sha256.New, []byte(s.opts.AppSecret))
	mac.Write([]byte(sts))
	want := base64.StdEncoding.EncodeToString(mac.Sum(nil))
	if subtle.ConstantTimeCompare([]byte(want), []byte(r.Header.Get("X-Ca-Signature"))) != 1 {
		// The gateway shows its string to sign, with # for line breaks.
		return http.StatusBadRequest, "Invalid Signature, Server StringToSign:`" + strings.ReplaceAll(sts, "\n", "#") + "`"
	}
	return 0, ""
}

// serverStringToSign rebuilds the string to sign from the request, as the
// gateway does, independently of the adapter's code.
func serverStringToSign(r *http.Request) string {
	lines := []string{r.Method, r.Header.Get("Accept"), r.Header.Get("Content-MD5"), r.Header.Get("Content-Type"), r.Header.Get("Date")}
	var names []string
	for _, n := range strings.Split(r.Header.Get("X-Ca-Signature-Headers"), ",") {
		if n = strings.ToLower(strings.TrimSpace(n)); n != "" {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	var hdr strings.Builder
	for _, n := range names {
		fmt.Fprintf(&hdr, "%s:%s\n", n, r.Header.Get(n))
	}
	res := r.URL.Path
	if q := r.URL.Query(); len(q) > 0 {
		keys := make([]string, 0, len(q))
		for k := range q {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for i, k := range keys {
			sep := "&"
			if i == 0 {
				sep = "?"
			}
			res += sep + k
			if v := q.Get(k); v != "" {
				res += "=" + v
			}
		}
	}
	return strings.Join(lines, "\n") + "\n" + hdr.String() + res
}

// samplers are sampler_index's 17 documented values.
var samplers = map[string]bool{
	"Euler a": true, "Euler": true, "LMS": true, "Heun": true, "DPM2": true, "DPM2 a": true, "DPM++ 2S a": true,
	"DPM++ 2M": true, "DPM++ SDE": true, "DPM fast": true, "DPM adaptive": true, "LMS Karras": true,
	"DPM2 Karras": true, "DPM2 a Karras": true, "DPM++ 2S a Karras": true, "DPM++ SDE Karras": true, "DPM++ 2M Karras": true,
}

// The controlnet table's lists, as the seed has them.
var (
	controlModules = []string{"canny", "depth_midas", "lineart_realistic", "mlsd", "normal_bae", "openpose", "scribble_xdog", "seg_ufade20k", "inpaint_global_harmonious"}
	controlModels  = []string{"control_v11p_sd15_canny", "control_v11f1p_sd15_depth", "control_v11p_sd15_lineart", "control_v11p_sd15_mlsd",
		"control_v11p_sd15_normal_bae", "control_v11p_sd15_openpose", "control_v11p_sd15_scribble", "control_v11p_sd15_seg",
		"control_v1p_sd15_brightness", "control_v1p_sd15_qrcode",
		"control_v11p_sd15_inpaint", // [I] from the ADetailer table's list, not the controlnet one
	}
)

// checkControlnet checks alwayson_scripts.controlnet as the table says:
// required, its args' module and model (required) from the lists, weight
// in [0,2], guidance_start and guidance_end in [0,1]. It returns the first
// unit's image link (the unit's, else the scripts' image_link).
func checkControlnet(sc map[string]any) (string, string) {
	cn, ok := sc["controlnet"].(map[string]any)
	if !ok {
		return "", "controlnet不能为空"
	}
	args, _ := cn["args"].([]any)
	if len(args) == 0 {
		return "", "controlnet.args不能为空"
	}
	link := ""
	for i, a := range args {
		u, ok := a.(map[string]any)
		if !ok {
			return "", "controlnet.args格式错误"
		}
		module, _ := u["module"].(string)
		model, _ := u["model"].(string)
		if !slices.Contains(controlModules, module) {
			return "", "module不支持: " + module
		}
		if !slices.Contains(controlModels, model) {
			return "", "model不支持: " + model
		}
		for k, hi := range map[string]float64{"weight": 2, "guidance_start": 1, "guidance_end": 1} {
			if v, present := u[k]; present {
				if f, ok := floatOf(v); !ok || f < 0 || f > hi {
					return "", k + "取值范围错误"
				}
			}
		}
		if l, _ := u["image_link"].(string); i == 0 {
			link = l
		}
	}
	if link == "" {
		link, _ = sc["image_link"].(string)
	}
	if link == "" {
		return "", "controlnet图片不能为空"
	}
	return link, ""
}

// checkHires: hr_scale is typed integer; hr_resize_x/y in [0,2048], multiples of 8.
func checkHires(in map[string]any) string {
	if v, present := in["hr_scale"]; present {
		if f, ok := floatOf(v); !ok || f != math.Trunc(f) || f < 1 {
			return "hr_scale必须为正整数"
		}
	}
	for _, k := range []string{"hr_resize_x", "hr_resize_y", "hr_second_pass_steps"} {
		if v, present := in[k]; present {
			n, ok := intOf(v)
			if !ok || n < 0 || (k != "hr_second_pass_steps" && (n > 2048 || n%8 != 0)) {
				return k + "取值错误"
			}
		}
	}
	return ""
}

var loraTag = regexp.MustCompile(`<lora:([^:>]+)(?::([^>]*))?>`)

// magic reports whether prompt holds word, and for once-words whether this
// is the first time for task id.
func (s *Server) magic(prompt, word, id string, once bool) bool {
	if !strings.Contains(strings.ToLower(prompt), word) {
		return false
	}
	if !once {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	key := word + "\x00" + id
	if s.once[key] {
		return false
	}
	s.once[key] = true
	return true
}

func (s *Server) submitSD(w http.ResponseWriter, r *http.Request, endpoint string, in map[string]any) {
	prompt, _ := in["prompt"].(string)
	if strings.TrimSpace(prompt) == "" {
		refuse(w, "prompt不能为空")
		return
	}
	sc, ok := in["alwayson_scripts"].(map[string]any)
	if !ok {
		sc, ok = in["always_on_scripts"].(map[string]any)
	}
	if !ok {
		refuse(w, "alwayson_scripts不能为空")
		return
	}
	id, _ := sc["id_task"].(string)
	if strings.TrimSpace(id) == "" {
		refuse(w, "id_task不能为空")
		return
	}
	model, _ := sc["sd_model_checkpoint"].(string)
	if !s.onlineModel(model) {
		refuse(w, "模型不存在: "+model)
		return
	}
	for _, m := range loraTag.FindAllStringSubmatch(prompt, -1) {
		if !s.onlineLoRA(m[1]) {
			refuse(w, "lora不存在: "+m[1])
			return
		}
	}
	// The table marks batch_size required, but the seed's own examples leave
	// it out: the fake accepts both, one image per batch by default.
	iter, batch := 1, 1
	for name, p := range map[string]*int{"n_iter": &iter, "batch_size": &batch} {
		if v, present := in[name]; present {
			if *p, ok = intOf(v); !ok || *p < 1 {
				refuse(w, name+"必须为正整数")
				return
			}
		}
	}
	if iter*batch > 8 { // [I] the fake's own bound
		refuse(w, "生成数量过多")
		return
	}
	width, height := 512, 512
	for name, p := range map[string]*int{"width": &width, "height": &height} {
		if v, present := in[name]; present {
			n, ok := intOf(v)
			if !ok || n <= 0 || n > 1024 || n%8 != 0 {
				refuse(w, name+"取值范围(0,1024]且为8的倍数")
				return
			}
			*p = n
		}
	}
	if v, present := in["cfg_scale"]; present {
		f, ok := floatOf(v)
		if !ok || f < 1 || f > 30 {
			refuse(w, "cfg_scale取值范围[1,30]")
			return
		}
		// The image2image table types cfg_scale "integer"; text2image and
		// controlnet say "number".
		if endpoint == "saas/sd/v2/image2image" && f != math.Trunc(f) {
			refuse(w, "cfg_scale必须为整数")
			return
		}
	}
	if v, present := in["sampler_index"]; present {
		if name, _ := v.(string); !samplers[name] {
			refuse(w, "sampler_index不支持: "+fmt.Sprint(v))
			return
		}
	}
	seed := rand.Int64N(1 << 32)
	if v, present := in["seed"]; present {
		str := fmt.Sprint(v)
		n, err := strconv.ParseInt(str, 10, 64)
		if err != nil {
			refuse(w, "seed格式错误")
			return
		}
		if n >= 0 {
			seed = n
		}
	}
	ext := "jpg" // the documented default output_image_format
	if f, _ := sc["output_image_format"].(string); f != "" {
		if f != "jpg" && f != "png" {
			refuse(w, "output_image_format只支持jpg或png")
			return
		}
		ext = f
	}
	if msg := checkHires(in); msg != "" {
		refuse(w, msg)
		return
	}
	var control image.Image
	if endpoint == "saas/sd/v2/controlnet" {
		// resize_mode is marked required, but the seed's own example leaves it out.
		link, msg := checkControlnet(sc)
		if msg != "" {
			refuse(w, msg)
			return
		}
		img, err := s.fetch(r.Context(), link)
		if err != nil {
			s.opts.Logf("zhiqitetest: fetch %s: %v", link, err)
			refuse(w, "图片下载失败")
			return
		}
		control = img
	}
	if link, _ := sc["mask_link"].(string); link != "" {
		if endpoint != "saas/sd/v2/image2image" {
			refuse(w, "mask_link仅支持图生图")
			return
		}
		if _, err := s.fetch(r.Context(), link); err != nil {
			refuse(w, "图片下载失败")
			return
		}
	}
	var ref image.Image
	if endpoint != "saas/sd/v2/text2image" {
		link, _ := sc["image_link"].(string)
		if link == "" && endpoint == "saas/sd/v2/image2image" {
			refuse(w, "image_link不能为空")
			return
		}
		if link != "" {
			img, err := s.fetch(r.Context(), link)
			if err != nil {
				s.opts.Logf("zhiqitetest: fetch %s: %v", link, err)
				refuse(w, "图片下载失败")
				return
			}
			ref = img
		}
	}
	switch {
	case s.magic(prompt, "sensitive", id, false):
		refuse(w, "提示词包含敏感词，请修改后重试")
		return
	case s.magic(prompt, "quota", id, false):
		gatewayError(w, http.StatusForbidden, "Quota Exhausted")
		return
	case s.magic(prompt, "fail500", id, true):
		http.Error(w, "Internal Server Error", http.StatusInternalServerError)
		return
	case s.magic(prompt, "badjson", id, true):
		io.WriteString(w, "<html>502 Bad Gateway</html>")
		return
	}
	fate := s.nextFate()
	fate.Unsafe = fate.Unsafe || s.magic(prompt, "unsafe", id, false)
	if s.magic(prompt, "deleted", id, false) && fate.Deleted == 0 {
		fate.Deleted = 1
	}
	fate.Fail = fate.Fail || s.magic(prompt, "vendorfail", id, false)
	fate.Expired = fate.Expired || s.magic(prompt, "expired", id, false)
	fate.Forget = fate.Forget || s.magic(prompt, "forget", id, false)
	fate.NoCallback = fate.NoCallback || s.magic(prompt, "nocallback", id, false)
	t := &task{id: id, duration: s.opts.Duration, ext: ext, fate: fate}
	t.callback, _ = in["callbackUrl"].(string)
	for i := range iter * batch {
		t.seeds = append(t.seeds, seed+int64(i))
		var img image.Image = paint(width, height, promptSeed(prompt, seed+int64(i)))
		if ref != nil {
			img = blend(img.(*image.RGBA), ref)
		}
		if control != nil {
			img = blend(img.(*image.RGBA), control)
		}
		b, err := encode(img, ext)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		t.images = append(t.images, b)
	}
	if !s.add(w, t) {
		return
	}
	if s.magic(prompt, "hang", id, true) || s.magic(prompt, "timeout", id, true) {
		defer s.hang(r.Context())
	}
	reply(w, "200", "success", map[string]any{"task_id": id})
}

// blend mixes a reference image into a result, so image2image visibly used it.
func blend(dst *image.RGBA, ref image.Image) image.Image {
	b, rb := dst.Bounds(), ref.Bounds()
	for y := range b.Dy() {
		for x := range b.Dx() {
			r, g, bl, _ := ref.At(rb.Min.X+x*rb.Dx()/b.Dx(), rb.Min.Y+y*rb.Dy()/b.Dy()).RGBA()
			c := dst.RGBAAt(x, y)
			c.R, c.G, c.B = uint8((int(c.R)+int(r>>8))/2), uint8((int(c.G)+int(g>>8))/2), uint8((int(c.B)+int(bl>>8))/2)
			dst.SetRGBA(x, y, c)
		}
	}
	return dst
}

// add stores a new task and starts its callback; a reused id is refused.
func (s *Server) add(w http.ResponseWriter, t *task) bool {
	if t.fate.Duration > 0 {
		t.duration = t.fate.Duration
	}
	s.mu.Lock()
	if _, dup := s.tasks[t.id]; dup {
		s.mu.Unlock()
		refuse(w, "任务ID重复")
		return false
	}
	s.seq++
	t.created = time.Now() // after the rendering: the task's time starts when it is accepted
	t.vendorID = fmt.Sprintf("pro%d%06d", t.created.UnixMilli(), s.seq)
	s.tasks[t.id] = t
	s.mu.Unlock()
	if t.callback != "" && !t.fate.Forget && !t.fate.NoCallback {
		s.wg.Add(1)
		go s.sendCallback(t)
	}
	return true
}

func (s *Server) nextFate() Fate {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.fates) == 0 {
		return Fate{}
	}
	f := s.fates[0]
	s.fates = s.fates[1:]
	return f
}

func (s *Server) onlineModel(name string) bool {
	for _, m := range s.opts.Catalog.Models {
		if m.Checkpoint == name && m.Status == 1 {
			return true
		}
	}
	return false
}

func (s *Server) onlineLoRA(name string) bool {
	for _, l := range s.opts.Catalog.LoRAs {
		if l.SimplifyName == name && l.Status == 1 {
			return true
		}
	}
	return false
}

func (s *Server) submitTool(w http.ResponseWriter, r *http.Request, tool string, in map[string]any) {
	id := strings.TrimSpace(fmt.Sprint(in["businessTaskId"]))
	if in["businessTaskId"] == nil || id == "" {
		refuse(w, "businessTaskId不能为空")
		return
	}
	var out image.Image
	switch tool {
	case "roop":
		src, _ := in["sourceUrl"].(string)
		dst, _ := in["targetUrl"].(string)
		if src == "" || dst == "" {
			refuse(w, "sourceUrl和targetUrl不能为空")
			return
		}
		face, err1 := s.fetch(r.Context(), src)
		target, err2 := s.fetch(r.Context(), dst)
		if err1 != nil || err2 != nil {
			s.opts.Logf("zhiqitetest: fetch: %v %v", err1, err2)
			refuse(w, "图片下载失败")
			return
		}
		out = swapface(face, target)
	case "enhance":
		link, _ := in["image"].(string)
		if link == "" {
			refuse(w, "image不能为空")
			return
		}
		img, err := s.fetch(r.Context(), link)
		if err != nil {
			s.opts.Logf("zhiqitetest: fetch %s: %v", link, err)
			refuse(w, "图片下载失败")
			return
		}
		b := img.Bounds()
		if b.Dx() > 1536 || b.Dy() > 1536 {
			refuse(w, "图片长宽需小于等于1536")
			return
		}
		mode, _ := intOf(in["resizeMode"])
		f := 2 // the seed example's upscalingResize
		if mode == 1 {
			tw, ok1 := intOf(in["upscalingResizeW"])
			th, ok2 := intOf(in["upscalingResizeH"])
			if !ok1 || !ok2 || tw < 64 || tw > 2048 || th < 64 || th > 2048 {
				refuse(w, "upscalingResizeW/H取值范围[64,2048]")
				return
			}
			f = max(1, min(tw/max(b.Dx(), 1), th/max(b.Dy(), 1)))
		} else if v, present := in["upscalingResize"]; present {
			n, ok := intOf(v)
			if !ok || n < 1 || n > 8 {
				refuse(w, "upscalingResize取值范围[1,8]")
				return
			}
			f = n
		}
		if b.Dx()*f > 4096 || b.Dy()*f > 4096 { // [I] the fake's own memory bound
			refuse(w, "输出图片过大")
			return
		}
		out = upscale(img, f)
	}
	data, err := encode(out, "png")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	t := &task{id: id, tool: tool, duration: s.opts.ToolDuration, ext: "png", images: [][]byte{data}, fate: s.nextFate()}
	t.callback, _ = in["callbackUrl"].(string)
	if !s.add(w, t) {
		return
	}
	// The seed's examples answer a submission with status 1 and the link the
	// result will have; it is not there yet.
	d := map[string]any{"taskId": t.vendorID, "toolTask": tool, "status": 1, "outputImageUrl": s.fileURL(t, 0)}
	if tool == "enhance" {
		d = map[string]any{"businessTaskId": id, "outputImageUrl": s.fileURL(t, 0), "status": 1, "taskId": t.vendorID}
	}
	reply(w, "200", "success", d)
}

func (s *Server) fileURL(t *task, i int) string {
	return fmt.Sprintf("%s/files/%s/%d.%s", s.hs.URL, t.id, i, t.ext)
}

// lookup returns the task a query names, or nil if the vendor does not know it.
func (s *Server) lookup(in map[string]any, tool string) *task {
	id := strings.TrimSpace(fmt.Sprint(in["businessTaskId"]))
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tasks[id]
	if t == nil || t.fate.Forget || t.tool != tool || !sameMonth(t.created, s.opts.Now()) {
		return nil
	}
	return t
}

// beijing is the vendor's time zone (UTC+8, no daylight saving).
var beijing = time.FixedZone("CST", 8*3600)

// sameMonth: "不支持归档数据查询, 仅查询当月" — only tasks of the current month
// (the vendor's, Beijing time) can be queried.
func sameMonth(a, b time.Time) bool {
	a, b = a.In(beijing), b.In(beijing)
	return a.Year() == b.Year() && a.Month() == b.Month()
}

func (s *Server) queryTaskInfo(w http.ResponseWriter, in map[string]any) {
	t := s.lookup(in, "")
	if t == nil {
		refuse(w, "任务不存在")
		return
	}
	reply(w, "200", "success", s.sdData(t, time.Now()))
}

// phases of a task, as fractions of its duration.
const (
	queuedUntil  = 0.10
	runningUntil = 0.85
)

// sdData is queryTaskInfo's data for t at now.
func (s *Server) sdData(t *task, now time.Time) map[string]any {
	f := float64(now.Sub(t.created)) / float64(t.duration)
	d := map[string]any{"id_task": t.id, "temporaryImageDto": nil, "differentialImageRspList": nil}
	switch {
	case f < queuedUntil:
		d["status"], d["desc"] = 3, "排队中"
	case f < runningUntil:
		p := (f - queuedUntil) / (runningUntil - queuedUntil)
		preview, _ := encode(paint(32, 32, int64(p*10)), "png")
		d["status"], d["desc"] = 1, "生成中"
		d["temporaryImageDto"] = map[string]any{
			"progress": strconv.FormatFloat(p, 'f', 2, 64), "currentImage": base64.StdEncoding.EncodeToString(preview),
			"jobNo": 1, "jobCount": 1,
		}
	case f < 1:
		d["status"], d["desc"] = 5, "任务上传中"
	case t.fate.Fail:
		d["status"], d["desc"] = 0, "任务失败 !"
	default:
		d["status"], d["desc"] = 2, "任务成功 !"
		var list []map[string]any
		for i := range t.images {
			audit := []map[string]any{{"confidence": nil, "label": "nonLabel"}}
			if t.fate.Unsafe {
				audit = []map[string]any{{"confidence": 0.97, "label": "porn"}}
			}
			status := 1
			if i < t.fate.Deleted {
				status = 2
			}
			list = append(list, map[string]any{
				"img_audit": audit, "img_audit_status": !t.fate.Unsafe, "image_status": status,
				"image_url": s.fileURL(t, i), "seed": t.seeds[i],
			})
		}
		d["differentialImageRspList"] = list
	}
	return d
}

func (s *Server) queryTool(w http.ResponseWriter, tool string, in map[string]any) {
	t := s.lookup(in, tool)
	if t == nil {
		refuse(w, "任务不存在")
		return
	}
	reply(w, "200", "success", s.toolData(t, time.Now()))
}

// toolData is queryTask's data. Running: 1 and the link the result will
// have, as the seed's own submit replies show it (the file is not there
// yet: it answers 404); done: 2 and the link, as the queryTask example;
// failed: no link and the failure number of that tool's own table (roop
// "2:失败", enhance "0:失败").
func (s *Server) toolData(t *task, now time.Time) map[string]any {
	status, link := 1, s.fileURL(t, 0)
	switch {
	case now.Sub(t.created) < t.duration:
	case t.fate.Fail && t.tool == "roop":
		status, link = 2, ""
	case t.fate.Fail:
		status, link = 0, ""
	case s.opts.DoneIsOne:
	default:
		status = 2
	}
	var st any = status
	if s.opts.ToolStatusString {
		st = strconv.Itoa(status)
	}
	return map[string]any{"businessTaskId": t.id, "status": st, "taskId": t.vendorID, "outputImageUrl": link}
}

func (s *Server) list(w http.ResponseWriter, endpoint string, in map[string]any) {
	size, ok1 := intOf(in["pageSize"])
	num, ok2 := intOf(in["pageNum"])
	if !ok1 || !ok2 || size < 1 || num < 1 {
		refuse(w, "pageSize和pageNum必须为正整数")
		return
	}
	size = min(size, 100) // [I] a page holds at most 100 rows
	str := func(k string) string { v, _ := in[k].(string); return v }
	var rows []map[string]any
	c := s.opts.Catalog
	switch endpoint {
	case "saas/sd/v2/queryModelList":
		for _, m := range c.Models {
			if (str("sdModelCheckpoint") == "" || m.Checkpoint == str("sdModelCheckpoint")) && strings.Contains(m.Name, str("sdModelName")) {
				rows = append(rows, m.row())
			}
		}
	case "saas/sd/v2/queryLoraList":
		for _, l := range c.LoRAs {
			if strings.Contains(l.Name, str("sdLoraName")) && (str("loraBaseModel") == "" || l.Base == str("loraBaseModel")) {
				rows = append(rows, l.row())
			}
		}
	case "saas/sd/v2/queryVaeList":
		if name, present := in["vaeFileName"]; !present || (s.opts.RefuseEmptyVAEName && strings.TrimSpace(fmt.Sprint(name)) == "") {
			refuse(w, "vaeFileName不能为空")
			return
		}
		for _, v := range c.VAEs {
			if str("vaeFileName") == "" || v.FileName == str("vaeFileName") {
				rows = append(rows, v.row())
			}
		}
	case "saas/sd/v2/queryEmbeddingList":
		for _, e := range c.Embeddings {
			rows = append(rows, e.row())
		}
	}
	total := len(rows)
	lo, hi := min((num-1)*size, total), min(num*size, total)
	reply(w, "200", "success", map[string]any{"rows": rows[lo:hi], "total": total, "pageSize": size, "pageNum": num})
}

func (s *Server) serveFile(w http.ResponseWriter, r *http.Request) {
	rest := strings.TrimPrefix(r.URL.Path, "/files/")
	id, file, _ := strings.Cut(rest, "/")
	name, _, _ := strings.Cut(file, ".")
	i, err := strconv.Atoi(name)
	s.mu.Lock()
	t := s.tasks[id]
	s.mu.Unlock()
	if err != nil || t == nil || t.fate.Expired || t.fate.Fail || i < 0 || i >= len(t.images) || time.Since(t.created) < t.duration+t.fate.LinkLag {
		http.NotFound(w, r)
		return
	}
	if t.tool == "" && (t.fate.Unsafe || i < t.fate.Deleted) {
		http.NotFound(w, r) // removed by the audit
		return
	}
	ct := "image/jpeg"
	if t.ext == "png" {
		ct = "image/png"
	}
	w.Header().Set("Content-Type", ct)
	w.Write(t.images[i])
}

// sendCallback POSTs the finished task to its callbackUrl, retrying on the
// seed's schedule until the answer is JSON with code 200.
func (s *Server) sendCallback(t *task) {
	defer s.wg.Done()
	select {
	case <-time.After(time.Until(t.created.Add(t.duration))):
	case <-s.ctx.Done():
		return
	}
	s.mu.Lock()
	forgotten := t.fate.Forget
	s.mu.Unlock()
	if forgotten {
		return
	}
	var data map[string]any
	if t.tool == "" {
		data = s.sdData(t, t.created.Add(t.duration))
	} else {
		data = s.toolData(t, t.created.Add(t.duration))
	}
	body, _ := json.Marshal(map[string]any{"code": "200", "msg": "success", "data": data})
	for attempt := 0; attempt <= s.opts.CallbackRetries; attempt++ {
		if attempt > 0 {
			wait := s.opts.CallbackDelays[min(attempt-1, len(s.opts.CallbackDelays)-1)]
			select {
			case <-time.After(wait):
			case <-s.ctx.Done():
				return
			}
		}
		ok := s.postCallback(t.callback, body)
		s.mu.Lock()
		st := s.callbacks[t.id]
		if st == nil {
			st = &callbackState{}
			s.callbacks[t.id] = st
		}
		st.attempts++
		st.delivered = ok
		s.mu.Unlock()
		if ok {
			return
		}
	}
}

func (s *Server) postCallback(link string, body []byte) bool {
	if err := loopback(link); err != nil {
		s.opts.Logf("zhiqitetest: callback: %v", err)
		return false
	}
	ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, link, bytes.NewReader(body))
	if err != nil {
		return false
	}
	req.Header.Set("Content-Type", "application/json;charset=UTF-8")
	resp, err := s.client.Do(req)
	if err != nil {
		s.opts.Logf("zhiqitetest: callback: %v", err)
		return false
	}
	defer resp.Body.Close()
	var ack struct {
		Code any `json:"code"`
	}
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if json.Unmarshal(raw, &ack) != nil {
		return false
	}
	return fmt.Sprint(ack.Code) == "200"
}

func intOf(v any) (int, bool) {
	switch x := v.(type) {
	case json.Number:
		n, err := x.Int64()
		return int(n), err == nil
	case string:
		n, err := strconv.Atoi(strings.TrimSpace(x))
		return n, err == nil
	}
	return 0, false
}

func floatOf(v any) (float64, bool) {
	switch x := v.(type) {
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
		return f, err == nil
	}
	return 0, false
}
