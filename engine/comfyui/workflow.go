package comfyui

import (
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/picbot/picbot/engine"
)

// The default workflows, in ComfyUI's API format ("Save (API Format)").
//
//go:embed workflows/*.json
var defaults embed.FS

// Workflow names: one per command, and draw_image for /draw with a
// reference image (img2img).
const (
	WorkflowDraw      = "draw"
	WorkflowDrawImage = "draw_image"
	WorkflowAnime     = "anime"
	WorkflowUpscale   = "upscale"
	WorkflowSwapface  = "swapface"
)

// A patch point is a node found by its title (the API format's
// _meta.title, set in ComfyUI with "Title" on the node) and the inputs
// picbot writes there.
type point struct {
	title  string
	inputs []string // written when present; the first must be present
}

var points = map[string]point{
	"prompt":        {"prompt", []string{"text"}},
	"negative":      {"negative", []string{"text"}},
	"sampler":       {"sampler", []string{"seed", "steps", "cfg", "sampler_name", "scheduler", "denoise"}},
	"size":          {"size", []string{"width", "height", "batch_size"}},
	"model":         {"model", []string{"ckpt_name"}},
	"image":         {"image", []string{"image"}},
	"image2":        {"image2", []string{"image"}},
	"scale":         {"scale", []string{"scale_by"}},
	"upscale_model": {"upscale_model", []string{"model_name"}},
}

// required are the points each workflow must have; the others are
// written when the workflow has them, and a command that needs one the
// workflow lacks (--model without a "model" node) is refused.
var required = map[string][]string{
	WorkflowDraw:      {"prompt", "sampler", "size"},
	WorkflowDrawImage: {"prompt", "sampler", "image"},
	WorkflowAnime:     {"sampler", "image"},
	WorkflowUpscale:   {"image"},
	WorkflowSwapface:  {"image", "image2"},
}

// MaxLoRAs bounds --lora's comma-separated list.
const MaxLoRAs = 5

// workflow is a loaded, checked workflow: its nodes and where each point is.
type workflow struct {
	name   string // the command it serves
	file   string
	nodes  map[string]map[string]any
	points map[string]string // point → node id
}

// Workflows loads the workflows of preset ("sd15" or "sdxl"), then the
// operator's files over them, and checks each one's patch points: an
// error names the file and the node.
func loadWorkflows(preset string, files map[string]string) (map[string]*workflow, error) {
	out := map[string]*workflow{}
	if preset == "" {
		preset = "sd15"
	}
	if preset != "sd15" && preset != "sdxl" {
		return nil, fmt.Errorf("preset: %q is not sd15 or sdxl", preset)
	}
	for name, file := range map[string]string{
		WorkflowDraw: preset + "_draw.json", WorkflowDrawImage: preset + "_img2img.json",
		WorkflowAnime: preset + "_img2img.json", WorkflowUpscale: "upscale.json",
	} {
		data, err := defaults.ReadFile("workflows/" + file)
		if err != nil {
			return nil, err
		}
		w, err := parseWorkflow(name, "(built-in) "+file, data)
		if err != nil {
			return nil, err
		}
		out[name] = w
	}
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(files)) {
		if _, ok := required[name]; !ok {
			continue // not a command: Validate says so
		}
		file := files[name]
		data, err := os.ReadFile(file)
		if err != nil {
			errs = append(errs, fmt.Errorf("workflows.%s: %w", name, err))
			continue
		}
		w, err := parseWorkflow(name, file, data)
		if err != nil {
			errs = append(errs, fmt.Errorf("workflows.%s: %w", name, err))
			continue
		}
		out[name] = w
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

func parseWorkflow(name, file string, data []byte) (*workflow, error) {
	var nodes map[string]map[string]any
	if err := json.Unmarshal(data, &nodes); err != nil {
		return nil, fmt.Errorf("%s: not a workflow in API format (export it with \"Save (API Format)\"): %w", file, err)
	}
	if _, ui := nodes["nodes"]; ui {
		return nil, fmt.Errorf("%s: this is the UI format; export the workflow with \"Save (API Format)\"", file)
	}
	w := &workflow{name: name, file: file, nodes: nodes, points: map[string]string{}}
	output := false
	for _, id := range slices.Sorted(maps.Keys(nodes)) {
		node := nodes[id]
		class, _ := node["class_type"].(string)
		if class == "" {
			return nil, fmt.Errorf("%s: node %s has no class_type", file, id)
		}
		if class == "SaveImage" || class == "PreviewImage" {
			output = true
		}
		meta, _ := node["_meta"].(map[string]any)
		title, _ := meta["title"].(string)
		for key, p := range points {
			if !strings.EqualFold(strings.TrimSpace(title), p.title) {
				continue
			}
			if prev, dup := w.points[key]; dup {
				return nil, fmt.Errorf("%s: nodes %s and %s are both titled %q", file, prev, id, p.title)
			}
			inputs, _ := node["inputs"].(map[string]any)
			if _, ok := inputs[p.inputs[0]]; !ok {
				return nil, fmt.Errorf("%s: node %s (%q, %s) has no input %q for the %s patch point", file, id, title, class, p.inputs[0], key)
			}
			w.points[key] = id
		}
	}
	if !output {
		return nil, fmt.Errorf("%s: no SaveImage node: the workflow would make no picture", file)
	}
	for _, key := range required[name] {
		if _, ok := w.points[key]; !ok {
			return nil, fmt.Errorf("%s: no node titled %q (the %s patch point; set the node's title in ComfyUI)", file, points[key].title, key)
		}
	}
	return w, nil
}

// patch returns a copy of the workflow with r's values written at the
// points, and uploaded input images named; a LoRA is a LoraLoader node
// put after the "model" node.
func (w *workflow) patch(r *engine.Request, images []string, sampler, scheduler, defaultModel string) (map[string]any, error) {
	var nodes map[string]map[string]any
	data, _ := json.Marshal(w.nodes)
	_ = json.Unmarshal(data, &nodes)
	set := func(key, input string, v any) {
		id, ok := w.points[key]
		if !ok {
			return
		}
		inputs, _ := nodes[id]["inputs"].(map[string]any)
		if _, has := inputs[input]; has || input == points[key].inputs[0] {
			inputs[input] = v
		}
	}
	prompt := r.Prompt
	if w.name == WorkflowAnime {
		if id, ok := w.points["prompt"]; ok {
			inputs, _ := nodes[id]["inputs"].(map[string]any)
			base, _ := inputs["text"].(string)
			prompt = strings.Trim(strings.Join([]string{base, r.Style, r.Prompt}, ", "), ", ")
		}
	}
	set("prompt", "text", prompt)
	if r.Negative != "" || w.name != WorkflowAnime {
		set("negative", "text", r.Negative)
	}
	set("sampler", "seed", r.Seed)
	if r.Steps > 0 {
		set("sampler", "steps", r.Steps)
	}
	if r.Guidance > 0 {
		set("sampler", "cfg", r.Guidance)
	}
	if sampler != "" {
		set("sampler", "sampler_name", sampler)
	}
	if scheduler != "" {
		set("sampler", "scheduler", scheduler)
	}
	if r.Strength > 0 {
		// --strength is KSampler's denoise on the image-to-image workflow;
		// Supports offers it only where the sampler node has that input.
		set("sampler", "denoise", r.Strength)
	}
	if r.Width > 0 {
		set("size", "width", r.Width)
		set("size", "height", r.Height)
	}
	set("size", "batch_size", r.Images())
	model := defaultModel
	if r.Model != "" {
		model = r.Model
	}
	if model != "" {
		if _, ok := w.points["model"]; !ok {
			return nil, engine.Errorf(engine.EINVALID, "This ComfyUI workflow has no model node, so --model cannot be used.", "这个 ComfyUI 工作流没有模型节点，不能使用 --model。")
		}
		set("model", "ckpt_name", model)
	}
	if r.Kind == engine.KindUpscale {
		set("scale", "scale_by", float64(r.Scale)/4) // the default upscale model is 4x
	}
	for i, name := range images {
		key := "image"
		if i == 1 {
			key = "image2"
		}
		set(key, "image", name)
	}
	if l := loraSpec(r); l != "" {
		if err := w.addLoRAs(nodes, l); err != nil {
			return nil, err
		}
	}
	out := make(map[string]any, len(nodes))
	for id, n := range nodes {
		delete(n, "_meta") // ComfyUI ignores it; keep the request small
		out[id] = n
	}
	return out, nil
}

// loraSpec is every --lora of r, comma-separated: the first (itself
// possibly a list) and those given again (ExtraLoRAs).
func loraSpec(r *engine.Request) string {
	all := slices.DeleteFunc(append([]string{r.LoRA}, r.ExtraLoRAs...), func(s string) bool { return strings.TrimSpace(s) == "" })
	return strings.Join(all, ",")
}

// has reports whether the workflow's node at point key has input.
func (w *workflow) has(key, input string) bool {
	id, ok := w.points[key]
	if !ok {
		return false
	}
	inputs, _ := w.nodes[id]["inputs"].(map[string]any)
	_, ok = inputs[input]
	return ok
}

// addLoRAs chains a LoraLoader per --lora after the model node, and
// moves every link from the model's MODEL and CLIP outputs to the last one.
func (w *workflow) addLoRAs(nodes map[string]map[string]any, spec string) error {
	src, ok := w.points["model"]
	if !ok {
		return engine.Errorf(engine.EINVALID, "This ComfyUI workflow has no model node, so --lora cannot be used.", "这个 ComfyUI 工作流没有模型节点，不能使用 --lora。")
	}
	parts := strings.Split(spec, ",")
	if len(parts) > MaxLoRAs {
		return engine.Errorf(engine.EINVALID, "At most %d LoRAs at once.", "一次最多 %d 个 LoRA。", MaxLoRAs)
	}
	next := 1000
	for _, part := range parts {
		name, weight, found := strings.Cut(strings.TrimSpace(part), ":")
		f := 1.0
		if found {
			var err error
			if f, err = strconv.ParseFloat(weight, 64); err != nil {
				return engine.Errorf(engine.EINVALID, "--lora takes a LoRA name, optionally with a weight (name:0.8), not %q.", "--lora 需要 LoRA 名称，可加权重（名称:0.8），而不是 %q。", spec)
			}
		}
		if name == "" {
			return engine.Errorf(engine.EINVALID, "--lora takes a LoRA name, optionally with a weight (name:0.8), not %q.", "--lora 需要 LoRA 名称，可加权重（名称:0.8），而不是 %q。", spec)
		}
		for nodes[strconv.Itoa(next)] != nil {
			next++
		}
		id := strconv.Itoa(next)
		for _, n := range nodes {
			inputs, _ := n["inputs"].(map[string]any)
			for k, v := range inputs {
				if link, ok := v.([]any); ok && len(link) == 2 && link[0] == src {
					if slot, _ := link[1].(float64); slot == 0 || slot == 1 {
						inputs[k] = []any{id, slot}
					}
				}
			}
		}
		nodes[id] = map[string]any{"class_type": "LoraLoader", "inputs": map[string]any{
			"model": []any{src, 0.0}, "clip": []any{src, 1.0}, "lora_name": name, "strength_model": f, "strength_clip": f}}
		src = id
	}
	return nil
}
