// Package comfyuitest is a fake ComfyUI server for tests, built from
// ComfyUI's sources (server.py, execution.py), not from the adapter:
//
//   - POST /prompt {prompt, client_id, prompt_id?, extra_data?} validates the
//     API-format workflow (unknown node classes, missing inputs, values not
//     in a list, no output node) and answers 400 {"error", "node_errors"}, or
//     queues it: {"prompt_id", "number", "node_errors": {}}; the client may
//     choose prompt_id, else it is a fresh UUID;
//   - one worker runs the queue in "number" order, and reports on /ws to the
//     client_id that queued it: status, execution_start, execution_cached,
//     executing {node}, progress {value, max}, executed {output}, executing
//     {node: null}, execution_success; execution_error on a failure (CUDA out
//     of memory) and execution_interrupted; previews as binary frames
//     [u32 event 1][u32 format 1=JPEG 2=PNG][image];
//   - GET /history/{prompt_id} answers {} until the prompt ended, then
//     {prompt_id: {prompt, outputs, status: {status_str, completed, messages}}};
//     GET /queue {queue_running, queue_pending}; POST /queue {delete: [...]};
//     POST /interrupt {prompt_id?} stops the running prompt, only that one
//     when an id is given; GET /view?filename&subfolder&type; POST
//     /upload/image (multipart "image", "type", "subfolder", "overwrite").
package comfyuitest

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"image"
	_ "image/jpeg"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Options configure the fake.
type Options struct {
	StepTime time.Duration // one sampling step (default 2 ms)
	Token    string        // a bearer token a proxy in front checks; empty: none
}

// Run is one prompt the fake executed, for a test to inspect.
type Run struct {
	PromptID string
	ClientID string
	Prompt   map[string]any
	Started  time.Time
	Ended    time.Time
	Status   string // success, error, interrupted
}

type item struct {
	number   float64
	id       string
	prompt   map[string]any
	extra    map[string]any
	outputs  []string
	clientID string
}

// Server is the fake.
type Server struct {
	*httptest.Server
	opts Options

	mu        sync.Mutex
	number    float64
	pending   []*item
	running   *item
	history   map[string]map[string]any
	files     map[string][]byte // "type/subfolder/name" → bytes
	sockets   map[string]*websocket.Conn
	sockMu    map[string]*sync.Mutex
	interrupt bool
	fail      string
	runs      []Run
	wake      chan struct{}
	closed    chan struct{}
	posts     int
}

// Checkpoints, samplers and the other lists the fake's nodes accept.
var (
	Checkpoints   = []string{"v1-5-pruned-emaonly.safetensors", "sd_xl_base_1.0.safetensors"}
	LoRAs         = []string{"add_detail.safetensors"}
	Samplers      = []string{"euler", "euler_ancestral", "dpmpp_2m", "dpmpp_sde", "ddim"}
	Schedulers    = []string{"normal", "karras", "exponential", "simple"}
	UpscaleModels = []string{"RealESRGAN_x4plus.pth"}
)

// New starts the fake and its worker.
func New(o Options) *Server {
	if o.StepTime <= 0 {
		o.StepTime = 2 * time.Millisecond
	}
	s := &Server{opts: o, history: map[string]map[string]any{}, files: map[string][]byte{}, sockets: map[string]*websocket.Conn{},
		sockMu: map[string]*sync.Mutex{}, wake: make(chan struct{}, 1), closed: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /prompt", s.auth(s.postPrompt))
	mux.HandleFunc("GET /history/{id}", s.auth(s.getHistory))
	mux.HandleFunc("GET /queue", s.auth(s.getQueue))
	mux.HandleFunc("POST /queue", s.auth(s.postQueue))
	mux.HandleFunc("POST /interrupt", s.auth(s.postInterrupt))
	mux.HandleFunc("GET /view", s.auth(s.view))
	mux.HandleFunc("POST /upload/image", s.auth(s.upload))
	mux.HandleFunc("GET /ws", s.auth(s.ws))
	mux.HandleFunc("GET /object_info/{class}", s.auth(s.objectInfo))
	mux.HandleFunc("GET /system_stats", s.auth(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"system": map[string]any{"os": "posix", "comfyui_version": "fake"}, "devices": []any{}})
	}))
	s.Server = httptest.NewServer(mux)
	go s.worker()
	return s
}

// Close stops the worker and the server.
func (s *Server) Close() {
	select {
	case <-s.closed:
	default:
		close(s.closed)
	}
	s.mu.Lock()
	for _, c := range s.sockets {
		c.Close()
	}
	s.mu.Unlock()
	s.Server.CloseClientConnections()
	s.Server.Close()
}

// FailNext makes the next prompt fail in its sampler with msg.
func (s *Server) FailNext(msg string) {
	s.mu.Lock()
	s.fail = msg
	s.mu.Unlock()
}

// Runs returns the prompts executed so far, in order.
func (s *Server) Runs() []Run {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.runs)
}

// Posts counts POST /prompt calls that queued a prompt.
func (s *Server) Posts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.posts
}

// Running is the prompt id executing now, if any.
func (s *Server) Running() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running == nil {
		return ""
	}
	return s.running.id
}

func (s *Server) auth(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.opts.Token != "" && r.Header.Get("Authorization") != "Bearer "+s.opts.Token {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		h(w, r)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func uuid() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// nodeSpec is a node class: its required inputs, lists its values must
// be in, and whether it is an output node.
type nodeSpec struct {
	required []string
	lists    map[string][]string
	output   bool
}

var nodeSpecs = map[string]nodeSpec{
	"CheckpointLoaderSimple": {required: []string{"ckpt_name"}, lists: map[string][]string{"ckpt_name": Checkpoints}},
	"LoraLoader":             {required: []string{"model", "clip", "lora_name", "strength_model", "strength_clip"}, lists: map[string][]string{"lora_name": LoRAs}},
	"CLIPTextEncode":         {required: []string{"text", "clip"}},
	"EmptyLatentImage":       {required: []string{"width", "height", "batch_size"}},
	"KSampler": {required: []string{"model", "seed", "steps", "cfg", "sampler_name", "scheduler", "positive", "negative", "latent_image", "denoise"},
		lists: map[string][]string{"sampler_name": Samplers, "scheduler": Schedulers}},
	"VAEDecode":             {required: []string{"samples", "vae"}},
	"VAEEncode":             {required: []string{"pixels", "vae"}},
	"LoadImage":             {required: []string{"image"}},
	"SaveImage":             {required: []string{"images"}, output: true},
	"UpscaleModelLoader":    {required: []string{"model_name"}, lists: map[string][]string{"model_name": UpscaleModels}},
	"ImageUpscaleWithModel": {required: []string{"upscale_model", "image"}},
	"ImageScaleBy":          {required: []string{"image", "upscale_method", "scale_by"}},
}

type nodeErr struct {
	Type      string         `json:"type"`
	Message   string         `json:"message"`
	Details   string         `json:"details"`
	ExtraInfo map[string]any `json:"extra_info"`
}

// validate is execution.validate_prompt, for the classes the fake knows.
func (s *Server) validate(prompt map[string]any) (*nodeErr, map[string]any, []string) {
	var outputs []string
	nodeErrors := map[string]any{}
	ids := make([]string, 0, len(prompt))
	for id := range prompt {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		node, _ := prompt[id].(map[string]any)
		class, _ := node["class_type"].(string)
		if class == "" {
			return &nodeErr{Type: "invalid_prompt", Message: "Cannot execute because a node is missing the class_type property.", Details: fmt.Sprintf("Node ID '#%s'", id), ExtraInfo: map[string]any{}}, nil, nil
		}
		spec, ok := nodeSpecs[class]
		if !ok {
			return &nodeErr{Type: "missing_node_type", Message: fmt.Sprintf("Node '%s' not found. The custom node may not be installed.", class), Details: fmt.Sprintf("Node ID '#%s'", id), ExtraInfo: map[string]any{"node_id": id, "class_type": class}}, nil, nil
		}
		inputs, _ := node["inputs"].(map[string]any)
		var errs []nodeErr
		for _, name := range spec.required {
			v, ok := inputs[name]
			if !ok {
				errs = append(errs, nodeErr{Type: "required_input_missing", Message: "Required input is missing", Details: name, ExtraInfo: map[string]any{"input_name": name}})
				continue
			}
			if link, ok := v.([]any); ok && len(link) == 2 {
				if from, _ := link[0].(string); prompt[from] == nil {
					errs = append(errs, nodeErr{Type: "bad_linked_input", Message: "Bad linked input, must be a length-2 list of [node_id, slot_index]", Details: name, ExtraInfo: map[string]any{"input_name": name}})
				}
				continue
			}
			if list, ok := spec.lists[name]; ok {
				if str, _ := v.(string); !slices.Contains(list, str) {
					errs = append(errs, nodeErr{Type: "value_not_in_list", Message: "Value not in list", Details: fmt.Sprintf("%s: '%v' not in %v", name, v, list), ExtraInfo: map[string]any{"input_name": name, "received_value": v}})
				}
			}
			if class == "LoadImage" && name == "image" {
				str, _ := v.(string)
				if _, ok := s.files["input//"+str]; !ok {
					errs = append(errs, nodeErr{Type: "custom_validation_failed", Message: "Failed to validate prompt for output", Details: fmt.Sprintf("Invalid image file: %s", str), ExtraInfo: map[string]any{}})
				}
			}
		}
		if len(errs) > 0 {
			nodeErrors[id] = map[string]any{"errors": errs, "dependent_outputs": []string{}, "class_type": class}
		}
		if spec.output {
			outputs = append(outputs, id)
		}
	}
	if len(outputs) == 0 {
		return &nodeErr{Type: "prompt_no_outputs", Message: "Prompt has no outputs", Details: "", ExtraInfo: map[string]any{}}, nil, nil
	}
	if len(nodeErrors) > 0 {
		return &nodeErr{Type: "prompt_outputs_failed_validation", Message: "Prompt outputs failed validation", Details: "", ExtraInfo: map[string]any{}}, nodeErrors, nil
	}
	return nil, nil, outputs
}

func (s *Server) postPrompt(w http.ResponseWriter, r *http.Request) {
	var body map[string]any
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		writeJSON(w, 400, map[string]any{"error": map[string]any{"type": "invalid_json", "message": err.Error()}, "node_errors": map[string]any{}})
		return
	}
	prompt, ok := body["prompt"].(map[string]any)
	if !ok {
		writeJSON(w, 400, map[string]any{"error": nodeErr{Type: "no_prompt", Message: "No prompt provided", Details: "No prompt provided", ExtraInfo: map[string]any{}}, "node_errors": map[string]any{}})
		return
	}
	id, _ := body["prompt_id"].(string)
	if id == "" {
		id = uuid()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	perr, nodeErrors, outputs := s.validate(prompt)
	if perr != nil {
		if nodeErrors == nil {
			nodeErrors = map[string]any{}
		}
		writeJSON(w, 400, map[string]any{"error": perr, "node_errors": nodeErrors})
		return
	}
	extra, _ := body["extra_data"].(map[string]any)
	if extra == nil {
		extra = map[string]any{}
	}
	client, _ := body["client_id"].(string)
	if client != "" {
		extra["client_id"] = client
	}
	number := s.number
	s.number++
	if f, ok := body["number"].(float64); ok {
		number = f
	} else if front, _ := body["front"].(bool); front {
		number = -number
	}
	s.pending = append(s.pending, &item{number: number, id: id, prompt: prompt, extra: extra, outputs: outputs, clientID: client})
	s.posts++
	s.signal()
	writeJSON(w, 200, map[string]any{"prompt_id": id, "number": number, "node_errors": map[string]any{}})
}

func (s *Server) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (it *item) tuple() []any {
	return []any{it.number, it.id, it.prompt, it.extra, it.outputs}
}

func (s *Server) getQueue(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	running := []any{}
	if s.running != nil {
		running = append(running, s.running.tuple())
	}
	pending := []any{}
	for _, it := range s.pending {
		pending = append(pending, it.tuple())
	}
	writeJSON(w, 200, map[string]any{"queue_running": running, "queue_pending": pending})
}

func (s *Server) postQueue(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Clear  bool     `json:"clear"`
		Delete []string `json:"delete"`
	}
	_ = json.NewDecoder(r.Body).Decode(&body)
	s.mu.Lock()
	if body.Clear {
		s.pending = nil
	}
	s.pending = slices.DeleteFunc(s.pending, func(it *item) bool { return slices.Contains(body.Delete, it.id) })
	s.mu.Unlock()
	w.WriteHeader(200)
}

func (s *Server) postInterrupt(w http.ResponseWriter, r *http.Request) {
	var body struct {
		PromptID string `json:"prompt_id"`
	}
	_ = json.NewDecoder(r.Body).Decode(&body)
	s.mu.Lock()
	if s.running != nil && (body.PromptID == "" || body.PromptID == s.running.id) {
		s.interrupt = true
	}
	s.mu.Unlock()
	w.WriteHeader(200)
}

func (s *Server) getHistory(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	s.mu.Lock()
	defer s.mu.Unlock()
	h, ok := s.history[id]
	if !ok {
		writeJSON(w, 200, map[string]any{})
		return
	}
	writeJSON(w, 200, map[string]any{id: h})
}

func (s *Server) view(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	typ := q.Get("type")
	if typ == "" {
		typ = "output"
	}
	s.mu.Lock()
	data, ok := s.files[typ+"/"+q.Get("subfolder")+"/"+q.Get("filename")]
	s.mu.Unlock()
	if !ok {
		w.WriteHeader(404)
		return
	}
	w.Header().Set("Content-Type", "image/png")
	_, _ = w.Write(data)
}

func (s *Server) upload(w http.ResponseWriter, r *http.Request) {
	f, hdr, err := r.FormFile("image")
	if err != nil {
		w.WriteHeader(400)
		return
	}
	defer f.Close()
	data, _ := io.ReadAll(f)
	typ := r.FormValue("type")
	if typ == "" {
		typ = "input"
	}
	sub := r.FormValue("subfolder")
	name := hdr.Filename
	s.mu.Lock()
	if _, exists := s.files[typ+"/"+sub+"/"+name]; exists && r.FormValue("overwrite") != "true" {
		// image_upload: a name taken gets " (1)" and so on, unless overwrite.
		base, ext, _ := strings.Cut(name, ".")
		for i := 1; ; i++ {
			n := fmt.Sprintf("%s (%d).%s", base, i, ext)
			if _, ok := s.files[typ+"/"+sub+"/"+n]; !ok {
				name = n
				break
			}
		}
	}
	s.files[typ+"/"+sub+"/"+name] = data
	s.mu.Unlock()
	writeJSON(w, 200, map[string]any{"name": name, "subfolder": sub, "type": typ})
}

var upgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}

func (s *Server) ws(w http.ResponseWriter, r *http.Request) {
	sid := r.URL.Query().Get("clientId")
	if sid == "" {
		sid = strings.ReplaceAll(uuid(), "-", "")
	}
	c, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	s.mu.Lock()
	if old := s.sockets[sid]; old != nil {
		old.Close()
	}
	s.sockets[sid] = c
	if s.sockMu[sid] == nil {
		s.sockMu[sid] = &sync.Mutex{}
	}
	remaining := len(s.pending)
	if s.running != nil {
		remaining++
	}
	s.mu.Unlock()
	s.send(sid, "status", map[string]any{"status": map[string]any{"exec_info": map[string]any{"queue_remaining": remaining}}, "sid": sid})
	// Read until the client goes; ComfyUI ignores what clients send.
	for {
		if _, _, err := c.ReadMessage(); err != nil {
			break
		}
	}
	s.mu.Lock()
	if s.sockets[sid] == c {
		delete(s.sockets, sid)
	}
	s.mu.Unlock()
}

// send is PromptServer.send_json to one client (nothing when it is not connected).
func (s *Server) send(sid, event string, data any) {
	s.write(sid, websocket.TextMessage, func() []byte {
		b, _ := json.Marshal(map[string]any{"type": event, "data": data})
		return b
	}())
}

func (s *Server) write(sid string, kind int, b []byte) {
	s.mu.Lock()
	c, m := s.sockets[sid], s.sockMu[sid]
	s.mu.Unlock()
	if c == nil {
		return
	}
	m.Lock()
	_ = c.WriteMessage(kind, b)
	m.Unlock()
}

// preview is send_image: a binary PREVIEW_IMAGE frame.
func (s *Server) preview(sid string, img []byte) {
	var b bytes.Buffer
	_ = binary.Write(&b, binary.BigEndian, uint32(1)) // BinaryEventTypes.PREVIEW_IMAGE
	_ = binary.Write(&b, binary.BigEndian, uint32(2)) // PNG
	b.Write(img)
	s.write(sid, websocket.BinaryMessage, b.Bytes())
}

func (s *Server) worker() {
	for {
		s.mu.Lock()
		if len(s.pending) == 0 {
			s.mu.Unlock()
			select {
			case <-s.wake:
				continue
			case <-s.closed:
				return
			}
		}
		sort.SliceStable(s.pending, func(i, j int) bool { return s.pending[i].number < s.pending[j].number })
		it := s.pending[0]
		s.pending = s.pending[1:]
		s.running = it
		s.interrupt = false
		fail := s.fail
		s.fail = ""
		s.runs = append(s.runs, Run{PromptID: it.id, ClientID: it.clientID, Prompt: it.prompt, Started: time.Now()})
		idx := len(s.runs) - 1
		s.mu.Unlock()
		status, messages, outputs := s.execute(it, fail)
		s.mu.Lock()
		s.running = nil
		s.runs[idx].Ended, s.runs[idx].Status = time.Now(), status
		s.history[it.id] = map[string]any{
			"prompt":  it.tuple(),
			"outputs": outputs,
			"status":  map[string]any{"status_str": map[bool]string{true: "success", false: "error"}[status == "success"], "completed": status == "success", "messages": messages},
			"meta":    map[string]any{},
		}
		s.mu.Unlock()
		select {
		case <-s.closed:
			return
		default:
		}
	}
}

func inputOf(prompt map[string]any, id, name string) any {
	node, _ := prompt[id].(map[string]any)
	inputs, _ := node["inputs"].(map[string]any)
	return inputs[name]
}

func classOf(prompt map[string]any, id string) string {
	node, _ := prompt[id].(map[string]any)
	c, _ := node["class_type"].(string)
	return c
}

// execute runs a prompt's nodes: it times the samplers' steps and makes
// each SaveImage's pictures at the size the graph implies.
func (s *Server) execute(it *item, fail string) (string, [][]any, map[string]any) {
	now := func() int64 { return time.Now().UnixMilli() }
	sid := it.clientID
	var messages [][]any
	msg := func(event string, data map[string]any) {
		data["prompt_id"] = it.id
		messages = append(messages, []any{event, data})
		s.send(sid, event, data)
	}
	msg("execution_start", map[string]any{"timestamp": now()})
	msg("execution_cached", map[string]any{"nodes": []string{}, "timestamp": now()})
	ids := make([]string, 0, len(it.prompt))
	for id := range it.prompt {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool {
		a, _ := strconv.Atoi(ids[i])
		b, _ := strconv.Atoi(ids[j])
		return a < b
	})
	width, height, batch := 512, 512, 1
	scale := 1.0
	for _, id := range ids {
		switch classOf(it.prompt, id) {
		case "EmptyLatentImage":
			width, height = toInt(inputOf(it.prompt, id, "width")), toInt(inputOf(it.prompt, id, "height"))
			batch = max(toInt(inputOf(it.prompt, id, "batch_size")), 1)
		case "LoadImage":
			name, _ := inputOf(it.prompt, id, "image").(string)
			s.mu.Lock()
			data := s.files["input//"+name]
			s.mu.Unlock()
			if cfg, _, err := image.DecodeConfig(bytes.NewReader(data)); err == nil {
				width, height = cfg.Width, cfg.Height
			}
		case "ImageUpscaleWithModel":
			scale *= 4
		case "ImageScaleBy":
			if f, ok := inputOf(it.prompt, id, "scale_by").(float64); ok {
				scale *= f
			}
		}
	}
	outputs := map[string]any{}
	for _, id := range ids {
		s.send(sid, "executing", map[string]any{"node": id, "display_node": id, "prompt_id": it.id})
		switch classOf(it.prompt, id) {
		case "KSampler":
			steps := max(toInt(inputOf(it.prompt, id, "steps")), 1)
			for i := 1; i <= steps; i++ {
				time.Sleep(s.opts.StepTime)
				s.mu.Lock()
				stop := s.interrupt
				s.mu.Unlock()
				if stop {
					msg("execution_interrupted", map[string]any{"node_id": id, "node_type": "KSampler", "executed": []string{}, "timestamp": now()})
					return "interrupted", messages, outputs
				}
				if fail != "" && i == steps/2+1 {
					msg("execution_error", map[string]any{"node_id": id, "node_type": "KSampler", "executed": []string{}, "exception_message": fail,
						"exception_type": "torch.OutOfMemoryError", "traceback": []string{}, "current_inputs": map[string]any{}, "current_outputs": map[string]any{}, "timestamp": now()})
					return "error", messages, outputs
				}
				s.send(sid, "progress", map[string]any{"value": i, "max": steps, "prompt_id": it.id, "node": id})
				if i%max(steps/4, 1) == 0 {
					s.preview(sid, solid(64, 64, uint8(i)))
				}
			}
		case "SaveImage":
			prefix, _ := inputOf(it.prompt, id, "filename_prefix").(string)
			if prefix == "" {
				prefix = "ComfyUI"
			}
			var imgs []map[string]any
			for b := range batch {
				name := fmt.Sprintf("%s_%s_%05d_.png", prefix, it.id[:min(8, len(it.id))], b+1)
				s.mu.Lock()
				s.files["output//"+name] = solid(int(float64(width)*scale), int(float64(height)*scale), uint8(b+1))
				s.mu.Unlock()
				imgs = append(imgs, map[string]any{"filename": name, "subfolder": "", "type": "output"})
			}
			out := map[string]any{"images": imgs}
			outputs[id] = out
			msg("executed", map[string]any{"node": id, "display_node": id, "output": out})
		}
	}
	s.send(sid, "executing", map[string]any{"node": nil, "prompt_id": it.id})
	msg("execution_success", map[string]any{"timestamp": now()})
	return "success", messages, outputs
}

func toInt(v any) int {
	f, _ := v.(float64)
	return int(f)
}

func solid(w, h int, shade uint8) []byte {
	img := image.NewGray(image.Rect(0, 0, max(w, 1), max(h, 1)))
	for i := range img.Pix {
		img.Pix[i] = shade
	}
	var b bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestSpeed}
	_ = enc.Encode(&b, img)
	return b.Bytes()
}

// objectInfo is /object_info/{node_class}: a list input is [[values...], {options}].
func (s *Server) objectInfo(w http.ResponseWriter, r *http.Request) {
	class := r.PathValue("class")
	spec, ok := nodeSpecs[class]
	if !ok {
		writeJSON(w, 200, map[string]any{})
		return
	}
	req := map[string]any{}
	for _, name := range spec.required {
		if list, ok := spec.lists[name]; ok {
			req[name] = []any{list, map[string]any{}}
		} else {
			req[name] = []any{"*", map[string]any{}}
		}
	}
	writeJSON(w, 200, map[string]any{class: map[string]any{"input": map[string]any{"required": req}, "name": class, "output_node": spec.output}})
}
