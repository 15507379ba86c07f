package command_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/picbot/picbot/bots/command"
	"github.com/picbot/picbot/engine"
)

// The grammar of issue 12: every option the seed vendors sell.
func TestParseVendorOptions(t *testing.T) {
	c, err := command.Parse("/draw a red fox --control --control-type canny --control-weight 0.8 --control-start 0.1 --control-end 0.9 " +
		"--hires 1.5 --hires-steps 10 --hires-upscaler R-ESRGAN_4x+ --vae v.ckpt --embedding bad-hands-5 --embedding FastNegativeV2 " +
		"--lora a:0.5 --lora b --clip-skip 2 --restore-faces --face-fix --tile")
	if err != nil {
		t.Fatal(err)
	}
	r := c.Request
	if r.Prompt != "a red fox" || !c.ControlAttached || c.Control != "" {
		t.Fatalf("prompt %q, control %q attached %v", r.Prompt, c.Control, c.ControlAttached)
	}
	if want := (&engine.Control{Type: "canny", Weight: 0.8, Start: 0.1, End: 0.9}); !reflect.DeepEqual(r.Control, want) {
		t.Fatalf("control %+v", r.Control)
	}
	if want := (&engine.Hires{Scale: 1.5, Steps: 10, Upscaler: "R-ESRGAN_4x+"}); !reflect.DeepEqual(r.Hires, want) {
		t.Fatalf("hires %+v", r.Hires)
	}
	if r.VAE != "v.ckpt" || !reflect.DeepEqual(r.Embeddings, []string{"bad-hands-5", "FastNegativeV2"}) || r.LoRA != "a:0.5" ||
		!reflect.DeepEqual(r.ExtraLoRAs, []string{"b"}) || r.ClipSkip != 2 || !r.RestoreFaces || !r.FaceFix || !r.Tile {
		t.Fatalf("request %+v", r)
	}

	c, err = command.Parse("/draw a cat --image https://x.test/a.png --control https://x.test/edge.png --mask https://x.test/m.png --strength 0.6")
	if err != nil {
		t.Fatal(err)
	}
	if c.Control != "https://x.test/edge.png" || c.ControlAttached || c.Mask != "https://x.test/m.png" || c.Request.Control == nil ||
		c.Request.Strength != 0.6 || !reflect.DeepEqual(c.Images, []string{"https://x.test/a.png"}) || c.Request.Prompt != "a cat" {
		t.Fatalf("%+v", c)
	}
	// --control before prompt words takes none of them.
	if c, err = command.Parse("/draw --control a cat"); err != nil || !c.ControlAttached || c.Request.Prompt != "a cat" {
		t.Fatalf("%+v %v", c, err)
	}

	c, err = command.Parse("/upscale https://x.test/a.png --scale 8 --upscaler ESRGAN_4x --face-restore codeformer 0.7 --anime")
	if err != nil {
		t.Fatal(err)
	}
	if r := c.Request; r.Scale != 8 || r.Upscaler != "ESRGAN_4x" || r.FaceRestore != "codeformer" || r.FaceRestoreStrength != 0.7 || !r.AnimeModel {
		t.Fatalf("%+v", r)
	}
	c, err = command.Parse("/upscale https://x.test/a.png --size 1024x768 --face-restore gfpgan")
	if err != nil {
		t.Fatal(err)
	}
	if r := c.Request; r.TargetWidth != 1024 || r.TargetHeight != 768 || r.Width != 0 || r.FaceRestore != "gfpgan" || len(c.Images) != 1 {
		t.Fatalf("%+v %v", r, c.Images)
	}
	if c, err = command.Parse("/upscale https://x.test/a.png --scale 1"); err != nil || c.Request.Scale != 1 {
		t.Fatalf("--scale 1: %v", err)
	}
}

func TestParseVendorOptionErrors(t *testing.T) {
	for line, want := range map[string]string{
		"/draw x --control-type canny":         "--control-type, --control-weight",
		"/draw x --control --control-weight 3": "--control-weight must be a number from 0 to 2",
		"/draw x --hires 9":                    "--hires must be a number from 1 to 4",
		"/draw x --clip-skip 0":                "--clip-skip must be a whole number from 1 to 12",
		"/draw x --tile=maybe":                 "--tile takes no value",
		"/upscale a.png --face-restore foo":    "--face-restore takes gfpgan or codeformer",
		"/upscale a.png --scale 9":             "",
	} {
		_, err := command.Parse(line)
		if want == "" {
			continue // the engine's limit, not the parser's
		}
		e := engine.AsError(err)
		if err == nil || e.Code != engine.EINVALID || !strings.HasPrefix(e.EN, want) || e.ZH == e.EN {
			t.Errorf("%q: %v, want %q", line, err, want)
		}
	}
}
