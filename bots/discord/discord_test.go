package discord

import (
	"bytes"
	"context"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bwmarrin/discordgo"
	"github.com/picbot/picbot/bots/command"
	"github.com/picbot/picbot/bots/discord/discordtest"
	"github.com/picbot/picbot/engine"
)

func TestEndpointVerifies(t *testing.T) {
	h := startHarness(t, setup{})
	ping, _ := fixture(t, "ping.json", nil)

	t.Run("Ping", func(t *testing.T) {
		status, r, _ := h.post(ping)
		if status != http.StatusOK || r.Type != discordgo.InteractionResponsePong {
			t.Fatalf("status %d, type %d; want 200 and PONG", status, r.Type)
		}
	})
	t.Run("ForgedSignature", func(t *testing.T) {
		other, _ := discordtest.Keys(t)
		if status, _ := discordtest.Post(t, h.endpoint, other, ping); status != http.StatusUnauthorized {
			t.Fatalf("status %d, want 401", status)
		}
	})
	t.Run("TamperedBody", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, h.endpoint, bytes.NewReader(bytes.Replace(ping, []byte(`"type": 1`), []byte(`"type": 2`), 1)))
		req.Header = discordtest.Sign(h.priv, time.Now(), ping)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("status %d, want 401", resp.StatusCode)
		}
	})
	t.Run("NoSignature", func(t *testing.T) {
		resp, err := http.Post(h.endpoint, "application/json", bytes.NewReader(ping))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("status %d, want 401", resp.StatusCode)
		}
	})
	t.Run("StaleTimestamp", func(t *testing.T) {
		if status, _ := discordtest.PostAt(t, h.endpoint, h.priv, time.Now().Add(-10*time.Minute), ping); status != http.StatusUnauthorized {
			t.Fatalf("status %d, want 401", status)
		}
	})
	if n := len(h.api.Calls()); n > 1 { // only the command registration
		t.Fatalf("rejected requests reached Discord: %v", h.api.Calls())
	}
}

func TestRegisterCommands(t *testing.T) {
	h := startHarness(t, setup{cfg: func(c *Config) { c.GuildIDs = []string{"111", "112"} }})
	for _, g := range []string{"111", "112"} {
		c := h.api.Wait(t, 5*time.Second, "guild "+g+" registration", func(c discordtest.Call) bool {
			return c.Is("PUT", "/applications/"+testApp+"/guilds/"+g+"/commands")
		})
		if !strings.HasPrefix(c.Auth, "Bot ") {
			t.Errorf("authorization %q lacks the Bot prefix", c.Auth)
		}
		var cmds []discordgo.ApplicationCommand
		if err := c.Decode(&cmds); err != nil {
			t.Fatal(err)
		}
		byName := map[string]discordgo.ApplicationCommand{}
		for _, c := range cmds {
			byName[c.Name] = c
		}
		for _, name := range []string{"draw", "anime", "upscale", "swapface", "quota", "jobs", "cancel", "models"} {
			c, ok := byName[name]
			if !ok {
				t.Fatalf("no /%s in %s", name, c.Name)
			}
			if c.NameLocalizations == nil || (*c.NameLocalizations)[discordgo.ChineseCN] == "" || (*c.DescriptionLocalizations)[discordgo.ChineseTW] == "" {
				t.Errorf("/%s lacks Chinese localizations", name)
			}
		}
		draw := map[string]*discordgo.ApplicationCommandOption{}
		for _, o := range byName["draw"].Options {
			draw[o.Name] = o
		}
		if p := draw["prompt"]; p == nil || !p.Required || p.NameLocalizations[discordgo.ChineseCN] != "提示词" {
			t.Errorf("draw prompt option: %+v", p)
		}
		for _, name := range []string{"negative", "model", "lora"} {
			if o := draw[name]; o == nil || !o.Autocomplete {
				t.Errorf("draw %s should autocomplete: %+v", name, o)
			}
		}
		if o := draw["image"]; o == nil || o.Type != discordgo.ApplicationCommandOptionAttachment {
			t.Errorf("draw image option: %+v", o)
		}
		if len(draw["size"].Choices) == 0 || len(draw["sampler"].Choices) == 0 {
			t.Error("draw size and sampler need choices")
		}
	}
	if calls := h.api.Calls(); len(calls) != 2 {
		t.Fatalf("want exactly two registrations, got %v", calls)
	}
}

func TestDraw(t *testing.T) {
	h := startHarness(t, setup{})
	body, v := fixture(t, "draw.json", vars{"Count": 2})
	tok := v["Token"].(string)
	status, r, took := h.post(body)
	if status != http.StatusOK || r.Type != discordgo.InteractionResponseDeferredChannelMessageWithSource {
		t.Fatalf("status %d, type %d: want a deferred response", status, r.Type)
	}
	if r.Data != nil && r.Data.Flags&discordgo.MessageFlagsEphemeral != 0 {
		t.Fatal("a /draw's deferred response must be public")
	}
	if took > 3*time.Second {
		t.Fatalf("answered in %s", took)
	}
	final := h.api.Wait(t, 15*time.Second, "the result", finalEditOf(tok))
	m := final.Message(t)
	if len(final.Files) != 2 || len(m.Embeds) != 2 || len(m.Attachments) != 2 {
		t.Fatalf("want 2 files, embeds and attachments: %d, %d, %d", len(final.Files), len(m.Embeds), len(m.Attachments))
	}
	for i, f := range final.Files {
		if f.ContentType != "image/png" || !strings.HasSuffix(f.Name, ".png") {
			t.Errorf("file %d: %s %s", i, f.Name, f.ContentType)
		}
		if _, err := png.Decode(bytes.NewReader(f.Data)); err != nil {
			t.Errorf("file %d: %v", i, err)
		}
		if got, want := m.Embeds[i].Image.URL, "attachment://"+f.Name; got != want {
			t.Errorf("embed %d image %q, want %q", i, got, want)
		}
	}
	if !strings.Contains(m.Embeds[0].Description, "a red fox") || !strings.Contains(m.Embeds[0].Description, "not by an AI model") {
		t.Errorf("caption: %q", m.Embeds[0].Description)
	}
	if m.AllowedMentions == nil || len(m.AllowedMentions.Parse) != 0 {
		t.Error("results must not ping anyone")
	}
	id := jobOf(t, m)
	wantButtons := []string{"again:" + id + ":0:501", "vary:" + id + ":0:501", "upscale:" + id + ":0:501", "vary:" + id + ":1:501", "upscale:" + id + ":1:501"}
	if got := m.CustomIDs(); strings.Join(got, " ") != strings.Join(wantButtons, " ") {
		t.Errorf("buttons %v, want %v", got, wantButtons)
	}
	// Before the result: text edits only (accepted, progress), throttled.
	edits := 0
	for _, c := range h.api.Calls() {
		if editOf(tok)(c) && c.At.Before(final.At) {
			edits++
			if len(c.Files) > 0 || !strings.Contains(c.Message(t).Content, id) {
				t.Errorf("an edit before the result: %s %s", c, c.Payload)
			}
		}
	}
	if edits < 1 || edits > 2 {
		t.Errorf("%d progress edits with progress_every 1h; want 1 or 2", edits)
	}
	j := h.job(id)
	if j.Owner.ID != "501" || strings.Join(j.Owner.Roles, ",") != "900,901" || j.Owner.Lang != engine.EN {
		t.Errorf("owner %+v", j.Owner)
	}
	if j.Chat.GuildID != "111" || j.Chat.ChatID != "222" || j.Chat.Private {
		t.Errorf("chat %+v", j.Chat)
	}
	if j.Request.Steps != 20 || j.Request.Guidance != 6.5 || j.Request.Seed != 7 || j.Request.N != 2 || j.Request.Width != 256 {
		t.Errorf("request %+v", j.Request)
	}
	var tk ticket
	if err := json.Unmarshal([]byte(j.Meta[metaTicket]), &tk); err != nil {
		t.Fatalf("ticket %q: %v", j.Meta[metaTicket], err)
	}
	if tk.Token != tok || tk.App != testApp || tk.Channel != "222" || tk.Guild != "111" || tk.Locale != "en-US" ||
		tk.Expires.Before(time.Now().Add(14*time.Minute)) {
		t.Errorf("ticket %+v", tk)
	}
	if got, want := j.Meta[metaMessage], discordtest.OriginalID(tok); got != want {
		t.Errorf("message id %q, want %q", got, want)
	}
	waitState(t, h, id, engine.StateDelivered)
}

func waitState(t *testing.T, h *harness, id string, want engine.State) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		j := h.job(id)
		if j.State == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s is %s, want %s", id, j.State, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestDeliveryAfterRestart(t *testing.T) {
	first := startHarness(t, setup{render: 2 * time.Second})
	body, v := fixture(t, "draw.json", nil)
	tok := v["Token"].(string)
	first.post(body)
	first.api.Wait(t, 5*time.Second, "the accepted edit", editOf(tok))
	first.stop() // mid-render: the job and its ticket stay in the store

	h := startHarness(t, setup{dir: first.dir, api: first.api, priv: first.priv, pub: first.pub, render: 2 * time.Second})
	final := h.api.Wait(t, 15*time.Second, "the result after the restart", finalEditOf(tok))
	waitState(t, h, jobOf(t, final.Message(t)), engine.StateDelivered)
	for _, c := range h.api.Calls() {
		if c.Is("POST", "/channels/.*") {
			t.Errorf("posted to the channel while the token was good: %s", c)
		}
	}
}

func TestErrorsAreEphemeralAndLocalized(t *testing.T) {
	h := startHarness(t, setup{})

	t.Run("RefusedJob", func(t *testing.T) {
		body, v := fixture(t, "draw.json", vars{"Size": "13x13", "Locale": "zh-CN"})
		tok := v["Token"].(string)
		if _, r, _ := h.post(body); r.Type != discordgo.InteractionResponseDeferredChannelMessageWithSource {
			t.Fatalf("type %d: defer first, always", r.Type)
		}
		del := h.api.Wait(t, 5*time.Second, "the public deferral deleted", func(c discordtest.Call) bool {
			return c.Is("DELETE", "/webhooks/"+testApp+"/"+tok+"/messages/@original")
		})
		fu := h.api.Wait(t, 5*time.Second, "the error follow-up", func(c discordtest.Call) bool {
			return c.Is("POST", "/webhooks/"+testApp+"/"+tok)
		})
		m := fu.Message(t)
		if m.Flags&64 == 0 {
			t.Errorf("error follow-up flags %d, want ephemeral", m.Flags)
		}
		if !strings.Contains(m.Content, "不可用") {
			t.Errorf("error not in Chinese: %q", m.Content)
		}
		if fu.At.Before(del.At) {
			t.Error("follow-up before the deletion")
		}
	})
	t.Run("BadOption", func(t *testing.T) {
		body, _ := fixture(t, "draw.json", vars{"Size": "big", "Locale": "zh-TW"})
		_, r, _ := h.post(body)
		if r.Type != discordgo.InteractionResponseChannelMessageWithSource || r.Data == nil || r.Data.Flags != discordgo.MessageFlagsEphemeral {
			t.Fatalf("want an immediate ephemeral answer: %+v", r)
		}
		if !strings.Contains(r.Data.Content, "尺寸") {
			t.Errorf("not Chinese: %q", r.Data.Content)
		}
	})
	t.Run("PrivateCommand", func(t *testing.T) {
		body, v := fixture(t, "quota.json", vars{"Locale": "zh-CN"})
		_, r, _ := h.post(body)
		if r.Type != discordgo.InteractionResponseDeferredChannelMessageWithSource || r.Data == nil || r.Data.Flags != discordgo.MessageFlagsEphemeral {
			t.Fatalf("want an ephemeral deferral: %+v", r)
		}
		c := h.api.Wait(t, 5*time.Second, "the quota", editOf(v["Token"].(string)))
		if m := c.Message(t); !strings.Contains(m.Content, "今天") {
			t.Errorf("quota reply %q", m.Content)
		}
	})
	t.Run("UnknownJob", func(t *testing.T) {
		body, v := fixture(t, "cancel.json", vars{"Job": "nosuchjb"})
		h.post(body)
		c := h.api.Wait(t, 5*time.Second, "the cancel reply", editOf(v["Token"].(string)))
		if m := c.Message(t); m.Content == "" {
			t.Error("empty reply")
		}
	})
}

func TestLateResultGoesToChannel(t *testing.T) {
	h := startHarness(t, setup{render: 1500 * time.Millisecond, cfg: func(c *Config) { c.TokenLifetime = time.Second }})
	body, v := fixture(t, "draw.json", nil)
	tok := v["Token"].(string)
	h.post(body)
	first := h.api.Wait(t, 5*time.Second, "the accepted edit", editOf(tok))
	post := h.api.Wait(t, 15*time.Second, "the channel message", channelPost("222"))
	m := post.Message(t)
	if len(post.Files) != 1 || len(m.Embeds) != 1 {
		t.Fatalf("want the image in the channel message: %d files", len(post.Files))
	}
	if m.Reference == nil || m.Reference.MessageID != discordtest.OriginalID(tok) {
		t.Errorf("reference %+v, want the command's response %s", m.Reference, discordtest.OriginalID(tok))
	}
	if !strings.HasPrefix(m.Content, "<@501>") || m.AllowedMentions == nil || strings.Join(m.AllowedMentions.Users, ",") != "501" {
		t.Errorf("content %q, mentions %+v: want the author pinged", m.Content, m.AllowedMentions)
	}
	for _, c := range h.api.Calls() {
		if editOf(tok)(c) && c.At.After(first.At.Add(time.Second)) {
			t.Errorf("an edit after the token's lifetime: %s at %s", c, c.At.Sub(first.At))
		}
	}
	waitState(t, h, jobOf(t, m), engine.StateDelivered)
}

func TestDM(t *testing.T) {
	h := startHarness(t, setup{render: 1500 * time.Millisecond, cfg: func(c *Config) { c.TokenLifetime = time.Second }})
	body, v := fixture(t, "draw_dm.json", vars{"User": "777", "Channel": discordtest.DMChannel("777")})
	_, r, _ := h.post(body)
	if r.Type != discordgo.InteractionResponseDeferredChannelMessageWithSource {
		t.Fatalf("type %d", r.Type)
	}
	h.api.Wait(t, 5*time.Second, "the DM opened", func(c discordtest.Call) bool { return c.Is("POST", "/users/@me/channels") })
	post := h.api.Wait(t, 15*time.Second, "the DM", channelPost(discordtest.DMChannel("777")))
	m := post.Message(t)
	if len(post.Files) != 1 || strings.Contains(m.Content, "<@") {
		t.Errorf("DM: %d files, content %q", len(post.Files), m.Content)
	}
	if m.Reference == nil || m.Reference.MessageID != discordtest.OriginalID(v["Token"].(string)) {
		t.Errorf("reference %+v", m.Reference)
	}
	j := h.job(jobOf(t, m))
	if !j.Chat.Private || j.Chat.GuildID != "" || j.Owner.ID != "777" {
		t.Errorf("job chat %+v owner %+v", j.Chat, j.Owner)
	}
}

func TestButtonsAfterRestart(t *testing.T) {
	first := startHarness(t, setup{})
	body, v := fixture(t, "draw.json", nil)
	first.post(body)
	m := first.api.Wait(t, 15*time.Second, "the result", finalEditOf(v["Token"].(string))).Message(t)
	parent := jobOf(t, m)
	waitState(t, first, parent, engine.StateDelivered)
	first.stop()

	h := startHarness(t, setup{dir: first.dir, api: first.api, priv: first.priv, pub: first.pub})
	t.Run("Author", func(t *testing.T) {
		for _, custom := range []string{"again:" + parent + ":0", "upscale:" + parent + ":0:501"} {
			body, v := fixture(t, "button.json", vars{"CustomID": custom})
			_, r, _ := h.post(body)
			if r.Type != discordgo.InteractionResponseDeferredChannelMessageWithSource {
				t.Fatalf("%s: type %d", custom, r.Type)
			}
			final := h.api.Wait(t, 15*time.Second, custom+"'s result", finalEditOf(v["Token"].(string)))
			child := h.job(jobOf(t, final.Message(t)))
			if child.ID == parent || child.Owner.ID != "501" {
				t.Errorf("%s: child %+v", custom, child)
			}
			if strings.HasPrefix(custom, "upscale") && (child.Request.Kind != engine.KindUpscale || child.Request.Inputs[0].Blob != h.job(parent).Results[0].Blob) {
				t.Errorf("upscale child %+v", child.Request)
			}
		}
	})
	t.Run("Stranger", func(t *testing.T) {
		body, _ := fixture(t, "button.json", vars{"CustomID": "again:" + parent + ":0:501", "User": "666", "Locale": "zh-CN"})
		_, r, _ := h.post(body)
		if r.Type != discordgo.InteractionResponseChannelMessageWithSource || r.Data.Flags != discordgo.MessageFlagsEphemeral || !strings.Contains(r.Data.Content, "只有") {
			t.Fatalf("want an immediate ephemeral refusal: %+v", r.Data)
		}
		// Without the owner in the id, the store says who it is.
		body, v := fixture(t, "button.json", vars{"CustomID": "vary:" + parent + ":0", "User": "666"})
		h.post(body)
		fu := h.api.Wait(t, 5*time.Second, "the refusal", func(c discordtest.Call) bool { return c.Is("POST", "/webhooks/"+testApp+"/"+v["Token"].(string)) })
		if m := fu.Message(t); m.Flags&64 == 0 || !strings.Contains(m.Content, "Only the person") {
			t.Errorf("refusal %+v", m)
		}
	})
	t.Run("Anyone", func(t *testing.T) {
		h.stop()
		h := startHarness(t, setup{dir: first.dir, api: first.api, priv: first.priv, pub: first.pub, cfg: func(c *Config) { c.ButtonUsers = ButtonsAnyone }})
		body, v := fixture(t, "button.json", vars{"CustomID": "again:" + parent + ":0:501", "User": "666"})
		h.post(body)
		final := h.api.Wait(t, 15*time.Second, "the stranger's result", finalEditOf(v["Token"].(string)))
		if child := h.job(jobOf(t, final.Message(t))); child.Owner.ID != "666" {
			t.Errorf("child owner %+v", child.Owner)
		}
	})
}

func TestAutocomplete(t *testing.T) {
	t.Run("LocalHasNoCatalogue", func(t *testing.T) {
		h := startHarness(t, setup{})
		body, _ := fixture(t, "autocomplete.json", vars{"Option": "model", "Typed": "any"})
		_, r, _ := h.post(body)
		if r.Type != discordgo.InteractionApplicationCommandAutocompleteResult || r.Data == nil || r.Data.Choices == nil || len(*r.Data.Choices) != 0 {
			t.Fatalf("want an empty choice list: %+v", r)
		}
	})
	t.Run("Catalogue", func(t *testing.T) {
		cat := []engine.CatalogEntry{
			{Vendor: "v", Kind: engine.EntryModel, ID: "anything-v5", Name: "Anything V5"},
			{Vendor: "v", Kind: engine.EntryModel, ID: "realistic-vision", Name: "Realistic Vision", Tags: []string{"photo"}},
			{Vendor: "v", Kind: engine.EntryModel, ID: "nsfw-x", Name: "Anything NSFW", Adult: true},
			{Vendor: "v", Kind: engine.EntryLoRA, ID: "ink", Name: "Ink wash", Base: "SD1.5"},
			{Vendor: "v", Kind: engine.EntryEmbedding, ID: "EasyNegative", Name: "EasyNegative"},
		}
		h := startHarness(t, setup{deps: func(d *Deps) {
			d.Catalog = func(context.Context) ([]engine.CatalogEntry, error) { return cat, nil }
		}})
		for _, tc := range []struct{ option, typed, want string }{
			{"model", "any", "anything-v5"},
			{"model", "photo", "realistic-vision"},
			{"model", "", "anything-v5 realistic-vision"},
			{"lora", "ink", "ink"},
			{"negative", "blurry, easy", "blurry, easy blurry, EasyNegative"},
		} {
			body, _ := fixture(t, "autocomplete.json", vars{"Option": tc.option, "Typed": tc.typed})
			_, r, _ := h.post(body)
			var got []string
			for _, c := range *r.Data.Choices {
				got = append(got, c.Value.(string))
			}
			if strings.Join(got, " ") != tc.want {
				t.Errorf("%s %q: %v, want %s", tc.option, tc.typed, got, tc.want)
			}
		}
	})
}

func TestRateLimitedEditNeverOutlivesToken(t *testing.T) {
	h := startHarness(t, setup{render: 200 * time.Millisecond, cfg: func(c *Config) { c.TokenLifetime = 4 * time.Second }})
	h.api.Intercept(func(w http.ResponseWriter, c *discordtest.Call) bool {
		if c.Method == "PATCH" && len(c.Files) > 0 {
			discordtest.RateLimit(w, time.Minute)
			return true
		}
		return false
	})
	body, v := fixture(t, "draw.json", nil)
	start := time.Now()
	h.post(body)
	limited := h.api.Wait(t, 10*time.Second, "the limited edit", finalEditOf(v["Token"].(string)))
	post := h.api.Wait(t, 10*time.Second, "the channel fallback", channelPost("222"))
	if d := post.At.Sub(limited.At); d > time.Second {
		t.Errorf("fell back %s after the 429: slept on the limit", d)
	}
	if post.At.Sub(start) > 4*time.Second {
		t.Errorf("result posted %s after the command", post.At.Sub(start))
	}
	n := 0
	for _, c := range h.api.Calls() {
		if finalEditOf(v["Token"].(string))(c) {
			n++
		}
	}
	if n != 1 {
		t.Errorf("the rate-limited edit was retried %d times", n-1)
	}
	if strings.Contains(h.logs.String(), v["Token"].(string)) {
		t.Errorf("the interaction token was logged:\n%s", h.logs)
	}
}

func TestLargeResultIsReencoded(t *testing.T) {
	// 512x512 renders a PNG of about 21 KiB that a JPEG fits under 16 KiB:
	// the path 1024x1024 took at 30 KiB, for a quarter of the CPU (that
	// one needed 2 s of it with -race and missed the 20 s wait at load 21).
	const limit = 16 << 10
	for _, public := range []bool{false, true} {
		name := map[bool]string{false: "NoPublicURL", true: "PublicURL"}[public]
		t.Run(name, func(t *testing.T) {
			h := startHarness(t, setup{publicURL: public, cfg: func(c *Config) { c.MaxUpload = limit }})
			body, v := fixture(t, "draw.json", vars{"Size": "512x512", "Prompt": "noisy detailed landscape"})
			h.post(body)
			final := h.api.Wait(t, 20*time.Second, "the result", finalEditOf(v["Token"].(string)))
			f := final.Files[0]
			if int64(len(f.Data)) > limit || f.ContentType != "image/jpeg" || !strings.HasSuffix(f.Name, ".jpg") {
				t.Fatalf("file %s %s, %d bytes: want a JPEG under %d bytes", f.Name, f.ContentType, len(f.Data), limit)
			}
			if j := h.job(jobOf(t, final.Message(t))); j.Results[0].Size <= limit {
				t.Fatalf("the original is %d bytes, within the %d limit: nothing to re-encode", j.Results[0].Size, limit)
			}
			m := final.Message(t)
			if m.Embeds[0].Footer == nil || !strings.Contains(m.Embeds[0].Footer.Text, "Re-encoded") {
				t.Errorf("no re-encoding note: %+v", m.Embeds[0].Footer)
			}
			j := h.job(jobOf(t, m))
			var link string
			for _, row := range m.Components {
				for _, c := range row.Components {
					if c.Label == "Original" {
						link = c.URL
					}
				}
			}
			if !public {
				if link != "" {
					t.Errorf("a link without a public URL: %s", link)
				}
				return
			}
			if !strings.HasPrefix(link, h.server.URL+"/discord/original/"+j.ID+"/0/") {
				t.Fatalf("original link %q", link)
			}
			resp, err := http.Get(link)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || int64(len(got)) != j.Results[0].Size {
				t.Errorf("original: status %d, %d bytes, want %d", resp.StatusCode, len(got), j.Results[0].Size)
			}
			resp, err = http.Get(link[:len(link)-1] + "x")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusNotFound {
				t.Errorf("a forged link gave %d", resp.StatusCode)
			}
		})
	}
}

func TestAttachment(t *testing.T) {
	h := startHarness(t, setup{})
	img := image.NewRGBA(image.Rect(0, 0, 64, 64))
	for i := range img.Pix {
		img.Pix[i] = byte(i)
	}
	var buf bytes.Buffer
	png.Encode(&buf, img)
	url := h.api.AddFile("portrait.png", buf.Bytes())
	body, v := fixture(t, "anime.json", vars{"File": url, "FileSize": buf.Len()})
	h.post(body)
	final := h.api.Wait(t, 15*time.Second, "the anime result", finalEditOf(v["Token"].(string)))
	j := h.job(jobOf(t, final.Message(t)))
	if j.Request.Kind != engine.KindAnime || j.Request.Style != "sketch" || len(j.Request.Inputs) != 1 || j.Request.Inputs[0].Width != 64 {
		t.Errorf("request %+v", j.Request)
	}
}

func TestGateway(t *testing.T) {
	api := discordtest.NewServer(t)
	h := startHarness(t, setup{api: api, cfg: func(c *Config) { c.Mode = ModeGateway; c.PublicKey = "" }})
	identify := api.Gateway().WaitIdentified(t, 10*time.Second)
	var id struct {
		Token   string `json:"token"`
		Intents int    `json:"intents"`
	}
	json.Unmarshal(identify, &id)
	if id.Token != "Bot bot-secret-token" || id.Intents != 0 {
		t.Errorf("identify: token %q intents %d", id.Token, id.Intents)
	}
	body, v := fixture(t, "draw.json", nil)
	tok := v["Token"].(string)
	sent := time.Now()
	if err := api.Gateway().Dispatch("INTERACTION_CREATE", json.RawMessage(body)); err != nil {
		t.Fatal(err)
	}
	cb := api.Wait(t, 5*time.Second, "the callback", callback)
	if d := cb.At.Sub(sent); d > 3*time.Second {
		t.Errorf("acknowledged after %s", d)
	}
	if !strings.Contains(cb.Path, "/"+v["ID"].(string)+"/"+tok+"/") || cb.Message(t).Type != int(discordgo.InteractionResponseDeferredChannelMessageWithSource) {
		t.Errorf("callback %s %s", cb.Path, cb.Payload)
	}
	final := api.Wait(t, 15*time.Second, "the result", finalEditOf(tok))
	if final.At.Before(cb.At) {
		t.Error("edited before the acknowledgement")
	}
	deadline := time.Now().Add(5 * time.Second)
	for api.Gateway().Heartbeats() == 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if api.Gateway().Heartbeats() == 0 {
		t.Error("no heartbeat")
	}
	// The HTTP endpoint is not mounted in gateway mode.
	if status, _ := discordtest.Post(t, h.endpoint, h.priv, body); status == http.StatusOK {
		t.Error("the interactions endpoint answers in gateway mode")
	}
}

func TestParse(t *testing.T) {
	body, _ := fixture(t, "draw.json", vars{"Count": 3})
	var in discordgo.Interaction
	if err := json.Unmarshal(body, &in); err != nil {
		t.Fatal(err)
	}
	c, atts, err := parse(in.ApplicationCommandData())
	if err != nil {
		t.Fatal(err)
	}
	r := c.Request
	if c.Name != "draw" || r.Prompt != "a red fox" || r.Width != 256 || r.Height != 256 || r.Seed != 7 || r.Steps != 20 || r.Guidance != 6.5 || r.N != 3 || len(atts) != 0 {
		t.Errorf("parsed %+v %+v", c, r)
	}
	att := func(id string) *discordgo.MessageAttachment {
		return &discordgo.MessageAttachment{ID: id, Filename: id + ".png", URL: "https://cdn.example/" + id}
	}
	resolved := &discordgo.ApplicationCommandInteractionDataResolved{Attachments: map[string]*discordgo.MessageAttachment{"a1": att("a1"), "a2": att("a2")}}
	opt := func(name string, t discordgo.ApplicationCommandOptionType, v any) *discordgo.ApplicationCommandInteractionDataOption {
		return &discordgo.ApplicationCommandInteractionDataOption{Name: name, Type: t, Value: v}
	}
	file := discordgo.ApplicationCommandOptionAttachment
	for _, tc := range []struct {
		name  string
		data  discordgo.ApplicationCommandInteractionData
		check func(*testing.T, *command.Command, []*discordgo.MessageAttachment)
	}{
		{"DrawAliases", discordgo.ApplicationCommandInteractionData{Name: "draw", Resolved: resolved, Options: []*discordgo.ApplicationCommandInteractionDataOption{
			opt("prompt", discordgo.ApplicationCommandOptionString, "x"), opt("n", discordgo.ApplicationCommandOptionInteger, 2.0),
			opt("guidance", discordgo.ApplicationCommandOptionNumber, 9.0), opt("control_image", file, "a2")}},
			func(t *testing.T, c *command.Command, atts []*discordgo.MessageAttachment) {
				if c.Request.N != 2 || c.Request.Guidance != 9 || len(atts) != 1 || atts[0].ID != "a2" {
					t.Errorf("%+v %v", c.Request, atts)
				}
			}},
		{"SwapfaceOrder", discordgo.ApplicationCommandInteractionData{Name: "swapface", Resolved: resolved, Options: []*discordgo.ApplicationCommandInteractionDataOption{
			opt("target", file, "a2"), opt("face", file, "a1")}},
			func(t *testing.T, c *command.Command, atts []*discordgo.MessageAttachment) {
				if len(atts) != 2 || atts[0].ID != "a1" || atts[1].ID != "a2" {
					t.Errorf("want face then target: %v", atts)
				}
			}},
		{"SwapfaceOtherNames", discordgo.ApplicationCommandInteractionData{Name: "swapface", Resolved: resolved, Options: []*discordgo.ApplicationCommandInteractionDataOption{
			opt("first", file, "a1"), opt("second", file, "a2")}},
			func(t *testing.T, c *command.Command, atts []*discordgo.MessageAttachment) {
				if len(atts) != 2 || atts[0].ID != "a1" || atts[1].ID != "a2" {
					t.Errorf("want the attachments in order: %v", atts)
				}
			}},
		{"CancelID", discordgo.ApplicationCommandInteractionData{Name: "cancel", Options: []*discordgo.ApplicationCommandInteractionDataOption{
			opt("id", discordgo.ApplicationCommandOptionString, "ABCD1234")}},
			func(t *testing.T, c *command.Command, _ []*discordgo.MessageAttachment) {
				if len(c.Args) != 1 || c.Args[0] != "ABCD1234" {
					t.Errorf("args %v", c.Args)
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, atts, err := parse(tc.data)
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, c, atts)
		})
	}
	if _, _, err := parse(discordgo.ApplicationCommandInteractionData{Name: "anime", Options: []*discordgo.ApplicationCommandInteractionDataOption{opt("image", file, "gone")}}); engine.ErrorCode(err) != engine.EINVALID {
		t.Errorf("a missing attachment: %v", err)
	}
	for _, tc := range []struct {
		id string
		ok bool
		k  button
	}{
		{"again:abcd1234:0", true, button{action: "again", job: "abcd1234"}},
		{"upscale:abcd1234:3:501", true, button{action: "upscale", job: "abcd1234", index: 3, owner: "501"}},
		{"orig:abcd1234:1:501", true, button{action: "orig", job: "abcd1234", index: 1, owner: "501"}},
		{"delete:abcd1234:0", false, button{}},
		{"again:abcd1234:x", false, button{}},
		{"again::0", false, button{}},
		{"again", false, button{}},
	} {
		k, ok := parseButton(tc.id)
		if ok != tc.ok || k != tc.k {
			t.Errorf("parseButton(%q) = %+v, %v", tc.id, k, ok)
		}
	}
}

func TestFit(t *testing.T) {
	img := image.NewRGBA(image.Rect(0, 0, 400, 300))
	for y := 0; y < 300; y++ {
		for x := 0; x < 400; x++ {
			img.Set(x, y, color.RGBA{uint8(x * y), uint8(x ^ y), uint8(x + 3*y), 255})
		}
	}
	var buf bytes.Buffer
	png.Encode(&buf, img)
	data := buf.Bytes()
	if out, mime, changed, err := fit(data, "image/png", int64(len(data))); err != nil || changed || mime != "image/png" || len(out) != len(data) {
		t.Errorf("an image that fits changed: %v %s %v", changed, mime, err)
	}
	for _, budget := range []int64{int64(len(data)) / 2, 10 << 10, 2 << 10} {
		out, mime, changed, err := fit(data, "image/png", budget)
		if err != nil || !changed || mime != "image/jpeg" || int64(len(out)) > budget {
			t.Errorf("budget %d: %d bytes, %s, %v", budget, len(out), mime, err)
		}
	}
}
