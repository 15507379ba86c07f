package main

import (
	"io"
	"net/http"

	"github.com/picbot/picbot/httpapi"
)

// newServer returns the bot's HTTP server, with timeouts (http.*_timeout)
// that cut off slow clients.
func newServer(h http.Handler, c HTTPConfig) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: c.ReadHeaderTimeout,
		ReadTimeout:       c.ReadTimeout,
		WriteTimeout:      c.WriteTimeout,
		IdleTimeout:       c.IdleTimeout,
		MaxHeaderBytes:    16 << 10,
	}
}

// routes is every HTTP endpoint: vendor callbacks and input images
// (package httpapi), platform webhooks, health and metrics.
func (a *app) routes() http.Handler {
	m := http.NewServeMux()
	httpapi.Register(m, a.engine, a.cfg.HTTP.MaxBody, a.log)
	// healthz: the process answers. readyz: it takes work (not starting, not draining).
	m.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	m.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if !a.ready.Load() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ready\n")
	})
	if a.cfg.HTTP.Metrics {
		m.Handle("GET /metrics", a.metrics.Handler())
	}
	if a.web != nil {
		a.web.Register(m)
	}
	for _, p := range a.platforms {
		if r, ok := p.(routed); ok {
			r.Routes(m)
		}
	}
	return m
}
