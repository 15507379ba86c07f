// Package httpapi is the part of the bot's HTTP server that vendors call:
// callbacks at /callback/<vendor>/<job>/<token> and input images at
// /input/<job>/<token>/<i>. The token in the path, unguessable and per job, is
// the only proof that the caller is the vendor working on that job.
package httpapi

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/picbot/picbot/engine"
)

// Engine is what the handlers need of the engine.
type Engine interface {
	HandleCallback(ctx context.Context, vendor, id, token string, body []byte) (contentType string, reply []byte, err error)
	OpenInput(ctx context.Context, id, token string, i int) (io.ReadCloser, string, error)
}

// Register adds the vendor-facing routes to m. Callback bodies over maxBody get 413.
func Register(m *http.ServeMux, e Engine, maxBody int64, log *slog.Logger) {
	h := &handlers{e: e, maxBody: maxBody, log: log}
	m.HandleFunc("POST /callback/{vendor}/{id}/{token}", h.callback)
	m.HandleFunc("GET /input/{id}/{token}/{i}", h.input)
}

type handlers struct {
	e       Engine
	maxBody int64
	log     *slog.Logger
}

func (h *handlers) callback(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.maxBody))
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
	ct, reply, err := h.e.HandleCallback(r.Context(), vendor, id, r.PathValue("token"), body)
	if err != nil {
		Error(w, h.log, err, slog.String("vendor", vendor), slog.String("job_id", id))
		return
	}
	w.Header().Set("Content-Type", ct)
	w.Write(reply)
}

func (h *handlers) input(w http.ResponseWriter, r *http.Request) {
	i, err := strconv.Atoi(r.PathValue("i"))
	if err != nil {
		http.NotFound(w, r)
		return
	}
	rc, mime, err := h.e.OpenInput(r.Context(), r.PathValue("id"), r.PathValue("token"), i)
	if err != nil {
		Error(w, h.log, err, slog.String("job_id", r.PathValue("id")))
		return
	}
	defer rc.Close()
	w.Header().Set("Content-Type", mime)
	io.Copy(w, rc)
}

// statuses maps engine error codes to HTTP statuses; anything else is a 500.
var statuses = map[string]int{
	engine.ENOTFOUND:  http.StatusNotFound,
	engine.EINVALID:   http.StatusBadRequest,
	engine.EFORBIDDEN: http.StatusForbidden,
}

// Error answers err with its status; unexpected errors are logged in full.
func Error(w http.ResponseWriter, log *slog.Logger, err error, attrs ...any) {
	status := statuses[engine.ErrorCode(err)]
	if status == 0 {
		status = http.StatusInternalServerError
		log.Error("http handler", append(attrs, slog.Any("err", err))...)
	}
	http.Error(w, http.StatusText(status), status)
}
