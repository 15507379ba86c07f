// Package a1111test is a fake AUTOMATIC1111 web UI API server for tests,
// built from the web UI's sources (modules/api/api.py, modules/api/models.py,
// modules/progress.py), not from the adapter:
//
//   - txt2img, img2img and extra-single-image block until the image is
//     done; the generation calls take one global lock (queue_lock), so a
//     second call waits for the first, in no promised order;
//   - a task id is force_task_id or a fresh "task(txt2img-XXXXXXX)"; it is
//     "pending" from the call's arrival, "current" once it holds the lock,
//     and listed among the last 16 finished tasks when it ends well (the
//     web UI calls finish_task only on success, not in a finally);
//   - POST /internal/progress {id_task, id_live_preview, live_preview}
//     answers active/queued/completed, and for the active task progress,
//     eta and a live preview as a data: URI, only when it changed;
//   - POST /sdapi/v1/interrupt stops whatever runs, whoever started it;
//   - request bodies are checked as pydantic would: a field of the wrong
//     type (or out of its ge/le range, for extras) is a 422 {"detail":
//     [{"loc", "msg", "type"}]}; a key the request model does not have is
//     a 422 too (the web UI ignores it: stricter, so that a misspelt or
//     misplaced field, an option silently dropped, fails); an unknown sampler
//     is a 404 and an unknown always-on script a 422, in the web UI's own
//     {"error", "detail", "body", "errors"} shape;
//   - --api-auth is HTTP basic auth on every /sdapi route (401 otherwise);
//     a bearer token, as a reverse proxy in front of the web UI would check
//     it, is an option of the fake.
package a1111test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image"
	_ "image/jpeg"
	"image/png"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"time"
)

// Options configure the fake.
type Options struct {
	Username, Password string // --api-auth user:password; empty: no auth
	Token              string // a bearer token a proxy checks; empty: none
	// StepTime is how long one sampling step takes (default 2 ms).
	StepTime time.Duration
	// UpscaleTime is how long extra-single-image takes (default 20 ms).
	UpscaleTime time.Duration
	// Extensions installed: "sd-webui-controlnet", "adetailer", "sd-webui-reactor".
	Extensions []string
	// NoLivePreviews turns off opts.live_previews_enable.
	NoLivePreviews bool
	// Fail makes the next generation raise, as CUDA out of memory does.
	Fail string
}

// Job is one generation the fake ran, for a test to inspect.
type Job struct {
	TaskID  string
	Path    string
	Body    map[string]any
	Started time.Time
	Ended   time.Time
	OK      bool
}

// Server is the fake.
type Server struct {
	*httptest.Server
	opts Options

	queue sync.Mutex // the web UI's queue_lock

	mu        sync.Mutex
	seq       int
	pending   map[string]int // id → arrival order
	current   string
	finished  []string
	step      int // shared.state.sampling_step, over all images
	steps     int
	started   time.Time
	previewID int
	preview   []byte
	interrupt bool
	job       string // shared.state.job: "" when idle (state.end())
	jobCount  int    // shared.state.job_count: 0 when idle
	fail      string
	jobs      []Job
	calls     map[string]int
}

// Samplers, Schedulers and the catalogue the fake offers.
var (
	Samplers   = []string{"DPM++ 2M", "DPM++ SDE", "Euler a", "Euler", "DDIM"}
	Schedulers = []string{"automatic", "uniform", "karras", "exponential"}
	Models     = []string{"v1-5-pruned-emaonly.safetensors [6ce0161689]", "sd_xl_base_1.0.safetensors [31e35c80fc]"}
	LoRAs      = []string{"add_detail", "pixel-art-xl"}
	VAEs       = []string{"vae-ft-mse-840000-ema-pruned.safetensors", "v.safetensors"}
	Embeddings = []string{"EasyNegative"}
	Upscalers  = []string{"None", "Lanczos", "Nearest", "R-ESRGAN 4x+", "R-ESRGAN 4x+ Anime6B", "SwinIR_4x"}
)

// New starts the fake on loopback.
func New(o Options) *Server {
	if o.StepTime <= 0 {
		o.StepTime = 2 * time.Millisecond
	}
	if o.UpscaleTime <= 0 {
		o.UpscaleTime = 20 * time.Millisecond
	}
	s := &Server{opts: o, pending: map[string]int{}, fail: o.Fail, calls: map[string]int{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /sdapi/v1/txt2img", s.auth(s.generate("txt2img")))
	mux.HandleFunc("POST /sdapi/v1/img2img", s.auth(s.generate("img2img")))
	mux.HandleFunc("POST /sdapi/v1/extra-single-image", s.auth(s.extras))
	mux.HandleFunc("POST /sdapi/v1/interrupt", s.auth(s.interruptAPI))
	mux.HandleFunc("GET /sdapi/v1/progress", s.auth(s.globalProgress))
	mux.HandleFunc("POST /internal/progress", s.proxyAuth(s.progress))
	// modules/ui.py: app.add_api_route("/internal/ping", lambda: {}), outside --api-auth.
	mux.HandleFunc("GET /internal/ping", s.proxyAuth(func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, map[string]any{}) }))
	mux.HandleFunc("GET /sdapi/v1/sd-models", s.auth(s.list(models())))
	mux.HandleFunc("GET /sdapi/v1/loras", s.auth(s.list(loras())))
	mux.HandleFunc("GET /sdapi/v1/samplers", s.auth(s.list(named(Samplers, "aliases"))))
	mux.HandleFunc("GET /sdapi/v1/schedulers", s.auth(s.list(schedulers())))
	mux.HandleFunc("GET /sdapi/v1/upscalers", s.auth(s.list(upscalers())))
	mux.HandleFunc("GET /sdapi/v1/sd-vae", s.auth(s.list(vaes())))
	mux.HandleFunc("GET /sdapi/v1/embeddings", s.auth(s.list(embeddings())))
	mux.HandleFunc("GET /sdapi/v1/scripts", s.auth(s.scripts))
	if slices.Contains(o.Extensions, "sd-webui-controlnet") {
		// The ControlNet extension's own route (its api.py).
		mux.HandleFunc("GET /controlnet/version", s.proxyAuth(func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 200, map[string]any{"version": 2})
		}))
	}
	if slices.Contains(o.Extensions, "sd-webui-reactor") {
		// ReActor's own route (its scripts/reactor_api.py): the target with the face swapped.
		mux.HandleFunc("POST /reactor/image", s.auth(s.reactor))
	}
	s.Server = httptest.NewServer(mux)
	return s
}

// Jobs returns the generations so far, in arrival order.
func (s *Server) Jobs() []Job {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.jobs)
}

// Calls counts requests by path.
func (s *Server) Calls(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[path]
}

// FailNext makes the next generation raise msg (a CUDA error, say).
func (s *Server) FailNext(msg string) {
	s.mu.Lock()
	s.fail = msg
	s.mu.Unlock()
}

// Current is the task id that holds the lock, if any.
func (s *Server) Current() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.current
}

func (s *Server) count(r *http.Request) {
	s.mu.Lock()
	s.calls[r.URL.Path]++
	s.mu.Unlock()
}

// auth is --api-auth's HTTPBasic dependency, plus the proxy's bearer check.
func (s *Server) auth(h http.HandlerFunc) http.HandlerFunc {
	return s.proxyAuth(func(w http.ResponseWriter, r *http.Request) {
		if s.opts.Username != "" {
			u, p, ok := r.BasicAuth()
			if !ok {
				w.Header().Set("WWW-Authenticate", "Basic")
				writeJSON(w, 401, map[string]any{"detail": "Not authenticated"})
				return
			}
			if u != s.opts.Username || p != s.opts.Password {
				w.Header().Set("WWW-Authenticate", "Basic")
				httpError(w, 401, "Incorrect username or password")
				return
			}
		}
		h(w, r)
	})
}

func (s *Server) proxyAuth(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.count(r)
		if s.opts.Token != "" && r.Header.Get("Authorization") != "Bearer "+s.opts.Token && !s.basicOK(r) {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		h(w, r)
	}
}

// basicOK lets basic auth through a proxy that checks a token: the web UI
// reads the same header, so a deployment has one or the other.
func (s *Server) basicOK(r *http.Request) bool {
	u, p, ok := r.BasicAuth()
	return ok && s.opts.Username != "" && u == s.opts.Username && p == s.opts.Password
}

// httpError is the web UI's handle_exception for an HTTPException.
func httpError(w http.ResponseWriter, status int, detail string) {
	writeJSON(w, status, map[string]any{"error": "HTTPException", "detail": detail, "body": "", "errors": ""})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// The fields of StableDiffusionTxt2ImgProcessingAPI and ...Img2Img...
// (modules/api/models.py builds them from the dataclasses
// StableDiffusionProcessingTxt2Img / Img2Img of modules/processing.py,
// plus sampler_index, script_name, script_args, send_images, save_images,
// alwayson_scripts and infotext), with the types pydantic checks. A
// field's type is "any" where the fake does not check it.
var (
	commonFields = map[string]string{
		"prompt": "str", "negative_prompt": "str", "styles": "list", "seed": "int", "subseed": "int", "subseed_strength": "float",
		"seed_resize_from_h": "int", "seed_resize_from_w": "int", "sampler_name": "str", "scheduler": "str",
		"batch_size": "int", "n_iter": "int", "steps": "int", "cfg_scale": "float", "width": "int", "height": "int",
		"restore_faces": "bool", "tiling": "bool", "do_not_save_samples": "bool", "do_not_save_grid": "bool", "eta": "float",
		"denoising_strength": "float", "s_min_uncond": "float", "s_churn": "float", "s_tmax": "float", "s_tmin": "float", "s_noise": "float",
		"override_settings": "dict", "override_settings_restore_afterwards": "bool", "refiner_checkpoint": "str",
		"refiner_switch_at": "float", "disable_extra_networks": "bool", "firstpass_image": "str", "comments": "dict",
		"force_task_id": "str", "sampler_index": "str", "script_name": "str", "script_args": "list",
		"send_images": "bool", "save_images": "bool", "alwayson_scripts": "dict", "infotext": "str",
	}
	txt2imgFields = with(commonFields, map[string]string{
		"enable_hr": "bool", "firstphase_width": "int", "firstphase_height": "int", "hr_scale": "float", "hr_upscaler": "str",
		"hr_second_pass_steps": "int", "hr_resize_x": "int", "hr_resize_y": "int", "hr_checkpoint_name": "str",
		"hr_sampler_name": "str", "hr_scheduler": "str", "hr_prompt": "str", "hr_negative_prompt": "str",
		"hr_cfg": "float", "hr_distilled_cfg": "float",
	})
	img2imgFields = with(commonFields, map[string]string{
		"init_images": "list", "resize_mode": "int", "image_cfg_scale": "float", "mask": "str", "mask_blur_x": "int",
		"mask_blur_y": "int", "mask_blur": "int", "mask_round": "bool", "inpainting_fill": "int", "inpaint_full_res": "bool",
		"inpaint_full_res_padding": "int", "inpainting_mask_invert": "int", "initial_noise_multiplier": "float",
		"latent_mask": "str", "include_init_images": "bool",
	})
	// ExtrasSingleImageRequest: ExtrasBaseRequest plus image.
	extrasFields = map[string]string{
		"resize_mode": "int", "show_extras_results": "bool", "gfpgan_visibility": "float", "codeformer_visibility": "float",
		"codeformer_weight": "float", "upscaling_resize": "float", "upscaling_resize_w": "int", "upscaling_resize_h": "int",
		"upscaling_crop": "bool", "upscaler_1": "str", "upscaler_2": "str", "extras_upscaler_2_visibility": "float",
		"upscale_first": "bool", "image": "str",
	}
)

func with(a, b map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

// validate is pydantic's check of the body against fields; nil if it
// passes. The web UI's models ignore unknown keys; the fake refuses them
// (422 "extra fields not permitted", pydantic's Extra.forbid words), since
// a key the web UI ignores is an option silently dropped.
func validate(body map[string]any, fields map[string]string) []map[string]any {
	var errs []map[string]any
	for _, k := range slices.Sorted(mapsKeys(body)) {
		t, ok := fields[k]
		if !ok {
			errs = append(errs, map[string]any{"loc": []string{"body", k}, "msg": "extra fields not permitted", "type": "value_error.extra"})
			continue
		}
		v := body[k]
		bad := ""
		switch t {
		case "str":
			if _, ok := v.(string); !ok && v != nil {
				bad = "str type expected"
			}
		case "int":
			if f, ok := v.(float64); !ok || f != float64(int64(f)) {
				bad = "value is not a valid integer"
			}
		case "float":
			if _, ok := v.(float64); !ok {
				bad = "value is not a valid float"
			}
		case "bool":
			if _, ok := v.(bool); !ok {
				bad = "value could not be parsed to a boolean"
			}
		case "dict":
			if _, ok := v.(map[string]any); !ok && v != nil {
				bad = "value is not a valid dict"
			}
		case "list":
			if _, ok := v.([]any); !ok && v != nil {
				bad = "value is not a valid list"
			}
		}
		if bad != "" {
			errs = append(errs, map[string]any{"loc": []string{"body", k}, "msg": bad, "type": "type_error." + t})
		}
	}
	return errs
}

// rangeErr is pydantic's ge/le check of a number field, if present.
func rangeErr(body map[string]any, k string, lo, hi float64) map[string]any {
	f, ok := body[k].(float64)
	if !ok {
		return nil
	}
	switch {
	case f < lo:
		return map[string]any{"loc": []string{"body", k}, "msg": fmt.Sprintf("ensure this value is greater than or equal to %v", lo), "type": "value_error.number.not_ge"}
	case f > hi:
		return map[string]any{"loc": []string{"body", k}, "msg": fmt.Sprintf("ensure this value is less than or equal to %v", hi), "type": "value_error.number.not_le"}
	}
	return nil
}

func mapsKeys(m map[string]any) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func num(body map[string]any, k string, def float64) float64 {
	if f, ok := body[k].(float64); ok {
		return f
	}
	return def
}

func (s *Server) generate(kind string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			writeJSON(w, 422, map[string]any{"detail": []map[string]any{{"loc": []string{"body"}, "msg": "value is not a valid dict", "type": "type_error.dict"}}})
			return
		}
		fields := txt2imgFields
		if kind == "img2img" {
			fields = img2imgFields
		}
		if errs := validate(body, fields); errs != nil {
			writeJSON(w, 422, map[string]any{"detail": errs})
			return
		}
		if msg := s.checkScripts(body); msg != "" {
			httpError(w, 422, msg)
			return
		}
		if m, ok := body["mask"].(string); ok && m != "" {
			if _, err := decodeB64(m); err != nil {
				httpError(w, 500, "Invalid encoded image")
				return
			}
		}
		taskID, _ := body["force_task_id"].(string)
		if taskID == "" {
			taskID = fmt.Sprintf("task(%s-%s)", kind, randomID())
		}
		if kind == "img2img" {
			if imgs, _ := body["init_images"].([]any); len(imgs) == 0 {
				httpError(w, 404, "Init image not found")
				return
			}
		}
		sampler, _ := body["sampler_name"].(string)
		if sampler != "" && !slices.Contains(Samplers, sampler) {
			httpError(w, 404, "Sampler not found")
			return
		}
		width, height := int(num(body, "width", 512)), int(num(body, "height", 512))
		steps := int(num(body, "steps", 50))
		batch, iters := int(num(body, "batch_size", 1)), int(num(body, "n_iter", 1))
		seed := int64(num(body, "seed", -1))
		if seed == -1 {
			seed = 1234
		}
		if hr, _ := body["enable_hr"].(bool); hr {
			f := num(body, "hr_scale", 2)
			width, height = int(float64(width)*f), int(float64(height)*f)
		}
		if kind == "img2img" {
			steps = max(int(float64(steps)*num(body, "denoising_strength", 0.75)), 1)
		}

		s.mu.Lock()
		s.seq++
		s.pending[taskID] = s.seq
		s.jobs = append(s.jobs, Job{TaskID: taskID, Path: r.URL.Path, Body: body})
		idx := len(s.jobs) - 1
		s.mu.Unlock()

		s.queue.Lock()
		s.mu.Lock()
		delete(s.pending, taskID)
		s.current = taskID
		s.step, s.steps, s.started = 0, steps*iters, time.Now()
		s.preview = nil
		s.interrupt = false
		s.jobs[idx].Started = s.started
		s.job, s.jobCount = "scripts_"+kind, iters // shared.state.begin, then process_images
		fail := s.fail
		s.fail = ""
		s.mu.Unlock()

		done := 0
		for i := 0; i < steps*iters; i++ {
			time.Sleep(s.opts.StepTime)
			s.mu.Lock()
			stop := s.interrupt
			if !stop {
				s.step++
				done = s.step
				if !s.opts.NoLivePreviews && s.step%max(steps/4, 1) == 0 {
					s.previewID++
					s.preview = solid(64, 64, uint8(s.step))
				}
			}
			s.mu.Unlock()
			if stop {
				break
			}
		}
		s.mu.Lock()
		s.jobs[idx].Ended = time.Now()
		s.job, s.jobCount = "", 0 // shared.state.end(), in a finally
		if fail != "" {
			// An exception inside process_images: finish_task is never
			// called, so the task stays current until the next one starts.
			s.mu.Unlock()
			s.queue.Unlock()
			writeJSON(w, 500, map[string]any{"error": "OutOfMemoryError", "detail": "", "body": "", "errors": fail})
			return
		}
		s.finishLocked(taskID)
		s.jobs[idx].OK = true
		interrupted := s.interrupt
		s.mu.Unlock()
		s.queue.Unlock()

		// An interrupted job returns what it made: the images of the
		// iterations that finished.
		n := batch * iters
		if interrupted {
			n = batch * (done / max(steps, 1))
		}
		images := make([]string, 0, n)
		seeds := make([]int64, 0, n)
		for i := range n {
			images = append(images, base64.StdEncoding.EncodeToString(solid(width, height, uint8(seed)+uint8(i))))
			seeds = append(seeds, seed+int64(i))
		}
		info, _ := json.Marshal(map[string]any{"seed": seed, "all_seeds": seeds, "width": width, "height": height, "sampler_name": sampler})
		writeJSON(w, 200, map[string]any{"images": images, "parameters": body, "info": string(info)})
	}
}

func (s *Server) finishLocked(taskID string) {
	if s.current == taskID {
		s.current = ""
	}
	s.finished = append(s.finished, taskID)
	if len(s.finished) > 16 {
		s.finished = s.finished[1:]
	}
}

func (s *Server) hasScript(name string) bool {
	switch strings.ToLower(name) {
	case "controlnet":
		return slices.Contains(s.opts.Extensions, "sd-webui-controlnet")
	case "adetailer":
		return slices.Contains(s.opts.Extensions, "adetailer")
	case "reactor":
		return slices.Contains(s.opts.Extensions, "sd-webui-reactor")
	}
	return false
}

func (s *Server) scripts(w http.ResponseWriter, r *http.Request) {
	t2i := []string{"prompt matrix", "prompts from file or textbox", "x/y/z plot", "lora"}
	for _, e := range s.opts.Extensions {
		switch e {
		case "sd-webui-controlnet":
			t2i = append(t2i, "controlnet")
		case "adetailer":
			t2i = append(t2i, "adetailer")
		case "sd-webui-reactor":
			t2i = append(t2i, "reactor")
		}
	}
	writeJSON(w, 200, map[string]any{"txt2img": t2i, "img2img": append(slices.Clone(t2i), "loopback", "sd upscale")})
}

func (s *Server) extras(w http.ResponseWriter, r *http.Request) {
	var body map[string]any
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		writeJSON(w, 422, map[string]any{"detail": []map[string]any{{"loc": []string{"body"}, "msg": "value is not a valid dict", "type": "type_error.dict"}}})
		return
	}
	errs := validate(body, extrasFields)
	for _, c := range []struct {
		k      string
		lo, hi float64
	}{{"upscaling_resize", 1, 8}, {"gfpgan_visibility", 0, 1}, {"codeformer_visibility", 0, 1}, {"codeformer_weight", 0, 1},
		{"upscaling_resize_w", 1, 1 << 30}, {"upscaling_resize_h", 1, 1 << 30}} {
		if e := rangeErr(body, c.k, c.lo, c.hi); e != nil {
			errs = append(errs, e)
		}
	}
	if errs != nil {
		writeJSON(w, 422, map[string]any{"detail": errs})
		return
	}
	up, _ := body["upscaler_1"].(string)
	if up != "" && !slices.Contains(Upscalers, up) {
		// postprocessing's upscale script asserts the upscaler exists.
		writeJSON(w, 500, map[string]any{"error": "AssertionError", "detail": "", "body": "", "errors": fmt.Sprintf("could not find upscaler named %s", up)})
		return
	}
	b64, _ := body["image"].(string)
	if i := strings.Index(b64, ","); strings.HasPrefix(b64, "data:image/") && i > 0 {
		b64 = b64[i+1:]
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		httpError(w, 500, "Invalid encoded image")
		return
	}
	cfg, _, err := image.DecodeConfig(bytes.NewReader(raw))
	if err != nil {
		httpError(w, 500, "Invalid encoded image")
		return
	}
	scale := num(body, "upscaling_resize", 2)
	outW, outH := int(float64(cfg.Width)*scale), int(float64(cfg.Height)*scale)
	if num(body, "resize_mode", 0) == 1 {
		// run_postprocessing: resize_mode 1 hits upscaling_resize_w × _h (default 512).
		outW, outH = int(num(body, "upscaling_resize_w", 512)), int(num(body, "upscaling_resize_h", 512))
	}
	s.mu.Lock()
	s.jobs = append(s.jobs, Job{Path: r.URL.Path, Body: body})
	s.mu.Unlock()
	s.queue.Lock()
	time.Sleep(s.opts.UpscaleTime)
	s.queue.Unlock()
	out := solid(outW, outH, 7)
	writeJSON(w, 200, map[string]any{"html_info": "<p></p>", "image": base64.StdEncoding.EncodeToString(out)})
}

// globalProgress is api.py's progressapi: the web UI's one state, whoever's
// task it is; idle is job_count 0 (state.end() resets it).
func (s *Server) globalProgress(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	state := map[string]any{"skipped": false, "interrupted": s.interrupt, "job": s.job, "job_count": s.jobCount,
		"job_timestamp": "0", "job_no": 0, "sampling_step": s.step, "sampling_steps": s.steps}
	var current any
	if s.current != "" {
		current = s.current
	}
	if s.jobCount == 0 {
		writeJSON(w, 200, map[string]any{"progress": 0, "eta_relative": 0, "state": state, "current_image": nil, "textinfo": nil, "current_task": current})
		return
	}
	p := 0.01
	if s.steps > 0 {
		p += float64(s.step) / float64(s.steps)
	}
	writeJSON(w, 200, map[string]any{"progress": min(p, 1), "eta_relative": 0, "state": state, "current_image": nil, "textinfo": nil, "current_task": current})
}

func (s *Server) interruptAPI(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.current != "" {
		s.interrupt = true
	}
	s.mu.Unlock()
	writeJSON(w, 200, map[string]any{})
}

// progress is modules/progress.py's progressapi.
func (s *Server) progress(w http.ResponseWriter, r *http.Request) {
	var req struct {
		IDTask        *string `json:"id_task"`
		IDLivePreview int     `json:"id_live_preview"`
		LivePreview   *bool   `json:"live_preview"`
	}
	req.IDLivePreview = -1
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeJSON(w, 422, map[string]any{"detail": []map[string]any{{"loc": []string{"body"}, "msg": "value is not a valid dict", "type": "type_error.dict"}}})
		return
	}
	id := ""
	if req.IDTask != nil {
		id = *req.IDTask
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	active := id != "" && id == s.current
	_, queued := s.pending[id]
	completed := slices.Contains(s.finished, id)
	if !active {
		text := "Waiting..."
		if queued {
			n := 1
			for _, seq := range s.pending {
				if seq < s.pending[id] {
					n++
				}
			}
			text = fmt.Sprintf("In queue: %d/%d", n, len(s.pending))
		}
		writeJSON(w, 200, map[string]any{"active": false, "queued": queued, "completed": completed, "progress": nil, "eta": nil,
			"live_preview": nil, "id_live_preview": -1, "textinfo": text})
		return
	}
	progress := 0.0
	if s.steps > 0 {
		progress = min(float64(s.step)/float64(s.steps), 1)
	}
	var eta any
	if progress > 0 {
		el := time.Since(s.started).Seconds()
		eta = el/progress - el
	}
	var preview any
	pid := req.IDLivePreview
	if !s.opts.NoLivePreviews && (req.LivePreview == nil || *req.LivePreview) && s.preview != nil && s.previewID != req.IDLivePreview {
		preview = "data:image/png;base64," + base64.StdEncoding.EncodeToString(s.preview)
		pid = s.previewID
	}
	writeJSON(w, 200, map[string]any{"active": true, "queued": false, "completed": false, "progress": progress, "eta": eta,
		"live_preview": preview, "id_live_preview": pid, "textinfo": fmt.Sprintf("Sampling step %d/%d", s.step, s.steps)})
}

func (s *Server) list(v any) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, v) }
}

func models() []map[string]any {
	var out []map[string]any
	for _, t := range Models {
		name, hash, _ := strings.Cut(t, " [")
		name = strings.TrimSuffix(name, ".safetensors")
		out = append(out, map[string]any{"title": t, "model_name": name, "hash": strings.TrimSuffix(hash, "]"),
			"sha256": nil, "filename": "/models/Stable-diffusion/" + name + ".safetensors", "config": nil})
	}
	return out
}

// loras is the built-in Lora extension's /sdapi/v1/loras (extensions-builtin/Lora).
func loras() []map[string]any {
	var out []map[string]any
	for _, n := range LoRAs {
		out = append(out, map[string]any{"name": n, "alias": n, "path": "/models/Lora/" + n + ".safetensors", "metadata": map[string]any{}})
	}
	return out
}

func named(names []string, extra string) []map[string]any {
	var out []map[string]any
	for _, n := range names {
		out = append(out, map[string]any{"name": n, extra: []string{}, "options": map[string]any{}})
	}
	return out
}

func schedulers() []map[string]any {
	var out []map[string]any
	for _, n := range Schedulers {
		out = append(out, map[string]any{"name": n, "label": strings.ToUpper(n[:1]) + n[1:], "aliases": nil, "default_rho": -1, "need_inner_model": false})
	}
	return out
}

func upscalers() []map[string]any {
	var out []map[string]any
	for _, n := range Upscalers {
		out = append(out, map[string]any{"name": n, "model_name": nil, "model_path": nil, "model_url": nil, "scale": 4})
	}
	return out
}

func vaes() []map[string]any {
	var out []map[string]any
	for _, n := range VAEs {
		out = append(out, map[string]any{"model_name": n, "filename": "/models/VAE/" + n})
	}
	return out
}

func embeddings() map[string]any {
	loaded := map[string]any{}
	for _, n := range Embeddings {
		loaded[n] = map[string]any{"step": nil, "sd_checkpoint": nil, "sd_checkpoint_name": nil, "shape": 768, "vectors": 10}
	}
	return map[string]any{"loaded": loaded, "skipped": map[string]any{}}
}

// solid encodes a w×h PNG of one colour.
func solid(w, h int, shade uint8) []byte {
	img := image.NewGray(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = shade
	}
	var b bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestSpeed}
	_ = enc.Encode(&b, img)
	return b.Bytes()
}

func randomID() string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	var b [7]byte
	_, _ = rand.Read(b[:])
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b[:])
}

func (s *Server) reactor(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Source string `json:"source_image"`
		Target string `json:"target_image"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.Source == "" || body.Target == "" {
		httpError(w, 400, "source_image and target_image are required")
		return
	}
	raw, err := base64.StdEncoding.DecodeString(body.Target)
	if err != nil {
		httpError(w, 500, "Invalid encoded image")
		return
	}
	cfg, _, err := image.DecodeConfig(bytes.NewReader(raw))
	if err != nil {
		httpError(w, 500, "Invalid encoded image")
		return
	}
	s.mu.Lock()
	s.jobs = append(s.jobs, Job{Path: r.URL.Path})
	s.mu.Unlock()
	s.queue.Lock()
	time.Sleep(s.opts.UpscaleTime)
	s.queue.Unlock()
	writeJSON(w, 200, map[string]any{"image": base64.StdEncoding.EncodeToString(solid(cfg.Width, cfg.Height, 9))})
}

// Last is the body of the last request made to path (like
// "/sdapi/v1/txt2img"), nil if none was.
func (s *Server) Last(path string) map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.jobs) - 1; i >= 0; i-- {
		if s.jobs[i].Path == path {
			return s.jobs[i].Body
		}
	}
	return nil
}

func decodeB64(v string) ([]byte, error) {
	if i := strings.Index(v, ","); strings.HasPrefix(v, "data:image/") && i > 0 {
		v = v[i+1:]
	}
	return base64.StdEncoding.DecodeString(v)
}

// checkScripts is the web UI's init_script_args: every always-on script
// must exist, and its args be a list. The ControlNet extension's units
// need an image (base64) and a model; ADetailer's first arg is its enable
// flag. "" when the scripts pass.
func (s *Server) checkScripts(body map[string]any) string {
	scripts, _ := body["alwayson_scripts"].(map[string]any)
	for name, v := range scripts {
		if !s.hasScript(name) {
			return fmt.Sprintf("always on script %s not found", name)
		}
		m, _ := v.(map[string]any)
		args, ok := m["args"].([]any)
		if !ok {
			return fmt.Sprintf("always on script %s: args must be a list", name)
		}
		switch strings.ToLower(name) {
		case "controlnet":
			for i, a := range args {
				u, _ := a.(map[string]any)
				img, _ := u["image"].(string)
				model, _ := u["model"].(string)
				if _, err := decodeB64(img); err != nil || img == "" {
					return fmt.Sprintf("controlnet unit %d: image is not base64", i)
				}
				if model == "" {
					return fmt.Sprintf("controlnet unit %d: no model", i)
				}
				for _, k := range []string{"weight", "guidance_start", "guidance_end"} {
					if x, ok := u[k]; ok {
						if _, ok := x.(float64); !ok {
							return fmt.Sprintf("controlnet unit %d: %s is not a number", i, k)
						}
					}
				}
			}
		case "adetailer":
			if len(args) == 0 {
				return "adetailer: no args"
			}
		}
	}
	return ""
}
