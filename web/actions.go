package web

import (
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/picbot/picbot/engine"
)

// operator is the user the engine sees acting for the console.
func operator(se *session) engine.UserRef {
	return engine.UserRef{Platform: "web", ID: se.who, Name: se.who}
}

// done records an action and sends the browser back to the page it came
// from (the form's back field), saying how it went.
func (h *Handler) done(w http.ResponseWriter, r *http.Request, action, target, detail string, err error) {
	se := sessionOf(r.Context())
	h.record(r, se, action, target, detail, err)
	back := safeNext(r.PostFormValue("back"))
	lang := requestLang(w, r)
	sep := "?"
	if strings.Contains(back, "?") {
		sep = "&"
	}
	if err != nil {
		back += sep + "error=" + url.QueryEscape(errText(err, lang))
	} else {
		msg := tr(lang, "Done") + ": " + action
		if target != "" {
			msg += " " + target
		}
		if detail != "" {
			msg += " " + detail
		}
		back += sep + "done=" + url.QueryEscape(msg)
	}
	http.Redirect(w, r, back, http.StatusSeeOther)
}

// errText is an error as an operator may read it: an engine error's own
// message, anything else a pointer to the log (where it is in full).
func errText(err error, lang ...engine.Lang) string {
	var e *engine.Error
	if errors.As(err, &e) && e.Code != engine.EINTERNAL {
		l := engine.EN
		if len(lang) > 0 {
			l = lang[0]
		}
		return e.Message(l)
	}
	return "internal error (see the bot's log)"
}

func (h *Handler) jobCancel(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	_, err := h.engine.Cancel(r.Context(), id, operator(sessionOf(r.Context())), true)
	h.done(w, r, "cancel", id, "", err)
}

func (h *Handler) jobRetry(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	_, err := h.engine.RetryDelivery(r.Context(), id)
	h.done(w, r, "retry delivery", id, "", err)
}

// jobRefund gives a finished job's cost back to its owner's quota.
func (h *Handler) jobRefund(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	_, err := h.jobs.UpdateJob(r.Context(), id, func(j *engine.Job, c engine.Counters) error { return h.admin.Refund(c, j) })
	h.done(w, r, "refund", id, "", err)
}

func (h *Handler) resultIndex(w http.ResponseWriter, r *http.Request) (string, int, bool) {
	i, err := strconv.Atoi(r.PathValue("i"))
	if err != nil || i < 0 {
		http.NotFound(w, r)
		return "", 0, false
	}
	return r.PathValue("id"), i, true
}

// imageHide hides (or with show=1 shows again) an image on the console's
// gallery; the chat it was posted to is not changed.
func (h *Handler) imageHide(w http.ResponseWriter, r *http.Request) {
	id, i, ok := h.resultIndex(w, r)
	if !ok {
		return
	}
	show := r.PostFormValue("show") == "1"
	_, err := h.jobs.UpdateJob(r.Context(), id, func(j *engine.Job, _ engine.Counters) error {
		if i >= len(j.Results) {
			return engine.Errorf(engine.ENOTFOUND, "Job %s has no image %d.", "任务 %s 没有第 %d 张图片。", id, i+1)
		}
		if j.Meta == nil {
			j.Meta = map[string]string{}
		}
		if show {
			delete(j.Meta, hiddenKey(i))
		} else {
			j.Meta[hiddenKey(i)] = "1"
		}
		return nil
	})
	action := "hide image"
	if show {
		action = "show image"
	}
	h.done(w, r, action, id, strconv.Itoa(i+1), err)
}

// imageDelete takes an image off its job; the file goes with the next
// retention passes once no job names it. Only a delivered job's images
// can go: one not yet posted still needs them.
func (h *Handler) imageDelete(w http.ResponseWriter, r *http.Request) {
	id, i, ok := h.resultIndex(w, r)
	if !ok {
		return
	}
	_, err := h.jobs.UpdateJob(r.Context(), id, func(j *engine.Job, _ engine.Counters) error {
		if i >= len(j.Results) {
			return engine.Errorf(engine.ENOTFOUND, "Job %s has no image %d.", "任务 %s 没有第 %d 张图片。", id, i+1)
		}
		if !j.State.Terminal() {
			return engine.Errorf(engine.ECONFLICT, "Job %s is not finished; its images are still needed.", "任务 %s 尚未结束，图片仍需使用。", id)
		}
		j.Results = slices.Delete(j.Results, i, i+1)
		// Hidden marks follow their images down.
		meta := map[string]string{}
		for k, v := range j.Meta {
			if !strings.HasPrefix(k, "web.hidden.") {
				meta[k] = v
			}
		}
		for n := range j.Results {
			old := n
			if n >= i {
				old = n + 1
			}
			if j.Meta[hiddenKey(old)] != "" {
				meta[hiddenKey(n)] = "1"
			}
		}
		j.Meta = meta
		return nil
	})
	h.done(w, r, "delete image", id, strconv.Itoa(i+1), err)
}

// peopleAction runs ban, unban, tier and quota: quota.Quota's own
// methods, the ones /admin runs in a chat.
func (h *Handler) peopleAction(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	action := r.PathValue("action")
	key := strings.TrimSpace(r.PostFormValue("key"))
	if !validKey(key) {
		h.done(w, r, action, key, "", engine.Errorf(engine.EINVALID, "Give a key with its platform, like telegram:12345.", "请给出带平台的标识，如 telegram:12345。"))
		return
	}
	var err error
	detail := ""
	switch action {
	case "ban", "unban":
		err = h.admin.Ban(ctx, key, action == "ban")
	case "tier":
		detail = strings.TrimSpace(r.PostFormValue("tier"))
		if detail == "" {
			detail = "default"
		}
		err = h.admin.SetTier(ctx, key, detail)
	case "quota":
		detail = strings.TrimSpace(r.PostFormValue("daily"))
		n := -1
		if detail != "" && detail != "default" {
			if n, err = strconv.Atoi(detail); err != nil || n < 0 {
				err = engine.Errorf(engine.EINVALID, "The quota must be a whole number or default.", "额度必须是整数或 default。")
				break
			}
		} else {
			detail = "default"
		}
		err = h.admin.SetDaily(ctx, key, n)
	default:
		http.NotFound(w, r)
		return
	}
	h.done(w, r, action, key, detail, err)
}

// validKey is a quota key: platform:id, printable, short.
func validKey(k string) bool {
	p, id, ok := strings.Cut(k, ":")
	return ok && p != "" && id != "" && len(k) <= 100 && !strings.ContainsAny(k, " \t\r\n")
}

func bufCopy(w io.Writer, r io.Reader) { _, _ = io.Copy(w, r) }
