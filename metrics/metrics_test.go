package metrics_test

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/picbot/picbot/engine"
	"github.com/picbot/picbot/metrics"
)

func TestMetrics(t *testing.T) {
	m := metrics.New()
	now := time.Now()
	j := &engine.Job{ID: "a", State: engine.StateQueued, Vendor: "zhiqite", CreatedAt: now}
	m.Admitted(j)
	j.State = engine.StateSubmitted
	m.Moved(j, engine.StateQueued)
	m.Billed("zhiqite", 2)
	m.DeliveryStarted(j, 20*time.Millisecond)
	j.State, j.DeliveredAt = engine.StateDelivered, now.Add(9*time.Second)
	m.Moved(j, engine.StateSucceeded)
	m.Refused(engine.EQUOTA)
	m.RateLimited("telegram")
	m.DatabaseSize(1 << 20)
	m.ImagesSize(5<<20, 7)

	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, want := range []string{
		`picbot_jobs{state="queued"} 0`,
		`picbot_jobs{state="submitted"} 1`,
		`picbot_jobs_ended_total{state="delivered"} 1`,
		`picbot_vendor_billed_calls_total{vendor="zhiqite"} 2`,
		`picbot_delivery_seconds_bucket{le="10"} 1`,
		`picbot_added_latency_seconds_bucket{le="0.025"} 1`,
		`picbot_refusals_total{code="quota"} 1`,
		`picbot_platform_rate_limited_total{platform="telegram"} 1`,
		`picbot_store_bytes{part="database"} 1.048576e+06`,
		`picbot_store_bytes{part="blobs"} 5.24288e+06`,
		`picbot_store_images 7`,
		`go_goroutines`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("no %s in:\n%s", want, body)
		}
	}
}

// Moderation and vendor accounts' figures.
func TestOpsMetrics(t *testing.T) {
	m := metrics.New()
	m.ModerationRefused("blocked")
	m.ModerationRefused("blocked")
	m.ModerationLockout()
	m.AccountBilled("zhiqite", "main", 3)
	m.AccountParked("zhiqite", "main", "exhausted")
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, want := range []string{
		`picbot_moderation_refusals_total{reason="blocked"} 2`,
		`picbot_moderation_lockouts_total 1`,
		`picbot_vendor_account_billed_calls_total{account="main",vendor="zhiqite"} 3`,
		`picbot_vendor_account_parked_total{account="main",reason="exhausted",vendor="zhiqite"} 1`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("no %s in:\n%s", want, body)
		}
	}
}

func TestRefusals(t *testing.T) {
	m := metrics.New()
	m.Refused(engine.EQUOTA)
	m.Refused(engine.EQUOTA)
	m.Refused(engine.EFORBIDDEN)
	got := m.Refusals()
	if len(got) != 2 || got[engine.EQUOTA] != 2 || got[engine.EFORBIDDEN] != 1 {
		t.Fatalf("refusals %v", got)
	}
}
