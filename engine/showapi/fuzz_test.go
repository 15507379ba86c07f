package showapi_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/picbot/picbot/engine"
	"github.com/picbot/picbot/engine/showapi"
	"github.com/picbot/picbot/engine/vendortest"
)

// The fuzzers feed the adapter's decoders what the vendor, Huawei's
// gateway, or anyone who can reach the callback URL might send. They must
// never panic, and must return either an outcome the engine can act on or
// an error, never both and never neither. Corpora: testdata/fuzz/<FuzzName>.

// fuzzSecret is the app code; no user-visible message may hold it.
const fuzzSecret = "fuzz-SECRET-appcode-3b9c"

var fuzzStatuses = []int{http.StatusOK, http.StatusOK, http.StatusTooManyRequests, http.StatusUnauthorized, http.StatusInternalServerError}

func fuzzVendor(t *testing.T, status uint8, body []byte) *showapi.Vendor {
	t.Helper()
	client := vendortest.Client(fuzzStatuses[int(status)%len(fuzzStatuses)], nil, body)
	v, err := showapi.New(showapi.Config{BaseURL: "http://showapi.invalid", AppCode: fuzzSecret}, client, nil)
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

func FuzzParseCallback(f *testing.F) {
	vendortest.Seeds(f, []string{"taskresult.json", "notfound.json", "tasklist.json"})
	f.Add([]byte(`task_id=sk1&status=finish&result_list=["https://x/1.png"," "]&seed=3`))
	f.Add([]byte(`{"task_id":"sk1","status":"fail","cause":"提示词包含敏感内容","result_list":"[\"\"]"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		out, err := fuzzVendor(t, 0, nil).ParseCallback(fuzzJob(), body)
		vendortest.CheckOutcome(t, out, err, fuzzSecret)
	})
}

func FuzzQueryReply(f *testing.F) {
	vendortest.Seeds(f, []string{"taskresult.json", "notfound.json", "models.json"}, uint8(0))
	f.Add([]byte(`{"error_code":"APIG.0308","error_msg":"The throttling threshold has been reached"}`), uint8(2))
	f.Add([]byte(`{"showapi_res_error": "", "showapi_res_code": 0, "showapi_res_body": {"ret_code": 0, `), uint8(0))
	f.Add([]byte(`{"showapi_res_code":-2,"showapi_res_error":"可调用次数或金额为0","showapi_res_body":{}}`), uint8(1))
	f.Fuzz(func(t *testing.T, body []byte, status uint8) {
		out, err := fuzzVendor(t, status, body).Query(context.Background(), fuzzJob())
		vendortest.CheckOutcome(t, out, err, fuzzSecret)
	})
}

func FuzzSubmitReply(f *testing.F) {
	vendortest.Seeds(f, []string{"taskresult.json", "notfound.json"}, uint8(0))
	f.Add([]byte(`{"showapi_res_code":0,"showapi_res_body":{"ret_code":0,"task_id":"sk2"}}`), uint8(0))
	f.Add([]byte(`{"showapi_res_code":0,"showapi_res_body":{"ret_code":-1,"remark":"参数错误 `+fuzzSecret+`"}}`), uint8(0))
	f.Fuzz(func(t *testing.T, body []byte, status uint8) {
		id, err := fuzzVendor(t, status, body).Submit(context.Background(), fuzzJob(), engine.Task{ID: "fuzzjob1-1"})
		vendortest.CheckSubmit(t, id, err, fuzzSecret)
	})
}
