package zhiqite

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/picbot/picbot/engine"
)

// ParseCallback reads a callback. The seed does not document its body, so
// this looks, in whatever JSON comes, for an object shaped like a query
// reply's data (perhaps inside "data", perhaps as a JSON string) that names
// the task. Only a finished task with images, or progress, is taken as is;
// a failure, or anything not understood, is an error, and the engine asks
// the vendor directly, whose replies are documented.
func (v *Vendor) ParseCallback(j *engine.Job, body []byte) (*engine.Outcome, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var root any
	if err := dec.Decode(&root); err != nil {
		return nil, fmt.Errorf("zhiqite callback: not JSON: %w", err)
	}
	isTool := tool(j.Request.Kind) != ""
	obj := findTask(root, isTool, 0)
	if obj == nil {
		return nil, errors.New("zhiqite callback: no task in the body")
	}
	id := taskID(obj)
	if id != "" && id != j.TaskID {
		// The engine ignores a callback for another task; say which.
		return &engine.Outcome{TaskID: id, State: engine.TaskRunning, Progress: -1}, nil
	}
	raw, err := json.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("zhiqite callback: %w", err)
	}
	var out *engine.Outcome
	if isTool {
		var t toolTask
		if err := json.Unmarshal(raw, &t); err != nil {
			return nil, fmt.Errorf("zhiqite callback: %w", err)
		}
		out = toolOutcome(&t)
	} else {
		var info taskInfo
		if err := json.Unmarshal(raw, &info); err != nil {
			return nil, fmt.Errorf("zhiqite callback: %w", err)
		}
		if !info.Status.Set {
			return nil, errors.New("zhiqite callback: no status")
		}
		out = v.sdOutcome(&info)
		if out.State == engine.TaskDone && len(info.Images) == 0 {
			// "Done" with no image list at all is more likely a shape we do not know.
			return nil, errors.New("zhiqite callback: done without images")
		}
	}
	if out.State == engine.TaskFailed {
		return nil, fmt.Errorf("zhiqite callback reports a failure; confirming by query: %w", out.Err)
	}
	out.TaskID = id
	return out, nil
}

// idKeys name our task id in replies: id_task and task_id in SD replies,
// businessTaskId in tools' (their taskId is the vendor's own id).
var idKeys = []string{"id_task", "businessTaskId", "task_id"}

func taskID(obj map[string]any) string {
	for _, k := range idKeys {
		switch s := obj[k].(type) {
		case string:
			if s = strings.TrimSpace(s); s != "" {
				return s
			}
		case json.Number:
			return s.String()
		}
	}
	return ""
}

// findTask returns the first object, depth first with "data" before other
// keys, that holds a task's result fields.
func findTask(v any, isTool bool, depth int) map[string]any {
	if depth > 6 {
		return nil
	}
	switch x := v.(type) {
	case string:
		s := strings.TrimSpace(x)
		if !strings.HasPrefix(s, "{") && !strings.HasPrefix(s, "[") {
			return nil
		}
		dec := json.NewDecoder(strings.NewReader(s))
		dec.UseNumber()
		var inner any
		if dec.Decode(&inner) != nil {
			return nil
		}
		return findTask(inner, isTool, depth+1)
	case []any:
		for _, e := range x {
			if m := findTask(e, isTool, depth+1); m != nil {
				return m
			}
		}
	case map[string]any:
		if looksLikeTask(x, isTool) {
			return x
		}
		if m := findTask(x["data"], isTool, depth+1); m != nil {
			return m
		}
		for k, e := range x {
			if k == "data" {
				continue
			}
			if m := findTask(e, isTool, depth+1); m != nil {
				return m
			}
		}
	}
	return nil
}

func looksLikeTask(m map[string]any, isTool bool) bool {
	if isTool {
		_, url := m["outputImageUrl"]
		_, status := m["status"]
		return url || (status && taskID(m) != "")
	}
	_, images := m["differentialImageRspList"]
	_, status := m["status"]
	_, temp := m["temporaryImageDto"]
	return images || temp || (status && taskID(m) != "")
}
