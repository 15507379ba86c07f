package discord

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bwmarrin/discordgo"
	"github.com/picbot/picbot/bots/discord/discordtest"
	"github.com/picbot/picbot/engine"
)

// menuVars are a context-menu interaction on message 1400… in channel 222,
// in a guild that installed the bot, with attachments atts (JSON).
func menuVars(menu, atts string) vars {
	return vars{"Menu": menu, "Target": "1400000000000000001", "Channel": "222", "Context": 0,
		"Owners": `{"0": "111", "1": "501"}`, "Attachments": atts, "Components": "[]"}
}

// pngAttachment serves a PNG of colour c from the fake's CDN and returns it as an attachment list.
func pngAttachment(t *testing.T, h *harness, name string, c color.Color) string {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 64, 64))
	for y := range 64 {
		for x := range 64 {
			img.Set(x, y, c)
		}
	}
	var buf bytes.Buffer
	png.Encode(&buf, img)
	url := h.api.AddFile(name, buf.Bytes())
	return fmt.Sprintf(`[{"id": "13%017d", "filename": %q, "size": %d, "url": %q, "proxy_url": %q, "width": 64, "height": 64, "content_type": "image/png"}]`,
		len(name), name, buf.Len(), url, url)
}

// TestContextMenuUpscale: "Upscale" on a message with a picture attached
// upscales that picture, answered in the interaction's response.
func TestContextMenuUpscale(t *testing.T) {
	h := startHarness(t, setup{})
	body, v := fixture(t, "menu.json", menuVars("Upscale", pngAttachment(t, h, "fox.png", color.RGBA{200, 40, 0, 255})))
	status, r, _ := h.post(body)
	if status != http.StatusOK || r.Type != discordgo.InteractionResponseDeferredChannelMessageWithSource {
		t.Fatalf("status %d type %d", status, r.Type)
	}
	final := h.api.Wait(t, 15*time.Second, "the upscaled picture", finalEditOf(v["Token"].(string)))
	j := h.job(jobOf(t, final.Message(t)))
	if j.Request.Kind != engine.KindUpscale || len(j.Request.Inputs) != 1 || j.Request.Inputs[0].Width != 64 {
		t.Fatalf("request %+v", j.Request)
	}

	// Without a picture: a private word, no job.
	body, _ = fixture(t, "menu.json", menuVars("Make anime", "[]"))
	_, r, _ = h.post(body)
	if r.Type != discordgo.InteractionResponseChannelMessageWithSource || r.Data == nil || r.Data.Flags&discordgo.MessageFlagsEphemeral == 0 ||
		!strings.Contains(r.Data.Content, "no picture") {
		t.Fatalf("answer %+v", r)
	}
}

// TestContextMenuSwap: "Use as face" remembers the face, "Swap onto this"
// swaps it onto the second message's picture; "Swap onto this" first asks
// for a face. "Vary" on the bot's result varies that job.
func TestContextMenuSwap(t *testing.T) {
	h := startHarness(t, setup{})
	target := pngAttachment(t, h, "target.png", color.RGBA{0, 0, 255, 255})
	body, _ := fixture(t, "menu.json", menuVars("Swap onto this", target))
	if _, r, _ := h.post(body); r.Data == nil || !strings.Contains(r.Data.Content, "Use as face") {
		t.Fatalf("swap before a face: %+v", r)
	}
	body, _ = fixture(t, "menu.json", menuVars("Use as face", pngAttachment(t, h, "face.png", color.RGBA{255, 0, 0, 255})))
	if _, r, _ := h.post(body); r.Data == nil || r.Data.Flags&discordgo.MessageFlagsEphemeral == 0 || !strings.Contains(r.Data.Content, "Face saved") {
		t.Fatalf("use as face: %+v", r)
	}
	body, v := fixture(t, "menu.json", menuVars("Swap onto this", target))
	h.post(body)
	final := h.api.Wait(t, 15*time.Second, "the swap", finalEditOf(v["Token"].(string)))
	m := final.Message(t)
	j := h.job(jobOf(t, m))
	if j.Request.Kind != engine.KindSwapface || len(j.Request.Inputs) != 2 {
		t.Fatalf("request %+v", j.Request)
	}

	// Vary on that result: the components as Discord sends them back.
	var vary string
	for _, id := range m.CustomIDs() {
		if strings.HasPrefix(id, "vary:") {
			vary = id
		}
	}
	comps := fmt.Sprintf(`[{"type": 1, "components": [{"type": 2, "style": 2, "label": "vary", "custom_id": %q}]}]`, vary)
	mv := menuVars("Vary", "[]")
	mv["Components"] = comps
	body, v = fixture(t, "menu.json", mv)
	h.post(body)
	final = h.api.Wait(t, 15*time.Second, "the variation", finalEditOf(v["Token"].(string)))
	if k := h.job(jobOf(t, final.Message(t))); k.Request.Kind != engine.KindDraw || len(k.Request.Inputs) != 1 || k.ID == j.ID {
		t.Errorf("variation %+v of %s", k.Request, j.ID)
	}
}

// TestRegisterInstalls: every command is registered for guild and user
// installs, in guilds, DMs and private channels; /admin for guild installs
// in guilds only; the five message commands have no description.
func TestRegisterInstalls(t *testing.T) {
	h := startHarness(t, setup{})
	c := h.api.Wait(t, 5*time.Second, "registration", func(c discordtest.Call) bool {
		return c.Is("PUT", "/applications/"+testApp+"/guilds/111/commands")
	})
	var cmds []discordgo.ApplicationCommand
	if err := c.Decode(&cmds); err != nil {
		t.Fatal(err)
	}
	var menus []string
	for _, cmd := range cmds {
		it, ctx := fmt.Sprint(deref(cmd.IntegrationTypes)), fmt.Sprint(deref(cmd.Contexts))
		switch {
		case cmd.Name == "admin":
			if it != "[0]" || ctx != "[0]" {
				t.Errorf("/admin: integration types %s, contexts %s", it, ctx)
			}
		case it != "[0 1]" || ctx != "[0 1 2]":
			t.Errorf("%s: integration types %s, contexts %s", cmd.Name, it, ctx)
		}
		if cmd.Type == discordgo.MessageApplicationCommand {
			menus = append(menus, cmd.Name)
		}
	}
	if want := []string{"Upscale", "Make anime", "Vary", "Use as face", "Swap onto this"}; !slices.Equal(menus, want) {
		t.Errorf("message commands %v, want %v", menus, want)
	}
	if !slices.ContainsFunc(cmds, func(c discordgo.ApplicationCommand) bool { return c.Name == "show" }) {
		t.Error("no /show")
	}
}

func deref[T any](p *[]T) []T {
	if p == nil {
		return nil
	}
	return *p
}

// TestUserInstall: where only the user installed the app, the answer says
// the bot can reply only in this response and names /show; a result past
// the token is not posted to the channel (the bot is not there), and /show
// brings it.
func TestUserInstall(t *testing.T) {
	h := startHarness(t, setup{render: 1500 * time.Millisecond, cfg: func(c *Config) { c.TokenLifetime = time.Second }})
	mv := menuVars("Make anime", pngAttachment(t, h, "me.png", color.RGBA{10, 200, 10, 255}))
	mv["Owners"] = `{"1": "501"}`
	body, v := fixture(t, "menu.json", mv)
	h.post(body)
	first := h.api.Wait(t, 5*time.Second, "the accepted edit", editOf(v["Token"].(string)))
	text := first.Message(t).Content
	if !strings.Contains(text, "not a member") || !strings.Contains(text, "/show ") {
		t.Fatalf("first answer %q", text)
	}
	id := text[strings.LastIndex(text, "/show ")+len("/show "):]
	id = strings.TrimRight(strings.Fields(id)[0], ".")
	waitState(t, h, id, engine.StateDelivered)
	for _, c := range h.api.Calls() {
		if strings.HasPrefix(c.Path, "/channels/") || c.Is("POST", "/users/@me/channels") {
			t.Errorf("posted where the bot is not a member: %s", c)
		}
	}
	show := fmt.Sprintf(`{"id": "1399", "application_id": %q, "type": 2, "token": "tok_show", "version": 1,
		"guild_id": "111", "channel_id": "222", "locale": "en-US", "context": 0, "authorizing_integration_owners": {"1": "501"},
		"member": {"user": {"id": "501", "username": "ada", "discriminator": "0"}, "roles": [], "permissions": "0", "joined_at": "2024-01-01T00:00:00.000000+00:00"},
		"data": {"id": "9200", "name": "show", "type": 1, "options": [{"name": "job", "type": 3, "value": %q}]}}`, testApp, id)
	_, r, _ := h.post([]byte(show))
	if r.Data != nil && r.Data.Flags&discordgo.MessageFlagsEphemeral != 0 {
		t.Error("/show's answer is private")
	}
	if c := h.api.Wait(t, 10*time.Second, "the shown result", finalEditOf("tok_show")); len(c.Files) != 1 {
		t.Errorf("%d files", len(c.Files))
	}
	// Someone else's job is not shown.
	other := strings.ReplaceAll(strings.ReplaceAll(show, `"id": "501"`, `"id": "502"`), "tok_show", "tok_other")
	other = strings.Replace(other, `"id": "1399"`, `"id": "1398"`, 1)
	h.post([]byte(other))
	refusal := func(c discordtest.Call) bool { return c.Is("POST", "/webhooks/"+testApp+"/tok_other") }
	if c := h.api.Wait(t, 10*time.Second, "the refusal", refusal); !strings.Contains(c.Message(t).Content, "No job") || len(c.Files) != 0 {
		t.Errorf("stranger's /show: %q, %d files", c.Message(t).Content, len(c.Files))
	}
}

// TestThread: a command in a thread is answered there: the interaction's
// channel is the thread, and a result past the token goes to the thread.
func TestThread(t *testing.T) {
	h := startHarness(t, setup{render: 1500 * time.Millisecond, cfg: func(c *Config) { c.TokenLifetime = time.Second }})
	mv := menuVars("Upscale", pngAttachment(t, h, "fox.png", color.RGBA{1, 2, 3, 255}))
	mv["Channel"] = "444" // a thread under 222
	body, _ := fixture(t, "menu.json", mv)
	h.post(body)
	post := h.api.Wait(t, 15*time.Second, "the result in the thread", channelPost("444"))
	if len(post.Files) != 1 {
		t.Errorf("%d files", len(post.Files))
	}
}

// TestThreadPerJob: /draw thread:true opens a thread on its response and
// posts the result there; in a guild of thread_guilds a context-menu job
// does too; thread:false keeps it in place.
func TestThreadPerJob(t *testing.T) {
	h := startHarness(t, setup{cfg: func(c *Config) { c.ThreadGuilds = []string{"111"} }})
	body, v := fixture(t, "draw.json", nil)
	body = bytes.Replace(body, []byte(`"options": [`), []byte(`"options": [{"name": "thread", "type": 5, "value": true},`), 1)
	h.post(body)
	orig := discordtest.OriginalID(v["Token"].(string))
	start := h.api.Wait(t, 10*time.Second, "the thread", func(c discordtest.Call) bool {
		return c.Is("POST", "/channels/222/messages/"+orig+"/threads")
	})
	var th struct{ Name string }
	start.Decode(&th)
	if !strings.Contains(th.Name, "a red fox") {
		t.Errorf("thread name %q", th.Name)
	}
	post := h.api.Wait(t, 15*time.Second, "the result in the thread", channelPost(orig))
	if len(post.Files) != 1 || !strings.HasPrefix(post.Message(t).Content, "<@501>") {
		t.Errorf("thread post: %d files, %q", len(post.Files), post.Message(t).Content)
	}
	waitState(t, h, jobOf(t, post.Message(t)), engine.StateDelivered)

	// The guild's default, for a context-menu job.
	body, v = fixture(t, "menu.json", menuVars("Upscale", pngAttachment(t, h, "fox.png", color.RGBA{9, 9, 9, 255})))
	h.post(body)
	orig = discordtest.OriginalID(v["Token"].(string))
	h.api.Wait(t, 15*time.Second, "the menu job's result in its thread", channelPost(orig))

	// thread:false in that guild: answered in place.
	body, v = fixture(t, "draw.json", nil)
	body = bytes.Replace(body, []byte(`"options": [`), []byte(`"options": [{"name": "thread", "type": 5, "value": false},`), 1)
	h.post(body)
	h.api.Wait(t, 15*time.Second, "the result in place", finalEditOf(v["Token"].(string)))
	for _, c := range h.api.Calls() {
		if c.Is("POST", "/channels/222/messages/"+discordtest.OriginalID(v["Token"].(string))+"/threads") {
			t.Error("a thread for thread:false")
		}
	}
}
