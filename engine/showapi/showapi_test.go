package showapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image/png"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/picbot/picbot/engine"
	"github.com/picbot/picbot/engine/showapi"
	"github.com/picbot/picbot/engine/showapi/showapitest"
	"github.com/picbot/picbot/internal/testclock"
)

const testCode = "test-app-code-9f8e7d6c"

// setup starts a fake on a controlled clock and an adapter for it.
func setup(t *testing.T, opts showapitest.Options, cfg showapi.Config) (*showapitest.Server, *showapi.Vendor, *testclock.Clock) {
	t.Helper()
	clk := testclock.New(time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC))
	if opts.Now == nil {
		opts.Now = clk.Now
	}
	if opts.AppCode == "" && opts.AppKey == "" {
		opts.AppCode = testCode
	}
	fake := showapitest.Start(opts)
	t.Cleanup(fake.Close)
	cfg.BaseURL = fake.URL
	if cfg.FindGather == 0 {
		cfg.FindGather = -1 // searches one at a time, unless a test shares them
	}
	if cfg.AppCode == "" && cfg.AppKey == "" {
		cfg.AppCode = testCode
	}
	v, err := showapi.New(cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	v.Now = clk.Now
	return fake, v, clk
}

func drawJob(prompt string) *engine.Job {
	r := engine.Request{Kind: engine.KindDraw, Prompt: prompt, Negative: "blurry, low quality", Width: 512, Height: 768, Seed: 42, LoRA: "647944c3911a6fa8a2e2712b"}
	r.Normalize()
	return &engine.Job{ID: "J1", Request: r}
}

// submit creates j's task and records its id on j.
func submit(t *testing.T, v *showapi.Vendor, j *engine.Job, callback string) {
	t.Helper()
	id, err := v.Submit(context.Background(), j, engine.Task{ID: j.ID + "-1", CallbackURL: callback})
	if err != nil {
		t.Fatalf("Submit: %v", err)
	}
	j.TaskID = id
}

func TestSubmitRequest(t *testing.T) {
	for _, enc := range []string{"form", "json"} {
		t.Run(enc, func(t *testing.T) {
			fake, v, _ := setup(t, showapitest.Options{}, showapi.Config{CreateEncoding: enc})
			j := drawJob("a red fox")
			j.Request.N, j.Request.Guidance, j.Request.Sampler = 2, 7.5, "euler_a"
			submit(t, v, j, "http://127.0.0.1:9/callback/showapi/J1/tok")
			if !strings.HasPrefix(j.TaskID, "sk") {
				t.Fatalf("task id %q", j.TaskID)
			}
			reqs := fake.Requests()
			if len(reqs) != 1 {
				t.Fatalf("%d requests", len(reqs))
			}
			r := reqs[0]
			if r.Method != http.MethodPost || r.Path != "/createtask" {
				t.Fatalf("%s %s", r.Method, r.Path)
			}
			if got := r.Header.Get("X-Apig-AppCode"); got != testCode {
				t.Fatalf("X-Apig-AppCode %q", got)
			}
			got := map[string]any{}
			switch enc {
			case "json":
				if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
					t.Fatalf("Content-Type %q", ct)
				}
				if err := json.Unmarshal(r.Body, &got); err != nil {
					t.Fatal(err)
				}
			case "form":
				if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
					t.Fatalf("Content-Type %q", ct)
				}
				q, err := url.ParseQuery(string(r.Body))
				if err != nil {
					t.Fatal(err)
				}
				for k := range q {
					got[k] = q.Get(k)
				}
			}
			want := map[string]any{
				"prompt": "a red fox", "negetive_prompt": "blurry, low quality", "model_id": showapi.DefaultModelID,
				"lora": "647944c3911a6fa8a2e2712b", "lora_scale": "0.9", "width": "512", "height": "768", "steps": "25",
				"scale": "7.5", "seed": "42", "scheduler": "K_EULER_ANCESTRAL", "batch_size": "2",
				"call_back": "http://127.0.0.1:9/callback/showapi/J1/tok",
			}
			for k, w := range want {
				if got[k] != w {
					t.Errorf("%s = %#v, want %#v", k, got[k], w)
				}
			}
			if len(got) != len(want) {
				t.Errorf("fields %v, want exactly %v", got, want)
			}
			// The fake echoes the inputs in the record, as the vendor does.
			rec, ok := fake.Task(j.TaskID)
			if !ok || rec["negetive_prompt"] != "blurry, low quality" || rec["batch_size"] != "2" || rec["height"] != "768" {
				t.Fatalf("record %v", rec)
			}
		})
	}
}

func TestSubmitOmitsUnset(t *testing.T) {
	fake, v, _ := setup(t, showapitest.Options{}, showapi.Config{ModelID: "Y99mNKb"})
	j := drawJob("a red fox")
	j.Request.LoRA = ""
	submit(t, v, j, "")
	q, _ := url.ParseQuery(string(fake.Requests()[0].Body))
	for _, k := range []string{"lora", "lora_scale", "call_back"} {
		if _, ok := q[k]; ok {
			t.Errorf("%s sent though unset", k)
		}
	}
	if q.Get("model_id") != "Y99mNKb" {
		t.Errorf("model_id %q, want the configured default", q.Get("model_id"))
	}
}

func TestLifecycle(t *testing.T) {
	fake, v, clk := setup(t, showapitest.Options{Duration: 8 * time.Second}, showapi.Config{})
	ctx := context.Background()
	j := drawJob("a red fox")
	j.Request.N = 2
	submit(t, v, j, "")

	out, err := v.Query(ctx, j)
	if err != nil {
		t.Fatal(err)
	}
	if out.State != engine.TaskQueued || out.Progress >= 0 || out.TaskID != j.TaskID {
		t.Fatalf("waiting task: %+v", out)
	}
	clk.Add(8 * time.Second)
	out, err = v.Query(ctx, j)
	if err != nil {
		t.Fatal(err)
	}
	if out.State != engine.TaskDone || len(out.Images) != 2 || out.Images[0].Seed != 42 {
		t.Fatalf("finished task: %+v", out)
	}
	for _, im := range out.Images {
		resp, err := http.Get(im.URL)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("%s: %v", im.URL, err)
		}
		if b := img.Bounds(); b.Dx() != 512 || b.Dy() != 768 {
			t.Fatalf("image %v, want 512x768", b)
		}
	}
	if got := fake.BilledFor(j.TaskID); got != 3 {
		t.Fatalf("billed %d calls for the task, want 3 (create, two queries)", got)
	}
}

func TestSeedTask(t *testing.T) {
	_, v, _ := setup(t, showapitest.Options{}, showapi.Config{})
	out, err := v.Query(context.Background(), &engine.Job{TaskID: showapitest.SeedTaskID})
	if err != nil {
		t.Fatal(err)
	}
	if out.State != engine.TaskDone || len(out.Images) != 1 || out.Images[0].URL != "https://xyzs.vip/images/20230815/mSAaxBuiSCYdFxsEbeSifU.png" {
		t.Fatalf("%+v", out)
	}
	if out.Images[0].Seed != 0 {
		t.Fatalf("seed %d from the record's -1 (random)", out.Images[0].Seed)
	}
}

func TestSigned(t *testing.T) {
	opts := showapitest.Options{AppKey: testKey, AppSecret: testSecret}
	fake, v, _ := setup(t, opts, showapi.Config{AppKey: testKey, AppSecret: testSecret})
	j := drawJob("a red fox")
	submit(t, v, j, "")
	if _, err := v.Query(context.Background(), j); err != nil {
		t.Fatalf("signed query: %v", err)
	}
	for _, r := range fake.Requests() {
		if !strings.HasPrefix(r.Header.Get("Authorization"), "SDK-HMAC-SHA256 Access="+testKey+", ") || r.Header.Get("X-Sdk-Date") == "" {
			t.Fatalf("%s: unsigned: %v", r.Path, r.Header)
		}
		if r.Header.Get("X-Apig-AppCode") != "" {
			t.Fatal("an app code sent though none is configured")
		}
	}

	t.Run("WrongSecret", func(t *testing.T) {
		var logs bytes.Buffer
		bad, err := showapi.New(showapi.Config{BaseURL: fake.URL, AppKey: testKey, AppSecret: "wrong-secret-xyz"}, nil,
			slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
		if err != nil {
			t.Fatal(err)
		}
		_, err = bad.Submit(context.Background(), j, engine.Task{})
		var gw *showapi.GatewayError
		if !errors.As(err, &gw) || gw.Status != http.StatusUnauthorized || gw.Code != "APIG.0303" {
			t.Fatalf("err %v, want a 401 APIG.0303 gateway error", err)
		}
		if engine.ErrorCode(err) != engine.EINTERNAL {
			t.Fatalf("code %s: a gateway failure must not read as a refusal", engine.ErrorCode(err))
		}
		if strings.Contains(err.Error(), "wrong-secret-xyz") || strings.Contains(logs.String(), "wrong-secret-xyz") {
			t.Fatal("the secret leaked into an error or the log")
		}
	})

	t.Run("StaleDate", func(t *testing.T) {
		v.Now = func() time.Time { return time.Now().Add(-20 * time.Minute) }
		defer func() { v.Now = time.Now }()
		var gw *showapi.GatewayError
		if _, err := v.Query(context.Background(), j); !errors.As(err, &gw) || gw.Status != http.StatusUnauthorized {
			t.Fatalf("err %v, want 401 for a date 20 minutes off", err)
		}
	})
}

func TestWrongAppCode(t *testing.T) {
	fake, _, _ := setup(t, showapitest.Options{}, showapi.Config{})
	v, _ := showapi.New(showapi.Config{BaseURL: fake.URL, AppCode: "not-the-code"}, nil, nil)
	_, err := v.Submit(context.Background(), drawJob("x"), engine.Task{})
	var gw *showapi.GatewayError
	if !errors.As(err, &gw) || gw.Status != http.StatusUnauthorized {
		t.Fatalf("err %v", err)
	}
	if strings.Contains(err.Error(), "not-the-code") {
		t.Fatal("the app code leaked into the error")
	}
}

// TestSubmitFailures maps each way a creation fails to what the engine needs:
// a plain error (retry, fail over) or EINVALID/EUNSAFE (the request itself).
func TestSubmitFailures(t *testing.T) {
	for _, tc := range []struct {
		name   string
		fault  showapitest.Fault
		prompt string
		code   string // engine code; EINTERNAL is a plain error
		gwCode string // GatewayError.Code when it is one
	}{
		{name: "HTTP500", fault: showapitest.Fault500, code: engine.EINTERNAL, gwCode: ""},
		{name: "BadJSON", fault: showapitest.FaultBadJSON, code: engine.EINTERNAL},
		{name: "GatewayCode", fault: showapitest.FaultGateway, code: engine.EINTERNAL, gwCode: "-1"},
		{name: "Quota", fault: showapitest.FaultQuota, code: engine.EINTERNAL, gwCode: "-2"},
		{name: "Throttled", fault: showapitest.FaultThrottle, code: engine.EINTERNAL, gwCode: "APIG.0308"},
		{name: "Timeout", fault: showapitest.FaultTimeout, code: engine.EINTERNAL},
		{name: "MagicFail500", prompt: "fail500 fox", code: engine.EINTERNAL},
		{name: "MagicGateway", prompt: "gateway fox", code: engine.EINTERNAL, gwCode: "-1"},
		{name: "MagicQuota", prompt: "quota fox", code: engine.EINTERNAL, gwCode: "-2"},
		{name: "Refused", prompt: "refuse fox", code: engine.EINVALID},
		{name: "Sensitive", prompt: "sensitive fox", code: engine.EUNSAFE},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake, v, _ := setup(t, showapitest.Options{}, showapi.Config{})
			if tc.fault != 0 {
				fake.FailNext("/createtask", tc.fault)
			}
			prompt := tc.prompt
			if prompt == "" {
				prompt = "a red fox"
			}
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer cancel()
			id, err := v.Submit(ctx, drawJob(prompt), engine.Task{})
			if err == nil {
				t.Fatalf("no error; task %s", id)
			}
			if got := engine.ErrorCode(err); got != tc.code {
				t.Fatalf("code %s, want %s: %v", got, tc.code, err)
			}
			var gw *showapi.GatewayError
			if tc.gwCode != "" && (!errors.As(err, &gw) || gw.Code != tc.gwCode) {
				t.Fatalf("err %v, want gateway code %s", err, tc.gwCode)
			}
			if e := engine.AsError(err); tc.code != engine.EINTERNAL && (e.EN == "" || e.ZH == "") {
				t.Fatalf("no user message: %+v", e)
			}
			if fake.Billed() != 0 {
				t.Fatalf("a failed creation billed %d", fake.Billed())
			}
			if strings.HasPrefix(tc.prompt, "fail500") || strings.HasPrefix(tc.prompt, "gateway") {
				// These fail once per prompt: the retry the engine makes succeeds.
				if _, err := v.Submit(context.Background(), drawJob(prompt), engine.Task{}); err != nil {
					t.Fatalf("second try: %v", err)
				}
			}
		})
	}
}

func TestQueryFailures(t *testing.T) {
	for _, tc := range []struct {
		name    string
		prompt  string
		fault   showapitest.Fault
		forget  bool
		code    string // of the Query error; "" if Query succeeds
		state   engine.TaskState
		outCode string // of Outcome.Err
	}{
		{name: "Unsafe", prompt: "an unsafe fox", state: engine.TaskFailed, outCode: engine.EUNSAFE},
		{name: "VendorFail", prompt: "vendorfail fox", state: engine.TaskFailed, outCode: engine.EVENDOR},
		{name: "Forget", prompt: "forget fox", code: engine.ENOTFOUND},
		{name: "Forgotten", prompt: "fox", forget: true, code: engine.ENOTFOUND},
		{name: "BadJSON", prompt: "badjson fox", code: engine.EINTERNAL},
		{name: "HTTP500", prompt: "fox", fault: showapitest.Fault500, code: engine.EINTERNAL},
		{name: "Throttled", prompt: "fox", fault: showapitest.FaultThrottle, code: engine.EINTERNAL},
		{name: "Quota", prompt: "fox", fault: showapitest.FaultQuota, code: engine.EINTERNAL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake, v, clk := setup(t, showapitest.Options{}, showapi.Config{})
			j := drawJob(tc.prompt)
			submit(t, v, j, "")
			clk.Add(10 * time.Second)
			if tc.fault != 0 {
				fake.FailNext("/yourtaskresult", tc.fault)
			}
			if tc.forget {
				fake.Forget(j.TaskID)
			}
			out, err := v.Query(context.Background(), j)
			if tc.code != "" {
				if got := engine.ErrorCode(err); got != tc.code {
					t.Fatalf("code %q, want %s: %v (outcome %+v)", got, tc.code, err, out)
				}
				if tc.code == engine.ENOTFOUND && fake.BilledFor(j.TaskID) != 1 {
					t.Fatalf("billed %d: the document's not-found answer costs nothing", fake.BilledFor(j.TaskID))
				}
				if tc.code == engine.EINTERNAL {
					// A transient failure: the next poll works.
					if out, err := v.Query(context.Background(), j); err != nil || out.State != engine.TaskDone {
						t.Fatalf("next poll: %+v, %v", out, err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if out.State != tc.state || engine.ErrorCode(out.Err) != tc.outCode {
				t.Fatalf("outcome %+v, want state %d code %s", out, tc.state, tc.outCode)
			}
			if e := engine.AsError(out.Err); e.EN == "" || e.ZH == "" {
				t.Fatalf("no user message: %+v", e)
			}
		})
	}
}

func TestExpiredLink(t *testing.T) {
	_, v, clk := setup(t, showapitest.Options{}, showapi.Config{})
	j := drawJob("expired fox")
	submit(t, v, j, "")
	clk.Add(10 * time.Second)
	out, err := v.Query(context.Background(), j)
	if err != nil || out.State != engine.TaskDone || len(out.Images) != 1 {
		t.Fatalf("%+v %v", out, err)
	}
	resp, err := http.Get(out.Images[0].URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("expired link answered %d", resp.StatusCode)
	}
}

// TestEnvelopeLevels checks both verdicts are read, from hand-made answers.
func TestEnvelopeLevels(t *testing.T) {
	for _, tc := range []struct {
		name   string
		answer string
		code   string // engine code of Query's error; "" for success
	}{
		{"BothOK", `{"showapi_res_code":0,"showapi_res_body":{"ret_code":0,"status":"waiting","task_id":"T"}}`, ""},
		{"GatewayFailedBodyOK", `{"showapi_res_code":-1,"showapi_res_error":"系统调用错误","showapi_res_body":{"ret_code":0,"status":"finish","result_list":["http://x/1.png"]}}`, engine.EINTERNAL},
		{"GatewayCodeAsString", `{"showapi_res_code":"0","showapi_res_body":{"ret_code":"0","status":"waiting"}}`, ""},
		{"BusinessFailed", `{"showapi_res_code":0,"showapi_res_body":{"ret_code":-1,"remark":"系统繁忙","status":"finish","result_list":["http://x/1.png"]}}`, engine.EINTERNAL},
		{"NotFound", `{"showapi_res_code":0,"showapi_res_body":{"ret_code":-1,"remark":"没有找到这个任务"}}`, engine.ENOTFOUND},
		{"NoRetCode", `{"showapi_res_code":0,"showapi_res_body":{"status":"finish","result_list":["http://x/1.png"]}}`, engine.EINTERNAL},
		{"NoGatewayCode", `{"showapi_res_body":{"ret_code":0,"status":"finish"}}`, engine.EINTERNAL},
		{"NoBody", `{"showapi_res_code":0}`, engine.EINTERNAL},
		{"UnknownStatus", `{"showapi_res_code":0,"showapi_res_body":{"ret_code":0,"status":"exploded"}}`, engine.EINTERNAL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, tc.answer)
			}))
			defer srv.Close()
			v, err := showapi.New(showapi.Config{BaseURL: srv.URL, AppCode: testCode}, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			out, err := v.Query(context.Background(), &engine.Job{TaskID: "T"})
			if tc.code == "" {
				if err != nil || out == nil {
					t.Fatalf("%v", err)
				}
				return
			}
			if got := engine.ErrorCode(err); err == nil || got != tc.code {
				t.Fatalf("err %v (code %q), want code %s; outcome %+v", err, got, tc.code, out)
			}
		})
	}
}

func TestCallback(t *testing.T) {
	for _, bare := range []bool{false, true} {
		name := map[bool]string{false: "Envelope", true: "Bare"}[bare]
		t.Run(name, func(t *testing.T) {
			got := make(chan []byte, 4)
			target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				got <- b
			}))
			defer target.Close()
			fake, v, _ := setup(t, showapitest.Options{CallbackBare: bare}, showapi.Config{})
			for _, prompt := range []string{"a red fox", "an unsafe fox"} {
				j := drawJob(prompt)
				submit(t, v, j, target.URL+"/cb")
				fake.Finish(j.TaskID)
				var body []byte
				select {
				case body = <-got:
				case <-time.After(5 * time.Second):
					t.Fatal("no callback")
				}
				if strings.Contains(string(body), "showapi_res_body") == bare {
					t.Fatalf("bare=%v, body %s", bare, body)
				}
				out, err := v.ParseCallback(j, body)
				if err != nil {
					t.Fatal(err)
				}
				if out.TaskID != j.TaskID {
					t.Fatalf("task id %q, want %q", out.TaskID, j.TaskID)
				}
				switch prompt {
				case "a red fox":
					if out.State != engine.TaskDone || len(out.Images) != 1 || !strings.HasPrefix(out.Images[0].URL, fake.URL) {
						t.Fatalf("%+v", out)
					}
				default:
					if out.State != engine.TaskFailed || engine.ErrorCode(out.Err) != engine.EUNSAFE {
						t.Fatalf("%+v", out)
					}
				}
			}
		})
	}
	t.Run("Lenient", func(t *testing.T) {
		_, v, _ := setup(t, showapitest.Options{}, showapi.Config{})
		j := &engine.Job{TaskID: "T1"}
		for body, state := range map[string]engine.TaskState{
			`{"task_id":"T1","status":"finish","result_list":"http://x/1.png"}`:                               engine.TaskDone,
			`{"task_id":"T1","status":"waiting"}`:                                                             engine.TaskQueued,
			`task_id=T1&status=finish&result_list=http%3A%2F%2Fx%2F1.png`:                                     engine.TaskDone,
			`{"showapi_res_code":0,"showapi_res_body":{"task_id":"T1","status":"fail","cause":"图片涉黄，审核不通过"}}`: engine.TaskFailed,
		} {
			out, err := v.ParseCallback(j, []byte(body))
			if err != nil || out.State != state {
				t.Errorf("%s: %+v, %v", body, out, err)
			}
		}
		for _, body := range []string{``, `not json`, `{"task_id":"T1"}`, `{"task_id":"T1","status":"exploded"}`,
			`{"showapi_res_code":-1,"showapi_res_body":{"status":"finish"}}`, `{"ret_code":-1,"status":"finish"}`} {
			if out, err := v.ParseCallback(j, []byte(body)); err == nil {
				t.Errorf("%q read as %+v; want an error so the engine polls", body, out)
			}
		}
		ct, reply := v.CallbackReply()
		if !strings.HasPrefix(ct, "application/json") || !json.Valid(reply) {
			t.Errorf("reply %s %s", ct, reply)
		}
	})
}

func TestCallbackRetries(t *testing.T) {
	var mu sync.Mutex
	calls := 0
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls < 3 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
		}
	}))
	defer target.Close()
	fake, v, _ := setup(t, showapitest.Options{CallbackInterval: 10 * time.Millisecond, CallbackAttempts: 4}, showapi.Config{})
	j := drawJob("a red fox")
	submit(t, v, j, target.URL)
	fake.Finish(j.TaskID)
	deadline := time.Now().Add(5 * time.Second)
	for len(fake.Callbacks()) < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // a fourth attempt would come now
	cbs := fake.Callbacks()
	if len(cbs) != 3 || cbs[0].Status != 503 || cbs[2].Status != 200 {
		t.Fatalf("callbacks %+v, want 503, 503, 200 and no more", cbs)
	}
}

func TestCallbackOnTime(t *testing.T) {
	got := make(chan time.Time, 1)
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got <- time.Now() }))
	defer target.Close()
	_, v, _ := setup(t, showapitest.Options{Duration: 300 * time.Millisecond, Now: time.Now}, showapi.Config{})
	v.Now = time.Now
	start := time.Now()
	submit(t, v, drawJob("a red fox"), target.URL)
	select {
	case at := <-got:
		if d := at.Sub(start); d < 300*time.Millisecond {
			t.Fatalf("called back after %s, before the task's duration", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no callback")
	}
}

func TestCatalog(t *testing.T) {
	fake, v, clk := setup(t, showapitest.Options{}, showapi.Config{CatalogTTL: time.Hour})
	ctx := context.Background()
	entries, err := v.Catalog(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []engine.CatalogEntry{
		{Vendor: "showapi", Kind: engine.EntryModel, ID: "4zdwGOB", Name: "DreamShaper", Tags: []string{"anime", "landscapes"}, Cover: "http://showapi-pub-shanghai.oss-cn-shanghai.aliyuncs.com/api/3041/dreamshaper.png"},
		{Vendor: "showapi", Kind: engine.EntryLoRA, ID: "647944c3911a6fa8a2e2712b", Name: "Add More Details - Detail Enhancer", Cover: "http://showapi-pub-shanghai.oss-cn-shanghai.aliyuncs.com/api/3041/loras/AddMoreDetails-DetailEnhancer.png"},
	}
	a, _ := json.Marshal(entries)
	b, _ := json.Marshal(want)
	if string(a) != string(b) {
		t.Fatalf("catalog\n got %s\nwant %s", a, b)
	}
	v.Catalog(ctx)
	if n := fake.Calls("/models"); n != 1 {
		t.Fatalf("%d calls to /models within the TTL; each is billed", n)
	}
	clk.Add(2 * time.Hour)
	v.Catalog(ctx)
	if n := fake.Calls("/models"); n != 2 {
		t.Fatalf("%d calls to /models after the TTL, want 2", n)
	}
	fake.FailNext("/models", showapitest.FaultGateway)
	clk.Add(2 * time.Hour)
	if _, err := v.Catalog(ctx); err == nil {
		t.Fatal("a gateway failure gave a catalogue")
	}
}

func TestTaskList(t *testing.T) {
	fake, v, _ := setup(t, showapitest.Options{}, showapi.Config{})
	ctx := context.Background()
	var ids []string
	for i := range 6 {
		j := drawJob("fox " + string(rune('a'+i)))
		submit(t, v, j, "")
		ids = append(ids, j.TaskID)
	}
	p1, err := v.TaskList(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := p1.AllNum.Int(); n != 7 {
		t.Fatalf("allNum %q, want 7 (six and the document's)", p1.AllNum)
	}
	if n, _ := p1.AllPages.Int(); n != 2 || len(p1.Tasks) != 5 {
		t.Fatalf("page 1: allPages %q, %d tasks", p1.AllPages, len(p1.Tasks))
	}
	if p1.Tasks[0].TaskID != showapi.Text(ids[5]) || p1.Tasks[0].Status != "waiting" {
		t.Fatalf("newest first: %+v", p1.Tasks[0])
	}
	p2, err := v.TaskList(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(p2.Tasks) != 2 || p2.Tasks[1].TaskID != showapitest.SeedTaskID {
		t.Fatalf("page 2: %+v", p2.Tasks)
	}
	if r := fake.Requests(); r[len(r)-1].Query.Get("page") != "2" {
		t.Fatalf("query %v", r[len(r)-1].Query)
	}
}

func TestCheck(t *testing.T) {
	v, err := showapi.New(showapi.Config{AppCode: testCode}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ok := engine.Request{Kind: engine.KindDraw, Prompt: "x", Width: 512, Height: 768, Steps: 25, Guidance: 7, N: 1}
	if err := v.Check(&ok); err != nil {
		t.Fatalf("valid request refused: %v", err)
	}
	for name, change := range map[string]func(r *engine.Request){
		"Anime":     func(r *engine.Request) { r.Kind = engine.KindAnime },
		"Upscale":   func(r *engine.Request) { r.Kind = engine.KindUpscale },
		"Swapface":  func(r *engine.Request) { r.Kind = engine.KindSwapface },
		"Reference": func(r *engine.Request) { r.Inputs = []engine.Input{{Blob: "b"}} },
		"TooWide":   func(r *engine.Request) { r.Width = 1032 },
		"NotBy8":    func(r *engine.Request) { r.Height = 516 },
		"TooSmall":  func(r *engine.Request) { r.Width = 56 },
		"Batch":     func(r *engine.Request) { r.N = 5 },
		"Sampler":   func(r *engine.Request) { r.Sampler = "unipc" },
	} {
		r := ok
		change(&r)
		if err := v.Check(&r); engine.ErrorCode(err) != engine.EINVALID {
			t.Errorf("%s: %v, want EINVALID", name, err)
		}
	}
	for _, s := range []string{"euler", "Euler a", "DDIM", "dpmsolvermultistep", "k_euler"} {
		r := ok
		r.Sampler = s
		if err := v.Check(&r); err != nil {
			t.Errorf("sampler %q: %v", s, err)
		}
	}
	big, _ := showapi.New(showapi.Config{AppCode: testCode, MaxSide: 2048, SideMultiple: 64}, nil, nil)
	r := ok
	r.Width, r.Height = 1536, 1024
	if err := big.Check(&r); err != nil {
		t.Errorf("configured max_side 2048: %v", err)
	}
	r.Width = 1000
	if err := big.Check(&r); err == nil {
		t.Error("configured side_multiple 64 accepted 1000")
	}
}

func TestTiming(t *testing.T) {
	v, _ := showapi.New(showapi.Config{AppCode: testCode}, nil, nil)
	for _, tc := range []struct {
		w, h, steps, n int
		first          time.Duration
	}{
		{512, 512, 25, 1, 8 * time.Second},
		{1024, 1024, 25, 1, 32 * time.Second},
		{512, 512, 50, 1, 16 * time.Second},
		{512, 512, 25, 3, 16 * time.Second},
		{256, 256, 25, 1, 2 * time.Second},
		{64, 64, 5, 1, 2 * time.Second}, // a floor: a quarter of the typical time
	} {
		got := v.Timing(&engine.Request{Kind: engine.KindDraw, Width: tc.w, Height: tc.h, Steps: tc.steps, N: tc.n})
		if got.First != tc.first || got.Every != 3*time.Second || got.Max != 20*time.Second || !got.Billed {
			t.Errorf("%dx%d %d steps n=%d: %+v, want first %s", tc.w, tc.h, tc.steps, tc.n, got, tc.first)
		}
	}
	fast, _ := showapi.New(showapi.Config{AppCode: testCode, Typical: 2 * time.Second, PollEvery: 750 * time.Millisecond, PollMax: 5 * time.Second}, nil, nil)
	if got := fast.Timing(&engine.Request{Width: 512, Height: 512, Steps: 25, N: 1}); got.First != 2*time.Second || got.Every != 750*time.Millisecond || got.Max != 5*time.Second {
		t.Errorf("configured timing: %+v", got)
	}
}

func TestConfig(t *testing.T) {
	for _, tc := range []struct {
		cfg  showapi.Config
		keys []string
	}{
		{showapi.Config{}, []string{"app_code"}},
		{showapi.Config{AppKey: "k"}, []string{"app_code", "app_secret"}},
		{showapi.Config{AppSecret: "s"}, []string{"app_code", "app_key"}},
		{showapi.Config{AppCode: "c", BaseURL: "ftp://x", CreatePath: "createtask", CreateEncoding: "xml", MaxSide: 32, MinSide: 64, PollEvery: -1}, []string{"base_url", "create_path", "create_encoding", "max_side", "poll_every"}},
		{showapi.Config{AppCode: "c"}, nil},
		{showapi.Config{AppKey: "k", AppSecret: "s"}, nil},
	} {
		var got []string
		tc.cfg.Validate(func(key, format string, args ...any) { got = append(got, key) })
		if strings.Join(sorted(got), ",") != strings.Join(sorted(tc.keys), ",") {
			t.Errorf("%+v: keys %v, want %v", tc.cfg, got, tc.keys)
		}
		if _, err := showapi.New(tc.cfg, nil, nil); (err == nil) != (tc.keys == nil) {
			t.Errorf("%+v: New: %v", tc.cfg, err)
		}
	}
	v, _ := showapi.New(showapi.Config{AppCode: "c"}, nil, nil)
	if !v.WantsCallback() {
		t.Error("callbacks off by default")
	}
	off := false
	v, _ = showapi.New(showapi.Config{AppCode: "c", Callbacks: &off}, nil, nil)
	if v.WantsCallback() {
		t.Error("callbacks: false ignored")
	}
	var logs bytes.Buffer
	slog.New(slog.NewTextHandler(&logs, nil)).Info("cfg", slog.Any("showapi", showapi.Config{AppCode: "secret-code", AppSecret: "secret-sk"}))
	if strings.Contains(logs.String(), "secret-") {
		t.Errorf("a logged Config shows its secrets: %s", logs.String())
	}
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// FindTask finds a task whose creation's answer was lost in the fake's
// documented /yourtasklist, past a page of later tasks, and finds none for
// a job that made none.
func TestFindTask(t *testing.T) {
	for _, callback := range []string{"", "http://bot.example/callback/showapi/J1/tok"} {
		fake, v, clk := setup(t, showapitest.Options{}, showapi.Config{})
		ctx := context.Background()
		j := drawJob("a lost fox")
		j.Request.Seed = 123456
		j.Submitting = &engine.Submitting{Vendor: showapi.Name, TaskID: "J1-1", Attempt: 1, At: clk.Now()}
		task := engine.Task{ID: "J1-1", CallbackURL: callback}
		if _, found, err := v.FindTask(ctx, j, task); err != nil || found {
			t.Fatalf("before any creation: found %v, err %v", found, err)
		}
		id, err := v.Submit(ctx, j, task) // its answer is "lost": the id is not kept
		if err != nil {
			t.Fatal(err)
		}
		for i := range 6 { // later tasks push it to page 2; one differs only by seed
			other := drawJob("a lost fox")
			other.Request.Seed = int64(i)
			submit(t, v, other, "")
		}
		before := fake.Calls("/yourtasklist")
		got, found, err := v.FindTask(ctx, j, task)
		if err != nil || !found || got != id {
			t.Fatalf("callback %q: found %v id %q, want %q (err %v)", callback, found, got, id, err)
		}
		if n := fake.Calls("/yourtasklist") - before; n != 2 {
			t.Fatalf("%d list pages read, want 2", n)
		}
		stranger := drawJob("a lost fox")
		stranger.Request.Seed = 999
		stranger.Submitting = j.Submitting
		if _, found, err := v.FindTask(ctx, stranger, task); err != nil || found {
			t.Fatalf("a job with no task: found %v, err %v", found, err)
		}
		fake.FailNext("/yourtasklist", showapitest.Fault500)
		if _, _, err := v.FindTask(ctx, j, task); err == nil {
			t.Fatal("a failed list call gave an answer")
		}
	}
}

// Each call reports to the engine what the fake billed for it, read from
// the answer's showapi_fee_num: the document's answers bill 1, its "no
// such task" 0; what the document does not show follows the fake's
// choice and the adapter's unread_fee, set alike.
func TestBilledAsAnswered(t *testing.T) {
	for _, tc := range []struct {
		name       string
		opts       showapitest.Options
		cfg        showapi.Config
		prompt     string // of the job created first
		path       string // FailNext(path, fault)
		fault      showapitest.Fault
		call       string // create, query, list, find, models
		want       int
		queryAfter time.Duration
	}{
		{name: "Create", call: "create", want: 1},
		{name: "CreateRefused", prompt: "refuse fox", call: "create", want: 0},
		{name: "CreateRefusedBilled", opts: showapitest.Options{RefusalFee: 1}, prompt: "sensitive fox", call: "create", want: 1},
		{name: "Create500", path: "/createtask", fault: showapitest.Fault500, call: "create", want: 0},
		{name: "Create500Billed", opts: showapitest.Options{FaultFee: 1}, cfg: showapi.Config{UnreadFee: 1}, path: "/createtask", fault: showapitest.Fault500, call: "create", want: 1},
		{name: "CreateGatewayBilled", opts: showapitest.Options{FaultFee: 1}, path: "/createtask", fault: showapitest.FaultGateway, call: "create", want: 1},
		{name: "CreateNoCalls", opts: showapitest.Options{FaultFee: 1}, cfg: showapi.Config{UnreadFee: 1}, path: "/createtask", fault: showapitest.FaultQuota, call: "create", want: 0},
		{name: "CreateThrottled", opts: showapitest.Options{FaultFee: 1}, cfg: showapi.Config{UnreadFee: 1}, path: "/createtask", fault: showapitest.FaultThrottle, call: "create", want: 0},
		{name: "CreateTimeout", path: "/createtask", fault: showapitest.FaultTimeout, call: "create", want: 0}, // no answer: nothing to read
		{name: "QueryWaiting", call: "query", want: 1},
		{name: "QueryDone", call: "query", queryAfter: 10 * time.Second, want: 1},
		{name: "QueryForgotten", prompt: "forget fox", call: "query", want: 0},
		{name: "QueryBadJSON", prompt: "badjson fox", call: "query", want: 0},
		{name: "QueryBadJSONBilled", opts: showapitest.Options{FaultFee: 1}, cfg: showapi.Config{UnreadFee: 1}, prompt: "badjson fox", call: "query", want: 1},
		{name: "ListPage", call: "list", want: 1},
		{name: "FindFound", call: "find", want: 1},
		{name: "Models", call: "models", want: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake, v, clk := setup(t, tc.opts, tc.cfg)
			prompt := tc.prompt
			if prompt == "" {
				prompt = "a red fox"
			}
			j := drawJob(prompt)
			j.Submitting = &engine.Submitting{Vendor: showapi.Name, At: clk.Now()}
			if tc.call != "create" {
				submit(t, v, j, "")
			}
			clk.Add(tc.queryAfter)
			if tc.fault != 0 {
				fake.FailNext(tc.path, tc.fault)
			}
			before := fake.Billed()
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer cancel()
			ctx, reported := engine.Metered(ctx)
			switch tc.call {
			case "create":
				_, _ = v.Submit(ctx, j, engine.Task{})
			case "query":
				_, _ = v.Query(ctx, j)
			case "list":
				_, _ = v.TaskList(ctx, 1)
			case "find":
				if _, found, err := v.FindTask(ctx, j, engine.Task{}); !found || err != nil {
					t.Fatalf("found %v, err %v", found, err)
				}
			case "models":
				if _, err := v.Catalog(ctx); err != nil {
					t.Fatal(err)
				}
			}
			n, ok := reported()
			if !ok {
				t.Fatal("the adapter reported no bill")
			}
			if got := fake.Billed() - before; got != tc.want || n != got {
				t.Fatalf("the fake billed %d (want %d), the adapter reported %d", got, tc.want, n)
			}
		})
	}
}

// FindTask finds the lost task whichever way the list runs (the document
// does not say): newest first, or oldest first with the latest tasks on
// the last page; older tasks end the search, and a job with no task reads
// no more than it must.
func TestFindTaskListOrder(t *testing.T) {
	for _, tc := range []struct {
		oldestFirst bool
		order       string // list_order
		pages       int    // pages read to find it
	}{
		{false, "", 2}, {true, "", 3}, {false, "newest", 2}, {true, "oldest", 3},
	} {
		name := fmt.Sprintf("oldestFirst=%v/order=%q", tc.oldestFirst, tc.order)
		fake, v, clk := setup(t, showapitest.Options{ListOldestFirst: tc.oldestFirst, NoSeedTask: true}, showapi.Config{ListOrder: tc.order})
		ctx := context.Background()
		for i := range 12 { // an hour before: older than any submission looked for
			other := drawJob("an old fox")
			other.Request.Seed = int64(100 + i)
			submit(t, v, other, "")
			clk.Add(time.Second)
		}
		clk.Add(time.Hour)
		j := drawJob("a lost fox")
		j.Submitting = &engine.Submitting{Vendor: showapi.Name, TaskID: "J1-1", Attempt: 1, At: clk.Now()}
		task := engine.Task{ID: "J1-1"}
		id, err := v.Submit(ctx, j, task) // its answer is "lost"
		if err != nil {
			t.Fatal(err)
		}
		for i := range 6 {
			clk.Add(time.Second)
			other := drawJob("a later fox")
			other.Request.Seed = int64(i)
			submit(t, v, other, "")
		}
		before := fake.Calls("/yourtasklist")
		got, found, err := v.FindTask(ctx, j, task)
		if err != nil || !found || got != id {
			t.Fatalf("%s: found %v id %q, want %q (err %v)", name, found, got, id, err)
		}
		if n := fake.Calls("/yourtasklist") - before; n != tc.pages {
			t.Errorf("%s: %d pages read, want %d", name, n, tc.pages)
		}
		stranger := drawJob("a lost fox")
		stranger.Request.Seed = 999
		stranger.Submitting = j.Submitting
		before = fake.Calls("/yourtasklist")
		if _, found, err := v.FindTask(ctx, stranger, task); err != nil || found {
			t.Fatalf("%s: a job with no task: found %v, err %v", name, found, err)
		}
		if n := fake.Calls("/yourtasklist") - before; n > 4 {
			t.Errorf("%s: %d pages read for a job with no task, past find_pages", name, n)
		}
	}
}

// Searches under way together (the jobs a crash left uncertain, after the
// restart) share their reads of the list: six lost creations behind five
// later tasks cost the pages one search would read, not six times as many,
// and a finished task found answers its first poll without a call.
// Before the shared sweep: each search read its own pages (12 calls), and
// the poll asked /yourtaskresult.
func TestFindTaskShared(t *testing.T) {
	fake, v, clk := setup(t, showapitest.Options{NoSeedTask: true}, showapi.Config{FindGather: 200 * time.Millisecond})
	ctx := context.Background()
	var jobs []*engine.Job
	var ids []string
	for i := range 6 {
		j := drawJob("a lost fox")
		j.ID = fmt.Sprintf("J%d", i)
		j.Request.Seed = int64(1000 + i)
		j.Submitting = &engine.Submitting{Vendor: showapi.Name, TaskID: j.ID + "-1", Attempt: 1, At: clk.Now()}
		id, err := v.Submit(ctx, j, engine.Task{ID: j.ID + "-1"}) // its answer is "lost"
		if err != nil {
			t.Fatal(err)
		}
		jobs, ids = append(jobs, j), append(ids, id)
	}
	for i := range 5 {
		other := drawJob("a later fox")
		other.Request.Seed = int64(i)
		submit(t, v, other, "")
	}
	clk.Add(time.Minute) // every task finished
	before := fake.Calls("/yourtasklist")
	var wg sync.WaitGroup
	got := make([]string, len(jobs))
	errs := make([]error, len(jobs))
	for i, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id, found, err := v.FindTask(ctx, j, engine.Task{ID: j.ID + "-1"})
			if err == nil && !found {
				err = errors.New("not found")
			}
			got[i], errs[i] = id, err
		}()
	}
	wg.Wait()
	for i := range jobs {
		if errs[i] != nil || got[i] != ids[i] {
			t.Fatalf("job %d: found %q, want %q (err %v)", i, got[i], ids[i], errs[i])
		}
	}
	// Positions 6-11 of the list: pages 2 and 3, after page 1.
	if n := fake.Calls("/yourtasklist") - before; n != 3 {
		t.Errorf("%d list pages read for six searches, want 3", n)
	}
	j := jobs[0]
	j.TaskID = got[0]
	billed := fake.Billed()
	ctx2, reported := engine.Metered(ctx)
	out, err := v.Query(ctx2, j)
	if err != nil || out.State != engine.TaskDone || len(out.Images) == 0 {
		t.Fatalf("poll of the found task: %+v, %v", out, err)
	}
	if n := fake.Billed() - billed; n != 0 {
		t.Errorf("the found task's poll made %d billed calls, want 0 (its record was read with the list)", n)
	}
	if n, _ := reported(); n != 0 {
		t.Errorf("the poll reported %d billed calls, want 0", n)
	}
	// Answered once: the next poll asks the vendor.
	if _, err := v.Query(ctx, j); err != nil || fake.Billed()-billed != 1 {
		t.Errorf("the second poll: %v, %d billed calls", err, fake.Billed()-billed)
	}
}

// A search for a task that was never made ends at the first task older
// than the submission by the vendor's clock, which the page's Date header
// tells, not at find_pages: twenty tasks a minute before the submission
// (inside clock_skew) and two after cost one page, the first, which shows
// both and three of the twenty. Before: two (a page all older was
// wanted), and four before that (find_pages), every task within
// clock_skew counting as maybe the job's.
func TestFindTaskStopsAtOlderPage(t *testing.T) {
	fake, v, clk := setup(t, showapitest.Options{NoSeedTask: true}, showapi.Config{})
	ctx := context.Background()
	for i := range 20 {
		other := drawJob("an earlier fox")
		other.Request.Seed = int64(100 + i)
		submit(t, v, other, "")
	}
	clk.Add(time.Minute)
	j := drawJob("a lost fox")
	j.Submitting = &engine.Submitting{Vendor: showapi.Name, TaskID: "J1-1", Attempt: 1, At: clk.Now()}
	clk.Add(time.Second) // the submission never arrived; two later tasks did
	for i := range 2 {
		other := drawJob("a later fox")
		other.Request.Seed = int64(i)
		submit(t, v, other, "")
	}
	before := fake.Calls("/yourtasklist")
	if _, found, err := v.FindTask(ctx, j, engine.Task{ID: "J1-1"}); err != nil || found {
		t.Fatalf("found %v, err %v", found, err)
	}
	if n := fake.Calls("/yourtasklist") - before; n != 1 {
		t.Errorf("%d list pages read, want 1 (it shows tasks older than the submission)", n)
	}
}

// A lost creation behind more tasks than find_pages pages hold is found
// when the pages' times (by the Date header's clock) show a page read
// wholly newer than the submission: the search goes to the page where the
// submission's time lies, estimated from the times read, within
// find_deep_pages, found or not. Before: pages 1 to 4 in order, all newer,
// and the job was sent again (crash suite, ShowAPI: five restarts made
// 20-odd tasks while a lost creation waited).
func TestFindTaskDeep(t *testing.T) {
	for _, tc := range []struct {
		name   string
		lost   int  // lost creations at the submission's time
		never  bool // the creation never reached the vendor
		bursts bool // the later tasks come seven at a time, two seconds apart
		nojump bool // find_jump: false
		oldest bool // the list starts with the oldest tasks
		pages  int  // at most
	}{
		{name: "Even", lost: 1, pages: 2},
		{name: "Bursts", lost: 1, bursts: true, pages: 5},
		{name: "Shared", lost: 6, pages: 3},
		{name: "NeverMade", never: true, pages: 8},             // find_deep_pages
		{name: "NoJump", lost: 1, nojump: true, pages: 8},      // pages 1-8 in order: the task is on page 9
		{name: "OldestFirst", lost: 1, oldest: true, pages: 4}, // page 1 tells the order
		{name: "OldestFirstNoJump", lost: 1, oldest: true, nojump: true, pages: 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := showapi.Config{}
			if tc.nojump {
				no := false
				cfg.FindJump = &no
			}
			if tc.lost > 1 {
				cfg.FindGather = 200 * time.Millisecond
			}
			fake, v, clk := setup(t, showapitest.Options{NoSeedTask: true, ListOldestFirst: tc.oldest}, cfg)
			ctx := context.Background()
			for i := range 20 { // an hour before: older than any submission looked for
				other := drawJob("an old fox")
				other.Request.Seed = int64(100 + i)
				submit(t, v, other, "")
				clk.Add(time.Second)
			}
			clk.Add(time.Hour)
			var jobs []*engine.Job
			var ids []string
			for i := range max(tc.lost, 1) {
				j := drawJob("a lost fox")
				j.ID = fmt.Sprintf("J%d", i)
				j.Request.Seed = int64(1000 + i)
				j.Submitting = &engine.Submitting{Vendor: showapi.Name, TaskID: j.ID + "-1", Attempt: 1, At: clk.Now()}
				jobs = append(jobs, j)
				if tc.never {
					continue
				}
				id, err := v.Submit(ctx, j, engine.Task{ID: j.ID + "-1"}) // its answer is "lost"
				if err != nil {
					t.Fatal(err)
				}
				ids = append(ids, id)
			}
			for i := range 42 {
				if !tc.bursts {
					clk.Add(200 * time.Millisecond)
				} else if i%7 == 0 {
					clk.Add(2 * time.Second)
				}
				other := drawJob("a later fox")
				other.Request.Seed = int64(i)
				submit(t, v, other, "")
			}
			clk.Add(time.Second)
			before := fake.Calls("/yourtasklist")
			var wg sync.WaitGroup
			got := make([]string, len(jobs))
			found := make([]bool, len(jobs))
			errs := make([]error, len(jobs))
			for i, j := range jobs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					got[i], found[i], errs[i] = v.FindTask(ctx, j, engine.Task{ID: j.ID + "-1"})
				}()
			}
			wg.Wait()
			n := fake.Calls("/yourtasklist") - before
			for i := range jobs {
				switch {
				case errs[i] != nil:
					t.Fatalf("job %d: %v", i, errs[i])
				case tc.never && found[i]:
					t.Fatalf("job %d: found %q, never made", i, got[i])
				case tc.never:
				case tc.nojump && found[i]:
					t.Fatalf("job %d: found %q in %d pages read in order: it is on page 9", i, got[i], n)
				case !tc.nojump && (!found[i] || got[i] != ids[i]):
					t.Fatalf("job %d: found %v %q, want %q (%d pages read)", i, found[i], got[i], ids[i], n)
				}
			}
			if n > tc.pages {
				t.Errorf("%d pages read, want at most %d", n, tc.pages)
			}
			t.Logf("%d pages read", n)
		})
	}
}
