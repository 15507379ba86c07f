package engine_test

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/picbot/picbot/engine"
)

// A result link marked Late may answer 404 for a moment after the vendor
// reported done: the download is tried again, not the job failed. An
// unmarked link that answers 404 has expired: the job fails at once.
func TestLateResultLink(t *testing.T) {
	for _, late := range []bool{true, false} {
		var gets atomic.Int32
		files := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if gets.Add(1) <= 2 {
				http.NotFound(w, r)
				return
			}
			w.Header().Set("Content-Type", "image/png")
			w.Write(tinyPNG)
		}))
		defer files.Close()
		v := newVendor("v")
		v.query = func(j *engine.Job) (*engine.Outcome, error) {
			return &engine.Outcome{State: engine.TaskDone, Images: []engine.Remote{{URL: files.URL + "/r.png", Late: late}}}, nil
		}
		h := newHarness(t, engine.Config{}, v)
		j := h.submit(t)
		got := h.waitFinished(t, j.ID)
		switch {
		case late && (got.State != engine.StateDelivered || gets.Load() != 3):
			t.Fatalf("late link: state %s after %d downloads, want delivered after 3", got.State, gets.Load())
		case !late && (got.State != engine.StateFailed || gets.Load() != 1):
			t.Fatalf("expired link: state %s after %d downloads, want failed after 1", got.State, gets.Load())
		}
	}
}
