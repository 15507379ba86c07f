package zhiqite_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/picbot/picbot/engine"
	"github.com/picbot/picbot/engine/zhiqite"
)

// These tests replay the seed document's own example replies and hold the
// adapter's requests against its example requests.

// replay answers each endpoint with testdata/<name>_reply.json and records the requests.
type replay struct {
	*httptest.Server
	mu    sync.Mutex
	calls []replayCall
}

type replayCall struct {
	Endpoint string
	Header   http.Header
	Body     map[string]any
}

func newReplay(t *testing.T, files map[string]string) *replay {
	t.Helper()
	rp := &replay{}
	rp.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		endpoint := strings.TrimPrefix(r.URL.Path, "/AIGCImgOpenServ/")
		raw, _ := io.ReadAll(r.Body)
		var body map[string]any
		if err := json.Unmarshal(raw, &body); err != nil {
			t.Errorf("%s: body is not a JSON object: %s", endpoint, raw)
		}
		rp.mu.Lock()
		rp.calls = append(rp.calls, replayCall{endpoint, r.Header.Clone(), body})
		rp.mu.Unlock()
		name, ok := files[endpoint]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(readFile(t, name))
	}))
	t.Cleanup(rp.Close)
	return rp
}

func (rp *replay) taken() []replayCall {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	return append([]replayCall(nil), rp.calls...)
}

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func readJSON(t *testing.T, name string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(readFile(t, name), &m); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return m
}

func replayVendor(t *testing.T, rp *replay, mod func(*zhiqite.Config)) *zhiqite.Vendor {
	t.Helper()
	cfg := zhiqite.Config{BaseURL: rp.URL + "/AIGCImgOpenServ/", AppCode: "code", InputURLs: true}
	if mod != nil {
		mod(&cfg)
	}
	v, err := zhiqite.New(cfg, rp.Client(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// conforms checks that every key of got is in the seed's example (or in
// documented, for keys the table has and the example lacks) with the
// example's JSON type, recursively.
func conforms(t *testing.T, where string, got, example map[string]any, documented ...string) {
	t.Helper()
	for k, gv := range got {
		ev, ok := example[k]
		if !ok {
			if !slices.Contains(documented, k) {
				t.Errorf("%s: %q is not in the seed's example", where, k)
			}
			continue
		}
		if jsonType(gv) != jsonType(ev) {
			t.Errorf("%s: %q is a %s, the seed's example has a %s", where, k, jsonType(gv), jsonType(ev))
			continue
		}
		if gm, ok := gv.(map[string]any); ok {
			conforms(t, where+"."+k, gm, ev.(map[string]any), documented...)
		}
	}
}

func jsonType(v any) string {
	switch v.(type) {
	case string:
		return "string"
	case float64:
		return "number"
	case bool:
		return "bool"
	case map[string]any:
		return "object"
	case []any:
		return "array"
	}
	return "null"
}

func checkHeaders(t *testing.T, c replayCall) {
	t.Helper()
	if got := c.Header.Get("Content-Type"); got != "application/json;charset=UTF-8" {
		t.Errorf("%s: Content-Type %q", c.Endpoint, got)
	}
	if got := c.Header.Get("Authorization"); got != "APPCODE code" {
		t.Errorf("%s: Authorization %q", c.Endpoint, got)
	}
}

func drawJob(id string) *engine.Job {
	return &engine.Job{ID: "job", TaskID: id, Request: engine.Request{
		Kind: engine.KindDraw, Prompt: "a red fox", Negative: "blurry", Width: 768, Height: 512,
		Steps: 30, Seed: 42, Guidance: 7.5, N: 2, Sampler: "dpm++_2m_karras", LoRA: "hayasaka_ai_v10_26390:0.8",
	}}
}

func TestSeedText2Image(t *testing.T) {
	rp := newReplay(t, map[string]string{"saas/sd/v2/text2image": "submit_reply.json"})
	v := replayVendor(t, rp, func(c *zhiqite.Config) { c.VAE = "vae-ft-mse-840000-ema-pruned.ckpt"; c.OutputFormat = "png" })
	id, err := v.Submit(context.Background(), drawJob(""), engine.Task{ID: "pro1686666", CallbackURL: "http://127.0.0.1:8087/cb"})
	if err != nil {
		t.Fatal(err)
	}
	// The seed's reply names the task pro1686666, the id_task we chose.
	if id != "pro1686666" {
		t.Fatalf("task id %q", id)
	}
	calls := rp.taken()
	if len(calls) != 1 || calls[0].Endpoint != "saas/sd/v2/text2image" {
		t.Fatalf("calls %+v", calls)
	}
	checkHeaders(t, calls[0])
	body := calls[0].Body
	// batch_size and output_image_format are in the table, not the example.
	conforms(t, "text2image", body, readJSON(t, "text2image_request.json"), "batch_size", "output_image_format")
	want := map[string]any{
		"prompt": "a red fox, <lora:hayasaka_ai_v10_26390:0.8>", "negative_prompt": "blurry",
		"width": 768.0, "height": 512.0, "steps": 30.0, "seed": "42", "cfg_scale": 7.5,
		"sampler_index": "DPM++ 2M Karras", "n_iter": 1.0, "batch_size": 2.0, "callbackUrl": "http://127.0.0.1:8087/cb",
	}
	for k, w := range want {
		if body[k] != w {
			t.Errorf("%s = %#v, want %#v", k, body[k], w)
		}
	}
	sc := body["alwayson_scripts"].(map[string]any)
	for k, w := range map[string]any{
		"id_task": "pro1686666", "sd_model_checkpoint": zhiqite.DefaultModel,
		"sd_vae": "vae-ft-mse-840000-ema-pruned.ckpt", "output_image_format": "png",
	} {
		if sc[k] != w {
			t.Errorf("alwayson_scripts.%s = %#v, want %#v", k, sc[k], w)
		}
	}
	if _, ok := body["image_link"]; ok {
		t.Error("text2image sent image_link")
	}
}

func TestSeedImage2Image(t *testing.T) {
	rp := newReplay(t, map[string]string{"saas/sd/v2/image2image": "submit_reply.json"})
	v := replayVendor(t, rp, nil)
	j := drawJob("")
	j.Request.LoRA, j.Request.N = "", 1
	j.Request.Inputs = []engine.Input{{Blob: "b", Width: 512, Height: 512}}
	link := "http://127.0.0.1:9/input/job/token/0"
	if _, err := v.Submit(context.Background(), j, engine.Task{ID: "pro1686666", InputURLs: []string{link}}); err != nil {
		t.Fatal(err)
	}
	body := rp.taken()[0].Body
	conforms(t, "image2image", body, readJSON(t, "image2image_request.json"), "batch_size", "resize_mode")
	sc := body["alwayson_scripts"].(map[string]any)
	if sc["image_link"] != link {
		t.Errorf("image_link %v", sc["image_link"])
	}
	if body["denoising_strength"] != zhiqite.DefaultDenoising {
		t.Errorf("denoising_strength %v", body["denoising_strength"])
	}
	if _, ok := body["callbackUrl"]; ok {
		t.Error("callbackUrl sent without a callback URL")
	}
}

func TestSeedTools(t *testing.T) {
	rp := newReplay(t, map[string]string{"saas/tool/roop": "roop_reply.json", "saas/tool/enhance": "enhance_reply.json"})
	v := replayVendor(t, rp, nil)
	ctx := context.Background()
	face, target := "http://127.0.0.1:9/input/j/t/0", "http://127.0.0.1:9/input/j/t/1"
	swap := &engine.Job{Request: engine.Request{Kind: engine.KindSwapface, N: 1, Inputs: []engine.Input{{Blob: "a"}, {Blob: "b"}}}}
	// The roop example's reply already shows status 1 and a link; the task id is still ours.
	id, err := v.Submit(ctx, swap, engine.Task{ID: "111612", InputURLs: []string{face, target}, CallbackURL: "http://127.0.0.1:9/cb"})
	if err != nil || id != "111612" {
		t.Fatalf("roop: %q %v", id, err)
	}
	up := &engine.Job{Request: engine.Request{Kind: engine.KindUpscale, N: 1, Scale: 3, Inputs: []engine.Input{{Blob: "a", Width: 512, Height: 512}}}}
	if id, err := v.Submit(ctx, up, engine.Task{ID: "100846412", InputURLs: []string{face}}); err != nil || id != "100846412" {
		t.Fatalf("enhance: %q %v", id, err)
	}
	calls := rp.taken()
	checkHeaders(t, calls[0])
	// roop's table has no callbackUrl, but the document's preamble offers callbacks for the whole API.
	conforms(t, "roop", calls[0].Body, readJSON(t, "roop_request.json"), "callbackUrl")
	if calls[0].Body["sourceUrl"] != face || calls[0].Body["targetUrl"] != target || calls[0].Body["businessTaskId"] != "111612" {
		t.Errorf("roop body %v", calls[0].Body)
	}
	conforms(t, "enhance", calls[1].Body, readJSON(t, "enhance_request.json"), "callbackUrl")
	for k, w := range map[string]any{"image": face, "businessTaskId": "100846412", "resizeMode": 0.0, "upscalingResize": 3.0, "upscaler1": "ESRGAN_4x"} {
		if calls[1].Body[k] != w {
			t.Errorf("enhance %s = %#v, want %#v", k, calls[1].Body[k], w)
		}
	}
}

func TestSeedQueryTaskInfo(t *testing.T) {
	rp := newReplay(t, map[string]string{"saas/sd/v2/queryTaskInfo": "queryTaskInfo_reply.json"})
	v := replayVendor(t, rp, nil)
	out, err := v.Query(context.Background(), drawJob("test10086555513"))
	if err != nil {
		t.Fatal(err)
	}
	if out.State != engine.TaskDone || len(out.Images) != 1 || out.Dropped != 0 || out.Progress != 1 {
		t.Fatalf("outcome %+v", out)
	}
	img := out.Images[0]
	if !strings.HasSuffix(img.URL, "1e682ad6-5b5c-470b-86c7-c88abdba6d00-0.png") || img.Seed != 1063029203 {
		t.Fatalf("image %+v", img)
	}
	c := rp.taken()[0]
	checkHeaders(t, c)
	conforms(t, "queryTaskInfo", c.Body, readJSON(t, "queryTaskInfo_request.json"))
	if c.Body["businessTaskId"] != "test10086555513" {
		t.Fatalf("body %v", c.Body)
	}
}

func TestSeedQueryTask(t *testing.T) {
	for _, kind := range []engine.Kind{engine.KindSwapface, engine.KindUpscale} {
		tool := map[engine.Kind]string{engine.KindSwapface: "roop", engine.KindUpscale: "enhance"}[kind]
		rp := newReplay(t, map[string]string{"saas/tool/" + tool + "/queryTask": "queryTask_reply.json"})
		v := replayVendor(t, rp, nil)
		out, err := v.Query(context.Background(), &engine.Job{TaskID: "100869960120240603", Request: engine.Request{Kind: kind}})
		if err != nil {
			t.Fatalf("%s: %v", tool, err)
		}
		// The example: status 2 with a link, which is success whatever the tables say.
		if out.State != engine.TaskDone || len(out.Images) != 1 || !strings.HasSuffix(out.Images[0].URL, "pro1703734845555845969817.png") {
			t.Fatalf("%s: outcome %+v", tool, out)
		}
		c := rp.taken()[0]
		conforms(t, "queryTask", c.Body, readJSON(t, "queryTask_request.json"))
	}
}

func TestSeedCatalog(t *testing.T) {
	rp := newReplay(t, map[string]string{
		"saas/sd/v2/queryModelList": "queryModelList_reply.json", "saas/sd/v2/queryLoraList": "queryLoraList_reply.json",
		"saas/sd/v2/queryVaeList": "queryVaeList_reply.json", "saas/sd/v2/queryEmbeddingList": "queryEmbeddingList_reply.json",
	})
	v := replayVendor(t, rp, nil)
	entries, err := v.Catalog(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	byKind := map[string][]engine.CatalogEntry{}
	for _, e := range entries {
		if e.Vendor != zhiqite.Name {
			t.Errorf("entry %+v: vendor", e)
		}
		byKind[e.Kind] = append(byKind[e.Kind], e)
	}
	models := readJSON(t, "queryModelList_reply.json")["data"].(map[string]any)["rows"].([]any)
	m := models[0].(map[string]any)
	if got := byKind[engine.EntryModel]; len(got) != 1 || got[0].ID != m["sdModelCheckpoint"] || got[0].Name != m["sdModelName"] ||
		got[0].Base != m["modelBaseModel"] || got[0].Cover != m["modelCoverImgUrl2"] || got[0].Adult {
		t.Errorf("models %+v", got)
	}
	loras := readJSON(t, "queryLoraList_reply.json")["data"].(map[string]any)["rows"].([]any)
	l := loras[0].(map[string]any)
	if got := byKind[engine.EntryLoRA]; len(got) != 1 || got[0].ID != l["sdLoraFileSimplifyName"] ||
		got[0].Name != strings.TrimSpace(l["sdLoraName"].(string)) || got[0].Cover != l["loraCoverImgUrl2"] {
		t.Errorf("loras %+v", got)
	}
	if got := byKind[engine.EntryVAE]; len(got) != 1 || got[0].ID != "k1F8Anime2_k1F8Anime2VAE.ckpt" {
		t.Errorf("vaes %+v", got)
	}
	embs := readJSON(t, "queryEmbeddingList_reply.json")["data"].(map[string]any)["rows"].([]any)
	var wantEmb, gotEmb []string
	for _, e := range embs {
		wantEmb = append(wantEmb, e.(map[string]any)["embeddingSimplifyName"].(string))
	}
	for _, e := range byKind[engine.EntryEmbedding] {
		gotEmb = append(gotEmb, e.ID)
	}
	sort.Strings(wantEmb)
	sort.Strings(gotEmb)
	if !slices.Equal(gotEmb, wantEmb) {
		t.Errorf("embeddings %v, want %v", gotEmb, wantEmb)
	}
	// One page each: the examples' totals are reached at once.
	calls := rp.taken()
	if len(calls) != 4 {
		t.Fatalf("%d calls, want 4", len(calls))
	}
	for _, c := range calls {
		checkHeaders(t, c)
		example := readJSON(t, "queryModelList_request.json")
		if c.Endpoint == "saas/sd/v2/queryVaeList" {
			example = readJSON(t, "queryVaeList_request.json")
		}
		conforms(t, c.Endpoint, c.Body, example)
		if c.Body["pageNum"] != 1.0 {
			t.Errorf("%s: pageNum %v", c.Endpoint, c.Body["pageNum"])
		}
	}
}
