// Package comfyui is the adapter for a self-hosted ComfyUI, through its
// HTTP and websocket API (server.py, execution.py in its sources).
//
// Each command runs a workflow in ComfyUI's API format, one file per
// command, with named patch points: nodes titled "prompt", "negative",
// "sampler", "size", "model", "image", "image2", "scale" (see
// workflow.go). Built-in workflows for SD 1.5 and SDXL checkpoints serve
// /draw, /anime and /upscale. Input images go up with POST /upload/image;
// the workflow goes with POST /prompt under a prompt_id the adapter
// chooses (the engine's task id) and the adapter's client_id, so the
// task is found again after a restart in /history or /queue and never
// queued twice. Progress, previews and the end of each prompt come from
// the /ws websocket; results from /history/{prompt_id} and /view.
package comfyui

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"mime/multipart"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/picbot/picbot/engine"
	"github.com/picbot/picbot/engine/backends"
)

// Name is the backend's name in routes and job records.
const Name = "comfyui"

// Config configures the adapter. Zero values mean the defaults.
type Config struct {
	BaseURL  string   `yaml:"base_url"`  // like http://127.0.0.1:8188
	BaseURLs []string `yaml:"base_urls"` // several ComfyUIs: each job to the least busy
	// Token is a bearer token for a proxy in front (ComfyUI has no auth of its own).
	Token string `yaml:"token"`
	// ClientID is the client_id prompts are queued under and /ws is opened
	// with: kept the same across restarts, so a restarted bot hears the
	// progress of a prompt it queued before. Default "picbot".
	ClientID string `yaml:"client_id"`
	// Preset picks the built-in workflows: "sd15" (default) or "sdxl".
	Preset string `yaml:"preset"`
	// Workflows maps a command (draw, draw_image, anime, upscale, swapface)
	// to a workflow file in API format, over the built-in ones.
	Workflows map[string]string `yaml:"workflows"`
	// Model is the checkpoint (ckpt_name) when --model is not given; empty:
	// the workflow's own.
	Model       string        `yaml:"model"`
	Sampler     string        `yaml:"sampler"`
	Scheduler   string        `yaml:"scheduler"`
	Concurrency int           `yaml:"concurrency"` // prompts one ComfyUI runs at once: 1
	PollEvery   time.Duration `yaml:"poll_every"`
	// HealthEvery is how often each of several base URLs is checked (GET
	// /system_stats); one that fails is skipped until it answers. 0: 15 s.
	HealthEvery time.Duration `yaml:"health_every"`
	Duration    time.Duration `yaml:"duration"` // a typical job, for ETAs until timed
}

func (c Config) withDefaults() Config {
	if c.ClientID == "" {
		c.ClientID = "picbot"
	}
	if c.Preset == "" {
		c.Preset = "sd15"
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 1
	}
	if c.PollEvery <= 0 {
		c.PollEvery = time.Second
	}
	if c.Duration <= 0 {
		c.Duration = 10 * time.Second
	}
	if c.HealthEvery <= 0 {
		c.HealthEvery = 15 * time.Second
	}
	return c
}

// Defaults is the configuration with every default filled in.
func Defaults() Config { return Config{}.withDefaults() }

// URLs is every base URL configured.
func (c Config) URLs() []string { return backends.URLs(c.BaseURL, c.BaseURLs) }

// Validate reports each bad setting to bad, by key, workflows included:
// a patch point missing is named with its file and node.
func (c Config) Validate(bad func(key, format string, args ...any)) {
	if len(c.URLs()) == 0 {
		bad("base_url", "must be set to ComfyUI's address, like http://127.0.0.1:8188")
	}
	for _, s := range c.URLs() {
		if u, err := url.Parse(s); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("base_url", "%q is not an http(s) URL", s)
		}
	}
	for name := range c.Workflows {
		if _, ok := required[name]; !ok {
			bad("workflows."+name, "is not a command; use %s", strings.Join(slices.Sorted(maps.Keys(required)), ", "))
		}
	}
	if _, err := loadWorkflows(c.withDefaults().Preset, c.Workflows); err != nil {
		key := "workflows"
		if strings.HasPrefix(err.Error(), "preset") {
			key = "preset"
		}
		bad(key, "%v", err)
	}
}

// state is what the websocket said about one prompt.
type state struct {
	value, max int
	preview    []byte
	previewN   int // previews received
	started    time.Time
	ended      bool
}

// Vendor implements engine.Vendor and the engine's optional interfaces
// for self-hosted backends.
type Vendor struct {
	cfg       Config
	workflows map[string]*workflow
	pool      *backends.Pool // the ComfyUIs
	client    *http.Client
	log       *slog.Logger
	now       func() time.Time

	engine.WakeHook

	mu      sync.Mutex
	states  map[string]*state // prompt id → what /ws said
	jobs    map[string]string // prompt id → job id, to wake
	current map[int]string    // backend → prompt running there, for binary previews
	took    time.Duration
	timed   int
	wsOnce  []sync.Once
	ctx     context.Context
	stop    context.CancelFunc
}

var (
	_ engine.Vendor        = (*Vendor)(nil)
	_ engine.FeatureVendor = (*Vendor)(nil)
	_ engine.TaskFinder    = (*Vendor)(nil)
	_ engine.Waker         = (*Vendor)(nil)
	_ engine.Limited       = (*Vendor)(nil)
	_ engine.Canceller     = (*Vendor)(nil)
	_ engine.Cataloguer    = (*Vendor)(nil)
)

// New loads and checks the workflows and returns the adapter; Close ends
// its websockets.
func New(cfg Config, client *http.Client, log *slog.Logger) (*Vendor, error) {
	cfg = cfg.withDefaults()
	var problems []string
	cfg.Validate(func(key, format string, args ...any) {
		problems = append(problems, key+": "+fmt.Sprintf(format, args...))
	})
	if len(problems) > 0 {
		return nil, errors.New(strings.Join(problems, "; "))
	}
	wfs, _ := loadWorkflows(cfg.Preset, cfg.Workflows)
	if client == nil {
		client = &http.Client{Timeout: 60 * time.Second}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, stop := context.WithCancel(context.Background())
	v := &Vendor{cfg: cfg, workflows: wfs, client: client, log: log, now: time.Now, states: map[string]*state{}, jobs: map[string]string{},
		current: map[int]string{}, took: cfg.Duration, ctx: ctx, stop: stop}
	pool, err := backends.New(cfg.URLs(), v.ping, cfg.HealthEvery)
	if err != nil {
		return nil, err
	}
	v.pool = pool
	v.wsOnce = make([]sync.Once, pool.Len())
	return v, nil
}

// Close stops the websockets and the health checks.
func (v *Vendor) Close() {
	v.stop()
	v.pool.Close()
}

// Name implements engine.Vendor.
func (v *Vendor) Name() string { return Name }

// Slots implements engine.Limited: what runs, and one prompt more
// queued at each ComfyUI, so its worker starts the next one at once.
func (v *Vendor) Slots() int   { return (v.cfg.Concurrency + 1) * v.pool.Len() }
func (v *Vendor) Running() int { return v.cfg.Concurrency * v.pool.Len() }

// Typical implements engine.Limited, from the prompts timed on /ws.
func (v *Vendor) Typical(*engine.Request) time.Duration {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.took
}

// Timing implements engine.Vendor: nothing is billed; /ws wakes the engine
// at the end, so polls are for progress.
func (v *Vendor) Timing(*engine.Request) engine.Timing {
	return engine.Timing{First: v.cfg.PollEvery, Every: v.cfg.PollEvery, Max: 2 * v.cfg.PollEvery, Progress: true}
}

func (v *Vendor) workflowFor(r *engine.Request) (*workflow, error) {
	name := string(r.Kind)
	if r.Kind == engine.KindDraw && len(r.Inputs) > 0 {
		name = WorkflowDrawImage
	}
	w, ok := v.workflows[name]
	if !ok {
		if r.Kind == engine.KindSwapface {
			return nil, engine.Errorf(engine.EINVALID, "/swapface needs a face-swap workflow (vendors.comfyui.workflows.swapface), and this ComfyUI has none.",
				"/swapface 需要换脸工作流（vendors.comfyui.workflows.swapface），这台 ComfyUI 没有配置。")
		}
		return nil, engine.Errorf(engine.EINVALID, "ComfyUI has no workflow for /%s here.", "这里的 ComfyUI 没有 /%s 的工作流。", r.Kind)
	}
	return w, nil
}

// Check implements engine.Vendor.
func (v *Vendor) Check(r *engine.Request) error {
	w, err := v.workflowFor(r)
	if err != nil {
		return err
	}
	lora := loraSpec(r)
	if n := len(strings.Split(lora, ",")); lora != "" && n > MaxLoRAs {
		return engine.Errorf(engine.EINVALID, "At most %d LoRAs at once.", "一次最多 %d 个 LoRA。", MaxLoRAs)
	}
	if (r.Model != "" || lora != "") && w.points["model"] == "" {
		return engine.Errorf(engine.EINVALID, "This ComfyUI workflow has no model node, so --model and --lora cannot be used.", "这个 ComfyUI 工作流没有模型节点，不能使用 --model 和 --lora。")
	}
	return nil
}

// Supports implements engine.FeatureVendor: what the workflows can
// honour. Several LoRAs are a chain of LoraLoader nodes after the draw
// workflow's "model" node; --strength is the KSampler's denoise of the
// draw_image workflow. The other options have no patch point.
func (v *Vendor) Supports(k engine.Kind, feature string) bool {
	if k != engine.KindDraw {
		return false
	}
	switch feature {
	case engine.FeatureLoRAs:
		w := v.workflows[WorkflowDraw]
		return w != nil && w.points["model"] != ""
	case engine.FeatureStrength:
		w := v.workflows[WorkflowDrawImage]
		return w != nil && w.has("sampler", "denoise")
	}
	return false
}

func (v *Vendor) do(ctx context.Context, b int, method, path string, body io.Reader, ctype string, out any) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, v.pool.Base(b).JoinPath(path).String(), body)
	if err != nil {
		return 0, nil, err
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if v.cfg.Token != "" {
		req.Header.Set("Authorization", "Bearer "+v.cfg.Token)
	}
	resp, err := v.client.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("comfyui %s: %w", path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 200<<20))
	if err != nil {
		return resp.StatusCode, nil, fmt.Errorf("comfyui %s: read: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, data, fmt.Errorf("comfyui %s: status %d: %s", path, resp.StatusCode, strings.TrimSpace(string(data[:min(len(data), 300)])))
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, data, fmt.Errorf("comfyui %s: decode: %w", path, err)
		}
	}
	return resp.StatusCode, data, nil
}

func (v *Vendor) postJSON(ctx context.Context, b int, path string, in, out any) (int, []byte, error) {
	data, _ := json.Marshal(in)
	return v.do(ctx, b, http.MethodPost, path, bytes.NewReader(data), "application/json", out)
}

func (v *Vendor) pickBackend() (int, error) {
	b, err := v.pool.Pick()
	if err != nil {
		return 0, fmt.Errorf("comfyui: %w", err)
	}
	return b, nil
}

// ping is the health check: GET /system_stats (server.py).
func (v *Vendor) ping(ctx context.Context, base *url.URL) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base.JoinPath("system_stats").String(), nil)
	if err != nil {
		return err
	}
	if v.cfg.Token != "" {
		req.Header.Set("Authorization", "Bearer "+v.cfg.Token)
	}
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

func (v *Vendor) split(taskID string) (string, int, error) {
	if v.pool.Len() == 1 {
		return taskID, 0, nil
	}
	i := strings.LastIndexByte(taskID, '@')
	if i < 0 {
		return "", 0, engine.Errorf(engine.ENOTFOUND, "The task's backend is not known.", "任务所在的后端未知。")
	}
	n, err := strconv.Atoi(taskID[i+1:])
	if err != nil || n < 0 || n >= v.pool.Len() {
		return "", 0, engine.Errorf(engine.ENOTFOUND, "The task's backend is no longer configured.", "任务所在的后端已不在配置中。")
	}
	return taskID[:i], n, nil
}

// Submit implements engine.Vendor: inputs up, then the patched workflow
// under prompt_id = the engine's task id.
func (v *Vendor) Submit(ctx context.Context, j *engine.Job, t engine.Task) (string, error) {
	w, err := v.workflowFor(&j.Request)
	if err != nil {
		return "", err
	}
	bi, err := v.pickBackend()
	if err != nil {
		return "", err
	}
	b := bi
	v.listen(bi)
	var names []string
	for i := range j.Request.Inputs {
		name, err := v.upload(ctx, b, t, i)
		if err != nil {
			v.pool.Record(b, false)
			return "", err
		}
		names = append(names, name)
	}
	prompt, err := w.patch(&j.Request, names, v.pickSampler(&j.Request), v.cfg.Scheduler, v.cfg.Model)
	if err != nil {
		return "", err
	}
	taskID := t.ID
	if v.pool.Len() > 1 {
		taskID += "@" + strconv.Itoa(bi)
	}
	v.mu.Lock()
	v.jobs[t.ID] = j.ID
	v.mu.Unlock()
	var rep struct {
		PromptID string `json:"prompt_id"`
	}
	status, data, err := v.postJSON(ctx, b, "prompt", map[string]any{"prompt": prompt, "client_id": v.cfg.ClientID, "prompt_id": t.ID}, &rep)
	if status == http.StatusBadRequest {
		v.pool.Record(b, true)
		return "", v.promptError(w, data)
	}
	v.pool.Record(b, err == nil)
	if err != nil {
		return "", err
	}
	v.pool.Busy(b, 1)
	return taskID, nil
}

func (v *Vendor) pickSampler(r *engine.Request) string {
	if r.Sampler != "" {
		return r.Sampler
	}
	return v.cfg.Sampler
}

// promptError reads POST /prompt's 400: {"error": {type, message,
// details}, "node_errors": {id: {errors: [...], class_type}}}.
func (v *Vendor) promptError(w *workflow, data []byte) error {
	var e struct {
		Error struct {
			Type    string `json:"type"`
			Message string `json:"message"`
			Details string `json:"details"`
		} `json:"error"`
		NodeErrors map[string]struct {
			ClassType string `json:"class_type"`
			Errors    []struct {
				Message string `json:"message"`
				Details string `json:"details"`
			} `json:"errors"`
		} `json:"node_errors"`
	}
	_ = json.Unmarshal(data, &e)
	parts := []string{strings.TrimSpace(e.Error.Message + " " + e.Error.Details)}
	for _, id := range slices.Sorted(maps.Keys(e.NodeErrors)) {
		ne := e.NodeErrors[id]
		for _, x := range ne.Errors {
			parts = append(parts, fmt.Sprintf("node %s (%s): %s: %s", id, ne.ClassType, x.Message, x.Details))
		}
	}
	msg := strings.Join(parts, "; ")
	err := fmt.Errorf("comfyui: workflow %s refused: %s", w.file, msg)
	return engine.Wrap(engine.EINVALID, err, "ComfyUI refused the workflow: %s.", "ComfyUI 拒绝了工作流：%s。", msg)
}

func (v *Vendor) upload(ctx context.Context, b int, t engine.Task, i int) (string, error) {
	if t.Open == nil {
		return "", errors.New("comfyui: no way to read input images")
	}
	rc, err := t.Open(ctx, i)
	if err != nil {
		return "", fmt.Errorf("comfyui: open input %d: %w", i, err)
	}
	defer rc.Close()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, err := mw.CreateFormFile("image", fmt.Sprintf("picbot-%s-%d.png", t.ID, i))
	if err != nil {
		return "", err
	}
	if _, err := io.Copy(fw, rc); err != nil {
		return "", fmt.Errorf("comfyui: read input %d: %w", i, err)
	}
	_ = mw.WriteField("type", "input")
	_ = mw.WriteField("overwrite", "true")
	_ = mw.Close()
	var rep struct {
		Name      string `json:"name"`
		Subfolder string `json:"subfolder"`
	}
	if _, _, err := v.do(ctx, b, http.MethodPost, "upload/image", &body, mw.FormDataContentType(), &rep); err != nil {
		return "", err
	}
	if rep.Subfolder != "" {
		return rep.Subfolder + "/" + rep.Name, nil
	}
	return rep.Name, nil
}

type historyEntry struct {
	Outputs map[string]struct {
		Images []struct {
			Filename  string `json:"filename"`
			Subfolder string `json:"subfolder"`
			Type      string `json:"type"`
		} `json:"images"`
	} `json:"outputs"`
	Status struct {
		StatusStr string              `json:"status_str"`
		Completed bool                `json:"completed"`
		Messages  [][]json.RawMessage `json:"messages"`
	} `json:"status"`
}

func (v *Vendor) history(ctx context.Context, b int, id string) (*historyEntry, error) {
	var h map[string]historyEntry
	if _, _, err := v.do(ctx, b, http.MethodGet, "history/"+url.PathEscape(id), nil, "", &h); err != nil {
		return nil, err
	}
	if e, ok := h[id]; ok {
		return &e, nil
	}
	return nil, nil
}

// inQueue reports whether prompt id is running or pending at b.
func (v *Vendor) inQueue(ctx context.Context, b int, id string) (running, pending bool, err error) {
	var q struct {
		Running [][]json.RawMessage `json:"queue_running"`
		Pending [][]json.RawMessage `json:"queue_pending"`
	}
	if _, _, err := v.do(ctx, b, http.MethodGet, "queue", nil, "", &q); err != nil {
		return false, false, err
	}
	has := func(items [][]json.RawMessage) bool {
		for _, it := range items {
			var pid string
			if len(it) > 1 && json.Unmarshal(it[1], &pid) == nil && pid == id {
				return true
			}
		}
		return false
	}
	return has(q.Running), has(q.Pending), nil
}

// FindTask implements engine.TaskFinder: a prompt queued under the task
// id is in /history or /queue; queuing it again would run it twice.
func (v *Vendor) FindTask(ctx context.Context, j *engine.Job, t engine.Task) (string, bool, error) {
	for bi := range v.pool.Len() {
		b := bi
		h, err := v.history(ctx, b, t.ID)
		if err != nil {
			return "", false, err
		}
		running, pending, err := v.inQueue(ctx, b, t.ID)
		if err != nil {
			return "", false, err
		}
		if h != nil || running || pending {
			id := t.ID
			if v.pool.Len() > 1 {
				id += "@" + strconv.Itoa(bi)
			}
			return id, true, nil
		}
	}
	return "", false, nil
}

// Query implements engine.Vendor.
func (v *Vendor) Query(ctx context.Context, j *engine.Job) (*engine.Outcome, error) {
	id, bi, err := v.split(j.TaskID)
	if err != nil {
		return nil, err
	}
	b := bi
	v.listen(bi)
	v.mu.Lock()
	v.jobs[id] = j.ID
	v.mu.Unlock()
	h, err := v.history(ctx, b, id)
	if err != nil {
		return nil, err
	}
	if h != nil {
		return v.finished(ctx, b, id, h)
	}
	running, pending, err := v.inQueue(ctx, b, id)
	if err != nil {
		return nil, err
	}
	switch {
	case running:
		out := &engine.Outcome{State: engine.TaskRunning, Progress: 0}
		v.mu.Lock()
		if st := v.states[id]; st != nil {
			if st.max > 0 {
				out.Progress = float64(st.value) / float64(st.max)
			}
			// The latest preview at every poll: one a chat's edit limit
			// skipped is shown at its next edit (chat.PreviewKey).
			out.Preview = st.preview
		}
		v.mu.Unlock()
		return out, nil
	case pending:
		return &engine.Outcome{State: engine.TaskQueued, Progress: 0}, nil
	}
	// It may have ended between the two reads: look again.
	if h, err = v.history(ctx, b, id); err != nil {
		return nil, err
	}
	if h != nil {
		return v.finished(ctx, b, id, h)
	}
	// Neither ended nor queued: ComfyUI lost it (it restarted) or someone deleted it.
	return nil, engine.Errorf(engine.ENOTFOUND, "ComfyUI has no record of this job (was it restarted?).", "ComfyUI 没有这个任务的记录（是否重启过？）。")
}

func (v *Vendor) finished(ctx context.Context, b int, id string, h *historyEntry) (*engine.Outcome, error) {
	v.forget(id, b)
	if h.Status.StatusStr == "error" || (!h.Status.Completed && h.Status.StatusStr != "") {
		msg, interrupted := "the workflow failed", false
		for _, m := range h.Status.Messages {
			if len(m) < 2 {
				continue
			}
			var event string
			_ = json.Unmarshal(m[0], &event)
			var data struct {
				NodeID  string `json:"node_id"`
				Type    string `json:"node_type"`
				Message string `json:"exception_message"`
			}
			_ = json.Unmarshal(m[1], &data)
			switch event {
			case "execution_error":
				msg = fmt.Sprintf("node %s (%s): %s", data.NodeID, data.Type, strings.TrimSpace(data.Message))
			case "execution_interrupted":
				interrupted = true
			}
		}
		if interrupted {
			return &engine.Outcome{State: engine.TaskFailed, Progress: -1, Err: engine.Errorf(engine.ECANCELLED, "Interrupted at ComfyUI.", "已在 ComfyUI 中断。")}, nil
		}
		return &engine.Outcome{State: engine.TaskFailed, Progress: -1, Err: fmt.Errorf("comfyui: %s", msg)}, nil
	}
	out := &engine.Outcome{State: engine.TaskDone, Progress: 1}
	for _, node := range slices.Sorted(maps.Keys(h.Outputs)) {
		for _, img := range h.Outputs[node].Images {
			if img.Type != "output" {
				continue // PreviewImage's temp files
			}
			q := url.Values{"filename": {img.Filename}, "subfolder": {img.Subfolder}, "type": {img.Type}}
			_, data, err := v.get(ctx, b, "view?"+q.Encode())
			if err != nil {
				return nil, err
			}
			out.Images = append(out.Images, engine.Remote{Data: data})
		}
	}
	return out, nil
}

// get fetches a path with a query string.
func (v *Vendor) get(ctx context.Context, b int, pathQuery string) (int, []byte, error) {
	u, err := v.pool.Base(b).Parse(pathQuery)
	if err != nil {
		return 0, nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return 0, nil, err
	}
	if v.cfg.Token != "" {
		req.Header.Set("Authorization", "Bearer "+v.cfg.Token)
	}
	resp, err := v.client.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("comfyui view: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 100<<20))
	if err != nil || resp.StatusCode != http.StatusOK {
		return resp.StatusCode, nil, fmt.Errorf("comfyui view: status %d: %v", resp.StatusCode, err)
	}
	return resp.StatusCode, data, nil
}

func (v *Vendor) forget(id string, b int) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if _, ok := v.jobs[id]; ok {
		delete(v.jobs, id)
		v.pool.Busy(b, -1)
	}
	delete(v.states, id)
}

// CancelTask implements engine.Canceller: the prompt leaves the queue,
// and is interrupted if it runs (ComfyUI interrupts only that prompt
// when given its id).
func (v *Vendor) CancelTask(ctx context.Context, j *engine.Job) error {
	id, bi, err := v.split(j.TaskID)
	if err != nil {
		return err
	}
	b := bi
	if _, _, err := v.postJSON(ctx, b, "queue", map[string]any{"delete": []string{id}}, nil); err != nil {
		return err
	}
	_, _, err = v.postJSON(ctx, b, "interrupt", map[string]any{"prompt_id": id}, nil)
	return err
}

// Catalog implements engine.Cataloguer: checkpoints and LoRAs from /object_info.
func (v *Vendor) Catalog(ctx context.Context) ([]engine.CatalogEntry, error) {
	var out []engine.CatalogEntry
	for _, x := range []struct{ class, input, kind string }{
		{"CheckpointLoaderSimple", "ckpt_name", engine.EntryModel},
		{"LoraLoader", "lora_name", engine.EntryLoRA},
	} {
		var info map[string]struct {
			Input struct {
				Required map[string][]json.RawMessage `json:"required"`
			} `json:"input"`
		}
		if _, _, err := v.do(ctx, 0, http.MethodGet, "object_info/"+x.class, nil, "", &info); err != nil {
			return nil, err
		}
		spec := info[x.class].Input.Required[x.input]
		var names []string
		if len(spec) > 0 {
			_ = json.Unmarshal(spec[0], &names)
		}
		for _, n := range names {
			out = append(out, engine.CatalogEntry{Vendor: Name, Kind: x.kind, ID: n, Name: strings.TrimSuffix(n, ".safetensors")})
		}
	}
	return out, nil
}

// listen opens backend bi's websocket once, and keeps it open.
func (v *Vendor) listen(bi int) {
	v.wsOnce[bi].Do(func() { go v.wsLoop(bi) })
}

func (v *Vendor) wsLoop(bi int) {
	u := *v.pool.Base(bi)
	u.Scheme = map[string]string{"http": "ws", "https": "wss"}[u.Scheme]
	u.Path = strings.TrimRight(u.Path, "/") + "/ws"
	u.RawQuery = url.Values{"clientId": {v.cfg.ClientID}}.Encode()
	hdr := http.Header{}
	if v.cfg.Token != "" {
		hdr.Set("Authorization", "Bearer "+v.cfg.Token)
	}
	wait := 100 * time.Millisecond
	for v.ctx.Err() == nil {
		c, _, err := websocket.DefaultDialer.DialContext(v.ctx, u.String(), hdr)
		if err != nil {
			v.log.Debug("comfyui websocket", slog.Any("err", err))
			select {
			case <-v.ctx.Done():
				return
			case <-time.After(wait):
			}
			wait = min(2*wait, 5*time.Second)
			continue
		}
		wait = 100 * time.Millisecond
		stop := context.AfterFunc(v.ctx, func() { c.Close() })
		for {
			kind, data, err := c.ReadMessage()
			if err != nil {
				break
			}
			if kind == websocket.BinaryMessage {
				v.onBinary(bi, data)
			} else {
				v.onMessage(bi, data)
			}
		}
		stop()
		c.Close()
	}
}

// onBinary reads a preview frame: [u32 event][u32 format][image] for
// PREVIEW_IMAGE (1), or [u32 4][u32 n][n bytes of JSON metadata][image]
// for PREVIEW_IMAGE_WITH_METADATA, which names its prompt.
func (v *Vendor) onBinary(bi int, data []byte) {
	if len(data) < 8 {
		return
	}
	event := binary.BigEndian.Uint32(data)
	v.mu.Lock()
	defer v.mu.Unlock()
	id := v.current[bi]
	var img []byte
	switch event {
	case 1:
		img = data[8:]
	case 4:
		n := int(binary.BigEndian.Uint32(data[4:]))
		if 8+n > len(data) {
			return
		}
		var meta struct {
			PromptID string `json:"prompt_id"`
		}
		if json.Unmarshal(data[8:8+n], &meta) == nil && meta.PromptID != "" {
			id = meta.PromptID
		}
		img = data[8+n:]
	default:
		return
	}
	if st := v.stateLocked(id); st != nil {
		st.preview = append([]byte(nil), img...)
		st.previewN++
	}
}

func (v *Vendor) stateLocked(id string) *state {
	if id == "" {
		return nil
	}
	st := v.states[id]
	if st == nil {
		st = &state{}
		v.states[id] = st
	}
	return st
}

func (v *Vendor) onMessage(bi int, data []byte) {
	var m struct {
		Type string `json:"type"`
		Data struct {
			PromptID string  `json:"prompt_id"`
			Node     *string `json:"node"`
			Value    int     `json:"value"`
			Max      int     `json:"max"`
		} `json:"data"`
	}
	if json.Unmarshal(data, &m) != nil {
		return
	}
	id := m.Data.PromptID
	end := false
	v.mu.Lock()
	switch m.Type {
	case "execution_start":
		v.current[bi] = id
		if st := v.stateLocked(id); st != nil {
			st.started = v.now()
		}
	case "executing":
		if m.Data.Node != nil {
			v.current[bi] = id
		} else {
			end = true
		}
	case "progress":
		// Progress names its prompt: a socket opened mid-prompt (after a
		// restart) learns here whose the previews are.
		if id != "" {
			v.current[bi] = id
		}
		if st := v.stateLocked(id); st != nil {
			st.value, st.max = m.Data.Value, m.Data.Max
		}
	case "execution_success", "execution_error", "execution_interrupted":
		end = true
	}
	var job string
	if end {
		if st := v.states[id]; st != nil && !st.ended {
			st.ended = true
			if !st.started.IsZero() && m.Type != "execution_interrupted" {
				d := v.now().Sub(st.started)
				if v.timed++; v.timed == 1 {
					v.took = d // the first measure beats the configured guess
				} else {
					v.took = (9*v.took + d) / 10
				}
			}
		}
		if v.current[bi] == id {
			delete(v.current, bi)
		}
		job = v.jobs[id]
	}
	v.mu.Unlock()
	if job != "" {
		v.Wake(job)
	}
}
