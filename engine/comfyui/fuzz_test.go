package comfyui

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/picbot/picbot/engine"
	"github.com/picbot/picbot/engine/backends"
)

// FuzzWebsocket: any text or binary frame from /ws, and any /prompt error
// or /history entry, never panics the adapter.
func FuzzWebsocket(f *testing.F) {
	for _, s := range []string{
		`{"type": "progress", "data": {"value": 3, "max": 20, "prompt_id": "p1", "node": "3"}}`,
		`{"type": "executing", "data": {"node": null, "prompt_id": "p1"}}`,
		`{"type": "executing", "data": {"node": "3", "display_node": "3", "prompt_id": "p1"}}`,
		`{"type": "execution_error", "data": {"prompt_id": "p1", "node_id": "3", "node_type": "KSampler", "exception_message": "CUDA out of memory"}}`,
		`{"type": "status", "data": {"status": {"exec_info": {"queue_remaining": 1}}, "sid": "picbot"}}`,
		`{"error": {"type": "prompt_outputs_failed_validation", "message": "Prompt outputs failed validation", "details": ""}, "node_errors": {"4": {"errors": [{"message": "Value not in list", "details": "ckpt_name"}], "class_type": "CheckpointLoaderSimple"}}}`,
		`{"outputs": {"9": {"images": [{"filename": "a.png", "subfolder": "", "type": "output"}]}}, "status": {"status_str": "error", "completed": false, "messages": [["execution_error", {"node_id": "3"}], ["x"], []]}}`,
		"\x00\x00\x00\x01\x00\x00\x00\x02\x89PNG", "\x00\x00\x00\x04\x00\x00\x00\x10{\"prompt_id\":1}", "\x00\x00\x00\x04\xff\xff\xff\xff", ``,
	} {
		f.Add([]byte(s))
	}
	pool, err := backends.New([]string{"http://127.0.0.1:1"}, nil, 0)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v := &Vendor{pool: pool, states: map[string]*state{}, jobs: map[string]string{"p1": "job"}, current: map[int]string{}, now: time.Now, took: time.Second}
		v.onMessage(0, data)
		v.onBinary(0, data)
		w := &workflow{file: "f.json"}
		if err := v.promptError(w, data); err == nil {
			t.Fatal("no error for a refused prompt")
		}
		var h historyEntry
		if json.Unmarshal(data, &h) == nil && h.Status.StatusStr == "error" {
			out, err := v.finished(t.Context(), 0, "p1", &h)
			if err != nil || out.Err == nil {
				t.Fatalf("a failed prompt: %+v %v", out, err)
			}
		}
	})
}

// FuzzWorkflow: an operator's workflow file is checked, and patched when
// it passes, without a panic whatever it holds.
func FuzzWorkflow(f *testing.F) {
	for _, name := range []string{"sd15_draw.json", "sdxl_img2img.json", "upscale.json"} {
		data, err := defaults.ReadFile("workflows/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, "add_detail:0.5,other")
	}
	f.Add([]byte(`{"1": {"class_type": "SaveImage", "inputs": 5, "_meta": {"title": "prompt"}}}`), "x:y")
	f.Fuzz(func(t *testing.T, data []byte, lora string) {
		for _, kind := range []string{WorkflowDraw, WorkflowDrawImage, WorkflowUpscale} {
			w, err := parseWorkflow(kind, "f.json", data)
			if err != nil {
				continue
			}
			r := &engine.Request{Kind: engine.KindDraw, Prompt: "p", Seed: 1, Width: 64, Height: 64, Steps: 2, Guidance: 2, LoRA: lora, Model: "m"}
			_, _ = w.patch(r, []string{"a.png", "b.png"}, "euler", "normal", "")
		}
	})
}
