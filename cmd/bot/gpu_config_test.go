package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestGPUConfig: vendors.a1111 and vendors.comfyui are checked only when
// enabled, and each message names its key; a workflow whose patch point
// is missing is named with its file and node.
func TestGPUConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	bad := write("draw.json", `{"6": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["4", 1]}, "_meta": {"title": "prompt"}},
		"9": {"class_type": "SaveImage", "inputs": {"images": ["8", 0]}}}`)
	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{"A1111NoURL", "vendors:\n  a1111:\n    enabled: true\n", []string{"vendors.a1111.base_url"}},
		{"A1111Bad", "vendors:\n  a1111:\n    enabled: true\n    base_url: ftp://gpu\n    username: u\n    face_restore: 2\n    controlnet: {enabled: true}\n",
			[]string{"vendors.a1111.base_url", "vendors.a1111.password", "vendors.a1111.face_restore", "vendors.a1111.controlnet.model"}},
		{"ComfyUIWorkflow", "vendors:\n  comfyui:\n    enabled: true\n    base_url: http://127.0.0.1:8188\n    workflows: {draw: " + bad + ", dance: x.json}\n",
			[]string{"vendors.comfyui.workflows", "draw.json", `node 6 ("prompt", CLIPTextEncode) has no input "text"`, "vendors.comfyui.workflows.dance"}},
		{"ComfyUIPreset", "vendors:\n  comfyui:\n    enabled: true\n    base_url: http://127.0.0.1:8188\n    preset: sd3\n", []string{"vendors.comfyui.preset"}},
		{"RouteNeedsEnabled", "engine:\n  routes:\n    draw: [comfyui]\n", []string{"vendors.comfyui is not enabled"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadConfig(write(tc.name+".yaml", tc.yaml))
			for _, w := range tc.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("err %v: want %q", err, w)
				}
			}
		})
	}
	t.Run("DisabledIsNotChecked", func(t *testing.T) {
		if _, err := LoadConfig(write("off.yaml", "vendors:\n  a1111:\n    enabled: false\n    base_url: ftp://x\n  comfyui:\n    enabled: false\n    preset: sd3\n")); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("Env", func(t *testing.T) {
		t.Setenv("PICBOT_A1111_PASSWORD", "env-SECRET-a1111")
		t.Setenv("PICBOT_COMFYUI_TOKEN", "env-SECRET-comfy")
		cfg, err := LoadConfig(write("env.yaml", "vendors:\n  a1111:\n    enabled: true\n    base_url: http://127.0.0.1:7860\n    username: bot\n  comfyui:\n    enabled: true\n    base_urls: [http://10.0.0.2:8188, http://10.0.0.3:8188]\nengine:\n  routes:\n    draw: [a1111, comfyui]\n    swapface: [a1111]\n"))
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Vendors.A1111.Password != "env-SECRET-a1111" || cfg.Vendors.ComfyUI.Token != "env-SECRET-comfy" {
			t.Fatalf("env not read: %+v", cfg.Vendors)
		}
		joined := strings.Join(cfg.secrets(), " ")
		if !strings.Contains(joined, "env-SECRET-a1111") || !strings.Contains(joined, "env-SECRET-comfy") {
			t.Fatal("the secrets are not listed for the redactor")
		}
	})
}
