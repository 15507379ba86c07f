// Package apispace is the adapter for APISpace's AIGC image API
// (23329.o.apispace.com/aigc, run by Nolibox): text to image, image to image,
// portrait to anime and 4× super-resolution. Every call makes one image and
// is billed; the vendor reports by calling notify_url, or is polled.
//
// Sources, tagged as in the vendors digest (shared/VENDORS.md §3): [S] the seed document
// (headers, the txt2img body with its params repeated at the top level,
// the callback payload, sizes, durations); [P] public documents (the submit
// reply, /query-image, img2img's params.url, Nolibox's anime styles and
// samplers); [I] inferences (the anime and super-resolution paths and task
// names, error codes). Everything [P] or [I] is a Config field.
//
// Inputs go to APISpace as links only. Without a public URL for the bot the
// vendor declines, in Check, every request that has an input image, so the
// engine routes it to the next vendor or tells the user why at once.
package apispace

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/picbot/picbot/engine"
)

// Name is the vendor's name in routes, callbacks and jobs.
const Name = "apispace"

// Paths are the endpoints under BaseURL.
type Paths struct {
	Txt2Img  string `yaml:"txt2img"`  // [S] /txt2img
	Img2Img  string `yaml:"img2img"`  // [P] /img2img
	Anime    string `yaml:"anime"`    // [I] /portrait2anime
	SuperRes string `yaml:"superres"` // [I] /superres
	Query    string `yaml:"query"`    // [P] /query-image
}

// Tasks are the "task" values sent with each kind of call.
type Tasks struct {
	Txt2Img  string `yaml:"txt2img"`  // [S] txt2img.sd
	Img2Img  string `yaml:"img2img"`  // [P] img2img.sd
	Anime    string `yaml:"anime"`    // [I] img2img.acg
	SuperRes string `yaml:"superres"` // [I] img2img.sr, Nolibox's name for it
}

// Config configures the vendor. Zero values take the defaults that New applies.
type Config struct {
	BaseURL string `yaml:"base_url"`
	// Token goes in the X-APISpace-Token header, and nowhere else: never in logs or errors.
	Token string `yaml:"token"`
	// Model is sent when the user names none; Models are those a user may name with --model.
	Model  string   `yaml:"model"`
	Models []string `yaml:"models"`
	// Sampler is sent when the user names none; Samplers are those a user may name.
	Sampler  string   `yaml:"sampler"`
	Samplers []string `yaml:"samplers"`
	Paths    Paths    `yaml:"paths"`
	Tasks    Tasks    `yaml:"tasks"`
	// Styles maps a --style a user types to the vendor's style value [P].
	// The bot's default style, "anime", must be a key.
	Styles map[string]string `yaml:"styles"`
	// MaxSide bounds a generated image's width and height [S: 768].
	MaxSide int `yaml:"max_side"`
	// SuperResMaxSide bounds a super-resolution input's sides [I: the
	// vendor's own max_wh, 1024, in the seed's callback].
	SuperResMaxSide int `yaml:"superres_max_side"`
	// Callbacks asks for notify_url reports when the bot has a public URL
	// (default true); false polls instead, at one billed call a poll.
	Callbacks *bool `yaml:"callbacks"`
	// Typical durations [S]: a 512×512 image 6–8 s, super-resolution of one
	// 3–6 s, queueing not counted. The first poll waits this long, scaled up
	// by pixels for larger images, so that it usually finds the task done.
	DrawDuration     time.Duration `yaml:"draw_duration"`
	AnimeDuration    time.Duration `yaml:"anime_duration"`
	SuperResDuration time.Duration `yaml:"superres_duration"`
	// PollEvery is the wait after the first poll, growing by half up to PollMax.
	PollEvery time.Duration `yaml:"poll_every"`
	PollMax   time.Duration `yaml:"poll_max"`
	// UnsafeCodes and InvalidCodes are reply codes known to mean a sensitive
	// prompt or bad parameters [I]; without them the reply's msg decides.
	UnsafeCodes  []int `yaml:"unsafe_codes"`
	InvalidCodes []int `yaml:"invalid_codes"`

	// PublicInputs tells the vendor the engine can give it links to input
	// images (the bot has http.public_url). The wiring sets it, not YAML.
	PublicInputs bool `yaml:"-"`
}

// DefaultStyles are Nolibox's anime styles [P], by lower-case names a user
// may type; "anime", the bot's default style, is one of them.
func DefaultStyles() map[string]string {
	return map[string]string{
		"anime":       "Gorgeous_style",
		"chinese":     "Chinese_style",
		"american":    "American_style",
		"cute":        "Cute_style",
		"gorgeous":    "Gorgeous_style",
		"horrible":    "Horrible_style",
		"avatar":      "Avatar_style",
		"fighting":    "Fighting_style",
		"machine":     "Machine_style",
		"cyberfuture": "Cyberfuture_style",
		"jojo":        "JOJO_style",
		"bunny":       "Bunny_style",
		"catear":      "CatEar_style",
	}
}

// Defaults is the configuration with every default filled in.
func Defaults() Config {
	var c Config
	c.fill()
	return c
}

func (c *Config) fill() {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	defDur := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.BaseURL, "https://23329.o.apispace.com/aigc")
	c.BaseURL = strings.TrimRight(c.BaseURL, "/")
	def(&c.Model, "art")
	def(&c.Sampler, "k_euler")
	def(&c.Paths.Txt2Img, "/txt2img")
	def(&c.Paths.Img2Img, "/img2img")
	def(&c.Paths.Anime, "/portrait2anime")
	def(&c.Paths.SuperRes, "/superres")
	def(&c.Paths.Query, "/query-image")
	def(&c.Tasks.Txt2Img, "txt2img.sd")
	def(&c.Tasks.Img2Img, "img2img.sd")
	def(&c.Tasks.Anime, "img2img.acg")
	def(&c.Tasks.SuperRes, "img2img.sr")
	if len(c.Models) == 0 {
		c.Models = []string{c.Model}
	}
	if len(c.Samplers) == 0 {
		c.Samplers = []string{"ddim", "plms", "klms", "solver", "k_euler", "k_euler_a"}
	}
	if len(c.Styles) == 0 {
		c.Styles = DefaultStyles()
	}
	if c.MaxSide <= 0 {
		c.MaxSide = 768
	}
	if c.SuperResMaxSide <= 0 {
		c.SuperResMaxSide = 1024
	}
	if c.Callbacks == nil {
		yes := true
		c.Callbacks = &yes
	}
	defDur(&c.DrawDuration, 8*time.Second)
	defDur(&c.AnimeDuration, 8*time.Second)
	defDur(&c.SuperResDuration, 6*time.Second)
	defDur(&c.PollEvery, 3*time.Second)
	defDur(&c.PollMax, 20*time.Second)
}

// Vendor implements engine.CallbackVendor.
type Vendor struct {
	cfg    Config
	client *http.Client
	log    *slog.Logger
}

var _ engine.CallbackVendor = (*Vendor)(nil)

// Validate reports each problem in c to bad, under its YAML key. Zero
// values are fine: they mean the defaults.
func (c Config) Validate(bad func(key, format string, args ...any)) {
	if c.Token == "" {
		bad("token", "is required")
	}
	if c.BaseURL != "" && !strings.HasPrefix(c.BaseURL, "http://") && !strings.HasPrefix(c.BaseURL, "https://") {
		bad("base_url", "must start with http:// or https://, not %q", c.BaseURL)
	}
	for key, p := range map[string]string{"paths.txt2img": c.Paths.Txt2Img, "paths.img2img": c.Paths.Img2Img,
		"paths.anime": c.Paths.Anime, "paths.superres": c.Paths.SuperRes, "paths.query": c.Paths.Query} {
		if p != "" && !strings.HasPrefix(p, "/") {
			bad(key, "must start with /, not %q", p)
		}
	}
	if len(c.Styles) > 0 {
		if _, ok := c.Styles[engine.DefaultStyle]; !ok {
			bad("styles", "must include %q, the style a command without --style asks for", engine.DefaultStyle)
		}
		for k, val := range c.Styles {
			if k != strings.ToLower(k) || val == "" {
				bad("styles."+k, "names must be lower case and values not empty")
			}
		}
	}
	if c.MaxSide < 0 || c.SuperResMaxSide < 0 {
		bad("max_side", "max_side and superres_max_side must not be negative")
	}
	for key, d := range map[string]time.Duration{"draw_duration": c.DrawDuration, "anime_duration": c.AnimeDuration,
		"superres_duration": c.SuperResDuration, "poll_every": c.PollEvery, "poll_max": c.PollMax} {
		if d < 0 {
			bad(key, "must not be negative")
		}
	}
	if c.PollEvery > 0 && c.PollMax > 0 && c.PollMax < c.PollEvery {
		bad("poll_max", "must not be shorter than poll_every")
	}
}

// New returns the vendor. client may be nil (a client with a 30 s timeout), log may be nil.
func New(cfg Config, client *http.Client, log *slog.Logger) (*Vendor, error) {
	var errs []error
	cfg.Validate(func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("apispace: %s: %s", key, fmt.Sprintf(format, args...)))
	})
	if len(errs) > 0 {
		slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
		return nil, errors.Join(errs...)
	}
	cfg.fill()
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Vendor{cfg: cfg, client: client, log: log.With(slog.String("vendor", Name))}, nil
}

func (v *Vendor) Name() string { return Name }

// WantsCallback is the operator's choice, vendors.apispace.callbacks.
func (v *Vendor) WantsCallback() bool { return *v.cfg.Callbacks }

// CallbackReply is a small JSON body with status 200, which is all the
// vendor needs to stop retrying.
func (v *Vendor) CallbackReply() (string, []byte) {
	return "application/json", []byte(`{"code":0,"msg":"success"}`)
}

// Check refuses, with EINVALID and the reason, what APISpace cannot do, so
// the engine can pick the next vendor on the route.
func (v *Vendor) Check(r *engine.Request) error {
	if r.N > 1 {
		return engine.Errorf(engine.EINVALID, "APISpace makes one image per call; use --n 1.", "APISpace 每次只生成一张图片，请使用 --n 1。")
	}
	if len(r.Inputs) > 0 && !v.cfg.PublicInputs && !variation(r) {
		return engine.Errorf(engine.EINVALID, "APISpace fetches images by link, and this bot has no public address (http.public_url).",
			"APISpace 只能通过链接读取图片，而本机器人没有公网地址（http.public_url）。")
	}
	// The seed says the model reads Chinese and English, not that other
	// scripts are refused: they are sent as they are.
	switch r.Kind {
	case engine.KindDraw:
		return v.checkDraw(r)
	case engine.KindAnime:
		if _, ok := v.style(r.Style); !ok {
			return engine.Errorf(engine.EINVALID, "APISpace has no --style %q; try one of: %s.", "APISpace 没有 --style %q，可选：%s。", r.Style, v.styleNames())
		}
		return nil
	case engine.KindUpscale:
		if r.Scale != 4 {
			return engine.Errorf(engine.EINVALID, "APISpace only enlarges 4× each side; use --scale 4.", "APISpace 只支持宽高各放大 4 倍，请使用 --scale 4。")
		}
		if len(r.Inputs) == 1 {
			if in := r.Inputs[0]; in.Width > v.cfg.SuperResMaxSide || in.Height > v.cfg.SuperResMaxSide {
				return engine.Errorf(engine.EINVALID, "APISpace enlarges images of at most %[1]dx%[1]d; this one is %[2]dx%[3]d.",
					"APISpace 只能放大不超过 %[1]dx%[1]d 的图片，这张是 %[2]dx%[3]d。", v.cfg.SuperResMaxSide, in.Width, in.Height)
			}
		}
		return nil
	case engine.KindSwapface:
		return engine.Errorf(engine.EINVALID, "APISpace does not swap faces.", "APISpace 不支持换脸。")
	}
	return engine.Errorf(engine.EINVALID, "APISpace cannot do /%s.", "APISpace 不支持 /%s。", r.Kind)
}

func (v *Vendor) checkDraw(r *engine.Request) error {
	if r.Width > v.cfg.MaxSide || r.Height > v.cfg.MaxSide {
		return engine.Errorf(engine.EINVALID, "APISpace makes images of at most %[1]dx%[1]d (512x512 is standard); --size %[2]dx%[3]d is too large.",
			"APISpace 生成的图片最大 %[1]dx%[1]d（标准为 512x512），--size %[2]dx%[3]d 太大了。", v.cfg.MaxSide, r.Width, r.Height)
	}
	if r.LoRA != "" {
		return engine.Errorf(engine.EINVALID, "APISpace has no LoRAs.", "APISpace 不支持 LoRA。")
	}
	if r.Model != "" && !slices.Contains(v.cfg.Models, r.Model) {
		return engine.Errorf(engine.EINVALID, "APISpace has no model %q; try one of: %s.", "APISpace 没有模型 %q，可选：%s。", r.Model, strings.Join(v.cfg.Models, ", "))
	}
	if _, ok := engine.MapSampler(r.Sampler, v.cfg.Samplers, SamplerAliases); r.Sampler != "" && !ok {
		return engine.Errorf(engine.EINVALID, "APISpace has no sampler %q; try one of: %s.", "APISpace 没有采样器 %q，可选：%s。", r.Sampler, strings.Join(v.cfg.Samplers, ", "))
	}
	return nil
}

// style returns the vendor's value for a style a user typed: a configured
// name, or one of the vendor's own values, case-insensitively.
func (v *Vendor) style(s string) (string, bool) {
	if val, ok := v.cfg.Styles[strings.ToLower(s)]; ok {
		return val, true
	}
	for _, val := range v.cfg.Styles {
		if strings.EqualFold(val, s) {
			return val, true
		}
	}
	return "", false
}

func (v *Vendor) styleNames() string {
	names := make([]string, 0, len(v.cfg.Styles))
	for k := range v.cfg.Styles {
		names = append(names, k)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// Timing: the first poll after the vendor's typical duration, scaled up by
// pixels beyond 512×512 (the seed gives no figure for smaller images, so
// they are not scaled down); then every PollEvery, growing, up to PollMax.
// Every submission and every poll is billed.
func (v *Vendor) Timing(r *engine.Request) engine.Timing {
	const std = 512 * 512
	first := v.cfg.DrawDuration
	pixels := r.Width * r.Height
	switch r.Kind {
	case engine.KindAnime:
		first, pixels = v.cfg.AnimeDuration, 0
	case engine.KindUpscale:
		first, pixels = v.cfg.SuperResDuration, 0
		if len(r.Inputs) == 1 {
			pixels = r.Inputs[0].Width * r.Inputs[0].Height
		}
	}
	if pixels > std {
		first = time.Duration(float64(first) * float64(pixels) / std)
	}
	return engine.Timing{First: first, Every: v.cfg.PollEvery, Max: v.cfg.PollMax, Billed: true}
}

// sdParams are the txt2img parameters of the seed's Python sample, in its
// order; img2img adds url.
type sdParams struct {
	Model          string  `json:"model"`
	Text           string  `json:"text"`
	W              int     `json:"w"`
	H              int     `json:"h"`
	GuidanceScale  float64 `json:"guidance_scale"`
	NegativePrompt string  `json:"negative_prompt"`
	Sampler        string  `json:"sampler"`
	Seed           int64   `json:"seed"`
	NumSteps       int     `json:"num_steps"`
	URL            string  `json:"url,omitempty"`
	// Echoed in the seed's callback under request.model; Nolibox's names.
	UseCircular       bool    `json:"use_circular,omitempty"`
	ClipSkip          int     `json:"clip_skip,omitempty"`
	VariationSeed     int64   `json:"variation_seed,omitempty"`
	VariationStrength float64 `json:"variation_strength,omitempty"`
}

// SamplerAliases map the canonical sampler names (engine.Samplers) to
// Nolibox's samplers [P]: its k_* are k-diffusion's, solver is DPM-Solver.
var SamplerAliases = map[string]string{
	"DDIM": "ddim", "PLMS": "plms", "LMS": "klms", "DPM++ 2M": "solver", "Euler": "k_euler", "Euler a": "k_euler_a",
}

// variation reports whether r asks for a variation this vendor makes with
// variation_seed and variation_strength, from the seed, not from the image.
func variation(r *engine.Request) bool {
	return r.Kind == engine.KindDraw && r.VariationStrength > 0
}

// Supports implements engine.FeatureVendor: what the callback's echo of
// the request shows the backend takes.
func (v *Vendor) Supports(k engine.Kind, feature string) bool {
	switch k {
	case engine.KindDraw:
		return feature == engine.FeatureTile || feature == engine.FeatureClipSkip
	case engine.KindUpscale:
		return feature == engine.FeatureAnimeModel
	}
	return false
}

// animeParams: the input by link and a style [S]. Nolibox names the link
// image_url, img2img names it url [P]; both are sent, as the vendor ignores
// fields it does not know.
type animeParams struct {
	URL      string `json:"url"`
	ImageURL string `json:"image_url"`
	Style    string `json:"style"`
}

// srParams: the input by link; is_anime picks Nolibox's other model [P].
type srParams struct {
	URL     string `json:"url"`
	IsAnime bool   `json:"is_anime"`
}

// request builds the call for j: the path and the body. The body is the
// seed's shape: task, params, the same params again at the top level, and
// notify_url (empty when the engine polls).
func (v *Vendor) request(r *engine.Request, t engine.Task) (string, map[string]any, error) {
	var (
		path, task string
		params     any
	)
	input := func() (string, error) {
		if len(t.InputURLs) == 0 || t.InputURLs[0] == "" {
			// Check refuses inputs without a public URL, so this is a wiring
			// fault, not the request's: not EINVALID, so another vendor that
			// takes image bytes may still do the job.
			return "", errors.New("apispace: no public link to the input image")
		}
		return t.InputURLs[0], nil
	}
	switch r.Kind {
	case engine.KindDraw:
		p := sdParams{Model: r.Model, Text: r.Prompt, W: r.Width, H: r.Height, GuidanceScale: r.Guidance,
			NegativePrompt: r.Negative, Sampler: r.Sampler, Seed: r.Seed, NumSteps: r.Steps}
		if p.Model == "" {
			p.Model = v.cfg.Model
		}
		if s, ok := engine.MapSampler(p.Sampler, v.cfg.Samplers, SamplerAliases); ok {
			p.Sampler = s
		}
		if p.Sampler == "" {
			p.Sampler = v.cfg.Sampler
		}
		p.UseCircular, p.ClipSkip = r.Tile, r.ClipSkip
		path, task = v.cfg.Paths.Txt2Img, v.cfg.Tasks.Txt2Img
		if variation(r) {
			// The same seed, nudged: Nolibox's variations, not image to image.
			p.VariationSeed, p.VariationStrength = r.VariationSeed, r.VariationStrength
			if p.VariationSeed <= 0 {
				p.VariationSeed = rand.Int64N(1 << 32)
			}
		} else if len(r.Inputs) > 0 {
			u, err := input()
			if err != nil {
				return "", nil, err
			}
			p.URL = u
			path, task = v.cfg.Paths.Img2Img, v.cfg.Tasks.Img2Img
		}
		params = p
	case engine.KindAnime:
		u, err := input()
		if err != nil {
			return "", nil, err
		}
		style, _ := v.style(r.Style)
		path, task, params = v.cfg.Paths.Anime, v.cfg.Tasks.Anime, animeParams{URL: u, ImageURL: u, Style: style}
	case engine.KindUpscale:
		u, err := input()
		if err != nil {
			return "", nil, err
		}
		path, task, params = v.cfg.Paths.SuperRes, v.cfg.Tasks.SuperRes, srParams{URL: u, IsAnime: r.AnimeModel}
	default:
		return "", nil, engine.Errorf(engine.EINVALID, "APISpace cannot do /%s.", "APISpace 不支持 /%s。", r.Kind)
	}
	// Through JSON, so the top-level copy is exactly what params holds.
	raw, err := json.Marshal(params)
	if err != nil {
		return "", nil, fmt.Errorf("apispace: encode params: %w", err)
	}
	var flat map[string]any
	if err := json.Unmarshal(raw, &flat); err != nil {
		return "", nil, fmt.Errorf("apispace: encode params: %w", err)
	}
	body := make(map[string]any, len(flat)+3)
	for k, val := range flat {
		body[k] = val
	}
	body["task"] = task
	body["params"] = json.RawMessage(raw)
	body["notify_url"] = t.CallbackURL
	return path, body, nil
}

// Submit creates the task and returns its uid. A reply the vendor gives
// about the request itself (bad parameters, a sensitive prompt) is EINVALID
// or EUNSAFE; anything else (auth, quota, 5xx, timeouts, garbage) is a plain
// error, so the engine tries again or fails over.
func (v *Vendor) Submit(ctx context.Context, j *engine.Job, t engine.Task) (string, error) {
	path, body, err := v.request(&j.Request, t)
	if err != nil {
		return "", err
	}
	var data struct {
		UID string `json:"uid"`
	}
	if err := v.post(ctx, path, body, &data); err != nil {
		return "", v.refusal(err)
	}
	if data.UID == "" {
		return "", errors.New("apispace: submit: the reply has no uid")
	}
	v.log.Debug("task submitted", slog.String("job_id", j.ID), slog.String("task_id", data.UID), slog.String("path", path))
	return data.UID, nil
}

// Query asks /query-image about j's task.
func (v *Vendor) Query(ctx context.Context, j *engine.Job) (*engine.Outcome, error) {
	var data result
	if err := v.post(ctx, v.cfg.Paths.Query, map[string]string{"uid": j.TaskID}, &data); err != nil {
		var ae *apiError
		if errors.As(err, &ae) && ae.notFound() {
			return &engine.Outcome{TaskID: j.TaskID, State: engine.TaskFailed, Progress: -1, Err: lost(err)}, nil
		}
		return nil, fmt.Errorf("apispace: query %s: %w", j.TaskID, err)
	}
	if data.UID == "" {
		data.UID = j.TaskID
	}
	out := &engine.Outcome{TaskID: data.UID, Progress: -1}
	switch strings.ToLower(strings.TrimSpace(data.Status)) {
	case "pending", "queued", "waiting":
		out.State = engine.TaskQueued
	case "working", "running", "processing":
		out.State = engine.TaskRunning
	case "finished", "success", "done":
		return v.finished(j, &data), nil
	case "exception", "interrupted", "failed", "error":
		out.State, out.Err = engine.TaskFailed, failure(data.Reason)
	case "not_found":
		out.State, out.Err = engine.TaskFailed, lost(fmt.Errorf("apispace: task %s: status not_found", j.TaskID))
	default:
		// An unknown word is not worth failing a paid task for: keep polling
		// until the job's deadline.
		v.log.Warn("unknown task status", slog.String("job_id", j.ID), slog.String("task_id", j.TaskID), slog.String("status", data.Status))
		out.State = engine.TaskRunning
	}
	return out, nil
}

// ParseCallback decodes the notify_url payload [S]. It is JSON; boolean
// fields also take "True"/"False"-style strings and 0/1, which is harmless.
// The seed's own sample, with curly quotes and Python's True, is not JSON
// and is refused: the engine then polls, which is always safe.
func (v *Vendor) ParseCallback(j *engine.Job, body []byte) (*engine.Outcome, error) {
	cb, err := decodeCallback(body)
	if err != nil {
		return nil, err
	}
	uid := cb.UID
	if uid == "" {
		uid = cb.Data.UID
	}
	if !cb.Success.set && !cb.Data.Safe.set && cb.Data.CDN == "" && cb.Data.COS == "" {
		// No verdict at all: ask the vendor instead.
		return nil, errors.New("apispace: callback has neither success, safe nor an image")
	}
	if !cb.Success.set || cb.Success.val {
		out := v.finished(j, &cb.Data)
		out.TaskID = uid
		return out, nil
	}
	return &engine.Outcome{TaskID: uid, State: engine.TaskFailed, Progress: -1, Err: failure(cb.Data.Reason)}, nil
}

func decodeCallback(body []byte) (*callback, error) {
	var cb callback
	if err := json.Unmarshal(body, &cb); err != nil {
		return nil, fmt.Errorf("apispace: callback is not JSON: %w", err)
	}
	if cb.UID == "" && cb.Data.UID == "" {
		return nil, errors.New("apispace: callback has no uid")
	}
	cb.Data.times()
	return &cb, nil
}

// finished turns a finished task into an outcome. The vendor's audit empties
// cdn and cos and sets safe false [S]: such a task failed, and its image,
// if any link were left, must never be shown.
func (v *Vendor) finished(j *engine.Job, d *result) *engine.Outcome {
	out := &engine.Outcome{TaskID: d.UID, Progress: -1}
	link := d.CDN
	if link == "" {
		link = d.COS
	}
	if (d.Safe.set && !d.Safe.val) || link == "" {
		out.State = engine.TaskFailed
		out.Err = &engine.Error{Code: engine.EUNSAFE,
			EN:  "The image service's content check rejected the picture.",
			ZH:  "图片未通过绘图服务的内容审核。",
			Err: fmt.Errorf("apispace: task %s finished with safe %v, no link, reason %q", d.UID, d.Safe.val, d.Reason)}
		return out
	}
	var seed int64
	if j.Request.Kind == engine.KindDraw {
		seed = j.Request.Seed
	}
	out.State, out.Progress = engine.TaskDone, 1
	out.Images = []engine.Remote{{URL: link, Seed: seed}}
	return out
}

// failure is the error for a task the vendor failed with reason.
func failure(reason string) error {
	cause := fmt.Errorf("apispace: task failed: %q", reason)
	if sensitive(reason) {
		return engine.Wrap(engine.EUNSAFE, cause, "The image service's content check rejected the picture.",
			"图片未通过绘图服务的内容审核。")
	}
	return engine.Wrap(engine.EVENDOR, cause, "The image service could not make this picture.",
		"绘图服务未能生成这张图片。")
}

// lost is the error for a task the vendor no longer knows: another vendor may try.
func lost(cause error) error {
	return engine.Wrap(engine.ENOTFOUND, cause, "The image service lost the task.", "绘图服务丢失了这个任务。")
}

// post sends in as JSON to path and decodes the reply's data into out.
func (v *Vendor) post(ctx context.Context, path string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, v.cfg.BaseURL+path, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("request: %w", err)
	}
	req.Header.Set("X-APISpace-Token", v.cfg.Token)
	req.Header.Set("Authorization-Type", "apikey")
	req.Header.Set("Content-Type", "application/json")
	resp, err := v.client.Do(req)
	if err != nil {
		return fmt.Errorf("post %s: %w", path, err) // *url.Error names the URL, which holds no secret
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("post %s: read reply: %w", path, err)
	}
	var env envelope
	jsonErr := json.Unmarshal(raw, &env)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		ae := &apiError{Status: resp.StatusCode, Msg: v.redact(snippet(raw))}
		if jsonErr == nil && env.Code.set {
			ae.Code, ae.Msg, ae.Business = env.Code.val, v.redact(env.Msg), true
		}
		return ae
	}
	if jsonErr != nil {
		return fmt.Errorf("post %s: bad reply %q: %w", path, v.redact(snippet(raw)), jsonErr)
	}
	if !env.Code.set {
		return fmt.Errorf("post %s: reply without code: %q", path, v.redact(snippet(raw)))
	}
	if env.Code.val != 0 {
		return &apiError{Status: resp.StatusCode, Code: env.Code.val, Msg: v.redact(env.Msg), Business: true}
	}
	if len(env.Data) == 0 || string(env.Data) == "null" {
		return fmt.Errorf("post %s: reply without data", path)
	}
	if err := json.Unmarshal(env.Data, out); err != nil {
		return fmt.Errorf("post %s: bad data: %w", path, err)
	}
	return nil
}

// redact removes the token from text that came back from the network.
func (v *Vendor) redact(s string) string {
	if v.cfg.Token == "" {
		return s
	}
	return strings.ReplaceAll(s, v.cfg.Token, "[token]")
}

func snippet(b []byte) string {
	const n = 200
	s := strings.ToValidUTF8(string(b), "?")
	if utf8.RuneCountInString(s) > n {
		return string([]rune(s)[:n]) + "…"
	}
	return s
}

// refusal classifies a failed submission. Only a business reply about the
// request itself refuses it (EINVALID, EUNSAFE); auth, quota, rate limits,
// 5xx and the unknown stay plain errors, so the engine fails over.
func (v *Vendor) refusal(err error) error {
	var ae *apiError
	if !errors.As(err, &ae) {
		return fmt.Errorf("apispace: submit: %w", err)
	}
	wrapped := fmt.Errorf("apispace: submit: %w", err)
	switch {
	case ae.Status != 0 && ae.Status != http.StatusOK && ae.Status != http.StatusBadRequest && ae.Status != http.StatusUnprocessableEntity:
		return wrapped // 401, 403, 429, 5xx: the account or the service, not the request
	case slices.Contains(v.cfg.UnsafeCodes, ae.Code):
		return unsafePrompt(wrapped)
	case slices.Contains(v.cfg.InvalidCodes, ae.Code):
		return invalid(wrapped, ae.Msg)
	case account(ae.Msg):
		return wrapped
	case sensitive(ae.Msg):
		return unsafePrompt(wrapped)
	case badParams(ae.Msg):
		return invalid(wrapped, ae.Msg)
	}
	return wrapped
}

func unsafePrompt(cause error) error {
	return engine.Wrap(engine.EUNSAFE, cause, "The image service refused the prompt as sensitive.",
		"绘图服务认为提示词涉及敏感内容，拒绝生成。")
}

func invalid(cause error, msg string) error {
	msg = strings.TrimSpace(msg)
	if utf8.RuneCountInString(msg) > 120 {
		msg = string([]rune(msg)[:120]) + "…"
	}
	return engine.Wrap(engine.EINVALID, cause, "The image service refused the request (%s).",
		"绘图服务拒绝了这个请求（%s）。", msg)
}

func containsAny(s string, words ...string) bool {
	s = strings.ToLower(s)
	for _, w := range words {
		if strings.Contains(s, w) {
			return true
		}
	}
	return false
}

// account: the message is about the account or the service, whatever its code.
func account(msg string) bool {
	return containsAny(msg, "token", "auth", "apikey", "鉴权", "认证", "权限", "quota", "余额", "次数", "欠费", "充值",
		"limit", "限流", "频繁", "busy", "繁忙", "timeout", "超时", "服务异常", "internal")
}

// sensitive: the vendor's audit refused the prompt or the picture.
func sensitive(msg string) bool {
	return containsAny(msg, "敏感", "违规", "违禁", "涉黄", "涉政", "涉暴", "色情", "审核", "屏蔽",
		"sensitive", "unsafe", "nsfw", "audit", "porn", "forbidden word")
}

// badParams: the vendor found the parameters wrong.
func badParams(msg string) bool {
	return containsAny(msg, "参数", "不合法", "非法", "格式", "不支持", "过大", "超出", "超过",
		"param", "invalid", "unsupported", "too large", "out of range")
}

// Choices implements engine.Chooser: the configured models, samplers and anime styles.
func (v *Vendor) Choices(k engine.Kind) engine.Choices {
	switch k {
	case engine.KindDraw:
		return engine.Choices{Models: slices.Clone(v.cfg.Models), Samplers: engine.SamplerChoices(v.cfg.Samplers, SamplerAliases), Ignores: []string{"lora"}}
	case engine.KindAnime:
		return engine.Choices{Styles: strings.Split(v.styleNames(), ", ")}
	}
	return engine.Choices{}
}
