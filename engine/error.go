package engine

import (
	"errors"
	"fmt"
)

// Error codes. Every error that can reach a user carries one; a bot maps the
// code to the tone of its reply and shows the localized message.
const (
	ECONFLICT    = "conflict"    // the job is not in a state that allows this
	EFORBIDDEN   = "forbidden"   // banned, not allowed here, not the owner
	EINTERNAL    = "internal"    // a bug or an unexpected failure: logged in full, user sees the job id
	EINVALID     = "invalid"     // bad command or parameter
	ENOTFOUND    = "not_found"   // no such job, model, image
	EQUOTA       = "quota"       // a daily or concurrent quota is used up
	ERATELIMIT   = "rate_limit"  // too many commands in a short time
	EUNAVAILABLE = "unavailable" // no vendor can take the job now; temporary
	EUNSAFE      = "unsafe"      // the vendor's content audit rejected the prompt or image
	EVENDOR      = "vendor"      // the vendor failed the task
	ETIMEOUT     = "timeout"     // the job passed its deadline
	EUNDELIVERED = "undelivered" // the result could not be posted to the chat
	ECANCELLED   = "cancelled"   // the user cancelled the job
)

// ErrNotRecorded marks a command the store could not record (the database
// down or out of connections): nothing was accepted or charged, so an intake
// that can have the command sent again (Telegram's webhook and getUpdates)
// should refuse the update rather than answer it, and lose nothing. One
// case is less sure: a connection lost at the commit whose outcome the
// store could not read back (store/pg tries for 30 s); the job may be
// stored, so an intake that has it sent again first looks for the job its
// message made (Telegram's does), as after a restart.
var ErrNotRecorded = errors.New("the store could not record the job")

// Error is an error with a code and a message safe to show in a chat, in
// English and Chinese. Err, if set, is the internal cause: logged, never shown.
type Error struct {
	Code string
	EN   string
	ZH   string
	Err  error
	// RetryAfter, for ERATELIMIT and EUNAVAILABLE, says when trying again makes sense.
	RetryAfter float64 // seconds
}

// Errorf builds an Error. en and zh are format strings that take the same
// arguments; use explicit indexes (%[1]s) where the two languages order them differently.
func Errorf(code, en, zh string, args ...any) *Error {
	return &Error{Code: code, EN: fmt.Sprintf(en, args...), ZH: fmt.Sprintf(zh, args...)}
}

// Wrap returns an Error with code and a generic user message that keeps err as its cause.
func Wrap(code string, err error, en, zh string, args ...any) *Error {
	e := Errorf(code, en, zh, args...)
	e.Err = err
	return e
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.EN, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.EN)
}

func (e *Error) Unwrap() error { return e.Err }

// Message returns the user-facing text in lang.
func (e *Error) Message(lang Lang) string {
	if lang == ZH && e.ZH != "" {
		return e.ZH
	}
	return e.EN
}

// ErrorCode returns the code of the first *Error in err's chain, or EINTERNAL.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// AsError returns err as an *Error; anything that is not one becomes an
// EINTERNAL error whose message reveals nothing of the cause.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return Wrap(EINTERNAL, err, "Something went wrong on our side.", "服务内部出错了。")
}

// ErrorInfo is the persisted, user-safe part of an Error, kept on a failed job.
type ErrorInfo struct {
	Code string `json:"code"`
	EN   string `json:"en,omitempty"`
	ZH   string `json:"zh,omitempty"`
}

// Info returns the persisted form of err.
func Info(err error) *ErrorInfo {
	if err == nil {
		return nil
	}
	e := AsError(err)
	return &ErrorInfo{Code: e.Code, EN: e.EN, ZH: e.ZH}
}

// Message returns the text in lang.
func (i *ErrorInfo) Message(lang Lang) string {
	if i == nil {
		return ""
	}
	return (&Error{Code: i.Code, EN: i.EN, ZH: i.ZH}).Message(lang)
}

// Lang is a reply language. The bot speaks English and Chinese.
type Lang string

const (
	EN Lang = "en"
	ZH Lang = "zh"
)

// ParseLang maps a platform's language code ("zh-hans", "zh_CN.UTF-8", "en-US") to a Lang.
func ParseLang(code string) Lang {
	if len(code) >= 2 && (code[:2] == "zh" || code[:2] == "ZH") {
		return ZH
	}
	return EN
}
