package telegram

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"
	"github.com/picbot/picbot/bots/chat"
	"github.com/picbot/picbot/bots/command"
	"github.com/picbot/picbot/engine"
)

// FuzzUpdate feeds the adapter raw update JSON, as getUpdates or the
// webhook delivers it, and runs what the bot makes of it: a message (an
// album part too) or a button press, up to the command the chat service
// gets. It must never panic, and what reaches the service must be sound.
// Corpus: testdata/fuzz/FuzzUpdate; seeds: the fixtures in testdata.
func FuzzUpdate(f *testing.F) {
	names, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil || len(names) == 0 {
		f.Fatalf("fixtures: %v", err)
	}
	fill := strings.NewReplacer("$QUERY", "q1", "$MESSAGE", "5", "$CHAT", "-100601", "$TYPE", "supergroup", "$DATA", "again:abcdefgh:0")
	for _, name := range names {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add([]byte(fill.Replace(string(data))))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var u update
		if json.Unmarshal(raw, &u) != nil {
			return // the webhook answers 400; getUpdates fails the batch
		}
		svc := &fuzzService{t: t}
		api := &funcAPI{callFn: func(string, tgbotapi.Params) (json.RawMessage, error) { return json.RawMessage(`true`), nil }}
		b := newBot(Config{Token: "1:a"}, api, Deps{Service: svc, Jobs: &memJobs{jobs: map[string]*engine.Job{}}})
		b.username = testUsername
		ctx := context.Background()
		switch {
		case u.Message != nil && u.Message.SuccessfulPayment != nil:
			b.onPaid(ctx, u.Message, u.messageTopic())
		case u.Message != nil && u.Message.MediaGroupID != "":
			// What handleAlbum does once the album's parts are in.
			b.onMessage(ctx, u.UpdateID, u.Message, u.messageTopic(), []*tgbotapi.Message{u.Message})
		case u.Message != nil:
			b.onMessage(ctx, u.UpdateID, u.Message, u.messageTopic(), nil)
		case u.ChannelPost != nil:
			b.onMessage(ctx, u.UpdateID, u.ChannelPost, u.messageTopic(), nil)
		case u.CallbackQuery != nil:
			b.onCallback(ctx, u.UpdateID, u.CallbackQuery, u.messageTopic())
		case u.InlineQuery != nil:
			b.onInlineQuery(ctx, u.InlineQuery)
		case u.ChosenInlineResult != nil:
			b.onChosen(ctx, u.ChosenInlineResult)
		case u.PreCheckoutQuery != nil:
			b.onPreCheckout(ctx, u.PreCheckoutQuery)
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
	if m.User.Platform != Platform || m.User.ID == "" || m.Chat.Platform != Platform || m.Chat.ChatID == "" {
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
	if m.Command == nil && !command.IsCommand(m.Text) {
		s.t.Fatalf("not a command handed on: %q", m.Text)
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
