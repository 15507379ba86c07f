package web

import (
	"bytes"
	"context"
	"embed"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/picbot/picbot/engine"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

type ctxKey struct{}

func withSession(ctx context.Context, se *session) context.Context {
	return context.WithValue(ctx, ctxKey{}, se)
}

func sessionOf(ctx context.Context) *session {
	se, _ := ctx.Value(ctxKey{}).(*session)
	return se
}

// page is what every template gets.
type page struct {
	Title string
	Nav   string // the nav entry to mark
	Lang  engine.Lang
	CSRF  string
	Who   string
	Flash string
	Error string
	Data  any
}

var funcs = template.FuncMap{
	"ago":   func(time.Time) string { return "" },
	"state": func(engine.State) string { return "" },
	"msg":   func(*engine.ErrorInfo) string { return "" },
	"when": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.Local().Format("2006-01-02 15:04:05")
	},
	"pct":  func(f float64) string { return fmt.Sprintf("%.0f%%", f*100) },
	"join": strings.Join,
}

// templates holds one set per page: the layout and that page.
var templates = map[string]*template.Template{}

func init() {
	names, err := templateFS.ReadDir("templates")
	if err != nil {
		panic(err)
	}
	for _, n := range names {
		name := n.Name()
		if name == "layout.html" {
			continue
		}
		t := template.New("layout.html").Funcs(funcs).Funcs(template.FuncMap{"T": func(string) string { return "" }}) // set per request in render
		templates[strings.TrimSuffix(name, ".html")] = template.Must(t.ParseFS(templateFS, "templates/layout.html", "templates/"+name))
	}
}

// render writes a page in the request's language.
func (h *Handler) render(w http.ResponseWriter, r *http.Request, name string, p page) {
	lang := requestLang(w, r)
	p.Lang = lang
	if se := sessionOf(r.Context()); se != nil {
		p.CSRF, p.Who = se.csrf, se.who
	}
	if p.Flash == "" {
		p.Flash = r.URL.Query().Get("done")
	}
	if p.Error == "" {
		p.Error = r.URL.Query().Get("error")
	}
	p.Title = tr(lang, p.Title)
	t, err := h.clone(name, lang)
	if err != nil {
		h.fail(w, err)
		return
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, p); err != nil {
		h.fail(w, err)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(buf.Bytes())
}

func (h *Handler) fail(w http.ResponseWriter, err error) {
	h.log.Error("web console", "err", err)
	http.Error(w, "internal error (see the bot's log)", http.StatusInternalServerError)
}

// clone is a page's templates with the functions that speak lang.
func (h *Handler) clone(name string, lang engine.Lang) (*template.Template, error) {
	t, err := templates[name].Clone()
	if err != nil {
		return nil, err
	}
	return t.Funcs(template.FuncMap{
		"T": func(s string) string { return tr(lang, s) },
		"ago": func(t time.Time) string {
			if t.IsZero() {
				return ""
			}
			return engine.FormatDuration(h.now().Sub(t).Round(time.Second), lang)
		},
		"state": func(s engine.State) string { return engine.StateText(s, lang) },
		"msg":   func(e *engine.ErrorInfo) string { return e.Message(lang) },
	}), nil
}

// requestLang is the console's language: ?lang= (kept in a cookie), the
// cookie, then Accept-Language.
func requestLang(w http.ResponseWriter, r *http.Request) engine.Lang {
	if q := r.URL.Query().Get("lang"); q == "en" || q == "zh" {
		http.SetCookie(w, &http.Cookie{Name: langCookie, Value: q, Path: "/admin/", MaxAge: 365 * 24 * 3600,
			HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: secure(r)})
		return engine.Lang(q)
	}
	if c, err := r.Cookie(langCookie); err == nil && (c.Value == "en" || c.Value == "zh") {
		return engine.Lang(c.Value)
	}
	return acceptLang(r.Header.Get("Accept-Language"))
}

// acceptLang picks zh or en from an Accept-Language header, by quality.
func acceptLang(h string) engine.Lang {
	best, bestQ := engine.EN, -1.0
	for _, part := range strings.Split(h, ",") {
		tag, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		q := 1.0
		if v, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			fmt.Sscanf(v, "%g", &q)
		}
		tag = strings.ToLower(tag)
		var l engine.Lang
		switch {
		case strings.HasPrefix(tag, "zh"):
			l = engine.ZH
		case strings.HasPrefix(tag, "en"):
			l = engine.EN
		default:
			continue
		}
		if q > bestQ {
			best, bestQ = l, q
		}
	}
	return best
}
