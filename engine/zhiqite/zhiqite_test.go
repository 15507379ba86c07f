package zhiqite_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	_ "image/jpeg"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/picbot/picbot/engine"
	"github.com/picbot/picbot/engine/zhiqite"
	"github.com/picbot/picbot/engine/zhiqite/zhiqitetest"
)

// These tests drive the adapter against the fake, through Submit, Query
// and ParseCallback, as the engine does.

const appCode = "test-app-code"

func newFake(t *testing.T, opts zhiqitetest.Options) *zhiqitetest.Server {
	t.Helper()
	if opts.AppCode == "" {
		opts.AppCode = appCode
	}
	if opts.Duration == 0 {
		opts.Duration = 400 * time.Millisecond
	}
	if opts.ToolDuration == 0 {
		opts.ToolDuration = 300 * time.Millisecond
	}
	opts.Logf = t.Logf
	f := zhiqitetest.New(opts)
	t.Cleanup(f.Close)
	return f
}

func newVendor(t *testing.T, f *zhiqitetest.Server, mod func(*zhiqite.Config)) *zhiqite.Vendor {
	t.Helper()
	cfg := zhiqite.Config{BaseURL: f.URL, AppCode: appCode, InputURLs: true, PollEvery: 50 * time.Millisecond}
	if mod != nil {
		mod(&cfg)
	}
	v, err := zhiqite.New(cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// inputs serves PNGs at loopback URLs, as the bot's /input/ route does.
func inputs(t *testing.T, imgs ...[]byte) []string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var i int
		if _, err := fmt.Sscanf(r.URL.Path, "/in/%d", &i); err != nil || i >= len(imgs) {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "image/png")
		w.Write(imgs[i])
	}))
	t.Cleanup(srv.Close)
	var urls []string
	for i := range imgs {
		urls = append(urls, fmt.Sprintf("%s/in/%d", srv.URL, i))
	}
	return urls
}

func draw(prompt string, n int) *engine.Job {
	r := engine.Request{Kind: engine.KindDraw, Prompt: prompt, N: n, Seed: 7}
	r.Normalize()
	return &engine.Job{ID: "j" + fmt.Sprint(time.Now().UnixNano()), Request: r}
}

// submit submits j with task id id and records it on j, as the engine does.
func submit(t *testing.T, v *zhiqite.Vendor, j *engine.Job, task engine.Task) {
	t.Helper()
	if task.ID == "" {
		task.ID = j.ID + "-1"
	}
	id, err := v.Submit(context.Background(), j, task)
	if err != nil {
		t.Fatalf("submit: %v", err)
	}
	if id != task.ID {
		t.Fatalf("task id %q, want the suggested %q", id, task.ID)
	}
	j.TaskID = id
}

// pollUntil polls until the task leaves the queued and running states,
// returning every outcome seen.
func pollUntil(t *testing.T, v *zhiqite.Vendor, j *engine.Job) []*engine.Outcome {
	t.Helper()
	seen, _ := pollTimed(t, v, j)
	return seen
}

// pollTimed is pollUntil that also says when each answer came.
func pollTimed(t *testing.T, v *zhiqite.Vendor, j *engine.Job) ([]*engine.Outcome, []time.Time) {
	t.Helper()
	var (
		seen []*engine.Outcome
		at   []time.Time
	)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		out, err := v.Query(context.Background(), j)
		if err != nil {
			t.Fatalf("query: %v", err)
		}
		seen, at = append(seen, out), append(at, time.Now())
		if out.State == engine.TaskDone || out.State == engine.TaskFailed {
			return seen, at
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("task never finished")
	return nil, nil
}

func download(t *testing.T, url string) image.Image {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	img, _, err := image.Decode(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return img
}

func TestDrawPolling(t *testing.T) {
	f := newFake(t, zhiqitetest.Options{})
	v := newVendor(t, f, nil)
	j := draw("a red fox", 2)
	submitted := time.Now() // the fake makes the task after this
	submit(t, v, j, engine.Task{})
	seen, at := pollTimed(t, v, j)
	last := seen[len(seen)-1]
	if last.State != engine.TaskDone || len(last.Images) != 2 || last.Dropped != 0 {
		t.Fatalf("outcome %+v", last)
	}
	var states = map[engine.TaskState]bool{}
	var previews int
	lastProgress := -1.0
	for _, o := range seen[:len(seen)-1] {
		states[o.State] = true
		if o.Progress >= 0 {
			if o.Progress < lastProgress {
				t.Errorf("progress fell from %v to %v", lastProgress, o.Progress)
			}
			lastProgress = o.Progress
		}
		if o.Preview != nil {
			if _, err := png.Decode(bytes.NewReader(o.Preview)); err != nil {
				t.Errorf("preview: %v", err)
			}
			previews++
		}
	}
	// The fake's task is queued for its first 300 ms (10% of 3 s): an
	// answer that came within 300 ms of the submission's start was made
	// within them, and must say so. A busy machine may make the
	// first poll later; the running phase, 2 s long, is always seen.
	if at[0].Sub(submitted) < 300*time.Millisecond && !states[engine.TaskQueued] {
		t.Errorf("first answer %v after the submission, within the fake's queued time, was %v", at[0].Sub(submitted), seen[0].State)
	}
	if !states[engine.TaskRunning] || previews == 0 || lastProgress <= 0 {
		t.Errorf("saw states %v, %d previews, progress up to %v", states, previews, lastProgress)
	}
	for i, r := range last.Images {
		img := download(t, r.URL)
		if b := img.Bounds(); b.Dx() != 512 || b.Dy() != 512 {
			t.Errorf("image %d is %v", i, b)
		}
		if r.Seed != 7+int64(i) {
			t.Errorf("image %d seed %d", i, r.Seed)
		}
	}
	// Every call was billed: one submission and each query.
	if got, want := f.BilledFor(j.TaskID), 1+len(seen); got != want {
		t.Errorf("billed %d, want %d", got, want)
	}
}

// callbacks is the bot's callback endpoint: it refuses the first delivery,
// then answers as the adapter says, and keeps the bodies.
type callbacks struct {
	*httptest.Server
	mu     sync.Mutex
	bodies [][]byte
	got    chan []byte
}

func newCallbacks(t *testing.T, v *zhiqite.Vendor) *callbacks {
	c := &callbacks{got: make(chan []byte, 10)}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		c.mu.Lock()
		c.bodies = append(c.bodies, b)
		first := len(c.bodies) == 1
		c.mu.Unlock()
		if first {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"code":"500"}`) // not 200: the vendor must try again
			return
		}
		ct, reply := v.CallbackReply()
		w.Header().Set("Content-Type", ct)
		w.Write(reply)
		c.got <- b
	}))
	t.Cleanup(c.Close)
	return c
}

func (c *callbacks) wait(t *testing.T) []byte {
	t.Helper()
	select {
	case b := <-c.got:
		return b
	case <-time.After(10 * time.Second):
		t.Fatal("no callback")
		return nil
	}
}

func TestDrawCallback(t *testing.T) {
	f := newFake(t, zhiqitetest.Options{CallbackDelays: []time.Duration{20 * time.Millisecond}})
	v := newVendor(t, f, nil)
	if !v.WantsCallback() {
		t.Fatal("callbacks are the default")
	}
	cb := newCallbacks(t, v)
	j := draw("a lighthouse", 1)
	submit(t, v, j, engine.Task{CallbackURL: cb.URL + "/callback/zhiqite/job/token"})
	body := cb.wait(t)
	out, err := v.ParseCallback(j, body)
	if err != nil {
		t.Fatalf("parse %s: %v", body, err)
	}
	if out.State != engine.TaskDone || len(out.Images) != 1 || out.TaskID != j.TaskID {
		t.Fatalf("outcome %+v", out)
	}
	download(t, out.Images[0].URL)
	if n, ok := f.CallbackAttempts(j.TaskID); n != 2 || !ok {
		t.Errorf("callback attempts %d delivered %v; want 2, true", n, ok)
	}
	// The callback is free: only the submission was billed.
	if got := f.BilledFor(j.TaskID); got != 1 {
		t.Errorf("billed %d, want 1", got)
	}
}

func TestImage2Image(t *testing.T) {
	f := newFake(t, zhiqitetest.Options{})
	v := newVendor(t, f, nil)
	j := draw("a red fox in the style of the reference", 1)
	j.Request.Width, j.Request.Height = 256, 384
	j.Request.Inputs = []engine.Input{{Blob: "ref", Width: 64, Height: 64}}
	submit(t, v, j, engine.Task{InputURLs: inputs(t, zhiqitetest.PNG(64, 64, 3))})
	seen := pollUntil(t, v, j)
	last := seen[len(seen)-1]
	if last.State != engine.TaskDone || len(last.Images) != 1 {
		t.Fatalf("outcome %+v", last)
	}
	if b := download(t, last.Images[0].URL).Bounds(); b.Dx() != 256 || b.Dy() != 384 {
		t.Fatalf("size %v", b)
	}
	calls := f.Calls()
	if calls[0].Endpoint != "saas/sd/v2/image2image" {
		t.Fatalf("first call %s", calls[0].Endpoint)
	}
}

func TestUpscale(t *testing.T) {
	for _, asString := range []bool{false, true} {
		f := newFake(t, zhiqitetest.Options{ToolStatusString: asString})
		v := newVendor(t, f, nil)
		j := &engine.Job{ID: "up", Request: engine.Request{Kind: engine.KindUpscale, Scale: 3, N: 1, Inputs: []engine.Input{{Blob: "x", Width: 40, Height: 30}}}}
		submit(t, v, j, engine.Task{InputURLs: inputs(t, zhiqitetest.PNG(40, 30, 1))})
		seen := pollUntil(t, v, j)
		last := seen[len(seen)-1]
		if last.State != engine.TaskDone || len(last.Images) != 1 {
			t.Fatalf("outcome %+v", last)
		}
		if b := download(t, last.Images[0].URL).Bounds(); b.Dx() != 120 || b.Dy() != 90 {
			t.Fatalf("size %v, want 120x90", b)
		}
		if len(seen) < 2 {
			t.Errorf("the first query already found the result; the fake should take %s", 300*time.Millisecond)
		}
	}
}

func TestSwapfaceCallback(t *testing.T) {
	f := newFake(t, zhiqitetest.Options{CallbackDelays: []time.Duration{10 * time.Millisecond}})
	v := newVendor(t, f, nil)
	cb := newCallbacks(t, v)
	j := &engine.Job{ID: "sw", Request: engine.Request{Kind: engine.KindSwapface, N: 1, Inputs: []engine.Input{{Blob: "a"}, {Blob: "b"}}}}
	submit(t, v, j, engine.Task{InputURLs: inputs(t, zhiqitetest.PNG(32, 32, 1), zhiqitetest.PNG(90, 60, 2)), CallbackURL: cb.URL + "/cb"})
	// The submission's reply already carries the result link, which is not there yet.
	if out, err := v.Query(context.Background(), j); err != nil || out.State != engine.TaskRunning {
		t.Fatalf("right after submission: %+v %v", out, err)
	}
	out, err := v.ParseCallback(j, cb.wait(t))
	if err != nil {
		t.Fatal(err)
	}
	if out.State != engine.TaskDone || len(out.Images) != 1 {
		t.Fatalf("outcome %+v", out)
	}
	if b := download(t, out.Images[0].URL).Bounds(); b.Dx() != 90 || b.Dy() != 60 {
		t.Fatalf("size %v, want the target's 90x60", b)
	}
}

func TestToolFailure(t *testing.T) {
	// roop's table says 2 is failure, enhance's says 0: without a link, both fail.
	for _, kind := range []engine.Kind{engine.KindSwapface, engine.KindUpscale} {
		for _, asString := range []bool{false, true} {
			f := newFake(t, zhiqitetest.Options{ToolStatusString: asString})
			v := newVendor(t, f, nil)
			f.SetFate(zhiqitetest.Fate{Fail: true})
			j := &engine.Job{ID: "tf", Request: engine.Request{Kind: kind, Scale: 2, N: 1, Inputs: []engine.Input{{Blob: "a"}, {Blob: "b"}}[:map[engine.Kind]int{engine.KindSwapface: 2, engine.KindUpscale: 1}[kind]]}}
			submit(t, v, j, engine.Task{InputURLs: inputs(t, zhiqitetest.PNG(16, 16, 1), zhiqitetest.PNG(16, 16, 2))})
			seen := pollUntil(t, v, j)
			last := seen[len(seen)-1]
			if last.State != engine.TaskFailed || engine.ErrorCode(last.Err) != engine.EVENDOR {
				t.Fatalf("%s (string %v): outcome %+v", kind, asString, last)
			}
		}
	}
}

func TestFailures(t *testing.T) {
	ctx := context.Background()
	t.Run("Submit500", func(t *testing.T) {
		f := newFake(t, zhiqitetest.Options{})
		v := newVendor(t, f, nil)
		f.FailNext("saas/sd/v2/text2image", zhiqitetest.Fault500)
		_, err := v.Submit(ctx, draw("x", 1), engine.Task{ID: "t1"})
		if err == nil || engine.ErrorCode(err) != engine.EINTERNAL {
			t.Fatalf("err %v (%s): want a plain error, for the engine to retry", err, engine.ErrorCode(err))
		}
		if f.Billed() != 0 {
			t.Errorf("a 500 was billed")
		}
	})
	t.Run("QuotaExhausted", func(t *testing.T) {
		f := newFake(t, zhiqitetest.Options{})
		v := newVendor(t, f, nil)
		f.SetQuota(0)
		_, err := v.Submit(ctx, draw("x", 1), engine.Task{ID: "t1"})
		if code := engine.ErrorCode(err); code != engine.EUNAVAILABLE {
			t.Fatalf("err %v (%s): want EUNAVAILABLE, so the engine fails over", err, code)
		}
		if !strings.Contains(err.Error(), "Quota Exhausted") {
			t.Errorf("the gateway's message is lost: %v", err)
		}
	})
	t.Run("QuotaByPrompt", func(t *testing.T) {
		f := newFake(t, zhiqitetest.Options{})
		v := newVendor(t, f, nil)
		_, err := v.Submit(ctx, draw("quota", 1), engine.Task{ID: "t1"})
		if code := engine.ErrorCode(err); code != engine.EUNAVAILABLE {
			t.Fatalf("err %v (%s)", err, code)
		}
	})
	t.Run("BadJSONThenRetry", func(t *testing.T) {
		f := newFake(t, zhiqitetest.Options{})
		v := newVendor(t, f, nil)
		j := draw("badjson", 1)
		if _, err := v.Submit(ctx, j, engine.Task{ID: "t1"}); err == nil || engine.ErrorCode(err) != engine.EINTERNAL {
			t.Fatalf("err %v", err)
		}
		// The engine retries with the same id: the adapter first asks whether
		// the vendor has it (it does not), then submits.
		if id, err := v.Submit(ctx, j, engine.Task{ID: "t1"}); err != nil || id != "t1" {
			t.Fatalf("retry: %q %v", id, err)
		}
		var eps []string
		for _, c := range f.Calls() {
			eps = append(eps, c.Endpoint)
		}
		if want := "saas/sd/v2/text2image saas/sd/v2/queryTaskInfo saas/sd/v2/text2image"; strings.Join(eps, " ") != want {
			t.Fatalf("calls %v, want %s", eps, want)
		}
	})
	t.Run("LostReplyFoundAgain", func(t *testing.T) {
		f := newFake(t, zhiqitetest.Options{})
		v := newVendor(t, f, nil)
		j := draw("a cat", 1)
		f.FailNext("saas/sd/v2/text2image", zhiqitetest.FaultTimeout)
		// The reply is lost once the vendor has made the task, not on a
		// clock: a fixed timeout could end the call before the fake, slowed
		// by a busy machine, had made it, and the test would then be about
		// a submission that never arrived.
		sctx, cancel := context.WithCancel(ctx)
		go func() {
			defer cancel()
			for len(f.Tasks()) == 0 && sctx.Err() == nil {
				time.Sleep(5 * time.Millisecond)
			}
		}()
		_, err := v.Submit(sctx, j, engine.Task{ID: "t1"})
		cancel()
		if err == nil || engine.ErrorCode(err) != engine.EINTERNAL {
			t.Fatalf("err %v", err)
		}
		// The task exists at the vendor; a blind resubmission would be refused as a duplicate.
		if id, err := v.Submit(ctx, j, engine.Task{ID: "t1"}); err != nil || id != "t1" {
			t.Fatalf("retry: %q %v", id, err)
		}
		if got := f.Tasks(); len(got) != 1 {
			t.Fatalf("tasks %v", got)
		}
		// The fake records a call when its handler ends, and the lost
		// reply's handler ends only after the client has gone: wait for it.
		// The retry was answered, so no other call is still to come.
		for deadline := time.Now().Add(5 * time.Second); len(f.Calls()) < 2 && time.Now().Before(deadline); {
			time.Sleep(5 * time.Millisecond)
		}
		for _, c := range f.Calls() {
			if c.Endpoint == "saas/sd/v2/text2image" && c.Status == http.StatusOK && bytes.Contains(c.Body, []byte("任务ID重复")) {
				t.Fatal("resubmitted")
			}
		}
		if n := len(f.Calls()); n != 2 {
			t.Fatalf("%d calls, want the submission and one query", n)
		}
	})
	t.Run("DuplicateIDAfterRestart", func(t *testing.T) {
		// The bot died after the vendor took the task, before it recorded
		// the reply; the next process submits the same id, which the vendor
		// refuses as a duplicate. The task is the job's own: carry on with it.
		f := newFake(t, zhiqitetest.Options{})
		j := draw("a cat", 1)
		if _, err := newVendor(t, f, nil).Submit(ctx, j, engine.Task{ID: "same"}); err != nil {
			t.Fatal(err)
		}
		id, err := newVendor(t, f, nil).Submit(ctx, j, engine.Task{ID: "same"})
		if err != nil || id != "same" {
			t.Fatalf("resubmission after a restart: %q %v", id, err)
		}
		if got := f.Tasks(); len(got) != 1 {
			t.Fatalf("tasks %v", got)
		}
		j.TaskID = id
		if out, err := newVendor(t, f, nil).Query(ctx, j); err != nil || out.State == engine.TaskFailed {
			t.Fatalf("query: %+v %v", out, err)
		}
	})
	t.Run("FindTaskAfterRestart", func(t *testing.T) {
		// The engine asks before it submits again: one query, no submission.
		f := newFake(t, zhiqitetest.Options{})
		j := draw("a cat", 1)
		if _, err := newVendor(t, f, nil).Submit(ctx, j, engine.Task{ID: "kept"}); err != nil {
			t.Fatal(err)
		}
		v := newVendor(t, f, nil)
		before := len(f.Calls())
		if id, found, err := v.FindTask(ctx, j, engine.Task{ID: "kept"}); err != nil || !found || id != "kept" {
			t.Fatalf("find: %q %v %v", id, found, err)
		}
		if _, found, err := v.FindTask(ctx, j, engine.Task{ID: "never"}); err != nil || found {
			t.Fatalf("find of a task never made: %v %v", found, err)
		}
		for _, c := range f.Calls()[before:] {
			if c.Endpoint != "saas/sd/v2/queryTaskInfo" {
				t.Fatalf("a find called %s", c.Endpoint)
			}
		}
		if got := f.Tasks(); len(got) != 1 {
			t.Fatalf("tasks %v", got)
		}
	})
	t.Run("BadParam", func(t *testing.T) {
		f := newFake(t, zhiqitetest.Options{})
		v := newVendor(t, f, nil)
		j := draw("x", 1)
		j.Request.Model = "no_such_model.safetensors"
		_, err := v.Submit(ctx, j, engine.Task{ID: "t1"})
		if engine.ErrorCode(err) != engine.EINVALID {
			t.Fatalf("err %v (%s), want EINVALID", err, engine.ErrorCode(err))
		}
		if e := engine.AsError(err); !strings.Contains(e.ZH, "模型不存在") {
			t.Errorf("the vendor's reason is not shown: %q", e.ZH)
		}
	})
	t.Run("Sensitive", func(t *testing.T) {
		f := newFake(t, zhiqitetest.Options{})
		v := newVendor(t, f, nil)
		_, err := v.Submit(ctx, draw("something sensitive", 1), engine.Task{ID: "t1"})
		if engine.ErrorCode(err) != engine.EUNSAFE {
			t.Fatalf("err %v (%s), want EUNSAFE", err, engine.ErrorCode(err))
		}
	})
	t.Run("Unsafe", func(t *testing.T) {
		f := newFake(t, zhiqitetest.Options{})
		v := newVendor(t, f, nil)
		j := draw("unsafe", 2)
		submit(t, v, j, engine.Task{})
		seen := pollUntil(t, v, j)
		last := seen[len(seen)-1]
		if last.State != engine.TaskDone || len(last.Images) != 0 || last.Dropped != 2 {
			t.Fatalf("outcome %+v: audited images must be dropped and counted", last)
		}
	})
	t.Run("Deleted", func(t *testing.T) {
		f := newFake(t, zhiqitetest.Options{})
		v := newVendor(t, f, nil)
		j := draw("a cat", 3)
		f.SetFate(zhiqitetest.Fate{Deleted: 1})
		submit(t, v, j, engine.Task{})
		seen := pollUntil(t, v, j)
		last := seen[len(seen)-1]
		if last.State != engine.TaskDone || len(last.Images) != 2 || last.Dropped != 1 {
			t.Fatalf("outcome %+v", last)
		}
		for _, r := range last.Images {
			download(t, r.URL) // the survivors are there
		}
	})
	t.Run("VendorFail", func(t *testing.T) {
		f := newFake(t, zhiqitetest.Options{})
		v := newVendor(t, f, nil)
		j := draw("vendorfail", 1)
		submit(t, v, j, engine.Task{})
		seen := pollUntil(t, v, j)
		last := seen[len(seen)-1]
		if last.State != engine.TaskFailed || engine.ErrorCode(last.Err) != engine.EVENDOR {
			t.Fatalf("outcome %+v: want failed with EVENDOR, so another vendor may try", last)
		}
	})
	t.Run("Forgotten", func(t *testing.T) {
		f := newFake(t, zhiqitetest.Options{})
		v := newVendor(t, f, nil)
		for _, kind := range []engine.Kind{engine.KindDraw, engine.KindUpscale} {
			j := draw("forget", 1)
			if kind == engine.KindUpscale {
				j = &engine.Job{ID: "u", Request: engine.Request{Kind: kind, Scale: 2, N: 1, Inputs: []engine.Input{{Blob: "a"}}}}
			}
			submit(t, v, j, engine.Task{ID: string(kind), InputURLs: inputs(t, zhiqitetest.PNG(8, 8, 1))})
			f.Forget(j.TaskID)
			_, err := v.Query(ctx, j)
			if engine.ErrorCode(err) != engine.ENOTFOUND {
				t.Fatalf("%s: err %v (%s), want ENOTFOUND", kind, err, engine.ErrorCode(err))
			}
		}
	})
	t.Run("Query500AndBadJSON", func(t *testing.T) {
		f := newFake(t, zhiqitetest.Options{})
		v := newVendor(t, f, nil)
		j := draw("x", 1)
		submit(t, v, j, engine.Task{})
		for _, fault := range []zhiqitetest.Fault{zhiqitetest.Fault500, zhiqitetest.FaultBadJSON} {
			f.FailNext("saas/sd/v2/queryTaskInfo", fault)
			_, err := v.Query(ctx, j)
			if err == nil || engine.ErrorCode(err) != engine.EINTERNAL {
				t.Fatalf("fault %d: err %v, want a plain error (poll again)", fault, err)
			}
		}
		if _, err := v.Query(ctx, j); err != nil {
			t.Fatalf("after the faults: %v", err)
		}
	})
	t.Run("QueryTimeout", func(t *testing.T) {
		f := newFake(t, zhiqitetest.Options{})
		v := newVendor(t, f, nil)
		j := draw("x", 1)
		submit(t, v, j, engine.Task{})
		f.FailNext("saas/sd/v2/queryTaskInfo", zhiqitetest.FaultTimeout)
		qctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := v.Query(qctx, j)
		if err == nil || !errors.Is(err, context.DeadlineExceeded) || engine.ErrorCode(err) != engine.EINTERNAL {
			t.Fatalf("err %v", err)
		}
		if time.Since(start) > 2*time.Second {
			t.Fatal("the context did not bound the call")
		}
	})
	t.Run("WrongAppCode", func(t *testing.T) {
		f := newFake(t, zhiqitetest.Options{})
		v := newVendor(t, f, func(c *zhiqite.Config) { c.AppCode = "wrong-code-1234" })
		_, err := v.Submit(ctx, draw("x", 1), engine.Task{ID: "t1"})
		if err == nil || engine.ErrorCode(err) != engine.EINTERNAL {
			t.Fatalf("err %v: an auth failure is the operator's, not the user's", err)
		}
		if strings.Contains(err.Error(), "wrong-code-1234") {
			t.Fatal("the app code leaked into an error")
		}
	})
	t.Run("ExpiredLink", func(t *testing.T) {
		f := newFake(t, zhiqitetest.Options{})
		v := newVendor(t, f, nil)
		j := draw("expired", 1)
		submit(t, v, j, engine.Task{})
		seen := pollUntil(t, v, j)
		last := seen[len(seen)-1]
		resp, err := http.Get(last.Images[0].URL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Fatalf("expired link: %s", resp.Status)
		}
	})
}

func TestCheck(t *testing.T) {
	f := newFake(t, zhiqitetest.Options{})
	v := newVendor(t, f, nil)
	noURL := newVendor(t, f, func(c *zhiqite.Config) { c.InputURLs = false })
	ok := func() engine.Request {
		r := engine.Request{Kind: engine.KindDraw, Prompt: "x"}
		r.Normalize()
		return r
	}
	in := []engine.Input{{Blob: "a", Width: 512, Height: 512}}
	cases := []struct {
		name  string
		v     *zhiqite.Vendor
		req   func() engine.Request
		valid bool
	}{
		{"OK", v, ok, true},
		{"Max1024", v, func() engine.Request { r := ok(); r.Width, r.Height = 1024, 1024; return r }, true},
		{"TooWide", v, func() engine.Request { r := ok(); r.Width = 1032; return r }, false},
		{"NotMultipleOf8", v, func() engine.Request { r := ok(); r.Height = 500; return r }, false},
		{"Cfg30", v, func() engine.Request { r := ok(); r.Guidance = 30; return r }, true},
		{"Cfg31", v, func() engine.Request { r := ok(); r.Guidance = 31; return r }, false},
		{"Sampler", v, func() engine.Request { r := ok(); r.Sampler = "Euler a"; return r }, true},
		{"SamplerLoose", v, func() engine.Request { r := ok(); r.Sampler = "dpm++_sde_karras"; return r }, true},
		{"SamplerUnknown", v, func() engine.Request { r := ok(); r.Sampler = "DDIM"; return r }, false},
		{"LoRA", v, func() engine.Request { r := ok(); r.LoRA = "hayasaka_ai_v10_26390"; return r }, true},
		{"LoRAWeight", v, func() engine.Request { r := ok(); r.LoRA = "x:0.6"; return r }, true},
		{"LoRAInjection", v, func() engine.Request { r := ok(); r.LoRA = "x> <lora:y"; return r }, false},
		{"ModelName", v, func() engine.Request { r := ok(); r.Model = "a b"; return r }, false},
		{"Reference", v, func() engine.Request { r := ok(); r.Inputs = in; return r }, true},
		{"ReferenceNoURL", noURL, func() engine.Request { r := ok(); r.Inputs = in; return r }, false},
		{"Upscale", v, func() engine.Request { return engine.Request{Kind: engine.KindUpscale, Scale: 2, Inputs: in} }, true},
		{"Upscale8", v, func() engine.Request { return engine.Request{Kind: engine.KindUpscale, Scale: 8, Inputs: in} }, true},
		{"Upscale9", v, func() engine.Request { return engine.Request{Kind: engine.KindUpscale, Scale: 9, Inputs: in} }, false},
		{"UpscaleBig", v, func() engine.Request {
			return engine.Request{Kind: engine.KindUpscale, Scale: 2, Inputs: []engine.Input{{Blob: "a", Width: 1537, Height: 10}}}
		}, false},
		{"Upscale1536", v, func() engine.Request {
			return engine.Request{Kind: engine.KindUpscale, Scale: 2, Inputs: []engine.Input{{Blob: "a", Width: 1536, Height: 1536}}}
		}, true},
		{"UpscaleNoURL", noURL, func() engine.Request { return engine.Request{Kind: engine.KindUpscale, Scale: 2, Inputs: in} }, false},
		{"Swapface", v, func() engine.Request { return engine.Request{Kind: engine.KindSwapface, Inputs: append(in, in...)} }, true},
		{"SwapfaceNoURL", noURL, func() engine.Request { return engine.Request{Kind: engine.KindSwapface, Inputs: append(in, in...)} }, false},
		{"Anime", v, func() engine.Request { return engine.Request{Kind: engine.KindAnime, Style: "anime", Inputs: in} }, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := c.req()
			err := c.v.Check(&r)
			if c.valid && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !c.valid {
				e := engine.AsError(err)
				if err == nil || e.Code != engine.EINVALID || e.EN == "" || e.ZH == "" {
					t.Fatalf("err %v: want EINVALID in English and Chinese", err)
				}
			}
		})
	}
}

func TestTiming(t *testing.T) {
	f := newFake(t, zhiqitetest.Options{})
	v := newVendor(t, f, func(c *zhiqite.Config) { c.PollEvery = 0; c.PollMax = 0 })
	base := engine.Request{Kind: engine.KindDraw, Prompt: "x"}
	base.Normalize()
	tm := v.Timing(&base)
	if tm.First != zhiqite.DefaultDrawDuration || tm.Every != zhiqite.DefaultPollEvery || tm.Max != zhiqite.DefaultPollMax || !tm.Billed {
		t.Fatalf("512x512: %+v", tm)
	}
	big := base
	big.Width, big.Height = 1024, 1024
	if got := v.Timing(&big).First; got != 4*zhiqite.DefaultDrawDuration {
		t.Errorf("1024x1024: %s", got)
	}
	more := base
	more.N, more.Steps = 2, 50
	if got := v.Timing(&more).First; got != 4*zhiqite.DefaultDrawDuration {
		t.Errorf("2 images, 50 steps: %s", got)
	}
	small := base
	small.Width, small.Height, small.Steps = 64, 64, 5
	if got := v.Timing(&small).First; got != zhiqite.DefaultDrawDuration/2 {
		t.Errorf("tiny: %s, want the floor", got)
	}
	tool := engine.Request{Kind: engine.KindSwapface}
	if got := v.Timing(&tool).First; got != zhiqite.DefaultToolDuration {
		t.Errorf("swapface: %s", got)
	}
}

func TestParseCallbackShapes(t *testing.T) {
	f := newFake(t, zhiqitetest.Options{})
	v := newVendor(t, f, nil)
	j := &engine.Job{TaskID: "t-1", Request: engine.Request{Kind: engine.KindDraw}}
	done := `{"id_task":"t-1","status":2,"desc":"任务成功 !","differentialImageRspList":[` +
		`{"img_audit_status":true,"image_status":1,"image_url":"http://127.0.0.1/a.png","seed":5},` +
		`{"img_audit_status":false,"image_status":1,"image_url":"http://127.0.0.1/b.png","seed":6}]}`
	cases := []struct {
		name, body string
		ok         bool
		state      engine.TaskState
	}{
		{"Envelope", `{"code":"200","msg":"success","data":` + done + `}`, true, engine.TaskDone},
		{"Flat", done, true, engine.TaskDone},
		{"DataAsString", `{"code":200,"data":` + quote(done) + `}`, true, engine.TaskDone},
		{"Nested", `{"result":{"payload":[` + done + `]}}`, true, engine.TaskDone},
		{"StatusAsString", strings.Replace(done, `"status":2`, `"status":"2"`, 1), true, engine.TaskDone},
		{"Running", `{"data":{"id_task":"t-1","status":1,"temporaryImageDto":{"progress":"0.5"}}}`, true, engine.TaskRunning},
		{"FailedIsConfirmedByQuery", `{"data":{"id_task":"t-1","status":0,"desc":"失败"}}`, false, 0},
		{"DoneWithoutList", `{"data":{"id_task":"t-1","status":2}}`, false, 0},
		{"NoTask", `{"code":"200","msg":"success"}`, false, 0},
		{"NotJSON", `<html>`, false, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, err := v.ParseCallback(j, []byte(c.body))
			if !c.ok {
				if err == nil {
					t.Fatalf("parsed %+v; want an error, so the engine polls", out)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if out.State != c.state || out.TaskID != "t-1" {
				t.Fatalf("outcome %+v", out)
			}
			if c.state == engine.TaskDone && (len(out.Images) != 1 || out.Dropped != 1 || out.Images[0].Seed != 5) {
				t.Fatalf("outcome %+v: the audited image must be dropped", out)
			}
		})
	}
	t.Run("OtherTask", func(t *testing.T) {
		out, err := v.ParseCallback(j, []byte(strings.Replace(done, "t-1", "t-2", 1)))
		if err != nil || out.TaskID != "t-2" {
			t.Fatalf("%+v %v: the engine needs the other id to ignore it", out, err)
		}
	})
	t.Run("Tool", func(t *testing.T) {
		tj := &engine.Job{TaskID: "b-1", Request: engine.Request{Kind: engine.KindSwapface}}
		// Status 1 with a link is the link the result will have ("1:生成中").
		out, err := v.ParseCallback(tj, []byte(`{"code":"200","data":{"businessTaskId":"b-1","status":"1","taskId":"pro1","outputImageUrl":"http://127.0.0.1/o.png"}}`))
		if err != nil || out.State != engine.TaskRunning || len(out.Images) != 0 || out.TaskID != "b-1" {
			t.Fatalf("%+v %v", out, err)
		}
		out, err = v.ParseCallback(tj, []byte(`{"code":"200","data":{"businessTaskId":"b-1","status":"2","taskId":"pro1","outputImageUrl":"http://127.0.0.1/o.png"}}`))
		if err != nil || out.State != engine.TaskDone || len(out.Images) != 1 || out.TaskID != "b-1" {
			t.Fatalf("%+v %v", out, err)
		}
	})
	ct, body := v.CallbackReply()
	if ct != "application/json" || string(body) != `{"code":"200"}` {
		t.Fatalf("reply %s %s", ct, body)
	}
}

func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	b.WriteString(strings.NewReplacer(`"`, `\"`, `\`, `\\`).Replace(s))
	b.WriteByte('"')
	return b.String()
}

func TestCatalogPaging(t *testing.T) {
	f := newFake(t, zhiqitetest.Options{})
	v := newVendor(t, f, nil)
	entries, err := v.Catalog(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	cat := zhiqitetest.DefaultCatalog()
	want := map[string]int{engine.EntryVAE: len(cat.VAEs), engine.EntryEmbedding: len(cat.Embeddings)}
	adult := map[string]bool{}
	for _, m := range cat.Models {
		if m.Status == 1 {
			want[engine.EntryModel]++
			adult[m.Checkpoint] = m.Adult
		}
	}
	for _, l := range cat.LoRAs {
		if l.Status == 1 {
			want[engine.EntryLoRA]++
			adult[l.SimplifyName] = l.Adult
		}
	}
	got := map[string]int{}
	for _, e := range entries {
		got[e.Kind]++
		if a, ok := adult[e.ID]; ok && a != e.Adult {
			t.Errorf("%s: adult %v, want %v", e.ID, e.Adult, a)
		}
		if e.Kind == engine.EntryModel || e.Kind == engine.EntryLoRA {
			if _, ok := adult[e.ID]; !ok {
				t.Errorf("%s is offline or unknown but listed", e.ID)
			}
		}
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("%s: %d entries, want %d", k, got[k], n)
		}
	}
	calls := len(f.Calls())
	if calls < 5 {
		t.Errorf("%d list calls: the lists of more than 50 rows were not paged", calls)
	}
	// The catalogue is cached: list calls are billed.
	if _, err := v.Catalog(context.Background()); err != nil || len(f.Calls()) != calls {
		t.Errorf("second Catalog made %d more calls (%v)", len(f.Calls())-calls, err)
	}
}

func TestNew(t *testing.T) {
	for name, cfg := range map[string]zhiqite.Config{
		"NoAuth":       {},
		"KeyNoSecret":  {AppKey: "k"},
		"SecretNoKey":  {AppSecret: "s"},
		"BadURL":       {AppCode: "c", BaseURL: "ftp://x"},
		"BadFormat":    {AppCode: "c", OutputFormat: "gif"},
		"BadSampler":   {AppCode: "c", Sampler: "DDIM"},
		"BadDenoising": {AppCode: "c", Denoising: 2},
	} {
		if _, err := zhiqite.New(cfg, nil, nil); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	v, err := zhiqite.New(zhiqite.Config{AppCode: "c"}, nil, nil)
	if err != nil || v.Name() != "zhiqite" || !v.WantsCallback() {
		t.Fatalf("defaults: %v", err)
	}
	no := false
	if v, _ := zhiqite.New(zhiqite.Config{AppCode: "c", Callbacks: &no}, nil, nil); v.WantsCallback() {
		t.Fatal("callbacks: false was ignored")
	}
}

// A lost submission is asked about by its task id before it is sent again
// (engine.LookupFirst): after a restart, one billed query proves an
// upscale's task and reads its result, the vendor downloads no input from
// the bot again, and the job's next poll is answered without a call. Sent
// again instead (resend_lost), it costs a billed duplicate refusal after
// the vendor fetched the input once more, and then a billed poll. Before:
// the engine sent it again, the query's bill went unreported (the engine
// took it as 0) and the poll after it was billed.
func TestLostSubmissionAskedFirst(t *testing.T) {
	ctx := context.Background()
	f := newFake(t, zhiqitetest.Options{})
	var fetched atomic.Int64
	img := zhiqitetest.PNG(40, 30, 1)
	in := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetched.Add(1)
		w.Header().Set("Content-Type", "image/png")
		w.Write(img)
	}))
	t.Cleanup(in.Close)
	j := &engine.Job{ID: "up", Request: engine.Request{Kind: engine.KindUpscale, Scale: 2, N: 1, Inputs: []engine.Input{{Blob: "x", Width: 40, Height: 30}}}}
	task := engine.Task{ID: "up-1", InputURLs: []string{in.URL + "/in/0"}}
	if _, err := newVendor(t, f, nil).Submit(ctx, j, task); err != nil { // its answer is "lost"
		t.Fatal(err)
	}
	time.Sleep(400 * time.Millisecond) // past the fake's tool time: the task is done
	j.Submitting = &engine.Submitting{Vendor: zhiqite.Name, TaskID: task.ID, Attempt: 1, At: time.Now()}

	v := newVendor(t, f, nil) // the restarted bot's
	var l engine.LookupFirst = v
	if !l.LookupFirst(j) {
		t.Fatal("a lost submission is sent again by default; want it asked about first")
	}
	billed, inputs := f.Billed(), fetched.Load()
	mctx, reported := engine.Metered(ctx)
	id, found, err := v.FindTask(mctx, j, task)
	if err != nil || !found || id != task.ID {
		t.Fatalf("find: %q %v %v", id, found, err)
	}
	if n, ok := reported(); !ok || n != 1 || f.Billed()-billed != 1 {
		t.Errorf("the lookup: the fake billed %d, the adapter reported %d (%v); want 1 and 1", f.Billed()-billed, n, ok)
	}
	j.TaskID = id
	mctx, reported = engine.Metered(ctx)
	out, err := v.Query(mctx, j)
	if err != nil || out.State != engine.TaskDone || len(out.Images) != 1 {
		t.Fatalf("the poll after the lookup: %+v %v", out, err)
	}
	if n, _ := reported(); n != 0 || f.Billed()-billed != 1 {
		t.Errorf("the poll after the lookup: the fake billed %d more, the adapter reported %d; want none", f.Billed()-billed-1, n)
	}
	if n := fetched.Load() - inputs; n != 0 {
		t.Errorf("the vendor fetched the input %d more times", n)
	}
	if _, err := v.Query(ctx, j); err != nil || f.Billed()-billed != 2 {
		t.Errorf("a second poll: %v, %d billed; want the vendor asked", err, f.Billed()-billed)
	}
	if newVendor(t, f, func(c *zhiqite.Config) { c.ResendLost = true }).LookupFirst(j) {
		t.Error("resend_lost: true still asks first")
	}
}
