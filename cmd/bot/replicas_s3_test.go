package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/picbot/picbot/bots/telegram/telegramtest"
	"github.com/picbot/picbot/engine"
	"github.com/picbot/picbot/engine/apispace/apispacetest"
	"github.com/picbot/picbot/store/pg/pgtest"
	"github.com/picbot/picbot/store/s3blobs/s3fake"
)

// TestReplicasS3Input: two replicas of the binary on one PostgreSQL
// database, images in one S3-compatible bucket. Replica A takes a
// Telegram /upscale of a photo (its input stored in the bucket) and is
// SIGKILLed before it sends the task: APISpace's one slot at A is held by
// an earlier /draw. B claims the job, the vendor reads the input through
// B (from the bucket: neither replica keeps images on disk), and the
// picture is posted once, the user charged once.
func TestReplicasS3Input(t *testing.T) {
	const drawUser, upUser = 3001, 3002
	bucket := s3fake.Start(t, "shared")
	tg := telegramtest.New(tgToken, tgBot)
	t.Cleanup(tg.Close)
	// Tasks long enough that A's slot is still held by the /draw when A dies.
	vendor := apispacetest.New(apispacetest.Options{Token: "e2e-apispace-token", Queue: 20 * time.Millisecond, Duration: 3 * time.Second, SuperResDuration: 500 * time.Millisecond})
	t.Cleanup(vendor.Close)
	rs := &replicaSet{t: t, dir: t.TempDir(), url: pgtest.URL(t), fake: tg,
		quota: "  default: {daily: 10, concurrent: 5, every: 1ms, burst: 100}",
		mode:  "  mode: webhook\n  webhook_url: https://bot.example.com/telegram/hook\n  webhook_secret: " + replicaSecret + "\n",
		vendor: fmt.Sprintf("  apispace:\n    enabled: true\n    base_url: %s\n    token: e2e-apispace-token\n    concurrency: 1\n"+
			"    draw_duration: 3s\n    poll_every: 2s\n    poll_max: 5s\n", vendor.BaseURL()),
		routes: "    draw: [apispace]\n    upscale: [apispace]\n",
		extra: fmt.Sprintf("blobs_url: %q\nblobs_access_key: %s\nblobs_secret_key: %s\n",
			bucket.URL("picbot"), s3fake.AccessKey, s3fake.SecretKey)}
	rs.addrs = []string{freeAddr(t), freeAddr(t)}
	// Callbacks and the vendor's input fetches go to B, the survivor.
	rs.public = "http://" + rs.addrs[1]
	rs.startAll()
	defer func() {
		if t.Failed() {
			t.Log(rs.logs())
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	db := rs.open(ctx)
	tasks := func(path string) (out []apispacetest.Task) {
		for _, tk := range vendor.Tasks() {
			if strings.Contains(tk.Path, path) {
				out = append(out, tk)
			}
		}
		return out
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for !ok() {
			if ctx.Err() != nil {
				t.Fatalf("never %s", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	if err := rs.post(ctx, 0, privateDraw(8001, drawUser, 11, "/draw a harbour at dusk")); err != nil {
		t.Fatal(err)
	}
	waitFor("the draw at the vendor", func() bool { return len(vendor.Tasks()) == 1 })

	photo := smallPNG(t, 64, 48)
	tg.AddFile("UPSCALE-IN", "", photo)
	update, err := json.Marshal(map[string]any{"update_id": 8002, "message": map[string]any{
		"message_id": 12, "date": 1700000000, "caption": "/upscale --scale 4",
		"caption_entities": []any{map[string]any{"type": "bot_command", "offset": 0, "length": 8}},
		"photo":            []any{map[string]any{"file_id": "UPSCALE-IN", "file_unique_id": "uUPSCALE-IN", "width": 64, "height": 48, "file_size": len(photo)}},
		"from":             map[string]any{"id": upUser, "is_bot": false, "first_name": "Up", "language_code": "en"},
		"chat":             map[string]any{"id": upUser, "type": "private", "first_name": "Up"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := rs.post(ctx, 0, update); err != nil {
		t.Fatal(err)
	}
	var job *engine.Job
	waitFor("the upscale stored", func() bool {
		js, _ := db.JobsByOwner(ctx, engine.UserRef{Platform: "telegram", ID: fmt.Sprint(upUser)}, 5)
		if len(js) == 1 {
			job = js[0]
		}
		return job != nil
	})
	if job.State != engine.StateQueued || len(job.Request.Inputs) != 1 {
		t.Fatalf("upscale job %s, %d inputs: want queued behind the draw, one input", job.State, len(job.Request.Inputs))
	}
	inKey := job.Request.Inputs[0].Blob
	rs.kill(0)
	if n := len(tasks("superres")); n != 0 {
		t.Fatalf("A sent the upscale before it died (%d tasks): the test needs it left to B", n)
	}
	if got := bucket.Objects(t, ""); !slices.Contains(got, "picbot/"+inKey) {
		t.Fatalf("the input %s is not in the bucket: %v", inKey, got)
	}

	for _, user := range []int{drawUser, upUser} {
		if _, err := tg.Wait(ctx, sent("sendPhoto", "chat_id", fmt.Sprint(user))); err != nil {
			t.Fatalf("no picture for user %d: %v", user, err)
		}
	}
	waitFor("every job finished", func() bool {
		left, err := db.Unfinished(ctx)
		return err == nil && len(left) == 0
	})
	if j, err := db.Job(ctx, job.ID); err != nil || j.State != engine.StateDelivered {
		t.Fatalf("upscale job: %v %v, want delivered", j, err)
	}
	posts := map[string]int{}
	for _, c := range tg.Calls("sendPhoto") {
		if c.Status == 200 {
			posts[c.Params["chat_id"]]++
		}
	}
	if posts[fmt.Sprint(upUser)] != 1 || posts[fmt.Sprint(drawUser)] != 1 {
		t.Errorf("pictures posted %v, want one each", posts)
	}
	// B sent the upscale, once, and the vendor read its input through B.
	up := tasks("superres")
	if len(up) != 1 {
		t.Fatalf("%d upscale tasks at the vendor, want 1", len(up))
	}
	params, _ := up[0].Body["params"].(map[string]any)
	link, _ := params["url"].(string)
	if u, err := url.Parse(link); err != nil || u.Host != rs.addrs[1] || up[0].Status != "finished" {
		t.Errorf("upscale task %s read its input from %q, want B (%s) and finished", up[0].Status, link, rs.addrs[1])
	}
	if n := rs.count("claimed unfinished jobs"); n == 0 {
		t.Error("B never claimed A's jobs")
	}
	for i := range rs.addrs {
		_ = filepath.WalkDir(filepath.Join(rs.dir, fmt.Sprintf("r%d", i), "data", "blobs"), func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				t.Errorf("image file under a replica's data_dir: %s", p)
			}
			return nil
		})
	}
	_ = db.View(ctx, func(c engine.Counters) error {
		for _, user := range []int{drawUser, upUser} {
			var used int64
			c.Scan(fmt.Sprintf("d:u:telegram:%d:", user), func(_ string, v int64) { used += v })
			if used != 1 {
				t.Errorf("user %d charged %d, want 1", user, used)
			}
		}
		c.Scan("r:u:", func(key string, v int64) { t.Errorf("%s = %d still running", key, v) })
		return nil
	})
}
