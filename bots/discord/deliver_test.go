package discord

import (
	"bytes"
	"context"
	"encoding/json"
	"image"
	"image/png"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bwmarrin/discordgo"
	"github.com/picbot/picbot/engine"
	"github.com/picbot/picbot/internal/testclock"
)

// fakeREST is the REST seam with function fields: nil fields succeed.
type fakeREST struct {
	mu    sync.Mutex
	calls []fakeCall

	onEdit func(token string, m *message) (*discordgo.Message, error)
	onSend func(channel string, m *message) (*discordgo.Message, error)
	onGet  func(token string) (*discordgo.Message, error)
	// onChannelGet answers a read of a channel message by the bot token.
	onChannelGet func(channel, id string) (*discordgo.Message, error)
}

type fakeCall struct {
	op, target string
	m          *message
}

func (f *fakeREST) record(op, target string, m *message) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fakeCall{op, target, m})
}

func (f *fakeREST) ops() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, c := range f.calls {
		out = append(out, c.op+" "+c.target)
	}
	return out
}

func (f *fakeREST) last() fakeCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[len(f.calls)-1]
}

func (f *fakeREST) respond(ctx context.Context, id, token string, r *response) error {
	f.record("respond", token, nil)
	return nil
}

func (f *fakeREST) editOriginal(ctx context.Context, app, token string, m *message) (*discordgo.Message, error) {
	f.record("edit", token, m)
	if f.onEdit != nil {
		return f.onEdit(token, m)
	}
	return &discordgo.Message{ID: "m-" + token}, nil
}

func (f *fakeREST) getOriginal(ctx context.Context, app, token string) (*discordgo.Message, error) {
	f.record("get", token, nil)
	if f.onGet != nil {
		return f.onGet(token)
	}
	return &discordgo.Message{ID: "m-" + token}, nil
}

func (f *fakeREST) channelMessage(ctx context.Context, channel, id string) (*discordgo.Message, error) {
	f.record("read", channel+"/"+id, nil)
	if f.onChannelGet != nil {
		return f.onChannelGet(channel, id)
	}
	return nil, &apiError{Op: "read channel message", Status: http.StatusNotFound, Msg: "Unknown Message"}
}

func (f *fakeREST) deleteOriginal(ctx context.Context, app, token string) error {
	f.record("delete", token, nil)
	return nil
}

func (f *fakeREST) followup(ctx context.Context, app, token string, m *message) (*discordgo.Message, error) {
	f.record("followup", token, m)
	return &discordgo.Message{ID: "f-" + token}, nil
}

func (f *fakeREST) send(ctx context.Context, channel string, m *message) (*discordgo.Message, error) {
	f.record("send", channel, m)
	if f.onSend != nil {
		return f.onSend(channel, m)
	}
	return &discordgo.Message{ID: "c-" + channel}, nil
}

func (f *fakeREST) dmChannel(ctx context.Context, user string) (string, error) {
	f.record("dm", user, nil)
	return "dm" + user, nil
}

func (f *fakeREST) startThread(ctx context.Context, channel, message, name string) (string, error) {
	f.record("thread", channel, nil)
	return message, nil
}

func (f *fakeREST) overwriteCommands(ctx context.Context, app, guild string, cmds []*discordgo.ApplicationCommand) error {
	f.record("commands", guild, nil)
	return nil
}

// fakeEngine keeps jobs in memory.
type fakeEngine struct {
	mu   sync.Mutex
	jobs map[string]*engine.Job
}

func (e *fakeEngine) Job(ctx context.Context, id string) (*engine.Job, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if j, ok := e.jobs[id]; ok {
		return j.Clone(), nil
	}
	return nil, engine.Errorf(engine.ENOTFOUND, "No job %s.", "没有任务 %s。", id)
}

func (e *fakeEngine) Jobs(ctx context.Context, owner engine.UserRef, limit int) ([]*engine.Job, error) {
	return nil, nil
}

func (e *fakeEngine) Annotate(ctx context.Context, id, key, value string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	j, ok := e.jobs[id]
	if !ok {
		return engine.Errorf(engine.ENOTFOUND, "No job.", "没有任务。")
	}
	if j.Meta == nil {
		j.Meta = map[string]string{}
	}
	j.Meta[key] = value
	return nil
}

type memBlobs map[string][]byte

func (b memBlobs) Put(ctx context.Context, r io.Reader, limit int64) (engine.BlobInfo, error) {
	return engine.BlobInfo{}, nil
}

func (b memBlobs) Open(_ context.Context, key string) (io.ReadCloser, error) {
	data, ok := b[key]
	if !ok {
		return nil, engine.Errorf(engine.ENOTFOUND, "No image.", "没有图片。")
	}
	return io.NopCloser(bytes.NewReader(data)), nil
}

// unit is a bot on the fake seam, with one job whose ticket is on it.
type unit struct {
	bot  *Bot
	api  *fakeREST
	eng  *fakeEngine
	clk  *testclock.Clock
	job  *engine.Job
	logs *syncBuffer
}

func newUnit(t *testing.T, withTicket bool) *unit {
	t.Helper()
	img := image.NewGray(image.Rect(0, 0, 300, 200))
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range img.Pix {
		img.Pix[i] = byte(rng.IntN(256))
	}
	var buf bytes.Buffer
	png.Encode(&buf, img)
	u := &unit{api: &fakeREST{}, eng: &fakeEngine{jobs: map[string]*engine.Job{}}, clk: testclock.New(time.Unix(1_800_000_000, 0)), logs: &syncBuffer{}}
	b, err := newBot(Config{ApplicationID: "app", Mode: ModeGateway, ProgressEvery: 2 * time.Second},
		Deps{Engine: u.eng, Blobs: memBlobs{"img": buf.Bytes()}, Now: u.clk.Now}, u.api)
	if err != nil {
		t.Fatal(err)
	}
	u.bot = b
	j := &engine.Job{ID: "abcd1234", State: engine.StateSucceeded, Vendor: "v",
		Owner:   engine.UserRef{Platform: Platform, ID: "501", Lang: engine.EN},
		Chat:    engine.ChatRef{Platform: Platform, ChatID: "222", GuildID: "111", MessageID: "1301"},
		Request: engine.Request{Kind: engine.KindDraw, Prompt: "a fox", Width: 300, Height: 200, N: 1},
		Results: []engine.Result{{Blob: "img", Mime: "image/png", Width: 300, Height: 200, Size: int64(buf.Len())}},
	}
	if withTicket {
		data, _ := json.Marshal(ticket{App: "app", Token: "tok", Expires: u.clk.Now().Add(15 * time.Minute), Channel: "222", Guild: "111", User: "501", Locale: "zh-CN"})
		j.Meta = map[string]string{metaTicket: string(data), metaMessage: "orig-msg"}
	}
	u.eng.jobs[j.ID] = j
	u.job = j
	return u
}

func TestProgressThrottledAndOnlyWhileTokenLives(t *testing.T) {
	u := newUnit(t, true)
	ctx := context.Background()
	u.bot.Progress(ctx, u.job, engine.Progress{Fraction: 0.1})
	u.bot.Progress(ctx, u.job, engine.Progress{Fraction: 0.5}) // too soon
	if got := u.api.ops(); len(got) != 1 {
		t.Fatalf("calls %v, want one edit", got)
	}
	if c := u.api.last(); !strings.Contains(c.m.Content, "任务 abcd1234") || !strings.Contains(c.m.Content, "10%") {
		t.Errorf("progress %q: want Chinese with a bar", c.m.Content)
	}
	u.clk.Add(3 * time.Second)
	u.bot.Progress(ctx, u.job, engine.Progress{Fraction: 0.1}) // same text: nothing new to show
	if got := u.api.ops(); len(got) != 1 {
		t.Fatalf("calls %v: an unchanged text was edited", got)
	}
	var preview bytes.Buffer
	png.Encode(&preview, image.NewGray(image.Rect(0, 0, 8, 8)))
	u.bot.Progress(ctx, u.job, engine.Progress{Fraction: 0.6, Preview: preview.Bytes()})
	c := u.api.last()
	if len(c.m.files) != 1 || c.m.files[0].Name != "preview.png" || len(c.m.Embeds) != 1 || c.m.Embeds[0].Image.URL != "attachment://preview.png" {
		t.Fatalf("preview edit: %+v", c.m)
	}
	u.clk.Add(14*time.Minute + 30*time.Second) // within the margin before expiry
	u.bot.Progress(ctx, u.job, engine.Progress{Fraction: 0.9})
	if got := u.api.ops(); len(got) != 2 {
		t.Fatalf("calls %v: edited near the token's expiry", got)
	}
}

func TestDeliverFallbacks(t *testing.T) {
	ctx := context.Background()
	t.Run("TransientErrorIsRetriedLater", func(t *testing.T) {
		u := newUnit(t, true)
		u.api.onEdit = func(string, *message) (*discordgo.Message, error) {
			return nil, &apiError{Op: "edit", Status: http.StatusBadGateway}
		}
		if err := u.bot.Deliver(ctx, u.job); err == nil || engine.ErrorCode(err) == engine.EUNDELIVERED {
			t.Fatalf("err %v: want a retryable error", err)
		}
		if got := strings.Join(u.api.ops(), ","); got != "edit tok" {
			t.Errorf("calls %s: want one edit and no channel message", got)
		}
	})
	t.Run("DeadTokenGoesToChannel", func(t *testing.T) {
		u := newUnit(t, true)
		u.api.onEdit = func(string, *message) (*discordgo.Message, error) {
			return nil, &apiError{Op: "edit", Status: http.StatusNotFound, Code: codeUnknownWebhook}
		}
		if err := u.bot.Deliver(ctx, u.job); err != nil {
			t.Fatal(err)
		}
		c := u.api.last()
		if c.op != "send" || c.target != "222" || c.m.Reference == nil || c.m.Reference.MessageID != "orig-msg" || len(c.m.files) != 1 {
			t.Fatalf("calls %v, last %+v", u.api.ops(), c.m)
		}
		if err := u.bot.Deliver(ctx, u.job); err != nil || len(u.api.ops()) != 2 {
			t.Errorf("a second Deliver posted again: %v %v", err, u.api.ops())
		}
	})
	t.Run("ForbiddenChannelIsUndeliverable", func(t *testing.T) {
		u := newUnit(t, true)
		u.clk.Add(20 * time.Minute)
		u.api.onSend = func(string, *message) (*discordgo.Message, error) {
			return nil, &apiError{Op: "send", Status: http.StatusForbidden, Code: codeMissingAccess}
		}
		if err := u.bot.Deliver(ctx, u.job); engine.ErrorCode(err) != engine.EUNDELIVERED {
			t.Fatalf("err %v: want EUNDELIVERED", err)
		}
		if got := strings.Join(u.api.ops(), ","); got != "send 222" {
			t.Errorf("calls %s: an expired token was used", got)
		}
	})
	t.Run("NoTicket", func(t *testing.T) {
		u := newUnit(t, false) // the process died between Submit and Annotate
		if err := u.bot.Deliver(ctx, u.job); err != nil {
			t.Fatal(err)
		}
		if c := u.api.last(); c.op != "send" || c.target != "222" || !strings.HasPrefix(c.m.Content, "<@501>") {
			t.Fatalf("calls %v, content %q", u.api.ops(), c.m.Content)
		}
	})
	t.Run("TooLargeShrinks", func(t *testing.T) {
		u := newUnit(t, true)
		var sizes []int64
		u.api.onEdit = func(_ string, m *message) (*discordgo.Message, error) {
			sizes = append(sizes, m.size())
			if len(sizes) == 1 {
				return nil, &apiError{Op: "edit", Status: http.StatusRequestEntityTooLarge, Code: codeTooLarge}
			}
			return &discordgo.Message{ID: "x"}, nil
		}
		u.bot.cfg.MaxUpload = u.job.Results[0].Size // fits at first
		if err := u.bot.Deliver(ctx, u.job); err != nil {
			t.Fatal(err)
		}
		if len(sizes) != 2 || sizes[1] > u.bot.cfg.MaxUpload/2 {
			t.Fatalf("upload sizes %v: want a second, smaller try", sizes)
		}
	})
	t.Run("Cancelled", func(t *testing.T) {
		u := newUnit(t, true)
		u.job.State = engine.StateCancelled
		if err := u.bot.Deliver(ctx, u.job); err != nil {
			t.Fatal(err)
		}
		if c := u.api.last(); c.op != "edit" || !strings.Contains(c.m.Content, "已取消") || len(c.m.files) != 0 || len(c.m.Components) != 0 {
			t.Fatalf("cancelled: %+v", c.m)
		}
	})
}

func TestRewriteKeepsTokenOutOfErrors(t *testing.T) {
	s, err := newSession("x", "http://127.0.0.1:1", "") // nothing listens there
	if err != nil {
		t.Fatal(err)
	}
	r := &session{s: s}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = r.editOriginal(ctx, "app", "secret.token", &message{Content: "x"})
	if err == nil {
		t.Fatal("no error from a closed port")
	}
	if strings.Contains(err.Error(), "secret.token") {
		t.Errorf("the token is in the error: %v", err)
	}
	for _, base := range []struct{ base, want string }{
		{"http://h/api", "http://h/api/v9/webhooks/a/b"},
		{"http://h", "http://h/v9/webhooks/a/b"},
		{"http://h/api/v10", "http://h/api/v10/webhooks/a/b"},
	} {
		var got string
		s, _ := newSession("x", base.base, "")
		rw := s.Client.Transport.(*rewrite)
		rw.next = roundTripFunc(func(r *http.Request) (*http.Response, error) {
			got = r.URL.String()
			return &http.Response{StatusCode: 204, Body: io.NopCloser(strings.NewReader("")), Header: http.Header{}}, nil
		})
		req, _ := http.NewRequest("GET", discordgo.EndpointWebhookToken("a", "b"), nil)
		if _, err := s.Client.Do(req); err != nil {
			t.Fatal(err)
		}
		if got != base.want {
			t.Errorf("base %s: %s, want %s", base.base, got, base.want)
		}
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
