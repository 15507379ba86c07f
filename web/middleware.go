package web

import (
	"net"
	"net/http"
	"net/url"
	"strings"
)

const (
	sessionCookie = "picbot_admin"
	langCookie    = "picbot_lang"
	csrfField     = "csrf"
)

// csp allows the console's own scripts, styles and images only: no inline
// script, no other origin, no framing.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// ServeHTTP is what every request under /admin/ goes through: headers, the
// login, the session, the CSRF token, then the page.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", csp)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	// same-origin, not no-referrer: with no-referrer a browser sends
	// "Origin: null" on the console's own form posts, which sameOrigin refuses.
	hd.Set("Referrer-Policy", "same-origin")
	hd.Set("Cache-Control", "no-store")
	if strings.HasPrefix(r.URL.Path, "/admin/static/") {
		hd.Set("Cache-Control", "private, max-age=3600")
		h.static.ServeHTTP(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead && !sameOrigin(r) {
		// A browser names the page a form came from; another site's is refused
		// even before the token is looked at (the login has no token).
		http.Error(w, "cross-origin request refused", http.StatusForbidden)
		return
	}
	if r.URL.Path == "/admin/login" {
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			h.loginShow(w, r)
		case http.MethodPost:
			h.loginCheck(w, r)
		default:
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		}
		return
	}
	se := h.session(r)
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		// Every state change: a session and its token, else 403, whatever the path.
		if se == nil || !se.validCSRF(csrfToken(w, r)) {
			http.Error(w, "forbidden: missing or wrong CSRF token (log in again and use the console's forms)", http.StatusForbidden)
			return
		}
	} else if se == nil {
		target := "/admin/login"
		if r.URL.Path != "/admin/" {
			target += "?next=" + url.QueryEscape(r.URL.RequestURI())
		}
		http.Redirect(w, r, target, http.StatusSeeOther)
		return
	}
	h.mux.ServeHTTP(w, r.WithContext(withSession(r.Context(), se)))
}

func csrfToken(w http.ResponseWriter, r *http.Request) string {
	if t := r.Header.Get("X-CSRF-Token"); t != "" {
		return t
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	return r.PostFormValue(csrfField)
}

// sameOrigin reports whether a state-changing request came from this site:
// no Origin header (not a browser, or an old one) or one naming this host.
func sameOrigin(r *http.Request) bool {
	if v := r.Header.Get("Sec-Fetch-Site"); v != "" && v != "same-origin" && v != "none" {
		return false
	}
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && u.Host == r.Host
}

func (h *Handler) session(r *http.Request) *session {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil
	}
	return h.sessions.get(c.Value)
}

// secure reports whether the console is reached over https, directly or
// through a proxy that says so.
func secure(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

// clientAddr is the address logins are limited by: the peer's IP. A proxy
// in front makes that the proxy's; X-Forwarded-For is not trusted, since
// anyone can send it.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
