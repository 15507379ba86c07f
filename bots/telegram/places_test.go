package telegram

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image/color"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/picbot/picbot/bots/telegram/telegramtest"
	"github.com/picbot/picbot/engine"
)

// TestAddThread: message_thread_id joins a form and a multipart body of a
// method that posts a message, and nothing else.
func TestAddThread(t *testing.T) {
	t.Run("Form", func(t *testing.T) {
		req, _ := http.NewRequest("POST", "http://x/botT/sendMessage", strings.NewReader("chat_id=-1&text=hi"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if err := addThread(req, 77); err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(req.Body)
		v, _ := url.ParseQuery(string(body))
		if v.Get("message_thread_id") != "77" || v.Get("text") != "hi" || req.ContentLength != int64(len(body)) {
			t.Fatalf("body %q, length %d", body, req.ContentLength)
		}
	})
	t.Run("Multipart", func(t *testing.T) {
		var buf bytes.Buffer
		w := multipart.NewWriter(&buf)
		w.WriteField("chat_id", "-1")
		f, _ := w.CreateFormFile("photo", "a.png")
		f.Write([]byte("PNG"))
		w.Close()
		req, _ := http.NewRequest("POST", "http://x/botT/sendPhoto", &buf)
		req.Header.Set("Content-Type", w.FormDataContentType())
		if err := addThread(req, 5); err != nil {
			t.Fatal(err)
		}
		if err := req.ParseMultipartForm(1 << 20); err != nil {
			t.Fatal(err)
		}
		if req.FormValue("message_thread_id") != "5" || req.FormValue("chat_id") != "-1" || len(req.MultipartForm.File["photo"]) != 1 {
			t.Fatalf("form %v", req.MultipartForm.Value)
		}
	})
	t.Run("NotThreaded", func(t *testing.T) {
		req, _ := http.NewRequest("POST", "http://x/botT/editMessageText", strings.NewReader("chat_id=-1&text=hi"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		addThread(req, 77)
		if body, _ := io.ReadAll(req.Body); strings.Contains(string(body), "thread") {
			t.Fatalf("edit got %q", body)
		}
	})
}

// TestTopicAlbumSurvivesRestart: an album sent in a topic and kept in the
// store over a restart is answered in the topic.
func TestTopicAlbumSurvivesRestart(t *testing.T) {
	fake := telegramtest.New(testToken, testUsername)
	defer fake.Close()
	fake.AddFile("PHOTO-FACE", "", testPNG(t, 64, 64, color.RGBA{255, 0, 0, 255}))
	fake.AddFile("PHOTO-TARGET", "", testPNG(t, 64, 64, color.RGBA{0, 0, 255, 255}))
	dir := t.TempDir()
	h := newHarness(t, dir, fake, withConfig(func(c *Config) { c.AlbumWait = time.Hour }))
	part := func(id int, file, caption string) string {
		return fmt.Sprintf(`{"message": {"message_id": %d, "date": 1700000040, "media_group_id": "2468",
			"message_thread_id": 9, "is_topic_message": true,
			"from": {"id": 801, "is_bot": false, "first_name": "Bo", "language_code": "en"},
			"chat": {"id": -100801, "title": "Forum", "type": "supergroup", "is_forum": true},
			"photo": [{"file_id": %q, "file_unique_id": "u%s", "width": 64, "height": 64, "file_size": 2000}],
			"caption": %q}}`, id, file, file, caption)
	}
	fake.AddUpdate(part(61, "PHOTO-FACE", "/swapface"))
	fake.AddUpdate(part(62, "PHOTO-TARGET", ""))
	deadline := time.Now().Add(10 * time.Second)
	for fake.Pending() > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	h.stop()
	h2 := newHarness(t, dir, fake)
	photo := h2.wait(15*time.Second, "result", is("sendPhoto", "chat_id", "-100801", "reply_to_message_id", "61"))
	if photo.ThreadID() != 9 {
		t.Fatalf("result in thread %d, want 9", photo.ThreadID())
	}
	for _, c := range fake.Calls("sendMessage", "sendPhoto") {
		if c.ThreadID() != 9 {
			t.Errorf("%s in thread %d", c.Method, c.ThreadID())
		}
	}
}

func channelPost(id int, signature, text string) string {
	sig := ""
	if signature != "" {
		sig = fmt.Sprintf(`"author_signature": %q,`, signature)
	}
	return fmt.Sprintf(`{"channel_post": {"message_id": %d, "date": 1700000000, %s
		"sender_chat": {"id": -100900, "title": "狐狸频道", "type": "channel"},
		"chat": {"id": -100900, "title": "狐狸频道", "type": "channel"},
		"text": %q}}`, id, sig, text)
}

// TestChannelPosts: unsigned posts refused when so configured, a signed
// administrator's taken (charged to the channel, in Chinese from its
// title); a channel whose administrators the bot may not read is not served;
// an administrator added after the list was read is found by reading it again.
func TestChannelPosts(t *testing.T) {
	h := newHarness(t, "", nil, withRender(100*time.Millisecond), withConfig(func(c *Config) { c.UnsignedChannelPosts = UnsignedRefuse }))
	h.fake.SetAdmins(-100900, telegramtest.ChatMember{Status: "creator", User: telegramtest.User{ID: 1, FirstName: "Ann"}})
	h.fake.AddUpdate(channelPost(1, "", "/draw an unsigned fox"))
	h.fake.AddUpdate(channelPost(2, "Ann", "/draw a signed fox"))
	h.wait(15*time.Second, "photo", is("sendPhoto", "chat_id", "-100900", "reply_to_message_id", "2"))
	jobs := h.jobsOf("-100900")
	if len(jobs) != 1 || jobs[0].Owner.Lang != engine.ZH || !jobs[0].Chat.Broadcast {
		t.Fatalf("jobs %+v", jobs)
	}

	// A new administrator: the list, read over a minute ago, is read again.
	h.bot.mu.Lock()
	c := h.bot.channels[-100900]
	c.at = c.at.Add(-2 * adminsRecheck)
	h.bot.channels[-100900] = c
	h.bot.mu.Unlock()
	h.fake.SetAdmins(-100900, telegramtest.ChatMember{Status: "creator", User: telegramtest.User{ID: 1, FirstName: "Ann"}},
		telegramtest.ChatMember{Status: "administrator", User: telegramtest.User{ID: 2, FirstName: "Bo", LastName: "Ng"}, CanPostMessages: true})
	h.fake.AddUpdate(channelPost(3, "Bo Ng", "/draw a new admin's fox"))
	h.wait(15*time.Second, "photo", is("sendPhoto", "chat_id", "-100900", "reply_to_message_id", "3"))

	// The bot is no administrator of another channel.
	h.fake.Fail("getChatAdministrators", telegramtest.Failure{Code: 400, Description: "Bad Request: member list is inaccessible"})
	h.fake.AddUpdate(strings.ReplaceAll(channelPost(4, "Ann", "/draw elsewhere"), "-100900", "-100901"))
	h.fake.AddUpdate(channelPost(5, "Ann", "/help"))
	h.wait(15*time.Second, "help", is("sendMessage", "chat_id", "-100900", "reply_to_message_id", "5"))
	for _, c := range h.fake.Calls("sendMessage", "sendPhoto") {
		if r := c.Params["reply_to_message_id"]; r == "1" || c.Params["chat_id"] == "-100901" {
			t.Errorf("answered %s: %v", r, c.Params)
		}
	}
}

// TestInlineNeverStarted: a user who never started the bot cannot be sent
// the upload that gives the picture a file_id: the placeholder says what to
// do, and the job fails refunded.
func TestInlineNeverStarted(t *testing.T) {
	h := newHarness(t, "", nil, withRender(100*time.Millisecond))
	h.fake.AddUpdate(`{"inline_query": {"id": "q-9", "offset": "", "from": {"id": 909, "is_bot": false, "first_name": "Ivy"}, "query": "a fox"}}`)
	h.wait(10*time.Second, "answer", is("answerInlineQuery", "inline_query_id", "q-9"))
	h.fake.Fail("sendPhoto", telegramtest.Failure{Code: 403, Description: "Forbidden: bot can't initiate conversation with a user"})
	id, ok := h.fake.ChooseInline("q-9", inlineResultID)
	if !ok {
		t.Fatal("no result")
	}
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if text, _, _ := h.fake.Inline(id); strings.Contains(text, "press Start") {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if text, media, _ := h.fake.Inline(id); !strings.Contains(text, "@"+testUsername) || media != "" {
		t.Fatalf("placeholder %q %q\n%s", text, media, dump(h.fake.Calls()))
	}
	for time.Now().Before(deadline) {
		if jobs := h.jobsOf("909"); len(jobs) == 1 && jobs[0].State == engine.StateFailed {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("jobs %+v", h.jobsOf("909"))
}

// TestTopicOf: a topic's message names its topic; a reply thread in a
// group that is not a forum, and General, name none.
func TestTopicOf(t *testing.T) {
	for raw, want := range map[string]int{
		`{"message": {"message_id": 1, "message_thread_id": 7, "is_topic_message": true, "chat": {"id": -1, "type": "supergroup", "is_forum": true}}}`: 7,
		`{"message": {"message_id": 1, "message_thread_id": 7, "chat": {"id": -1, "type": "supergroup", "is_forum": true}}}`:                           7,
		`{"message": {"message_id": 1, "message_thread_id": 7, "chat": {"id": -1, "type": "supergroup"}}}`:                                             0,
		`{"message": {"message_id": 1, "chat": {"id": -1, "type": "supergroup", "is_forum": true}}}`:                                                   0,
		`{"callback_query": {"id": "q", "message": {"message_id": 1, "message_thread_id": 9, "is_topic_message": true, "chat": {"id": -1}}}}`:          9,
		`{"channel_post": {"message_id": 1, "chat": {"id": -1, "type": "channel"}}}`:                                                                   0,
	} {
		var u update
		if err := json.Unmarshal([]byte(raw), &u); err != nil {
			t.Fatal(err)
		}
		if got := u.messageTopic(); got != want {
			t.Errorf("%s: topic %d, want %d", raw, got, want)
		}
		back, _ := json.Marshal(u) // albums are stored this way: nothing may be lost
		var want bytes.Buffer
		json.Compact(&want, []byte(raw))
		if string(back) != want.String() {
			t.Errorf("marshalled back as %s", back)
		}
	}
}

// TestInlineOffWithAllowedChats: a bot kept to some chats offers nothing inline.
func TestInlineOffWithAllowedChats(t *testing.T) {
	h := newHarness(t, "", nil, withConfig(func(c *Config) { c.AllowedChats = []int64{-100123} }))
	h.fake.AddUpdate(`{"inline_query": {"id": "q-1", "offset": "", "from": {"id": 909, "is_bot": false, "first_name": "Ivy"}, "query": "a fox"}}`)
	c := h.wait(10*time.Second, "answer", is("answerInlineQuery", "inline_query_id", "q-1"))
	if c.Params["results"] != "[]" {
		t.Fatalf("results %s", c.Params["results"])
	}
}
