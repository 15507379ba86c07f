// Package vendortest is what the vendor adapters' fuzz tests share: a
// client whose every call gets one canned reply, so an adapter's real HTTP
// path runs without a network, and the checks of what the engine relies on
// in an adapter's answers.
package vendortest

import (
	"bytes"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/picbot/picbot/engine"
)

// Client answers every request with status, header and body.
func Client(status int, header http.Header, body []byte) *http.Client {
	return &http.Client{Transport: reply{status, header, body}}
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r reply) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		req.Body.Close()
	}
	h := r.header.Clone()
	if h == nil {
		h = http.Header{}
	}
	if h.Get("Content-Type") == "" {
		h.Set("Content-Type", "application/json;charset=UTF-8")
	}
	return &http.Response{
		StatusCode: r.status, Status: http.StatusText(r.status), Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, Body: io.NopCloser(bytes.NewReader(r.body)), ContentLength: int64(len(r.body)), Request: req,
	}, nil
}

// Seeds adds each file of testdata as a seed's first argument, args after it.
func Seeds(f *testing.F, files []string, args ...any) {
	f.Helper()
	for _, name := range files {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(append([]any{b}, args...)...)
	}
}

// CheckOutcome fails t unless exactly one of out and err is set, and out is
// something the engine can act on: a known state, progress -1 or within
// [0, 1], an error with every failure, a link or data with every image. No
// user message may hold secret.
func CheckOutcome(t testing.TB, out *engine.Outcome, err error, secret string) {
	t.Helper()
	if (out == nil) == (err == nil) {
		t.Fatalf("outcome %+v and error %v: want exactly one", out, err)
	}
	if err != nil {
		CheckMessage(t, err, secret)
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
		CheckMessage(t, out.Err, secret)
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

// CheckSubmit fails t unless exactly one of a task id and an error came
// back; no user message may hold secret.
func CheckSubmit(t testing.TB, id string, err error, secret string) {
	t.Helper()
	if (id == "") == (err == nil) {
		t.Fatalf("task id %q and error %v: want exactly one", id, err)
	}
	if err != nil {
		CheckMessage(t, err, secret)
	}
}

// CheckMessage fails t if what err would show a user holds secret.
func CheckMessage(t testing.TB, err error, secret string) {
	t.Helper()
	e := engine.AsError(err)
	if strings.Contains(e.EN+e.ZH, secret) {
		t.Fatalf("a secret in a user message: %q", e.EN)
	}
}
