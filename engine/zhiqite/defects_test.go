package zhiqite_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/picbot/picbot/engine"
	"github.com/picbot/picbot/engine/zhiqite"
	"github.com/picbot/picbot/engine/zhiqite/zhiqitetest"
)

// The seed's tool replies carry outputImageUrl with status 1 ("1:生成中"):
// the link exists before the image. Until status 2 the task is running.
func TestToolLinkBeforeDone(t *testing.T) {
	for _, kind := range []engine.Kind{engine.KindUpscale, engine.KindSwapface} {
		f := newFake(t, zhiqitetest.Options{ToolDuration: 600 * time.Millisecond})
		v := newVendor(t, f, nil)
		in := []engine.Input{{Blob: "a", Width: 32, Height: 32}, {Blob: "b", Width: 32, Height: 32}}[:map[engine.Kind]int{engine.KindUpscale: 1, engine.KindSwapface: 2}[kind]]
		j := &engine.Job{ID: "early", Request: engine.Request{Kind: kind, Scale: 2, N: 1, Inputs: in}}
		submit(t, v, j, engine.Task{InputURLs: inputs(t, zhiqitetest.PNG(32, 32, 1), zhiqitetest.PNG(32, 32, 2))})
		out, err := v.Query(context.Background(), j)
		if err != nil {
			t.Fatal(err)
		}
		if out.State != engine.TaskRunning {
			t.Fatalf("%s: status 1 with a link read as %+v; the link answers 404 until the task is done", kind, out)
		}
		seen := pollUntil(t, v, j)
		last := seen[len(seen)-1]
		if last.State != engine.TaskDone || len(last.Images) != 1 || !last.Images[0].Late {
			t.Fatalf("%s: outcome %+v", kind, last)
		}
		download(t, last.Images[0].URL)
	}
}

// Code "400" is any refusal; only one that says the task does not exist is
// taken as the task being lost (which sends the job elsewhere, billed again).
func TestQueryRefusalIsNotLoss(t *testing.T) {
	f := newFake(t, zhiqitetest.Options{})
	v := newVendor(t, f, nil)
	j := draw("a fox", 1)
	submit(t, v, j, engine.Task{})
	j.SubmittedAt = time.Now()
	f.FailNext("saas/sd/v2/queryTaskInfo", zhiqitetest.FaultRefuse)
	_, err := v.Query(context.Background(), j)
	if err == nil || engine.ErrorCode(err) == engine.ENOTFOUND {
		t.Fatalf("a refusal without 'not found' taken as a lost task: %v", err)
	}
	if out, err := v.Query(context.Background(), j); err != nil || out.State == engine.TaskFailed {
		t.Fatalf("the task is still there: %+v %v", out, err)
	}
	f.Forget(j.TaskID)
	if _, err := v.Query(context.Background(), j); engine.ErrorCode(err) != engine.ENOTFOUND {
		t.Fatalf("the vendor says 任务不存在: %v, want ENOTFOUND", err)
	}
}

// "仅查询当月": a task submitted before a month's end in Beijing time is not
// shown after it; that is no proof it is lost.
func TestQueryAcrossMonthEnd(t *testing.T) {
	monthOn := func() time.Time { return time.Now().AddDate(0, 1, 0) }
	f := newFake(t, zhiqitetest.Options{Now: monthOn})
	v := newVendor(t, f, nil)
	v.SetNow(monthOn)
	j := draw("a fox", 1)
	submit(t, v, j, engine.Task{})
	j.SubmittedAt = time.Now()
	_, err := v.Query(context.Background(), j)
	if err == nil || engine.ErrorCode(err) == engine.ENOTFOUND {
		t.Fatalf("a task of last month answered 'not found': %v; it must not be resubmitted", err)
	}
	// The same answer for a task of this month is a loss.
	j.SubmittedAt = monthOn()
	if _, err := v.Query(context.Background(), j); engine.ErrorCode(err) != engine.ENOTFOUND {
		t.Fatalf("within the month: %v, want ENOTFOUND", err)
	}
	// Beijing's month, not UTC's: 15:59 and 16:01 UTC on 30 November are in
	// November and December there.
	f2 := newFake(t, zhiqitetest.Options{})
	v2 := newVendor(t, f2, nil)
	j2 := draw("a fox", 1)
	submit(t, v2, j2, engine.Task{})
	f2.Forget(j2.TaskID)
	for _, c := range []struct {
		submitted, now time.Time
		lost           bool
	}{
		{time.Date(2026, 11, 30, 15, 59, 0, 0, time.UTC), time.Date(2026, 11, 30, 16, 1, 0, 0, time.UTC), false},
		{time.Date(2026, 11, 30, 15, 0, 0, 0, time.UTC), time.Date(2026, 11, 30, 15, 30, 0, 0, time.UTC), true},
		{time.Date(2026, 10, 31, 17, 0, 0, 0, time.UTC), time.Date(2026, 11, 30, 15, 0, 0, 0, time.UTC), true},
	} {
		j2.SubmittedAt = c.submitted
		v2.SetNow(func() time.Time { return c.now })
		_, err := v2.Query(context.Background(), j2)
		if lost := engine.ErrorCode(err) == engine.ENOTFOUND; lost != c.lost || err == nil {
			t.Errorf("submitted %s, asked %s: %v, want lost %v", c.submitted, c.now, err, c.lost)
		}
	}
}

// image2image's table types cfg_scale as an integer; the fake refuses fractions there.
func TestImage2ImageCfgInteger(t *testing.T) {
	f := newFake(t, zhiqitetest.Options{})
	v := newVendor(t, f, nil)
	j := draw("a fox", 1)
	j.Request.Guidance = 7.5
	j.Request.Inputs = []engine.Input{{Blob: "a", Width: 64, Height: 64}}
	submit(t, v, j, engine.Task{InputURLs: inputs(t, zhiqitetest.PNG(64, 64, 1))})
	c := f.Calls()[0]
	if c.Endpoint != "saas/sd/v2/image2image" || !strings.Contains(string(c.Body), `"cfg_scale":8`) {
		t.Fatalf("%s %s", c.Endpoint, c.Body)
	}
	// text2image keeps the fraction.
	j2 := draw("a fox", 1)
	j2.Request.Guidance = 7.5
	submit(t, v, j2, engine.Task{})
	if c := f.Calls()[1]; !strings.Contains(string(c.Body), `"cfg_scale":7.5`) {
		t.Fatalf("%s", c.Body)
	}
}

func TestAccessKeyHeaders(t *testing.T) {
	for _, set := range []bool{false, true} {
		f := newFake(t, zhiqitetest.Options{})
		v := newVendor(t, f, func(c *zhiqite.Config) {
			if set {
				c.AccessKeyID, c.AccessKeySecret = "ak-id", "ak-secret"
			}
		})
		submit(t, v, draw("a fox", 1), engine.Task{})
		h := f.Calls()[0].Header
		_, hasID := h[http.CanonicalHeaderKey("X-Request-req-accessKeyId")]
		_, hasSecret := h[http.CanonicalHeaderKey("X-Request-req-accessKeySecret")]
		if hasID != set || hasSecret != set {
			t.Fatalf("configured %v: headers %v", set, h)
		}
		if set && (h.Get("X-Request-req-accessKeyId") != "ak-id" || h.Get("X-Request-req-accessKeySecret") != "ak-secret") {
			t.Fatalf("headers %v", h)
		}
	}
}

// A refused queryVaeList costs the VAEs, not the models and LoRAs.
func TestCatalogWithoutVAEs(t *testing.T) {
	f := newFake(t, zhiqitetest.Options{RefuseEmptyVAEName: true})
	v := newVendor(t, f, nil)
	entries, err := v.Catalog(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, e := range entries {
		kinds[e.Kind]++
	}
	if kinds[engine.EntryModel] == 0 || kinds[engine.EntryLoRA] == 0 || kinds[engine.EntryEmbedding] == 0 || kinds[engine.EntryVAE] != 0 {
		t.Fatalf("catalogue %v", kinds)
	}
}

// If the vendor follows roop's table ("1:成功") and never says 2, a status 1
// whose link serves the image is done; before the file exists it is not.
func TestToolDoneAtOne(t *testing.T) {
	f := newFake(t, zhiqitetest.Options{DoneIsOne: true, ToolDuration: 500 * time.Millisecond})
	v := newVendor(t, f, nil)
	j := &engine.Job{ID: "one", Request: engine.Request{Kind: engine.KindUpscale, Scale: 2, N: 1, Inputs: []engine.Input{{Blob: "a", Width: 32, Height: 32}}}}
	submit(t, v, j, engine.Task{InputURLs: inputs(t, zhiqitetest.PNG(32, 32, 1))})
	if out, err := v.Query(context.Background(), j); err != nil || out.State != engine.TaskRunning {
		t.Fatalf("before the file exists: %+v %v", out, err)
	}
	seen := pollUntil(t, v, j)
	if last := seen[len(seen)-1]; last.State != engine.TaskDone || len(last.Images) != 1 {
		t.Fatalf("outcome %+v", last)
	}
}
