package telegram

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"image"
	"image/color"
	"image/png"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/picbot/picbot/bots/chat"
	"github.com/picbot/picbot/bots/telegram/telegramtest"
	"github.com/picbot/picbot/engine"
	"github.com/picbot/picbot/engine/local"
	"github.com/picbot/picbot/quota"
	"github.com/picbot/picbot/store"
)

const (
	testToken    = "123456:TEST-token_abcdefghijklmnopqrstuv"
	testUsername = "PicbotTestBot"
)

// harness is the bot wired as cmd/bot wires it (store, quota, engine with
// the local renderer, chat service) against a fake Bot API server.
type harness struct {
	t      testing.TB
	dir    string
	fake   *telegramtest.Server
	cfg    Config
	db     *store.DB
	blobs  *store.Blobs
	engine *engine.Engine
	bot    *Bot
	logs   *syncBuffer
	render time.Duration // the local renderer's time per job
	// jobStore, if set, is the store the engine is given in place of db.
	jobStore func(*store.DB) engine.Store

	cancel context.CancelFunc
	done   chan error
}

type harnessOption func(*harness, *engine.Config)

// withRender sets the local renderer's time per job.
func withRender(d time.Duration) harnessOption {
	return func(h *harness, _ *engine.Config) { h.render = d }
}

func withMaxImages(n int) harnessOption {
	return func(_ *harness, ec *engine.Config) { ec.Limits.MaxImages = n }
}

func withConfig(f func(*Config)) harnessOption {
	return func(h *harness, _ *engine.Config) { f(&h.cfg) }
}

// newHarness starts the bot on dir (a new one if empty) against fake (a new one if nil).
func newHarness(t testing.TB, dir string, fake *telegramtest.Server, opts ...harnessOption) *harness {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	if fake == nil {
		fake = telegramtest.New(testToken, testUsername)
		t.Cleanup(fake.Close)
	}
	h := &harness{t: t, dir: dir, fake: fake, logs: &syncBuffer{}}
	h.cfg = Config{
		Token:        testToken,
		APIEndpoint:  fake.URL,
		PollTimeout:  time.Second,
		AlbumWait:    300 * time.Millisecond,
		PrivateEvery: 200 * time.Millisecond,
		GroupEvery:   400 * time.Millisecond,
	}
	ec := engine.Config{
		Workers:          4,
		Limits:           engine.DefaultLimits(),
		JobTimeout:       time.Minute,
		DeliveryAttempts: 5,
	}
	h.render = 600 * time.Millisecond
	for _, o := range opts {
		o(h, &ec)
	}
	log := slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h.cfg.Logger = log
	ec.Logger = log
	var err error
	if h.db, err = store.Open(filepath.Join(dir, "picbot.db"), store.Options{NoSync: true}); err != nil {
		t.Fatal(err)
	}
	if h.blobs, err = store.OpenBlobs(filepath.Join(dir, "blobs"), 0); err != nil {
		t.Fatal(err)
	}
	q, err := quota.New(quota.Config{Default: quota.Tier{Every: time.Millisecond, Burst: 100}}, h.db, nil)
	if err != nil {
		t.Fatal(err)
	}
	ec.Routes = map[engine.Kind][]string{}
	for _, k := range engine.Kinds {
		ec.Routes[k] = []string{local.Name}
	}
	notifier := &lateNotifier{}
	var js engine.Store = h.db
	if h.jobStore != nil {
		js = h.jobStore(h.db)
	}
	h.engine = engine.New(ec, js, q, h.blobs, notifier, local.New(h.blobs, h.render, nil))
	svc := &chat.Service{Engine: h.engine, Quota: q, Blobs: h.blobs, Log: log, MaxInput: 40 << 20}
	h.bot, err = New(h.cfg, Deps{Service: svc, Jobs: h.engine, Blobs: h.blobs, Settings: h.db})
	if err != nil {
		t.Fatal(err)
	}
	notifier.set(h.bot)
	if err := h.engine.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.done = cancel, make(chan error, 1)
	go func() { h.done <- h.bot.Run(ctx) }()
	t.Cleanup(h.stop)
	return h
}

// stop ends the bot, the engine and the store, as a graceful shutdown does.
func (h *harness) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	h.cancel = nil
	select {
	case err := <-h.done:
		if err != nil {
			h.t.Errorf("Run: %v", err)
		}
	case <-time.After(20 * time.Second):
		h.t.Error("Run did not return")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	h.engine.Stop(ctx)
	h.db.Close()
	if h.t.Failed() {
		h.t.Logf("logs:\n%s", h.logs.String())
	}
}

type lateNotifier struct {
	mu   sync.Mutex
	n    engine.Notifier
	wake engine.WakeHook // the engine's, for a notifier that calls deliveries back
}

func (l *lateNotifier) set(n engine.Notifier) {
	l.mu.Lock()
	l.n = n
	l.mu.Unlock()
	if w, ok := n.(engine.Waker); ok {
		w.SetWake(l.wake.Wake)
	}
}

// SetWake implements engine.Waker for the notifier set later.
func (l *lateNotifier) SetWake(wake func(jobID string)) { l.wake.SetWake(wake) }

func (l *lateNotifier) get() engine.Notifier { l.mu.Lock(); defer l.mu.Unlock(); return l.n }
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

// fixture reads testdata/name, with $KEY replaced by values from kv pairs.
func fixture(t *testing.T, name string, kv ...string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return []byte(strings.NewReplacer(kv...).Replace(string(data)))
}

// wait waits for a call satisfying ok, failing the test after timeout.
func (h *harness) wait(timeout time.Duration, what string, ok func(telegramtest.Call) bool) telegramtest.Call {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c, err := h.fake.Wait(ctx, ok)
	if err != nil {
		h.t.Fatalf("no %s within %s; calls:\n%s\nlogs:\n%s", what, timeout, dump(h.fake.Calls()), h.logs.String())
	}
	return c
}

func (h *harness) waitN(timeout time.Duration, n int, what string, ok func(telegramtest.Call) bool) []telegramtest.Call {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cs, err := h.fake.WaitN(ctx, n, ok)
	if err != nil {
		h.t.Fatalf("%d of %d %s within %s; calls:\n%s\nlogs:\n%s", len(cs), n, what, timeout, dump(h.fake.Calls()), h.logs.String())
	}
	return cs
}

func dump(calls []telegramtest.Call) string {
	var b strings.Builder
	for _, c := range calls {
		b.WriteString(c.At.Format("15:04:05.000") + " " + c.Method)
		for _, k := range []string{"chat_id", "message_id", "reply_to_message_id", "text", "caption", "data", "callback_query_id", "offset"} {
			if v, ok := c.Params[k]; ok {
				b.WriteString(" " + k + "=" + strings.ReplaceAll(v, "\n", `\n`))
			}
		}
		for k, f := range c.Files {
			b.WriteString(" file:" + k + "=" + f.Name)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// testPNG is a small picture a user might send.
func testPNG(t testing.TB, w, h int, c color.Color) []byte {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			r, g, b, _ := c.RGBA()
			img.Set(x, y, color.NRGBA{uint8(r>>8) ^ uint8(x), uint8(g >> 8), uint8(b>>8) ^ uint8(y), 255})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// is matches calls of method whose params contain every key=value pair given.
func is(method string, kv ...string) func(telegramtest.Call) bool {
	return func(c telegramtest.Call) bool {
		if c.Method != method || c.Status != 200 {
			return false
		}
		for i := 0; i+1 < len(kv); i += 2 {
			if !strings.Contains(c.Params[kv[i]], kv[i+1]) {
				return false
			}
		}
		return true
	}
}

func sha(t *testing.T, r io.Reader) string {
	t.Helper()
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func shaBytes(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// reopen opens the store of a stopped harness.
func reopen(t *testing.T, dir string) (*store.DB, *store.Blobs) {
	t.Helper()
	db, err := store.Open(filepath.Join(dir, "picbot.db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	blobs, err := store.OpenBlobs(filepath.Join(dir, "blobs"), 0)
	if err != nil {
		t.Fatal(err)
	}
	return db, blobs
}

// noisePNG is a picture that does not compress: w×h×4 bytes and a little more.
func noisePNG(t *testing.T, w, h int) []byte {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	r := rand.New(rand.NewPCG(uint64(w), uint64(h)))
	for i := 0; i+8 <= len(img.Pix); i += 8 {
		binary.LittleEndian.PutUint64(img.Pix[i:], r.Uint64()|0xff000000ff000000)
	}
	var buf bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.NoCompression}
	if err := enc.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// deliver calls Deliver as the engine does: after a Later, again, with the
// job as stored then, once its wait has passed, with no attempt counted.
func deliver(b *Bot, ctx context.Context, j *engine.Job) error {
	for {
		err := b.Deliver(ctx, j)
		if _, later := engine.AsLater(err); later {
			stored, lerr := b.jobs.Job(ctx, j.ID)
			if lerr != nil {
				return lerr
			}
			stored.State = j.State // tests deliver jobs as states they set
			j = stored
		}
		d, later := engine.AsLater(err)
		if !later {
			return err
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}
