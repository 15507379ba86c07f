package discord

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"text/template"
	"time"

	"github.com/picbot/picbot/bots/chat"
	"github.com/picbot/picbot/bots/discord/discordtest"
	"github.com/picbot/picbot/engine"
	"github.com/picbot/picbot/engine/local"
	"github.com/picbot/picbot/quota"
	"github.com/picbot/picbot/store"
)

const testApp = "1200000000000000001"

// harness is a whole bot in HTTP mode — store, quota, engine with the local
// renderer, chat service and the Discord adapter — against a fake Discord.
type harness struct {
	t        *testing.T
	dir      string
	api      *discordtest.Server
	priv     ed25519.PrivateKey
	pub      string
	bot      *Bot
	eng      *engine.Engine
	db       *store.DB
	server   *httptest.Server
	endpoint string
	logs     *syncBuffer
	stopped  bool
	cancel   context.CancelFunc
	runErr   chan error
}

type setup struct {
	cfg    func(*Config)
	render time.Duration // local renderer's duration
	dir    string
	api    *discordtest.Server
	priv   ed25519.PrivateKey
	pub    string
	deps   func(*Deps)
	// publicURL serves originals from the harness's HTTP server.
	publicURL bool
	admins    []string // quota.admins
}

func startHarness(t *testing.T, o setup) *harness {
	t.Helper()
	if o.dir == "" {
		o.dir = t.TempDir()
	}
	if o.api == nil {
		o.api = discordtest.NewServer(t)
	}
	if o.priv == nil {
		o.priv, o.pub = discordtest.Keys(t)
	}
	if o.render == 0 {
		o.render = 300 * time.Millisecond
	}
	h := &harness{t: t, dir: o.dir, api: o.api, priv: o.priv, pub: o.pub, logs: &syncBuffer{}, runErr: make(chan error, 1)}
	log := slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var err error
	if h.db, err = store.Open(filepath.Join(o.dir, "picbot.db"), store.Options{}); err != nil {
		t.Fatal(err)
	}
	blobs, err := store.OpenBlobs(filepath.Join(o.dir, "blobs"), 0)
	if err != nil {
		t.Fatal(err)
	}
	qc := quota.DefaultConfig()
	qc.Default = quota.Tier{Daily: 1000, Concurrent: 20, Every: time.Millisecond, Burst: 100}
	qc.Admins = o.admins
	q, err := quota.New(qc, h.db, nil)
	if err != nil {
		t.Fatal(err)
	}
	routes := map[engine.Kind][]string{}
	for _, k := range engine.Kinds {
		routes[k] = []string{local.Name}
	}
	notifier := &lateNotifier{}
	h.eng = engine.New(engine.Config{Workers: 4, Routes: routes, Logger: log}, h.db, q, blobs, notifier, local.New(blobs, o.render, nil))
	svc := &chat.Service{Engine: h.eng, Quota: q, Blobs: blobs, Log: log}
	mux := http.NewServeMux()
	h.server = httptest.NewServer(mux)
	cfg := Config{
		Token: "bot-secret-token", ApplicationID: testApp, PublicKey: o.pub, Mode: ModeHTTP,
		APIBase: o.api.URL, GuildIDs: []string{"111"}, ProgressEvery: time.Hour,
	}
	if o.publicURL {
		cfg.PublicURL = h.server.URL
	}
	if o.cfg != nil {
		o.cfg(&cfg)
	}
	deps := Deps{Service: svc, Engine: h.eng, Blobs: blobs, Settings: h.db, Log: log}
	if o.deps != nil {
		o.deps(&deps)
	}
	if h.bot, err = New(cfg, deps); err != nil {
		t.Fatal(err)
	}
	h.bot.Routes(mux)
	h.endpoint = h.server.URL + h.bot.cfg.InteractionsPath
	notifier.set(h.bot)
	if err := h.eng.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { h.runErr <- h.bot.Run(ctx) }()
	t.Cleanup(h.stop)
	return h
}

// stop ends the bot, the engine and the store, as a shutdown does.
func (h *harness) stop() {
	if h.stopped {
		return
	}
	h.stopped = true
	h.cancel()
	select {
	case err := <-h.runErr:
		if err != nil {
			h.t.Errorf("Run: %v", err)
		}
	case <-time.After(20 * time.Second):
		h.t.Error("Run did not return")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	h.eng.Stop(ctx)
	h.server.Close()
	h.db.Close()
	if tok := "bot-secret-token"; strings.Contains(h.logs.String(), tok) {
		h.t.Errorf("the bot token was logged:\n%s", h.logs)
	}
}

// post signs and posts an interaction, and decodes the answer.
func (h *harness) post(body []byte) (int, response, time.Duration) {
	h.t.Helper()
	start := time.Now()
	status, out := discordtest.Post(h.t, h.endpoint, h.priv, body)
	took := time.Since(start)
	var r response
	if status == http.StatusOK {
		if err := json.Unmarshal(out, &r); err != nil {
			h.t.Fatalf("answer %s: %v", out, err)
		}
	}
	return status, r, took
}

func (h *harness) job(id string) *engine.Job {
	h.t.Helper()
	j, err := h.eng.Job(context.Background(), id)
	if err != nil {
		h.t.Fatal(err)
	}
	return j
}

// lateNotifier lets the engine be built before the bot it notifies.
type lateNotifier struct {
	mu sync.Mutex
	n  engine.Notifier
}

func (l *lateNotifier) set(n engine.Notifier) {
	l.mu.Lock()
	l.n = n
	l.mu.Unlock()
}

func (l *lateNotifier) get() engine.Notifier {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n
}

func (l *lateNotifier) Progress(ctx context.Context, j *engine.Job, p engine.Progress) {
	l.get().Progress(ctx, j, p)
}

func (l *lateNotifier) Deliver(ctx context.Context, j *engine.Job) error {
	return l.get().Deliver(ctx, j)
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// vars are a fixture's values; fixture fills in the unset ones.
type vars map[string]any

// fixture renders testdata/name with v over fresh defaults: a new
// interaction id and token each time.
func fixture(t *testing.T, name string, v vars) ([]byte, vars) {
	t.Helper()
	all := vars{
		"ID": randomDigits(), "App": testApp, "Token": "tok_" + randomHex(), "User": "501", "Locale": "en-US",
		"Prompt": "a red fox", "Size": "256x256", "Count": 1, "Channel": "333",
	}
	for k, val := range v {
		all[k] = val
	}
	tpl, err := template.ParseFiles(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := tpl.Execute(&b, all); err != nil {
		t.Fatal(err)
	}
	if !json.Valid(b.Bytes()) {
		t.Fatalf("%s is not JSON:\n%s", name, b.String())
	}
	return b.Bytes(), all
}

func randomHex() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func randomDigits() string {
	var b [8]byte
	rand.Read(b[:])
	s := "13"
	for _, c := range b {
		s += string(rune('0' + c%10))
	}
	return s
}

// Matchers for the fake's calls.

func callback(c discordtest.Call) bool { return c.Is("POST", `/interactions/.+/callback`) }

func editOf(token string) func(discordtest.Call) bool {
	return func(c discordtest.Call) bool {
		return c.Is("PATCH", "/webhooks/"+testApp+"/"+token+"/messages/@original")
	}
}

func finalEditOf(token string) func(discordtest.Call) bool {
	return func(c discordtest.Call) bool { return editOf(token)(c) && len(c.Files) > 0 }
}

func channelPost(channel string) func(discordtest.Call) bool {
	return func(c discordtest.Call) bool { return c.Is("POST", "/channels/"+channel+"/messages") }
}

// jobOf reads the job id from a result's buttons.
func jobOf(t *testing.T, m discordtest.Message) string {
	t.Helper()
	for _, id := range m.CustomIDs() {
		if k, ok := parseButton(id); ok {
			return k.job
		}
	}
	t.Fatalf("no job button in %+v", m.Components)
	return ""
}
