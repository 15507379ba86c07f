package zhiqitetest_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/picbot/picbot/engine/zhiqite/zhiqitetest"
)

// The fake must accept what the seed document shows and refuse what it
// forbids: these tests send it the document's own example requests.

const code = "fake-code"

func post(t *testing.T, f *zhiqitetest.Server, endpoint string, body any, header map[string]string) (int, http.Header, map[string]any) {
	t.Helper()
	var raw []byte
	switch b := body.(type) {
	case []byte:
		raw = b
	default:
		raw, _ = json.Marshal(b)
	}
	req, _ := http.NewRequest(http.MethodPost, f.URL+endpoint, bytes.NewReader(raw))
	req.Header.Set("Content-Type", "application/json;charset=UTF-8")
	req.Header.Set("Authorization", "APPCODE "+code)
	for k, v := range header {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(data, &out); err != nil {
			t.Fatalf("%s: reply is not JSON: %s", endpoint, data)
		}
	}
	return resp.StatusCode, resp.Header, out
}

func example(t *testing.T, name string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestSeedRequestsAccepted(t *testing.T) {
	f := zhiqitetest.New(zhiqitetest.Options{AppCode: code, Duration: 500 * time.Millisecond})
	defer f.Close()

	t2i := example(t, "text2image_request.json")
	delete(t2i, "callbackUrl") // the example's callback address is not ours to call
	status, _, out := post(t, f, "saas/sd/v2/text2image", t2i, nil)
	if status != http.StatusOK || out["code"] != "200" || out["data"].(map[string]any)["task_id"] != "pro1686666" {
		t.Fatalf("text2image example: %d %v", status, out)
	}
	// The task moves on: queued, then running with a preview, then done.
	seen := map[float64]bool{}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && !seen[2] {
		_, _, out := post(t, f, "saas/sd/v2/queryTaskInfo", map[string]any{"businessTaskId": "pro1686666"}, nil)
		d := out["data"].(map[string]any)
		seen[d["status"].(float64)] = true
		if d["status"] == 1.0 {
			tmp := d["temporaryImageDto"].(map[string]any)
			if _, ok := tmp["progress"].(string); !ok || tmp["currentImage"] == "" {
				t.Fatalf("running without progress or preview: %v", d)
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !seen[3] || !seen[1] || !seen[2] {
		t.Fatalf("statuses seen %v", seen)
	}
	// The same with the document's other spelling of the scripts object.
	t2i["always_on_scripts"] = t2i["alwayson_scripts"]
	delete(t2i, "alwayson_scripts")
	t2i["always_on_scripts"].(map[string]any)["id_task"] = "pro2"
	if _, _, out := post(t, f, "saas/sd/v2/text2image", t2i, nil); out["code"] != "200" {
		t.Fatalf("always_on_scripts: %v", out)
	}
	// Reusing an id is refused.
	if _, _, out := post(t, f, "saas/sd/v2/text2image", t2i, nil); out["code"] != "400" {
		t.Fatalf("duplicate id: %v", out)
	}
	// The examples' image links are not on loopback: the fake will not fetch them.
	for _, ex := range []struct{ endpoint, file string }{
		{"saas/sd/v2/image2image", "image2image_request.json"},
		{"saas/tool/roop", "roop_request.json"},
		{"saas/tool/enhance", "enhance_request.json"},
	} {
		if _, _, out := post(t, f, ex.endpoint, example(t, ex.file), nil); out["code"] != "400" || !strings.Contains(out["msg"].(string), "图片下载失败") {
			t.Errorf("%s: %v", ex.endpoint, out)
		}
	}
	for _, ex := range []struct{ endpoint, file string }{
		{"saas/sd/v2/queryModelList", "queryModelList_request.json"},
		{"saas/sd/v2/queryLoraList", "queryModelList_request.json"},
		{"saas/sd/v2/queryVaeList", "queryVaeList_request.json"},
		{"saas/sd/v2/queryEmbeddingList", "queryModelList_request.json"},
	} {
		_, _, out := post(t, f, ex.endpoint, example(t, ex.file), nil)
		data, _ := out["data"].(map[string]any)
		if out["code"] != "200" || data == nil || len(data["rows"].([]any)) == 0 || data["total"] == nil {
			t.Errorf("%s: %v", ex.endpoint, out)
		}
	}
	if _, _, out := post(t, f, "saas/sd/v2/queryTaskInfo", example(t, "queryTaskInfo_request.json"), nil); out["code"] != "400" {
		t.Errorf("unknown task: %v", out)
	}
	if got := f.BilledFor("pro1686666"); got < 4 {
		t.Errorf("billed for the task: %d", got)
	}
}

func TestSeedRulesEnforced(t *testing.T) {
	f := zhiqitetest.New(zhiqitetest.Options{AppCode: code})
	defer f.Close()
	base := func(id string) map[string]any {
		m := example(t, "text2image_request.json")
		delete(m, "callbackUrl")
		m["alwayson_scripts"].(map[string]any)["id_task"] = id
		return m
	}
	for name, mod := range map[string]func(m map[string]any){
		"Width1032": func(m map[string]any) { m["width"] = 1032 },
		"Height500": func(m map[string]any) { m["height"] = 500 },
		"Cfg31":     func(m map[string]any) { m["cfg_scale"] = 31 },
		"Sampler":   func(m map[string]any) { m["sampler_index"] = "DDIM" },
		"NoPrompt":  func(m map[string]any) { delete(m, "prompt") },
		"NoModel":   func(m map[string]any) { delete(m["alwayson_scripts"].(map[string]any), "sd_model_checkpoint") },
		"OfflineModel": func(m map[string]any) {
			m["alwayson_scripts"].(map[string]any)["sd_model_checkpoint"] = "fake_model_10.safetensors"
		},
		"NoIDTask":    func(m map[string]any) { delete(m["alwayson_scripts"].(map[string]any), "id_task") },
		"UnknownLoRA": func(m map[string]any) { m["prompt"] = "x <lora:nope:1>" },
		"Sensitive":   func(m map[string]any) { m["prompt"] = "something sensitive" },
	} {
		m := base(name)
		mod(m)
		if status, _, out := post(t, f, "saas/sd/v2/text2image", m, nil); status != http.StatusOK || out["code"] != "400" {
			t.Errorf("%s: %d %v", name, status, out)
		}
	}
	m := base("lora-ok")
	m["prompt"] = "x <lora:hayasaka_ai_v10_26390:0.8>"
	if _, _, out := post(t, f, "saas/sd/v2/text2image", m, nil); out["code"] != "200" {
		t.Errorf("known LoRA: %v", out)
	}
	if _, _, out := post(t, f, "saas/sd/v2/text2image", base("ct"), map[string]string{"Content-Type": "application/json"}); out["code"] != "400" {
		t.Errorf("Content-Type without charset: %v", out)
	}
	if status, h, _ := post(t, f, "saas/sd/v2/text2image", base("auth"), map[string]string{"Authorization": "APPCODE wrong"}); status != http.StatusUnauthorized || h.Get("X-Ca-Error-Message") == "" {
		t.Errorf("wrong app code: %d", status)
	}
	if status, _, _ := post(t, f, "saas/sd/v2/text2image", base("none"), map[string]string{"Authorization": ""}); status != http.StatusUnauthorized {
		t.Errorf("no auth: %d", status)
	}
	f.SetQuota(0)
	if status, h, _ := post(t, f, "saas/sd/v2/text2image", base("q"), nil); status != http.StatusForbidden || h.Get("X-Ca-Error-Message") != "Quota Exhausted" {
		t.Errorf("quota: %d %q", status, h.Get("X-Ca-Error-Message"))
	}
}

// The vendor retries a callback until the reply has code 200.
func TestCallbackRetries(t *testing.T) {
	var mu sync.Mutex
	var times []time.Time
	var bodies [][]byte
	cb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		times = append(times, time.Now())
		bodies = append(bodies, b)
		switch len(times) {
		case 1:
			http.Error(w, "down", http.StatusBadGateway)
		case 2:
			io.WriteString(w, `{"code":"500"}`)
		default:
			io.WriteString(w, `{"code":"200"}`)
		}
	}))
	defer cb.Close()
	delays := []time.Duration{30 * time.Millisecond, 80 * time.Millisecond}
	f := zhiqitetest.New(zhiqitetest.Options{AppCode: code, Duration: 100 * time.Millisecond, CallbackDelays: delays})
	defer f.Close()
	m := example(t, "text2image_request.json")
	m["callbackUrl"] = cb.URL
	m["alwayson_scripts"].(map[string]any)["id_task"] = "cb-1"
	if _, _, out := post(t, f, "saas/sd/v2/text2image", m, nil); out["code"] != "200" {
		t.Fatal(out)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if n, ok := f.CallbackAttempts("cb-1"); ok {
			if n != 3 {
				t.Fatalf("%d attempts, want 3", n)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("callback never acknowledged")
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	for i, d := range delays {
		if gap := times[i+1].Sub(times[i]); gap < d {
			t.Errorf("retry %d after %s, want at least %s", i+1, gap, d)
		}
	}
	var got struct {
		Code string `json:"code"`
		Data struct {
			IDTask string `json:"id_task"`
			Status int    `json:"status"`
			Images []struct {
				URL string `json:"image_url"`
			} `json:"differentialImageRspList"`
		} `json:"data"`
	}
	if err := json.Unmarshal(bodies[2], &got); err != nil || got.Data.IDTask != "cb-1" || got.Data.Status != 2 || len(got.Data.Images) != 1 {
		t.Fatalf("callback body %s (%v)", bodies[2], err)
	}
	if f.BilledFor("cb-1") != 1 {
		t.Errorf("callbacks are not billed calls: %d", f.BilledFor("cb-1"))
	}
}
