// Package metrics exposes the bot's Prometheus metrics. It implements
// engine.Observer, so the engine stays free of the client library.
package metrics

import (
	"net/http"
	"time"

	"github.com/picbot/picbot/engine"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds every collector.
type Metrics struct {
	reg       *prometheus.Registry
	jobs      *prometheus.GaugeVec
	ended     *prometheus.CounterVec
	billed    *prometheus.CounterVec
	latency   prometheus.Histogram
	added     prometheus.Histogram
	refusals  *prometheus.CounterVec
	throttled *prometheus.CounterVec
	disk      *prometheus.GaugeVec
	files     prometheus.Gauge
	uncertain *prometheus.CounterVec
	moderated *prometheus.CounterVec
	lockouts  prometheus.Counter
	acctCalls *prometheus.CounterVec
	acctPark  *prometheus.CounterVec
}

var (
	_ engine.Observer       = (*Metrics)(nil)
	_ engine.SubmitObserver = (*Metrics)(nil)
)

// New registers the collectors, with Go runtime and process metrics.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		jobs: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "picbot_jobs", Help: "Unfinished jobs by state.",
		}, []string{"state"}),
		ended: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "picbot_jobs_ended_total", Help: "Jobs that reached a final state, by state.",
		}, []string{"state"}),
		billed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "picbot_vendor_billed_calls_total", Help: "Billed vendor calls, by vendor.",
		}, []string{"vendor"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "picbot_delivery_seconds", Help: "From command to delivered result.",
			Buckets: []float64{1, 2, 5, 10, 20, 30, 60, 120, 300, 600},
		}),
		added: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "picbot_added_latency_seconds", Help: "The bot's own latency: from the vendor done to the post starting.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "picbot_refusals_total", Help: "Commands refused before becoming jobs, by error code (quota, rate_limit, forbidden, invalid...).",
		}, []string{"code"}),
		throttled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "picbot_platform_rate_limited_total", Help: "429 answers from chat platforms, by platform.",
		}, []string{"platform"}),
		disk: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "picbot_store_bytes", Help: "Disk used by the store, by part: the database file and the image directory. Measured periodically, not per scrape.",
		}, []string{"part"}),
		files: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "picbot_store_images", Help: "Files in the image directory. Measured periodically.",
		}),
		uncertain: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "picbot_submissions_uncertain_total", Help: "Submissions whose answer was lost, by vendor and outcome (found, absent, resubmit, fail).",
		}, []string{"vendor", "outcome"}),
		moderated: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "picbot_moderation_refusals_total", Help: "Commands refused by moderation, by reason (blocked, nsfw, locked).",
		}, []string{"reason"}),
		lockouts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "picbot_moderation_lockouts_total", Help: "Users locked out after repeated refused prompts.",
		}),
		acctCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "picbot_vendor_account_billed_calls_total", Help: "Billed vendor calls by vendor and account (vendors with account pools).",
		}, []string{"vendor", "account"}),
		acctPark: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "picbot_vendor_account_parked_total", Help: "Vendor accounts parked, by vendor, account and reason (exhausted, failing, daily_limit).",
		}, []string{"vendor", "account", "reason"}),
	}
	m.reg.MustRegister(m.moderated, m.lockouts, m.acctCalls, m.acctPark)
	m.reg.MustRegister(m.jobs, m.ended, m.billed, m.latency, m.added, m.refusals, m.throttled, m.disk, m.files, m.uncertain,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves /metrics.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Admitted implements engine.Observer.
func (m *Metrics) Admitted(j *engine.Job) { m.jobs.WithLabelValues(string(j.State)).Inc() }

// Refused implements engine.Observer.
func (m *Metrics) Refused(code string) { m.refusals.WithLabelValues(code).Inc() }

// Moved implements engine.Observer.
func (m *Metrics) Moved(j *engine.Job, from engine.State) {
	m.jobs.WithLabelValues(string(from)).Dec()
	if j.State.Terminal() {
		m.ended.WithLabelValues(string(j.State)).Inc()
		if j.State == engine.StateDelivered {
			m.latency.Observe(j.DeliveredAt.Sub(j.CreatedAt).Seconds())
		}
		return
	}
	m.jobs.WithLabelValues(string(j.State)).Inc()
}

// Billed implements engine.Observer.
func (m *Metrics) Billed(vendor string, calls int) {
	m.billed.WithLabelValues(vendor).Add(float64(calls))
}

// SubmitUncertain implements engine.SubmitObserver.
func (m *Metrics) SubmitUncertain(vendor, outcome string) {
	m.uncertain.WithLabelValues(vendor, outcome).Inc()
}

// DeliveryStarted implements engine.Observer.
func (m *Metrics) DeliveryStarted(j *engine.Job, added time.Duration) {
	m.added.Observe(added.Seconds())
}

// RateLimited counts a 429 from a chat platform.
func (m *Metrics) RateLimited(platform string) { m.throttled.WithLabelValues(platform).Inc() }

// DatabaseSize records the database file's size.
func (m *Metrics) DatabaseSize(bytes int64) { m.disk.WithLabelValues("database").Set(float64(bytes)) }

// ImagesSize records the image directory's size and file count.
func (m *Metrics) ImagesSize(bytes int64, files int) {
	m.disk.WithLabelValues("blobs").Set(float64(bytes))
	m.files.Set(float64(files))
}

// ModerationRefused counts a command moderation refused.
func (m *Metrics) ModerationRefused(reason string) { m.moderated.WithLabelValues(reason).Inc() }

// ModerationLockout counts a lockout started.
func (m *Metrics) ModerationLockout() { m.lockouts.Inc() }

// AccountBilled counts billed calls through one vendor account.
func (m *Metrics) AccountBilled(vendor, account string, calls int) {
	m.acctCalls.WithLabelValues(vendor, account).Add(float64(calls))
}

// AccountParked counts an account parked.
func (m *Metrics) AccountParked(vendor, account, reason string) {
	m.acctPark.WithLabelValues(vendor, account, reason).Inc()
}

// Refusals reads the refusals counted since start, by error code, for the web console.
func (m *Metrics) Refusals() map[string]float64 {
	out := map[string]float64{}
	fams, err := m.reg.Gather()
	if err != nil {
		return out
	}
	for _, f := range fams {
		if f.GetName() != "picbot_refusals_total" {
			continue
		}
		for _, mt := range f.GetMetric() {
			for _, l := range mt.GetLabel() {
				if l.GetName() == "code" {
					out[l.GetValue()] += mt.GetCounter().GetValue()
				}
			}
		}
	}
	return out
}
