package main

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/picbot/picbot/engine"
)

// newServer returns the bot's HTTP server, with timeouts that cut off slow clients.
func newServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
	}
}

// routes is every HTTP endpoint: vendor callbacks, input images for vendors, health.
func (a *app) routes() http.Handler {
	m := http.NewServeMux()
	m.HandleFunc("POST /callback/{vendor}/{id}/{token}", a.handleCallback)
	m.HandleFunc("GET /input/{id}/{token}/{i}", a.handleInput)
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
	for _, p := range a.platforms {
		if r, ok := p.(routed); ok {
			r.Routes(m)
		}
	}
	return m
}

// handleCallback passes a vendor's callback to the engine. The token in the
// path is the only proof the caller is the vendor: a wrong one is a 404.
func (a *app) handleCallback(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, a.cfg.HTTP.MaxBody))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
		return
	}
	if err != nil {
		http.Error(w, "bad body", http.StatusBadRequest)
		return
	}
	vendor, id := r.PathValue("vendor"), r.PathValue("id")
	ct, reply, err := a.engine.HandleCallback(r.Context(), vendor, id, r.PathValue("token"), body)
	if err != nil {
		a.httpError(w, err, slog.String("vendor", vendor), slog.String("job_id", id))
		return
	}
	w.Header().Set("Content-Type", ct)
	w.Write(reply)
}

// handleInput serves a job's input image to the vendor working on it.
func (a *app) handleInput(w http.ResponseWriter, r *http.Request) {
	i, err := strconv.Atoi(r.PathValue("i"))
	if err != nil {
		http.NotFound(w, r)
		return
	}
	rc, mime, err := a.engine.OpenInput(r.Context(), r.PathValue("id"), r.PathValue("token"), i)
	if err != nil {
		a.httpError(w, err, slog.String("job_id", r.PathValue("id")))
		return
	}
	defer rc.Close()
	w.Header().Set("Content-Type", mime)
	io.Copy(w, rc)
}

// httpError maps an engine error code to a status.
func (a *app) httpError(w http.ResponseWriter, err error, attrs ...any) {
	status := map[string]int{
		engine.ENOTFOUND:  http.StatusNotFound,
		engine.EINVALID:   http.StatusBadRequest,
		engine.EFORBIDDEN: http.StatusForbidden,
	}[engine.ErrorCode(err)]
	if status == 0 {
		status = http.StatusInternalServerError
		a.log.Error("http handler", append(attrs, slog.Any("err", err))...)
	}
	http.Error(w, http.StatusText(status), status)
}
