package zhiqite_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/picbot/picbot/engine"
	"github.com/picbot/picbot/engine/vendortest"
	"github.com/picbot/picbot/engine/zhiqite"
)

// The fuzzers feed the adapter's decoders what a vendor, a broken gateway
// or anyone who can reach the callback URL might send. They must never
// panic, and must return either an outcome the engine can act on or an
// error, never both and never neither. Corpora: testdata/fuzz/<FuzzName>.

// fuzzSecret is the app code; no user-visible message may hold it.
const fuzzSecret = "fuzz-SECRET-appcode-7e1a"

// fuzzStatuses are the HTTP statuses a fuzz case picks from.
var fuzzStatuses = []int{http.StatusOK, http.StatusOK, http.StatusForbidden, http.StatusInternalServerError, http.StatusBadGateway}

func fuzzVendor(t *testing.T, status uint8, body []byte) *zhiqite.Vendor {
	t.Helper()
	cfg := zhiqite.Config{BaseURL: "http://zhiqite.invalid/AIGCImgOpenServ/", AppCode: fuzzSecret, InputURLs: true}
	header := http.Header{"X-Ca-Error-Message": {"Quota Exhausted"}}
	v, err := zhiqite.New(cfg, vendortest.Client(fuzzStatuses[int(status)%len(fuzzStatuses)], header, body), nil)
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

func FuzzParseCallback(f *testing.F) {
	vendortest.Seeds(f, []string{"queryTaskInfo_reply.json", "queryTask_reply.json", "submit_reply.json"}, false)
	vendortest.Seeds(f, []string{"queryTask_reply.json", "enhance_reply.json", "roop_reply.json"}, true)
	f.Add([]byte(`{"code":"200","data":"{\"id_task\":\"fuzzjob1-1\",\"status\":1,\"temporaryImageDto\":{\"progress\":\"NaN\",\"currentImage\":\"data:,AAAA\"}}"}`), false)
	f.Add([]byte(`[{"data":{"businessTaskId":"fuzzjob1-1","status":"2","outputImageUrl":" "}}]`), true)
	f.Fuzz(func(t *testing.T, body []byte, tool bool) {
		out, err := fuzzVendor(t, 0, nil).ParseCallback(fuzzJob(tool), body)
		vendortest.CheckOutcome(t, out, err, fuzzSecret)
	})
}

func FuzzQueryReply(f *testing.F) {
	vendortest.Seeds(f, []string{"queryTaskInfo_reply.json", "submit_reply.json"}, uint8(0), false)
	vendortest.Seeds(f, []string{"queryTask_reply.json", "enhance_reply.json"}, uint8(0), true)
	f.Add([]byte(`{"code":"400","msg":"任务不存在 `+fuzzSecret+`"}`), uint8(0), false)
	f.Add([]byte(`<html>502 Bad Gateway</html>`), uint8(4), false)
	f.Add([]byte(`{"code":200,"data":{"status":"1","temporaryImageDto":{"progress":"45%"}}}`), uint8(1), false)
	f.Fuzz(func(t *testing.T, body []byte, status uint8, tool bool) {
		out, err := fuzzVendor(t, status, body).Query(context.Background(), fuzzJob(tool))
		vendortest.CheckOutcome(t, out, err, fuzzSecret)
	})
}

func FuzzSubmitReply(f *testing.F) {
	vendortest.Seeds(f, []string{"submit_reply.json", "queryTaskInfo_reply.json"}, uint8(0), false)
	vendortest.Seeds(f, []string{"enhance_reply.json", "roop_reply.json"}, uint8(0), true)
	f.Add([]byte(`{"code":"400","msg":"提示词包含敏感词 `+fuzzSecret+`"}`), uint8(0), false)
	f.Add([]byte(`{"code":"200","msg":"succ`), uint8(1), false)
	f.Fuzz(func(t *testing.T, body []byte, status uint8, tool bool) {
		j := fuzzJob(tool)
		task := engine.Task{ID: j.ID + "-1", InputURLs: []string{"http://bot.invalid/input/1"}}
		id, err := fuzzVendor(t, status, body).Submit(context.Background(), j, task)
		vendortest.CheckSubmit(t, id, err, fuzzSecret)
	})
}
