package showapi_test

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
	"github.com/picbot/picbot/engine/showapi"
)

// The fuzzers feed the adapter's decoders what the vendor, Huawei's
// gateway, or anyone who can reach the callback URL might send. They must
// never panic, and must return either an outcome the engine can act on or
// an error, never both and never neither. Corpora: testdata/fuzz/<FuzzName>.

// fuzzSecret is the app code; no user-visible message may hold it.
const fuzzSecret = "fuzz-SECRET-appcode-3b9c"

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
		Header: http.Header{"Content-Type": {"application/json;charset=UTF-8"}},
		Body:   io.NopCloser(bytes.NewReader(rt.body)), Request: req, ContentLength: int64(len(rt.body)),
	}, nil
}

var fuzzStatuses = []int{http.StatusOK, http.StatusOK, http.StatusTooManyRequests, http.StatusUnauthorized, http.StatusInternalServerError}

func fuzzVendor(t *testing.T, status int, body []byte) *showapi.Vendor {
	t.Helper()
	v, err := showapi.New(showapi.Config{BaseURL: "http://showapi.invalid", AppCode: fuzzSecret}, &http.Client{Transport: replyTransport{status, body}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func fuzzJob() *engine.Job {
	r := engine.Request{Kind: engine.KindDraw, Prompt: "a red fox", Seed: 7}
	r.Normalize()
	return &engine.Job{ID: "fuzzjob1", Request: r, TaskID: "sk202308152miohYCStMIdFRrvZGEfc", Vendor: showapi.Name}
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
		t.Fatalf("the app code in a user message: %q", e.EN)
	}
}

func FuzzParseCallback(f *testing.F) {
	addSeeds(f, []string{"taskresult.json", "notfound.json", "tasklist.json"})
	f.Add([]byte(`task_id=sk1&status=finish&result_list=["https://x/1.png"," "]&seed=3`))
	f.Add([]byte(`{"task_id":"sk1","status":"fail","cause":"提示词包含敏感内容","result_list":"[\"\"]"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		out, err := fuzzVendor(t, http.StatusOK, nil).ParseCallback(fuzzJob(), body)
		checkOutcome(t, out, err)
	})
}

func FuzzQueryReply(f *testing.F) {
	addSeeds(f, []string{"taskresult.json", "notfound.json", "models.json"}, uint8(0))
	f.Add([]byte(`{"error_code":"APIG.0308","error_msg":"The throttling threshold has been reached"}`), uint8(2))
	f.Add([]byte(`{"showapi_res_error": "", "showapi_res_code": 0, "showapi_res_body": {"ret_code": 0, `), uint8(0))
	f.Add([]byte(`{"showapi_res_code":-2,"showapi_res_error":"可调用次数或金额为0","showapi_res_body":{}}`), uint8(1))
	f.Fuzz(func(t *testing.T, body []byte, status uint8) {
		v := fuzzVendor(t, fuzzStatuses[int(status)%len(fuzzStatuses)], body)
		out, err := v.Query(context.Background(), fuzzJob())
		checkOutcome(t, out, err)
	})
}

func FuzzSubmitReply(f *testing.F) {
	addSeeds(f, []string{"taskresult.json", "notfound.json"}, uint8(0))
	f.Add([]byte(`{"showapi_res_code":0,"showapi_res_body":{"ret_code":0,"task_id":"sk2"}}`), uint8(0))
	f.Add([]byte(`{"showapi_res_code":0,"showapi_res_body":{"ret_code":-1,"remark":"参数错误 `+fuzzSecret+`"}}`), uint8(0))
	f.Fuzz(func(t *testing.T, body []byte, status uint8) {
		v := fuzzVendor(t, fuzzStatuses[int(status)%len(fuzzStatuses)], body)
		id, err := v.Submit(context.Background(), fuzzJob(), engine.Task{ID: "fuzzjob1-1"})
		if (id == "") == (err == nil) {
			t.Fatalf("task id %q and error %v: want exactly one", id, err)
		}
		if err != nil {
			checkMessage(t, err)
		}
	})
}
