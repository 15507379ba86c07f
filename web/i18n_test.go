package web

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// TestEveryStringTranslated finds every string the console translates (T
// in the templates, tr and page titles in the code, the timeline's steps)
// and checks each has its Chinese.
func TestEveryStringTranslated(t *testing.T) {
	res := []*regexp.Regexp{
		regexp.MustCompile(`\{\{T "([^"]+)"\}\}`),
		regexp.MustCompile(`tr\([^,]+, "([^"]+)"\)`),
		regexp.MustCompile(`Title: "([^"]+)"`),
		regexp.MustCompile(`\{"([^"]+)", (?:""|j\.State), j\.\w+At\}`),
	}
	files, _ := filepath.Glob("templates/*.html")
	gos, _ := filepath.Glob("*.go")
	n := 0
	for _, f := range append(files, gos...) {
		if filepath.Ext(f) == ".go" && regexp.MustCompile(`_test\.go$`).MatchString(f) {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, re := range res {
			for _, m := range re.FindAllStringSubmatch(string(data), -1) {
				n++
				if _, ok := zh[m[1]]; !ok {
					t.Errorf("%s: %q has no Chinese", f, m[1])
				}
			}
		}
	}
	if n < 100 {
		t.Fatalf("found only %d strings: the patterns no longer match the code", n)
	}
}

func TestAcceptLang(t *testing.T) {
	for h, want := range map[string]string{
		"": "en", "zh-CN": "zh", "en-US,zh;q=0.5": "en", "fr,zh-TW;q=0.8,en;q=0.7": "zh", "de": "en", "zh;q=0.3, en;q=0.9": "en",
	} {
		if got := acceptLang(h); string(got) != want {
			t.Errorf("%q: %s, want %s", h, got, want)
		}
	}
}
