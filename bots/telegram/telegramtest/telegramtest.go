// Package telegramtest is a fake Telegram Bot API server for tests. It
// speaks the methods picbot uses, checks their parameters and uploads the
// way Telegram does (photo limits, album sizes, caption and callback_data
// lengths, edits of unknown messages), records every call, queues updates
// for getUpdates, serves files for getFile, and answers 429 with
// retry_after when told to.
package telegramtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	_ "image/gif" // decoders for uploaded pictures
	_ "image/jpeg"
	_ "image/png"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf16"
)

// Telegram's limits, as the fake enforces them.
const (
	MaxPhotoBytes    = 10 << 20
	MaxPhotoSides    = 10000
	MaxPhotoRatio    = 20
	MaxDocumentBytes = 50 << 20
	MaxCaption       = 1024
	MaxText          = 4096
	MaxCallbackData  = 64
	MaxAnswer        = 200
)

// BotID is the fake bot's user id.
const BotID = 7000000001

// Server is a fake Bot API server.
type Server struct {
	// URL is the endpoint: give it as telegram.api_endpoint.
	URL      string
	Token    string
	Username string

	srv *httptest.Server

	mu          sync.Mutex
	changed     chan struct{} // closed and replaced on every change
	calls       []Call
	updates     []queued
	nextUpdate  int
	nextMessage int
	nextFile    int
	messages    map[string]*message // "chat/id" → message
	files       map[string]file     // file_id → file
	failures    map[string][]Failure
	webhook     Webhook
	hideSizes   bool
	holds       map[string]*hold
	latency     map[string]time.Duration
	members     map[string]string      // "chat/user" → status, for getChatMember
	chats       map[int64]string       // chat type, as updates showed it
	topics      map[int64]map[int]bool // forum topics, as updates showed them or AddTopic made
	admins      map[int64][]ChatMember // SetAdmins
	queries     map[string]inlineQuery // inline queries from updates, by id
	inline      map[string]*message    // inline messages, by inline_message_id
	nextInline  int
	checkouts   map[string]bool   // pre_checkout_query ids not yet answered
	charges     map[string]charge // Stars payments, by telegram_payment_charge_id
	nextCharge  int
}

// charge is a Stars payment the fake made.
type charge struct {
	user     int64
	refunded bool
}

// inlineQuery is an inline query the fake sent, and its answer.
type inlineQuery struct {
	from    json.RawMessage
	query   string
	at      time.Time
	results []json.RawMessage // nil until answered
}

// ChatMember is an entry of getChatAdministrators' answer (Bot API
// ChatMemberOwner and ChatMemberAdministrator).
type ChatMember struct {
	Status          string `json:"status"` // "creator" or "administrator"
	User            User   `json:"user"`
	CustomTitle     string `json:"custom_title,omitempty"`
	IsAnonymous     bool   `json:"is_anonymous,omitempty"`
	CanPostMessages bool   `json:"can_post_messages,omitempty"` // channels only
}

// User is a Bot API User.
type User struct {
	ID        int64  `json:"id"`
	IsBot     bool   `json:"is_bot"`
	FirstName string `json:"first_name"`
	LastName  string `json:"last_name,omitempty"`
	Username  string `json:"username,omitempty"`
}

// hold keeps calls of a method waiting; see Hold.
type hold struct {
	done    chan struct{}
	proceed bool
	waiting int
}

type queued struct {
	id  int
	raw json.RawMessage
}

type message struct {
	chat    int64
	id      int
	thread  int // the forum topic; 0: none (General)
	text    string
	caption string
	photo   bool
	deleted bool
	media   string // an inline message's file_id or URL, once edited into a picture
	kind    string // its media type
}

type file struct {
	path string
	data []byte
}

// Webhook is what setWebhook registered.
type Webhook struct {
	URL         string
	SecretToken string
}

// Call is one request the fake received.
type Call struct {
	Method string
	Params map[string]string
	Files  map[string]File // multipart file fields
	At     time.Time
	// Status and Result are the fake's answer.
	Status int
	Result json.RawMessage
}

// File is an uploaded file.
type File struct {
	Name string
	Data []byte
}

// Failure is an error the fake answers a method with, once.
type Failure struct {
	Code        int
	Description string
	RetryAfter  int // seconds, for 429
}

// New starts a fake for token, with username as the bot's username.
func New(token, username string) *Server {
	s := &Server{
		Token:       token,
		Username:    username,
		changed:     make(chan struct{}),
		nextUpdate:  100,
		nextMessage: 1000,
		messages:    make(map[string]*message),
		files:       make(map[string]file),
		failures:    make(map[string][]Failure),
		chats:       make(map[int64]string),
		topics:      make(map[int64]map[int]bool),
		admins:      make(map[int64][]ChatMember),
		queries:     make(map[string]inlineQuery),
		inline:      make(map[string]*message),
		checkouts:   make(map[string]bool),
		charges:     make(map[string]charge),
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	return s
}

// SetMember gives user a status in chat for getChatMember: "creator",
// "administrator", "member" (the default), "restricted", "left" or "kicked".
func (s *Server) SetMember(chat, user int64, status string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.members == nil {
		s.members = make(map[string]string)
	}
	s.members[fmt.Sprintf("%d/%d", chat, user)] = status
}

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

func (s *Server) notify() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// AddUpdate queues an update for getUpdates and returns its update_id. u is
// a JSON document or anything that marshals to one; a missing update_id is
// assigned. Messages in it become known, so replies to them work.
func (s *Server) AddUpdate(u any) int {
	var m map[string]any
	raw, ok := u.([]byte)
	if !ok {
		if str, isStr := u.(string); isStr {
			raw = []byte(str)
		} else {
			var err error
			if raw, err = json.Marshal(u); err != nil {
				panic(err)
			}
		}
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		panic(fmt.Sprintf("telegramtest: bad update: %v", err))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	id, _ := m["update_id"].(float64)
	if id == 0 {
		s.nextUpdate++
		id = float64(s.nextUpdate)
		m["update_id"] = int(id)
	} else if int(id) > s.nextUpdate {
		s.nextUpdate = int(id)
	}
	for _, key := range []string{"message", "channel_post", "callback_query"} {
		msg, _ := m[key].(map[string]any)
		if key == "callback_query" && msg != nil {
			msg, _ = msg["message"].(map[string]any)
		}
		if msg != nil {
			s.learn(msg)
			if r, ok := msg["reply_to_message"].(map[string]any); ok {
				s.learn(r)
			}
		}
	}
	if q, ok := m["pre_checkout_query"].(map[string]any); ok {
		qid, _ := q["id"].(string)
		s.checkouts[qid] = true
	}
	if q, ok := m["inline_query"].(map[string]any); ok {
		from, _ := json.Marshal(q["from"])
		qid, _ := q["id"].(string)
		text, _ := q["query"].(string)
		s.queries[qid] = inlineQuery{from: from, query: text, at: time.Now()}
	}
	raw, _ = json.Marshal(m)
	s.updates = append(s.updates, queued{id: int(id), raw: raw})
	s.notify()
	return int(id)
}

// learn records a message from an update, so edits and replies find it.
func (s *Server) learn(msg map[string]any) {
	c, _ := msg["chat"].(map[string]any)
	chatID, _ := c["id"].(float64)
	if t, _ := c["type"].(string); t != "" && chatID != 0 {
		s.chats[int64(chatID)] = t
	}
	id, _ := msg["message_id"].(float64)
	if id == 0 {
		return
	}
	text, _ := msg["text"].(string)
	m := &message{chat: int64(chatID), id: int(id), text: text}
	forum, _ := c["is_forum"].(bool)
	if topic, _ := msg["is_topic_message"].(bool); topic || forum {
		thread, _ := msg["message_thread_id"].(float64)
		m.thread = int(thread)
		s.addTopicLocked(m.chat, m.thread)
	}
	s.messages[key(int64(chatID), int(id))] = m
}

// AddTopic makes thread a forum topic of chat, as createForumTopic would
// (updates with is_topic_message make their topics known by themselves).
func (s *Server) AddTopic(chat int64, thread int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addTopicLocked(chat, thread)
}

func (s *Server) addTopicLocked(chat int64, thread int) {
	if thread <= 0 {
		return
	}
	if s.topics[chat] == nil {
		s.topics[chat] = make(map[int]bool)
	}
	s.topics[chat][thread] = true
}

// SetAdmins sets what getChatAdministrators answers for chat. A chat
// without any answers with the bot alone, as an administrator that may post.
func (s *Server) SetAdmins(chat int64, members ...ChatMember) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.admins[chat] = members
}

// Thread is the forum topic of a message the bot sent (0: none), and
// whether the message is known.
func (s *Server) Thread(chat int64, id int) (int, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.messages[key(chat, id)]
	if !ok {
		return 0, false
	}
	return m.thread, true
}

// Pending is how many queued updates getUpdates has not had confirmed.
func (s *Server) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.updates)
}

// AddFile makes data downloadable with getFile under fileID (and at path,
// "photos/<fileID>.jpg" if empty), as a photo a user sent would be.
func (s *Server) AddFile(fileID, path string, data []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if path == "" {
		path = "photos/" + fileID + ".jpg"
	}
	s.files[fileID] = file{path: path, data: data}
}

func (s *Server) addFileLocked(data []byte) string {
	s.nextFile++
	id := fmt.Sprintf("FILE%d", s.nextFile)
	s.files[id] = file{path: fmt.Sprintf("documents/file_%d", s.nextFile), data: data}
	return id
}

// HideFileSizes makes getFile answer without file_size, as Telegram may.
func (s *Server) HideFileSizes() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hideSizes = true
}

// Fail makes the next call of method answer with f (queued: one call each).
func (s *Server) Fail(method string, f ...Failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures[method] = append(s.failures[method], f...)
}

// Hold makes calls of method wait, unanswered and unrecorded, until release
// is called: release(true) lets them through; release(false) answers them
// 502 and changes nothing, as a call cut off by a dying bot.
func (s *Server) Hold(method string) (release func(proceed bool)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.holds == nil {
		s.holds = make(map[string]*hold)
	}
	h := &hold{done: make(chan struct{})}
	s.holds[method] = h
	var once sync.Once
	return func(proceed bool) {
		once.Do(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			h.proceed = proceed
			delete(s.holds, method)
			close(h.done)
		})
	}
}

// WaitHeld waits until a call of method is waiting in a Hold.
func (s *Server) WaitHeld(ctx context.Context, method string) error {
	for {
		s.mu.Lock()
		h := s.holds[method]
		ch := s.changed
		n := 0
		if h != nil {
			n = h.waiting
		}
		s.mu.Unlock()
		if n > 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}

// Latency makes every call of method take d before it is answered, as an
// upload over a real network does.
func (s *Server) Latency(method string, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.latency == nil {
		s.latency = make(map[string]time.Duration)
	}
	s.latency[method] = d
}

// Held is how many calls of method wait in a Hold now.
func (s *Server) Held(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if h := s.holds[method]; h != nil {
		return h.waiting
	}
	return 0
}

// held waits out a Hold on method, if there is one; false: answer 502.
func (s *Server) held(ctx context.Context, method string) bool {
	s.mu.Lock()
	h := s.holds[method]
	if h == nil {
		s.mu.Unlock()
		return true
	}
	h.waiting++
	s.notify()
	s.mu.Unlock()
	select {
	case <-h.done:
	case <-ctx.Done():
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return h.proceed
}

// Webhook returns what setWebhook registered.
func (s *Server) Webhook() Webhook {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.webhook
}

// Calls returns the calls of the given methods (all calls if none), in order.
func (s *Server) Calls(methods ...string) []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Call
	for _, c := range s.calls {
		if len(methods) == 0 || slices.Contains(methods, c.Method) {
			out = append(out, c)
		}
	}
	return out
}

// Text returns the current text (or caption) of a message the bot sent, and
// whether it is still there.
func (s *Server) Text(chat int64, id int) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.messages[key(chat, id)]
	if !ok || m.deleted {
		return "", false
	}
	if m.photo {
		return m.caption, true
	}
	return m.text, true
}

// Wait waits until a recorded call satisfies ok, and returns it.
func (s *Server) Wait(ctx context.Context, ok func(Call) bool) (Call, error) {
	for {
		s.mu.Lock()
		for _, c := range s.calls {
			if ok(c) {
				s.mu.Unlock()
				return c, nil
			}
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return Call{}, ctx.Err()
		case <-ch:
		}
	}
}

// WaitN waits until n recorded calls satisfy ok, and returns them.
func (s *Server) WaitN(ctx context.Context, n int, ok func(Call) bool) ([]Call, error) {
	for {
		s.mu.Lock()
		var got []Call
		for _, c := range s.calls {
			if ok(c) {
				got = append(got, c)
			}
		}
		ch := s.changed
		s.mu.Unlock()
		if len(got) >= n {
			return got, nil
		}
		select {
		case <-ctx.Done():
			return got, ctx.Err()
		case <-ch:
		}
	}
}

// Method matches calls of method.
func Method(method string) func(Call) bool {
	return func(c Call) bool { return c.Method == method && c.Status == http.StatusOK }
}

// Buttons returns the callback_data of the call's inline keyboard, row by row flattened.
func (c Call) Buttons() []string {
	var kb struct {
		InlineKeyboard [][]struct {
			Text         string  `json:"text"`
			CallbackData *string `json:"callback_data"`
		} `json:"inline_keyboard"`
	}
	if json.Unmarshal([]byte(c.Params["reply_markup"]), &kb) != nil {
		return nil
	}
	var out []string
	for _, row := range kb.InlineKeyboard {
		for _, b := range row {
			if b.CallbackData != nil {
				out = append(out, *b.CallbackData)
			}
		}
	}
	return out
}

// Media returns the items of a sendMediaGroup call.
func (c Call) Media() []InputMedia {
	var media []InputMedia
	json.Unmarshal([]byte(c.Params["media"]), &media)
	return media
}

// InputMedia is an item of an album.
type InputMedia struct {
	Type    string `json:"type"`
	Media   string `json:"media"`
	Caption string `json:"caption"`
}

// MessageID is the id of the message a successful send returned.
func (c Call) MessageID() int {
	var m struct {
		MessageID int `json:"message_id"`
	}
	json.Unmarshal(c.Result, &m)
	return m.MessageID
}

// ChooseInline picks result resultID of the answer to inline query
// queryID, as the user tapping it would: the result's message is sent (an
// inline message, text only here) and a chosen_inline_result update
// queued, with inline_message_id only when the message has an inline
// keyboard, as Telegram does. It returns the inline_message_id ("" without
// one) and false when the query has no such result.
func (s *Server) ChooseInline(queryID, resultID string) (string, bool) {
	s.mu.Lock()
	q, ok := s.queries[queryID]
	var chosen map[string]any
	for _, r := range q.results {
		var m map[string]any
		json.Unmarshal(r, &m)
		if m["id"] == resultID {
			chosen = m
		}
	}
	if !ok || chosen == nil {
		s.mu.Unlock()
		return "", false
	}
	content, _ := chosen["input_message_content"].(map[string]any)
	text, _ := content["message_text"].(string)
	id := ""
	if _, kb := chosen["reply_markup"]; kb {
		id = s.newInline(text)
	}
	s.mu.Unlock()
	r := map[string]any{"result_id": resultID, "from": q.from, "query": q.query}
	if id != "" {
		r["inline_message_id"] = id
	}
	s.AddUpdate(map[string]any{"chosen_inline_result": r})
	return id, true
}

// NewInline makes an inline message with text and returns its
// inline_message_id, as a chosen result's message is sent, without the
// chosen_inline_result update: for tests that deliver a job stored for it.
func (s *Server) NewInline(text string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.newInline(text)
}

// newInline makes an inline message; s.mu is held.
func (s *Server) newInline(text string) string {
	s.nextInline++
	id := fmt.Sprintf("AgAAAI%08dFAKE", s.nextInline)
	s.inline[id] = &message{text: text}
	return id
}

// Payment returns a successful_payment message from user in their private
// chat, for an invoice with payload and stars, under a new
// telegram_payment_charge_id (which refundStarPayment then knows), as
// Telegram sends it once the pre-checkout query was answered ok. Queue it
// with AddUpdate (twice, to replay it).
func (s *Server) Payment(user int64, payload string, stars int) (update string, chargeID string) {
	s.mu.Lock()
	s.nextCharge++
	chargeID = fmt.Sprintf("stxFAKE%06d", s.nextCharge)
	s.charges[chargeID] = charge{user: user}
	s.nextMessage++
	id := s.nextMessage
	s.mu.Unlock()
	u := map[string]any{"message": map[string]any{
		"message_id": id, "date": time.Now().Unix(),
		"from": map[string]any{"id": user, "is_bot": false, "first_name": "Payer", "language_code": "en"},
		"chat": map[string]any{"id": user, "type": "private", "first_name": "Payer"},
		"successful_payment": map[string]any{
			"currency": "XTR", "total_amount": stars, "invoice_payload": payload,
			"telegram_payment_charge_id": chargeID, "provider_payment_charge_id": "",
		},
	}}
	raw, _ := json.Marshal(u)
	return string(raw), chargeID
}

// Refunded reports whether refundStarPayment gave a charge back.
func (s *Server) Refunded(chargeID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.charges[chargeID].refunded
}

// Inline is an inline message's text or caption, and the file_id or URL of
// its picture once it has one.
func (s *Server) Inline(id string) (text, media string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.inline[id]
	if !ok {
		return "", "", false
	}
	if m.media != "" {
		return m.caption, m.media, true
	}
	return m.text, "", true
}

// ThreadID is the call's message_thread_id parameter (0: none).
func (c Call) ThreadID() int {
	n, _ := strconv.Atoi(c.Params["message_thread_id"])
	return n
}

// ChatID is the call's chat_id parameter.
func (c Call) ChatID() int64 {
	n, _ := strconv.ParseInt(c.Params["chat_id"], 10, 64)
	return n
}

func key(chat int64, id int) string { return fmt.Sprintf("%d/%d", chat, id) }

// apiError is an error answer.
type apiError struct {
	status int
	desc   string
	retry  int
}

func bad(format string, args ...any) *apiError {
	return &apiError{status: 400, desc: "Bad Request: " + fmt.Sprintf(format, args...)}
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if rest, ok := strings.CutPrefix(r.URL.Path, "/file/bot"); ok {
		s.serveFile(w, r, rest)
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/bot")
	token, method, ok2 := strings.Cut(rest, "/")
	if !ok || !ok2 {
		writeError(w, &apiError{status: 404, desc: "Not Found"})
		return
	}
	if token != s.Token {
		writeError(w, &apiError{status: 401, desc: "Unauthorized"})
		return
	}
	params, files, err := parse(r)
	if err != nil {
		writeError(w, bad("can't parse request: %v", err))
		return
	}
	if !s.held(r.Context(), method) {
		writeError(w, &apiError{status: http.StatusBadGateway, desc: "Bad Gateway"})
		return
	}
	s.mu.Lock()
	d := s.latency[method]
	s.mu.Unlock()
	if d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			writeError(w, &apiError{status: http.StatusBadGateway, desc: "Bad Gateway"})
			return
		}
	}
	call := Call{Method: method, Params: params, Files: files, At: time.Now()}
	var (
		result any
		aerr   *apiError
	)
	if method == "getUpdates" {
		result, aerr = s.getUpdates(r.Context(), params)
	} else {
		s.mu.Lock()
		if f := s.failures[method]; len(f) > 0 {
			s.failures[method] = f[1:]
			aerr = &apiError{status: f[0].Code, desc: f[0].Description, retry: f[0].RetryAfter}
			if aerr.desc == "" {
				aerr.desc = http.StatusText(aerr.status)
				if aerr.status == 429 {
					aerr.desc = fmt.Sprintf("Too Many Requests: retry after %d", aerr.retry)
				}
			}
		} else {
			result, aerr = s.handle(method, params, files)
		}
		s.mu.Unlock()
	}
	var raw json.RawMessage
	if aerr == nil {
		raw, _ = json.Marshal(result)
		call.Status = http.StatusOK
		call.Result = raw
		writeResult(w, raw)
	} else {
		call.Status = aerr.status
		writeError(w, aerr)
	}
	if method == "getUpdates" && aerr == nil && string(raw) == "[]" {
		return // empty polls are not worth recording
	}
	s.mu.Lock()
	s.calls = append(s.calls, call)
	s.notify()
	s.mu.Unlock()
}

func writeResult(w http.ResponseWriter, raw json.RawMessage) {
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"ok":true,"result":%s}`, raw)
}

func writeError(w http.ResponseWriter, e *apiError) {
	body := map[string]any{"ok": false, "error_code": e.status, "description": e.desc}
	if e.retry > 0 {
		body["parameters"] = map[string]any{"retry_after": e.retry}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.status)
	json.NewEncoder(w).Encode(body)
}

// parse reads a request's parameters: query, urlencoded, multipart or JSON.
func parse(r *http.Request) (map[string]string, map[string]File, error) {
	params := map[string]string{}
	files := map[string]File{}
	for k, v := range r.URL.Query() {
		params[k] = v[0]
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch ct {
	case "multipart/form-data":
		if err := r.ParseMultipartForm(128 << 20); err != nil {
			return nil, nil, err
		}
		for k, v := range r.MultipartForm.Value {
			params[k] = v[0]
		}
		for k, fhs := range r.MultipartForm.File {
			f, err := fhs[0].Open()
			if err != nil {
				return nil, nil, err
			}
			data, err := io.ReadAll(f)
			f.Close()
			if err != nil {
				return nil, nil, err
			}
			files[k] = File{Name: fhs[0].Filename, Data: data}
		}
	case "application/json":
		var m map[string]any
		if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
			return nil, nil, err
		}
		for k, v := range m {
			if s, ok := v.(string); ok {
				params[k] = s
			} else {
				b, _ := json.Marshal(v)
				params[k] = string(b)
			}
		}
	default:
		if err := r.ParseForm(); err != nil {
			return nil, nil, err
		}
		for k, v := range r.PostForm {
			params[k] = v[0]
		}
	}
	return params, files, nil
}

func (s *Server) serveFile(w http.ResponseWriter, r *http.Request, rest string) {
	token, path, ok := strings.Cut(rest, "/")
	if !ok || token != s.Token {
		http.Error(w, "Unauthorized", http.StatusUnauthorized)
		return
	}
	s.mu.Lock()
	var data []byte
	found := false
	for _, f := range s.files {
		if f.path == path {
			data, found = f.data, true
		}
	}
	s.calls = append(s.calls, Call{Method: "download", Params: map[string]string{"path": path}, At: time.Now(), Status: http.StatusOK})
	s.notify()
	s.mu.Unlock()
	if !found {
		http.NotFound(w, r)
		return
	}
	w.Write(data)
}

func (s *Server) getUpdates(ctx context.Context, p map[string]string) (any, *apiError) {
	offset, _ := strconv.Atoi(p["offset"])
	limit, _ := strconv.Atoi(p["limit"])
	if limit <= 0 || limit > 100 {
		limit = 100
	}
	timeout, _ := strconv.Atoi(p["timeout"])
	deadline := time.After(time.Duration(timeout) * time.Second)
	for {
		s.mu.Lock()
		if f := s.failures["getUpdates"]; len(f) > 0 {
			s.failures["getUpdates"] = f[1:]
			s.mu.Unlock()
			return nil, &apiError{status: f[0].Code, desc: f[0].Description, retry: f[0].RetryAfter}
		}
		if s.webhook.URL != "" {
			s.mu.Unlock()
			return nil, &apiError{status: 409, desc: "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first"}
		}
		if offset > 0 {
			// Asking from offset confirms every update below it.
			s.updates = slices.DeleteFunc(s.updates, func(q queued) bool { return q.id < offset })
		}
		var out []json.RawMessage
		for _, q := range s.updates {
			if len(out) < limit {
				out = append(out, q.raw)
			}
		}
		ch := s.changed
		s.mu.Unlock()
		if len(out) > 0 {
			return out, nil
		}
		select {
		case <-ctx.Done():
			return []json.RawMessage{}, nil
		case <-deadline:
			return []json.RawMessage{}, nil
		case <-ch:
		}
	}
}

// handle answers every method but getUpdates. Called with s.mu held.
func (s *Server) handle(method string, p map[string]string, files map[string]File) (any, *apiError) {
	switch method {
	case "getMe":
		return s.me(), nil
	case "setWebhook":
		if p["url"] == "" {
			return nil, bad("bad webhook: An HTTPS URL must be provided for webhook")
		}
		if t := p["secret_token"]; t != "" && strings.Trim(t, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") != "" {
			return nil, bad("secret token contains unallowed characters")
		}
		s.webhook = Webhook{URL: p["url"], SecretToken: p["secret_token"]}
		return true, nil
	case "deleteWebhook":
		s.webhook = Webhook{}
		return true, nil
	case "setMyCommands":
		var cmds []struct{ Command, Description string }
		if err := json.Unmarshal([]byte(p["commands"]), &cmds); err != nil || len(cmds) == 0 {
			return nil, bad("commands must be a non-empty array")
		}
		for _, c := range cmds {
			if c.Command == "" || len(c.Command) > 32 || strings.ToLower(c.Command) != c.Command || len([]rune(c.Description)) < 1 || len([]rune(c.Description)) > 256 {
				return nil, bad("BOT_COMMAND_INVALID")
			}
		}
		return true, nil
	case "getChatMember":
		chat, err := strconv.ParseInt(p["chat_id"], 10, 64)
		user, err2 := strconv.ParseInt(p["user_id"], 10, 64)
		if err != nil || err2 != nil || chat == 0 {
			return nil, bad("chat not found")
		}
		status := s.members[fmt.Sprintf("%d/%d", chat, user)]
		for _, a := range s.admins[chat] {
			if a.User.ID == user && status == "" {
				status = a.Status // SetAdmins' members, as getChatAdministrators lists them
			}
		}
		if status == "" {
			status = "member"
		}
		// A ChatMember object (chatMemberOwner, chatMemberAdministrator, chatMemberMember...).
		return map[string]any{"status": status, "user": map[string]any{"id": user, "is_bot": false, "first_name": "User"}}, nil
	case "sendInvoice":
		chat, _, err := s.target(p)
		if err != nil {
			return nil, err
		}
		if p["currency"] != "XTR" {
			return nil, bad("CURRENCY_INVALID") // the fake sells Stars only
		}
		if p["provider_token"] != "" {
			return nil, bad("PAYMENT_PROVIDER_INVALID") // Stars take no provider token
		}
		if t := len([]rune(p["title"])); t < 1 || t > 32 {
			return nil, bad("INVOICE_TITLE_INVALID")
		}
		if d := len([]rune(p["description"])); d < 1 || d > 255 {
			return nil, bad("INVOICE_DESCRIPTION_INVALID")
		}
		if n := len(p["payload"]); n < 1 || n > 128 {
			return nil, bad("INVOICE_PAYLOAD_INVALID")
		}
		var prices []struct {
			Label  string `json:"label"`
			Amount int    `json:"amount"`
		}
		if json.Unmarshal([]byte(p["prices"]), &prices) != nil || len(prices) != 1 || prices[0].Amount < 1 || prices[0].Label == "" {
			return nil, bad("STARS_INVOICE_INVALID") // one price, in whole Stars
		}
		m := s.newMessage(chat, 0)
		m.text = p["title"]
		out := s.render(m, p["reply_markup"], nil)
		out["invoice"] = map[string]any{"title": p["title"], "description": p["description"], "start_parameter": p["start_parameter"], "currency": "XTR", "total_amount": prices[0].Amount}
		return out, nil
	case "answerPreCheckoutQuery":
		id := p["pre_checkout_query_id"]
		if !s.checkouts[id] {
			return nil, bad("QUERY_ID_INVALID")
		}
		if p["ok"] != "true" && p["error_message"] == "" {
			return nil, bad("error_message must be non-empty if ok is false")
		}
		delete(s.checkouts, id)
		return true, nil
	case "refundStarPayment":
		user, _ := strconv.ParseInt(p["user_id"], 10, 64)
		c, ok := s.charges[p["telegram_payment_charge_id"]]
		switch {
		case !ok || c.user != user:
			return nil, bad("CHARGE_NOT_FOUND")
		case c.refunded:
			return nil, bad("CHARGE_ALREADY_REFUNDED")
		}
		c.refunded = true
		s.charges[p["telegram_payment_charge_id"]] = c
		return true, nil
	case "answerInlineQuery":
		q, ok := s.queries[p["inline_query_id"]]
		if !ok || time.Since(q.at) > 10*time.Second {
			return nil, bad("query is too old and response timeout expired or query ID is invalid")
		}
		if q.results != nil {
			return nil, bad("QUERY_ID_INVALID") // answered already
		}
		var results []json.RawMessage
		if err := json.Unmarshal([]byte(p["results"]), &results); err != nil {
			return nil, bad("can't parse inline query results JSON object")
		}
		if len(results) > 50 {
			return nil, bad("RESULTS_TOO_MUCH")
		}
		ids := map[string]bool{}
		for _, r := range results {
			var res struct {
				Type                string `json:"type"`
				ID                  string `json:"id"`
				Title               string `json:"title"`
				InputMessageContent *struct {
					MessageText string `json:"message_text"`
				} `json:"input_message_content"`
				ReplyMarkup json.RawMessage `json:"reply_markup"`
			}
			if err := json.Unmarshal(r, &res); err != nil || res.Type == "" {
				return nil, bad("RESULT_TYPE_INVALID")
			}
			if res.ID == "" || len(res.ID) > 64 || ids[res.ID] {
				return nil, bad("RESULT_ID_INVALID")
			}
			ids[res.ID] = true
			if res.Type == "article" && (res.Title == "" || res.InputMessageContent == nil) {
				return nil, bad("ARTICLE_TITLE_EMPTY")
			}
			if c := res.InputMessageContent; c != nil && (c.MessageText == "" || units(c.MessageText) > MaxText) {
				return nil, bad("MESSAGE_EMPTY")
			}
			if len(res.ReplyMarkup) > 0 {
				if err := checkMarkup(string(res.ReplyMarkup)); err != nil {
					return nil, err
				}
			}
		}
		if results == nil {
			results = []json.RawMessage{}
		}
		q.results = results
		s.queries[p["inline_query_id"]] = q
		return true, nil
	case "getChatAdministrators":
		chat, err := strconv.ParseInt(p["chat_id"], 10, 64)
		if err != nil || chat == 0 {
			return nil, bad("chat not found")
		}
		if s.chats[chat] == "private" {
			return nil, bad("there are no administrators in the private chat")
		}
		if list, ok := s.admins[chat]; ok {
			return list, nil
		}
		return []ChatMember{{Status: "administrator", User: User{ID: BotID, IsBot: true, FirstName: "Picbot", Username: s.Username}, CanPostMessages: true}}, nil
	case "answerCallbackQuery":
		if p["callback_query_id"] == "" {
			return nil, bad("query is too old and response timeout expired or query ID is invalid")
		}
		if units(p["text"]) > MaxAnswer {
			return nil, bad("MESSAGE_TOO_LONG")
		}
		return true, nil
	case "getFile":
		f, ok := s.files[p["file_id"]]
		if !ok {
			return nil, bad("invalid file_id")
		}
		out := map[string]any{"file_id": p["file_id"], "file_unique_id": "u" + p["file_id"], "file_size": len(f.data), "file_path": f.path}
		if s.hideSizes {
			delete(out, "file_size")
		}
		return out, nil
	case "sendMessage":
		chat, thread, err := s.target(p)
		if err != nil {
			return nil, err
		}
		text := p["text"]
		if text == "" || units(text) > MaxText {
			return nil, bad("message text is empty or too long")
		}
		if err := checkMarkup(p["reply_markup"]); err != nil {
			return nil, err
		}
		m := s.newMessage(chat, thread)
		m.text = text
		return s.render(m, p["reply_markup"], nil), nil
	case "editMessageText", "editMessageCaption":
		m, err := s.editable(p)
		if err != nil {
			return nil, err
		}
		if err := checkMarkup(p["reply_markup"]); err != nil {
			return nil, err
		}
		if method == "editMessageText" {
			if m.photo {
				return nil, bad("there is no text in the message to edit")
			}
			if p["text"] == "" || units(p["text"]) > MaxText {
				return nil, bad("message text is empty or too long")
			}
			if p["text"] == m.text && p["reply_markup"] == "" {
				return nil, bad("message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message")
			}
			m.text = p["text"]
		} else {
			if !m.photo {
				return nil, bad("there is no caption in the message to edit")
			}
			if units(p["caption"]) > MaxCaption {
				return nil, bad("message caption is too long")
			}
			m.caption = p["caption"]
		}
		if p["inline_message_id"] != "" {
			return true, nil // edits of inline messages answer true, not the message
		}
		return s.render(m, p["reply_markup"], nil), nil
	case "editMessageMedia":
		m, err := s.editable(p)
		if err != nil {
			return nil, err
		}
		var media InputMedia
		if json.Unmarshal([]byte(p["media"]), &media) != nil {
			return nil, bad("can't parse InputMedia")
		}
		if p["inline_message_id"] != "" {
			// "A new file can't be uploaded when editing an inline message":
			// a file_id the fake gave out, or an HTTP URL. The answer is true.
			if strings.HasPrefix(media.Media, "attach://") || len(files) > 0 {
				return nil, bad("can't upload file for an inline message")
			}
			if _, known := s.files[media.Media]; !known && !strings.HasPrefix(media.Media, "http://") && !strings.HasPrefix(media.Media, "https://") {
				return nil, bad("wrong file identifier/HTTP URL specified")
			}
			if units(media.Caption) > MaxCaption {
				return nil, bad("message caption is too long")
			}
			m.photo, m.caption, m.media, m.kind = media.Type == "photo", media.Caption, media.Media, media.Type
			return true, nil
		}
		if _, err := attached(media.Media, files, media.Type == "photo"); err != nil {
			return nil, err
		}
		m.photo, m.caption = media.Type == "photo", media.Caption
		return s.render(m, p["reply_markup"], nil), nil
	case "deleteMessage":
		chat, _ := strconv.ParseInt(p["chat_id"], 10, 64)
		id, _ := strconv.Atoi(p["message_id"])
		m, ok := s.messages[key(chat, id)]
		if !ok || m.deleted {
			return nil, bad("message to delete not found")
		}
		m.deleted = true
		return true, nil
	case "sendPhoto", "sendDocument":
		chat, thread, err := s.target(p)
		if err != nil {
			return nil, err
		}
		field := "photo"
		if method == "sendDocument" {
			field = "document"
		}
		data, err := attached(p[field], files, method == "sendPhoto")
		if p[field] == "" {
			if f, ok := files[field]; ok {
				data, err = check(f.Data, method == "sendPhoto")
			} else {
				return nil, bad("there is no %s in the request", field)
			}
		}
		if err != nil {
			return nil, err
		}
		if units(p["caption"]) > MaxCaption {
			return nil, bad("message caption is too long")
		}
		if err := checkMarkup(p["reply_markup"]); err != nil {
			return nil, err
		}
		m := s.newMessage(chat, thread)
		m.caption, m.photo = p["caption"], method == "sendPhoto"
		return s.render(m, p["reply_markup"], data), nil
	case "sendMediaGroup":
		chat, thread, err := s.target(p)
		if err != nil {
			return nil, err
		}
		var media []InputMedia
		if json.Unmarshal([]byte(p["media"]), &media) != nil {
			return nil, bad("can't parse media JSON object")
		}
		if len(media) < 2 || len(media) > 10 {
			return nil, bad("media group must contain 2-10 items")
		}
		if _, ok := p["reply_markup"]; ok {
			return nil, bad("media groups take no reply markup")
		}
		docs := media[0].Type == "document"
		var out []any
		group := strconv.Itoa(s.nextMessage)
		for i, item := range media {
			if (item.Type == "document") != docs || item.Type != "photo" && item.Type != "document" {
				return nil, bad("documents can't be mixed with other media types")
			}
			if units(item.Caption) > MaxCaption {
				return nil, bad("message caption is too long")
			}
			if _, err := attached(item.Media, files, item.Type == "photo"); err != nil {
				return nil, &apiError{status: err.status, desc: fmt.Sprintf("%s (item %d)", err.desc, i)}
			}
		}
		for _, item := range media {
			m := s.newMessage(chat, thread)
			m.caption, m.photo = item.Caption, item.Type == "photo"
			data, _ := attached(item.Media, files, false)
			r := s.render(m, "", data)
			r["media_group_id"] = group
			out = append(out, r)
		}
		return out, nil
	}
	return nil, &apiError{status: 404, desc: "Not Found: method not found"}
}

func (s *Server) me() map[string]any {
	return map[string]any{"id": BotID, "is_bot": true, "first_name": "Picbot", "username": s.Username, "can_join_groups": true}
}

// target checks chat_id, message_thread_id and reply_to_message_id, and
// returns the chat and the topic the new message goes to. One naming a
// topic the chat does not have is refused. A message that names no topic
// goes to General, even as a reply to a topic's message: whether Telegram
// would put it in the replied message's topic is not documented, so the
// fake takes the strict reading and the bot always names the topic.
func (s *Server) target(p map[string]string) (int64, int, *apiError) {
	chat, err := strconv.ParseInt(p["chat_id"], 10, 64)
	if err != nil || chat == 0 {
		return 0, 0, bad("chat not found")
	}
	thread := 0
	if t := p["message_thread_id"]; t != "" {
		thread, _ = strconv.Atoi(t)
		if !s.topics[chat][thread] {
			return 0, 0, bad("message thread not found")
		}
	}
	if r := p["reply_to_message_id"]; r != "" {
		id, _ := strconv.Atoi(r)
		m, ok := s.messages[key(chat, id)]
		if (!ok || m.deleted) && p["allow_sending_without_reply"] != "true" {
			return 0, 0, bad("replied message not found")
		}
	}
	return chat, thread, nil
}

func (s *Server) editable(p map[string]string) (*message, *apiError) {
	if id := p["inline_message_id"]; id != "" {
		m, ok := s.inline[id]
		if !ok {
			return nil, bad("MESSAGE_ID_INVALID")
		}
		return m, nil
	}
	chat, _ := strconv.ParseInt(p["chat_id"], 10, 64)
	id, _ := strconv.Atoi(p["message_id"])
	m, ok := s.messages[key(chat, id)]
	if !ok || m.deleted {
		return nil, bad("message to edit not found")
	}
	return m, nil
}

func (s *Server) newMessage(chat int64, thread int) *message {
	s.nextMessage++
	m := &message{chat: chat, id: s.nextMessage, thread: thread}
	s.messages[key(chat, m.id)] = m
	return m
}

// render is a message as the API returns it; files sent with it become
// available to getFile, as the bot's own photos are.
func (s *Server) render(m *message, markup string, data []byte) map[string]any {
	chatType := "private"
	if m.chat < 0 {
		chatType = "supergroup"
	}
	if t := s.chats[m.chat]; t != "" {
		chatType = t
	}
	out := map[string]any{
		"message_id": m.id,
		"date":       time.Now().Unix(),
		"chat":       map[string]any{"id": m.chat, "type": chatType},
		"from":       s.me(),
	}
	if chatType == "channel" {
		delete(out, "from") // a channel's posts are the channel's
		out["sender_chat"] = map[string]any{"id": m.chat, "type": chatType}
	}
	if m.thread > 0 {
		out["message_thread_id"] = m.thread
		out["is_topic_message"] = true
	}
	if m.text != "" {
		out["text"] = m.text
	}
	if m.caption != "" {
		out["caption"] = m.caption
	}
	if markup != "" {
		var kb any
		json.Unmarshal([]byte(markup), &kb)
		out["reply_markup"] = kb
	}
	if data != nil {
		id := s.addFileLocked(data)
		if m.photo {
			cfg, _, _ := image.DecodeConfig(bytes.NewReader(data))
			out["photo"] = []map[string]any{{"file_id": id, "file_unique_id": "u" + id, "width": cfg.Width, "height": cfg.Height, "file_size": len(data)}}
		} else {
			out["document"] = map[string]any{"file_id": id, "file_unique_id": "u" + id, "file_size": len(data)}
		}
	}
	return out
}

// attached resolves an InputMedia's media: "attach://name" must name an
// uploaded part; a file_id must be known.
func attached(media string, files map[string]File, photo bool) ([]byte, *apiError) {
	if name, ok := strings.CutPrefix(media, "attach://"); ok {
		f, ok := files[name]
		if !ok {
			return nil, bad("wrong file identifier/HTTP URL specified: no file part %q", name)
		}
		return check(f.Data, photo)
	}
	if media == "" {
		return nil, bad("there is no media in the request")
	}
	return nil, nil // a file_id or URL: accepted as is
}

// check applies Telegram's limits to an uploaded photo or document.
func check(data []byte, photo bool) ([]byte, *apiError) {
	if len(data) == 0 {
		return nil, bad("file must be non-empty")
	}
	if !photo {
		if len(data) > MaxDocumentBytes {
			return nil, &apiError{status: 413, desc: "Request Entity Too Large"}
		}
		return data, nil
	}
	if len(data) > MaxPhotoBytes {
		return nil, bad("PHOTO_SAVE_FILE_INVALID")
	}
	cfg, _, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil, bad("IMAGE_PROCESS_FAILED")
	}
	w, h := cfg.Width, cfg.Height
	if w+h > MaxPhotoSides || max(w, h) > MaxPhotoRatio*min(w, h) {
		return nil, bad("PHOTO_INVALID_DIMENSIONS")
	}
	return data, nil
}

// checkMarkup checks an inline keyboard: callback_data of 1-64 bytes.
func checkMarkup(markup string) *apiError {
	if markup == "" {
		return nil
	}
	var kb struct {
		InlineKeyboard [][]struct {
			Text         string  `json:"text"`
			CallbackData *string `json:"callback_data"`
		} `json:"inline_keyboard"`
	}
	if err := json.Unmarshal([]byte(markup), &kb); err != nil {
		return bad("can't parse reply keyboard markup JSON object")
	}
	for _, row := range kb.InlineKeyboard {
		for _, b := range row {
			if b.Text == "" {
				return bad("text buttons are unallowed in the inline keyboard")
			}
			if b.CallbackData != nil && (len(*b.CallbackData) == 0 || len(*b.CallbackData) > MaxCallbackData) {
				return bad("BUTTON_DATA_INVALID")
			}
		}
	}
	return nil
}

// units is a string's length as Telegram counts it: UTF-16 code units.
func units(s string) int { return len(utf16.Encode([]rune(s))) }

// PostWebhook sends update to the registered webhook URL, as Telegram would,
// with secret as the secret token header (use Webhook().SecretToken for the
// right one). It returns the response status.
func (s *Server) PostWebhook(ctx context.Context, target, secret string, update any) (int, error) {
	raw, ok := update.([]byte)
	if !ok {
		var err error
		if raw, err = json.Marshal(update); err != nil {
			return 0, err
		}
	}
	if _, err := url.Parse(target); err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(raw))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	if secret != "" {
		req.Header.Set("X-Telegram-Bot-Api-Secret-Token", secret)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}
