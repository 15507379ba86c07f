package zhiqite

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"strings"
)

// The vendor's JSON, as the seed document (seeds/001) shows it. Replies are
// decoded leniently: numbers may come as strings and the other way round,
// because the document contradicts itself on several fields.

// envelope is every reply: {code, msg, data}; code is the string "200" on success.
type envelope struct {
	Code text            `json:"code"`
	Msg  string          `json:"msg"`
	Data json.RawMessage `json:"data"`
}

// hasData reports whether data is present and not null.
func (e *envelope) hasData() bool {
	d := bytes.TrimSpace(e.Data)
	return len(d) > 0 && !bytes.Equal(d, []byte("null"))
}

// text is a string the vendor may also send as a number. Anything else
// (null, an object) reads as empty rather than failing the whole reply.
type text string

func (t *text) UnmarshalJSON(b []byte) error {
	*t = ""
	b = bytes.TrimSpace(b)
	var s string
	var n json.Number
	switch {
	case json.Unmarshal(b, &s) == nil:
		*t = text(s)
	case json.Unmarshal(b, &n) == nil:
		*t = text(n.String())
	}
	return nil
}

// num is a number the vendor may also send as a string ("0.45", "2"); a
// trailing % divides by 100. Anything else (null, "", a word, an object,
// NaN or an infinity) leaves it unset rather than failing the whole reply.
type num struct {
	V   float64
	Set bool
}

func (n *num) UnmarshalJSON(b []byte) error {
	*n = num{}
	b = bytes.TrimSpace(b)
	s := string(b)
	if len(b) > 0 && b[0] == '"' {
		if json.Unmarshal(b, &s) != nil {
			return nil
		}
	}
	s = strings.TrimSpace(s)
	div := 1.0
	if strings.HasSuffix(s, "%") {
		s, div = strings.TrimSuffix(s, "%"), 100
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && !math.IsNaN(f) && !math.IsInf(f, 0) {
		*n = num{V: f / div, Set: true}
	}
	return nil
}

// flag is a boolean the vendor may also send as "true", 1 or "1".
// Anything else leaves it unset.
type flag struct {
	V   bool
	Set bool
}

func (f *flag) UnmarshalJSON(b []byte) error {
	*f = flag{}
	s := strings.Trim(strings.TrimSpace(string(b)), `"`)
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "1":
		*f = flag{V: true, Set: true}
	case "false", "0":
		*f = flag{V: false, Set: true}
	}
	return nil
}

func (n num) MarshalJSON() ([]byte, error) {
	if !n.Set {
		return []byte("null"), nil
	}
	return json.Marshal(n.V)
}

// sdRequest is the body of saas/sd/v2/text2image, image2image and controlnet.
type sdRequest struct {
	Prompt            string   `json:"prompt"`
	NegativePrompt    string   `json:"negative_prompt,omitempty"`
	NIter             int      `json:"n_iter"`
	BatchSize         int      `json:"batch_size"`
	Steps             int      `json:"steps"`
	Seed              any      `json:"seed"` // a string in text2image and image2image, an integer in controlnet
	RestoreFaces      bool     `json:"restore_faces"`
	EnableHR          bool     `json:"enable_hr"`
	Width             int      `json:"width"`
	Height            int      `json:"height"`
	CfgScale          float64  `json:"cfg_scale"`
	SamplerIndex      string   `json:"sampler_index,omitempty"`
	DenoisingStrength *float64 `json:"denoising_strength,omitempty"`
	ResizeMode        *int     `json:"resize_mode,omitempty"`
	// Hires fix. hr_scale is typed integer; hr_resize_x is the width and
	// hr_resize_y the height, whatever the seed's labels say (they are swapped).
	HRScale           int    `json:"hr_scale,omitempty"`
	HRUpscaler        string `json:"hr_upscaler,omitempty"`
	HRSecondPassSteps int    `json:"hr_second_pass_steps,omitempty"`
	HRResizeX         int    `json:"hr_resize_x,omitempty"`
	HRResizeY         int    `json:"hr_resize_y,omitempty"`
	// Inpainting (image2image with mask_link).
	MaskBlur              *int    `json:"mask_blur,omitempty"`
	InpaintingFill        *int    `json:"inpainting_fill,omitempty"`
	InpaintFullRes        *bool   `json:"inpaint_full_res,omitempty"`
	InpaintFullResPadding *int    `json:"inpaint_full_res_padding,omitempty"`
	InpaintingMaskInvert  *int    `json:"inpainting_mask_invert,omitempty"`
	CallbackURL           string  `json:"callbackUrl,omitempty"`
	Scripts               scripts `json:"alwayson_scripts"`
}

// scripts is alwayson_scripts. The seed also spells it always_on_scripts;
// the API gateway's own examples and the text2image example use alwayson_scripts.
type scripts struct {
	Model            string                 `json:"sd_model_checkpoint"`
	IDTask           string                 `json:"id_task"`
	VAE              string                 `json:"sd_vae,omitempty"`
	OutputFormat     string                 `json:"output_image_format,omitempty"`
	ImageLink        string                 `json:"image_link,omitempty"`
	MaskLink         string                 `json:"mask_link,omitempty"`
	OverrideSettings *overrideSettings      `json:"override_settings,omitempty"`
	ADetailer        *argsOf[adetailerArgs] `json:"ADetailer,omitempty"`
	ControlNet       *argsOf[controlUnit]   `json:"controlnet,omitempty"`
}

type argsOf[T any] struct {
	Args []T `json:"args"`
}

// controlUnit is one of controlnet.args.
type controlUnit struct {
	ImageLink     string  `json:"image_link"`
	Enabled       bool    `json:"enabled"`
	Module        string  `json:"module"`
	Model         string  `json:"model"`
	Weight        float64 `json:"weight"`
	ResizeMode    string  `json:"resize_mode"`
	LowVRAM       bool    `json:"low_vram"`
	ProcessorRes  int     `json:"processor_res"`
	GuidanceStart float64 `json:"guidance_start"`
	GuidanceEnd   float64 `json:"guidance_end"`
	PixelPerfect  bool    `json:"pixel_perfect"`
	ControlMode   string  `json:"control_mode"`
}

// adetailerArgs is one of ADetailer.args, with the seed example's values
// except the detection model.
type adetailerArgs struct {
	Model                   string  `json:"ad_model"`
	Prompt                  string  `json:"ad_prompt"`
	NegativePrompt          string  `json:"ad_negative_prompt"`
	Confidence              float64 `json:"ad_confidence"`
	MaskMinRatio            float64 `json:"ad_mask_min_ratio"`
	MaskMaxRatio            float64 `json:"ad_mask_max_ratio"`
	DilateErode             int     `json:"ad_dilate_erode"`
	XOffset                 int     `json:"ad_x_offset"`
	YOffset                 int     `json:"ad_y_offset"`
	MaskMergeInvert         string  `json:"ad_mask_merge_invert"`
	MaskBlur                int     `json:"ad_mask_blur"`
	DenoisingStrength       float64 `json:"ad_denoising_strength"`
	InpaintOnlyMasked       bool    `json:"ad_inpaint_only_masked"`
	InpaintOnlyMaskedPad    int     `json:"ad_inpaint_only_masked_padding"`
	UseInpaintWidthHeight   bool    `json:"ad_use_inpaint_width_height"`
	InpaintWidth            int     `json:"ad_inpaint_width"`
	InpaintHeight           int     `json:"ad_inpaint_height"`
	UseSteps                bool    `json:"ad_use_steps"`
	Steps                   int     `json:"ad_steps"`
	UseCfgScale             bool    `json:"ad_use_cfg_scale"`
	CfgScale                int     `json:"ad_cfg_scale"`
	UseSampler              bool    `json:"ad_use_sampler"`
	Sampler                 string  `json:"ad_sampler"`
	UseNoiseMultiplier      bool    `json:"ad_use_noise_multiplier"`
	NoiseMultiplier         int     `json:"ad_noise_multiplier"`
	RestoreFace             bool    `json:"ad_restore_face"`
	ControlNetModel         string  `json:"ad_controlnet_model"`
	ControlNetModule        string  `json:"ad_controlnet_module"`
	ControlNetWeight        float64 `json:"ad_controlnet_weight"`
	ControlNetGuidanceStart float64 `json:"ad_controlnet_guidance_start"`
	ControlNetGuidanceEnd   float64 `json:"ad_controlnet_guidance_end"`
}

// seedADetailer is the seed's text2image example unit, with model set.
func seedADetailer(model string) adetailerArgs {
	return adetailerArgs{
		Model: model, Confidence: 0.3, MaskMinRatio: 0, MaskMaxRatio: 1, DilateErode: 32, MaskMergeInvert: "None",
		MaskBlur: 4, DenoisingStrength: 0.4, InpaintOnlyMasked: true, InpaintWidth: 512, InpaintHeight: 512,
		UseSteps: true, Steps: 28, CfgScale: 7, Sampler: "DPM++ 2M Karras", NoiseMultiplier: 1,
		ControlNetModel: "None", ControlNetModule: "None", ControlNetWeight: 1, ControlNetGuidanceEnd: 1,
	}
}

type overrideSettings struct {
	ClipSkip int `json:"CLIP_stop_at_last_layers"`
}

// submitted is data in a text2image/image2image reply.
type submitted struct {
	TaskID text `json:"task_id"`
}

// roopRequest is the body of saas/tool/roop: the face of sourceUrl onto targetUrl.
type roopRequest struct {
	SourceURL      string `json:"sourceUrl"`
	TargetURL      string `json:"targetUrl"`
	BusinessTaskID string `json:"businessTaskId"`
	// CallbackURL is not in roop's own table, but the document's preamble
	// offers callbacks for the whole API; if roop ignores it, the engine's safety poll finds the result.
	CallbackURL string `json:"callbackUrl,omitempty"`
}

// enhanceRequest is the body of saas/tool/enhance (super-resolution).
// Fields the bot does not choose keep the seed example's values.
type enhanceRequest struct {
	BusinessTaskID            string  `json:"businessTaskId"`
	ResizeMode                int     `json:"resizeMode"` // 0: by upscalingResize, 1: to upscalingResizeW × H
	UpscalingResizeW          int     `json:"upscalingResizeW,omitempty"`
	UpscalingResizeH          int     `json:"upscalingResizeH,omitempty"`
	GfpganVisibility          float64 `json:"gfpganVisibility"`
	CodeformerVisibility      float64 `json:"codeformerVisibility"`
	CodeformerWeight          float64 `json:"codeformerWeight"`
	UpscalingResize           int     `json:"upscalingResize"`
	UpscalingCrop             bool    `json:"upscalingCrop"`
	Upscaler1                 string  `json:"upscaler1"`
	Upscaler2                 string  `json:"upscaler2"`
	ExtrasUpscaler2Visibility float64 `json:"extrasUpscaler2Visibility"`
	UpscaleFirst              bool    `json:"upscaleFirst"`
	Image                     string  `json:"image"`
	CallbackURL               string  `json:"callbackUrl,omitempty"`
}

// toolTask is data in a tool's submit and queryTask replies. The documents
// give status as 1 success / 2 failure, as 1 running / 2 success / 0 failure,
// and show 2 beside a result URL: only outputImageUrl is trusted.
type toolTask struct {
	BusinessTaskID text `json:"businessTaskId"`
	TaskID         text `json:"taskId"`
	ToolTask       text `json:"toolTask"`
	Status         num  `json:"status"`
	OutputImageURL text `json:"outputImageUrl"`
}

// queryBody is the body of every task query.
type queryBody struct {
	BusinessTaskID string `json:"businessTaskId"`
}

// taskInfo is data in a saas/sd/v2/queryTaskInfo reply.
type taskInfo struct {
	IDTask    text          `json:"id_task"`
	Status    num           `json:"status"` // 3 queued, 1 running, 5 uploading, 2 done, 0 failed
	Desc      text          `json:"desc"`
	Temporary *temporary    `json:"temporaryImageDto"`
	Images    []resultImage `json:"differentialImageRspList"`
}

// temporary is the live state of a running task.
type temporary struct {
	Progress     num  `json:"progress"` // "0~1"
	CurrentImage text `json:"currentImage"`
	JobNo        num  `json:"jobNo"`
	JobCount     num  `json:"jobCount"`
}

type resultImage struct {
	Audit       []imageAudit `json:"img_audit"`
	AuditStatus flag         `json:"img_audit_status"` // false: do not show
	ImageStatus num          `json:"image_status"`     // 1 normal, 2 deleted
	URL         text         `json:"image_url"`
	Seed        num          `json:"seed"`
}

type imageAudit struct {
	Confidence num  `json:"confidence"`
	Label      text `json:"label"`
}

// page is data in every list reply.
type page[T any] struct {
	Rows     []T `json:"rows"`
	Total    num `json:"total"`
	PageSize num `json:"pageSize"`
	PageNum  num `json:"pageNum"`
}

type listBody struct {
	PageSize    int     `json:"pageSize"`
	PageNum     int     `json:"pageNum"`
	VAEFileName *string `json:"vaeFileName,omitempty"` // queryVaeList marks it required
}

type modelRow struct {
	ID                 num    `json:"id"`
	SDModelCheckpoint  string `json:"sdModelCheckpoint"`
	SDModelName        string `json:"sdModelName"`
	ModelBaseModel     string `json:"modelBaseModel"`
	ModelHash          string `json:"modelHash"`
	ModelType          string `json:"modelType"`
	ModelVersion       string `json:"modelVersion"`
	ModelStatus        num    `json:"modelStatus"`       // 0 offline, 1 online
	ModelUploadStatus  num    `json:"modelUploadStatus"` // 0 not uploaded, 1 uploading, 2 uploaded
	ModelImgURL2       string `json:"modelImgUrl2"`
	ModelCoverImgURL2  string `json:"modelCoverImgUrl2"`
	ModelCoverImageURL string `json:"modelCoverImageUrl2"` // the table's spelling
	IsAdult            num    `json:"isAdult"`
}

type loraRow struct {
	ID                     num    `json:"id"`
	SDLoraName             string `json:"sdLoraName"`
	LoraBaseModel          string `json:"loraBaseModel"`
	SDLoraFileName         string `json:"sdLoraFileName"`
	SDLoraFileSimplifyName string `json:"sdLoraFileSimplifyName"`
	LoraVersion            string `json:"loraVersion"`
	LoraStatus             num    `json:"loraStatus"`
	LoraUploadStatus       num    `json:"loraUploadStatus"`
	LoraImgURL2            string `json:"loraImgUrl2"`
	LoraCoverImgURL2       string `json:"loraCoverImgUrl2"`
	IsAdult                num    `json:"isAdult"`
}

type vaeRow struct {
	ID          num    `json:"id"`
	VAEFileName string `json:"vaeFileName"`
}

type embeddingRow struct {
	ID                    num    `json:"id"`
	EmbeddingName         string `json:"embeddingName"`
	EmbeddingSimplifyName string `json:"embeddingSimplifyName"`
}
