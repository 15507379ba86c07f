package discord

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/bwmarrin/discordgo"
	"github.com/picbot/picbot/bots/chat"
	"github.com/picbot/picbot/bots/discord/discordtest"
	"github.com/picbot/picbot/engine"
	"github.com/picbot/picbot/moderation"
)

// slash builds a slash command's interaction from user, with the member's
// permissions, in a channel flagged NSFW or not.
func slash(t *testing.T, user, perms string, nsfw bool, name string, opts ...any) ([]byte, string) {
	t.Helper()
	body, v := fixture(t, "quota.json", vars{"User": user})
	var in map[string]any
	if err := json.Unmarshal(body, &in); err != nil {
		t.Fatal(err)
	}
	in["member"].(map[string]any)["permissions"] = perms
	in["channel"] = map[string]any{"id": in["channel_id"], "type": 0, "nsfw": nsfw}
	var o []any
	for i := 0; i+1 < len(opts); i += 2 {
		typ := 3
		if _, ok := opts[i+1].(float64); ok {
			typ = 4
		}
		o = append(o, map[string]any{"name": opts[i], "type": typ, "value": opts[i+1]})
	}
	in["data"] = map[string]any{"id": "9100", "name": name, "type": 1, "options": o}
	body, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	return body, v["Token"].(string)
}

// Settings need Manage Server; a channel flagged NSFW allows the NSFW
// words; the preset autocompletes and applies; /show sends a result again.
func TestSettingsNSFWPresetShow(t *testing.T) {
	h := startHarness(t, setup{deps: func(d *Deps) {
		svc := d.Service.(*chat.Service)
		cfg := moderation.DefaultConfig()
		cfg.NSFWWords = []string{"bikini"}
		m, err := moderation.New(cfg, nil, nil, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		svc.Moderator, svc.Settings = m, d.Settings.(chat.SettingsStore)
		svc.Presets = map[string]chat.Preset{"anime": {PromptPrefix: "anime style", Size: "256x256"}}
		d.Presets = []string{"anime", "photo"}
	}})
	edit := func(body []byte, tok string) discordtest.Message {
		t.Helper()
		h.post(body)
		return h.api.Wait(t, 10*time.Second, "the reply", editOf(tok)).Message(t)
	}
	body, tok := slash(t, "501", "0", false, "settings", "size", "320x256")
	if got := edit(body, tok).Content; !strings.Contains(got, "Only this chat's admins") {
		t.Fatalf("a member without Manage Server: %q", got)
	}
	body, tok = slash(t, "501", "32", false, "settings", "size", "320x256")
	if got := edit(body, tok).Content; !strings.Contains(got, "size 320x256") {
		t.Fatalf("Manage Server: %q", got)
	}

	// The NSFW word: refused in a plain channel, drawn in a flagged one.
	body, tok = slash(t, "502", "0", false, "draw", "prompt", "a bikini")
	h.post(body)
	followup := h.api.Wait(t, 10*time.Second, "the refusal", func(c discordtest.Call) bool { return c.Is("POST", "/webhooks/"+testApp+"/"+tok) })
	if got := followup.Message(t); !strings.Contains(got.Content, "adult content is off") || got.Flags&int(discordgo.MessageFlagsEphemeral) == 0 {
		t.Fatalf("plain channel: %+v", got)
	}
	body, tok = slash(t, "502", "0", true, "draw", "prompt", "a bikini", "preset", "anime")
	h.post(body)
	final := h.api.Wait(t, 15*time.Second, "the result", finalEditOf(tok))
	m := final.Message(t)
	if !strings.Contains(m.Content+embedsText(m), "anime style, a bikini") {
		t.Fatalf("preset not applied: %+v", m)
	}
	id := jobOf(t, m)

	body, _ = fixture(t, "autocomplete.json", vars{"Option": "preset", "Typed": "ani"})
	_, r, _ := h.post(body)
	if r.Data == nil || r.Data.Choices == nil || len(*r.Data.Choices) != 1 || (*r.Data.Choices)[0].Value != "anime" {
		t.Fatalf("preset autocomplete: %+v", r.Data)
	}

	// /show (places.go's) autocompletes the user's jobs with pictures.
	body, _ = fixture(t, "autocomplete.json", vars{"User": "502", "Option": "job", "Typed": id[:4]})
	var in map[string]any
	json.Unmarshal(body, &in)
	in["data"] = map[string]any{"id": "9201", "name": "show", "type": 1, "options": []any{map[string]any{"name": "job", "type": 3, "value": id[:4], "focused": true}}}
	body, _ = json.Marshal(in)
	_, r, _ = h.post(body)
	if r.Data == nil || r.Data.Choices == nil || len(*r.Data.Choices) != 1 || (*r.Data.Choices)[0].Value != id {
		t.Fatalf("/show autocomplete: %+v", r.Data)
	}
	body, tok = slash(t, "502", "0", false, "show", "job", id)
	h.post(body)
	shown := h.api.Wait(t, 10*time.Second, "/show", finalEditOf(tok))
	if len(shown.Files) != 1 || jobOf(t, shown.Message(t)) != id {
		t.Fatalf("/show: %d files", len(shown.Files))
	}
}

func embedsText(m discordtest.Message) string {
	var b strings.Builder
	for _, e := range m.Embeds {
		b.WriteString(e.Description + " ")
		if e.Footer != nil {
			b.WriteString(e.Footer.Text)
		}
	}
	return b.String()
}

// Discord refuses a command with more than 25 options, or more than 4000
// characters in its names, descriptions and choice values (the longest
// localization of each counting): /draw, with its preset option, must fit.
func TestCommandsWithinDiscordLimits(t *testing.T) {
	longest := func(def string, loc map[discordgo.Locale]string) int {
		n := utf8.RuneCountInString(def)
		for _, v := range loc {
			n = max(n, utf8.RuneCountInString(v))
		}
		return n
	}
	var opts func(os []*discordgo.ApplicationCommandOption) int
	opts = func(os []*discordgo.ApplicationCommandOption) int {
		n := 0
		for _, o := range os {
			n += longest(o.Name, o.NameLocalizations) + longest(o.Description, o.DescriptionLocalizations) + opts(o.Options)
			for _, c := range o.Choices {
				n += longest(c.Name, c.NameLocalizations)
				if s, ok := c.Value.(string); ok {
					n += utf8.RuneCountInString(s)
				}
			}
		}
		return n
	}
	for _, c := range Commands(engine.DefaultLimits()) {
		if len(c.Options) > 25 {
			t.Errorf("/%s has %d options, Discord takes 25", c.Name, len(c.Options))
		}
		var nl, dl map[discordgo.Locale]string
		if c.NameLocalizations != nil {
			nl = *c.NameLocalizations
		}
		if c.DescriptionLocalizations != nil {
			dl = *c.DescriptionLocalizations
		}
		n := longest(c.Name, nl) + longest(c.Description, dl) + opts(c.Options)
		t.Logf("/%s: %d options, %d characters", c.Name, len(c.Options), n)
		if n > 4000 {
			t.Errorf("/%s has %d characters, Discord takes 4000", c.Name, n)
		}
	}
}
