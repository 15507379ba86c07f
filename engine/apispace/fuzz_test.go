package apispace_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/picbot/picbot/engine"
	"github.com/picbot/picbot/engine/apispace"
	"github.com/picbot/picbot/engine/vendortest"
)

// The fuzzers feed the adapter's decoders what the vendor, its gateway, or
// anyone who can reach the callback URL might send. They must never panic,
// and must return either an outcome the engine can act on or an error,
// never both and never neither. Corpora: testdata/fuzz/<FuzzName>.

// fuzzSecret is the token; no user-visible message may hold it.
const fuzzSecret = "fuzz-SECRET-token-d41e"

var fuzzStatuses = []int{http.StatusOK, http.StatusOK, http.StatusBadRequest, http.StatusForbidden, http.StatusTooManyRequests, http.StatusInternalServerError}

func fuzzVendor(t *testing.T, status uint8, body []byte) *apispace.Vendor {
	t.Helper()
	client := vendortest.Client(fuzzStatuses[int(status)%len(fuzzStatuses)], http.Header{"Content-Type": {"application/json"}}, body)
	v, err := apispace.New(apispace.Config{BaseURL: "http://apispace.invalid/aigc", Token: fuzzSecret}, client, nil)
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

func FuzzParseCallback(f *testing.F) {
	vendortest.Seeds(f, []string{"callback.json", "callback_unsafe.json", "seed_callback.txt"}, false)
	vendortest.Seeds(f, []string{"callback.json"}, true)
	f.Add([]byte(`{"uid":"x","success":0,"data":{"reason":"审核未通过"}}`), false)
	f.Fuzz(func(t *testing.T, body []byte, anime bool) {
		out, err := fuzzVendor(t, 0, nil).ParseCallback(fuzzJob(anime), body)
		vendortest.CheckOutcome(t, out, err, fuzzSecret)
	})
}

func FuzzQueryReply(f *testing.F) {
	vendortest.Seeds(f, []string{"query_reply.json", "query_unsafe.json", "submit_reply.json"}, uint8(0), false)
	f.Add([]byte(`{"code":404,"msg":"task not_found"}`), uint8(2), false)
	f.Add([]byte(`{"code":"0","data":{"status":"exception","reason":"算法执行异常"}}`), uint8(0), true)
	f.Add([]byte(`{"code":0,"data":{"uid":`), uint8(1), false)
	f.Fuzz(func(t *testing.T, body []byte, status uint8, anime bool) {
		out, err := fuzzVendor(t, status, body).Query(context.Background(), fuzzJob(anime))
		vendortest.CheckOutcome(t, out, err, fuzzSecret)
	})
}

func FuzzSubmitReply(f *testing.F) {
	vendortest.Seeds(f, []string{"submit_reply.json", "query_reply.json"}, uint8(0))
	f.Add([]byte(`{"code":400,"msg":"参数错误: w `+fuzzSecret+`"}`), uint8(2))
	f.Add([]byte(`{"code":20001,"msg":"提示词包含敏感词"}`), uint8(0))
	f.Add([]byte(`{"code":500,"msg":"服务内部错误"}`), uint8(5))
	f.Fuzz(func(t *testing.T, body []byte, status uint8) {
		id, err := fuzzVendor(t, status, body).Submit(context.Background(), fuzzJob(false), engine.Task{ID: "fuzzjob1-1"})
		vendortest.CheckSubmit(t, id, err, fuzzSecret)
	})
}
