package telegram

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"
	"github.com/picbot/picbot/engine"
)

// funcAPI is a botAPI whose behaviour tests set with function fields.
type funcAPI struct {
	mu      sync.Mutex
	methods []string
	doFn    func(c tgbotapi.Chattable) (json.RawMessage, error)
	callFn  func(method string, p tgbotapi.Params) (json.RawMessage, error)
	downFn  func(path string) (io.ReadCloser, error)
}

func (f *funcAPI) do(ctx context.Context, c tgbotapi.Chattable) (json.RawMessage, error) {
	f.mu.Lock()
	f.methods = append(f.methods, method(c))
	f.mu.Unlock()
	if f.doFn == nil {
		return json.RawMessage(`{"message_id": 1}`), nil
	}
	return f.doFn(c)
}

func (f *funcAPI) call(ctx context.Context, m string, p tgbotapi.Params) (json.RawMessage, error) {
	f.mu.Lock()
	f.methods = append(f.methods, m)
	f.mu.Unlock()
	return f.callFn(m, p)
}

func (f *funcAPI) download(ctx context.Context, path string) (io.ReadCloser, error) {
	return f.downFn(path)
}

// method names a request by its config type, as the tests need.
func method(c tgbotapi.Chattable) string {
	switch c.(type) {
	case tgbotapi.MessageConfig:
		return "sendMessage"
	case tgbotapi.PhotoConfig:
		return "sendPhoto"
	case tgbotapi.DocumentConfig:
		return "sendDocument"
	case tgbotapi.MediaGroupConfig:
		return "sendMediaGroup"
	case tgbotapi.EditMessageTextConfig:
		return "editMessageText"
	case tgbotapi.DeleteMessageConfig:
		return "deleteMessage"
	}
	return "other"
}

// memJobs keeps jobs in memory for the seam tests.
type memJobs struct {
	mu   sync.Mutex
	jobs map[string]*engine.Job
}

func (m *memJobs) Job(ctx context.Context, id string) (*engine.Job, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	j, ok := m.jobs[id]
	if !ok {
		return nil, engine.Errorf(engine.ENOTFOUND, "There is no job %s.", "没有任务 %s。", id)
	}
	return j.Clone(), nil
}

func (m *memJobs) Jobs(ctx context.Context, owner engine.UserRef, limit int) ([]*engine.Job, error) {
	return nil, nil
}

func (m *memJobs) Annotate(ctx context.Context, id, key, value string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	j := m.jobs[id]
	if j.Meta == nil {
		j.Meta = map[string]string{}
	}
	j.Meta[key] = value
	return nil
}

// TestDeliveryErrors: what Deliver tells the engine when Telegram refuses.
func TestDeliveryErrors(t *testing.T) {
	failed := &engine.Job{ID: "abcdefgh", State: engine.StateFailed, Err: &engine.ErrorInfo{Code: engine.EVENDOR, EN: "No."},
		Owner: engine.UserRef{Platform: Platform, ID: "1"}, Chat: engine.ChatRef{Platform: Platform, ChatID: "42", MessageID: "5:9", Private: true}}
	for name, tc := range map[string]struct {
		err      error
		code     string // "" for a plain error: try again later
		attempts int
	}{
		"Blocked":      {&tgbotapi.Error{Code: 403, Message: "Forbidden: bot was blocked by the user"}, engine.EUNDELIVERED, 1},
		"ChatNotFound": {&tgbotapi.Error{Code: 400, Message: "Bad Request: chat not found"}, engine.EUNDELIVERED, 1},
		"Network":      {errors.New("connection reset"), engine.EINTERNAL, 1},
		"FloodThenOK":  {&tgbotapi.Error{Message: "Too Many Requests: retry after 1", ResponseParameters: tgbotapi.ResponseParameters{RetryAfter: 1}}, "", 2},
	} {
		t.Run(name, func(t *testing.T) {
			jobs := &memJobs{jobs: map[string]*engine.Job{failed.ID: failed.Clone()}}
			n := 0
			api := &funcAPI{doFn: func(c tgbotapi.Chattable) (json.RawMessage, error) {
				n++
				if n == 1 {
					return nil, tc.err
				}
				return json.RawMessage(`{"message_id": 2}`), nil
			}}
			b := newBot(Config{Token: "1:a"}, api, Deps{Jobs: jobs})
			start := time.Now()
			err := b.Deliver(context.Background(), failed.Clone())
			if tc.code == "" {
				// The 429 is not slept on: the engine is told to come back after retry_after.
				if d, later := engine.AsLater(err); !later || d != time.Second {
					t.Fatalf("Deliver: %v, want Later 1s", err)
				}
				if took := time.Since(start); took > 500*time.Millisecond {
					t.Errorf("Deliver took %s: it waited", took)
				}
				if d, later := engine.AsLater(b.Deliver(context.Background(), failed.Clone())); !later || d <= 0 || d > time.Second {
					t.Fatalf("inside retry_after: %v %v, want Later", d, later)
				}
				if err := deliver(b, context.Background(), failed.Clone()); err != nil {
					t.Fatal(err)
				}
				if got := jobs.jobs[failed.ID].Meta[metaSent]; got != "1" {
					t.Errorf("not noted: %q", got)
				}
			} else if got := engine.ErrorCode(err); got != tc.code {
				t.Fatalf("Deliver: %v (code %s), want %s", err, got, tc.code)
			}
			if n != tc.attempts {
				t.Errorf("%d requests, want %d", n, tc.attempts)
			}
			if strings.Join(api.methods, " ") != strings.TrimSpace(strings.Repeat("sendMessage ", tc.attempts)) {
				t.Errorf("methods %v", api.methods)
			}
		})
	}
}

// TestAllowedChats: with allowed_chats set, other chats get nothing, and
// their button presses are answered with a refusal.
func TestAllowedChats(t *testing.T) {
	h := newHarness(t, "", nil, withConfig(func(c *Config) { c.AllowedChats = []int64{601} }))
	h.fake.AddUpdate(fixture(t, "group_help.json"))
	h.fake.AddUpdate(fixture(t, "callback.json", "$QUERY", "q1", "$MESSAGE", "5", "$CHAT", groupChat, "$TYPE", "supergroup", "$DATA", "again:abcdefgh:0"))
	h.fake.AddUpdate(fixture(t, "private_text.json"))
	h.wait(10*time.Second, "hint", is("sendMessage", "chat_id", "601"))
	ans := h.wait(10*time.Second, "answer", is("answerCallbackQuery", "callback_query_id", "q1"))
	if ans.Params["show_alert"] != "true" {
		t.Errorf("answer %v", ans.Params)
	}
	if n := len(h.fake.Calls("sendMessage")); n != 1 {
		t.Errorf("%d messages", n)
	}
}
