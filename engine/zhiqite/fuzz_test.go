package zhiqite_test

import (
	"bytes"
	"context"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/picbot/picbot/engine"
	"github.com/picbot/picbot/engine/zhiqite"
)

// The fuzzers feed the adapter's decoders what a vendor, a broken gateway
// or anyone who can reach the callback URL might send. They must never
// panic, and must return either an outcome the engine can act on or an
// error, never both and never neither. Corpora: testdata/fuzz/<FuzzName>.

// fuzzSecret is the app code; no user-visible message may hold it.
const fuzzSecret = "fuzz-SECRET-appcode-7e1a"

// replyTransport answers every call with one status and body, so the
// adapter's real HTTP path runs without a network.
type replyTransport struct {
	status int
	body   []byte
}

func (rt replyTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		req.Body.Close()
	}
	return &http.Response{
		StatusCode: rt.status, Status: http.StatusText(rt.status), Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:  http.Header{"Content-Type": {"application/json;charset=UTF-8"}, "X-Ca-Error-Message": {"Quota Exhausted"}},
		Body:    io.NopCloser(bytes.NewReader(rt.body)),
		Request: req, ContentLength: int64(len(rt.body)),
	}, nil
}

// fuzzStatuses are the HTTP statuses a fuzz case picks from.
var fuzzStatuses = []int{http.StatusOK, http.StatusOK, http.StatusForbidden, http.StatusInternalServerError, http.StatusBadGateway}

func fuzzVendor(t *testing.T, status int, body []byte) *zhiqite.Vendor {
	t.Helper()
	cfg := zhiqite.Config{BaseURL: "http://zhiqite.invalid/AIGCImgOpenServ/", AppCode: fuzzSecret, InputURLs: true}
	v, err := zhiqite.New(cfg, &http.Client{Transport: replyTransport{status, body}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// fuzzJob is a job whose task the vendor holds: /draw, or /upscale (a tool).
func fuzzJob(tool bool) *engine.Job {
	r := engine.Request{Kind: engine.KindDraw, Prompt: "a red fox", Seed: 7}
	if tool {
		r = engine.Request{Kind: engine.KindUpscale, Scale: 2, Inputs: []engine.Input{{Blob: "b", Width: 64, Height: 64}}}
	}
	r.Normalize()
	return &engine.Job{ID: "fuzzjob1", Request: r, TaskID: "fuzzjob1-1", Vendor: zhiqite.Name}
}

// addSeeds adds each testdata file as a seed, with every other argument.
func addSeeds(f *testing.F, files []string, args ...any) {
	f.Helper()
	for _, name := range files {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(append([]any{b}, args...)...)
	}
}

// checkOutcome is what the engine relies on in a vendor's answer.
func checkOutcome(t *testing.T, out *engine.Outcome, err error) {
	t.Helper()
	if (out == nil) == (err == nil) {
		t.Fatalf("outcome %+v and error %v: want exactly one", out, err)
	}
	if err != nil {
		checkMessage(t, err)
		return
	}
	if out.State < engine.TaskQueued || out.State > engine.TaskFailed {
		t.Fatalf("state %d", out.State)
	}
	if p := out.Progress; math.IsNaN(p) || (p != -1 && (p < 0 || p > 1)) {
		t.Fatalf("progress %v: want -1 or within [0, 1]", p)
	}
	if out.State == engine.TaskFailed {
		if out.Err == nil {
			t.Fatal("a failed task without an error")
		}
		checkMessage(t, out.Err)
	}
	if out.Dropped < 0 {
		t.Fatalf("dropped %d", out.Dropped)
	}
	for _, im := range out.Images {
		if strings.TrimSpace(im.URL) == "" && len(im.Data) == 0 {
			t.Fatalf("an image with neither link nor data: %+v", out.Images)
		}
	}
}

// checkMessage: what a user may be shown never holds the secret.
func checkMessage(t *testing.T, err error) {
	t.Helper()
	e := engine.AsError(err)
	if strings.Contains(e.EN+e.ZH, fuzzSecret) {
		t.Fatalf("the app code in a user message: %q", e.EN)
	}
}

func FuzzParseCallback(f *testing.F) {
	addSeeds(f, []string{"queryTaskInfo_reply.json", "queryTask_reply.json", "submit_reply.json"}, false)
	addSeeds(f, []string{"queryTask_reply.json", "enhance_reply.json", "roop_reply.json"}, true)
	f.Add([]byte(`{"code":"200","data":"{\"id_task\":\"fuzzjob1-1\",\"status\":1,\"temporaryImageDto\":{\"progress\":\"NaN\",\"currentImage\":\"data:,AAAA\"}}"}`), false)
	f.Add([]byte(`[{"data":{"businessTaskId":"fuzzjob1-1","status":"2","outputImageUrl":" "}}]`), true)
	f.Fuzz(func(t *testing.T, body []byte, tool bool) {
		v := fuzzVendor(t, http.StatusOK, nil)
		out, err := v.ParseCallback(fuzzJob(tool), body)
		checkOutcome(t, out, err)
	})
}

func FuzzQueryReply(f *testing.F) {
	addSeeds(f, []string{"queryTaskInfo_reply.json", "submit_reply.json"}, uint8(0), false)
	addSeeds(f, []string{"queryTask_reply.json", "enhance_reply.json"}, uint8(0), true)
	f.Add([]byte(`{"code":"400","msg":"任务不存在 `+fuzzSecret+`"}`), uint8(0), false)
	f.Add([]byte(`<html>502 Bad Gateway</html>`), uint8(4), false)
	f.Add([]byte(`{"code":200,"data":{"status":"1","temporaryImageDto":{"progress":"45%"}}}`), uint8(1), false)
	f.Fuzz(func(t *testing.T, body []byte, status uint8, tool bool) {
		v := fuzzVendor(t, fuzzStatuses[int(status)%len(fuzzStatuses)], body)
		out, err := v.Query(context.Background(), fuzzJob(tool))
		checkOutcome(t, out, err)
	})
}

func FuzzSubmitReply(f *testing.F) {
	addSeeds(f, []string{"submit_reply.json", "queryTaskInfo_reply.json"}, uint8(0), false)
	addSeeds(f, []string{"enhance_reply.json", "roop_reply.json"}, uint8(0), true)
	f.Add([]byte(`{"code":"400","msg":"提示词包含敏感词 `+fuzzSecret+`"}`), uint8(0), false)
	f.Add([]byte(`{"code":"200","msg":"succ`), uint8(1), false)
	f.Fuzz(func(t *testing.T, body []byte, status uint8, tool bool) {
		v := fuzzVendor(t, fuzzStatuses[int(status)%len(fuzzStatuses)], body)
		j := fuzzJob(tool)
		task := engine.Task{ID: j.ID + "-1", InputURLs: []string{"http://bot.invalid/input/1"}}
		id, err := v.Submit(context.Background(), j, task)
		if (id == "") == (err == nil) {
			t.Fatalf("task id %q and error %v: want exactly one", id, err)
		}
		if err != nil {
			checkMessage(t, err)
		}
	})
}
