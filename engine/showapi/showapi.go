// Package showapi is the adapter for ShowAPI's "AI drawing" service as
// resold on Huawei Cloud's API market (art2.apistore.huaweicloud.com).
//
// The vendor's document describes three calls: GET /models, GET
// /yourtaskresult?task_id= and GET /yourtasklist?page=. Task creation is not
// in it: its path, encoding and fields are inferred from the task record,
// which echoes its inputs, and are configurable. Every answer is wrapped in
// ShowAPI's envelope: showapi_res_code 0 means the gateway call worked and
// showapi_res_body.ret_code 0 that the business call worked; both are checked.
// What each call was billed is in its answer (showapi_fee_num: 1 for the
// document's answers, 0 for its "no such task"), and is reported to the
// engine (engine.ReportBilled) as read.
package showapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/picbot/picbot/engine"
)

// Name is the vendor's name in routes and job records.
const Name = "showapi"

// Config configures the adapter. Zero values mean the defaults New applies.
// Items marked [I] are inferences, not from the vendor's document.
type Config struct {
	BaseURL string `yaml:"base_url"` // default https://art2.apistore.huaweicloud.com
	// Authentication: AppCode (simple mode), or AppKey and AppSecret (AK/SK
	// signing). When both are set, the request is signed and carries the code.
	AppCode   string `yaml:"app_code"`
	AppKey    string `yaml:"app_key"`
	AppSecret string `yaml:"app_secret"`

	CreatePath string `yaml:"create_path"` // [I] default /createtask
	// CreateEncoding is how the creation's fields are sent: "form"
	// (application/x-www-form-urlencoded, default: the record holds every
	// number as a string, as form fields arrive) or "json" (strings too). [I]
	CreateEncoding string `yaml:"create_encoding"`
	// CreateTaskField is where the creation's answer holds the task id: a
	// dot path inside showapi_res_body ("task_id", "data.task_id"). [I]
	// Default task_id; data.task_id is tried too.
	CreateTaskField string `yaml:"create_task_field"`
	ResultPath      string `yaml:"result_path"` // default /yourtaskresult
	ListPath        string `yaml:"list_path"`   // default /yourtasklist
	ModelsPath      string `yaml:"models_path"` // default /models

	ModelID   string  `yaml:"model_id"`   // when the request names none; default 4zdwGOB (DreamShaper, the document's example)
	Scheduler string  `yaml:"scheduler"`  // when the request names none; default K_EULER (the record's example)
	LoRAScale float64 `yaml:"lora_scale"` // sent with a LoRA; default 0.9 (the record's example)
	// Schedulers the vendor accepts [I]; a request's --sampler must name one (any case).
	Schedulers []string `yaml:"schedulers"`

	// Callbacks asks the vendor to report to the bot (call_back); nil means true.
	Callbacks *bool `yaml:"callbacks"`

	// Size rules [I]: sides are multiples of SideMultiple in [MinSide, MaxSide].
	MinSide      int `yaml:"min_side"`      // default 64
	MaxSide      int `yaml:"max_side"`      // default 1024
	SideMultiple int `yaml:"side_multiple"` // default 8
	MaxBatch     int `yaml:"max_batch"`     // largest batch_size (--n); default 4 [I]

	// Polling. Typical is the time of a 512x512, 25-step image; larger
	// ones are scaled by area and steps.
	Typical   time.Duration `yaml:"typical_duration"` // default 8s
	PollEvery time.Duration `yaml:"poll_every"`       // default 3s, growing by half each poll
	PollMax   time.Duration `yaml:"poll_max"`         // default 20s

	// FindPages bounds the pages of /yourtasklist (five tasks each, every
	// page billed) read to find a task whose creation's answer was lost.
	FindPages int `yaml:"find_pages"` // default 4
	// FindDeepPages bounds them instead once a page read is wholly newer
	// than the submission (every ct past it, by the Date header's clock,
	// by more than date_skew and the header's second): the task, if made,
	// lies behind the tasks made since, and a second task costs a billed
	// call too. Default 8; below find_pages: find_pages.
	FindDeepPages int `yaml:"find_deep_pages"`
	// FindJump lets a search whose pages read so far are each wholly newer
	// or older than the submission go to the page where the submission's
	// time should lie, estimated from the times read, rather than to the
	// next: tasks made since that fill more pages than it may read do not
	// hide the one it looks for. Default true; false: pages in order from
	// the latest. [I]: the document does not say the list runs by ct.
	FindJump *bool `yaml:"find_jump"`
	// FindCalibrate narrows a search's window from the Date header's
	// (date_skew each side) to what the ct of tasks this process made,
	// shown on the pages read, tell of the vendor's clock against the
	// bot's, and what the records of the tasks of the process that
	// marked the submission told it (its marker's note; see find.go).
	// Default true; false: the Date header's. [I]: that one clock stamps
	// every ct.
	FindCalibrate *bool `yaml:"find_calibrate"`
	// FindGather is how long a search waits for others to start before
	// it reads the first page: searches under way together (the jobs a
	// crashed process left uncertain, after a restart) share one read of
	// the list, each page billed once for all of them. Default 1s; negative: none.
	FindGather time.Duration `yaml:"find_gather"`
	// ListPollMin is how many polled tasks in flight make polls go by
	// /yourtasklist, five tasks a call (default 3; negative: never); a
	// task due waits at most ListDefer (default poll_every) for the
	// others on its page.
	ListPollMin int           `yaml:"list_poll_min"`
	ListDefer   time.Duration `yaml:"list_defer"`
	// ListOrder is the order of /yourtasklist's pages, which the document
	// does not give [I]: "newest" (page 1 holds the latest tasks), "oldest"
	// (the last page does), or "auto" (default): judged from the ct of the
	// tasks of page 1, "newest" when they cannot tell.
	ListOrder string `yaml:"list_order"`
	// ClockSkew is how far the vendor's ct may be off the bot's clock when
	// a lost task is looked for: older tasks are not this job's.
	ClockSkew time.Duration `yaml:"clock_skew"` // default 10m
	// DateSkew is how far the vendor's ct may be off the Date header of
	// its own answers [I]. A task-list page that has a Date header tells
	// the vendor's clock against the bot's, so a lost task is looked for
	// among tasks made after the submission by the vendor's clock, less
	// DateSkew (and a page all older ends the search), whatever the two
	// clocks' difference; clock_skew applies to a page without one.
	DateSkew time.Duration `yaml:"date_skew"` // default 5s

	// UnreadFee is the bill counted for an answer whose showapi_fee_num
	// cannot be read: an HTTP error from Huawei's gateway, a body that is
	// not ShowAPI's JSON, an envelope without the field. The document shows
	// no such answer. [I] default 0. A call with no answer at all counts 0:
	// a creation made in such a call is counted when its task is found.
	UnreadFee int `yaml:"unread_fee"`

	// CatalogTTL is how long /models is kept: each call is billed.
	CatalogTTL time.Duration `yaml:"catalog_ttl"` // default 1h
	// UnsafeWords mark a refusal or failure as the content audit's. [I]
	UnsafeWords []string `yaml:"unsafe_words"`
	// NotFoundWords mark a ret_code -1 answer as "no such task".
	NotFoundWords []string `yaml:"not_found_words"`
}

// Defaults.
const (
	DefaultBaseURL    = "https://art2.apistore.huaweicloud.com"
	DefaultCreatePath = "/createtask"
	DefaultModelID    = "4zdwGOB"
	DefaultScheduler  = "K_EULER"
	DefaultLoRAScale  = 0.9
)

var (
	defaultSchedulers    = []string{"K_EULER", "K_EULER_ANCESTRAL", "DDIM", "DPMSolverMultistep", "PNDM", "KLMS"}
	defaultUnsafeWords   = []string{"敏感", "违规", "违禁", "违法", "色情", "涉黄", "涉政", "暴恐", "低俗", "审核", "不合规", "sensitive", "unsafe", "nsfw", "porn", "inappropriate", "prohibited"}
	defaultNotFoundWords = []string{"没有找到", "不存在", "找不到", "not found", "no such task"}
	// retryWords mark a business refusal as temporary: another try, or another vendor, may work. [I]
	retryWords = []string{"繁忙", "稍后", "超时", "busy", "try again", "timeout"}
)

// Defaults is the configuration with every default filled in.
func Defaults() Config { return Config{}.withDefaults() }

// withDefaults fills unset fields.
func (c Config) withDefaults() Config {
	set := func(s *string, d string) {
		if strings.TrimSpace(*s) == "" {
			*s = d
		}
	}
	set(&c.BaseURL, DefaultBaseURL)
	c.BaseURL = strings.TrimRight(c.BaseURL, "/")
	set(&c.CreatePath, DefaultCreatePath)
	set(&c.CreateEncoding, "form")
	set(&c.CreateTaskField, "task_id")
	set(&c.ResultPath, "/yourtaskresult")
	set(&c.ListPath, "/yourtasklist")
	set(&c.ModelsPath, "/models")
	set(&c.ListOrder, "auto")
	set(&c.ModelID, DefaultModelID)
	set(&c.Scheduler, DefaultScheduler)
	if c.LoRAScale == 0 {
		c.LoRAScale = DefaultLoRAScale
	}
	if len(c.Schedulers) == 0 {
		c.Schedulers = defaultSchedulers
	}
	if c.Callbacks == nil {
		t := true
		c.Callbacks = &t
	}
	if c.FindJump == nil {
		t := true
		c.FindJump = &t
	}
	if c.FindCalibrate == nil {
		t := true
		c.FindCalibrate = &t
	}
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.MinSide, 64)
	def(&c.MaxSide, 1024)
	def(&c.SideMultiple, 8)
	def(&c.MaxBatch, 4)
	def(&c.FindPages, 4)
	def(&c.FindDeepPages, 8)
	def(&c.ListPollMin, 3)
	dur := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	dur(&c.Typical, 8*time.Second)
	dur(&c.PollEvery, 3*time.Second)
	dur(&c.PollMax, 20*time.Second)
	dur(&c.CatalogTTL, time.Hour)
	dur(&c.ClockSkew, 10*time.Minute)
	dur(&c.DateSkew, 5*time.Second)
	dur(&c.ListDefer, c.PollEvery)
	dur(&c.FindGather, time.Second)
	if len(c.UnsafeWords) == 0 {
		c.UnsafeWords = defaultUnsafeWords
	}
	if len(c.NotFoundWords) == 0 {
		c.NotFoundWords = defaultNotFoundWords
	}
	return c
}

// Validate reports every problem through bad, naming the YAML key.
func (c Config) Validate(bad func(key, format string, args ...any)) {
	if c.AppCode == "" && (c.AppKey == "" || c.AppSecret == "") {
		bad("app_code", "is required, or app_key and app_secret (env PICBOT_SHOWAPI_APP_CODE, PICBOT_SHOWAPI_APP_KEY, PICBOT_SHOWAPI_APP_SECRET)")
	}
	if (c.AppKey == "") != (c.AppSecret == "") {
		if c.AppKey == "" {
			bad("app_key", "is required with app_secret")
		} else {
			bad("app_secret", "is required with app_key")
		}
	}
	if c.BaseURL != "" {
		if u, err := url.Parse(c.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("base_url", "must be an http:// or https:// URL")
		}
	}
	for key, p := range map[string]string{"create_path": c.CreatePath, "result_path": c.ResultPath, "list_path": c.ListPath, "models_path": c.ModelsPath} {
		if p != "" && !strings.HasPrefix(p, "/") {
			bad(key, "must start with /")
		}
	}
	if o := c.ListOrder; o != "" && o != "auto" && o != "newest" && o != "oldest" {
		bad("list_order", "must be auto, newest or oldest, not %q", o)
	}
	if e := c.CreateEncoding; e != "" && e != "form" && e != "json" {
		bad("create_encoding", "must be form or json, not %q", e)
	}
	for key, v := range map[string]int{"min_side": c.MinSide, "max_side": c.MaxSide, "side_multiple": c.SideMultiple, "max_batch": c.MaxBatch, "find_pages": c.FindPages, "find_deep_pages": c.FindDeepPages, "unread_fee": c.UnreadFee} {
		if v < 0 {
			bad(key, "must not be negative")
		}
	}
	if c.MinSide > 0 && c.MaxSide > 0 && c.MaxSide < c.MinSide {
		bad("max_side", "must be at least min_side")
	}
	for key, v := range map[string]time.Duration{"typical_duration": c.Typical, "poll_every": c.PollEvery, "poll_max": c.PollMax, "catalog_ttl": c.CatalogTTL, "clock_skew": c.ClockSkew, "date_skew": c.DateSkew, "list_defer": c.ListDefer} {
		if v < 0 {
			bad(key, "must not be negative")
		}
	}
	if c.LoRAScale < 0 {
		bad("lora_scale", "must not be negative")
	}
}

// LogValue keeps the secrets out of logs, should a Config ever be logged.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(slog.String("base_url", c.BaseURL), slog.Bool("app_code", c.AppCode != ""),
		slog.Bool("app_key", c.AppKey != ""), slog.String("create_path", c.CreatePath))
}

// Vendor implements engine.Vendor, engine.CallbackVendor and engine.Cataloguer.
type Vendor struct {
	cfg    Config
	client *http.Client
	log    *slog.Logger
	// Now is the clock for request signing and the catalogue cache.
	Now func() time.Time

	mu        sync.Mutex
	catalog   []engine.CatalogEntry
	catalogAt time.Time
	list      lister              // polled tasks, for polling by list
	sweep     *sweep              // the search of the task list still taking searches in (find.go)
	made      map[string]madeCall // the latest tasks this process made, for calibration (find.go)
	madeOrder []string
	madeSeq   int           // tasks this process made: the next one's number
	clockSeen []calibration // the latest records of those tasks, for MarkNote (find.go)
	firstMark time.Time     // when this process marked the first task it made
	wake      func(jobID string)
}

var (
	_ engine.CallbackVendor = (*Vendor)(nil)
	_ engine.Cataloguer     = (*Vendor)(nil)
	_ engine.TaskFinder     = (*Vendor)(nil)
)

// New returns the adapter. client nil means a client with a one-minute
// timeout; the engine's contexts bound each call more tightly.
func New(cfg Config, client *http.Client, log *slog.Logger) (*Vendor, error) {
	var errs []error
	cfg.Validate(func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	})
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("showapi: %w", err)
	}
	if client == nil {
		client = &http.Client{Timeout: time.Minute}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Vendor{cfg: cfg.withDefaults(), client: client, log: log, Now: time.Now}, nil
}

func (v *Vendor) Name() string { return Name }

// WantsCallback is the operator's choice (callbacks).
func (v *Vendor) WantsCallback() bool { return *v.cfg.Callbacks }

// Check accepts only /draw without a reference image, in the vendor's sizes.
func (v *Vendor) Check(r *engine.Request) error {
	c := &v.cfg
	if r.Kind != engine.KindDraw {
		return engine.Errorf(engine.EINVALID, "The ShowAPI service only draws from text; it cannot do /%s.", "ShowAPI 服务只能文字生成图片，不支持 /%s。", r.Kind)
	}
	if len(r.Inputs) > 0 {
		return engine.Errorf(engine.EINVALID, "The ShowAPI service takes no reference image.", "ShowAPI 服务不支持参考图。")
	}
	for _, side := range []int{r.Width, r.Height} {
		if side < c.MinSide || side > c.MaxSide || side%c.SideMultiple != 0 {
			return engine.Errorf(engine.EINVALID, "--size %dx%d is not allowed here: each side must be a multiple of %d between %d and %d.",
				"--size %dx%d 在此不可用：宽和高都必须是 %d 的倍数，且在 %d 到 %d 之间。", r.Width, r.Height, c.SideMultiple, c.MinSide, c.MaxSide)
		}
	}
	if r.Images() > c.MaxBatch {
		return engine.Errorf(engine.EINVALID, "--n may be at most %d here.", "此服务的 --n 最多为 %d。", c.MaxBatch)
	}
	if r.Sampler != "" && v.scheduler(r.Sampler) == "" {
		return engine.Errorf(engine.EINVALID, "Unknown --sampler %q; try one of: %s.", "未知的 --sampler %q，可选：%s。", r.Sampler, strings.Join(c.Schedulers, ", "))
	}
	return nil
}

// scheduler returns the vendor's spelling of a sampler name, or "".
func (v *Vendor) scheduler(name string) string {
	s, _ := engine.MapSampler(name, v.cfg.Schedulers, SamplerAliases)
	return s
}

// SamplerAliases map the canonical sampler names (engine.Samplers) to
// ShowAPI's schedulers (diffusers' names) [I].
var SamplerAliases = map[string]string{
	"Euler": "K_EULER", "Euler a": "K_EULER_ANCESTRAL", "DDIM": "DDIM", "DPM++ 2M": "DPMSolverMultistep",
	"PLMS": "PNDM", "LMS": "KLMS",
}

// Timing waits for the typical duration, scaled by area, steps and batch,
// before the first poll: every poll is billed.
func (v *Vendor) Timing(r *engine.Request) engine.Timing {
	w, h, steps := r.Width, r.Height, r.Steps
	if w <= 0 || h <= 0 {
		w, h = engine.DefaultSide, engine.DefaultSide
	}
	if steps <= 0 {
		steps = engine.DefaultSteps
	}
	// A batch shares the GPU, so it costs less than N separate images. [I]
	factor := float64(w*h) / (512 * 512) * float64(steps) / 25 * (1 + 0.5*float64(r.Images()-1))
	typ := v.cfg.Typical
	first := time.Duration(float64(typ) * factor)
	first = min(max(first, typ/4), 8*typ)
	return engine.Timing{First: first, Every: v.cfg.PollEvery, Max: v.cfg.PollMax, Billed: true}
}

// Submit creates the task. A business refusal is EINVALID (EUNSAFE if the
// reason is the content audit); a gateway or transport failure is a plain
// error, so the engine retries or tries another vendor.
func (v *Vendor) Submit(ctx context.Context, j *engine.Job, t engine.Task) (string, error) {
	fields := v.createFields(&j.Request, t.CallbackURL)
	var body []byte
	var ctype string
	if v.cfg.CreateEncoding == "json" {
		m := make(map[string]string, len(fields))
		for _, f := range fields {
			m[f[0]] = f[1]
		}
		body, _ = json.Marshal(m)
		ctype = "application/json; charset=utf-8"
	} else {
		form := url.Values{}
		for _, f := range fields {
			form.Set(f[0], f[1])
		}
		body = []byte(form.Encode())
		ctype = "application/x-www-form-urlencoded; charset=utf-8"
	}
	marked := v.Now()
	if j.Submitting != nil && !j.Submitting.At.IsZero() && j.Submitting.At.Before(marked) {
		marked = j.Submitting.At // the engine's mark, before its store write
	}
	raw, biz, err := v.call(ctx, http.MethodPost, v.cfg.CreatePath, nil, body, ctype)
	var gw *GatewayError
	if errors.As(err, &gw) && gw.Status == http.StatusNotFound {
		// The creation path is a guess (the document does not have it): a
		// 404 is the configuration, not the vendor's mood. Fail now, loudly,
		// rather than retry until job_timeout.
		v.log.Error("showapi: task creation answered 404: vendors.showapi.create_path (unverified) is wrong for this account; see `picbot check vendors`",
			slog.String("create_path", v.cfg.CreatePath), slog.String("gateway_code", gw.Code), slog.String("gateway_message", gw.Message))
		return "", engine.Wrap(engine.EINVALID, fmt.Errorf("showapi: create task at %s: %w", v.cfg.CreatePath, err),
			"This image service is misconfigured (its task creation address was not found); the operator has been told.",
			"绘图服务配置有误（找不到创建任务的地址），已通知管理员。")
	}
	if err != nil {
		return "", fmt.Errorf("showapi: create task: %w", err)
	}
	if code, ok := biz.RetCode.Int(); !ok || code != 0 {
		return "", v.refusal(biz)
	}
	id := taskField(raw, v.cfg.CreateTaskField)
	if id == "" {
		id = taskField(raw, "task_id")
	}
	if id == "" {
		id = taskField(raw, "data.task_id")
	}
	if id == "" {
		return "", fmt.Errorf("showapi: create task: answer has no %s (vendors.showapi.create_task_field, unverified): %.200s", v.cfg.CreateTaskField, raw)
	}
	v.noteMade(id, marked, v.Now())
	v.log.Debug("showapi task created", slog.String("job_id", j.ID), slog.String("task_id", id))
	if t.CallbackURL == "" {
		v.track(id, j.ID, v.Now().Add(v.Timing(&j.Request).First))
	}
	return id, nil
}

// taskField reads the dot path field of a JSON object: a string or a number.
func taskField(raw json.RawMessage, path string) string {
	var cur any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if dec.Decode(&cur) != nil {
		return ""
	}
	for _, k := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return ""
		}
		cur = m[k]
	}
	switch x := cur.(type) {
	case string:
		return strings.TrimSpace(x)
	case json.Number:
		return x.String()
	}
	return ""
}

// SplitLoRA reads --lora ID or ID:WEIGHT; weight is "" when not given.
func SplitLoRA(s string) (id, weight string) {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, ':'); i > 0 {
		if _, err := strconv.ParseFloat(s[i+1:], 64); err == nil {
			return strings.TrimSpace(s[:i]), s[i+1:]
		}
	}
	return s, ""
}

// createFields are the creation's fields, in the record's names and with
// every number as a string, as the record holds them.
func (v *Vendor) createFields(r *engine.Request, callback string) [][2]string {
	model := r.Model
	if model == "" {
		model = v.cfg.ModelID
	}
	sched := v.cfg.Scheduler
	if r.Sampler != "" {
		if s := v.scheduler(r.Sampler); s != "" {
			sched = s
		}
	}
	f := [][2]string{
		{"prompt", r.Prompt},
		{"negetive_prompt", r.Negative}, // sic: the vendor's spelling
		{"model_id", model},
		{"width", strconv.Itoa(r.Width)},
		{"height", strconv.Itoa(r.Height)},
		{"steps", strconv.Itoa(r.Steps)},
		{"scale", strconv.FormatFloat(r.Guidance, 'f', -1, 64)},
		{"seed", strconv.FormatInt(r.Seed, 10)},
		{"scheduler", sched},
		{"batch_size", strconv.Itoa(r.Images())},
	}
	if r.LoRA != "" {
		// The record keeps the LoRA's id and its weight apart: lora, lora_scale.
		id, weight := SplitLoRA(r.LoRA)
		if weight == "" {
			weight = strconv.FormatFloat(v.cfg.LoRAScale, 'f', -1, 64)
		}
		f = append(f, [2]string{"lora", id}, [2]string{"lora_scale", weight})
	}
	if callback != "" {
		f = append(f, [2]string{"call_back", callback})
	}
	return f
}

// refusal maps a business refusal of a creation to an engine error. Its
// message reaches the chat, so a credential the vendor echoes is removed.
func (v *Vendor) refusal(biz *business) error {
	msg := cut(v.redact(biz.message()), 200)
	cause := fmt.Errorf("showapi: ret_code %s: %s", biz.RetCode, msg)
	switch {
	case containsAny(msg, v.cfg.UnsafeWords):
		e := engine.Errorf(engine.EUNSAFE, "The image service's content check refused this prompt: %s", "提示词未通过绘图服务的内容审核：%s", msg)
		e.Err = cause
		return e
	case containsAny(msg, retryWords):
		return cause
	}
	e := engine.Errorf(engine.EINVALID, "The image service refused the request: %s", "绘图服务拒绝了请求：%s", msg)
	e.Err = cause
	return e
}

// Query asks /yourtaskresult about j's task. ENOTFOUND if the vendor does
// not know it; a plain error if the call failed.
func (v *Vendor) Query(ctx context.Context, j *engine.Job) (*engine.Outcome, error) {
	out, err := v.query(ctx, j)
	if err != nil || out.State == engine.TaskDone || out.State == engine.TaskFailed {
		if err == nil || engine.ErrorCode(err) == engine.ENOTFOUND {
			v.settle(j.TaskID)
		}
	}
	return out, err
}

func (v *Vendor) query(ctx context.Context, j *engine.Job) (*engine.Outcome, error) {
	if out, ok, err := v.listQuery(ctx, j); ok || err != nil {
		if err != nil {
			return nil, fmt.Errorf("showapi: query task %s by list: %w", j.TaskID, err)
		}
		return out, nil
	}
	raw, biz, err := v.call(ctx, http.MethodGet, v.cfg.ResultPath, url.Values{"task_id": {j.TaskID}}, nil, "")
	if err != nil {
		return nil, fmt.Errorf("showapi: query task %s: %w", j.TaskID, err)
	}
	if code, ok := biz.RetCode.Int(); !ok || code != 0 {
		cause := fmt.Errorf("showapi: query task %s: ret_code %s: %s", j.TaskID, biz.RetCode, cut(biz.message(), 200))
		if code == -1 && containsAny(biz.message(), v.cfg.NotFoundWords) {
			return nil, engine.Wrap(engine.ENOTFOUND, cause, "The image service no longer knows this task.", "绘图服务找不到这个任务了。")
		}
		return nil, cause
	}
	var rec Record
	if err := json.Unmarshal(raw, &rec); err != nil {
		return nil, fmt.Errorf("showapi: query task %s: decode record: %w", j.TaskID, err)
	}
	v.learnClock(&rec)
	return v.outcome(&rec)
}

// outcome turns a task record into what the engine understands.
func (v *Vendor) outcome(rec *Record) (*engine.Outcome, error) {
	out := &engine.Outcome{TaskID: strings.TrimSpace(string(rec.TaskID)), Progress: -1}
	switch status := strings.ToLower(strings.TrimSpace(string(rec.Status))); status {
	case "waiting", "wait", "queued", "queue", "running", "processing", "pending":
		// waiting covers queued and running alike; there is no figure.
		out.State = engine.TaskQueued
	case "finish", "finished", "success", "succeeded", "done":
		out.State, out.Progress = engine.TaskDone, 1
		seed, ok := rec.Seed.Int()
		for i, u := range rec.ResultList {
			r := engine.Remote{URL: u}
			if i == 0 && ok && seed >= 0 {
				r.Seed = seed // the others' seeds are the vendor's secret
			}
			out.Images = append(out.Images, r)
		}
	case "fail", "failed", "error":
		out.State = engine.TaskFailed
		out.Err = v.failure(rec)
	default:
		return nil, fmt.Errorf("showapi: task %s: unknown status %q", out.TaskID, status)
	}
	return out, nil
}

// failure is the error of a failed task: EUNSAFE when the cause is the
// content audit, EVENDOR otherwise (another vendor may succeed).
func (v *Vendor) failure(rec *Record) error {
	why := strings.TrimSpace(string(rec.Cause))
	if why == "" {
		why = strings.TrimSpace(string(rec.Remark))
	}
	why = cut(why, 200)
	cause := fmt.Errorf("showapi: task %s failed: %s", rec.TaskID, why)
	if containsAny(why, v.cfg.UnsafeWords) {
		return engine.Wrap(engine.EUNSAFE, cause, "The image service's content check refused this prompt.",
			"提示词未通过绘图服务的内容审核。")
	}
	return engine.Wrap(engine.EVENDOR, cause, "The image service could not make this picture.", "绘图服务未能生成这张图片。")
}

// ParseCallback reads a callback. Its shape is not documented: it is taken
// to be the task record, with or without the envelope, as JSON or a form.
// An error makes the engine ask /yourtaskresult instead.
func (v *Vendor) ParseCallback(j *engine.Job, body []byte) (*engine.Outcome, error) {
	rec, err := parseCallback(body)
	if err != nil {
		return nil, fmt.Errorf("showapi: callback for task %s: %w", j.TaskID, err)
	}
	v.learnClock(rec)
	return v.outcome(rec)
}

func parseCallback(body []byte) (*Record, error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return nil, errors.New("empty body")
	}
	if body[0] != '{' {
		q, err := url.ParseQuery(string(body))
		if err != nil || q.Get("status") == "" {
			return nil, fmt.Errorf("neither JSON nor a form with a status: %.100q", body)
		}
		rec := &Record{TaskID: Text(q.Get("task_id")), Status: Text(q.Get("status")), Cause: Text(q.Get("cause")),
			Remark: Text(q.Get("remark")), Seed: Number(q.Get("seed"))}
		for _, s := range q["result_list"] {
			var l List
			if json.Unmarshal([]byte(strconv.Quote(s)), &l) == nil {
				rec.ResultList = append(rec.ResultList, l...)
			}
		}
		return rec, nil
	}
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	raw := body
	if len(env.Body) > 0 && string(env.Body) != "null" {
		if code, ok := env.ResCode.Int(); env.ResCode != "" && (!ok || code != 0) {
			return nil, fmt.Errorf("showapi_res_code %s: %s", env.ResCode, env.ResError)
		}
		raw = env.Body
	}
	var rec Record
	if err := json.Unmarshal(raw, &rec); err != nil {
		return nil, fmt.Errorf("decode record: %w", err)
	}
	if code, ok := rec.RetCode.Int(); rec.RetCode != "" && (!ok || code != 0) {
		return nil, fmt.Errorf("ret_code %s: %s", rec.RetCode, rec.Remark)
	}
	if rec.Status == "" {
		return nil, errors.New("no status")
	}
	return &rec, nil
}

// CallbackReply is a small JSON body with status 200, in ShowAPI's manner.
func (v *Vendor) CallbackReply() (string, []byte) {
	return "application/json; charset=utf-8", []byte(`{"ret_code":0,"remark":"ok"}`)
}

// Catalog lists the models and LoRAs of /models, kept for CatalogTTL.
func (v *Vendor) Catalog(ctx context.Context) ([]engine.CatalogEntry, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.catalog != nil && v.Now().Sub(v.catalogAt) < v.cfg.CatalogTTL {
		return slices.Clone(v.catalog), nil
	}
	raw, biz, err := v.call(ctx, http.MethodGet, v.cfg.ModelsPath, nil, nil, "")
	if err != nil {
		return nil, fmt.Errorf("showapi: models: %w", err)
	}
	if code, ok := biz.RetCode.Int(); !ok || code != 0 {
		return nil, fmt.Errorf("showapi: models: ret_code %s: %s", biz.RetCode, cut(biz.message(), 200))
	}
	var body modelsBody
	if err := json.Unmarshal(raw, &body); err != nil {
		return nil, fmt.Errorf("showapi: models: %w", err)
	}
	entries := []engine.CatalogEntry{}
	for _, m := range body.Models {
		if m.ID == "" {
			continue
		}
		entries = append(entries, engine.CatalogEntry{Vendor: Name, Kind: engine.EntryModel, ID: string(m.ID), Name: string(m.Name), Tags: m.Tags, Cover: string(m.CoverImg)})
	}
	for _, l := range body.LoRAs {
		if l.ID == "" {
			continue
		}
		entries = append(entries, engine.CatalogEntry{Vendor: Name, Kind: engine.EntryLoRA, ID: string(l.ID), Name: string(l.Name), Cover: string(l.CoverImg)})
	}
	v.catalog, v.catalogAt = entries, v.Now()
	return slices.Clone(entries), nil
}

// TaskList returns page (from 1) of the account's tasks, five a page: the
// way to find a task whose creation's answer was lost.
func (v *Vendor) TaskList(ctx context.Context, page int) (*TaskPage, error) {
	var clock vendorClock
	raw, biz, err := v.callDated(ctx, http.MethodGet, v.cfg.ListPath, url.Values{"page": {strconv.Itoa(page)}}, nil, "", &clock)
	if err != nil {
		return nil, fmt.Errorf("showapi: task list: %w", err)
	}
	if code, ok := biz.RetCode.Int(); !ok || code != 0 {
		return nil, fmt.Errorf("showapi: task list page %d: ret_code %s: %s", page, biz.RetCode, cut(biz.message(), 200))
	}
	var p TaskPage
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil, fmt.Errorf("showapi: task list page %d: %w", page, err)
	}
	p.clock = clock
	return &p, nil
}

// listOrder tells from the creation times on p whether the list runs
// "newest" or "oldest" first; "newest" when p cannot tell (fewer than two
// dated tasks, or all at one time), the likelier order for a history.
func listOrder(p *TaskPage) string {
	var first, last time.Time
	for i := range p.Tasks {
		if at, ok := p.Tasks[i].Created(); ok {
			if first.IsZero() {
				first = at
			}
			last = at
		}
	}
	if first.Before(last) {
		return "oldest"
	}
	return "newest"
}

// matches reports whether rec echoes the creation fields want.
func matches(rec *Record, want [][2]string) bool {
	got := map[string]string{
		"prompt": string(rec.Prompt), "negetive_prompt": string(rec.Negative), "model_id": string(rec.ModelID),
		"width": string(rec.Width), "height": string(rec.Height), "steps": string(rec.Steps), "seed": string(rec.Seed),
		"batch_size": string(rec.BatchSize), "lora": string(rec.LoRA),
	}
	callback := ""
	for _, f := range want {
		if f[0] == "call_back" {
			callback = f[1]
			continue
		}
		if g, ok := got[f[0]]; ok && strings.TrimSpace(g) != strings.TrimSpace(f[1]) {
			return false
		}
	}
	return strings.TrimSpace(string(rec.CallBack)) == callback
}

// GatewayError is a call that did not reach ShowAPI's business logic: an
// HTTP error from Huawei's gateway, or a non-zero showapi_res_code (out of
// calls, throttled, backend down). Its text never holds a credential.
type GatewayError struct {
	Status  int    // HTTP status
	Code    string // showapi_res_code, or the gateway's error_code (APIG.0308)
	Message string
}

func (e *GatewayError) Error() string {
	return fmt.Sprintf("gateway: status %d, code %s: %s", e.Status, e.Code, e.Message)
}

// maxAnswer bounds a JSON answer; the largest, /yourtasklist, is a few KB.
const maxAnswer = 1 << 20

// call makes one authenticated request and checks the envelope. It returns
// showapi_res_body and its ret_code, left to the caller to judge, and
// reports the call's bill to the engine: showapi_fee_num as the answer
// says, whatever the codes (the document's "no such task" says 0).
func (v *Vendor) call(ctx context.Context, method, path string, query url.Values, body []byte, ctype string) (json.RawMessage, *business, error) {
	return v.callDated(ctx, method, path, query, body, ctype, nil)
}

// callDated is call, and sets *clock, when not nil, to what the answer's
// Date header says of the vendor's clock against the bot's.
func (v *Vendor) callDated(ctx context.Context, method, path string, query url.Values, body []byte, ctype string, clock *vendorClock) (json.RawMessage, *business, error) {
	fee := 0 // no answer, no bill to read
	defer func() { engine.ReportBilled(ctx, fee) }()
	u := v.cfg.BaseURL + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	if body == nil {
		req.Body, req.ContentLength = http.NoBody, 0
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	req.Header.Set("Accept", "application/json")
	if v.cfg.AppCode != "" {
		req.Header.Set(AppCodeHeader, v.cfg.AppCode)
	}
	if v.cfg.AppKey != "" && v.cfg.AppSecret != "" {
		Sign(req, body, v.cfg.AppKey, v.cfg.AppSecret, v.Now())
	}
	resp, err := v.client.Do(req)
	if err != nil {
		return nil, nil, err // *url.Error: method, URL (no credential) and cause
	}
	defer resp.Body.Close()
	if clock != nil {
		if at, err := http.ParseTime(resp.Header.Get("Date")); err == nil {
			*clock = vendorClock{date: at, local: v.Now()}
		}
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return nil, nil, fmt.Errorf("read answer: %w", err)
	}
	fee = v.cfg.UnreadFee // until showapi_fee_num is read
	if resp.StatusCode != http.StatusOK {
		var apig struct {
			Code Text `json:"error_code"`
			Msg  Text `json:"error_msg"`
		}
		_ = json.Unmarshal(data, &apig) // not JSON: the status says enough
		if strings.HasPrefix(string(apig.Code), "APIG.") {
			fee = 0 // Huawei's gateway refused it: ShowAPI never saw the call
		}
		msg := string(apig.Msg)
		if msg == "" {
			msg = cut(strings.TrimSpace(string(data)), 200)
		}
		return nil, nil, &GatewayError{Status: resp.StatusCode, Code: string(apig.Code), Message: msg}
	}
	var env envelope
	if err := json.Unmarshal(data, &env); err != nil {
		return nil, nil, fmt.Errorf("decode answer: %w", err)
	}
	if n, ok := env.FeeNum.Int(); ok && n >= 0 {
		fee = int(n)
	}
	if code, ok := env.ResCode.Int(); !ok || code != 0 {
		return nil, nil, &GatewayError{Status: resp.StatusCode, Code: string(env.ResCode), Message: cut(string(env.ResError), 200)}
	}
	if len(env.Body) == 0 || string(env.Body) == "null" {
		return nil, nil, errors.New("answer has no showapi_res_body")
	}
	var biz business
	if err := json.Unmarshal(env.Body, &biz); err != nil {
		return nil, nil, fmt.Errorf("decode showapi_res_body: %w", err)
	}
	return env.Body, &biz, nil
}

// redact removes the configured credentials from vendor text.
func (v *Vendor) redact(s string) string {
	for _, secret := range []string{v.cfg.AppCode, v.cfg.AppKey, v.cfg.AppSecret} {
		if len(secret) >= 4 {
			s = strings.ReplaceAll(s, secret, "***")
		}
	}
	return s
}

func containsAny(s string, words []string) bool {
	s = strings.ToLower(s)
	for _, w := range words {
		if w != "" && strings.Contains(s, strings.ToLower(w)) {
			return true
		}
	}
	return false
}

// cut shortens vendor text to n runes for messages.
func cut(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n]) + "…"
}

// Choices implements engine.Chooser: the schedulers /draw may name as --sampler.
func (v *Vendor) Choices(k engine.Kind) engine.Choices {
	if k == engine.KindDraw {
		// model_id and lora are sent as given: the document's list is
		// not said to be the whole of what the service takes.
		return engine.Choices{Samplers: engine.SamplerChoices(v.cfg.Schedulers, SamplerAliases), FreeNames: []string{"model", "lora"}}
	}
	return engine.Choices{}
}
