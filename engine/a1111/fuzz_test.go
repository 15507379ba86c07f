package a1111

import (
	"encoding/json"
	"testing"

	"github.com/picbot/picbot/engine"
)

// FuzzReplies: the web UI's answers (a generation's, /internal/progress's,
// an error's) never panic the adapter, whatever their bytes.
func FuzzReplies(f *testing.F) {
	for _, s := range []string{
		`{"images": ["iVBORw0KGgo="], "parameters": {}, "info": "{\"all_seeds\": [1, 2]}"}`,
		`{"images": [], "info": {"all_seeds": [3]}}`,
		`{"active": true, "queued": false, "completed": false, "progress": 0.5, "eta": 1.5, "live_preview": "data:image/png;base64,iVBORw0KGgo=", "id_live_preview": 4, "textinfo": "x"}`,
		`{"active": false, "queued": true, "completed": false, "progress": null, "eta": null, "live_preview": null, "id_live_preview": -1}`,
		`{"detail": [{"loc": ["body", "steps"], "msg": "value is not a valid integer", "type": "type_error.integer"}]}`,
		`{"error": "HTTPException", "detail": "Sampler not found", "body": "", "errors": ""}`,
		`{"error": "OutOfMemoryError", "detail": "", "body": "", "errors": "CUDA out of memory"}`,
		`{"detail": [{"loc": [1, {"a": 2}], "msg": 5}]}`, `[]`, `null`, ``,
	} {
		f.Add([]byte(s), 422)
	}
	v := &Vendor{}
	f.Fuzz(func(t *testing.T, data []byte, status int) {
		err := apiError("sdapi/v1/txt2img", status, data)
		if err == nil {
			t.Fatal("no error for an error reply")
		}
		if status == 422 && engine.ErrorCode(err) != engine.EINVALID {
			t.Fatalf("422 is %s", engine.ErrorCode(err))
		}
		var p progressReply
		if json.Unmarshal(data, &p) == nil {
			out := v.outcome(&p)
			if out.State != engine.TaskQueued && out.State != engine.TaskRunning {
				t.Fatalf("progress gave state %v", out.State)
			}
		}
		var rep genReply
		if json.Unmarshal(data, &rep) == nil {
			for _, s := range rep.Images {
				_, _ = decodeImage(s)
			}
		}
	})
}
