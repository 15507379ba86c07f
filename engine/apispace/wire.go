package apispace

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// envelope is every reply: {"code": 0, "data": {...}, "msg": "success"} [P].
type envelope struct {
	Code flexInt         `json:"code"`
	Msg  string          `json:"msg"`
	Data json.RawMessage `json:"data"`
}

// result is a task as /query-image reports it [P] and as the callback's
// data carries it [S]. Only uid, status, cdn, cos, safe and reason decide
// anything; the rest is decoded leniently so an odd type never loses a result.
type result struct {
	UID    string   `json:"uid"`
	Status string   `json:"status"` // query only: pending, working, finished, exception, interrupted, not_found
	CDN    string   `json:"cdn"`
	COS    string   `json:"cos"`
	Safe   flexBool `json:"safe"`
	Reason string   `json:"reason"`
	// create_time and start_time are the backend's keys; the seed's sample
	// writes createtime and starttime (typos), read too.
	CreateTime   flexFloat       `json:"create_time"`
	StartTime    flexFloat       `json:"start_time"`
	CreateTimeS  flexFloat       `json:"createtime"`
	StartTimeS   flexFloat       `json:"starttime"`
	EndTime      flexFloat       `json:"end_time"`
	Duration     flexFloat       `json:"duration"`
	ElapsedTimes json.RawMessage `json:"elapsed_times"` // "此参数不需要关注" [S]
	Request      json.RawMessage `json:"request"`       // the task's inputs, echoed
}

// times fills create_time and start_time from the seed's spellings when only those came.
func (r *result) times() {
	if r.CreateTime == 0 {
		r.CreateTime = r.CreateTimeS
	}
	if r.StartTime == 0 {
		r.StartTime = r.StartTimeS
	}
}

// callback is the notify_url payload [S].
type callback struct {
	UID     string   `json:"uid"`
	Success flexBool `json:"success"`
	Data    result   `json:"data"`
}

// flexBool is a boolean that may come as true/false, "True"/"False" (the
// seed writes Python's True), "true"/"1"/"0", or 1/0. set is false when the
// field is absent or null.
type flexBool struct{ set, val bool }

func (b *flexBool) UnmarshalJSON(data []byte) error {
	s := strings.TrimSpace(string(data))
	if s == "null" {
		return nil
	}
	if us, err := strconv.Unquote(s); err == nil {
		s = us
	}
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "1":
		*b = flexBool{set: true, val: true}
	case "false", "0":
		*b = flexBool{set: true, val: false}
	default:
		return fmt.Errorf("not a boolean: %s", data)
	}
	return nil
}

// flexInt is an integer that may also come as a string of digits.
type flexInt struct {
	set bool
	val int
}

func (n *flexInt) UnmarshalJSON(data []byte) error {
	s := strings.TrimSpace(string(data))
	if s == "null" {
		return nil
	}
	if us, err := strconv.Unquote(s); err == nil {
		s = strings.TrimSpace(us)
	}
	v, err := strconv.Atoi(s)
	if err != nil {
		return fmt.Errorf("not an integer: %s", data)
	}
	*n = flexInt{set: true, val: v}
	return nil
}

// flexFloat is a number that may also come as a string; anything else is ignored.
type flexFloat float64

func (f *flexFloat) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	if us, err := strconv.Unquote(string(data)); err == nil {
		data = []byte(us)
	}
	if v, err := strconv.ParseFloat(string(data), 64); err == nil {
		*f = flexFloat(v)
	}
	return nil
}

// apiError is a reply that is not a success: an HTTP status other than 2xx,
// or a non-zero code. Msg never holds the token.
type apiError struct {
	Status   int
	Code     int
	Msg      string
	Business bool // the reply was the vendor's JSON, with a code
}

func (e *apiError) Error() string {
	return fmt.Sprintf("apispace replied status %d, code %d: %s", e.Status, e.Code, e.Msg)
}

// notFound: the vendor says it does not know the uid. A bare 404 page is
// not enough: it more likely means a wrong path in the configuration.
func (e *apiError) notFound() bool {
	return e.Business && containsAny(e.Msg, "not found", "not_found", "不存在", "未找到", "找不到")
}
