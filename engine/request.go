package engine

import (
	"strings"
	"unicode/utf8"
)

// Kind is what a command asks for.
type Kind string

const (
	KindDraw     Kind = "draw"     // text (and optionally a reference image) to image
	KindAnime    Kind = "anime"    // portrait photo to anime
	KindUpscale  Kind = "upscale"  // super-resolution
	KindSwapface Kind = "swapface" // the face of Inputs[0] onto Inputs[1]
)

// Kinds lists every kind, in the order help texts show them.
var Kinds = []Kind{KindDraw, KindAnime, KindUpscale, KindSwapface}

// Input is an image a user gave with a command. The bot fetches it at
// admission and keeps it, so a restart or a vendor retry never needs the
// user's (possibly expired) link again.
type Input struct {
	Blob   string `json:"blob"`
	Mime   string `json:"mime,omitempty"`
	Width  int    `json:"w,omitempty"`
	Height int    `json:"h,omitempty"`
	Size   int64  `json:"size,omitempty"`
}

// Request is a command turned into parameters, independent of platform and vendor.
type Request struct {
	Kind     Kind    `json:"kind"`
	Prompt   string  `json:"prompt,omitempty"`
	Negative string  `json:"negative,omitempty"`
	Model    string  `json:"model,omitempty"`
	LoRA     string  `json:"lora,omitempty"`
	Sampler  string  `json:"sampler,omitempty"`
	Width    int     `json:"width,omitempty"`
	Height   int     `json:"height,omitempty"`
	Steps    int     `json:"steps,omitempty"`
	Seed     int64   `json:"seed"` // -1 asks for a random seed; Submit resolves it
	Guidance float64 `json:"guidance,omitempty"`
	N        int     `json:"n,omitempty"`
	Style    string  `json:"style,omitempty"`
	Scale    int     `json:"scale,omitempty"`
	Inputs   []Input `json:"inputs,omitempty"`

	// Options only some vendors offer: a vendor takes a request that uses
	// one only if it says so (FeatureVendor); Features lists them.
	ExtraLoRAs   []string `json:"extra_loras,omitempty"` // --lora given again: the second and later, NAME[:WEIGHT]
	VAE          string   `json:"vae,omitempty"`
	Embeddings   []string `json:"embeddings,omitempty"`
	ClipSkip     int      `json:"clip_skip,omitempty"`
	Strength     float64  `json:"strength,omitempty"` // denoising of image to image, (0,1]; 0: the vendor's default
	RestoreFaces bool     `json:"restore_faces,omitempty"`
	FaceFix      bool     `json:"face_fix,omitempty"` // a face detailer pass (ADetailer)
	Tile         bool     `json:"tile,omitempty"`     // a seamless, tileable image
	Hires        *Hires   `json:"hires,omitempty"`
	Control      *Control `json:"control,omitempty"`
	Mask         *Input   `json:"mask,omitempty"` // inpainting: white is repainted
	// VariationSeed and VariationStrength ask for a variation of the image
	// Seed makes (the vary button). A hint, not a feature: a vendor without
	// them uses Inputs, the picture to vary, as a reference.
	VariationSeed     int64   `json:"variation_seed,omitempty"`
	VariationStrength float64 `json:"variation_strength,omitempty"`
	// Upscale options.
	AnimeModel          bool    `json:"anime_model,omitempty"` // the upscaler for drawings
	TargetWidth         int     `json:"target_width,omitempty"`
	TargetHeight        int     `json:"target_height,omitempty"`
	Upscaler            string  `json:"upscaler,omitempty"`
	FaceRestore         string  `json:"face_restore,omitempty"` // gfpgan or codeformer
	FaceRestoreStrength float64 `json:"face_restore_strength,omitempty"`
}

// Hires is a second, larger pass over a drawn image.
type Hires struct {
	Scale    float64 `json:"scale"`
	Steps    int     `json:"steps,omitempty"`
	Upscaler string  `json:"upscaler,omitempty"`
}

// Control is a ControlNet unit: the image it follows and how.
type Control struct {
	Input  Input   `json:"input"`
	Type   string  `json:"type,omitempty"` // canny, depth, openpose, ...; "" the vendor's default
	Weight float64 `json:"weight,omitempty"`
	Start  float64 `json:"start,omitempty"`
	End    float64 `json:"end,omitempty"` // 0: the vendor's default (the whole run)
}

// Feature names, as Features reports them and FeatureVendor is asked.
const (
	FeatureLoRAs        = "lora (more than one)"
	FeatureVAE          = "vae"
	FeatureEmbedding    = "embedding"
	FeatureClipSkip     = "clip-skip"
	FeatureStrength     = "strength"
	FeatureRestoreFaces = "restore-faces"
	FeatureFaceFix      = "face-fix"
	FeatureTile         = "tile"
	FeatureHires        = "hires"
	FeatureControl      = "control"
	FeatureMask         = "mask"
	FeatureAnimeModel   = "anime"
	FeatureTargetSize   = "size"
	FeatureUpscaler     = "upscaler"
	FeatureFaceRestore  = "face-restore"
)

// Features lists the options r uses that only some vendors offer, as --flag names.
func (r *Request) Features() []string {
	var f []string
	add := func(on bool, name string) {
		if on {
			f = append(f, name)
		}
	}
	add(len(r.ExtraLoRAs) > 0, FeatureLoRAs)
	add(r.VAE != "", FeatureVAE)
	add(len(r.Embeddings) > 0, FeatureEmbedding)
	add(r.ClipSkip != 0, FeatureClipSkip)
	add(r.Strength != 0, FeatureStrength)
	add(r.RestoreFaces, FeatureRestoreFaces)
	add(r.FaceFix, FeatureFaceFix)
	add(r.Tile, FeatureTile)
	add(r.Hires != nil, FeatureHires)
	add(r.Control != nil, FeatureControl)
	add(r.Mask != nil, FeatureMask)
	add(r.AnimeModel, FeatureAnimeModel)
	add(r.TargetWidth != 0 || r.TargetHeight != 0, FeatureTargetSize)
	add(r.Upscaler != "", FeatureUpscaler)
	add(r.FaceRestore != "", FeatureFaceRestore)
	return f
}

// AllInputs is every image the request holds, in the order of the input
// links a vendor is given (Task.InputURLs): Inputs, then the control
// image, then the mask.
func (r *Request) AllInputs() []Input {
	all := append([]Input(nil), r.Inputs...)
	if r.Control != nil {
		all = append(all, r.Control.Input)
	}
	if r.Mask != nil {
		all = append(all, *r.Mask)
	}
	return all
}

// ControlIndex and MaskIndex are the control image's and the mask's places
// in AllInputs; -1 when there is none.
func (r *Request) ControlIndex() int {
	if r.Control == nil {
		return -1
	}
	return len(r.Inputs)
}

func (r *Request) MaskIndex() int {
	if r.Mask == nil {
		return -1
	}
	return len(r.Inputs) + btoi(r.Control != nil)
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Limits bound what a request may ask. The zero value is not useful; start from DefaultLimits.
type Limits struct {
	MaxPromptRunes int     `yaml:"max_prompt_runes"`
	MinSide        int     `yaml:"min_side"`
	MaxSide        int     `yaml:"max_side"`
	MaxSteps       int     `yaml:"max_steps"`
	MaxImages      int     `yaml:"max_images"`
	MaxGuidance    float64 `yaml:"max_guidance"`
	MaxScale       int     `yaml:"max_scale"`
	MaxOutputSide  int     `yaml:"max_output_side"` // upscale result, per side
}

// DefaultLimits are the documented maxima.
func DefaultLimits() Limits {
	return Limits{
		MaxPromptRunes: 1000,
		MinSide:        64,
		MaxSide:        2048,
		MaxSteps:       60,
		MaxImages:      4,
		MaxGuidance:    30,
		MaxScale:       8,
		MaxOutputSide:  8192,
	}
}

// Request defaults applied by Normalize.
const (
	DefaultSide     = 512
	DefaultSteps    = 25
	DefaultGuidance = 7
	DefaultScale    = 2
	DefaultStyle    = "anime"
)

// Normalize fills unset fields with defaults and trims text.
func (r *Request) Normalize() {
	r.Prompt = strings.TrimSpace(r.Prompt)
	r.Negative = strings.TrimSpace(r.Negative)
	if r.N == 0 {
		r.N = 1
	}
	switch r.Kind {
	case KindDraw:
		if r.Width == 0 && r.Height == 0 {
			r.Width, r.Height = DefaultSide, DefaultSide
		}
		if r.Steps == 0 {
			r.Steps = DefaultSteps
		}
		if r.Guidance == 0 {
			r.Guidance = DefaultGuidance
		}
	case KindAnime:
		if r.Style == "" {
			r.Style = DefaultStyle
		}
	case KindUpscale:
		if r.Scale == 0 {
			r.Scale = DefaultScale
		}
	}
}

// Validate checks r against lim and returns an EINVALID error naming the first problem.
func (r *Request) Validate(lim Limits) error {
	switch r.Kind {
	case KindDraw, KindAnime, KindUpscale, KindSwapface:
	default:
		return Errorf(EINVALID, "Unknown command %q.", "未知的命令 %q。", r.Kind)
	}
	if n := utf8.RuneCountInString(r.Prompt); n > lim.MaxPromptRunes {
		return Errorf(EINVALID, "The prompt is too long: %d characters, at most %d.", "提示词太长：%d 个字符，最多 %d 个。", n, lim.MaxPromptRunes)
	}
	if n := utf8.RuneCountInString(r.Negative); n > lim.MaxPromptRunes {
		return Errorf(EINVALID, "The negative prompt is too long: %d characters, at most %d.", "反向提示词太长：%d 个字符，最多 %d 个。", n, lim.MaxPromptRunes)
	}
	if r.N < 1 || r.N > lim.MaxImages {
		return Errorf(EINVALID, "--n must be between 1 and %d.", "--n 必须在 1 到 %d 之间。", lim.MaxImages)
	}
	if r.Seed < -1 || r.Seed > 1<<32-1 {
		return Errorf(EINVALID, "--seed must be -1 (random) or between 0 and 4294967295.", "--seed 必须是 -1（随机）或 0 到 4294967295 之间的整数。")
	}
	want := map[Kind]int{KindDraw: -1, KindAnime: 1, KindUpscale: 1, KindSwapface: 2}[r.Kind]
	switch {
	case want == -1 && len(r.Inputs) > 1:
		return Errorf(EINVALID, "/draw takes at most one reference image.", "/draw 最多接受一张参考图。")
	case want == 1 && len(r.Inputs) != 1:
		return Errorf(EINVALID, "/%s needs exactly one image.", "/%s 需要一张图片。", r.Kind)
	case want == 2 && len(r.Inputs) != 2:
		return Errorf(EINVALID, "/swapface needs two images: the face, then the target.", "/swapface 需要两张图片：先是人脸，然后是目标图。")
	}
	for i, in := range r.Inputs {
		if in.Blob == "" {
			return Errorf(EINVALID, "Image %d is missing.", "第 %d 张图片缺失。", i+1)
		}
	}
	switch r.Kind {
	case KindDraw:
		if r.Prompt == "" {
			return Errorf(EINVALID, "Please describe the picture: /draw <prompt>.", "请描述要画的内容：/draw <提示词>。")
		}
		if r.Width < lim.MinSide || r.Width > lim.MaxSide || r.Height < lim.MinSide || r.Height > lim.MaxSide || r.Width%8 != 0 || r.Height%8 != 0 {
			return Errorf(EINVALID, "--size %dx%d is not allowed: each side must be a multiple of 8 between %d and %d.",
				"--size %dx%d 不可用：宽和高都必须是 8 的倍数，且在 %d 到 %d 之间。", r.Width, r.Height, lim.MinSide, lim.MaxSide)
		}
		if r.Steps < 1 || r.Steps > lim.MaxSteps {
			return Errorf(EINVALID, "--steps must be between 1 and %d.", "--steps 必须在 1 到 %d 之间。", lim.MaxSteps)
		}
		if !(r.Guidance >= 1 && r.Guidance <= lim.MaxGuidance) { // NaN too: "--cfg NaN" parses
			return Errorf(EINVALID, "--cfg must be between 1 and %g.", "--cfg 必须在 1 到 %g 之间。", lim.MaxGuidance)
		}
	case KindUpscale:
		if r.Scale < 1 || r.Scale > lim.MaxScale {
			return Errorf(EINVALID, "--scale must be between 1 and %d.", "--scale 必须在 1 到 %d 之间。", lim.MaxScale)
		}
		in := r.Inputs[0]
		if r.TargetWidth != 0 || r.TargetHeight != 0 {
			if r.TargetWidth < lim.MinSide || r.TargetHeight < lim.MinSide || r.TargetWidth > lim.MaxOutputSide || r.TargetHeight > lim.MaxOutputSide {
				return Errorf(EINVALID, "--size %dx%d is not allowed: each side must be between %d and %d.",
					"--size %dx%d 不可用：宽和高都必须在 %d 到 %d 之间。", r.TargetWidth, r.TargetHeight, lim.MinSide, lim.MaxOutputSide)
			}
		} else if in.Width*r.Scale > lim.MaxOutputSide || in.Height*r.Scale > lim.MaxOutputSide {
			// Point at a fix that exists: a smaller --scale only if one would fit.
			if fit := lim.MaxOutputSide / max(in.Width, in.Height, 1); fit >= 2 {
				return Errorf(EINVALID, "The result would be %dx%d, larger than %d pixels per side. Try --scale %d.",
					"放大后为 %dx%d，超过每边 %d 像素的上限，请使用 --scale %d。", in.Width*r.Scale, in.Height*r.Scale, lim.MaxOutputSide, fit)
			}
			most := lim.MaxOutputSide / 2
			return Errorf(EINVALID, "This image is %dx%d: too large to upscale even ×2 (at most %d pixels per side after upscaling). Send an image of at most %dx%d.",
				"这张图片为 %dx%d，太大了，放大 2 倍也会超过每边 %d 像素的上限。请发送不超过 %dx%d 的图片。", in.Width, in.Height, lim.MaxOutputSide, most, most)
		}
	}
	if err := r.validateOptions(lim); err != nil {
		return err
	}
	if r.Kind != KindDraw && r.N != 1 {
		return Errorf(EINVALID, "--n only applies to /draw.", "--n 只适用于 /draw。")
	}
	return nil
}

// Images is how many images the request should produce.
func (r *Request) Images() int {
	if r.N < 1 {
		return 1
	}
	return r.N
}

// validateOptions checks the ranges of the options some vendors offer.
func (r *Request) validateOptions(lim Limits) error {
	draw := r.Kind == KindDraw
	for _, c := range []struct {
		on   bool
		flag string
	}{
		{len(r.ExtraLoRAs) > 0 || r.VAE != "" || len(r.Embeddings) > 0 || r.ClipSkip != 0 || r.Strength != 0 || r.RestoreFaces || r.FaceFix ||
			r.Tile || r.Hires != nil || r.Control != nil || r.Mask != nil || r.VariationStrength != 0, "draw"},
		{r.AnimeModel || r.TargetWidth != 0 || r.TargetHeight != 0 || r.Upscaler != "" || r.FaceRestore != "", "upscale"},
	} {
		if c.on && string(r.Kind) != c.flag {
			return Errorf(EINVALID, "That option only applies to /%s.", "该选项只适用于 /%s。", c.flag)
		}
	}
	if !draw && r.Kind != KindUpscale {
		return nil
	}
	if r.ClipSkip < 0 || r.ClipSkip > 12 {
		return Errorf(EINVALID, "--clip-skip must be between 1 and 12.", "--clip-skip 必须在 1 到 12 之间。")
	}
	if !(r.Strength >= 0 && r.Strength <= 1) {
		return Errorf(EINVALID, "--strength must be between 0 and 1.", "--strength 必须在 0 到 1 之间。")
	}
	if r.Strength != 0 && len(r.Inputs) == 0 {
		return Errorf(EINVALID, "--strength needs a reference image (--image).", "--strength 需要参考图（--image）。")
	}
	if r.Mask != nil && len(r.Inputs) == 0 {
		return Errorf(EINVALID, "--mask needs the image to repaint (--image).", "--mask 需要一张要重绘的图（--image）。")
	}
	if h := r.Hires; h != nil {
		if !(h.Scale >= 1 && h.Scale <= 4) {
			return Errorf(EINVALID, "--hires must be between 1 and 4, like 1.5.", "--hires 必须在 1 到 4 之间，例如 1.5。")
		}
		if h.Steps < 0 || h.Steps > lim.MaxSteps {
			return Errorf(EINVALID, "--hires-steps must be between 1 and %d.", "--hires-steps 必须在 1 到 %d 之间。", lim.MaxSteps)
		}
	}
	if c := r.Control; c != nil {
		if c.Input.Blob == "" {
			return Errorf(EINVALID, "--control needs an image.", "--control 需要一张图片。")
		}
		if !(c.Weight >= 0 && c.Weight <= 2) {
			return Errorf(EINVALID, "--control-weight must be between 0 and 2.", "--control-weight 必须在 0 到 2 之间。")
		}
		if !(c.Start >= 0 && c.Start <= 1 && c.End >= 0 && c.End <= 1) || (c.End != 0 && c.End < c.Start) {
			return Errorf(EINVALID, "--control-start and --control-end must be between 0 and 1, the start before the end.",
				"--control-start 和 --control-end 必须在 0 到 1 之间，且开始不晚于结束。")
		}
	}
	if r.Mask != nil && r.Mask.Blob == "" {
		return Errorf(EINVALID, "--mask needs an image.", "--mask 需要一张图片。")
	}
	if !(r.VariationStrength >= 0 && r.VariationStrength <= 1) {
		return Errorf(EINVALID, "The variation strength must be between 0 and 1.", "变体强度必须在 0 到 1 之间。")
	}
	switch r.FaceRestore {
	case "", "gfpgan", "codeformer":
	default:
		return Errorf(EINVALID, "--face-restore takes gfpgan or codeformer, not %q.", "--face-restore 可选 gfpgan 或 codeformer，而不是 %q。", r.FaceRestore)
	}
	if !(r.FaceRestoreStrength >= 0 && r.FaceRestoreStrength <= 1) {
		return Errorf(EINVALID, "The --face-restore strength must be between 0 and 1.", "--face-restore 的强度必须在 0 到 1 之间。")
	}
	return nil
}
