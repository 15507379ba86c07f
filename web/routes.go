package web

import (
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"time"
)

// Handler serves /admin/.
type Handler struct {
	cfg      Config
	jobs     Jobs
	engine   Engine
	admin    Admin
	audit    Audit
	blobs    Blobs
	figures  Figures
	check    checker
	sessions *sessions
	logins   *limiter
	mux      *http.ServeMux
	static   http.Handler
	log      *slog.Logger
	now      func() time.Time
}

// New returns the console's handler; an unreadable password hash is an error.
func New(cfg Config, jobs Jobs, eng Engine, admin Admin, audit Audit, blobs Blobs, fig Figures) (*Handler, error) {
	check, err := newChecker(cfg.Password, cfg.PasswordHash)
	if err != nil {
		return nil, fmt.Errorf("web: %w", err)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 12 * time.Hour
	}
	if cfg.LoginAttempts <= 0 {
		cfg.LoginAttempts = 5
	}
	if cfg.LoginWindow <= 0 {
		cfg.LoginWindow = 15 * time.Minute
	}
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, err
	}
	h := &Handler{
		cfg: cfg, jobs: jobs, engine: eng, admin: admin, audit: audit, blobs: blobs, figures: fig, check: check,
		sessions: newSessions(cfg.SessionTTL, cfg.Now),
		logins:   &limiter{max: cfg.LoginAttempts, window: cfg.LoginWindow, now: cfg.Now, fails: map[string]*attempts{}},
		mux:      http.NewServeMux(), log: cfg.Log, now: cfg.Now,
		static: http.StripPrefix("/admin/static/", http.FileServerFS(sub)),
	}
	h.routes()
	return h, nil
}

// Register serves the console under /admin/ on m.
func (h *Handler) Register(m *http.ServeMux) {
	m.Handle("/admin/", h)
	m.Handle("/admin", http.RedirectHandler("/admin/", http.StatusSeeOther))
}

// routes lists every page and action. Every POST but the login needs the
// session's CSRF token, checked in ServeHTTP before any of these runs.
func (h *Handler) routes() {
	m := h.mux
	m.HandleFunc("GET /admin/{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/admin/overview", http.StatusSeeOther)
	})
	m.HandleFunc("POST /admin/logout", h.logout)
	m.HandleFunc("GET /admin/overview", h.overview)
	m.HandleFunc("GET /admin/jobs", h.jobsList)
	m.HandleFunc("GET /admin/jobs/{id}", h.jobShow)
	m.HandleFunc("GET /admin/jobs/{id}/images/{i}", h.jobImage)
	m.HandleFunc("GET /admin/jobs/{id}/inputs/{i}", h.jobInput)
	m.HandleFunc("POST /admin/jobs/{id}/cancel", h.jobCancel)
	m.HandleFunc("POST /admin/jobs/{id}/retry", h.jobRetry)
	m.HandleFunc("POST /admin/jobs/{id}/refund", h.jobRefund)
	m.HandleFunc("POST /admin/jobs/{id}/images/{i}/hide", h.imageHide)
	m.HandleFunc("POST /admin/jobs/{id}/images/{i}/delete", h.imageDelete)
	m.HandleFunc("GET /admin/gallery", h.gallery)
	m.HandleFunc("GET /admin/people", h.people)
	m.HandleFunc("POST /admin/people/{action}", h.peopleAction)
	m.HandleFunc("GET /admin/vendors", h.vendors)
	m.HandleFunc("GET /admin/audit", h.auditLog)
}
