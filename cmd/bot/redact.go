package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
)

// redactor is a slog handler that blanks every configured secret out of a
// record's message and attributes before the real handler sees it: a last
// line of defence for tokens that slip into errors (a library's URL, say).
type redactor struct {
	next    slog.Handler
	replace *strings.Replacer
}

func newRedactor(next slog.Handler, secrets []string) slog.Handler {
	r := secretReplacer(secrets)
	if r == nil {
		return next
	}
	return &redactor{next: next, replace: r}
}

// secretReplacer blanks secrets out of text; nil when there are none.
func secretReplacer(secrets []string) *strings.Replacer {
	var pairs []string
	for _, s := range secrets {
		if len(s) >= 4 { // shorter is not a real secret and would mangle logs
			pairs = append(pairs, s, "[REDACTED]")
		}
	}
	if len(pairs) == 0 {
		return nil
	}
	return strings.NewReplacer(pairs...)
}

// redactText blanks secrets out of text meant for a person (the start summary).
func redactText(text string, secrets []string) string {
	if r := secretReplacer(secrets); r != nil {
		return r.Replace(text)
	}
	return text
}

func (r *redactor) Enabled(ctx context.Context, l slog.Level) bool { return r.next.Enabled(ctx, l) }

func (r *redactor) Handle(ctx context.Context, rec slog.Record) error {
	out := slog.NewRecord(rec.Time, rec.Level, r.replace.Replace(rec.Message), rec.PC)
	rec.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(r.attr(a))
		return true
	})
	return r.next.Handle(ctx, out)
}

func (r *redactor) attr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, r.replace.Replace(v.String()))
	case slog.KindGroup:
		attrs := v.Group()
		out := make([]any, len(attrs))
		for i, g := range attrs {
			out[i] = r.attr(g)
		}
		return slog.Group(a.Key, out...)
	case slog.KindAny:
		// Errors and other values: their text is what gets written.
		return slog.String(a.Key, r.replace.Replace(fmt.Sprint(v.Any())))
	}
	return slog.Attr{Key: a.Key, Value: v}
}

func (r *redactor) WithAttrs(attrs []slog.Attr) slog.Handler {
	out := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		out[i] = r.attr(a)
	}
	return &redactor{next: r.next.WithAttrs(out), replace: r.replace}
}

func (r *redactor) WithGroup(name string) slog.Handler {
	return &redactor{next: r.next.WithGroup(name), replace: r.replace}
}
