package telegram

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strconv"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"
	"github.com/picbot/picbot/engine"
)

// The SDK (go-telegram-bot-api v5.5.1) speaks Bot API 5.5: it knows
// nothing of forum topics (Bot API 6.3). What the adapter needs of them is
// decoded here beside the SDK's types, and message_thread_id is added to a
// request on its way out, since the SDK's configs build their parameters in
// unexported methods.

// update is an update as received: the SDK's decoding, plus the fields of
// later Bot API versions the adapter uses. It marshals back to the bytes it
// came from, so an album kept in the store keeps them too.
type update struct {
	tgbotapi.Update
	raw json.RawMessage
	x   updateExtras
}

// updateExtras are the fields of an update the SDK does not decode.
type updateExtras struct {
	Message       *messageExtras `json:"message"`
	ChannelPost   *messageExtras `json:"channel_post"`
	CallbackQuery *struct {
		Message *messageExtras `json:"message"`
	} `json:"callback_query"`
}

// messageExtras are a message's fields the SDK does not decode.
type messageExtras struct {
	MessageThreadID int  `json:"message_thread_id"`
	IsTopicMessage  bool `json:"is_topic_message"`
	Chat            struct {
		IsForum bool `json:"is_forum"`
	} `json:"chat"`
}

func (u *update) UnmarshalJSON(b []byte) error {
	if err := json.Unmarshal(b, &u.Update); err != nil {
		return err
	}
	if err := json.Unmarshal(b, &u.x); err != nil {
		return err
	}
	u.raw = append(json.RawMessage(nil), b...)
	return nil
}

func (u update) MarshalJSON() ([]byte, error) {
	if u.raw != nil {
		return u.raw, nil
	}
	return json.Marshal(u.Update)
}

// topic is the forum topic a message is in: its message_thread_id when it
// is a topic message (or, should is_topic_message be missing, one in a
// forum), else 0. A reply in a group that is not a forum has a
// message_thread_id too (the thread of replies), and sending with it there
// would be refused. General's messages have none.
func topic(x *messageExtras) int {
	if x == nil || !x.IsTopicMessage && !x.Chat.IsForum {
		return 0
	}
	return x.MessageThreadID
}

// messageTopic is the topic of the update's message, channel post or
// button's message.
func (u *update) messageTopic() int {
	switch {
	case u.Message != nil:
		return topic(u.x.Message)
	case u.ChannelPost != nil:
		return topic(u.x.ChannelPost)
	case u.CallbackQuery != nil && u.x.CallbackQuery != nil:
		return topic(u.x.CallbackQuery.Message)
	}
	return 0
}

type threadKey struct{}

// inThread returns ctx for requests about chat c: sends under it go to the
// topic c came from.
func inThread(ctx context.Context, c engine.ChatRef) context.Context {
	n, err := strconv.Atoi(c.ThreadID)
	if err != nil || n <= 0 {
		return ctx
	}
	return context.WithValue(ctx, threadKey{}, n)
}

func threadOf(ctx context.Context) int {
	n, _ := ctx.Value(threadKey{}).(int)
	return n
}

// threaded are the methods that take message_thread_id and post a new
// message. Edits and deletions name a message, which knows its topic.
var threaded = map[string]bool{
	"sendMessage": true, "sendPhoto": true, "sendDocument": true, "sendMediaGroup": true,
	"sendChatAction": true, "sendInvoice": true, "copyMessage": true, "sendAnimation": true,
}

// addThread adds message_thread_id to a request of a threaded method, in
// a form or a multipart body (the two the SDK sends).
func addThread(req *http.Request, thread int) error {
	if thread <= 0 || req.Body == nil || !threaded[path.Base(req.URL.Path)] {
		return nil
	}
	id := strconv.Itoa(thread)
	ct, params, _ := mime.ParseMediaType(req.Header.Get("Content-Type"))
	switch ct {
	case "application/x-www-form-urlencoded":
		body, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return fmt.Errorf("add message_thread_id: %w", err)
		}
		v, err := url.ParseQuery(string(body))
		if err != nil {
			return fmt.Errorf("add message_thread_id: %w", err)
		}
		v.Set("message_thread_id", id)
		enc := []byte(v.Encode())
		req.Body = io.NopCloser(bytes.NewReader(enc))
		req.ContentLength = int64(len(enc))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(enc)), nil }
	case "multipart/form-data":
		// A part of its own ahead of the others: the body streams on untouched.
		part := fmt.Sprintf("--%s\r\nContent-Disposition: form-data; name=\"message_thread_id\"\r\n\r\n%s\r\n", params["boundary"], id)
		body := req.Body
		req.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader([]byte(part)), body), body}
		if req.ContentLength > 0 {
			req.ContentLength += int64(len(part))
		}
		req.GetBody = nil
	}
	return nil
}
