package discord

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/bwmarrin/discordgo"
)

// hasControl reports a character the text grammar strips from a command:
// a C0 or C1 control or a bidirectional override or isolate.
func hasControl(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool {
		return unicode.Is(unicode.Cc, r) || r >= 0x202A && r <= 0x202E || r >= 0x2066 && r <= 0x2069
	})
}

// A slash command's free text does not go through the text grammar, so
// the adapter strips what the grammar strips: a prompt that rings the bell,
// sets the terminal's colours or reads backwards gets to the job without them.
func TestDrawStripsControls(t *testing.T) {
	h := startHarness(t, setup{})
	body, v := fixture(t, "draw.json", vars{"Prompt": `a red\u0007 fox\u202e xof\u001b[31m\tat dusk`})
	var in map[string]any
	if err := json.Unmarshal(body, &in); err != nil {
		t.Fatal(err)
	}
	data := in["data"].(map[string]any)
	data["options"] = append(data["options"].([]any),
		map[string]any{"name": "negative", "type": 3, "value": "blurry\u0000, \u2066text\u2069\u009b"})
	if body, err := json.Marshal(in); err != nil {
		t.Fatal(err)
	} else if status, r, _ := h.post(body); status != 200 || r.Type != discordgo.InteractionResponseDeferredChannelMessageWithSource {
		t.Fatalf("status %d, type %d: want a deferred response", status, r.Type)
	}
	final := h.api.Wait(t, 15*time.Second, "the result", finalEditOf(v["Token"].(string)))
	j := h.job(jobOf(t, final.Message(t)))
	if got, want := j.Request.Prompt, "a red fox xof[31m at dusk"; got != want || hasControl(got) {
		t.Errorf("prompt %q, want %q", got, want)
	}
	if got, want := j.Request.Negative, "blurry, text"; got != want || hasControl(got) {
		t.Errorf("negative %q, want %q", got, want)
	}
}
