package apispace_test

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
	"github.com/picbot/picbot/engine/apispace"
)

// The fuzzers feed the adapter's decoders what the vendor, its gateway, or
// anyone who can reach the callback URL might send. They must never panic,
// and must return either an outcome the engine can act on or an error,
// never both and never neither. Corpora: testdata/fuzz/<FuzzName>.

// fuzzSecret is the token; no user-visible message may hold it.
const fuzzSecret = "fuzz-SECRET-token-d41e"

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
		Header: http.Header{"Content-Type": {"application/json"}},
		Body:   io.NopCloser(bytes.NewReader(rt.body)), Request: req, ContentLength: int64(len(rt.body)),
	}, nil
}

var fuzzStatuses = []int{http.StatusOK, http.StatusOK, http.StatusBadRequest, http.StatusForbidden, http.StatusTooManyRequests, http.StatusInternalServerError}

func fuzzVendor(t *testing.T, status int, body []byte) *apispace.Vendor {
	t.Helper()
	v, err := apispace.New(apispace.Config{BaseURL: "http://apispace.invalid/aigc", Token: fuzzSecret}, &http.Client{Transport: replyTransport{status, body}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// fuzzJob is a job whose task the vendor holds: /draw, or /anime.
func fuzzJob(anime bool) *engine.Job {
	r := engine.Request{Kind: engine.KindDraw, Prompt: "a red fox", Seed: 7}
	if anime {
		r = engine.Request{Kind: engine.KindAnime, Inputs: []engine.Input{{Blob: "b", Width: 64, Height: 64}}}
	}
	r.Normalize()
	return &engine.Job{ID: "fuzzjob1", Request: r, TaskID: "b50fd9dc699b0f69e5dac9d150939c94", Vendor: apispace.Name}
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
		t.Fatalf("the token in a user message: %q", e.EN)
	}
}

func FuzzParseCallback(f *testing.F) {
	addSeeds(f, []string{"callback.json", "callback_unsafe.json", "seed_callback.txt"}, false)
	addSeeds(f, []string{"callback.json"}, true)
	f.Add([]byte(`{"uid":"x","success":0,"data":{"reason":"审核未通过"}}`), false)
	f.Fuzz(func(t *testing.T, body []byte, anime bool) {
		out, err := fuzzVendor(t, http.StatusOK, nil).ParseCallback(fuzzJob(anime), body)
		checkOutcome(t, out, err)
	})
}

func FuzzQueryReply(f *testing.F) {
	addSeeds(f, []string{"query_reply.json", "query_unsafe.json", "submit_reply.json"}, uint8(0), false)
	f.Add([]byte(`{"code":404,"msg":"task not_found"}`), uint8(2), false)
	f.Add([]byte(`{"code":"0","data":{"status":"exception","reason":"算法执行异常"}}`), uint8(0), true)
	f.Add([]byte(`{"code":0,"data":{"uid":`), uint8(1), false)
	f.Fuzz(func(t *testing.T, body []byte, status uint8, anime bool) {
		v := fuzzVendor(t, fuzzStatuses[int(status)%len(fuzzStatuses)], body)
		out, err := v.Query(context.Background(), fuzzJob(anime))
		checkOutcome(t, out, err)
	})
}

func FuzzSubmitReply(f *testing.F) {
	addSeeds(f, []string{"submit_reply.json", "query_reply.json"}, uint8(0))
	f.Add([]byte(`{"code":400,"msg":"参数错误: w `+fuzzSecret+`"}`), uint8(2))
	f.Add([]byte(`{"code":20001,"msg":"提示词包含敏感词"}`), uint8(0))
	f.Add([]byte(`{"code":500,"msg":"服务内部错误"}`), uint8(5))
	f.Fuzz(func(t *testing.T, body []byte, status uint8) {
		v := fuzzVendor(t, fuzzStatuses[int(status)%len(fuzzStatuses)], body)
		j := fuzzJob(false)
		id, err := v.Submit(context.Background(), j, engine.Task{ID: "fuzzjob1-1"})
		if (id == "") == (err == nil) {
			t.Fatalf("task id %q and error %v: want exactly one", id, err)
		}
		if err != nil {
			checkMessage(t, err)
		}
	})
}
