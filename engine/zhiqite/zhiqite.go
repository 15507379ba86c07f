// Package zhiqite is the adapter for Zhiqite's AIGC image API v2, sold on
// Aliyun's API market (seeds/001, digest in VENDORS.md section 2).
//
// /draw is Stable Diffusion text2image, or image2image with a reference
// image; /upscale is the enhance tool; /swapface is the roop tool. The
// vendor does not offer portrait-to-anime. Task ids are chosen by the client
// (id_task, businessTaskId): the adapter uses the engine's suggestion, so a
// submission whose reply was lost can be found again. Every call, queries
// included, is billed; callbacks are free.
package zhiqite

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/picbot/picbot/engine"
)

// Name is the vendor's name in routes and job records.
const Name = "zhiqite"

// Documented defaults.
const (
	DefaultBaseURL = "https://zhiqite.market.alicloudapi.com/AIGCImgOpenServ/"
	// DefaultModel is the checkpoint in the seed's own request examples;
	// sd_model_checkpoint is required, so there must be one.
	DefaultModel = "revAnimated_v122_7371.safetensors"
	// DefaultUpscaler is the seed example's upscaler1.
	DefaultUpscaler = "ESRGAN_4x"
	DefaultClipSkip = 2 // the seed examples' CLIP_stop_at_last_layers
	// DefaultDenoising is the documented default of denoising_strength for image2image.
	DefaultDenoising = 0.75
	// DefaultDrawDuration is a typical text2image task: 512×512, 25 steps, one image.
	DefaultDrawDuration = 8 * time.Second
	// DefaultToolDuration is a typical enhance or roop task.
	DefaultToolDuration = 5 * time.Second
	DefaultPollEvery    = 3 * time.Second
	DefaultPollMax      = 20 * time.Second
	DefaultMaxImage     = 20 << 20
	DefaultCatalogTTL   = time.Hour
)

// Vendor limits from the seed.
const (
	MaxSide         = 1024 // width and height in (0,1024], multiples of 8
	MinCfg, MaxCfg  = 1, 30
	MinUpscale      = 1
	MaxUpscale      = 8
	MaxEnhanceInput = 1536 // enhance: input at most 1536×1536
)

// Samplers are the 17 values sampler_index accepts.
var Samplers = []string{
	"Euler a", "Euler", "LMS", "Heun", "DPM2", "DPM2 a", "DPM++ 2S a", "DPM++ 2M", "DPM++ SDE",
	"DPM fast", "DPM adaptive", "LMS Karras", "DPM2 Karras", "DPM2 a Karras", "DPM++ 2S a Karras",
	"DPM++ SDE Karras", "DPM++ 2M Karras",
}

// ControlType is a controlnet unit's preprocessor and model.
type ControlType struct {
	Module string `yaml:"module"`
	Model  string `yaml:"model"`
}

// DefaultControlTypes pairs --control-type names with the seed's modules
// ("canny","depth_midas","lineart_realistic","mlsd","normal_bae","openpose",
// "scribble_xdog","seg_ufade20k","inpaint_global_harmonious") and models.
// qrcode and brightness use inpaint_global_harmonious, as the seed's example
// does with brightness; inpaint's model is from the seed's ADetailer list.
func DefaultControlTypes() map[string]ControlType {
	return map[string]ControlType{
		"canny":      {"canny", "control_v11p_sd15_canny"},
		"depth":      {"depth_midas", "control_v11f1p_sd15_depth"},
		"lineart":    {"lineart_realistic", "control_v11p_sd15_lineart"},
		"mlsd":       {"mlsd", "control_v11p_sd15_mlsd"},
		"normal":     {"normal_bae", "control_v11p_sd15_normal_bae"},
		"openpose":   {"openpose", "control_v11p_sd15_openpose"},
		"scribble":   {"scribble_xdog", "control_v11p_sd15_scribble"},
		"seg":        {"seg_ufade20k", "control_v11p_sd15_seg"},
		"inpaint":    {"inpaint_global_harmonious", "control_v11p_sd15_inpaint"},
		"qrcode":     {"inpaint_global_harmonious", "control_v1p_sd15_qrcode"},
		"brightness": {"inpaint_global_harmonious", "control_v1p_sd15_brightness"},
	}
}

// Controlnet defaults: the seed's table ("默认Crop and Resize", "默认
// Balanced", guidance_start "默认 0") and its example (processor_res 512,
// pixel_perfect true, weight 0.7, within the suggested [0.3,0.7]).
const (
	DefaultControlType   = "canny"
	DefaultControlWeight = 0.7
	controlResize        = "Crop and Resize"
	controlMode          = "Balanced"
	controlProcessorRes  = 512
	// DefaultFaceFixModel is ADetailer's usual face detector.
	DefaultFaceFixModel = "face_yolov8n.pt"
	// MaxHiresSide bounds hr_resize_x and hr_resize_y ([0,2048], multiples of 8).
	MaxHiresSide = 2048
	// Enhance's target size, resizeMode 1: upscalingResizeW/H in [64,2048].
	MinTarget, MaxTarget = 64, 2048
)

// Config configures the adapter. Zero values mean the documented defaults.
type Config struct {
	BaseURL string `yaml:"base_url"`
	// AppCode is the simple authentication: "Authorization: APPCODE <code>".
	AppCode string `yaml:"app_code"`
	// AppKey and AppSecret sign each call instead (the API gateway's HmacSHA256 signature).
	AppKey    string `yaml:"app_key"`
	AppSecret string `yaml:"app_secret"`
	// AccessKeyID and AccessKeySecret are sent as X-Request-req-accessKeyId
	// and X-Request-req-accessKeySecret when set. The seed's tables mark
	// them required, but its Aliyun examples authenticate by AppCode or
	// AppKey alone, and public examples send them only to the vendor's own
	// host (unverified for the Aliyun market).
	AccessKeyID     string `yaml:"access_key_id"`
	AccessKeySecret string `yaml:"access_key_secret"`
	// Model is the sd_model_checkpoint used when a command names none.
	Model string `yaml:"model"`
	// VAE is sd_vae; empty sends none.
	VAE string `yaml:"vae"`
	// Sampler is the sampler_index used when a command names none; empty leaves it to the vendor.
	Sampler string `yaml:"sampler"`
	// OutputFormat is output_image_format: "" (the vendor's default, jpg), "jpg" or "png".
	OutputFormat string `yaml:"output_format"`
	// ClipSkip is CLIP_stop_at_last_layers.
	ClipSkip int `yaml:"clip_skip"`
	// Denoising is denoising_strength for /draw with a reference image.
	Denoising float64 `yaml:"denoising"`
	// Upscaler is enhance's upscaler1.
	Upscaler string `yaml:"upscaler"`
	// ControlTypes maps --control-type to controlnet's module and model.
	// The seed lists the modules and models; which goes with which is in a
	// table it links to but does not hold, so the pairs are inferred
	// (unverified) except the example's. Keys are lower case; nil: DefaultControlTypes.
	ControlTypes map[string]ControlType `yaml:"control_types"`
	// ControlType is the --control-type used when a command names none.
	ControlType string `yaml:"control_type"`
	// ScriptsKey is the name of the scripts object: alwayson_scripts (the
	// gateway's and the text2image example's), or always_on_scripts (the
	// seed's tables and its controlnet example). Unverified which the
	// vendor reads; the fake takes both.
	ScriptsKey string `yaml:"scripts_key"`
	// FaceFixModel is ADetailer's ad_model for --face-fix: the seed's
	// example sends "None" and does not list models (unverified).
	FaceFixModel string `yaml:"face_fix_model"`
	// Callbacks says whether to ask for a callback (default true) or poll.
	Callbacks *bool `yaml:"callbacks"`
	// ResendLost sends a submission whose answer was lost (a crash, a
	// timeout) again under its task id, which the vendor refuses as a
	// duplicate if it holds the task, instead of asking for the task by
	// that id first (default): the query proves the task and reads its
	// state in one billed call, where the repeat costs a billed refusal
	// and then a poll, and, for a job with inputs, waits for the vendor
	// to download them from the bot again.
	ResendLost bool `yaml:"resend_lost"`
	// DrawDuration is a typical 512×512, 25-step, one-image task; the first
	// poll waits this long, scaled by pixels, steps and images.
	DrawDuration time.Duration `yaml:"draw_duration"`
	// ToolDuration is a typical /upscale or /swapface task.
	ToolDuration time.Duration `yaml:"tool_duration"`
	// PollEvery is the wait before the second poll; later waits grow up to PollMax.
	PollEvery time.Duration `yaml:"poll_every"`
	PollMax   time.Duration `yaml:"poll_max"`
	// MaxImageBytes bounds a preview image, and so the size of a reply.
	MaxImageBytes int64 `yaml:"max_image_bytes"`
	// CatalogTTL is how long the model lists are kept: each list call is billed.
	CatalogTTL time.Duration `yaml:"catalog_ttl"`

	// InputURLs says the bot serves input images at public URLs, which the
	// vendor needs for every kind that takes an image. Set by the wiring.
	InputURLs bool `yaml:"-"`
}

// Vendor implements engine.Vendor, engine.CallbackVendor and engine.Cataloguer.
type Vendor struct {
	cfg      Config
	base     *url.URL
	client   *http.Client
	log      *slog.Logger
	maxReply int64
	now      func() time.Time
	nonce    func() string

	mu   sync.Mutex
	lost map[string]time.Time // task ids whose submission got no readable reply
	// found holds what FindTask read of a finished or failed task, to
	// answer its next poll without a call.
	found map[string]foundTask

	catMu    sync.Mutex
	catalog  []engine.CatalogEntry
	catUntil time.Time
}

var (
	_ engine.CallbackVendor = (*Vendor)(nil)
	_ engine.Cataloguer     = (*Vendor)(nil)
)

// Defaults is the configuration with every default filled in.
func Defaults() Config { return Config{}.withDefaults() }

// withDefaults fills unset fields.
func (c Config) withDefaults() Config {
	if c.BaseURL == "" {
		c.BaseURL = DefaultBaseURL
	}
	if c.Model == "" {
		c.Model = DefaultModel
	}
	if c.Sampler != "" {
		c.Sampler, _ = canonicalSampler(c.Sampler)
	}
	c.OutputFormat = strings.ToLower(c.OutputFormat)
	if c.ClipSkip == 0 {
		c.ClipSkip = DefaultClipSkip
	}
	if c.Denoising == 0 {
		c.Denoising = DefaultDenoising
	}
	if c.Upscaler == "" {
		c.Upscaler = DefaultUpscaler
	}
	if len(c.ControlTypes) == 0 {
		c.ControlTypes = DefaultControlTypes()
	}
	if c.ControlType == "" {
		c.ControlType = DefaultControlType
	}
	c.ControlType = strings.ToLower(c.ControlType)
	if c.FaceFixModel == "" {
		c.FaceFixModel = DefaultFaceFixModel
	}
	if c.ScriptsKey == "" {
		c.ScriptsKey = "alwayson_scripts"
	}
	if c.Callbacks == nil {
		yes := true
		c.Callbacks = &yes
	}
	for _, d := range []struct {
		v   *time.Duration
		def time.Duration
	}{
		{&c.DrawDuration, DefaultDrawDuration}, {&c.ToolDuration, DefaultToolDuration},
		{&c.PollEvery, DefaultPollEvery}, {&c.PollMax, DefaultPollMax}, {&c.CatalogTTL, DefaultCatalogTTL},
	} {
		if *d.v <= 0 {
			*d.v = d.def
		}
	}
	c.PollMax = max(c.PollMax, c.PollEvery)
	if c.MaxImageBytes <= 0 {
		c.MaxImageBytes = DefaultMaxImage
	}
	return c
}

// New returns the adapter. client nil means a default client; calls are
// bounded by the engine's contexts.
func New(cfg Config, client *http.Client, log *slog.Logger) (*Vendor, error) {
	var problems []error
	cfg.Validate(func(key, format string, args ...any) {
		problems = append(problems, fmt.Errorf("zhiqite: %s: %s", key, fmt.Sprintf(format, args...)))
	})
	if len(problems) > 0 {
		return nil, errors.Join(problems...)
	}
	cfg = cfg.withDefaults()
	base, err := url.Parse(cfg.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("zhiqite: base_url: %w", err)
	}
	if client == nil {
		client = &http.Client{Timeout: 2 * time.Minute}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Vendor{
		cfg:    cfg,
		base:   base,
		client: client,
		log:    log,
		// A preview is base64 (4/3 larger) inside JSON with some more fields.
		maxReply: cfg.MaxImageBytes*4/3 + 1<<20,
		now:      time.Now,
		nonce:    newNonce,
		lost:     make(map[string]time.Time),
		found:    make(map[string]foundTask),
	}, nil
}

// Validate reports each problem with c under its YAML key. Zero values are
// fine: they mean the defaults.
func (c Config) Validate(bad func(key, format string, args ...any)) {
	if c.BaseURL != "" {
		u, err := url.Parse(c.BaseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("base_url", "must be an http(s) URL, not %q", c.BaseURL)
		}
	}
	switch {
	case c.AppKey != "" && c.AppSecret == "":
		bad("app_secret", "is required with app_key (or set PICBOT_ZHIQITE_APP_SECRET)")
	case c.AppKey == "" && c.AppSecret != "":
		bad("app_key", "is required with app_secret (or set PICBOT_ZHIQITE_APP_KEY)")
	case c.AppKey == "" && c.AppCode == "":
		bad("app_code", "is required, or app_key and app_secret (or set PICBOT_ZHIQITE_APP_CODE)")
	}
	if c.Model != "" && !validName(c.Model) {
		bad("model", "%q is not a model file name", c.Model)
	}
	if c.Sampler != "" {
		if _, ok := canonicalSampler(c.Sampler); !ok {
			bad("sampler", "%q is not one of %s", c.Sampler, strings.Join(Samplers, ", "))
		}
	}
	if f := strings.ToLower(c.OutputFormat); f != "" && f != "jpg" && f != "png" {
		bad("output_format", "must be jpg or png, not %q", c.OutputFormat)
	}
	if c.ClipSkip < 0 {
		bad("clip_skip", "must not be negative")
	}
	if c.Denoising < 0 || c.Denoising > 1 {
		bad("denoising", "must be between 0 and 1, not %g", c.Denoising)
	}
	for _, d := range []struct {
		key string
		d   time.Duration
	}{
		{"draw_duration", c.DrawDuration}, {"tool_duration", c.ToolDuration}, {"poll_every", c.PollEvery},
		{"poll_max", c.PollMax}, {"catalog_ttl", c.CatalogTTL},
	} {
		if d.d < 0 {
			bad(d.key, "must not be negative")
		}
	}
	if c.MaxImageBytes < 0 {
		bad("max_image_bytes", "must not be negative")
	}
	for k, t := range c.ControlTypes {
		if k != strings.ToLower(k) || t.Module == "" || t.Model == "" {
			bad("control_types."+k, "names must be lower case, with a module and a model")
		}
	}
	if k := c.ScriptsKey; k != "" && k != "alwayson_scripts" && k != "always_on_scripts" {
		bad("scripts_key", "must be alwayson_scripts or always_on_scripts, not %q", k)
	}
	if c.ControlType != "" {
		types := c.ControlTypes
		if len(types) == 0 {
			types = DefaultControlTypes()
		}
		if _, ok := types[strings.ToLower(c.ControlType)]; !ok {
			bad("control_type", "%q is not one of control_types", c.ControlType)
		}
	}
}

// Supports implements engine.FeatureVendor: everything seed 001 sells.
func (v *Vendor) Supports(k engine.Kind, feature string) bool {
	switch k {
	case engine.KindDraw:
		switch feature {
		case engine.FeatureLoRAs, engine.FeatureVAE, engine.FeatureEmbedding, engine.FeatureClipSkip, engine.FeatureStrength,
			engine.FeatureRestoreFaces, engine.FeatureFaceFix, engine.FeatureHires, engine.FeatureControl, engine.FeatureMask:
			return true
		}
	case engine.KindUpscale:
		switch feature {
		case engine.FeatureTargetSize, engine.FeatureUpscaler, engine.FeatureFaceRestore:
			return true
		}
	}
	return false
}

// ControlTypeNames lists the --control-type names, sorted.
func (v *Vendor) ControlTypeNames() []string {
	names := make([]string, 0, len(v.cfg.ControlTypes))
	for k := range v.cfg.ControlTypes {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}

func (v *Vendor) Name() string { return Name }

// WantsCallback reports the operator's choice; callbacks save a billed query per poll.
func (v *Vendor) WantsCallback() bool { return *v.cfg.Callbacks }

// CallbackReply is what stops the vendor's retries: JSON with code "200".
func (v *Vendor) CallbackReply() (string, []byte) {
	return "application/json", []byte(`{"code":"200"}`)
}

// tool names the vendor's tool for a kind ("" for Stable Diffusion).
func tool(k engine.Kind) string {
	switch k {
	case engine.KindUpscale:
		return "enhance"
	case engine.KindSwapface:
		return "roop"
	}
	return ""
}

// Check enforces the vendor's documented rules. EINVALID sends the engine to the next vendor.
func (v *Vendor) Check(r *engine.Request) error {
	switch r.Kind {
	case engine.KindDraw:
		if r.Width <= 0 || r.Width > MaxSide || r.Height <= 0 || r.Height > MaxSide || r.Width%8 != 0 || r.Height%8 != 0 {
			return engine.Errorf(engine.EINVALID, "Zhiqite draws at most %[3]dx%[3]d, each side a multiple of 8; %[1]dx%[2]d is not possible.",
				"Zhiqite 最大支持 %[3]dx%[3]d，且宽高都须为 8 的倍数；不支持 %[1]dx%[2]d。", r.Width, r.Height, MaxSide)
		}
		if r.Guidance < MinCfg || r.Guidance > MaxCfg {
			return engine.Errorf(engine.EINVALID, "--cfg must be between %d and %d here.", "这里 --cfg 必须在 %d 到 %d 之间。", MinCfg, MaxCfg)
		}
		if r.Sampler != "" {
			if _, ok := canonicalSampler(r.Sampler); !ok {
				return engine.Errorf(engine.EINVALID, "Unknown --sampler %q; try one of: %s.", "未知的 --sampler %q，可选：%s。", r.Sampler, strings.Join(Samplers, ", "))
			}
		}
		if r.LoRA != "" {
			if _, err := loraTag(r.LoRA); err != nil {
				return err
			}
		}
		if r.Model != "" && !validName(r.Model) {
			return engine.Errorf(engine.EINVALID, "--model %q is not a model name.", "--model %q 不是有效的模型名。", r.Model)
		}
		for _, l := range r.ExtraLoRAs {
			if _, err := loraTag(l); err != nil {
				return err
			}
		}
		for _, name := range append([]string{r.VAE}, r.Embeddings...) {
			if name != "" && !validName(name) {
				return engine.Errorf(engine.EINVALID, "%q is not a VAE or embedding name.", "%q 不是有效的 VAE 或 embedding 名称。", name)
			}
		}
		if c := r.Control; c != nil {
			if _, ok := v.controlType(c.Type); !ok {
				return engine.Errorf(engine.EINVALID, "Unknown --control-type %q; try one of: %s.", "未知的 --control-type %q，可选：%s。", c.Type, strings.Join(v.ControlTypeNames(), ", "))
			}
			if r.Mask != nil {
				return engine.Errorf(engine.EINVALID, "Zhiqite does not take --mask with --control.", "Zhiqite 不支持 --mask 与 --control 同时使用。")
			}
		}
		if h := r.Hires; h != nil {
			if w, hh := hiresSize(r.Width, h.Scale), hiresSize(r.Height, h.Scale); w > MaxHiresSide || hh > MaxHiresSide {
				return engine.Errorf(engine.EINVALID, "--hires %[1]g makes %[2]dx%[3]d; Zhiqite's hires fix goes up to %[4]dx%[4]d.",
					"--hires %[1]g 将得到 %[2]dx%[3]d；Zhiqite 的高清修复最大为 %[4]dx%[4]d。", h.Scale, w, hh, MaxHiresSide)
			}
		}
		if len(r.AllInputs()) > 0 && !v.cfg.InputURLs {
			return needsURL()
		}
		if err := v.unlisted(r); err != nil {
			return err
		}
	case engine.KindUpscale:
		if !v.cfg.InputURLs {
			return needsURL()
		}
		if r.Scale < MinUpscale || r.Scale > MaxUpscale {
			return engine.Errorf(engine.EINVALID, "--scale must be between %d and %d here.", "这里 --scale 必须在 %d 到 %d 之间。", MinUpscale, MaxUpscale)
		}
		if r.TargetWidth != 0 && (r.TargetWidth < MinTarget || r.TargetWidth > MaxTarget || r.TargetHeight < MinTarget || r.TargetHeight > MaxTarget) {
			return engine.Errorf(engine.EINVALID, "Zhiqite upscales to sizes from %[1]dx%[1]d to %[2]dx%[2]d.", "Zhiqite 放大的目标尺寸须在 %[1]dx%[1]d 到 %[2]dx%[2]d 之间。", MinTarget, MaxTarget)
		}
		if len(r.Inputs) == 1 && (r.Inputs[0].Width > MaxEnhanceInput || r.Inputs[0].Height > MaxEnhanceInput) {
			return engine.Errorf(engine.EINVALID, "Zhiqite upscales images of at most %[1]dx%[1]d.", "Zhiqite 只能放大不超过 %[1]dx%[1]d 的图片。", MaxEnhanceInput)
		}
	case engine.KindSwapface:
		if !v.cfg.InputURLs {
			return needsURL()
		}
	default:
		return engine.Errorf(engine.EINVALID, "Zhiqite does not offer /%s.", "Zhiqite 不提供 /%s。", r.Kind)
	}
	return nil
}

func needsURL() error {
	return engine.Errorf(engine.EINVALID, "Zhiqite fetches images by link, and this bot has no public URL.",
		"Zhiqite 需要通过链接获取图片，但本机器人没有公开地址。")
}

// validName accepts a model or LoRA file name: no spaces, brackets or control characters.
func validName(s string) bool {
	if s == "" || len(s) > 200 {
		return false
	}
	for _, c := range s {
		if unicode.IsSpace(c) || unicode.IsControl(c) || strings.ContainsRune("<>:,()[]{}\"'", c) {
			return false
		}
	}
	return true
}

var loraWeight = regexp.MustCompile(`^-?\d+(\.\d+)?$`)

// loraTag turns --lora NAME or NAME:WEIGHT into the prompt tag
// <lora:sdLoraFileSimplifyName:weight>: the seed's way to use a LoRA.
func loraTag(s string) (string, error) {
	name, weight, found := strings.Cut(strings.TrimSpace(s), ":")
	if !found {
		weight = "1"
	}
	if !validName(name) || !loraWeight.MatchString(weight) {
		return "", engine.Errorf(engine.EINVALID, "--lora takes a LoRA name from /models, optionally with a weight (name:0.8), not %q.",
			"--lora 需要 /models 中的 LoRA 名称，可加权重（名称:0.8），而不是 %q。", s)
	}
	return "<lora:" + name + ":" + weight + ">", nil
}

// canonicalSampler matches a user's spelling ("dpm++_2m_karras") to a listed name.
func canonicalSampler(s string) (string, bool) {
	norm := func(s string) string {
		return strings.Join(strings.Fields(strings.ToLower(strings.ReplaceAll(s, "_", " "))), " ")
	}
	want := norm(s)
	for _, name := range Samplers {
		if norm(name) == want {
			return name, true
		}
	}
	return "", false
}

// Timing: the first poll after the typical duration of the task, scaled by
// its work; every poll is billed, so polls are sparse.
func (v *Vendor) Timing(r *engine.Request) engine.Timing {
	first := v.cfg.ToolDuration
	switch r.Kind {
	case engine.KindDraw:
		w, h, steps := max(r.Width, 8), max(r.Height, 8), r.Steps
		if steps <= 0 {
			steps = engine.DefaultSteps
		}
		work := float64(w*h) / (512 * 512) * float64(steps) / engine.DefaultSteps * float64(r.Images())
		first = scale(v.cfg.DrawDuration, work, 0.5, 8)
	case engine.KindUpscale:
		if len(r.Inputs) == 1 && r.Inputs[0].Width > 0 {
			out := float64(r.Inputs[0].Width*r.Scale) * float64(r.Inputs[0].Height*r.Scale)
			first = scale(v.cfg.ToolDuration, out/(1024*1024), 1, 4)
		}
	}
	return engine.Timing{First: first, Every: v.cfg.PollEvery, Max: v.cfg.PollMax, Billed: true, Progress: true}
}

func scale(d time.Duration, f, lo, hi float64) time.Duration {
	return time.Duration(float64(d) * math.Min(math.Max(f, lo), hi))
}

// Submit creates the task, with the engine's suggested id as the vendor's task id.
func (v *Vendor) Submit(ctx context.Context, j *engine.Job, t engine.Task) (string, error) {
	r := &j.Request
	if err := v.Check(r); err != nil {
		return "", err
	}
	if t.ID == "" {
		return "", errors.New("zhiqite: no task id")
	}
	if v.wasLost(t.ID) {
		// The last submission of this id got no reply: the vendor may hold it already.
		_, err := v.query(ctx, r.Kind, t.ID, time.Time{})
		switch {
		case err == nil:
			v.forgetLost(t.ID)
			v.log.Info("found a submission whose reply was lost", slog.String("job_id", j.ID), slog.String("task_id", t.ID))
			return t.ID, nil
		case engine.ErrorCode(err) != engine.ENOTFOUND:
			return "", err
		}
		v.forgetLost(t.ID)
	}
	endpoint, body, err := v.build(r, t)
	if err != nil {
		return "", err
	}
	if sd, ok := body.(sdRequest); ok && v.cfg.ScriptsKey != "alwayson_scripts" {
		body = renamed(sd, "alwayson_scripts", v.cfg.ScriptsKey)
	}
	var reply struct {
		submitted
		toolTask
	}
	err = v.call(ctx, endpoint, body, &reply)
	if errors.Is(err, errNoData) {
		err = nil // the id is ours; the vendor need not repeat it
	}
	if duplicateID(err) {
		// The engine's task ids name one submission of one job, so the task
		// the vendor holds is this one, sent by a process that died before
		// it could record the reply (the lost map does not survive that).
		v.log.Info("the vendor holds this task already: a submission whose reply was lost", slog.String("job_id", j.ID), slog.String("task_id", t.ID))
		return t.ID, nil
	}
	if err != nil {
		var lost *lostError
		if errors.As(err, &lost) {
			v.markLost(t.ID)
		}
		return "", submitError(err)
	}
	if got := string(reply.submitted.TaskID); got != "" && got != t.ID {
		// Queries go by our id; a different one is worth knowing about.
		v.log.Warn("vendor renamed the task", slog.String("job_id", j.ID), slog.String("task_id", t.ID), slog.String("vendor_task_id", got))
	}
	v.log.Debug("task submitted", slog.String("job_id", j.ID), slog.String("task_id", t.ID), slog.String("endpoint", endpoint))
	return t.ID, nil
}

// SubmitIdempotent implements engine.IdempotentSubmitter: the task id is
// the bot's (businessTaskId), and the vendor refuses an id it holds as a
// duplicate, which Submit takes as the task.
func (v *Vendor) SubmitIdempotent() bool { return true }

// LookupFirst implements engine.LookupFirst: unless resend_lost, a lost
// submission is asked about (FindTask) before it is sent again.
func (v *Vendor) LookupFirst(*engine.Job) bool { return !v.cfg.ResendLost }

// foundTask is a finished task's outcome FindTask read, and when.
type foundTask struct {
	out *engine.Outcome
	at  time.Time
}

// foundTTL bounds how long a found outcome waits for its poll.
const foundTTL = 30 * time.Minute

// FindTask asks the vendor for the task by the id the bot chose (t.ID), so
// a submission whose answer was lost is recorded, not sent again. The
// query is billed like a poll; a finished or failed task's answer is kept
// to answer the job's next poll without another call.
func (v *Vendor) FindTask(ctx context.Context, j *engine.Job, t engine.Task) (string, bool, error) {
	if t.ID == "" {
		return "", false, nil
	}
	var at time.Time
	if j.Submitting != nil {
		at = j.Submitting.At
	}
	out, err := v.query(ctx, j.Request.Kind, t.ID, at)
	var ref *refusal
	if err == nil || errors.As(err, &ref) || errors.Is(err, errNoData) {
		engine.ReportBilled(ctx, 1) // answered: billed as a poll is
	} else {
		engine.ReportBilled(ctx, 0)
	}
	switch {
	case err == nil:
		v.forgetLost(t.ID)
		if out.State == engine.TaskDone || out.State == engine.TaskFailed {
			v.keepFound(t.ID, out)
		}
		return t.ID, true, nil
	case engine.ErrorCode(err) == engine.ENOTFOUND:
		v.forgetLost(t.ID) // asked already: Submit need not ask again
		return "", false, nil
	}
	return "", false, err
}

func (v *Vendor) keepFound(id string, out *engine.Outcome) {
	v.mu.Lock()
	defer v.mu.Unlock()
	now := v.now()
	for k, f := range v.found {
		if now.Sub(f.at) > foundTTL {
			delete(v.found, k)
		}
	}
	v.found[id] = foundTask{out: out, at: now}
}

// takeFound returns, once, the outcome FindTask kept for task id.
func (v *Vendor) takeFound(id string) *engine.Outcome {
	v.mu.Lock()
	defer v.mu.Unlock()
	f, ok := v.found[id]
	if !ok {
		return nil
	}
	delete(v.found, id)
	return f.out
}

// build makes the endpoint and body for r.
func (v *Vendor) build(r *engine.Request, t engine.Task) (string, any, error) {
	if n := len(r.AllInputs()); n > 0 && len(t.InputURLs) < n {
		return "", nil, needsURL()
	}
	switch r.Kind {
	case engine.KindUpscale:
		return "saas/tool/enhance", v.enhance(r, t), nil
	case engine.KindSwapface:
		return "saas/tool/roop", roopRequest{
			SourceURL: t.InputURLs[0], TargetURL: t.InputURLs[1], BusinessTaskID: t.ID, CallbackURL: t.CallbackURL,
		}, nil
	}
	prompt := r.Prompt
	for _, l := range append([]string{r.LoRA}, r.ExtraLoRAs...) {
		if l == "" {
			continue
		}
		tag, err := loraTag(l)
		if err != nil {
			return "", nil, err
		}
		prompt += ", " + tag
	}
	// An embedding is used by writing its name into the negative prompt.
	negative := r.Negative
	for _, e := range r.Embeddings {
		if negative != "" {
			negative += ", "
		}
		negative += e
	}
	sampler := v.cfg.Sampler
	if r.Sampler != "" {
		sampler, _ = canonicalSampler(r.Sampler)
	}
	model := v.cfg.Model
	if r.Model != "" {
		model = r.Model
	}
	vae := v.cfg.VAE
	if r.VAE != "" {
		vae = r.VAE
	}
	clip := v.cfg.ClipSkip
	if r.ClipSkip != 0 {
		clip = r.ClipSkip
	}
	seed := r.Seed
	if seed < 0 {
		seed = -1
	}
	body := sdRequest{
		Prompt: prompt, NegativePrompt: negative,
		NIter: 1, BatchSize: r.Images(), // images = n_iter × batch_size
		Steps: r.Steps, Seed: strconv.FormatInt(seed, 10), RestoreFaces: r.RestoreFaces,
		Width: r.Width, Height: r.Height, CfgScale: r.Guidance, SamplerIndex: sampler,
		CallbackURL: t.CallbackURL,
		Scripts: scripts{
			Model: model, IDTask: t.ID, VAE: vae, OutputFormat: v.cfg.OutputFormat,
			OverrideSettings: &overrideSettings{ClipSkip: clip},
		},
	}
	if h := r.Hires; h != nil {
		body.EnableHR = true
		body.HRScale = int(math.Ceil(h.Scale)) // typed integer; the exact size goes in hr_resize_x/y
		body.HRResizeX, body.HRResizeY = hiresSize(r.Width, h.Scale), hiresSize(r.Height, h.Scale)
		body.HRUpscaler, body.HRSecondPassSteps = h.Upscaler, h.Steps
	}
	if r.FaceFix {
		body.Scripts.ADetailer = &argsOf[adetailerArgs]{Args: []adetailerArgs{seedADetailer(v.cfg.FaceFixModel)}}
	}
	if len(r.Inputs) > 0 {
		d := v.cfg.Denoising
		if r.Strength != 0 {
			d = r.Strength
		}
		body.DenoisingStrength = &d
		body.Scripts.ImageLink = t.InputURLs[0]
	}
	if c := r.Control; c != nil {
		ct, _ := v.controlType(c.Type)
		weight, end := c.Weight, c.End
		if weight == 0 {
			weight = DefaultControlWeight
		}
		if end == 0 {
			end = 1
		}
		mode := 1 // Crop and Resize, documented as required here
		body.ResizeMode = &mode
		body.Seed = seed // an integer in controlnet's table
		body.Scripts.ControlNet = &argsOf[controlUnit]{Args: []controlUnit{{
			ImageLink: t.InputURLs[r.ControlIndex()], Enabled: true, Module: ct.Module, Model: ct.Model, Weight: weight,
			ResizeMode: controlResize, ProcessorRes: controlProcessorRes, GuidanceStart: c.Start, GuidanceEnd: end,
			PixelPerfect: true, ControlMode: controlMode,
		}}}
		return "saas/sd/v2/controlnet", body, nil
	}
	if len(r.Inputs) == 0 {
		return "saas/sd/v2/text2image", body, nil
	}
	mode := 1 // Crop and Resize: the reference keeps its proportions
	body.ResizeMode = &mode
	if r.Mask != nil {
		// Inpainting: webui's defaults (blur 4, fill "original", the whole picture).
		blur, fill, full, pad, invert := 4, 1, false, 32, 0
		body.Scripts.MaskLink = t.InputURLs[r.MaskIndex()]
		body.MaskBlur, body.InpaintingFill, body.InpaintFullRes, body.InpaintFullResPadding, body.InpaintingMaskInvert = &blur, &fill, &full, &pad, &invert
	}
	// image2image's table types cfg_scale "integer" (text2image and controlnet: "number").
	body.CfgScale = math.Max(MinCfg, math.Round(body.CfgScale))
	return "saas/sd/v2/image2image", body, nil
}

// renamed is body as JSON with its key from renamed to to.
func renamed(body any, from, to string) map[string]json.RawMessage {
	raw, _ := json.Marshal(body)
	var m map[string]json.RawMessage
	_ = json.Unmarshal(raw, &m) // a struct's JSON is an object
	if v, ok := m[from]; ok {
		delete(m, from)
		m[to] = v
	}
	return m
}

// hiresSize is a side after the hires fix: a multiple of 8.
func hiresSize(side int, scale float64) int {
	return int(math.Round(float64(side)*scale/8)) * 8
}

// controlType finds --control-type's module and model; "" is the default type.
func (v *Vendor) controlType(name string) (ControlType, bool) {
	if name == "" {
		name = v.cfg.ControlType
	}
	if ct, ok := v.cfg.ControlTypes[strings.ToLower(name)]; ok {
		return ct, true
	}
	// The seed's own module names ("depth_midas") name their type too.
	for _, k := range v.ControlTypeNames() {
		if ct := v.cfg.ControlTypes[k]; strings.EqualFold(ct.Module, name) {
			return ct, true
		}
	}
	return ControlType{}, false
}

// enhance is the super-resolution body: by a factor (resizeMode 0) or to
// a target size (resizeMode 1), with optional face restoration.
func (v *Vendor) enhance(r *engine.Request, t engine.Task) enhanceRequest {
	e := enhanceRequest{
		BusinessTaskID: t.ID, ResizeMode: 0, UpscalingResize: r.Scale,
		Upscaler1: v.cfg.Upscaler, Upscaler2: "None", ExtrasUpscaler2Visibility: 1, UpscaleFirst: true,
		Image: t.InputURLs[0], CallbackURL: t.CallbackURL,
	}
	if r.Upscaler != "" {
		e.Upscaler1 = r.Upscaler
	}
	if r.TargetWidth != 0 {
		e.ResizeMode, e.UpscalingResizeW, e.UpscalingResizeH = 1, r.TargetWidth, r.TargetHeight
	}
	strength := r.FaceRestoreStrength
	switch r.FaceRestore {
	case "gfpgan":
		if strength == 0 {
			strength = 1
		}
		e.GfpganVisibility = strength
	case "codeformer":
		// codeformerWeight 0 is the strongest restoration, 1 the weakest.
		if strength == 0 {
			strength = 0.5
		}
		e.CodeformerVisibility, e.CodeformerWeight = 1, 1-strength
	}
	return e
}

// duplicateID reports whether err is the vendor refusing a task id it holds
// already (the fake's words; the seed does not say, so the usual ones too).
func duplicateID(err error) bool {
	var ref *refusal
	return errors.As(err, &ref) && duplicate.MatchString(ref.Msg)
}

// notFound spots a refusal that says the task does not exist (the fake's
// "任务不存在"; the seed does not say, so the usual words too).
var notFound = regexp.MustCompile(`(?i)不存在|未找到|找不到|没有找到|无此任务|查无|not\s*found|not\s*exist|no such task`)

// beijing is the vendor's time zone (UTC+8, no daylight saving).
var beijing = time.FixedZone("CST", 8*3600)

// sameMonth reports whether a and b fall in one calendar month in Beijing time.
func sameMonth(a, b time.Time) bool {
	a, b = a.In(beijing), b.In(beijing)
	return a.Year() == b.Year() && a.Month() == b.Month()
}

var duplicate = regexp.MustCompile(`(?i)任务ID重复|ID重复|重复提交|已存在|duplicate|already exists`)

// sensitive spots a refusal for content: the seed does not say how one
// reads, so this looks for the usual words.
var sensitive = regexp.MustCompile(`(?i)敏感|违规|违禁|审核|色情|涉黄|涉政|不合规|unsafe|sensitive|nsfw|porn|violat`)

// submitError maps a failed submission: refused content is EUNSAFE, any
// other refusal EINVALID (another vendor will not do better), everything
// else is passed on for the engine to retry or fail over.
func submitError(err error) error {
	var ref *refusal
	if !errors.As(err, &ref) {
		return err
	}
	if sensitive.MatchString(ref.Msg) {
		return engine.Wrap(engine.EUNSAFE, err, "The image service refused the request for its content.", "绘图服务因内容审核拒绝了这个请求。")
	}
	msg := ref.Msg
	if msg == "" {
		msg = "code " + ref.Code
	}
	return engine.Wrap(engine.EINVALID, err, "The image service refused the request: %s", "绘图服务拒绝了这个请求：%s", msg)
}

// Query asks about j's task: queryTaskInfo for /draw, the tool's queryTask otherwise.
func (v *Vendor) Query(ctx context.Context, j *engine.Job) (*engine.Outcome, error) {
	if out := v.takeFound(j.TaskID); out != nil {
		engine.ReportBilled(ctx, 0) // read by FindTask, billed there
		return out, nil
	}
	return v.query(ctx, j.Request.Kind, j.TaskID, j.SubmittedAt)
}

// query asks about task id, submitted at since (zero: unknown, as for a
// submission whose reply was lost, which is at most moments old).
func (v *Vendor) query(ctx context.Context, kind engine.Kind, id string, since time.Time) (*engine.Outcome, error) {
	code := tool(kind)
	endpoint := "saas/sd/v2/queryTaskInfo"
	if code != "" {
		endpoint = "saas/tool/" + code + "/queryTask"
	}
	var raw json.RawMessage
	err := v.call(ctx, endpoint, queryBody{BusinessTaskID: id}, &raw)
	var ref *refusal
	switch {
	case errors.As(err, &ref) && !notFound.MatchString(ref.Msg):
		// Code "400" is any refusal ("失败=400"): without words saying the
		// task does not exist it is no proof, and a resubmission would be
		// billed again. Ask again later.
		return nil, fmt.Errorf("zhiqite %s %s: %w", endpoint, id, err)
	case errors.As(err, &ref), errors.Is(err, errNoData):
		if !since.IsZero() && !sameMonth(since, v.now()) {
			// "仅查询当月": the vendor no longer shows tasks of an earlier
			// month (Beijing time), so "not found" proves nothing; the
			// callback may still come. Never resubmitted for this.
			return nil, fmt.Errorf("zhiqite %s %s: the task was submitted in an earlier month, which the vendor does not show (%w)", endpoint, id, err)
		}
		// The vendor says it does not know the task.
		return nil, engine.Wrap(engine.ENOTFOUND, fmt.Errorf("zhiqite %s %s: %w", endpoint, id, err),
			"The image service has lost the task.", "绘图服务找不到这个任务了。")
	case err != nil:
		return nil, err
	}
	if code != "" {
		var tt toolTask
		if err := json.Unmarshal(raw, &tt); err != nil {
			return nil, fmt.Errorf("zhiqite %s: bad data: %w", endpoint, err)
		}
		out := toolOutcome(&tt)
		if u := strings.TrimSpace(string(tt.OutputImageURL)); out.State == engine.TaskRunning && u != "" && v.answers(ctx, u) {
			// roop's table says "1:成功": a status 1 whose link already
			// serves the image is done, whichever table is right.
			out = &engine.Outcome{State: engine.TaskDone, Progress: 1, Images: []engine.Remote{{URL: u, Late: true}}}
		}
		out.TaskID = id
		return out, nil
	}
	var info taskInfo
	if err := json.Unmarshal(raw, &info); err != nil {
		return nil, fmt.Errorf("zhiqite %s: bad data: %w", endpoint, err)
	}
	if !info.Status.Set {
		return nil, fmt.Errorf("zhiqite %s: reply has no status", endpoint)
	}
	out := v.sdOutcome(&info)
	out.TaskID = id
	return out, nil
}

// SD task states.
const (
	sdFailed    = 0
	sdRunning   = 1
	sdDone      = 2
	sdQueued    = 3
	sdUploading = 5
)

// sdOutcome reads a queryTaskInfo reply. Images the vendor deleted
// (image_status 2) or advises not to show (img_audit_status false) are
// dropped and counted, never passed on.
func (v *Vendor) sdOutcome(info *taskInfo) *engine.Outcome {
	out := &engine.Outcome{Progress: -1}
	if t := info.Temporary; t != nil {
		if t.Progress.Set {
			out.Progress = math.Min(math.Max(t.Progress.V, 0), 1)
		}
		out.Preview = v.preview(string(t.CurrentImage))
	}
	switch int(info.Status.V) {
	case sdQueued:
		out.State = engine.TaskQueued
	case sdDone:
		out.State, out.Progress, out.Preview = engine.TaskDone, 1, nil
		for _, img := range info.Images {
			switch {
			case img.ImageStatus.Set && int(img.ImageStatus.V) == 2, img.AuditStatus.Set && !img.AuditStatus.V:
				out.Dropped++
			case strings.TrimSpace(string(img.URL)) != "":
				out.Images = append(out.Images, engine.Remote{URL: strings.TrimSpace(string(img.URL)), Seed: int64(img.Seed.V)})
			}
		}
	case sdFailed:
		out.State = engine.TaskFailed
		desc := strings.TrimSpace(string(info.Desc))
		if desc == "" {
			desc = "task failed"
		}
		out.Err = engine.Wrap(engine.EVENDOR, fmt.Errorf("zhiqite task %s failed: %s", info.IDTask, desc),
			"The image service could not make this picture.", "绘图服务未能生成这张图片。")
	case sdUploading:
		out.State = engine.TaskRunning
		out.Progress = 1 // generated; the vendor is storing the images
	default: // 1 running, and anything new
		out.State = engine.TaskRunning
	}
	return out
}

// toolOutcome reads a tool's queryTask reply. enhance's table says
// "1:生成中 2:成功 0:失败" and the seed's own submit replies carry
// outputImageUrl with status 1: the link is assigned before the image
// exists, so a link alone is not success. 2 with a link is done (the link
// may still answer 404 for a moment: Late); 2 without one is roop's
// "2:失败"; 0 is failed; 1, 3 and anything else keep waiting.
func toolOutcome(t *toolTask) *engine.Outcome {
	u := strings.TrimSpace(string(t.OutputImageURL))
	switch {
	case t.Status.Set && t.Status.V == toolDone && u != "":
		return &engine.Outcome{State: engine.TaskDone, Progress: 1, Images: []engine.Remote{{URL: u, Late: true}}}
	case t.Status.Set && (t.Status.V == toolFailed || t.Status.V == toolDone):
		return &engine.Outcome{State: engine.TaskFailed, Progress: -1,
			Err: engine.Wrap(engine.EVENDOR, fmt.Errorf("zhiqite tool task %s: status %g and no image", t.BusinessTaskID, t.Status.V),
				"The image service could not make this picture.", "绘图服务未能生成这张图片。")}
	}
	return &engine.Outcome{State: engine.TaskRunning, Progress: -1}
}

// answers reports whether a result link serves an image now: a HEAD
// request, not billed (the vendor's storage, not its API).
func (v *Vendor) answers(ctx context.Context, link string) bool {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, link, nil)
	if err != nil {
		return false
	}
	resp, err := v.client.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK && strings.HasPrefix(resp.Header.Get("Content-Type"), "image/")
}

// Tool task states (enhance's table; roop's contradicts it, see toolOutcome).
const (
	toolFailed = 0
	toolDone   = 2
)

// preview decodes currentImage: base64, perhaps as a data: URI. A bad or
// oversized one is left out: a preview is a nicety.
func (v *Vendor) preview(s string) []byte {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil
	}
	if strings.HasPrefix(s, "data:") {
		if _, after, ok := strings.Cut(s, ","); ok {
			s = after
		}
	}
	if int64(base64.StdEncoding.DecodedLen(len(s))) > v.cfg.MaxImageBytes {
		return nil
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		if b, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(s, "=")); err != nil {
			return nil
		}
	}
	return b
}

func (v *Vendor) markLost(id string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	now := v.now()
	for k, at := range v.lost {
		if now.Sub(at) > 24*time.Hour { // the engine has long given up on these
			delete(v.lost, k)
		}
	}
	v.lost[id] = now
}

func (v *Vendor) wasLost(id string) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	_, ok := v.lost[id]
	return ok
}

func (v *Vendor) forgetLost(id string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	delete(v.lost, id)
}

// Choices implements engine.Chooser: the samplers of /draw (models and
// LoRAs come from the catalogue).
func (v *Vendor) Choices(k engine.Kind) engine.Choices {
	if k == engine.KindDraw {
		return engine.Choices{Samplers: slices.Clone(Samplers)}
	}
	return engine.Choices{}
}
