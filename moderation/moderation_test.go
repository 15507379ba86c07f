package moderation_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/picbot/picbot/engine"
	"github.com/picbot/picbot/moderation"
	"github.com/picbot/picbot/store"
)

func TestMatchNearMisses(t *testing.T) {
	l := moderation.Compile(
		[]string{"ass", "nude", "blood bath", "裸体", "色情", "ｇｏｒｅ", "裸"},
		[]string{"裸眼", "nude lipstick", "颜色"},
	)
	for _, tc := range []struct {
		text string
		want bool
	}{
		// Latin: whole words only.
		{"a field of grass", false},
		{"an assassin in the night", false},
		{"classic bass guitar", false},
		{"Ass", true},
		{"kick ass robot", true},
		{"ass-hat", true},
		{"ＡＳＳ in full width", true},
		{"a NUDE statue", true},
		{"denuded hills", false},
		{"nudes", false}, // a different word: list it if it is meant
		{"nude lipstick on a model", false},
		{"nude lipstick, and a nude figure", true},
		{"a blood bath", true},
		{"a bath of blood", false},
		{"blood, bath", true}, // punctuation separates the same words
		{"gore", true},
		{"gorestone", false},
		{"a zero\u200bwidth a\u200bss", true},
		// CJK: substrings, after width and spacing.
		{"一个裸体的人站在海边", true},
		{"画一张色情图片", true},
		{"裸 体", true},
		{"裸，体", true},
		{"用裸眼看星星", false},
		{"裸眼3D，裸的人", true},
		{"体裸", true},    // 裸 alone is listed
		{"颜色情绪", false}, // 色情 across two words: the exception 颜色 frees it
		{"颜色色情", true},
		{"黄色情节", true}, // substrings misfire across CJK words: add an exception
		{"一只红狐狸", false},
		{"a red fox 在雪中", false},
		{"", false},
	} {
		if got := l.Match(tc.text); got != tc.want {
			t.Errorf("Match(%q) = %v, want %v", tc.text, got, tc.want)
		}
	}
	if !moderation.Compile(nil, nil).Empty() || moderation.Compile(nil, nil).Match("anything") {
		t.Fatal("an empty list blocks")
	}
}

func openDB(t *testing.T) *store.DB {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

type counts struct{ refused, lockouts map[string]int }

func (c *counts) ModerationRefused(r string) { c.refused[r]++ }
func (c *counts) ModerationLockout()         { c.lockouts["all"]++ }

func TestLockoutsEscalate(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	cfg := moderation.DefaultConfig()
	cfg.BlockedWords = []string{"bad"}
	cfg.NSFWWords = []string{"nsfw"}
	cfg.LockoutAfter = 2
	cfg.Lockouts = []time.Duration{time.Hour, 2 * time.Hour, 10 * time.Hour}
	obs := &counts{map[string]int{}, map[string]int{}}
	day := func(time.Time) string { return "2026-12-02" }
	m, err := moderation.New(cfg, db, obs, day, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	u := engine.UserRef{Platform: "telegram", ID: "7", Lang: engine.ZH}
	if err := m.Check(ctx, u, "a good fox", false); err != nil {
		t.Fatal(err)
	}
	refuse := func(prompt string) *engine.Error {
		t.Helper()
		err := m.Check(ctx, u, prompt, false)
		if engine.ErrorCode(err) != engine.EFORBIDDEN {
			t.Fatalf("Check(%q) = %v, want forbidden", prompt, err)
		}
		e := engine.AsError(err)
		if strings.Contains(e.EN, prompt) || strings.Contains(e.ZH, "bad") {
			t.Fatalf("refusal echoes the word: %+v", e)
		}
		return e
	}
	refuse("bad fox")
	// The NSFW list applies only outside NSFW chats, and counts as a strike.
	if err := m.Check(ctx, u, "nsfw fox", true); err != nil {
		t.Fatalf("nsfw chat: %v", err)
	}
	e := refuse("nsfw fox")
	if !strings.Contains(e.ZH, "1小时") && !strings.Contains(e.ZH, "1 小时") {
		t.Fatalf("first lockout not said as 1 h: %q", e.ZH)
	}
	// Locked: even a good prompt is refused, as locked.
	refuse("a good fox")
	for i, want := range []time.Duration{2 * time.Hour, 10 * time.Hour, 10 * time.Hour} {
		now = now.Add(time.Hour*10 + time.Minute) // past any lockout so far
		if err := m.Check(ctx, u, "a good fox", false); err != nil {
			t.Fatalf("step %d: after the lockout: %v", i, err)
		}
		refuse("bad")
		refuse("bad")
		st, _ := m.Stats(ctx)
		if len(st.Locked) != 1 || st.Locked[0].User != "telegram:7" || st.Locked[0].Until.Sub(now) != want {
			t.Fatalf("step %d: locked %+v, want %s", i, st.Locked, want)
		}
	}
	if err := m.Lift(ctx, "telegram:7"); err != nil {
		t.Fatal(err)
	}
	if err := m.Check(ctx, u, "a good fox", false); err != nil {
		t.Fatalf("after unban: %v", err)
	}
	// The level was forgotten: the next lockout is the first step again.
	refuse("bad")
	refuse("bad")
	st, _ := m.Stats(ctx)
	if len(st.Locked) != 1 || st.Locked[0].Until.Sub(now) != time.Hour {
		t.Fatalf("after unban the level stays: %+v", st.Locked)
	}
	if obs.refused["blocked"] != 9 || obs.refused["nsfw"] != 1 || obs.refused["locked"] != 1 || obs.lockouts["all"] != 5 {
		t.Fatalf("observer %+v %+v", obs.refused, obs.lockouts)
	}
	if st.Lockouts != 5 || st.Refused != 10 {
		t.Fatalf("stats %+v", st)
	}
}

func TestStrikesForgottenAfterWindow(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	cfg := moderation.DefaultConfig()
	cfg.BlockedWords = []string{"bad"}
	cfg.LockoutAfter, cfg.StrikeWindow = 2, time.Hour
	m, err := moderation.New(cfg, openDB(t), nil, nil, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	u := engine.UserRef{Platform: "discord", ID: "1"}
	_ = m.Check(ctx, u, "bad", false)
	now = now.Add(2 * time.Hour)
	_ = m.Check(ctx, u, "bad", false)
	if err := m.Check(ctx, u, "fine", false); err != nil {
		t.Fatalf("two strikes two hours apart locked out: %v", err)
	}
}

func TestWordFiles(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "words.txt")
	if err := writeFile(p, "# comment\n\nbadword\n暴力\n"); err != nil {
		t.Fatal(err)
	}
	cfg := moderation.DefaultConfig()
	cfg.WordFiles = []string{p}
	m, err := moderation.New(cfg, nil, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"BadWord here", "血腥暴力场面"} {
		if m.Check(context.Background(), engine.UserRef{}, s, false) == nil {
			t.Errorf("%q not refused", s)
		}
	}
	cfg.WordFiles = []string{filepath.Join(dir, "missing.txt")}
	if _, err := moderation.New(cfg, nil, nil, nil, nil); err == nil || !strings.Contains(err.Error(), "moderation.word_files") {
		t.Fatalf("missing file: %v", err)
	}
}

func writeFile(p, s string) error { return os.WriteFile(p, []byte(s), 0o600) }

// BenchmarkMatch: a list of 2,000 entries (half Latin, half CJK) against
// a 300-character prompt that matches none, the common case.
func BenchmarkMatch(b *testing.B) {
	var words []string
	for i := range 1000 {
		words = append(words, fmt.Sprintf("badword%d", i), fmt.Sprintf("禁词%d号", i))
	}
	l := moderation.Compile(words, []string{"裸眼"})
	prompt := strings.Repeat("a red fox in the snow, 一只红狐狸在雪中, ", 8)
	b.ReportAllocs()
	for b.Loop() {
		if l.Match(prompt) {
			b.Fatal("matched")
		}
	}
}
