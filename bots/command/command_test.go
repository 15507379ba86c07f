package command_test

import (
	"strings"
	"testing"

	"github.com/picbot/picbot/bots/command"
	"github.com/picbot/picbot/engine"
)

func TestParse(t *testing.T) {
	c, err := command.Parse(`/draw a red fox --size 768x512 --steps 30 --seed 42 --neg "blurry, dark" --model X --n 2 --cfg=6.5`)
	if err != nil {
		t.Fatal(err)
	}
	r := c.Request
	if c.Name != "draw" || r.Prompt != "a red fox" || r.Width != 768 || r.Height != 512 || r.Steps != 30 || r.Seed != 42 ||
		r.Negative != "blurry, dark" || r.Model != "X" || r.N != 2 || r.Guidance != 6.5 {
		t.Fatalf("parsed %+v", c)
	}
	for _, tc := range []struct{ line, name, mention, prompt string }{
		{"/DRAW@PicBot cat", "draw", "picbot", "cat"},
		{"/draw “一只 红狐狸” —seed 3", "draw", "", "一只 红狐狸"},
		{"/draw 小猫 --size 512×768", "draw", "", "小猫"},
		{"  /help  ", "help", "", ""},
	} {
		c, err := command.Parse(tc.line)
		if err != nil {
			t.Fatalf("%s: %v", tc.line, err)
		}
		if c.Name != tc.name || c.Mention != tc.mention || c.Request.Prompt != tc.prompt {
			t.Fatalf("%s: %+v", tc.line, c)
		}
	}
	c, _ = command.Parse("/swapface face.png https://x/target.jpg")
	if strings.Join(c.Images, " ") != "face.png https://x/target.jpg" {
		t.Fatalf("images %v", c.Images)
	}
	c, _ = command.Parse("/upscale a.png --scale 4")
	if c.Request.Scale != 4 || c.Images[0] != "a.png" {
		t.Fatalf("upscale %+v", c)
	}
	c, _ = command.Parse("/cancel ABC")
	if c.Args[0] != "ABC" {
		t.Fatalf("cancel %+v", c)
	}
}

func TestParseErrors(t *testing.T) {
	for line, want := range map[string]string{
		"/draw":                     "Please describe the picture.",
		"/frobnicate":               "Unknown command /frobnicate.",
		"/draw x --bogus 1":         "Unknown option --bogus for /draw.",
		"/draw x --steps abc":       `--steps must be a whole number from 1 to 60, not "abc".`,
		"/draw x --steps 0":         `--steps must be a whole number from 1 to 60, not "0".`,
		"/draw x --n 0":             `--n must be a whole number from 1 to 4, not "0".`,
		"/draw x --cfg 0":           `--cfg must be a number from 1 to 30, like 7.5, not "0".`,
		"/upscale a --scale 0":      `--scale must be a whole number from 1 to 8, not "0".`,
		"/draw x --size big":        `--size takes WIDTHxHEIGHT, like 768x512 (each side from 64 to 2048), not "big".`,
		"/draw a cat -size 640x512": `"-size" has one dash: did you mean --size?`,
		"/draw a cat ——bogus 1":     "Unknown option --bogus for /draw.",
		"/again":                    "Which job?",
		"/draw x --seed -5":         "--seed must be -1",
		"/draw x --neg":             "--neg needs a value.",
		`/draw "unclosed`:           "A quote is not closed.",
		"/cancel":                   "Which job?",
		"/anime a.png b.png":        "/anime takes one image.",
		"hello":                     "Commands start with a slash",
		"/upscale a --scale 2.5x":   "--scale must be a whole number",
	} {
		_, err := command.Parse(line)
		e, ok := err.(*engine.Error)
		if !ok || e.Code != engine.EINVALID || !strings.HasPrefix(e.EN, want) {
			t.Errorf("%q: got %v, want %q", line, err, want)
			continue
		}
		if e.ZH == "" || e.ZH == e.EN {
			t.Errorf("%q: no Chinese message", line)
		}
		if strings.Contains(line, "--") && !strings.Contains(e.EN, "\nUsage: /") {
			t.Errorf("%q: no usage in %q", line, e.EN)
		}
	}
}

// TestParseLimits: the messages name the limits in force, not constants.
func TestParseLimits(t *testing.T) {
	lim := engine.DefaultLimits()
	lim.MaxSteps, lim.MaxImages, lim.MaxScale, lim.MaxGuidance = 150, 8, 6, 12.5
	for line, want := range map[string]string{
		"/draw x --steps 0":    "from 1 to 150",
		"/draw x --n -2":       "from 1 to 8",
		"/upscale a --scale x": "from 1 to 6",
		"/draw x --cfg 0":      "from 1 to 12.5",
	} {
		_, err := command.ParseLimits(line, lim)
		if e := engine.AsError(err); !strings.Contains(e.EN, want) || !strings.Contains(e.ZH, strings.ReplaceAll(strings.TrimPrefix(want, "from "), " to ", " 到 ")) {
			t.Errorf("%q: got %v, want %q", line, err, want)
		}
	}
}

// TestParseIME: what Chinese input methods and phones type for slashes,
// dashes, digits and the x of a size is understood.
func TestParseIME(t *testing.T) {
	for _, tc := range []struct {
		line   string
		name   string
		prompt string
		w, h   int
		steps  int
		seed   int64
	}{
		{line: "／draw 一只猫 ——size 640x512", name: "draw", prompt: "一只猫", w: 640, h: 512, seed: -1},
		{line: "／ｄｒａｗ 一只猫 ——size ６４０ｘ５１２ ——steps ２０", name: "draw", prompt: "一只猫", w: 640, h: 512, steps: 20, seed: -1},
		{line: "/draw 一只猫 －－size＝640×512", name: "draw", prompt: "一只猫", w: 640, h: 512, seed: -1},
		{line: "/draw fox –size 768x512 —seed 7", name: "draw", prompt: "fox", w: 768, h: 512, seed: 7},
		{line: "/draw fox ﹣﹣ｓｅｅｄ —1", name: "draw", prompt: "fox", seed: -1},
		{line: "/draw a — dash, 2–3 foxes", name: "draw", prompt: "a — dash, 2–3 foxes", seed: -1},
		{line: "/draw a -5 degree fox", name: "draw", prompt: "a -5 degree fox", seed: -1},
		{line: "/draw \x00\x1b[31m red\u202e fox\u0007\tnow", name: "draw", prompt: "[31m red fox now", seed: -1},
		{line: "/draw 猫，在月亮下　--seed 3", name: "draw", prompt: "猫，在月亮下", seed: 3},
	} {
		line := tc.line
		c, err := command.Parse(line)
		if err != nil {
			t.Errorf("%q: %v", line, err)
			continue
		}
		r := c.Request
		if c.Name != tc.name || r.Prompt != tc.prompt || r.Width != tc.w || r.Height != tc.h || r.Steps != tc.steps || r.Seed != tc.seed {
			t.Errorf("%q: got /%s %q %dx%d steps %d seed %d", line, c.Name, r.Prompt, r.Width, r.Height, r.Steps, r.Seed)
		}
	}
	if !command.IsCommand("  ／draw 猫") {
		t.Error("／draw is not seen as a command")
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"/draw a red fox --size 768x512 --seed 7", `/draw "x y" --neg='z'`, "/swapface a b", "/cancel x", "/draw —n 2 “猫”"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		c, err := command.Parse(line)
		if err != nil {
			if engine.ErrorCode(err) != engine.EINVALID {
				t.Fatalf("%q: error without EINVALID: %v", line, err)
			}
			return
		}
		if c.IsJob() && c.Request.Kind != engine.Kind(c.Name) {
			t.Fatalf("%q: kind %q for /%s", line, c.Request.Kind, c.Name)
		}
	})
}

func BenchmarkParse(b *testing.B) {
	line := `/draw a red fox in a snowy forest, golden hour --size 768x512 --steps 30 --seed 42 --neg "blurry, dark" --model X --n 2`
	for i := 0; i < b.N; i++ {
		if _, err := command.Parse(line); err != nil {
			b.Fatal(err)
		}
	}
}

func TestParseSize(t *testing.T) {
	for s, want := range map[string][2]int{"768x512": {768, 512}, "７６８ｘ５１２": {768, 512}, "640×512": {640, 512}, " 64 X 64 ": {64, 64}} {
		if w, h, ok := command.ParseSize(s); !ok || w != want[0] || h != want[1] {
			t.Errorf("%q: %d %d %v", s, w, h, ok)
		}
	}
	if _, _, ok := command.ParseSize("big"); ok {
		t.Error("big is a size")
	}
}

func TestStripControls(t *testing.T) {
	for in, want := range map[string]string{
		"a red fox":                      "a red fox",
		"\x00\x1b[31m red\u202e fox\x07": "[31m red fox",
		"one\ttwo\nthree\u0085":          "one two three ",
		"\u2066猫\u2069\u202a咪\u202c":     "猫咪",
		"\u009b2J clear":                 "2J clear",
	} {
		if got := command.StripControls(in); got != want {
			t.Errorf("StripControls(%q) = %q, want %q", in, got, want)
		}
	}
}
