package discord

import (
	"strings"
	"testing"

	"github.com/bwmarrin/discordgo"
	"github.com/picbot/picbot/engine"
)

// /draw's control attachment is its own option, apart from image; the chat
// service takes it first (Command.ControlAttached).
func TestParseControl(t *testing.T) {
	att := func(id string) *discordgo.MessageAttachment {
		return &discordgo.MessageAttachment{ID: id, Filename: id + ".png", URL: "https://cdn.example/" + id}
	}
	opt := func(name string, typ discordgo.ApplicationCommandOptionType, v any) *discordgo.ApplicationCommandInteractionDataOption {
		return &discordgo.ApplicationCommandInteractionDataOption{Name: name, Type: typ, Value: v}
	}
	file, str, num := discordgo.ApplicationCommandOptionAttachment, discordgo.ApplicationCommandOptionString, discordgo.ApplicationCommandOptionNumber
	data := discordgo.ApplicationCommandInteractionData{Name: "draw",
		Resolved: &discordgo.ApplicationCommandInteractionDataResolved{Attachments: map[string]*discordgo.MessageAttachment{"a1": att("a1"), "a2": att("a2")}},
		Options: []*discordgo.ApplicationCommandInteractionDataOption{
			opt("prompt", str, "a castle"), opt("image", file, "a1"), opt("control", file, "a2"), opt("control_type", str, "Depth"),
			opt("control_weight", num, 1.1), opt("hires", num, 1.5), opt("face_fix", discordgo.ApplicationCommandOptionBoolean, true),
		}}
	c, atts, err := parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if !c.ControlAttached || c.Request.Control == nil || c.Request.Control.Type != "depth" || c.Request.Control.Weight != 1.1 ||
		c.Request.Hires == nil || c.Request.Hires.Scale != 1.5 || !c.Request.FaceFix {
		t.Fatalf("%+v %+v", c, c.Request)
	}
	if len(atts) != 2 || atts[0].ID != "a2" || atts[1].ID != "a1" {
		t.Fatalf("attachments %v: want the control image first", atts)
	}
	up, _, err := parse(discordgo.ApplicationCommandInteractionData{Name: "upscale",
		Resolved: data.Resolved, Options: []*discordgo.ApplicationCommandInteractionDataOption{
			opt("image", file, "a1"), opt("size", str, "1024x768"), opt("face_restore", str, "codeformer"), opt("face_strength", num, 0.6),
		}})
	if err != nil || up.Request.TargetWidth != 1024 || up.Request.FaceRestore != "codeformer" || up.Request.FaceRestoreStrength != 0.6 {
		t.Fatalf("%+v %v", up.Request, err)
	}
	for _, cmd := range Commands(engine.DefaultLimits()) {
		if cmd.Name != "draw" {
			continue
		}
		if len(cmd.Options) > 25 {
			t.Fatalf("%d options: Discord allows 25", len(cmd.Options))
		}
		for _, o := range cmd.Options {
			if o.Name == "image" && strings.Contains(strings.ToLower(o.Description), "control") {
				t.Errorf("image's description %q speaks of a control image", o.Description)
			}
		}
	}
}

// Discord's sampler and style choices are what the vendors on the route accept.
func TestCommandsForRoute(t *testing.T) {
	choices := func(k engine.Kind) []engine.VendorChoices {
		switch k {
		case engine.KindDraw:
			return []engine.VendorChoices{{Vendor: "a", Choices: engine.Choices{Samplers: []string{"Euler a", "DPM++ 2M Karras"}}},
				{Vendor: "b", Choices: engine.Choices{Samplers: []string{"K_EULER", "Euler a"}}}}
		case engine.KindAnime:
			return []engine.VendorChoices{{Vendor: "b", Choices: engine.Choices{Styles: []string{"anime", "jojo"}}}}
		}
		return nil
	}
	got := map[string][]string{}
	for _, cmd := range CommandsFor(engine.DefaultLimits(), choices) {
		for _, o := range cmd.Options {
			if o.Name == "sampler" || o.Name == "style" {
				for _, c := range o.Choices {
					got[o.Name] = append(got[o.Name], c.Value.(string))
				}
			}
		}
	}
	if strings.Join(got["sampler"], ",") != "Euler a,DPM++ 2M Karras,K_EULER" || strings.Join(got["style"], ",") != "anime,jojo" {
		t.Fatalf("choices %v", got)
	}
}
