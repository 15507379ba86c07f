package web

import (
	"math"
	"net/http"
	"slices"
	"sort"
	"time"

	"github.com/picbot/picbot/engine"
	"github.com/picbot/picbot/quota"
	"github.com/picbot/picbot/store"
)

// galleryItem is one image of the grid.
type galleryItem struct {
	Job    string
	Index  int
	Prompt string
	User   string
	Hidden bool
}

func (h *Handler) gallery(w http.ResponseWriter, r *http.Request) {
	showHidden := r.URL.Query().Get("hidden") == "1"
	var items []galleryItem
	seen := 0
	err := h.jobs.RecentJobs(r.Context(), time.Time{}, func(j *engine.Job) bool {
		seen++
		for i := range j.Results {
			if hid := hidden(j, i); !hid || showHidden {
				items = append(items, galleryItem{Job: j.ID, Index: i, Prompt: j.Request.Prompt, User: j.Owner.Key(), Hidden: hid})
			}
		}
		return len(items) < 60 && seen < scanBound
	})
	if err != nil {
		h.fail(w, err)
		return
	}
	h.render(w, r, "gallery", page{Title: "Gallery", Nav: "gallery", Data: map[string]any{"Items": items, "ShowHidden": showHidden}})
}

func (h *Handler) people(w http.ResponseWriter, r *http.Request) {
	ps, err := h.admin.People(r.Context())
	if err != nil {
		h.fail(w, err)
		return
	}
	var users, chats []quota.Person
	for _, p := range ps {
		if p.Chat {
			chats = append(chats, p)
		} else {
			users = append(users, p)
		}
	}
	h.render(w, r, "people", page{Title: "People", Nav: "people", Data: map[string]any{
		"Users": users, "Chats": chats, "Tiers": h.admin.Tiers(), "Key": r.URL.Query().Get("key")}})
}

// dayBar is one day of a vendor's chart.
type dayBar struct {
	Day    string
	Calls  int64
	Height int // percent of the chart's tallest day
	Spend  float64
}

type vendorView struct {
	engine.VendorHealth
	Today               quota.VendorStats
	Days                []dayBar
	Calls30, Failed30   int64
	Refunds30           int64
	Spend30, SpendToday float64
	Price               float64
	Catalogue           int
	HasCatalogue        bool
}

// history reads the quota's per-day figures for the last n days, oldest first.
func (h *Handler) history(r *http.Request, n int) ([]quota.Stats, error) {
	now := h.now()
	out := make([]quota.Stats, 0, n)
	for i := n - 1; i >= 0; i-- {
		st, err := h.admin.StatsOn(r.Context(), h.admin.Day(now.AddDate(0, 0, -i)))
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

func (h *Handler) vendors(w http.ResponseWriter, r *http.Request) {
	days, err := h.history(r, 30)
	if err != nil {
		h.fail(w, err)
		return
	}
	var cats map[string]int
	if h.figures.Catalogues != nil {
		cats = h.figures.Catalogues(r.Context())
	}
	var views []vendorView
	for _, hv := range h.engine.Health() {
		v := vendorView{VendorHealth: hv, Price: h.cfg.Prices[hv.Name]}
		v.Catalogue, v.HasCatalogue = cats[hv.Name]
		var top int64
		for _, d := range days {
			bar := dayBar{Day: d.Day}
			for _, vs := range d.Vendors {
				if vs.Vendor == hv.Name {
					bar.Calls = vs.Calls
					v.Failed30 += vs.Failed
					v.Refunds30 += vs.Refunds
					v.Today = vs
				}
			}
			bar.Spend = float64(bar.Calls) * v.Price
			v.Calls30 += bar.Calls
			v.Spend30 += bar.Spend
			top = max(top, bar.Calls)
			v.Days = append(v.Days, bar)
		}
		if d := days[len(days)-1]; !slices.ContainsFunc(d.Vendors, func(vs quota.VendorStats) bool { return vs.Vendor == hv.Name }) {
			v.Today = quota.VendorStats{Vendor: hv.Name}
		}
		v.SpendToday = float64(v.Today.Calls) * v.Price
		for i := range v.Days {
			if top > 0 {
				v.Days[i].Height = int(v.Days[i].Calls * 100 / top)
			}
		}
		views = append(views, v)
	}
	h.render(w, r, "vendors", page{Title: "Vendors", Nav: "vendors", Data: map[string]any{
		"Vendors": views, "Currency": h.cfg.Currency, "Zone": days[len(days)-1].Zone}})
}

type hourBar struct {
	Hour   string
	Jobs   int
	Height int
}

type overviewData struct {
	Hours                 []hourBar
	Jobs24, Delivered24   int
	Failed24              int
	P50, P99              string
	Queue                 int
	Refusals              []kv
	Database, Images      int64
	Files                 int
	HasDisk, HasRefusals  bool
	JobsToday, CallsToday int64
}

type kv struct {
	Key   string
	Value float64
}

func (h *Handler) overview(w http.ResponseWriter, r *http.Request) {
	now := h.now()
	since := now.Add(-24 * time.Hour)
	d := overviewData{Queue: h.engine.Outstanding("")}
	counts := make([]int, 24)
	var took []time.Duration
	err := h.jobs.RecentJobs(r.Context(), time.Time{}, func(j *engine.Job) bool {
		if j.CreatedAt.Before(since) {
			return false
		}
		d.Jobs24++
		if i := int(now.Sub(j.CreatedAt) / time.Hour); i >= 0 && i < 24 {
			counts[23-i]++
		}
		switch j.State {
		case engine.StateDelivered:
			d.Delivered24++
			if !j.DeliveredAt.IsZero() {
				took = append(took, j.DeliveredAt.Sub(j.CreatedAt))
			}
		case engine.StateFailed:
			d.Failed24++
		}
		return d.Jobs24 < 100000
	})
	if err != nil {
		h.fail(w, err)
		return
	}
	top := slices.Max(counts)
	for i, n := range counts {
		b := hourBar{Hour: now.Add(time.Duration(i-23) * time.Hour).Local().Format("15h"), Jobs: n}
		if top > 0 {
			b.Height = n * 100 / top
		}
		d.Hours = append(d.Hours, b)
	}
	if len(took) > 0 {
		slices.Sort(took)
		d.P50 = engine.FormatDuration(quantile(took, 0.50).Round(100*time.Millisecond), requestLang(w, r))
		d.P99 = engine.FormatDuration(quantile(took, 0.99).Round(100*time.Millisecond), requestLang(w, r))
	}
	if h.figures.Refusals != nil {
		d.HasRefusals = true
		for k, v := range h.figures.Refusals() {
			d.Refusals = append(d.Refusals, kv{k, v})
		}
		sort.Slice(d.Refusals, func(i, j int) bool { return d.Refusals[i].Value > d.Refusals[j].Value })
	}
	if h.figures.Disk != nil {
		d.HasDisk = true
		d.Database, d.Images, d.Files = h.figures.Disk(r.Context())
	}
	if st, err := h.admin.StatsOn(r.Context(), h.admin.Day(now)); err == nil {
		d.JobsToday = st.Jobs
		for _, v := range st.Vendors {
			d.CallsToday += v.Calls
		}
	}
	h.render(w, r, "overview", page{Title: "Overview", Nav: "overview", Data: d})
}

// quantile of sorted durations, nearest rank.
func quantile(sorted []time.Duration, q float64) time.Duration {
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func (h *Handler) auditLog(w http.ResponseWriter, r *http.Request) {
	entries, err := h.audit.Audit(r.Context(), 200)
	if err != nil {
		h.fail(w, err)
		return
	}
	h.render(w, r, "audit", page{Title: "Audit log", Nav: "audit", Data: []store.AuditEntry(entries)})
}
