package web

import (
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"
	"unicode"

	"github.com/picbot/picbot/store"
)

func (h *Handler) loginShow(w http.ResponseWriter, r *http.Request) {
	if h.session(r) != nil {
		http.Redirect(w, r, "/admin/", http.StatusSeeOther)
		return
	}
	h.render(w, r, "login", page{Title: "Log in", Data: safeNext(r.URL.Query().Get("next"))})
}

// loginCheck takes the form's password; each address has a few tries per
// window, counted before the password is checked, so guessing is slow.
func (h *Handler) loginCheck(w http.ResponseWriter, r *http.Request) {
	addr := clientAddr(r)
	if blocked, left := h.logins.blocked(addr); blocked {
		w.Header().Set("Retry-After", fmt.Sprint(int(left.Seconds())+1))
		w.WriteHeader(http.StatusTooManyRequests)
		h.render(w, r, "login", page{Title: "Log in", Error: tr(requestLang(w, r), "Too many failed logins from your address; try again later.")})
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if !h.check(r.PostFormValue("password")) {
		h.logins.failed(addr)
		h.log.Warn("web console: failed login", slog.String("addr", addr))
		w.WriteHeader(http.StatusUnauthorized)
		h.render(w, r, "login", page{Title: "Log in", Error: tr(requestLang(w, r), "Wrong password."), Data: safeNext(r.PostFormValue("next"))})
		return
	}
	h.logins.succeeded(addr)
	name := cleanName(r.PostFormValue("name"))
	se := h.sessions.create(name + "@" + addr)
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: se.id, Path: "/admin/", HttpOnly: true, Secure: secure(r),
		SameSite: http.SameSiteStrictMode, Expires: se.expires, MaxAge: int(h.cfg.SessionTTL / time.Second),
	})
	h.record(r, se, "login", "", "", nil)
	http.Redirect(w, r, safeNext(r.PostFormValue("next")), http.StatusSeeOther)
}

func (h *Handler) logout(w http.ResponseWriter, r *http.Request) {
	se := sessionOf(r.Context())
	h.sessions.remove(se.id)
	h.record(r, se, "logout", "", "", nil)
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/admin/", MaxAge: -1, HttpOnly: true, Secure: secure(r), SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/admin/login", http.StatusSeeOther)
}

// safeNext keeps a redirect after login on the console: a path under /admin/, never another site.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/admin/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return "/admin/"
	}
	return next
}

// cleanName is the operator's name for the audit log: short, printable, "admin" if none.
func cleanName(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) && r != '@' {
			return r
		}
		return -1
	}, strings.TrimSpace(s))
	if r := []rune(s); len(r) > 40 {
		s = string(r[:40])
	}
	if s == "" {
		return "admin"
	}
	return s
}

// record writes an admin action to the audit log; err nil is success. A
// failed write is logged: the action itself has happened already.
func (h *Handler) record(r *http.Request, se *session, action, target, detail string, err error) {
	e := store.AuditEntry{At: h.now().UTC(), Who: se.who, Action: action, Target: target, Detail: detail, Result: "ok"}
	if err != nil {
		e.Result = "error: " + errText(err)
	}
	if werr := h.audit.AppendAudit(r.Context(), e); werr != nil {
		h.log.Error("web console: audit log", slog.Any("err", werr), slog.String("action", action), slog.String("target", target))
	}
	h.log.Info("web console action", slog.String("who", e.Who), slog.String("action", action), slog.String("target", target),
		slog.String("detail", detail), slog.String("result", e.Result))
}
