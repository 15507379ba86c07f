// Package a1111 is the adapter for a self-hosted AUTOMATIC1111 Stable
// Diffusion web UI, through its API (--api): modules/api/api.py,
// modules/api/models.py and modules/progress.py in its sources.
//
// /draw is txt2img, or img2img with a reference image; /anime is img2img
// with an anime prompt; /upscale is extra-single-image; /swapface is the
// ReActor extension's /reactor/image, offered only when the extension is
// installed. The generation calls block until the image is done, so the
// adapter makes each call in the background and Submit returns at once
// with the task id it set (force_task_id); Query reports the held answer
// when it has come, and otherwise the task's state, progress and live
// preview from POST /internal/progress. The engine is woken as soon as a
// call returns (engine.Waker), so a finished image waits for no poll.
//
// A1111 keeps no results for the API: after a restart of the bot the
// answer of a call it cut is lost. The task is then looked up by its id:
// while the web UI still runs it (or has it queued), the adapter waits;
// once it is not running, the task is made again under the same id, and
// counted (Reruns). A job is never run twice at the same time.
package a1111

import (
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/picbot/picbot/engine"
	"github.com/picbot/picbot/engine/backends"
)

// Name is the backend's name in routes and job records.
const Name = "a1111"

// Defaults of the configuration.
const (
	DefaultUpscaler    = "R-ESRGAN 4x+"
	DefaultDenoising   = 0.75
	DefaultAnimePrompt = "anime style, masterpiece, best quality"
	DefaultPollEvery   = time.Second
	DefaultCallTimeout = 10 * time.Minute
	DefaultCatalogTTL  = 5 * time.Minute
	DefaultMaxReply    = 200 << 20
	// MaxUpscale is extra-single-image's upscaling_resize bound (le=8).
	MaxUpscale = 8
	// MaxLoRAs bounds --lora's comma-separated list.
	MaxLoRAs = 5
	// DefaultCodeFormerWeight is codeformer_weight for --face-restore codeformer.
	DefaultCodeFormerWeight = 0.5
	// AnimeUpscaler is the web UI's upscaler for drawings (--anime).
	AnimeUpscaler = "R-ESRGAN 4x+ Anime6B"
)

// Hires configures txt2img's high-resolution fix (enable_hr).
type Hires struct {
	Enabled   bool    `yaml:"enabled"`
	Scale     float64 `yaml:"scale"`     // hr_scale, default 2
	Upscaler  string  `yaml:"upscaler"`  // hr_upscaler, default "Latent"
	Steps     int     `yaml:"steps"`     // hr_second_pass_steps, 0: as many as the first pass
	Denoising float64 `yaml:"denoising"` // denoising_strength of the second pass, default 0.7
}

// ControlNet configures /draw with a reference image through the
// ControlNet extension (alwayson_scripts.controlnet, its API's unit
// fields), instead of img2img, where the extension is installed.
type ControlNet struct {
	Enabled bool    `yaml:"enabled"`
	Module  string  `yaml:"module"` // the preprocessor, default "canny"
	Model   string  `yaml:"model"`  // like "control_v11p_sd15_canny [d14c016b]"
	Weight  float64 `yaml:"weight"` // default 1
	// Types maps --control-type names to a preprocessor and a model; a
	// --control without a type uses Module and Model above.
	Types map[string]ControlType `yaml:"types"`
}

// ControlType is one --control-type: the ControlNet unit's module and model.
type ControlType struct {
	Module string `yaml:"module"`
	Model  string `yaml:"model"`
}

// Config configures the adapter. Zero values mean the defaults above.
type Config struct {
	// BaseURL is the web UI's address, like http://127.0.0.1:7860; BaseURLs
	// lists several (several GPUs): each job goes to the least busy.
	BaseURL  string   `yaml:"base_url"`
	BaseURLs []string `yaml:"base_urls"`
	// Username and Password are --api-auth's; Token a bearer token for a
	// proxy in front of the web UI. Secrets: from the environment preferably.
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	Token    string `yaml:"token"`
	// Concurrency is how many jobs one web UI runs at once (it has one
	// queue lock: 1). The engine keeps one more waiting there, no more.
	Concurrency int `yaml:"concurrency"`
	// Model, VAE and ClipSkip go in override_settings (sd_model_checkpoint,
	// sd_vae, CLIP_stop_at_last_layers) when set; --model overrides Model.
	Model    string `yaml:"model"`
	VAE      string `yaml:"vae"`
	ClipSkip int    `yaml:"clip_skip"`
	// Sampler and Scheduler are used when a command names no --sampler.
	Sampler   string `yaml:"sampler"`
	Scheduler string `yaml:"scheduler"`
	// RestoreFaces sets restore_faces on every generation.
	RestoreFaces bool  `yaml:"restore_faces"`
	Hires        Hires `yaml:"hires"`
	// Denoising is denoising_strength for /draw with a reference image and /anime.
	Denoising   float64 `yaml:"denoising"`
	AnimePrompt string  `yaml:"anime_prompt"`
	// Upscaler is extra-single-image's upscaler_1; FaceRestore its
	// gfpgan_visibility (0..1, 0: none).
	Upscaler    string  `yaml:"upscaler"`
	FaceRestore float64 `yaml:"face_restore"`
	// ControlNet, when enabled and installed, guides /draw with a reference image.
	ControlNet ControlNet `yaml:"controlnet"`
	// ADetailer runs the ADetailer extension on /draw, when it is installed.
	ADetailer bool `yaml:"adetailer"`
	// PollEvery is how often progress is read while a job runs.
	PollEvery time.Duration `yaml:"poll_every"`
	// HealthEvery is how often each of several base URLs is checked
	// (GET /internal/ping); one that fails is skipped until it answers. 0: 15 s.
	HealthEvery time.Duration `yaml:"health_every"`
	// CallTimeout bounds one blocking generation call.
	CallTimeout time.Duration `yaml:"call_timeout"`
	CatalogTTL  time.Duration `yaml:"catalog_ttl"`
	// Duration is a typical job's time, for queue ETAs until jobs were timed.
	Duration time.Duration `yaml:"duration"`
}

func (c Config) withDefaults() Config {
	if c.Concurrency <= 0 {
		c.Concurrency = 1
	}
	if c.Denoising <= 0 {
		c.Denoising = DefaultDenoising
	}
	if c.AnimePrompt == "" {
		c.AnimePrompt = DefaultAnimePrompt
	}
	if c.Upscaler == "" {
		c.Upscaler = DefaultUpscaler
	}
	if c.PollEvery <= 0 {
		c.PollEvery = DefaultPollEvery
	}
	if c.CallTimeout <= 0 {
		c.CallTimeout = DefaultCallTimeout
	}
	if c.CatalogTTL <= 0 {
		c.CatalogTTL = DefaultCatalogTTL
	}
	if c.HealthEvery <= 0 {
		c.HealthEvery = 15 * time.Second
	}
	if c.Duration <= 0 {
		c.Duration = 10 * time.Second
	}
	if c.Hires.Scale <= 0 {
		c.Hires.Scale = 2
	}
	if c.Hires.Upscaler == "" {
		c.Hires.Upscaler = "Latent"
	}
	if c.Hires.Denoising <= 0 {
		c.Hires.Denoising = 0.7
	}
	if c.ControlNet.Module == "" {
		c.ControlNet.Module = "canny"
	}
	if c.ControlNet.Weight <= 0 {
		c.ControlNet.Weight = 1
	}
	return c
}

// Defaults is the configuration with every default filled in.
func Defaults() Config { return Config{}.withDefaults() }

// URLs is every base URL configured.
func (c Config) URLs() []string { return backends.URLs(c.BaseURL, c.BaseURLs) }

// Validate reports each bad setting to bad, by key.
func (c Config) Validate(bad func(key, format string, args ...any)) {
	urls := c.URLs()
	if len(urls) == 0 {
		bad("base_url", "must be set to the web UI's address, like http://127.0.0.1:7860")
	}
	for _, s := range urls {
		if u, err := url.Parse(s); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("base_url", "%q is not an http(s) URL", s)
		}
	}
	if (c.Username == "") != (c.Password == "") {
		bad("password", "username and password go together (--api-auth user:password)")
	}
	if c.Concurrency < 0 {
		bad("concurrency", "must be at least 1, not %d", c.Concurrency)
	}
	if c.ControlNet.Enabled && c.ControlNet.Model == "" {
		bad("controlnet.model", "must name a ControlNet model (see the web UI's ControlNet model list) when controlnet.enabled is true")
	}
	for name, t := range c.ControlNet.Types {
		if t.Model == "" {
			bad("controlnet.types."+name+".model", "must name a ControlNet model")
		}
	}
	if c.FaceRestore < 0 || c.FaceRestore > 1 {
		bad("face_restore", "must be between 0 and 1, not %v", c.FaceRestore)
	}
	if c.Denoising < 0 || c.Denoising > 1 {
		bad("denoising", "must be between 0 and 1, not %v", c.Denoising)
	}
	for key, d := range map[string]time.Duration{"poll_every": c.PollEvery, "call_timeout": c.CallTimeout, "health_every": c.HealthEvery, "catalog_ttl": c.CatalogTTL, "duration": c.Duration} {
		if d < 0 {
			bad(key, "must not be negative (%s)", d)
		}
	}
}

// Blobs opens the engine's stored images: a task made again after a
// restart needs its inputs without the engine's Task.
type Blobs interface {
	Open(ctx context.Context, key string) (io.ReadCloser, error)
}

// run is one blocking call, held until its answer has been read.
type run struct {
	jobID   string
	kind    engine.Kind
	backend int
	done    chan struct{}
	out     *engine.Outcome // set before done closes
	unsent  error           // the web UI could not be reached: the call never arrived
	ended   time.Time
	preview int    // the last id_live_preview seen
	latest  []byte // that preview: handed out at every poll, so one a chat's edit limit skipped is shown later
	cancel  context.CancelFunc
}

// Vendor implements engine.Vendor and the engine's optional interfaces
// for self-hosted backends.
type Vendor struct {
	cfg    Config
	pool   *backends.Pool // the web UIs
	client *http.Client
	blobs  Blobs
	log    *slog.Logger
	now    func() time.Time

	engine.WakeHook

	mu     sync.Mutex
	runs   map[string]*run
	unsent map[string]bool // tasks whose call never reached the web UI
	reruns atomic.Int64
	// took is a moving average of a generation's time, for ETAs; lastEnd
	// is when each web UI last finished a call, since a call's own time
	// includes its wait for the queue lock.
	took    time.Duration
	timed   int
	lastEnd map[int]time.Time

	catMu    sync.Mutex
	caps     *caps
	capUntil time.Time
}

var (
	_ engine.Vendor     = (*Vendor)(nil)
	_ engine.Cataloguer = (*Vendor)(nil)
	_ engine.Chooser    = (*Vendor)(nil)
	_ engine.Waker      = (*Vendor)(nil)
	_ engine.Limited    = (*Vendor)(nil)
	_ engine.Canceller  = (*Vendor)(nil)
	_ engine.TaskFinder = (*Vendor)(nil)

	_ engine.FeatureVendor = (*Vendor)(nil)
)

// New returns the adapter. client nil means a default client; blobs reads
// input images for a task made again after a restart.
func New(cfg Config, client *http.Client, blobs Blobs, log *slog.Logger) (*Vendor, error) {
	cfg = cfg.withDefaults()
	var problems []string
	cfg.Validate(func(key, format string, args ...any) {
		problems = append(problems, key+": "+fmt.Sprintf(format, args...))
	})
	if len(problems) > 0 {
		return nil, errors.New(strings.Join(problems, "; "))
	}
	if client == nil {
		client = &http.Client{}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	v := &Vendor{cfg: cfg, client: client, blobs: blobs, log: log, now: time.Now, runs: map[string]*run{}, unsent: map[string]bool{}, took: cfg.Duration, lastEnd: map[int]time.Time{}}
	pool, err := backends.New(cfg.URLs(), v.ping, cfg.HealthEvery)
	if err != nil {
		return nil, err
	}
	v.pool = pool
	return v, nil
}

// Name implements engine.Vendor.
func (v *Vendor) Name() string { return Name }

// Reruns counts tasks made again because a restart lost their answer.
func (v *Vendor) Reruns() int64 { return v.reruns.Load() }

// Slots implements engine.Limited: the jobs all the web UIs run at once,
// and one more each waiting on its queue lock, so that the GPU starts the
// next job the moment one ends, without waiting for the bot.
func (v *Vendor) Slots() int { return (v.cfg.Concurrency + 1) * v.pool.Len() }

// Running implements engine.Limited: how many of the slots run at once.
func (v *Vendor) Running() int { return v.cfg.Concurrency * v.pool.Len() }

// Typical implements engine.Limited: a job's time at the backend, as measured.
func (v *Vendor) Typical(*engine.Request) time.Duration {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.took
}

// Timing implements engine.Vendor. Nothing is billed; the answer wakes
// the engine, so the polls only read progress and previews.
func (v *Vendor) Timing(*engine.Request) engine.Timing {
	return engine.Timing{First: v.cfg.PollEvery, Every: v.cfg.PollEvery, Max: 2 * v.cfg.PollEvery, Progress: true}
}

var loraWeight = regexp.MustCompile(`^-?\d+(\.\d+)?$`)

// loras is every --lora of r: the first (which may itself list several,
// comma-separated) and those given again (ExtraLoRAs).
func loras(r *engine.Request) string {
	all := slices.DeleteFunc(append([]string{r.LoRA}, r.ExtraLoRAs...), func(s string) bool { return strings.TrimSpace(s) == "" })
	return strings.Join(all, ",")
}

// loraTags turns --lora "name" or "name:0.8", several comma-separated,
// into the prompt tags <lora:name:weight> the Lora extension reads.
func loraTags(s string) (string, error) {
	var tags []string
	parts := strings.Split(s, ",")
	if len(parts) > MaxLoRAs {
		return "", engine.Errorf(engine.EINVALID, "At most %d LoRAs at once.", "一次最多 %d 个 LoRA。", MaxLoRAs)
	}
	for _, part := range parts {
		name, weight, found := strings.Cut(strings.TrimSpace(part), ":")
		if !found {
			weight = "1"
		}
		if !validName(name) || !loraWeight.MatchString(weight) {
			return "", engine.Errorf(engine.EINVALID, "--lora takes a LoRA name from /models, optionally with a weight (name:0.8), not %q.",
				"--lora 需要 /models 中的 LoRA 名称，可加权重（名称:0.8），而不是 %q。", s)
		}
		tags = append(tags, "<lora:"+name+":"+weight+">")
	}
	return strings.Join(tags, " "), nil
}

func validName(s string) bool {
	if s == "" || len(s) > 200 {
		return false
	}
	for _, c := range s {
		if unicode.IsControl(c) || strings.ContainsRune("<>:,", c) {
			return false
		}
	}
	return true
}

// Check implements engine.Vendor.
func (v *Vendor) Check(r *engine.Request) error {
	switch r.Kind {
	case engine.KindDraw:
		if l := loras(r); l != "" {
			if _, err := loraTags(l); err != nil {
				return err
			}
		}
		if err := v.checkOptions(r); err != nil {
			return err
		}
		if r.Model != "" && !validName(r.Model) {
			return engine.Errorf(engine.EINVALID, "--model %q is not a model name.", "--model %q 不是有效的模型名。", r.Model)
		}
		if r.Sampler != "" {
			if c := v.cachedCaps(); c != nil {
				if _, _, ok := c.sampler(r.Sampler); !ok {
					return engine.Errorf(engine.EINVALID, "Unknown --sampler %q; try one of: %s.", "未知的 --sampler %q，可选：%s。", r.Sampler, strings.Join(c.Samplers, ", "))
				}
			}
		}
	case engine.KindAnime:
	case engine.KindUpscale:
		if r.Scale < 1 || r.Scale > MaxUpscale {
			return engine.Errorf(engine.EINVALID, "--scale must be between 1 and %d here.", "这里 --scale 必须在 1 到 %d 之间。", MaxUpscale)
		}
		if c := v.cachedCaps(); c != nil && r.Upscaler != "" && len(c.Upscalers) > 0 && !slices.Contains(c.Upscalers, r.Upscaler) {
			return engine.Errorf(engine.EINVALID, "Unknown --upscaler %q; try one of: %s.", "未知的 --upscaler %q，可选：%s。", r.Upscaler, strings.Join(c.Upscalers, ", "))
		}
	case engine.KindSwapface:
		if c := v.cachedCaps(); c == nil || !c.ReActor {
			return engine.Errorf(engine.EINVALID, "/swapface needs the ReActor extension, which this AUTOMATIC1111 does not have.",
				"/swapface 需要 ReActor 扩展，这台 AUTOMATIC1111 没有安装。")
		}
	default:
		return engine.Errorf(engine.EINVALID, "AUTOMATIC1111 does not offer /%s.", "AUTOMATIC1111 不提供 /%s。", r.Kind)
	}
	return nil
}

// Submit implements engine.Vendor: it starts the blocking call in the
// background and returns the task id at once. An id ending "@N" names
// the N-th base URL, when there are several.
func (v *Vendor) Submit(ctx context.Context, j *engine.Job, t engine.Task) (string, error) {
	b, err := v.pickBackend()
	if err != nil {
		return "", err
	}
	body, path, err := v.body(ctx, j, t.ID, t.Open)
	if err != nil {
		return "", err
	}
	taskID := t.ID
	if v.pool.Len() > 1 {
		taskID = t.ID + "@" + strconv.Itoa(b)
	}
	v.start(j, taskID, b, path, body)
	return taskID, nil
}

func (v *Vendor) pickBackend() (int, error) {
	b, err := v.pool.Pick()
	if err != nil {
		return 0, fmt.Errorf("a1111: %w", err)
	}
	return b, nil
}

// ping is the health check: the web UI's GET /internal/ping (modules/ui.py).
func (v *Vendor) ping(ctx context.Context, base *url.URL) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base.JoinPath("internal/ping").String(), nil)
	if err != nil {
		return err
	}
	v.auth(req)
	resp, err := v.client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

// Close stops the health checks.
func (v *Vendor) Close() { v.pool.Close() }

// start makes the blocking call in the background under taskID.
func (v *Vendor) start(j *engine.Job, taskID string, b int, path string, body map[string]any) {
	ctx, cancel := context.WithTimeout(context.Background(), v.cfg.CallTimeout)
	r := &run{jobID: j.ID, kind: j.Request.Kind, backend: b, done: make(chan struct{}), preview: -1, cancel: cancel}
	v.mu.Lock()
	v.sweepLocked()
	v.runs[taskID] = r
	v.mu.Unlock()
	v.pool.Busy(b, 1)
	go func() {
		defer cancel()
		began := v.now()
		out := v.call(ctx, b, path, body, j.Request.Kind)
		v.pool.Busy(b, -1)
		var op *net.OpError
		if out.State == engine.TaskFailed && errors.As(out.Err, &op) && op.Op == "dial" {
			r.unsent = out.Err
		}
		v.mu.Lock()
		end := v.now()
		if out.State == engine.TaskDone {
			// A moving average over about ten jobs, for queue ETAs: the
			// GPU's time, from the later of the call and the last one's end.
			d := end.Sub(later(began, v.lastEnd[b]))
			if v.timed++; v.timed == 1 {
				v.took = d // the first measure beats the configured guess
			} else {
				v.took = (9*v.took + d) / 10
			}
		}
		v.lastEnd[b] = end
		r.out, r.ended = out, v.now()
		v.mu.Unlock()
		close(r.done)
		v.Wake(r.jobID)
	}()
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// keepDone is how long an answer is kept after it came, for the engine
// to read it (again, if its first write failed).
const keepDone = 10 * time.Minute

func (v *Vendor) sweepLocked() {
	now := v.now()
	for id, r := range v.runs {
		if r.out != nil && now.Sub(r.ended) > keepDone {
			delete(v.runs, id)
		}
	}
}

// body builds the request for j's kind.
func (v *Vendor) body(ctx context.Context, j *engine.Job, forceID string, open func(context.Context, int) (io.ReadCloser, error)) (map[string]any, string, error) {
	r := &j.Request
	input := func(i int) (string, error) {
		if open == nil {
			return "", errors.New("a1111: no way to read input images")
		}
		rc, err := open(ctx, i)
		if err != nil {
			return "", fmt.Errorf("a1111: open input %d: %w", i, err)
		}
		defer rc.Close()
		data, err := io.ReadAll(rc)
		if err != nil {
			return "", fmt.Errorf("a1111: read input %d: %w", i, err)
		}
		return base64.StdEncoding.EncodeToString(data), nil
	}
	switch r.Kind {
	case engine.KindUpscale:
		img, err := input(0)
		if err != nil {
			return nil, "", err
		}
		// ExtrasSingleImageRequest (modules/api/models.py): resize_mode 0
		// scales by upscaling_resize, 1 fits upscaling_resize_w × _h.
		b := map[string]any{"image": img, "resize_mode": 0, "upscaling_resize": r.Scale, "upscaler_1": v.upscaler(r)}
		if r.TargetWidth > 0 && r.TargetHeight > 0 {
			b["resize_mode"], b["upscaling_resize_w"], b["upscaling_resize_h"] = 1, r.TargetWidth, r.TargetHeight
			delete(b, "upscaling_resize")
		}
		strength := r.FaceRestoreStrength
		if strength == 0 {
			strength = 1
		}
		switch r.FaceRestore {
		case "gfpgan":
			b["gfpgan_visibility"] = strength
		case "codeformer":
			// codeformer_weight is CodeFormer's fidelity (0: strongest
			// restoration); the visibility blends the result in.
			b["codeformer_visibility"], b["codeformer_weight"] = strength, DefaultCodeFormerWeight
		default:
			if v.cfg.FaceRestore > 0 {
				b["gfpgan_visibility"] = v.cfg.FaceRestore
			}
		}
		return b, "sdapi/v1/extra-single-image", nil
	case engine.KindSwapface:
		face, err := input(0)
		if err != nil {
			return nil, "", err
		}
		target, err := input(1)
		if err != nil {
			return nil, "", err
		}
		// ReActor's API (its scripts/reactor_api.py); unverified against a running extension.
		return map[string]any{"source_image": face, "target_image": target, "source_faces_index": []int{0}, "face_index": []int{0},
			"model": "inswapper_128.onnx", "face_restorer": "CodeFormer", "restorer_visibility": 1, "upscaler": "None", "scale": 1}, "reactor/image", nil
	}
	prompt := r.Prompt
	if r.Kind == engine.KindAnime {
		prompt = strings.TrimSpace(v.cfg.AnimePrompt + ", " + r.Style + " " + r.Prompt)
	}
	if l := loras(r); l != "" {
		tags, err := loraTags(l)
		if err != nil {
			return nil, "", err
		}
		prompt += " " + tags
	}
	// An embedding is used by its name in the prompt text; --embedding
	// names negative ones (EasyNegative and the like), so they go there.
	negative := strings.Join(slices.DeleteFunc(append([]string{r.Negative}, r.Embeddings...), func(s string) bool { return s == "" }), ", ")
	b := map[string]any{
		"prompt": prompt, "negative_prompt": negative, "seed": r.Seed, "batch_size": r.Images(), "n_iter": 1,
		"force_task_id": forceID, "send_images": true, "save_images": false,
	}
	if r.Kind == engine.KindDraw {
		b["width"], b["height"], b["steps"], b["cfg_scale"] = r.Width, r.Height, r.Steps, r.Guidance
	}
	sampler, scheduler := v.cfg.Sampler, v.cfg.Scheduler
	if r.Sampler != "" {
		sampler, scheduler = r.Sampler, ""
		if c, _ := v.capabilities(ctx); c != nil {
			if s, sch, ok := c.sampler(r.Sampler); ok {
				sampler, scheduler = s, sch
			}
		}
	}
	if sampler != "" {
		b["sampler_name"] = sampler
	}
	if scheduler != "" {
		b["scheduler"] = scheduler
	}
	if v.cfg.RestoreFaces || r.RestoreFaces {
		b["restore_faces"] = true
	}
	if r.Tile {
		b["tiling"] = true // StableDiffusionProcessing.tiling
	}
	over := map[string]any{}
	model := v.cfg.Model
	if r.Model != "" {
		model = r.Model
	}
	if model != "" {
		over["sd_model_checkpoint"] = model
	}
	if vae := cmp.Or(r.VAE, v.cfg.VAE); vae != "" {
		over["sd_vae"] = vae
	}
	if skip := cmp.Or(r.ClipSkip, v.cfg.ClipSkip); skip > 0 {
		over["CLIP_stop_at_last_layers"] = skip
	}
	if len(over) > 0 {
		b["override_settings"] = over
		b["override_settings_restore_afterwards"] = true
	}
	if len(r.Inputs) == 0 && r.Kind == engine.KindDraw {
		h := v.cfg.Hires
		if rh := r.Hires; rh != nil {
			// --hires overrides the configured scale, steps and upscaler.
			h.Enabled, h.Scale = true, rh.Scale
			h.Steps = cmp.Or(rh.Steps, h.Steps)
			h.Upscaler = cmp.Or(rh.Upscaler, h.Upscaler)
		}
		if h.Enabled {
			b["enable_hr"], b["hr_scale"], b["hr_upscaler"], b["denoising_strength"] = true, h.Scale, h.Upscaler, h.Denoising
			if h.Steps > 0 {
				b["hr_second_pass_steps"] = h.Steps
			}
		}
	}
	if (v.cfg.ADetailer || r.FaceFix) && r.Kind == engine.KindDraw {
		if c, _ := v.capabilities(ctx); c != nil && c.ADetailer {
			// ADetailer's API: args [enable, skip_img2img, {ad_model}] (its README).
			b["alwayson_scripts"] = map[string]any{"ADetailer": map[string]any{"args": []any{true, false, map[string]any{"ad_model": "face_yolov8n.pt"}}}}
		}
	}
	if c := r.Control; c != nil {
		img, err := input(r.ControlIndex())
		if err != nil {
			return nil, "", err
		}
		module, model := v.cfg.ControlNet.Module, v.cfg.ControlNet.Model
		if t, ok := v.cfg.ControlNet.Types[c.Type]; ok {
			module, model = cmp.Or(t.Module, module), t.Model
		}
		// The ControlNet extension's API unit (its ControlNetUnit fields);
		// unverified against a running extension.
		unit := map[string]any{"enabled": true, "image": img, "module": module, "model": model,
			"weight": cmp.Or(c.Weight, v.cfg.ControlNet.Weight), "guidance_start": c.Start, "guidance_end": cmp.Or(c.End, 1), "pixel_perfect": true}
		scripts, _ := b["alwayson_scripts"].(map[string]any)
		if scripts == nil {
			scripts = map[string]any{}
		}
		scripts["controlnet"] = map[string]any{"args": []any{unit}}
		b["alwayson_scripts"] = scripts
	}
	if len(r.Inputs) == 0 {
		return b, "sdapi/v1/txt2img", nil
	}
	img, err := input(0)
	if err != nil {
		return nil, "", err
	}
	if cn := v.cfg.ControlNet; cn.Enabled && r.Kind == engine.KindDraw && r.Control == nil && r.Mask == nil && r.Strength == 0 {
		if c, _ := v.capabilities(ctx); c != nil && c.ControlNet {
			scripts, _ := b["alwayson_scripts"].(map[string]any)
			if scripts == nil {
				scripts = map[string]any{}
			}
			scripts["controlnet"] = map[string]any{"args": []any{map[string]any{
				"enabled": true, "image": img, "module": cn.Module, "model": cn.Model, "weight": cn.Weight, "pixel_perfect": true}}}
			b["alwayson_scripts"] = scripts
			return b, "sdapi/v1/txt2img", nil
		}
	}
	b["init_images"] = []string{img}
	b["denoising_strength"] = v.cfg.Denoising
	if r.Strength > 0 {
		b["denoising_strength"] = r.Strength
	}
	if r.Mask != nil {
		mask, err := input(r.MaskIndex())
		if err != nil {
			return nil, "", err
		}
		// StableDiffusionProcessingImg2Img: white is repainted; the
		// masked area is filled from the original (inpainting_fill 1)
		// and painted at the image's resolution.
		b["mask"], b["mask_blur"], b["inpainting_fill"], b["inpaint_full_res"], b["inpainting_mask_invert"] = mask, 4, 1, false, 0
	}
	return b, "sdapi/v1/img2img", nil
}

func (v *Vendor) auth(req *http.Request) {
	if v.cfg.Username != "" {
		req.SetBasicAuth(v.cfg.Username, v.cfg.Password)
	} else if v.cfg.Token != "" {
		req.Header.Set("Authorization", "Bearer "+v.cfg.Token)
	}
}

// do sends one request to backend b and decodes a 200's JSON into out.
func (v *Vendor) do(ctx context.Context, b int, method, path string, in, out any) (int, error) {
	var rd io.Reader
	if in != nil {
		data, err := json.Marshal(in)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(data)
	}
	route, query, _ := strings.Cut(path, "?")
	u := v.pool.Base(b).JoinPath(route)
	u.RawQuery = query
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return 0, err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	v.auth(req)
	resp, err := v.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("a1111 %s: %w", path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, DefaultMaxReply))
	if err != nil {
		return resp.StatusCode, fmt.Errorf("a1111 %s: read: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, apiError(path, resp.StatusCode, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, fmt.Errorf("a1111 %s: decode: %w", path, err)
		}
	}
	return resp.StatusCode, nil
}

// apiError reads the web UI's two error shapes: FastAPI's validation
// {"detail": [{"loc", "msg"}]} and its own {"error", "detail", "errors"}.
func apiError(path string, status int, data []byte) error {
	var e struct {
		Error  string          `json:"error"`
		Detail json.RawMessage `json:"detail"`
		Errors string          `json:"errors"`
	}
	_ = json.Unmarshal(data, &e)
	var detail string
	var list []struct {
		Loc []any  `json:"loc"`
		Msg string `json:"msg"`
	}
	if json.Unmarshal(e.Detail, &list) == nil && len(list) > 0 {
		var parts []string
		for _, d := range list {
			loc := make([]string, 0, len(d.Loc))
			for _, l := range d.Loc {
				if s := fmt.Sprint(l); s != "body" {
					loc = append(loc, s)
				}
			}
			parts = append(parts, strings.Join(loc, ".")+": "+d.Msg)
		}
		detail = strings.Join(parts, "; ")
	} else {
		_ = json.Unmarshal(e.Detail, &detail)
	}
	msg := strings.TrimSpace(strings.Join(slices.DeleteFunc([]string{e.Error, detail, e.Errors}, func(s string) bool { return s == "" }), ": "))
	if msg == "" {
		msg = strings.TrimSpace(string(data[:min(len(data), 200)]))
	}
	err := fmt.Errorf("a1111 %s: status %d: %s", path, status, msg)
	switch {
	case status == 422, status == 404 && (strings.Contains(detail, "not found") || strings.Contains(detail, "Not Found")):
		return engine.Wrap(engine.EINVALID, err, "AUTOMATIC1111 refused the request: %s.", "AUTOMATIC1111 拒绝了请求：%s。", msg)
	case status == 401 || status == 403:
		return fmt.Errorf("%w (check vendors.a1111.username/password/token)", err)
	}
	return err
}

type genReply struct {
	Images []string        `json:"images"`
	Info   json.RawMessage `json:"info"`  // a JSON object in a string (processed.js()); an object is read too
	Image  string          `json:"image"` // extra-single-image, reactor/image
}

// call makes the blocking call and turns its answer into an outcome.
func (v *Vendor) call(ctx context.Context, b int, path string, body map[string]any, kind engine.Kind) *engine.Outcome {
	var rep genReply
	status, err := v.do(ctx, b, http.MethodPost, path, body, &rep)
	v.pool.Record(b, err == nil || status == 422 || status == 404)
	if err != nil {
		return &engine.Outcome{State: engine.TaskFailed, Progress: -1, Err: err}
	}
	var info struct {
		AllSeeds []int64 `json:"all_seeds"`
	}
	raw := []byte(rep.Info)
	var s string
	if json.Unmarshal(raw, &s) == nil {
		raw = []byte(s)
	}
	_ = json.Unmarshal(raw, &info)
	imgs := rep.Images
	if rep.Image != "" {
		imgs = []string{rep.Image}
	}
	out := &engine.Outcome{State: engine.TaskDone, Progress: 1}
	for i, s := range imgs {
		data, err := decodeImage(s)
		if err != nil {
			return &engine.Outcome{State: engine.TaskFailed, Progress: -1, Err: fmt.Errorf("a1111 %s: image %d: %w", path, i, err)}
		}
		rm := engine.Remote{Data: data}
		if i < len(info.AllSeeds) {
			rm.Seed = info.AllSeeds[i]
		}
		out.Images = append(out.Images, rm)
	}
	return out
}

// decodeImage reads base64, bare or as a data: URI.
func decodeImage(s string) ([]byte, error) {
	if strings.HasPrefix(s, "data:") {
		if i := strings.IndexByte(s, ','); i >= 0 {
			s = s[i+1:]
		}
	}
	return base64.StdEncoding.DecodeString(s)
}

// progressReply is modules/progress.py's ProgressResponse.
type progressReply struct {
	Active        bool     `json:"active"`
	Queued        bool     `json:"queued"`
	Completed     bool     `json:"completed"`
	Progress      *float64 `json:"progress"`
	ETA           *float64 `json:"eta"`
	LivePreview   *string  `json:"live_preview"`
	IDLivePreview *int     `json:"id_live_preview"`
	TextInfo      *string  `json:"textinfo"`
}

func (v *Vendor) progress(ctx context.Context, b int, forceID string, previewID int) (*progressReply, error) {
	var p progressReply
	_, err := v.do(ctx, b, http.MethodPost, "internal/progress", map[string]any{"id_task": forceID, "id_live_preview": previewID, "live_preview": true}, &p)
	return &p, err
}

// split returns the id the web UI knows and the backend of a task id.
func (v *Vendor) split(taskID string) (string, int, error) {
	if v.pool.Len() == 1 {
		return taskID, 0, nil
	}
	i := strings.LastIndexByte(taskID, '@')
	n, err := strconv.Atoi(taskID[i+1:])
	if i < 0 || err != nil || n < 0 || n >= v.pool.Len() {
		return "", 0, engine.Errorf(engine.ENOTFOUND, "The task's backend is no longer configured.", "任务所在的后端已不在配置中。")
	}
	return taskID[:i], n, nil
}

// Query implements engine.Vendor.
func (v *Vendor) Query(ctx context.Context, j *engine.Job) (*engine.Outcome, error) {
	forceID, b, err := v.split(j.TaskID)
	if err != nil {
		return nil, err
	}
	v.mu.Lock()
	r := v.runs[j.TaskID]
	v.mu.Unlock()
	if r != nil {
		select {
		case <-r.done:
			if r.unsent != nil {
				// The web UI is down (restarting, say): the job waits for
				// it rather than fail, and is sent again once it answers.
				v.mu.Lock()
				delete(v.runs, j.TaskID)
				v.unsent[j.TaskID] = true
				v.mu.Unlock()
				return nil, fmt.Errorf("a1111 unreachable: %w", r.unsent)
			}
			return r.out, nil
		default:
		}
		if r.kind == engine.KindUpscale || r.kind == engine.KindSwapface {
			// Tools run under the queue lock with no task id: no progress to read.
			return &engine.Outcome{State: engine.TaskRunning, Progress: -1}, nil
		}
		p, err := v.progress(ctx, r.backend, forceID, r.preview)
		if err != nil {
			// The call under way tells how it ends; progress is a bonus.
			v.log.Debug("a1111 progress", slog.String("job_id", j.ID), slog.Any("err", err))
			return &engine.Outcome{State: engine.TaskRunning, Progress: -1}, nil
		}
		out := v.outcome(p)
		v.mu.Lock()
		if p.IDLivePreview != nil && out.Preview != nil {
			r.preview, r.latest = *p.IDLivePreview, out.Preview
		} else if out.State == engine.TaskRunning {
			out.Preview = r.latest
		}
		v.mu.Unlock()
		return out, nil
	}
	// No call under way: this process did not make it (a restart cut it).
	if j.Request.Kind == engine.KindDraw || j.Request.Kind == engine.KindAnime {
		p, err := v.progress(ctx, b, forceID, -1)
		if err != nil {
			return nil, err
		}
		if p.Queued || p.Active && !v.idle(ctx, b) {
			// Still running there: its answer is lost, but making it
			// again now would run it twice at once. Wait for it.
			return v.outcome(p), nil
		}
		// "Active" on an idle web UI is a task that failed: the web UI
		// calls finish_task only on success, so it stays the current one.
	}
	// Not running: the answer is lost for good. Make it again, once.
	if err := v.rerun(ctx, j, b, forceID); err != nil {
		return nil, err
	}
	return &engine.Outcome{State: engine.TaskQueued, Progress: 0}, nil
}

func (v *Vendor) outcome(p *progressReply) *engine.Outcome {
	out := &engine.Outcome{State: engine.TaskQueued, Progress: 0}
	if !p.Active {
		return out
	}
	out.State, out.Progress = engine.TaskRunning, 0
	if p.Progress != nil {
		out.Progress = *p.Progress
	}
	if p.LivePreview != nil && *p.LivePreview != "" {
		if data, err := decodeImage(*p.LivePreview); err == nil {
			out.Preview = data
		}
	}
	return out
}

// idle reports whether web UI b works on nothing (GET /sdapi/v1/progress:
// job_count 0 and no job, as state.end() leaves them). false when unsure.
func (v *Vendor) idle(ctx context.Context, b int) bool {
	var p struct {
		State struct {
			Job      string `json:"job"`
			JobCount int    `json:"job_count"`
		} `json:"state"`
	}
	if _, err := v.do(ctx, b, http.MethodGet, "sdapi/v1/progress?skip_current_image=true", nil, &p); err != nil {
		return false
	}
	return p.State.JobCount == 0 && p.State.Job == ""
}

// rerun makes j's task again under the same id, after a restart lost the
// answer of the first call. Counted and logged: the GPU did the work twice.
func (v *Vendor) rerun(ctx context.Context, j *engine.Job, b int, forceID string) error {
	if v.blobs == nil && len(j.Request.AllInputs()) > 0 {
		return errors.New("a1111: cannot read the job's input images to make it again")
	}
	all := j.Request.AllInputs() // Task.Open's numbering: the inputs, the control image, the mask
	open := func(ctx context.Context, i int) (io.ReadCloser, error) { return v.blobs.Open(ctx, all[i].Blob) }
	body, path, err := v.body(ctx, j, forceID, open)
	if err != nil {
		return err
	}
	v.mu.Lock()
	_, exists := v.runs[j.TaskID]
	v.mu.Unlock()
	if exists {
		return nil
	}
	v.mu.Lock()
	unsent := v.unsent[j.TaskID]
	delete(v.unsent, j.TaskID)
	v.mu.Unlock()
	if unsent {
		v.log.Info("a1111 answers again: sending the task it could not be sent", slog.String("job_id", j.ID), slog.String("task_id", j.TaskID))
	} else {
		n := v.reruns.Add(1)
		v.log.Warn("a1111 task's answer lost in a restart: making it again", slog.String("job_id", j.ID), slog.String("task_id", j.TaskID), slog.Int64("reruns", n))
	}
	v.start(j, j.TaskID, b, path, body)
	return nil
}

// CancelTask implements engine.Canceller: it interrupts the web UI only
// while the running task is this job's; a call still waiting for the
// queue lock cannot be withdrawn, so it is interrupted once it starts.
func (v *Vendor) CancelTask(ctx context.Context, j *engine.Job) error {
	forceID, b, err := v.split(j.TaskID)
	if err != nil {
		return err
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		p, err := v.progress(ctx, b, forceID, -1)
		if err != nil {
			return err
		}
		if p.Active {
			_, err := v.do(ctx, b, http.MethodPost, "sdapi/v1/interrupt", nil, nil)
			return err
		}
		if !p.Queued {
			v.mu.Lock()
			r := v.runs[j.TaskID]
			v.mu.Unlock()
			if r == nil {
				return nil
			}
			select {
			case <-r.done:
				return nil
			default: // sent, not arrived yet
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// FindTask implements engine.TaskFinder: a submission whose answer was
// lost in a restart is looked up by its id in /internal/progress. Found
// while the web UI runs it, has it queued, or finished it lately; Query
// then waits for it and makes it again for its lost answer, rather than
// a second call queued behind the first.
func (v *Vendor) FindTask(ctx context.Context, j *engine.Job, t engine.Task) (string, bool, error) {
	if j.Request.Kind == engine.KindUpscale || j.Request.Kind == engine.KindSwapface {
		return "", false, nil // the tools take no task id: nothing to find, and nothing lost but a short call
	}
	for b := range v.pool.Len() {
		p, err := v.progress(ctx, b, t.ID, -1)
		if err != nil {
			return "", false, err
		}
		if p.Active || p.Queued || p.Completed {
			id := t.ID
			if v.pool.Len() > 1 {
				id += "@" + strconv.Itoa(b)
			}
			return id, true, nil
		}
	}
	return "", false, nil
}

// upscaler is extra-single-image's upscaler_1 for r.
func (v *Vendor) upscaler(r *engine.Request) string {
	switch {
	case r.Upscaler != "":
		return r.Upscaler
	case r.AnimeModel:
		return AnimeUpscaler
	}
	return v.cfg.Upscaler
}

// Supports implements engine.FeatureVendor: what the web UI's API takes,
// and of the extensions' options those whose extension it has (read by
// Probe; unknown before the first read, so refused rather than dropped).
func (v *Vendor) Supports(k engine.Kind, feature string) bool {
	c := v.cachedCaps()
	switch k {
	case engine.KindDraw:
		switch feature {
		case engine.FeatureLoRAs, engine.FeatureVAE, engine.FeatureEmbedding, engine.FeatureClipSkip, engine.FeatureStrength,
			engine.FeatureRestoreFaces, engine.FeatureTile, engine.FeatureHires, engine.FeatureMask:
			return true
		case engine.FeatureFaceFix:
			return c != nil && c.ADetailer
		case engine.FeatureControl:
			return c != nil && c.ControlNet && (v.cfg.ControlNet.Model != "" || len(v.cfg.ControlNet.Types) > 0)
		}
	case engine.KindUpscale:
		switch feature {
		case engine.FeatureTargetSize, engine.FeatureUpscaler, engine.FeatureFaceRestore:
			return true
		case engine.FeatureAnimeModel:
			return c != nil && slices.Contains(c.Upscalers, AnimeUpscaler)
		}
	}
	return false
}

// ControlTypeNames lists the --control-type names, sorted.
func (v *Vendor) ControlTypeNames() []string {
	return slices.Sorted(maps.Keys(v.cfg.ControlNet.Types))
}

// checkOptions checks /draw's options against the web UI's lists, when
// read and not empty (a web UI that lists nothing is not contradicted):
// the web UI would use an unknown VAE's name as "None", silently.
func (v *Vendor) checkOptions(r *engine.Request) error {
	if c := r.Control; c != nil {
		if _, ok := v.cfg.ControlNet.Types[c.Type]; !ok && (c.Type != "" || v.cfg.ControlNet.Model == "") {
			return engine.Errorf(engine.EINVALID, "Unknown --control-type %q; try one of: %s.", "未知的 --control-type %q，可选：%s。", c.Type, strings.Join(v.ControlTypeNames(), ", "))
		}
	}
	if r.Hires != nil && len(r.Inputs) > 0 {
		// enable_hr is txt2img's; img2img has no second pass.
		return engine.Errorf(engine.EINVALID, "--hires works without a reference image only.", "--hires 只能在没有参考图时使用。")
	}
	c := v.cachedCaps()
	if c == nil {
		return nil
	}
	// sd_vae also takes "Automatic" and "None" (modules/sd_vae.py).
	if r.VAE != "" && len(c.VAEs) > 0 && r.VAE != "Automatic" && r.VAE != "None" && !slices.Contains(c.VAEs, r.VAE) {
		return engine.Errorf(engine.EINVALID, "Unknown --vae %q; try one of: %s.", "未知的 --vae %q，可选：%s。", r.VAE, strings.Join(append([]string{"Automatic", "None"}, c.VAEs...), ", "))
	}
	for _, e := range r.Embeddings {
		if len(c.Embeddings) > 0 && !slices.Contains(c.Embeddings, e) {
			return engine.Errorf(engine.EINVALID, "Unknown --embedding %q; try one of: %s.", "未知的 --embedding %q，可选：%s。", e, strings.Join(c.Embeddings, ", "))
		}
	}
	return nil
}
