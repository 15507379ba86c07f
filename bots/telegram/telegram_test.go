package telegram

import (
	"context"
	"fmt"
	"image/color"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/picbot/picbot/bots/telegram/telegramtest"
	"github.com/picbot/picbot/engine"
)

const groupChat = "-1001200"

var jobIDRe = regexp.MustCompile(`again:(\w+):0`)

// TestGroupDraw: "/draw@bot a red fox" in a group makes a status message,
// edits it, posts the photo with the caption and the buttons, and removes
// the status message.
func TestGroupDraw(t *testing.T) {
	h := newHarness(t, "", nil, withRender(1500*time.Millisecond))
	h.fake.AddUpdate(fixture(t, "group_draw_mention.json"))

	status := h.wait(10*time.Second, "status message", is("sendMessage", "chat_id", groupChat, "reply_to_message_id", "11", "text", "queued"))
	if status.Params["allow_sending_without_reply"] != "true" {
		t.Error("status message does not allow sending without the reply")
	}
	statusID := strconv.Itoa(status.MessageID())
	h.wait(10*time.Second, "progress edit", is("editMessageText", "message_id", statusID))
	photo := h.wait(15*time.Second, "photo", is("sendPhoto", "chat_id", groupChat, "reply_to_message_id", "11"))
	capt := photo.Params["caption"]
	for _, want := range []string{"a red fox", "seed", "local", "not by an AI model"} {
		if !strings.Contains(capt, want) {
			t.Errorf("caption %q lacks %q", capt, want)
		}
	}
	if f, ok := photo.Files["photo"]; !ok || len(f.Data) == 0 {
		t.Fatalf("no photo upload: %v", photo.Files)
	}
	m := jobIDRe.FindStringSubmatch(strings.Join(photo.Buttons(), " "))
	if m == nil {
		t.Fatalf("buttons %v lack again:<job>:0", photo.Buttons())
	}
	id := m[1]
	want := []string{"again:" + id + ":0", "vary:" + id + ":0", "upscale:" + id + ":0", "orig:" + id + ":0"}
	if got := photo.Buttons(); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("buttons %v, want %v", got, want)
	}
	h.wait(10*time.Second, "status removed", is("deleteMessage", "message_id", statusID))
	if _, ok := h.fake.Text(-1001200, status.MessageID()); ok {
		t.Error("status message still there")
	}

	// Group edits keep their distance.
	var last time.Time
	for _, c := range h.fake.Calls("editMessageText") {
		if !last.IsZero() && c.At.Sub(last) < h.cfg.GroupEvery-50*time.Millisecond {
			t.Errorf("edits %s apart, want ≥ %s", c.At.Sub(last), h.cfg.GroupEvery)
		}
		last = c.At
	}
	// The status message id was noted on the job, and the delivery recorded.
	j := h.job(id)
	if j.Meta[metaStatus] != statusID || j.Meta[metaSent] != "1" {
		t.Errorf("job notes %v", j.Meta)
	}
	waitState(t, h, id, engine.StateDelivered)

	// Menus for both languages and both scopes.
	cmds := h.fake.Calls("setMyCommands")
	seen := map[string]bool{}
	for _, c := range cmds {
		seen[c.Params["scope"]+"|"+c.Params["language_code"]] = true
	}
	for _, want := range []string{`{"type":"all_private_chats"}|`, `{"type":"all_private_chats"}|zh`, `{"type":"all_group_chats"}|`, `{"type":"all_group_chats"}|zh`} {
		if !seen[want] {
			t.Errorf("no setMyCommands for %s; got %v", want, seen)
		}
	}
	// The update is confirmed: the next getUpdates asked past it.
	deadline := time.Now().Add(5 * time.Second)
	for h.fake.Pending() > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := h.fake.Pending(); n != 0 {
		t.Errorf("%d updates still unconfirmed", n)
	}
}

func (h *harness) job(id string) *engine.Job {
	h.t.Helper()
	j, err := h.engine.Job(context.Background(), id)
	if err != nil {
		h.t.Fatal(err)
	}
	return j
}

func waitState(t *testing.T, h *harness, id string, want engine.State) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		j := h.job(id)
		if j.State == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s is %s, want %s", id, j.State, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// jobsOf lists the jobs of a Telegram user.
func (h *harness) jobsOf(user string) []*engine.Job {
	h.t.Helper()
	jobs, err := h.engine.Jobs(context.Background(), engine.UserRef{Platform: Platform, ID: user}, 100)
	if err != nil {
		h.t.Fatal(err)
	}
	return jobs
}

// TestIgnored: another bot's command, an unknown command and plain talk in
// a group get no answer; the help that follows does.
func TestIgnored(t *testing.T) {
	h := newHarness(t, "", nil)
	h.fake.AddUpdate(fixture(t, "group_draw_other_bot.json"))
	h.fake.AddUpdate(fixture(t, "group_unknown_command.json"))
	h.fake.AddUpdate(fixture(t, "group_text.json"))
	h.fake.AddUpdate(fixture(t, "group_help.json"))
	help := h.wait(10*time.Second, "help", is("sendMessage", "reply_to_message_id", "15"))
	if !strings.Contains(help.Params["text"], "/draw") || !strings.Contains(help.Params["text"], "album") {
		t.Errorf("help text: %s", help.Params["text"])
	}
	if calls := h.fake.Calls("sendMessage", "sendPhoto"); len(calls) != 1 {
		t.Errorf("%d messages sent, want only the help:\n%s", len(calls), dump(calls))
	}
	if jobs := h.jobsOf("501"); len(jobs) != 0 {
		t.Errorf("%d jobs made", len(jobs))
	}
}

// TestPrivateHint: plain talk in a private chat gets a hint, in the user's language.
func TestPrivateHint(t *testing.T) {
	h := newHarness(t, "", nil)
	h.fake.AddUpdate(fixture(t, "private_text.json"))
	c := h.wait(10*time.Second, "hint", is("sendMessage", "chat_id", "601"))
	if !strings.Contains(c.Params["text"], "请发送命令") {
		t.Errorf("hint %q is not in Chinese", c.Params["text"])
	}
}

// TestPhotoCaption: a photo with /anime as its caption is fetched through
// getFile from the configured endpoint and becomes the job's input.
func TestPhotoCaption(t *testing.T) {
	h := newHarness(t, "", nil)
	face := testPNG(t, 64, 64, color.RGBA{200, 120, 90, 255})
	h.fake.AddFile("PHOTO-FACE", "", face)
	h.fake.AddUpdate(fixture(t, "private_photo_anime.json"))
	h.wait(10*time.Second, "getFile", is("getFile", "file_id", "PHOTO-FACE"))
	h.wait(10*time.Second, "download", is("download", "path", "photos/PHOTO-FACE.jpg"))
	photo := h.wait(15*time.Second, "result", is("sendPhoto", "chat_id", "701"))
	if !strings.Contains(photo.Params["caption"], "/anime") {
		t.Errorf("caption %q", photo.Params["caption"])
	}
	jobs := h.jobsOf("701")
	if len(jobs) != 1 || len(jobs[0].Request.Inputs) != 1 || jobs[0].Request.Style != "sketch" {
		t.Fatalf("jobs %+v", jobs)
	}
	if strings.Contains(h.logs.String(), testToken) {
		t.Error("the token is in the logs")
	}
}

// TestPhotoTooLarge: a photo beyond max_photo_bytes is refused with a
// message: without a download when Telegram gives its size, during the
// download when it does not.
func TestPhotoTooLarge(t *testing.T) {
	for name, tc := range map[string]struct {
		known     bool
		downloads int
	}{
		"SizeKnown":   {true, 0},
		"SizeUnknown": {false, 1},
	} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, "", nil, withConfig(func(c *Config) { c.MaxPhotoBytes = 500 }))
			h.fake.AddFile("PHOTO-FACE", "", noisePNG(t, 64, 64))
			h.fake.AddFile("PHOTO-FACE-S", "", noisePNG(t, 32, 32))
			update := fixture(t, "private_photo_anime.json")
			if !tc.known {
				h.fake.HideFileSizes()
				update = regexp.MustCompile(`"file_size": \d+`).ReplaceAll(update, []byte(`"file_size": 0`))
			}
			h.fake.AddUpdate(update)
			c := h.wait(10*time.Second, "refusal", is("sendMessage", "chat_id", "701"))
			if !strings.Contains(c.Params["text"], "too large") {
				t.Errorf("reply %q", c.Params["text"])
			}
			if n := len(h.fake.Calls("download")); n != tc.downloads {
				t.Errorf("%d downloads, want %d", n, tc.downloads)
			}
			if jobs := h.jobsOf("701"); len(jobs) != 0 {
				t.Errorf("%d jobs", len(jobs))
			}
		})
	}
}

// TestSwapfaceReply: the face photo, captioned /swapface, as a reply to the target photo.
func TestSwapfaceReply(t *testing.T) {
	h := newHarness(t, "", nil)
	h.fake.AddFile("PHOTO-FACE", "", testPNG(t, 64, 64, color.RGBA{255, 0, 0, 255}))
	h.fake.AddFile("PHOTO-TARGET", "", testPNG(t, 64, 64, color.RGBA{0, 0, 255, 255}))
	h.fake.AddUpdate(fixture(t, "group_swapface_reply.json"))
	h.wait(15*time.Second, "result", is("sendPhoto", "chat_id", groupChat, "reply_to_message_id", "41"))
	jobs := h.jobsOf("501")
	if len(jobs) != 1 {
		t.Fatalf("%d jobs", len(jobs))
	}
	in := jobs[0].Request.Inputs
	if len(in) != 2 || in[0].Blob == in[1].Blob {
		t.Fatalf("inputs %+v", in)
	}
	face, _ := h.blobs.Open(context.Background(), in[0].Blob)
	defer face.Close()
	if got := sha(t, face); got != shaBytes(testPNG(t, 64, 64, color.RGBA{255, 0, 0, 255})) {
		t.Error("first input is not the face photo")
	}
}

// TestSwapfaceAlbum: an album of two photos, the face first, /swapface as the caption.
func TestSwapfaceAlbum(t *testing.T) {
	h := newHarness(t, "", nil)
	h.fake.AddFile("PHOTO-FACE", "", testPNG(t, 64, 64, color.RGBA{255, 0, 0, 255}))
	h.fake.AddFile("PHOTO-TARGET", "", testPNG(t, 64, 64, color.RGBA{0, 0, 255, 255}))
	h.fake.AddUpdate(fixture(t, "album_swapface_2.json")) // out of order: the album is sorted
	h.fake.AddUpdate(fixture(t, "album_swapface_1.json"))
	h.wait(15*time.Second, "result", is("sendPhoto", "chat_id", "701", "reply_to_message_id", "51"))
	jobs := h.jobsOf("701")
	if len(jobs) != 1 || len(jobs[0].Request.Inputs) != 2 || jobs[0].Request.Kind != engine.KindSwapface {
		t.Fatalf("jobs %+v", jobs)
	}
	face, _ := h.blobs.Open(context.Background(), jobs[0].Request.Inputs[0].Blob)
	defer face.Close()
	if sha(t, face) != shaBytes(testPNG(t, 64, 64, color.RGBA{255, 0, 0, 255})) {
		t.Error("first input is not the face photo")
	}
	if n := len(h.fake.Calls("sendMessage", "sendPhoto")); n != 2 { // status and result
		t.Errorf("%d messages:\n%s", n, dump(h.fake.Calls()))
	}
}

// TestAlbumSurvivesRestart: an album received but not yet handled when the
// bot stops is handled by the next run.
func TestAlbumSurvivesRestart(t *testing.T) {
	fake := telegramtest.New(testToken, testUsername)
	defer fake.Close()
	fake.AddFile("PHOTO-FACE", "", testPNG(t, 64, 64, color.RGBA{255, 0, 0, 255}))
	fake.AddFile("PHOTO-TARGET", "", testPNG(t, 64, 64, color.RGBA{0, 0, 255, 255}))
	dir := t.TempDir()
	h := newHarness(t, dir, fake, withConfig(func(c *Config) { c.AlbumWait = time.Hour }))
	fake.AddUpdate(fixture(t, "album_swapface_1.json"))
	fake.AddUpdate(fixture(t, "album_swapface_2.json"))
	deadline := time.Now().Add(10 * time.Second)
	for fake.Pending() > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if fake.Pending() > 0 {
		t.Fatal("album updates not confirmed")
	}
	h.stop()
	if n := len(fake.Calls("sendMessage")); n != 0 {
		t.Fatalf("album handled before its wait: %d messages", n)
	}
	h2 := newHarness(t, dir, fake)
	h2.wait(15*time.Second, "result", is("sendPhoto", "chat_id", "701"))
	if jobs := h2.jobsOf("701"); len(jobs) != 1 {
		t.Fatalf("%d jobs", len(jobs))
	}
}

// TestNoDoubleJob: an update handled up to its job's creation, but not
// recorded as handled (a crash in between), is fetched again after the
// restart and makes no second job.
func TestNoDoubleJob(t *testing.T) {
	fake := telegramtest.New(testToken, testUsername)
	defer fake.Close()
	dir := t.TempDir()
	h := newHarness(t, dir, fake)
	update := fixture(t, "group_draw_mention.json")
	id := fake.AddUpdate(update)
	h.wait(15*time.Second, "photo", is("sendPhoto"))
	h.stop()

	// Forget that the update was handled, as a crash before the record would.
	db, blobs := reopen(t, dir)
	_ = blobs
	if err := db.Update(context.Background(), func(c engine.Counters) error {
		c.SetSetting(keySeen, "")
		c.SetSetting(keyOffset, "")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	fake.AddUpdate(strings.Replace(string(update), `"message"`, fmt.Sprintf(`"update_id": %d, "message"`, id), 1))
	h2 := newHarness(t, dir, fake)
	h2.fake.AddUpdate(fixture(t, "group_help.json"))
	h2.wait(10*time.Second, "help", is("sendMessage", "reply_to_message_id", "15"))
	if jobs := h2.jobsOf("501"); len(jobs) != 1 {
		t.Fatalf("%d jobs, want 1", len(jobs))
	}
	if n := len(fake.Calls("sendPhoto")); n != 1 {
		t.Fatalf("%d photos, want 1", n)
	}
}

// TestCallbacks: the buttons under a result work after a restart; every
// callback query is answered.
func TestCallbacks(t *testing.T) {
	fake := telegramtest.New(testToken, testUsername)
	defer fake.Close()
	dir := t.TempDir()
	h := newHarness(t, dir, fake)
	fake.AddUpdate(fixture(t, "group_draw_mention.json"))
	photo := h.wait(15*time.Second, "photo", is("sendPhoto"))
	id := jobIDRe.FindStringSubmatch(strings.Join(photo.Buttons(), " "))[1]
	waitState(t, h, id, engine.StateDelivered)
	h.stop()

	h2 := newHarness(t, dir, fake)
	press := func(query, data string) {
		fake.AddUpdate(fixture(t, "callback.json", "$QUERY", query, "$MESSAGE", strconv.Itoa(photo.MessageID()),
			"$CHAT", groupChat, "$TYPE", "supergroup", "$DATA", data))
	}
	press("q-again", "again:"+id+":0")
	ans := h2.wait(10*time.Second, "answer", is("answerCallbackQuery", "callback_query_id", "q-again"))
	if ans.Params["show_alert"] == "true" || !strings.Contains(ans.Params["text"], "queued") {
		t.Errorf("answer %v", ans.Params)
	}
	again := h2.wait(15*time.Second, "second photo", func(c telegramtest.Call) bool {
		return is("sendPhoto", "reply_to_message_id", strconv.Itoa(photo.MessageID()))(c) && !strings.Contains(strings.Join(c.Buttons(), " "), id)
	})
	jobs := h2.jobsOf("502") // the one who pressed
	if len(jobs) != 1 || jobs[0].Request.Prompt != "a red fox" || jobs[0].Request.Seed == h2.job(id).Request.Seed {
		t.Fatalf("again made %+v", jobs)
	}
	if !strings.Contains(strings.Join(again.Buttons(), " "), jobs[0].ID) {
		t.Errorf("buttons %v do not name the new job %s", again.Buttons(), jobs[0].ID)
	}

	press("q-orig", "orig:"+id+":0")
	h2.wait(10*time.Second, "answer", is("answerCallbackQuery", "callback_query_id", "q-orig"))
	doc := h2.wait(10*time.Second, "original", is("sendDocument", "chat_id", groupChat))
	if !strings.HasSuffix(doc.Files["document"].Name, ".png") {
		t.Errorf("document %q", doc.Files["document"].Name)
	}

	press("q-bad", "frobnicate:"+id+":0")
	bad := h2.wait(10*time.Second, "answer", is("answerCallbackQuery", "callback_query_id", "q-bad"))
	if bad.Params["show_alert"] != "true" {
		t.Errorf("unknown button answered %v", bad.Params)
	}
	press("q-gone", "again:zzzzzzzz:0")
	gone := h2.wait(10*time.Second, "answer", is("answerCallbackQuery", "callback_query_id", "q-gone"))
	if gone.Params["show_alert"] != "true" || !strings.Contains(gone.Params["text"], "zzzzzzzz") {
		t.Errorf("missing job answered %v", gone.Params)
	}
}

// TestManyImages: eleven pictures go as two albums (6 + 5), the caption on
// the first, then a message with the buttons.
func TestManyImages(t *testing.T) {
	h := newHarness(t, "", nil, withMaxImages(11))
	h.fake.AddUpdate(strings.Replace(string(fixture(t, "private_draw_zh.json")), "--seed 7", "--seed 7 --n 11 --size 256x256", 1))
	buttons := h.wait(20*time.Second, "buttons", func(c telegramtest.Call) bool {
		return is("sendMessage", "chat_id", "601")(c) && len(c.Buttons()) > 0
	})
	albums := h.fake.Calls("sendMediaGroup")
	if len(albums) != 2 {
		t.Fatalf("%d albums:\n%s", len(albums), dump(h.fake.Calls()))
	}
	if a, b := len(albums[0].Media()), len(albums[1].Media()); a != 6 || b != 5 {
		t.Errorf("albums of %d and %d", a, b)
	}
	first := albums[0].Media()[0]
	if first.Type != "photo" || !strings.Contains(first.Caption, "一只红狐狸") || !strings.Contains(first.Caption, "种子") {
		t.Errorf("first item %+v", first)
	}
	for _, a := range albums {
		for i, m := range a.Media()[1:] {
			if m.Caption != "" {
				t.Errorf("item %d has a caption", i+1)
			}
		}
		if len(a.Files) != len(a.Media()) {
			t.Errorf("%d files for %d items", len(a.Files), len(a.Media()))
		}
	}
	b := buttons.Buttons()
	if len(b) != 2+11+11 || !strings.HasPrefix(b[0], "again:") || !strings.HasSuffix(b[1], ":-1") {
		t.Errorf("buttons %v", b)
	}
	if buttons.At.Before(albums[1].At) {
		t.Error("buttons came before the pictures")
	}
}
