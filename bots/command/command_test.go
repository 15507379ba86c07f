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
		"/draw":                   "Please describe the picture.",
		"/frobnicate":             "Unknown command /frobnicate.",
		"/draw x --bogus 1":       "Unknown option --bogus for /draw.",
		"/draw x --steps abc":     `--steps must be a whole number from 1 to 1000, not "abc".`,
		"/draw x --size big":      `--size takes WIDTHxHEIGHT, like 768x512, not "big".`,
		"/draw x --seed -5":       "--seed must be -1",
		"/draw x --neg":           "--neg needs a value.",
		`/draw "unclosed`:         "A quote is not closed.",
		"/cancel":                 "Which job?",
		"/anime a.png b.png":      "/anime takes one image.",
		"hello":                   "Commands start with a slash",
		"/upscale a --scale 2.5x": "--scale must be a whole number",
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
