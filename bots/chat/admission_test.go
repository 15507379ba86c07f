package chat_test

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/picbot/picbot/bots/chat"
	"github.com/picbot/picbot/engine"
	"github.com/picbot/picbot/engine/local"
	"github.com/picbot/picbot/quota"
	"github.com/picbot/picbot/store"
)

// httpFetcher fetches from the loopback test server only.
type httpFetcher struct{}

func (httpFetcher) Fetch(ctx context.Context, url string) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// bigImage is a 20 MB body starting with a small PNG.
func bigImage(t *testing.T) []byte {
	var b bytes.Buffer
	if err := png.Encode(&b, image.NewRGBA(image.Rect(0, 0, 8, 8))); err != nil {
		t.Fatal(err)
	}
	return append(b.Bytes(), make([]byte, 20<<20-b.Len())...)
}

// draw runs a /draw and waits for it to end, so that its own blobs are
// written before the blob directory is counted.
func draw(t *testing.T, s *chat.Service, ended chan *engine.Job) {
	t.Helper()
	if r := say(s, alice, "/draw a fox"); r.Err != nil {
		t.Fatal(r.Err)
	}
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		t.Fatal("draw not delivered")
	}
}

func blobFiles(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			n++
		}
		return nil
	})
	return n
}

// A command that will be refused downloads and stores nothing: a banned
// user, a user over quota, a rate-limited user. An admitted one still uses
// one rate-limit token, not two.
func TestRefusedDownloadsNothing(t *testing.T) {
	body := bigImage(t)
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		w.Header().Set("Content-Type", "image/png")
		w.Write(body)
	}))
	defer srv.Close()

	var ended chan *engine.Job
	setup := func(t *testing.T, tier quota.Tier) (*chat.Service, *quota.Quota, string) {
		dir := t.TempDir()
		db, err := store.Open(filepath.Join(dir, "db"), store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		blobDir := filepath.Join(dir, "blobs")
		blobs, err := store.OpenBlobs(blobDir, 0)
		if err != nil {
			t.Fatal(err)
		}
		qc := quota.DefaultConfig()
		qc.Default = tier
		q, err := quota.New(qc, db, nil)
		if err != nil {
			t.Fatal(err)
		}
		routes := map[engine.Kind][]string{}
		for _, k := range engine.Kinds {
			routes[k] = []string{local.Name}
		}
		n := notifier{ended: make(chan *engine.Job, 10)}
		ended = n.ended
		e := engine.New(engine.Config{Routes: routes}, db, q, blobs, n, local.New(blobs, 0, nil))
		if err := e.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.Stop(context.Background()) })
		return &chat.Service{Engine: e, Quota: q, Blobs: blobs, Fetcher: httpFetcher{}, MaxInput: 32 << 20}, q, blobDir
	}
	refused := func(t *testing.T, s *chat.Service, blobDir string, code string) {
		t.Helper()
		before, reqs := blobFiles(t, blobDir), requests.Load()
		r := say(s, alice, "/upscale "+srv.URL+"/big.png")
		if r.Err == nil || r.Err.Code != code {
			t.Fatalf("reply %+v, want %s", r, code)
		}
		if n := requests.Load() - reqs; n != 0 {
			t.Errorf("image server saw %d requests for a refused command", n)
		}
		if after := blobFiles(t, blobDir); after != before {
			t.Errorf("blob files %d -> %d for a refused command", before, after)
		}
	}

	t.Run("Banned", func(t *testing.T) {
		s, q, dir := setup(t, quota.Tier{Daily: 10})
		if err := q.Ban(context.Background(), alice.Key(), true); err != nil {
			t.Fatal(err)
		}
		refused(t, s, dir, engine.EFORBIDDEN)
	})
	t.Run("OverQuota", func(t *testing.T) {
		s, _, dir := setup(t, quota.Tier{Daily: 1})
		draw(t, s, ended)
		refused(t, s, dir, engine.EQUOTA)
	})
	t.Run("RateLimited", func(t *testing.T) {
		s, _, dir := setup(t, quota.Tier{Every: time.Hour, Burst: 1})
		draw(t, s, ended)
		refused(t, s, dir, engine.ERATELIMIT)
	})
	t.Run("AdmittedOneToken", func(t *testing.T) {
		s, _, _ := setup(t, quota.Tier{Every: time.Hour, Burst: 2})
		draw(t, s, ended)
		reqs := requests.Load()
		if r := say(s, alice, "/upscale "+srv.URL+"/big.png"); r.Err != nil {
			t.Fatalf("second command of a burst of 2 refused: %+v", r.Err)
		}
		if requests.Load() == reqs {
			t.Errorf("admitted command did not fetch its image")
		}
	})
}
