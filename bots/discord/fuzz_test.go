package discord

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"text/template"
	"time"

	"github.com/bwmarrin/discordgo"
	"github.com/picbot/picbot/bots/chat"
	"github.com/picbot/picbot/bots/command"
	"github.com/picbot/picbot/engine"
)

// FuzzInteraction feeds the adapter raw interaction JSON, as the gateway
// or the interactions endpoint delivers it (after the signature check),
// and runs what the bot makes of it: the first answer (plan), then the
// work after it, up to the command the chat service gets. It must never
// panic, its first answer must be one Discord takes, and what reaches the
// service must be sound. Corpus: testdata/fuzz/FuzzInteraction; seeds: the
// fixtures in testdata.
func FuzzInteraction(f *testing.F) {
	names, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil || len(names) == 0 {
		f.Fatalf("fixtures: %v", err)
	}
	values := vars{"ID": "1300000000000000001", "App": testApp, "Token": "tok_fuzz", "User": "501", "Locale": "zh-CN",
		"Prompt": "a red fox", "Size": "256x256", "Count": 2, "Channel": "333", "CustomID": "again:abcdefgh:0:501",
		"Context": 0, "Owners": `{"1": "501"}`, "Menu": "Upscale", "Target": "1400000000000000001", "Components": "[]",
		"Attachments": `[{"id": "1300000000000000002", "filename": "fox.png", "size": 100, "url": "http://127.0.0.1:1/fox.png", "content_type": "image/png"}]`}
	for _, name := range names {
		tpl, err := template.ParseFiles(name)
		if err != nil {
			f.Fatal(err)
		}
		var b bytes.Buffer
		if err := tpl.Execute(&b, values); err != nil {
			f.Fatal(err)
		}
		f.Add(b.Bytes())
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var in discordgo.Interaction
		if json.Unmarshal(raw, &in) != nil {
			return // the endpoint answers 400; the gateway drops it
		}
		svc := &fuzzService{t: t}
		b, err := newBot(Config{ApplicationID: testApp, Mode: ModeGateway}, Deps{Service: svc, Engine: &fakeEngine{jobs: map[string]*engine.Job{}}}, &fakeREST{})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		resp, work := b.plan(ctx, &in, time.Now(), false)
		if resp == nil {
			t.Fatal("no first answer")
		}
		if _, err := json.Marshal(resp); err != nil {
			t.Fatalf("first answer not encodable: %v", err)
		}
		if d := resp.Data; d != nil && len([]rune(d.Content)) > 2000 {
			t.Fatalf("first answer of %d characters", len([]rune(d.Content)))
		}
		if work != nil {
			work(ctx)
		}
	})
}

// fuzzService checks each message the adapter hands the chat service.
type fuzzService struct {
	t  *testing.T
	mu sync.Mutex
}

func (s *fuzzService) check(m chat.Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.t
	t.Helper()
	if m.User.Platform != Platform || m.User.ID == "" || m.Chat.Platform != Platform {
		t.Fatalf("message without its user or chat: %+v %+v", m.User, m.Chat)
	}
	if c := m.Command; c != nil && !slices.Contains(command.Names, c.Name) {
		t.Fatalf("unknown command %q handed on", c.Name)
	}
	for _, img := range m.Images {
		if img.Open == nil {
			t.Fatal("an image without an opener")
		}
	}
}

func (s *fuzzService) Handle(ctx context.Context, m chat.Message) chat.Reply {
	s.check(m)
	if m.Command == nil {
		s.t.Fatal("a slash command without its parsed command")
	}
	return chat.Reply{Text: "ok"}
}

func (s *fuzzService) Follow(ctx context.Context, m chat.Message, parentID, action string, index int) chat.Reply {
	s.check(m)
	if parentID == "" || action == "" || index < 0 {
		s.t.Fatalf("button %q %q %d", action, parentID, index)
	}
	return chat.Reply{Text: "ok"}
}
