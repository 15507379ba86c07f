package web_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/picbot/picbot/engine"
	"github.com/picbot/picbot/quota"
	"github.com/picbot/picbot/store"
	"github.com/picbot/picbot/web"
)

// BenchmarkPages renders the jobs list and the overview over a store of
// 10,000 jobs made in the last day
// (go test -run x -bench Pages -benchtime 20x -count 5 ./web).
func BenchmarkPages(b *testing.B) {
	ctx := context.Background()
	db, err := store.Open(filepath.Join(b.TempDir(), "db"), store.Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	q, _ := quota.New(quota.DefaultConfig(), db, nil)
	now := time.Now()
	for i := range 10000 {
		at := now.Add(-time.Duration(i) * 8 * time.Second)
		j := &engine.Job{ID: fmt.Sprintf("job%05d", i), Owner: engine.UserRef{Platform: "telegram", ID: fmt.Sprint(i % 300)},
			Chat: engine.ChatRef{Platform: "telegram", ChatID: "-1"}, State: engine.StateDelivered, Vendor: "zhiqite",
			Request:   engine.Request{Kind: engine.KindDraw, Prompt: "a lighthouse at dusk, oil painting", Width: 512, Height: 512, N: 1},
			Results:   []engine.Result{{Blob: "b", Mime: "image/png"}},
			CreatedAt: at, DeliveredAt: at.Add(9 * time.Second), FinishedAt: at.Add(9 * time.Second), BilledCalls: 2}
		if err := db.CreateJob(ctx, j, nil); err != nil {
			b.Fatal(err)
		}
	}
	// The overview's clock moves 16 s on before each request, so its cache
	// of the last day (15 s) never answers: the figure is the page's full work.
	var offset atomic.Int64
	clock := func() time.Time { return now.Add(time.Duration(offset.Load())) }
	h, err := web.New(web.Config{Password: password, Now: clock, SessionTTL: 1000 * time.Hour}, db, &fakeEngine{health: []engine.VendorHealth{{Name: "zhiqite"}}}, q, db, blobs{}, web.Figures{})
	if err != nil {
		b.Fatal(err)
	}
	m := http.NewServeMux()
	h.Register(m)
	srv := httptest.NewServer(m)
	defer srv.Close()
	e := &env{t: &testing.T{}, srv: srv}
	c := e.client()
	if resp, _ := c.post("/admin/login", map[string][]string{"password": {password}}); resp.StatusCode != http.StatusSeeOther {
		b.Fatal(resp.Status)
	}
	for _, p := range []string{"/admin/jobs", "/admin/jobs?user=telegram:7", "/admin/overview", "/admin/gallery", "/admin/vendors", "/admin/people"} {
		b.Run(p, func(b *testing.B) {
			for b.Loop() {
				if p == "/admin/overview" {
					offset.Add(int64(16 * time.Second))
				}
				if resp, _ := c.get(p); resp.StatusCode != http.StatusOK {
					b.Fatal(resp.Status)
				}
			}
		})
	}
}
