package apispace_test

import (
	"bytes"
	"context"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/picbot/picbot/engine"
	"github.com/picbot/picbot/engine/apispace"
	"github.com/picbot/picbot/engine/apispace/apispacetest"
	"github.com/picbot/picbot/internal/testclock"
)

// token is distinctive, so a leak into an error or a log line is found.
const token = "tok-SECRET-5f2c9a"

func startFake(t *testing.T, opts apispacetest.Options) *apispacetest.Server {
	t.Helper()
	if opts.Token == "" {
		opts.Token = token
	}
	f := apispacetest.New(opts)
	t.Cleanup(func() {
		f.Close()
		if v := f.Violations(); len(v) > 0 {
			t.Errorf("the fake saw calls the documents do not allow:\n%s", strings.Join(v, "\n"))
		}
	})
	return f
}

// logs collects a vendor's log lines, to check no token gets there.
type logs struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func newVendor(t *testing.T, baseURL string, change func(*apispace.Config)) (*apispace.Vendor, *logs) {
	t.Helper()
	cfg := apispace.Config{BaseURL: baseURL, Token: token, PublicInputs: true}
	if change != nil {
		change(&cfg)
	}
	l := &logs{}
	v, err := apispace.New(cfg, &http.Client{Timeout: 5 * time.Second}, slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if strings.Contains(l.String(), token) {
			t.Errorf("the token is in the log:\n%s", l.String())
		}
	})
	return v, l
}

func pngBytes(t testing.TB, w, h int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.SetRGBA(x, y, color.RGBA{uint8(x * 7), uint8(y * 5), 90, 255})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// inputServer plays the bot's /input endpoint: the one PNG the vendor fetches.
func inputServer(t *testing.T, w, h int) string {
	t.Helper()
	data := pngBytes(t, w, h)
	s := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Content-Type", "image/png")
		rw.Write(data)
	}))
	t.Cleanup(s.Close)
	return s.URL + "/input/job/token/0"
}

func newJob(req engine.Request) *engine.Job {
	req.Normalize()
	return &engine.Job{ID: "job1", Request: req, State: engine.StateQueued}
}

func draw(prompt string) engine.Request {
	return engine.Request{Kind: engine.KindDraw, Prompt: prompt, Seed: 42}
}

func withInput(req engine.Request, w, h int) engine.Request {
	req.Inputs = []engine.Input{{Blob: "b", Mime: "image/png", Width: w, Height: h}}
	return req
}

// waitDone queries until the task ends, and returns the outcome, the
// states seen in order, and the number of queries.
func waitDone(t *testing.T, v *apispace.Vendor, j *engine.Job) (*engine.Outcome, []engine.TaskState, int) {
	t.Helper()
	var seen []engine.TaskState
	deadline := time.Now().Add(10 * time.Second)
	for queries := 1; time.Now().Before(deadline); queries++ {
		out, err := v.Query(context.Background(), j)
		if err != nil {
			t.Fatalf("query: %v", err)
		}
		if len(seen) == 0 || seen[len(seen)-1] != out.State {
			seen = append(seen, out.State)
		}
		if out.State == engine.TaskDone || out.State == engine.TaskFailed {
			return out, seen, queries
		}
		if out.Progress != -1 {
			t.Errorf("progress %v, want -1 (the vendor gives no figure)", out.Progress)
		}
		time.Sleep(15 * time.Millisecond)
	}
	t.Fatal("task never ended")
	return nil, nil, 0
}

func fetchSize(t *testing.T, url string) image.Point {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	img, err := png.Decode(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return img.Bounds().Size()
}

// TestTxt2ImgMatchesSeedSample sends the Python sample's own values and
// expects the Python sample's own body, byte for byte in meaning, with the
// seed's three headers.
func TestTxt2ImgMatchesSeedSample(t *testing.T) {
	var (
		header http.Header
		body   []byte
		path   string
	)
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		header, path = r.Header.Clone(), r.Method+" "+r.URL.Path
		body, _ = io.ReadAll(r.Body)
		w.Write(mustRead(t, "testdata/submit_reply.json"))
	}))
	defer s.Close()
	v, _ := newVendor(t, s.URL+"/aigc", nil)
	j := newJob(engine.Request{Kind: engine.KindDraw, Prompt: "玫瑰花", Negative: "cropped", Width: 512, Height: 512, Guidance: 7.5, Seed: -1, Steps: 20})
	uid, err := v.Submit(context.Background(), j, engine.Task{ID: "job1-1"})
	if err != nil {
		t.Fatal(err)
	}
	if uid != "b50fd9dc699b0f69e5dac9d150939c94" {
		t.Fatalf("uid %q", uid)
	}
	if path != "POST /aigc/txt2img" {
		t.Fatalf("request %s", path)
	}
	for k, want := range map[string]string{"X-APISpace-Token": token, "Authorization-Type": "apikey", "Content-Type": "application/json"} {
		if got := header.Get(k); got != want {
			t.Errorf("header %s: %q, want %q", k, got, want)
		}
	}
	var got, want any
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	want = readJSON(t, "testdata/seed_txt2img_payload.json")
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("body differs from the seed's Python sample:\ngot  %s\nwant %s", body, mustRead(t, "testdata/seed_txt2img_payload.json"))
	}

	// With a callback, notify_url carries it; nothing else changes.
	const cb = "https://bot.example/callback/apispace/job1/abc"
	if _, err := v.Submit(context.Background(), j, engine.Task{CallbackURL: cb}); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	json.Unmarshal(body, &m)
	if m["notify_url"] != cb {
		t.Fatalf("notify_url %v", m["notify_url"])
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func readJSON(t *testing.T, path string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(mustRead(t, path), &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestKinds runs each kind through the fake by polling: the right path,
// task and params; pending → working → finished; a real PNG of the right size.
func TestKinds(t *testing.T) {
	// The fake's clock moves only when the test moves it, so each phase is
	// seen whatever the machine's load (a poll slower than the phase on
	// the wall clock missed "working").
	clk := testclock.New(time.Unix(1_700_000_000, 0))
	const queue, work = 120 * time.Millisecond, 150 * time.Millisecond
	f := startFake(t, apispacetest.Options{Queue: queue, Duration: work, Now: clk.Now})
	v, _ := newVendor(t, f.BaseURL(), nil)
	in := inputServer(t, 40, 30)
	sized := draw("a red fox")
	sized.Width, sized.Height = 768, 512
	anime := withInput(engine.Request{Kind: engine.KindAnime, Style: "cute"}, 40, 30)
	for _, tc := range []struct {
		name, path, task string
		req              engine.Request
		size             image.Point
		params           map[string]any
	}{
		{"Txt2Img", "/txt2img", "txt2img.sd", sized, image.Pt(768, 512), map[string]any{"text": "a red fox", "w": 768.0, "h": 512.0, "model": "art", "sampler": "k_euler", "seed": 42.0, "num_steps": 25.0, "guidance_scale": 7.0}},
		{"Img2Img", "/img2img", "img2img.sd", withInput(draw("a red fox"), 40, 30), image.Pt(512, 512), map[string]any{"url": in, "text": "a red fox"}},
		{"Anime", "/portrait2anime", "img2img.acg", anime, image.Pt(40, 30), map[string]any{"url": in, "image_url": in, "style": "Cute_style"}},
		{"AnimeDefaultStyle", "/portrait2anime", "img2img.acg", withInput(engine.Request{Kind: engine.KindAnime}, 40, 30), image.Pt(40, 30), map[string]any{"style": "Gorgeous_style"}},
		{"SuperRes", "/superres", "img2img.sr", withInput(engine.Request{Kind: engine.KindUpscale, Scale: 4}, 40, 30), image.Pt(160, 120), map[string]any{"url": in, "is_anime": false}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j := newJob(tc.req)
			if err := v.Check(&j.Request); err != nil {
				t.Fatalf("check: %v", err)
			}
			uid, err := v.Submit(context.Background(), j, engine.Task{InputURLs: []string{in}})
			if err != nil {
				t.Fatal(err)
			}
			j.TaskID = uid
			task := findTask(t, f, uid)
			if task.Path != tc.path || task.Task != tc.task || task.NotifyURL != "" {
				t.Fatalf("path %s task %s notify %q", task.Path, task.Task, task.NotifyURL)
			}
			params := task.Body["params"].(map[string]any)
			for k, want := range tc.params {
				got := params[k]
				if n, ok := got.(json.Number); ok {
					got, _ = n.Float64()
				}
				if got != want {
					t.Errorf("params.%s = %v, want %v", k, got, want)
				}
			}
			var seen []engine.TaskState
			var out *engine.Outcome
			queries := 0
			for _, step := range []time.Duration{0, queue, work} {
				clk.Add(step)
				o, err := v.Query(context.Background(), j)
				if err != nil {
					t.Fatalf("query: %v", err)
				}
				out, queries = o, queries+1
				seen = append(seen, o.State)
				if o.State != engine.TaskDone && o.Progress != -1 {
					t.Errorf("progress %v, want -1 (the vendor gives no figure)", o.Progress)
				}
			}
			if want := []engine.TaskState{engine.TaskQueued, engine.TaskRunning, engine.TaskDone}; !reflect.DeepEqual(seen, want) {
				t.Fatalf("states %v, want %v (err %v)", seen, want, out.Err)
			}
			if out.TaskID != uid || len(out.Images) != 1 {
				t.Fatalf("outcome %+v", out)
			}
			if got := fetchSize(t, out.Images[0].URL); got != tc.size {
				t.Fatalf("result %v, want %v", got, tc.size)
			}
			if want := map[bool]int64{true: 42, false: 0}[tc.req.Kind == engine.KindDraw]; out.Images[0].Seed != want {
				t.Fatalf("seed %d, want %d", out.Images[0].Seed, want)
			}
			if got := f.BilledFor(uid); got != 1+queries {
				t.Fatalf("billed %d, want a submit and %d queries", got, queries)
			}
		})
	}
}

func findTask(t *testing.T, f *apispacetest.Server, uid string) apispacetest.Task {
	t.Helper()
	for _, task := range f.Tasks() {
		if task.UID == uid {
			return task
		}
	}
	t.Fatalf("the fake has no task %s", uid)
	return apispacetest.Task{}
}

// receiver plays the bot's callback endpoint; fail says how many deliveries
// to refuse with a 500 first.
type receiver struct {
	*httptest.Server
	mu     sync.Mutex
	fail   int
	bodies chan []byte
}

func newReceiver(t *testing.T, fail int) *receiver {
	r := &receiver{fail: fail, bodies: make(chan []byte, 10)}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		if req.Method != http.MethodPost || req.Header.Get("Content-Type") != "application/json" {
			t.Errorf("callback %s with Content-Type %q", req.Method, req.Header.Get("Content-Type"))
		}
		r.mu.Lock()
		refuse := r.fail > 0
		r.fail--
		r.mu.Unlock()
		if refuse {
			http.Error(w, "busy", http.StatusInternalServerError)
			return
		}
		r.bodies <- body
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) next(t *testing.T) []byte {
	t.Helper()
	select {
	case b := <-r.bodies:
		return b
	case <-time.After(10 * time.Second):
		t.Fatal("no callback")
		return nil
	}
}

// TestCallback: the fake's callback, as the seed shapes it, parsed for
// each kind and each way a task ends.
func TestCallback(t *testing.T) {
	f := startFake(t, apispacetest.Options{Duration: 60 * time.Millisecond})
	v, _ := newVendor(t, f.BaseURL(), nil)
	in := inputServer(t, 32, 32)
	for _, tc := range []struct {
		name  string
		fault apispacetest.Fault
		req   engine.Request
		state engine.TaskState
		code  string
		size  image.Point
	}{
		{"Txt2Img", "", draw("roses"), engine.TaskDone, "", image.Pt(512, 512)},
		{"Img2Img", "", withInput(draw("roses"), 32, 32), engine.TaskDone, "", image.Pt(512, 512)},
		{"Anime", "", withInput(engine.Request{Kind: engine.KindAnime, Style: "jojo"}, 32, 32), engine.TaskDone, "", image.Pt(32, 32)},
		{"SuperRes", "", withInput(engine.Request{Kind: engine.KindUpscale, Scale: 4}, 32, 32), engine.TaskDone, "", image.Pt(128, 128)},
		{"Unsafe", apispacetest.FaultUnsafe, draw("roses"), engine.TaskFailed, engine.EUNSAFE, image.Point{}},
		{"UnsafeByWord", "", draw("an unsafe rose"), engine.TaskFailed, engine.EUNSAFE, image.Point{}},
		{"Exception", apispacetest.FaultException, draw("roses"), engine.TaskFailed, engine.EVENDOR, image.Point{}},
		{"InputUnreadable", "", withInput(engine.Request{Kind: engine.KindUpscale, Scale: 4}, 32, 32), engine.TaskFailed, engine.EVENDOR, image.Point{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newReceiver(t, 0)
			if tc.fault != "" {
				f.Inject(tc.fault)
			}
			links := []string{in}
			if tc.name == "InputUnreadable" {
				gone := httptest.NewServer(http.NotFoundHandler())
				defer gone.Close()
				links = []string{gone.URL + "/input/job/token/0"}
			}
			j := newJob(tc.req)
			uid, err := v.Submit(context.Background(), j, engine.Task{CallbackURL: r.URL + "/cb", InputURLs: links})
			if err != nil {
				t.Fatal(err)
			}
			j.TaskID = uid
			if task := findTask(t, f, uid); task.NotifyURL != r.URL+"/cb" {
				t.Fatalf("notify_url %q", task.NotifyURL)
			}
			body := r.next(t)
			var shape struct {
				UID     string         `json:"uid"`
				Success bool           `json:"success"`
				Data    map[string]any `json:"data"`
			}
			if err := json.Unmarshal(body, &shape); err != nil {
				t.Fatalf("the fake's callback is not JSON: %v", err)
			}
			for _, k := range []string{"uid", "cdn", "cos", "safe", "reason", "create_time", "start_time", "end_time", "duration", "elapsed_times", "request"} {
				if _, ok := shape.Data[k]; !ok && (tc.state == engine.TaskDone || k != "end_time" && k != "duration") {
					t.Errorf("callback data lacks %s", k)
				}
			}
			out, err := v.ParseCallback(j, body)
			if err != nil {
				t.Fatal(err)
			}
			if out.TaskID != uid || out.State != tc.state || engine.ErrorCode(out.Err) != tc.code && tc.code != "" {
				t.Fatalf("outcome %+v (err %v)", out, out.Err)
			}
			if tc.state == engine.TaskFailed {
				if len(out.Images) != 0 {
					t.Fatalf("a failed task shows images %v", out.Images)
				}
				if tc.code == engine.EUNSAFE && (!shape.Success || shape.Data["safe"] != false || shape.Data["cdn"] != "" || shape.Data["cos"] != "") {
					t.Fatalf("the fake's unsafe callback is not the seed's: %s", body)
				}
				return
			}
			if got := fetchSize(t, out.Images[0].URL); got != tc.size {
				t.Fatalf("result %v, want %v", got, tc.size)
			}
		})
	}
}

func TestCallbackRetries(t *testing.T) {
	f := startFake(t, apispacetest.Options{Duration: 30 * time.Millisecond, CallbackRetries: []time.Duration{10 * time.Millisecond, 10 * time.Millisecond, 10 * time.Millisecond}})
	v, _ := newVendor(t, f.BaseURL(), nil)
	t.Run("Delivered", func(t *testing.T) {
		r := newReceiver(t, 2)
		uid, err := v.Submit(context.Background(), newJob(draw("roses")), engine.Task{CallbackURL: r.URL})
		if err != nil {
			t.Fatal(err)
		}
		r.next(t)
		deadline := time.Now().Add(5 * time.Second)
		for !findTask(t, f, uid).CallbackDelivered && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond) // the fake records the try after the reply
		}
		if task := findTask(t, f, uid); task.CallbackAttempts != 3 || !task.CallbackDelivered {
			t.Fatalf("attempts %d delivered %v", task.CallbackAttempts, task.CallbackDelivered)
		}
	})
	t.Run("GivesUp", func(t *testing.T) {
		r := newReceiver(t, 100)
		uid, err := v.Submit(context.Background(), newJob(draw("roses")), engine.Task{CallbackURL: r.URL})
		if err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for findTask(t, f, uid).CallbackAttempts < 4 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(50 * time.Millisecond) // no fifth try
		if task := findTask(t, f, uid); task.CallbackAttempts != 4 || task.CallbackDelivered {
			t.Fatalf("attempts %d delivered %v", task.CallbackAttempts, task.CallbackDelivered)
		}
	})
}

// TestParseCallbackLenient: JSON with "True"/"False" strings is read;
// the seed's own sample (curly quotes, Python True) is refused, so the engine polls.
func TestParseCallbackLenient(t *testing.T) {
	v, _ := newVendor(t, "http://127.0.0.1:1/aigc", nil)
	j := newJob(draw("roses"))
	j.TaskID = "b50fd9dc699b0f69e5dac9d150939c94"
	out, err := v.ParseCallback(j, mustRead(t, "testdata/callback.json"))
	if err != nil || out.State != engine.TaskDone || out.TaskID != j.TaskID || len(out.Images) != 1 ||
		out.Images[0].URL != "https://ailab-huawei-cdn.nolibox.com/aigc/images/d6fa33b93ac84b8fbb233f4be03ba38f.png" {
		t.Fatalf("seed callback: %+v %v", out, err)
	}
	out, err = v.ParseCallback(j, mustRead(t, "testdata/callback_unsafe.json"))
	if err != nil || out.State != engine.TaskFailed || engine.ErrorCode(out.Err) != engine.EUNSAFE || len(out.Images) != 0 {
		t.Fatalf("unsafe callback with string booleans: %+v %v", out, err)
	}
	if _, err := v.ParseCallback(j, mustRead(t, "testdata/seed_callback.txt")); err == nil {
		t.Fatal("the seed's non-JSON sample was accepted")
	}
	// safe false is never shown, even if the vendor left a link.
	out, err = v.ParseCallback(j, []byte(`{"uid":"u1","success":true,"data":{"uid":"u1","cdn":"https://cdn.example/a.png","cos":"https://cos.example/a.png","safe":false}}`))
	if err != nil || out.State != engine.TaskFailed || engine.ErrorCode(out.Err) != engine.EUNSAFE || len(out.Images) != 0 {
		t.Fatalf("safe false with links: %+v %v", out, err)
	}
	// success true and safe true, but cdn empty: the cos link will do.
	out, err = v.ParseCallback(j, []byte(`{"uid":"u1","success":true,"data":{"uid":"u1","cdn":"","cos":"https://cos.example/a.png","safe":true}}`))
	if err != nil || out.State != engine.TaskDone || out.Images[0].URL != "https://cos.example/a.png" {
		t.Fatalf("cos only: %+v %v", out, err)
	}
	// success false with a reason about the audit is unsafe; another reason is the vendor's failure.
	out, _ = v.ParseCallback(j, []byte(`{"uid":"u1","success":false,"data":{"uid":"u1","cdn":"","cos":"","safe":true,"reason":"图片包含敏感信息"}}`))
	if out.State != engine.TaskFailed || engine.ErrorCode(out.Err) != engine.EUNSAFE {
		t.Fatalf("sensitive failure: %+v", out)
	}
	out, _ = v.ParseCallback(j, []byte(`{"uid":"u1","success":false,"data":{"uid":"u1","reason":"CUDA out of memory"}}`))
	if out.State != engine.TaskFailed || engine.ErrorCode(out.Err) != engine.EVENDOR {
		t.Fatalf("vendor failure: %+v", out)
	}
	for _, bad := range []string{`{}`, `{"success":true}`, `{"uid":"u1","data":{"uid":"u1"}}`, `[1,2]`} {
		if out, err := v.ParseCallback(j, []byte(bad)); err == nil {
			t.Errorf("%s accepted: %+v", bad, out)
		}
	}
	ct, body := v.CallbackReply()
	if ct != "application/json" || !json.Valid(body) {
		t.Fatalf("reply %q %s", ct, body)
	}
}

// TestSubmitFailures maps each failure the fake acts out: only the vendor's
// verdict on the request refuses it (EINVALID, EUNSAFE); the rest are plain
// errors so the engine fails over. No error carries the token.
func TestSubmitFailures(t *testing.T) {
	f := startFake(t, apispacetest.Options{Hang: 5 * time.Second})
	v, _ := newVendor(t, f.BaseURL(), nil)
	wrong, _ := newVendor(t, f.BaseURL(), func(c *apispace.Config) { c.Token = "wrong-SECRET-77" })
	big := draw("roses")
	big.Width = 1024 // past Check, as if the limits were misconfigured: the fake refuses it
	badSampler := draw("roses")
	badSampler.Sampler = "euler_ancestral"
	for _, tc := range []struct {
		name   string
		v      *apispace.Vendor
		fault  apispacetest.Fault
		req    engine.Request
		want   string // error code; EINTERNAL for a plain error
		billed int    // calls the fake bills
	}{
		{"Server500", v, apispacetest.Fault500, draw("roses"), engine.EINTERNAL, 0},
		{"Server500ByWord", v, "", draw("fail500 roses"), engine.EINTERNAL, 0},
		{"Timeout", v, apispacetest.FaultTimeout, draw("roses"), engine.EINTERNAL, 0},
		{"BadJSON", v, apispacetest.FaultBadJSON, draw("roses"), engine.EINTERNAL, 0},
		{"QuotaExhausted", v, apispacetest.FaultQuota, draw("roses"), engine.EINTERNAL, 0},
		{"WrongToken", wrong, "", draw("roses"), engine.EINTERNAL, 0},
		{"Sensitive", v, apispacetest.FaultSensitive, draw("roses"), engine.EUNSAFE, 1},
		{"SensitiveByWord", v, "", draw("a sensitive rose"), engine.EUNSAFE, 1},
		{"TooLarge", v, "", big, engine.EINVALID, 1},
		{"UnknownSampler", v, "", badSampler, engine.EINVALID, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.fault != "" {
				f.Inject(tc.fault)
			}
			before := f.Billed()
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			uid, err := tc.v.Submit(ctx, newJob(tc.req), engine.Task{})
			if err == nil {
				t.Fatalf("submitted as %s", uid)
			}
			if got := engine.ErrorCode(err); got != tc.want {
				t.Fatalf("code %s, want %s: %v", got, tc.want, err)
			}
			if strings.Contains(err.Error(), token) || strings.Contains(err.Error(), "wrong-SECRET-77") {
				t.Fatalf("the token is in the error: %v", err)
			}
			if got := f.Billed() - before; got != tc.billed {
				t.Fatalf("billed %d, want %d", got, tc.billed)
			}
			if e := engine.AsError(err); tc.want != engine.EINTERNAL && (e.EN == "" || e.ZH == "") {
				t.Fatalf("no user message: %+v", e)
			}
		})
	}
}

// TestQueryOutcomes: every way a polled task ends.
func TestQueryOutcomes(t *testing.T) {
	f := startFake(t, apispacetest.Options{Duration: 40 * time.Millisecond})
	v, _ := newVendor(t, f.BaseURL(), nil)
	for _, tc := range []struct {
		name  string
		fault apispacetest.Fault
		state engine.TaskState
		code  string
	}{
		{"Finished", "", engine.TaskDone, ""},
		{"Unsafe", apispacetest.FaultUnsafe, engine.TaskFailed, engine.EUNSAFE},
		{"Exception", apispacetest.FaultException, engine.TaskFailed, engine.EVENDOR},
		{"Forgotten", apispacetest.FaultForget, engine.TaskFailed, engine.ENOTFOUND},
		{"Expired", apispacetest.FaultExpired, engine.TaskDone, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.Inject(tc.fault)
			j := newJob(draw("roses"))
			uid, err := v.Submit(context.Background(), j, engine.Task{})
			if err != nil {
				t.Fatal(err)
			}
			j.TaskID = uid
			out, _, _ := waitDone(t, v, j)
			if out.State != tc.state || (tc.code != "" && engine.ErrorCode(out.Err) != tc.code) {
				t.Fatalf("outcome %+v, err %v", out, out.Err)
			}
			if tc.state == engine.TaskFailed {
				if len(out.Images) != 0 {
					t.Fatalf("images %v", out.Images)
				}
				// What went wrong, in both languages; the chat adds that the
				// quota came back (chat.Ended), once.
				if e := engine.AsError(out.Err); e.EN == "" || e.ZH == "" || strings.Contains(e.EN, "refunded") || strings.Contains(e.ZH, "退还") {
					t.Fatalf("message %+v", e)
				}
				return
			}
			resp, err := http.Get(out.Images[0].URL)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if want := map[bool]int{true: 404, false: 200}[tc.fault == apispacetest.FaultExpired]; resp.StatusCode != want {
				t.Fatalf("result link: %d, want %d", resp.StatusCode, want)
			}
		})
	}
	t.Run("UnknownUID", func(t *testing.T) {
		j := newJob(draw("roses"))
		j.TaskID = "0123456789abcdef0123456789abcdef"
		out, err := v.Query(context.Background(), j)
		if err != nil || out.State != engine.TaskFailed || engine.ErrorCode(out.Err) != engine.ENOTFOUND {
			t.Fatalf("outcome %+v err %v", out, err)
		}
	})
}

// TestQueryErrors: replies that say nothing about the task are errors, and
// the engine polls again; only the vendor's own "not found" loses the task.
func TestQueryErrors(t *testing.T) {
	var status int
	var body string
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	defer s.Close()
	v, _ := newVendor(t, s.URL, nil)
	j := newJob(draw("roses"))
	j.TaskID = "u1"
	for _, tc := range []struct {
		status int
		body   string
		lost   bool
	}{
		{500, `{"code":500,"msg":"服务内部错误"}`, false},
		{404, `404 page not found`, false},
		{200, `{"code":0,"data":`, false},
		{200, `{"code":404,"msg":"任务不存在","data":null}`, true},
		{200, `{"code":"0","data":{"uid":"u1","status":"not_found"},"msg":"success"}`, true},
	} {
		status, body = tc.status, tc.body
		out, err := v.Query(context.Background(), j)
		switch {
		case tc.lost && (err != nil || out.State != engine.TaskFailed || engine.ErrorCode(out.Err) != engine.ENOTFOUND):
			t.Errorf("%d %s: %+v %v, want the task lost", tc.status, tc.body, out, err)
		case !tc.lost && err == nil:
			t.Errorf("%d %s: %+v, want an error", tc.status, tc.body, out)
		}
	}
}

func TestCheck(t *testing.T) {
	v, _ := newVendor(t, "http://127.0.0.1:1/aigc", nil)
	noURL, _ := newVendor(t, "http://127.0.0.1:1/aigc", func(c *apispace.Config) { c.PublicInputs = false })
	up := func(scale, w, h int) engine.Request {
		return withInput(engine.Request{Kind: engine.KindUpscale, Scale: scale}, w, h)
	}
	size := func(w, h int) engine.Request {
		r := draw("roses")
		r.Width, r.Height = w, h
		return r
	}
	many := draw("roses")
	many.N = 2
	lora, model, sampler := draw("roses"), draw("roses"), draw("roses")
	lora.LoRA, model.Model, sampler.Sampler = "x", "sdxl", "k_euler_a"
	for _, tc := range []struct {
		name string
		v    *apispace.Vendor
		req  engine.Request
		ok   bool
		says string
	}{
		{"Draw", v, draw("玫瑰花 roses, 8k ✨"), true, ""},
		{"Max768", v, size(768, 768), true, ""},
		{"TooWide", v, size(1024, 512), false, "768"},
		{"OneImage", v, many, false, "--n 1"},
		// The seed says which languages the model reads, not that others fail.
		{"Japanese", v, draw("ねこ"), true, ""},
		{"Korean", v, draw("고양이"), true, ""},
		{"LoRA", v, lora, false, "LoRA"},
		{"UnknownModel", v, model, false, "sdxl"},
		{"KnownSampler", v, sampler, true, ""},
		{"AnimeStyleName", v, withInput(engine.Request{Kind: engine.KindAnime, Style: "CatEar"}, 64, 64), true, ""},
		{"AnimeVendorValue", v, withInput(engine.Request{Kind: engine.KindAnime, Style: "JOJO_style"}, 64, 64), true, ""},
		{"AnimeUnknownStyle", v, withInput(engine.Request{Kind: engine.KindAnime, Style: "sketch"}, 64, 64), false, "sketch"},
		{"Scale4", v, up(4, 512, 512), true, ""},
		{"Scale2", v, up(2, 512, 512), false, "--scale 4"},
		{"Scale3", v, up(3, 512, 512), false, "--scale 4"},
		{"InputTooLarge", v, up(4, 1025, 600), false, "1024"},
		{"Swapface", v, engine.Request{Kind: engine.KindSwapface}, false, "swap"},
		{"NoPublicURL", noURL, up(4, 64, 64), false, "public_url"},
		{"NoPublicURLImg2Img", noURL, withInput(draw("roses"), 64, 64), false, "public_url"},
		{"NoPublicURLTxt2Img", noURL, draw("roses"), true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := tc.req
			req.Normalize()
			err := tc.v.Check(&req)
			if tc.ok {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			e := engine.AsError(err)
			if err == nil || e.Code != engine.EINVALID || !strings.Contains(e.EN, tc.says) || e.ZH == "" {
				t.Fatalf("err %v, want EINVALID saying %q", err, tc.says)
			}
		})
	}
}

// TestSubmitWithoutLinks: without input links Submit fails without
// refusing the request, since a vendor taking image bytes could do it.
func TestSubmitWithoutLinks(t *testing.T) {
	v, _ := newVendor(t, "http://127.0.0.1:1/aigc", nil)
	_, err := v.Submit(context.Background(), newJob(withInput(engine.Request{Kind: engine.KindUpscale, Scale: 4}, 64, 64)), engine.Task{})
	if err == nil || engine.ErrorCode(err) == engine.EINVALID || engine.ErrorCode(err) == engine.EUNSAFE {
		t.Fatalf("err %v", err)
	}
}

func TestTiming(t *testing.T) {
	v, _ := newVendor(t, "http://127.0.0.1:1/aigc", nil)
	size := func(w, h int) *engine.Request {
		r := draw("x")
		r.Width, r.Height = w, h
		return &r
	}
	up := func(w, h int) *engine.Request {
		r := withInput(engine.Request{Kind: engine.KindUpscale, Scale: 4}, w, h)
		return &r
	}
	anime := withInput(engine.Request{Kind: engine.KindAnime}, 2000, 2000)
	for _, tc := range []struct {
		name  string
		req   *engine.Request
		first time.Duration
	}{
		{"Draw512", size(512, 512), 8 * time.Second},
		{"Draw768", size(768, 768), 18 * time.Second},
		{"Draw256", size(256, 256), 8 * time.Second},
		{"SuperRes512", up(512, 512), 6 * time.Second},
		{"SuperRes1024", up(1024, 1024), 24 * time.Second},
		{"SuperResSmall", up(64, 64), 6 * time.Second},
		{"Anime", &anime, 8 * time.Second},
	} {
		tm := v.Timing(tc.req)
		if tm.First != tc.first || tm.Every != 3*time.Second || tm.Max != 20*time.Second || !tm.Billed {
			t.Errorf("%s: %+v, want first %s", tc.name, tm, tc.first)
		}
	}
	fast, _ := newVendor(t, "http://127.0.0.1:1/aigc", func(c *apispace.Config) {
		c.DrawDuration, c.PollEvery, c.PollMax = 800*time.Millisecond, 300*time.Millisecond, 2*time.Second
	})
	if tm := fast.Timing(size(512, 512)); tm.First != 800*time.Millisecond || tm.Every != 300*time.Millisecond || tm.Max != 2*time.Second {
		t.Errorf("configured: %+v", tm)
	}
}

func TestNew(t *testing.T) {
	no := false
	for _, tc := range []struct {
		name string
		cfg  apispace.Config
		ok   bool
	}{
		{"Defaults", apispace.Config{Token: "tok-Q9"}, true},
		{"NoToken", apispace.Config{}, false},
		{"BadBaseURL", apispace.Config{Token: "tok-Q9", BaseURL: "ftp://x"}, false},
		{"BadPath", apispace.Config{Token: "tok-Q9", Paths: apispace.Paths{Anime: "anime"}}, false},
		{"StylesWithoutAnime", apispace.Config{Token: "tok-Q9", Styles: map[string]string{"cute": "Cute_style"}}, false},
		{"NoCallbacks", apispace.Config{Token: "tok-Q9", Callbacks: &no}, true},
	} {
		v, err := apispace.New(tc.cfg, nil, nil)
		if (err == nil) != tc.ok {
			t.Errorf("%s: err %v", tc.name, err)
		}
		if err != nil && strings.Contains(err.Error(), tc.cfg.Token) && tc.cfg.Token != "" {
			t.Errorf("%s: token in %v", tc.name, err)
		}
		if err == nil && v.WantsCallback() != (tc.cfg.Callbacks == nil) {
			t.Errorf("%s: WantsCallback %v", tc.name, v.WantsCallback())
		}
	}
	if d := apispace.Defaults(); d.BaseURL != "https://23329.o.apispace.com/aigc" || d.Model != "art" || d.Sampler != "k_euler" ||
		d.Paths.Txt2Img != "/txt2img" || d.Paths.Query != "/query-image" || d.MaxSide != 768 {
		t.Errorf("defaults %+v", d)
	}
}

// TestQueryStatuses maps each status word of /query-image [P], including a
// finished task whose audit failed but whose links were left in place.
func TestQueryStatuses(t *testing.T) {
	var body string
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, body) }))
	defer s.Close()
	v, _ := newVendor(t, s.URL, nil)
	j := newJob(draw("roses"))
	j.TaskID = "u1"
	for _, tc := range []struct {
		data  string
		state engine.TaskState
		code  string
	}{
		{`{"uid":"u1","status":"pending"}`, engine.TaskQueued, ""},
		{`{"uid":"u1","status":"working"}`, engine.TaskRunning, ""},
		{`{"uid":"u1","status":"finished","cdn":"https://cdn.example/a.png","cos":"","safe":true}`, engine.TaskDone, ""},
		{`{"uid":"u1","status":"finished","cdn":"https://cdn.example/a.png","cos":"https://cos.example/a.png","safe":false}`, engine.TaskFailed, engine.EUNSAFE},
		{`{"uid":"u1","status":"finished","cdn":"","cos":"","safe":true}`, engine.TaskFailed, engine.EUNSAFE},
		{`{"uid":"u1","status":"exception","reason":"CUDA out of memory"}`, engine.TaskFailed, engine.EVENDOR},
		{`{"uid":"u1","status":"not_found"}`, engine.TaskFailed, engine.ENOTFOUND},
		{`{"uid":"u1","status":"reticulating"}`, engine.TaskRunning, ""},
	} {
		body = `{"code":0,"data":` + tc.data + `,"msg":"success"}`
		out, err := v.Query(context.Background(), j)
		if err != nil || out.State != tc.state || engine.ErrorCode(out.Err) != tc.code && tc.code != "" || out.TaskID != "u1" {
			t.Errorf("%s: %+v %v", tc.data, out, err)
			continue
		}
		if (out.State == engine.TaskDone) != (len(out.Images) == 1) {
			t.Errorf("%s: images %v", tc.data, out.Images)
		}
	}
}
