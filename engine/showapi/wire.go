package showapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Number is a number as ShowAPI sends it: the task records carry every
// number as a JSON string ("512"), the envelope as a JSON number; either is
// accepted, and empty or null means unset.
type Number string

// UnmarshalJSON accepts a JSON number, a string holding one, or null.
func (n *Number) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0 || string(b) == "null":
		*n = ""
		return nil
	case b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*n = Number(strings.TrimSpace(s))
		return nil
	}
	var num json.Number
	if err := json.Unmarshal(b, &num); err != nil {
		return fmt.Errorf("showapi: %.40s is not a number", b)
	}
	*n = Number(num)
	return nil
}

// Int returns n as an integer; "8.0" counts, "8.5" and "" do not.
func (n Number) Int() (int64, bool) {
	if i, err := strconv.ParseInt(string(n), 10, 64); err == nil {
		return i, true
	}
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
		return 0, false
	}
	return int64(f), true
}

// Float returns n as a float.
func (n Number) Float() (float64, bool) {
	f, err := strconv.ParseFloat(string(n), 64)
	return f, err == nil
}

// Text is a string the vendor may also send as a number or null.
type Text string

// UnmarshalJSON accepts a JSON string, number, bool or null.
func (t *Text) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0 || string(b) == "null":
		*t = ""
	case b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*t = Text(s)
	case b[0] == '{' || b[0] == '[':
		return fmt.Errorf("showapi: %.40s is not text", b)
	default:
		*t = Text(b)
	}
	return nil
}

// List is a list of strings: a JSON array, one string, a string holding a
// JSON array, or null.
type List []string

// UnmarshalJSON accepts the shapes List describes; empty entries are dropped.
func (l *List) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	var items []Text
	switch {
	case len(b) == 0 || string(b) == "null":
	case b[0] == '[':
		if err := json.Unmarshal(b, &items); err != nil {
			return err
		}
	default:
		var one Text
		if err := json.Unmarshal(b, &one); err != nil {
			return err
		}
		if s := strings.TrimSpace(string(one)); strings.HasPrefix(s, "[") {
			return l.UnmarshalJSON([]byte(s))
		}
		items = []Text{one}
	}
	*l = (*l)[:0]
	for _, it := range items {
		if s := strings.TrimSpace(string(it)); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

// Record is a task as /yourtaskresult and /yourtasklist describe it. It
// echoes the inputs of the task's creation.
type Record struct {
	TaskID     Text   `json:"task_id"`
	Status     Text   `json:"status"` // waiting, finish or fail
	ResultList List   `json:"result_list"`
	Cause      Text   `json:"cause"` // why the task failed
	Remark     Text   `json:"remark"`
	Prompt     Text   `json:"prompt"`
	Negative   Text   `json:"negetive_prompt"` // sic: the vendor's spelling
	ModelID    Text   `json:"model_id"`
	LoRA       Text   `json:"lora"`
	LoRAScale  Number `json:"lora_scale"`
	Width      Number `json:"width"`
	Height     Number `json:"height"`
	Steps      Number `json:"steps"`
	Scale      Number `json:"scale"` // guidance
	Seed       Number `json:"seed"`
	Scheduler  Text   `json:"scheduler"`
	BatchSize  Number `json:"batch_size"`
	CallBack   Text   `json:"call_back"`
	CT         Text   `json:"ct"` // "2023-08-15 09:58:53.485", Beijing time
	RetCode    Number `json:"ret_code"`
}

// beijing is the vendor's clock's zone (UTC+8, no daylight saving).
var beijing = time.FixedZone("CST", 8*3600)

// Created is when the task was submitted, from ct.
func (r *Record) Created() (time.Time, bool) {
	for _, layout := range []string{"2006-01-02 15:04:05.999", "2006-01-02 15:04:05", time.RFC3339} {
		if t, err := time.ParseInLocation(layout, strings.TrimSpace(string(r.CT)), beijing); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// envelope is ShowAPI's wrapper around every answer. showapi_res_code is
// the gateway's verdict; showapi_res_body.ret_code the business's.
type envelope struct {
	ResCode  Number          `json:"showapi_res_code"`
	ResError Text            `json:"showapi_res_error"`
	ResID    Text            `json:"showapi_res_id"`
	FeeNum   Number          `json:"showapi_fee_num"`
	Body     json.RawMessage `json:"showapi_res_body"`
}

// business is the part of every showapi_res_body that says whether the call worked.
type business struct {
	RetCode Number `json:"ret_code"`
	Remark  Text   `json:"remark"`
	Msg     Text   `json:"msg"`
	TaskID  Text   `json:"task_id"`
}

// message is the business's explanation, whichever field holds it.
func (b *business) message() string {
	if b.Remark != "" {
		return string(b.Remark)
	}
	return string(b.Msg)
}

// Model is one entry of /models.
type Model struct {
	ID       Text `json:"id"`
	Name     Text `json:"name"`
	Tags     List `json:"tags"`
	CoverImg Text `json:"cover_img"`
}

// LoRA is one entry of the loras list of /models.
type LoRA struct {
	ID       Text `json:"id"`
	Name     Text `json:"name"`
	CoverImg Text `json:"cover_img"`
}

// modelsBody is showapi_res_body of /models.
type modelsBody struct {
	Models []Model `json:"models"`
	LoRAs  []LoRA  `json:"loras"`
}

// TaskPage is one page of /yourtasklist.
type TaskPage struct {
	AllPages    Number   `json:"allPages"`
	CurrentPage Number   `json:"currentPage"`
	AllNum      Number   `json:"allNum"`
	MaxResult   Number   `json:"maxResult"`
	Tasks       []Record `json:"contentlist"`

	clock vendorClock // from the answer's Date header; zero: none
}

// vendorClock is what an answer's Date header said: the vendor's time, to
// the second, and the bot's when the answer came.
type vendorClock struct {
	date, local time.Time
}

// vendorTime is bot time t on the vendor's clock, never later than the
// vendor's clock read then (Date is cut to the second, and was sent before
// it arrived); ok false without a Date header.
func (c vendorClock) vendorTime(t time.Time) (time.Time, bool) {
	if c.date.IsZero() {
		return time.Time{}, false
	}
	return t.Add(c.date.Sub(c.local)), true
}
