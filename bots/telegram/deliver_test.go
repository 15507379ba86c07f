package telegram

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"image/color"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"
	"github.com/picbot/picbot/bots/telegram/telegramtest"
	"github.com/picbot/picbot/engine"
	"github.com/picbot/picbot/engine/local"
)

// storedJob puts a succeeded job with the given pictures in the store, as
// the engine leaves it for delivery.
func (h *harness) storedJob(chat string, private bool, lang engine.Lang, pictures ...[]byte) *engine.Job {
	h.t.Helper()
	return h.storedJobIn(engine.ChatRef{Platform: Platform, ChatID: chat, MessageID: "77:1", Private: private}, lang, pictures...)
}

// storedJobIn is storedJob for any chat reference (an inline message's).
func (h *harness) storedJobIn(cref engine.ChatRef, lang engine.Lang, pictures ...[]byte) *engine.Job {
	h.t.Helper()
	ctx := context.Background()
	j := &engine.Job{
		ID:        engine.NewID(),
		Owner:     engine.UserRef{Platform: Platform, ID: "901", Lang: lang},
		Chat:      cref,
		Request:   engine.Request{Kind: engine.KindDraw, Prompt: "noise", Width: 512, Height: 512, Seed: 3, N: len(pictures)},
		State:     engine.StateSucceeded,
		Vendor:    local.Name,
		CreatedAt: time.Now(),
		UpdatedAt: time.Now(),
		Deadline:  time.Now().Add(time.Hour),
	}
	for _, p := range pictures {
		info, err := h.blobs.Put(ctx, bytes.NewReader(p), 64<<20)
		if err != nil {
			h.t.Fatal(err)
		}
		j.Results = append(j.Results, engine.Result{Blob: info.Key, Mime: info.Mime, Width: info.Width, Height: info.Height, Size: info.Size, Seed: 3})
	}
	if err := h.db.CreateJob(ctx, j, nil); err != nil {
		h.t.Fatal(err)
	}
	return j
}

// TestLargeResultAsDocument: a 30 MB picture is beyond a photo's limits: it
// goes as a document, whole, with the caption and the buttons (less "original file").
func TestLargeResultAsDocument(t *testing.T) {
	h := newHarness(t, "", nil)
	big := noisePNG(t, 3200, 3200) // 30 MB of noise (opaque: 3 bytes a pixel)
	if len(big) < 30_000_000 {
		t.Fatalf("test picture is only %d bytes", len(big))
	}
	j := h.storedJob("601", true, engine.EN, big)
	if err := deliver(h.bot, context.Background(), j); err != nil {
		t.Fatal(err)
	}
	docs := h.fake.Calls("sendDocument")
	if len(docs) != 1 || len(h.fake.Calls("sendPhoto")) != 0 {
		t.Fatalf("calls:\n%s", dump(h.fake.Calls()))
	}
	d := docs[0]
	if got := d.Files["document"].Data; shaBytes(got) != shaBytes(big) {
		t.Fatalf("document is %d bytes, not the picture", len(got))
	}
	if !strings.Contains(d.Params["caption"], "noise") || d.Params["reply_to_message_id"] != "77" {
		t.Errorf("params %v", d.Params)
	}
	want := []string{"again:" + j.ID + ":0", "vary:" + j.ID + ":0", "upscale:" + j.ID + ":0"}
	if got := d.Buttons(); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("buttons %v, want %v", got, want)
	}
}

// TestPhotoLimits: what fits a photo and what does not.
func TestPhotoLimits(t *testing.T) {
	for _, tc := range []struct {
		r    engine.Result
		want bool
	}{
		{engine.Result{Mime: "image/png", Width: 512, Height: 512, Size: 300_000}, true},
		{engine.Result{Mime: "image/jpeg", Width: 5000, Height: 5000, Size: 9_000_000}, true},
		{engine.Result{Mime: "image/png", Width: 5000, Height: 5001, Size: 9_000_000}, false},
		{engine.Result{Mime: "image/png", Width: 512, Height: 512, Size: 10_000_001}, false},
		{engine.Result{Mime: "image/png", Width: 2100, Height: 100, Size: 1000}, false},
		{engine.Result{Mime: "image/png", Width: 2000, Height: 100, Size: 1000}, true},
		{engine.Result{Mime: "image/gif", Width: 100, Height: 100, Size: 1000}, false},
	} {
		if got := fitsPhoto(tc.r); got != tc.want {
			t.Errorf("fitsPhoto(%+v) = %v, want %v", tc.r, got, tc.want)
		}
	}
}

func TestChunks(t *testing.T) {
	seq := func(n int) []int {
		out := make([]int, n)
		for i := range out {
			out[i] = i
		}
		return out
	}
	for n, want := range map[int]string{1: "[1]", 2: "[2]", 10: "[10]", 11: "[6 5]", 20: "[10 10]", 21: "[7 7 7]"} {
		var sizes []int
		for _, c := range chunks(seq(n), 10) {
			sizes = append(sizes, len(c))
		}
		if got := fmtInts(sizes); got != want {
			t.Errorf("chunks(%d) = %s, want %s", n, got, want)
		}
	}
}

func fmtInts(a []int) string {
	var b strings.Builder
	b.WriteString("[")
	for i, n := range a {
		if i > 0 {
			b.WriteString(" ")
		}
		b.WriteString(strconv.Itoa(n))
	}
	b.WriteString("]")
	return b.String()
}

// TestMixedAlbum: pictures beyond a photo's limits go in a document album
// of their own; a lone one goes alone.
func TestMixedAlbum(t *testing.T) {
	j := &engine.Job{ID: "abcdefgh", Results: []engine.Result{
		{Mime: "image/png", Width: 512, Height: 512, Size: 1000},
		{Mime: "image/png", Width: 9000, Height: 2000, Size: 1000},
		{Mime: "image/png", Width: 512, Height: 512, Size: 1000},
	}}
	steps := plan(j)
	if len(steps) != 3 || steps[0].kind != stepPhotoAlbum || len(steps[0].results) != 2 || !steps[0].caption ||
		steps[1].kind != stepDocument || steps[1].results[0] != 1 || steps[1].caption || steps[2].kind != stepButtons {
		t.Fatalf("plan %+v", steps)
	}
}

// TestDeliverResumes: a Deliver repeated after a crash sends only the steps
// not yet noted as done, and one repeated after success sends nothing.
func TestDeliverResumes(t *testing.T) {
	h := newHarness(t, "", nil)
	var pics [][]byte
	for i := range 11 {
		pics = append(pics, testPNG(t, 64+i, 64, color.RGBA{uint8(20 * i), 0, 0, 255}))
	}
	j := h.storedJob("601", true, engine.EN, pics...)
	ctx := context.Background()
	// The first album went out before the crash.
	if err := h.engine.Annotate(ctx, j.ID, metaSent, "1"); err != nil {
		t.Fatal(err)
	}
	if err := deliver(h.bot, ctx, h.job(j.ID)); err != nil {
		t.Fatal(err)
	}
	albums := ok(h.fake.Calls("sendMediaGroup"))
	if len(albums) != 1 || len(albums[0].Media()) != 5 || albums[0].Media()[0].Caption != "" {
		t.Fatalf("calls:\n%s", dump(h.fake.Calls()))
	}
	// The command message (77) is unknown to the fake: albums, which cannot
	// say allow_sending_without_reply, are sent again without the reply.
	if albums[0].Params["reply_to_message_id"] != "" {
		t.Errorf("album still replies to a missing message")
	}
	if n := len(h.fake.Calls("sendMessage")); n != 1 {
		t.Fatalf("%d button messages", n)
	}
	if got := h.job(j.ID).Meta[metaSent]; got != "3" {
		t.Fatalf("noted %q steps", got)
	}
	before := len(h.fake.Calls())
	if err := deliver(h.bot, ctx, h.job(j.ID)); err != nil {
		t.Fatal(err)
	}
	if calls := h.fake.Calls(); len(calls) != before {
		t.Fatalf("a second Deliver sent more:\n%s", dump(calls[before:]))
	}
}

// ok keeps the calls that succeeded.
func ok(calls []telegramtest.Call) []telegramtest.Call {
	var out []telegramtest.Call
	for _, c := range calls {
		if c.Status == http.StatusOK {
			out = append(out, c)
		}
	}
	return out
}

// TestFloodControl: a 429 with retry_after is waited out and the request
// repeated; nothing is lost. On uploads the SDK reports it without a status code.
func TestFloodControl(t *testing.T) {
	h := newHarness(t, "", nil)
	h.fake.Fail("sendPhoto", telegramtest.Failure{Code: 429, RetryAfter: 1})
	h.fake.Fail("sendMessage", telegramtest.Failure{Code: 429, RetryAfter: 1})
	j := h.storedJob("601", true, engine.EN, testPNG(t, 64, 64, color.White))
	start := time.Now()
	// Deliver does not sleep on the 429: it tells the engine to come back.
	if d, later := engine.AsLater(h.bot.Deliver(context.Background(), j)); !later || d != time.Second {
		t.Fatalf("Deliver after a 429: %v %v, want Later 1s", d, later)
	}
	if took := time.Since(start); took > 500*time.Millisecond {
		t.Errorf("Deliver took %s: it waited", took)
	}
	if err := deliver(h.bot, context.Background(), j); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < time.Second {
		t.Errorf("delivered after %s, before retry_after", d)
	}
	photos := h.fake.Calls("sendPhoto")
	if len(photos) != 2 || photos[0].Status != 429 || photos[1].Status != 200 {
		t.Fatalf("calls:\n%s", dump(h.fake.Calls()))
	}
	if photos[1].At.Sub(photos[0].At) < time.Second {
		t.Errorf("repeated %s after the 429", photos[1].At.Sub(photos[0].At))
	}
	// A reply waits as well.
	h.fake.AddUpdate(fixture(t, "private_text.json"))
	h.wait(10*time.Second, "hint", is("sendMessage", "chat_id", "601"))
	if n := len(h.fake.Calls("sendMessage")); n != 2 {
		t.Errorf("%d sendMessage calls, want the 429 and the repeat", n)
	}
	if !strings.Contains(h.logs.String(), "retry_after=1s") {
		t.Error("the wait is not logged")
	}
}

// TestProgressPreview: a vendor's preview replaces the text status with a
// photo, later previews edit it, bars edit its caption, and Deliver removes it.
// A 429 on an edit skips edits until retry_after has passed.
func TestProgressPreview(t *testing.T) {
	h := newHarness(t, "", nil)
	ctx := context.Background()
	j := h.storedJob(groupChat, false, engine.EN, testPNG(t, 64, 64, color.White))
	j.State = engine.StateRunning
	status, err := h.bot.sendText(ctx, h.bot.post, -1001200, false, 0, "Job queued", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.engine.Annotate(ctx, j.ID, metaStatus, strconv.Itoa(status)); err != nil {
		t.Fatal(err)
	}
	j.Meta = map[string]string{metaStatus: strconv.Itoa(status)}
	preview := testPNG(t, 32, 32, color.Black)

	h.bot.Progress(ctx, j, engine.Progress{Fraction: 0.3, Preview: preview})
	photo := h.wait(5*time.Second, "preview", is("sendPhoto", "chat_id", groupChat))
	h.wait(5*time.Second, "old status deleted", is("deleteMessage", "message_id", strconv.Itoa(status)))
	if !strings.Contains(photo.Params["caption"], "30%") {
		t.Errorf("caption %q", photo.Params["caption"])
	}
	if got := h.job(j.ID).Meta; got[metaStatus] != strconv.Itoa(photo.MessageID()) || got[metaStatusPhoto] != "1" {
		t.Errorf("notes %v", got)
	}
	// Too soon for another edit in a group: skipped.
	h.bot.Progress(ctx, j, engine.Progress{Fraction: 0.4})
	time.Sleep(h.cfg.GroupEvery + 50*time.Millisecond)
	h.bot.Progress(ctx, j, engine.Progress{Fraction: 0.5, Preview: testPNG(t, 32, 32, color.Gray{Y: 128})})
	h.wait(5*time.Second, "media edit", is("editMessageMedia", "message_id", strconv.Itoa(photo.MessageID())))
	time.Sleep(h.cfg.GroupEvery + 50*time.Millisecond)
	// The vendor repeats its latest preview at each poll: shown already, so
	// only the caption changes, and the picture is not uploaded again.
	h.bot.Progress(ctx, j, engine.Progress{Fraction: 0.55, Preview: testPNG(t, 32, 32, color.Gray{Y: 128})})
	h.wait(5*time.Second, "caption edit", is("editMessageCaption", "message_id", strconv.Itoa(photo.MessageID())))
	if n := len(h.fake.Calls("editMessageMedia")); n != 1 {
		t.Errorf("%d media edits, want 1: the same preview was uploaded again", n)
	}
	time.Sleep(h.cfg.GroupEvery + 50*time.Millisecond)
	h.fake.Fail("editMessageCaption", telegramtest.Failure{Code: 429, RetryAfter: 2})
	h.bot.Progress(ctx, j, engine.Progress{Fraction: 0.6})
	time.Sleep(h.cfg.GroupEvery + 50*time.Millisecond)
	h.bot.Progress(ctx, j, engine.Progress{Fraction: 0.7}) // still inside retry_after: skipped
	if n := len(h.fake.Calls("editMessageCaption")); n != 2 {
		t.Errorf("%d caption edits, want the repeated preview's and the one that got the 429", n)
	}
	if n := len(h.fake.Calls("editMessageText")); n != 0 {
		t.Errorf("%d text edits of a photo status", n)
	}

	j = h.job(j.ID)
	j.State = engine.StateSucceeded
	if err := deliver(h.bot, ctx, j); err != nil {
		t.Fatal(err)
	}
	h.wait(5*time.Second, "photo status deleted", is("deleteMessage", "message_id", strconv.Itoa(photo.MessageID())))
}

// TestEnded: a cancelled job's status message becomes the news, in the user's language.
func TestEnded(t *testing.T) {
	h := newHarness(t, "", nil, withRender(20*time.Second))
	h.fake.AddUpdate(fixture(t, "private_draw_zh.json"))
	status := h.wait(10*time.Second, "status", is("sendMessage", "chat_id", "601", "text", "已排队"))
	id := h.jobsOf("601")[0].ID
	h.fake.AddUpdate(strings.Replace(strings.Replace(string(fixture(t, "private_draw_zh.json")), "/draw 一只红狐狸 --seed 7", "/cancel "+id, 1), `"message_id": 22`, `"message_id": 23`, 1))
	h.wait(10*time.Second, "cancel reply", is("sendMessage", "reply_to_message_id", "23", "text", "已取消。额度已退还"))
	h.wait(10*time.Second, "ended", is("editMessageText", "message_id", strconv.Itoa(status.MessageID()), "text", "任务 "+id+" 已取消"))
	waitState(t, h, id, engine.StateCancelled)
	deadline := time.Now().Add(5 * time.Second)
	for !h.job(id).Notified && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if !h.job(id).Notified {
		t.Error("the engine did not record the notice")
	}
}

// TestWebhook: the webhook is registered with its secret, every request must
// carry it, and an update sent twice makes one job.
func TestWebhook(t *testing.T) {
	const secret = "s3cret_Token-1"
	h := newHarness(t, "", nil, withConfig(func(c *Config) {
		c.Mode, c.WebhookURL, c.WebhookSecret = ModeWebhook, "https://bot.example.com/tg/hook", secret
	}))
	mux := http.NewServeMux()
	h.bot.Routes(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	set := h.wait(10*time.Second, "setWebhook", is("setWebhook"))
	if set.Params["url"] != "https://bot.example.com/tg/hook" || set.Params["secret_token"] != secret || !strings.Contains(set.Params["allowed_updates"], "callback_query") {
		t.Errorf("setWebhook %v", set.Params)
	}
	var update map[string]any
	json.Unmarshal(fixture(t, "group_draw_mention.json"), &update)
	update["update_id"] = 900
	ctx := context.Background()
	for _, bad := range []string{"", "wrong", secret + "x"} {
		if code, err := h.fake.PostWebhook(ctx, srv.URL+"/tg/hook", bad, update); err != nil || code != http.StatusForbidden {
			t.Errorf("secret %q: status %d, %v", bad, code, err)
		}
	}
	if len(h.fake.Calls("sendMessage")) != 0 {
		t.Fatal("an update without the secret was handled")
	}
	for range 2 {
		if code, err := h.fake.PostWebhook(ctx, srv.URL+"/tg/hook", secret, update); err != nil || code != http.StatusOK {
			t.Fatalf("status %d, %v", code, err)
		}
	}
	h.wait(15*time.Second, "photo", is("sendPhoto", "chat_id", groupChat))
	if jobs := h.jobsOf("501"); len(jobs) != 1 {
		t.Errorf("%d jobs", len(jobs))
	}
	if n := len(h.fake.Calls("getUpdates")); n != 0 {
		t.Errorf("%d getUpdates in webhook mode", n)
	}
}

// TestTokenKeptSecret: errors from the SDK name URLs with the token in them;
// none of that reaches an error or a log line.
func TestTokenKeptSecret(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close() // connection refused
	api := newSDK(testToken, dead.URL, &http.Client{})
	_, err := api.call(context.Background(), "getMe", nil)
	if err == nil || strings.Contains(err.Error(), testToken) || strings.Contains(err.Error(), "TEST-token") {
		t.Fatalf("err %v", err)
	}
	for e := err; e != nil; e = errors.Unwrap(e) {
		if strings.Contains(e.Error(), "TEST-token") {
			t.Fatalf("unwrapped error %q holds the token", e)
		}
	}
	_, err = api.download(context.Background(), "photos/x.jpg")
	if err == nil || strings.Contains(err.Error(), "TEST-token") {
		t.Fatalf("download err %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	live := telegramtest.New(testToken, testUsername)
	defer live.Close()
	_, err = newSDK(testToken, live.URL, &http.Client{}).call(ctx, "getMe", nil)
	if !errors.Is(err, context.Canceled) || strings.Contains(err.Error(), "TEST-token") {
		t.Fatalf("cancelled call: %v", err)
	}
	te := redact(&tgbotapi.Error{Code: 429, Message: "bad " + testToken, ResponseParameters: tgbotapi.ResponseParameters{RetryAfter: 5}}, testToken)
	if strings.Contains(te.Error(), "TEST-token") || retryAfter(te) != 5*time.Second {
		t.Fatalf("redacted API error %v", te)
	}

	// The whole bot against a server that is not there: it logs and retries, never the token.
	h := newHarness(t, "", nil, withConfig(func(c *Config) { c.APIEndpoint = dead.URL }))
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(h.logs.String(), "getMe failed") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	h.stop()
	if logs := h.logs.String(); !strings.Contains(logs, "getMe failed") || strings.Contains(logs, "TEST-token") {
		t.Fatalf("logs:\n%s", logs)
	}
}

// TestBadToken: a token the server refuses stops Run with an error naming the setting.
func TestBadToken(t *testing.T) {
	fake := telegramtest.New("999:other", testUsername)
	defer fake.Close()
	b, err := New(Config{Token: testToken, APIEndpoint: fake.URL}, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = b.Run(ctx)
	if err == nil || !strings.Contains(err.Error(), "telegram.token") || strings.Contains(err.Error(), "TEST-token") {
		t.Fatalf("Run: %v", err)
	}
}

func TestConfigCheck(t *testing.T) {
	for name, tc := range map[string]struct {
		cfg  Config
		want string
	}{
		"NoToken":       {Config{}, "token"},
		"BadMode":       {Config{Token: "1:a", Mode: "push"}, "mode"},
		"NoWebhookURL":  {Config{Token: "1:a", Mode: ModeWebhook, WebhookSecret: "x"}, "webhook_url"},
		"NoPath":        {Config{Token: "1:a", Mode: ModeWebhook, WebhookURL: "https://x.example", WebhookSecret: "x"}, "webhook_url"},
		"NoSecret":      {Config{Token: "1:a", Mode: ModeWebhook, WebhookURL: "https://x.example/hook"}, "webhook_secret"},
		"BadSecret":     {Config{Token: "1:a", Mode: ModeWebhook, WebhookURL: "https://x.example/hook", WebhookSecret: "a b"}, "webhook_secret"},
		"BadEndpoint":   {Config{Token: "1:a", APIEndpoint: "api.telegram.org"}, "api_endpoint"},
		"BadProxy":      {Config{Token: "1:a", Proxy: "ftp://p:1"}, "proxy"},
		"NegativePhoto": {Config{Token: "1:a", MaxPhotoBytes: -1}, "max_photo_bytes"},
		"ShortPoll":     {Config{Token: "1:a", PollTimeout: time.Millisecond}, "poll_timeout"},
	} {
		t.Run(name, func(t *testing.T) {
			err := tc.cfg.Check()
			if err == nil || !strings.HasPrefix(err.Error(), "telegram."+tc.want+":") {
				t.Fatalf("Check: %v, want it to name %s", err, tc.want)
			}
		})
	}
	ok := Config{Token: "1:a", Mode: ModeWebhook, WebhookURL: "https://x.example/hook", WebhookSecret: "abc_DEF-1", Proxy: "socks5://127.0.0.1:1080"}
	if err := ok.Check(); err != nil {
		t.Fatal(err)
	}
	if d := DefaultConfig(); d.PrivateEvery < time.Second || d.GroupEvery < 3*time.Second || d.GlobalRate > 30 {
		t.Errorf("defaults exceed Telegram's limits: %+v", d)
	}
}

func TestButtons(t *testing.T) {
	for data, want := range map[string]bool{
		"again:abcdefgh:0": true, "orig:abcdefgh:-1": true, "upscale:ABCDEFGH:3": true,
		"again:abcdefgh": false, "again::0": false, "steal:abcdefgh:0": false, "vary:abcdefgh:x": false,
	} {
		if _, _, _, ok := parseButton(data); ok != want {
			t.Errorf("parseButton(%q) ok = %v", data, ok)
		}
	}
	j := &engine.Job{ID: "abcdefgh", Results: make([]engine.Result, 20)}
	for _, kb := range []*tgbotapi.InlineKeyboardMarkup{albumKeyboard(j, engine.ZH), resultKeyboard(j, engine.EN, 19, true)} {
		n := 0
		for _, row := range kb.InlineKeyboard {
			if len(row) > 5 {
				t.Errorf("row of %d buttons", len(row))
			}
			for _, b := range row {
				n++
				if len(*b.CallbackData) > maxCallback {
					t.Errorf("callback_data %q is too long", *b.CallbackData)
				}
			}
		}
		if n == 0 {
			t.Error("no buttons")
		}
	}
}

func TestCut(t *testing.T) {
	for _, tc := range []struct {
		s    string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"abcdefghij", 10, "abcdefghij"},
		{"abcdefghijk", 10, "abcdefghi…"},
		{"😀😀😀", 6, "😀😀😀"},
		{"😀😀😀😀", 6, "😀😀…"},
		{"一二三四五六", 4, "一二三…"},
	} {
		if got := cut(tc.s, tc.n); got != tc.want {
			t.Errorf("cut(%q, %d) = %q, want %q", tc.s, tc.n, got, tc.want)
		}
	}
}
