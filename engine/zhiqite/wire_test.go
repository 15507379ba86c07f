package zhiqite

import (
	"encoding/json"
	"testing"

	"github.com/picbot/picbot/engine"
)

// The document contradicts itself on types; one odd field must not make a
// whole reply unreadable, or the engine would poll (and pay) until the deadline.
func TestLenientDecoding(t *testing.T) {
	v, err := New(Config{AppCode: "c"}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, data string
		state      engine.TaskState
		progress   float64
		images     int
		dropped    int
	}{
		{"ProgressPercent", `{"status":"1","desc":7,"temporaryImageDto":{"progress":"45%","currentImage":null,"jobNo":"1"}}`, engine.TaskRunning, 0.45, 0, 0},
		{"ProgressNumber", `{"status":1,"temporaryImageDto":{"progress":0.3}}`, engine.TaskRunning, 0.3, 0, 0},
		{"ProgressUnreadable", `{"status":1,"temporaryImageDto":{"progress":"0~1"}}`, engine.TaskRunning, -1, 0, 0},
		{"Queued", `{"status":3}`, engine.TaskQueued, -1, 0, 0},
		{"Uploading", `{"status":5}`, engine.TaskRunning, 1, 0, 0},
		{"AuditAsString", `{"status":2,"differentialImageRspList":[` +
			`{"img_audit":[{"confidence":"0.9","label":"porn"}],"img_audit_status":"false","image_status":"1","image_url":"u1","seed":"3"},` +
			`{"img_audit_status":1,"image_status":1,"image_url":"u2","seed":4},` +
			`{"image_status":2,"image_url":"u3"},` +
			`{"image_url":"u4"}]}`, engine.TaskDone, 1, 2, 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var info taskInfo
			if err := json.Unmarshal([]byte(c.data), &info); err != nil {
				t.Fatal(err)
			}
			out := v.sdOutcome(&info)
			if out.State != c.state || out.Progress != c.progress || len(out.Images) != c.images || out.Dropped != c.dropped {
				t.Fatalf("outcome %+v", out)
			}
		})
	}
	var tt toolTask
	if err := json.Unmarshal([]byte(`{"businessTaskId":12,"status":"2","outputImageUrl":null,"toolTask":{}}`), &tt); err != nil {
		t.Fatal(err)
	}
	if out := toolOutcome(&tt); out.State != engine.TaskFailed || tt.BusinessTaskID != "12" {
		t.Fatalf("tool outcome %+v (%+v)", out, tt)
	}
}
