package discord

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/bwmarrin/discordgo"
	"github.com/picbot/picbot/bots/discord/discordtest"
)

// /admin is registered for members who may manage the server, and not in
// DMs, so others do not see it; the other commands are for everyone.
func TestAdminRegisteredForManagers(t *testing.T) {
	h := startHarness(t, setup{})
	c := h.api.Wait(t, 5*time.Second, "the registration", func(c discordtest.Call) bool {
		return c.Is("PUT", "/applications/"+testApp+"/guilds/111/commands")
	})
	var cmds []discordgo.ApplicationCommand
	if err := c.Decode(&cmds); err != nil {
		t.Fatal(err)
	}
	var admin *discordgo.ApplicationCommand
	for i, cmd := range cmds {
		if cmd.Name == "admin" {
			admin = &cmds[i]
		} else if cmd.DefaultMemberPermissions != nil || cmd.DMPermission != nil && !*cmd.DMPermission {
			t.Errorf("/%s is not for everyone: permissions %v, dm %v", cmd.Name, *cmd.DefaultMemberPermissions, cmd.DMPermission)
		}
	}
	if admin == nil {
		t.Fatal("no /admin registered")
	}
	if p := admin.DefaultMemberPermissions; p == nil || *p != discordgo.PermissionManageGuild {
		t.Errorf("/admin default member permissions %v, want Manage Server (%d)", p, discordgo.PermissionManageGuild)
	}
	if admin.DMPermission == nil || *admin.DMPermission {
		t.Errorf("/admin dm_permission %v, want false", admin.DMPermission)
	}
	if admin.Contexts == nil || len(*admin.Contexts) != 1 || (*admin.Contexts)[0] != discordgo.InteractionContextGuild {
		t.Errorf("/admin contexts %v, want the guild only", admin.Contexts)
	}
	subs := map[string]*discordgo.ApplicationCommandOption{}
	for _, o := range admin.Options {
		if o.Type != discordgo.ApplicationCommandOptionSubCommand {
			t.Errorf("/admin %s is not a subcommand", o.Name)
		}
		if o.NameLocalizations[discordgo.ChineseCN] == "" || o.DescriptionLocalizations[discordgo.ChineseTW] == "" {
			t.Errorf("/admin %s lacks Chinese localizations", o.Name)
		}
		subs[o.Name] = o
	}
	for sub, args := range map[string]int{"stats": 0, "tier": 2, "quota": 2, "ban": 1, "unban": 1} {
		o := subs[sub]
		if o == nil {
			t.Errorf("no /admin %s", sub)
			continue
		}
		if len(o.Options) != args {
			t.Errorf("/admin %s has %d options, want %d", sub, len(o.Options), args)
		}
		for _, a := range o.Options {
			if !a.Required || a.Type != discordgo.ApplicationCommandOptionString {
				t.Errorf("/admin %s %s: %+v", sub, a.Name, a)
			}
		}
	}
}

// adminBody is a /admin interaction from user with one subcommand.
func adminBody(t *testing.T, user, sub string, args ...string) ([]byte, string) {
	t.Helper()
	body, v := fixture(t, "quota.json", vars{"User": user})
	var in map[string]any
	if err := json.Unmarshal(body, &in); err != nil {
		t.Fatal(err)
	}
	var opts []any
	for i := 0; i+1 < len(args); i += 2 {
		opts = append(opts, map[string]any{"name": args[i], "type": 3, "value": args[i+1]})
	}
	in["data"] = map[string]any{"id": "9009", "name": "admin", "type": 1,
		"options": []any{map[string]any{"name": sub, "type": 1, "options": opts}}}
	body, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	return body, v["Token"].(string)
}

// The bot's own admin list stays the gate: a member Discord shows /admin
// to is still refused unless the bot knows them as an admin.
func TestAdminCommand(t *testing.T) {
	h := startHarness(t, setup{admins: []string{"discord:501"}})
	reply := func(t *testing.T, body []byte, tok string) string {
		t.Helper()
		_, r, _ := h.post(body)
		if r.Type != discordgo.InteractionResponseDeferredChannelMessageWithSource || r.Data == nil || r.Data.Flags != discordgo.MessageFlagsEphemeral {
			t.Fatalf("want an ephemeral deferral: %+v", r)
		}
		return h.api.Wait(t, 5*time.Second, "the reply", editOf(tok)).Message(t).Content
	}
	t.Run("NotAnAdmin", func(t *testing.T) {
		body, tok := adminBody(t, "502", "stats")
		if got := reply(t, body, tok); !strings.Contains(got, "for the bot's admins") {
			t.Errorf("reply %q, want a refusal", got)
		}
	})
	t.Run("Quota", func(t *testing.T) {
		body, tok := adminBody(t, "501", "quota", "user", "777\u202e", "limit", "5")
		if got := reply(t, body, tok); got != "Done: quota 777 5." {
			t.Errorf("reply %q", got)
		}
		body, v := fixture(t, "quota.json", vars{"User": "777"})
		if got := reply(t, body, v["Token"].(string)); !strings.Contains(got, "0 of 5") {
			t.Errorf("777's quota %q, want a limit of 5", got)
		}
	})
	t.Run("Stats", func(t *testing.T) {
		body, tok := adminBody(t, "501", "stats")
		if got := reply(t, body, tok); got == "" || strings.Contains(got, "admin") {
			t.Errorf("stats %q", got)
		}
	})
	t.Run("MissingOption", func(t *testing.T) {
		body, _ := adminBody(t, "501", "tier", "user", "777")
		_, r, _ := h.post(body)
		if r.Type != discordgo.InteractionResponseChannelMessageWithSource || r.Data == nil || r.Data.Flags != discordgo.MessageFlagsEphemeral {
			t.Fatalf("want an immediate ephemeral answer: %+v", r)
		}
	})
}
