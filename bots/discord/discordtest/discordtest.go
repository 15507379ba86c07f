// Package discordtest is a fake Discord for tests, on loopback: a REST
// server that records every call and answers as Discord does (interaction
// callbacks, webhook message edits with multipart attachments, channel
// messages, DMs, command bulk overwrite), a gateway that speaks HELLO,
// IDENTIFY, READY, heartbeats and dispatches events, and helpers to sign
// interactions as Discord does for the HTTP endpoint.
//
// Point the bot's API base at Server.URL: requests may carry Discord's
// "/api" and "/v9" prefixes or not; Call.Path has them removed.
package discordtest

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Call is one request the fake received.
type Call struct {
	Method string
	Path   string // without the /api and /v9 prefixes: "/webhooks/app/token/messages/@original"
	Query  url.Values
	Auth   string // the Authorization header
	// Payload is the JSON body, or the payload_json part of a multipart body.
	Payload json.RawMessage
	Files   []File
	At      time.Time
}

// File is a file part of a multipart request.
type File struct {
	Field       string // "files[0]"
	Name        string
	ContentType string
	Data        []byte
}

// Decode decodes the call's JSON payload into v.
func (c Call) Decode(v any) error { return json.Unmarshal(c.Payload, v) }

// Is reports whether the call has the method and its path matches pattern,
// a regular expression anchored at both ends.
func (c Call) Is(method, pattern string) bool {
	return c.Method == method && regexp.MustCompile("^"+pattern+"$").MatchString(c.Path)
}

func (c Call) String() string {
	s := c.Method + " " + c.Path
	if len(c.Files) > 0 {
		s += fmt.Sprintf(" (%d files)", len(c.Files))
	}
	return s
}

// Message is the part of a posted message tests look at.
type Message struct {
	Content string `json:"content"`
	Flags   int    `json:"flags"`
	Embeds  []struct {
		Description string `json:"description"`
		Image       *struct {
			URL string `json:"url"`
		} `json:"image"`
		Footer *struct {
			Text string `json:"text"`
		} `json:"footer"`
	} `json:"embeds"`
	Components []struct {
		Components []struct {
			Type     int    `json:"type"`
			Label    string `json:"label"`
			Style    int    `json:"style"`
			CustomID string `json:"custom_id"`
			URL      string `json:"url"`
		} `json:"components"`
	} `json:"components"`
	Attachments []struct {
		ID       string `json:"id"`
		Filename string `json:"filename"`
	} `json:"attachments"`
	Reference *struct {
		MessageID string `json:"message_id"`
		ChannelID string `json:"channel_id"`
	} `json:"message_reference"`
	AllowedMentions *struct {
		Parse []string `json:"parse"`
		Users []string `json:"users"`
	} `json:"allowed_mentions"`
	// Interaction responses (callbacks) carry type and data.
	Type int `json:"type"`
}

// CustomIDs lists the message's button custom ids.
func (m Message) CustomIDs() []string {
	var ids []string
	for _, row := range m.Components {
		for _, c := range row.Components {
			if c.CustomID != "" {
				ids = append(ids, c.CustomID)
			}
		}
	}
	return ids
}

// Message decodes the call's payload as a message.
func (c Call) Message(tb testing.TB) Message {
	tb.Helper()
	var m Message
	if err := c.Decode(&m); err != nil {
		tb.Fatalf("%s: payload %s: %v", c, c.Payload, err)
	}
	return m
}

// Server is the fake REST API.
type Server struct {
	URL string // the API base

	srv     *httptest.Server
	gateway *Gateway

	mu        sync.Mutex
	calls     []Call
	changed   chan struct{}
	files     map[string][]byte
	intercept func(w http.ResponseWriter, c *Call) bool
	nextID    int
	originals map[string]map[string]any // each interaction's original response, by token, as edited last
	posted    map[string]map[string]any // channel messages, by id
}

// NewServer starts a fake on loopback, closed when the test ends.
func NewServer(tb testing.TB) *Server {
	tb.Helper()
	s := &Server{changed: make(chan struct{}), files: make(map[string][]byte), nextID: 1000, originals: make(map[string]map[string]any), posted: make(map[string]map[string]any)}
	s.gateway = &Gateway{identified: make(chan struct{}), HeartbeatInterval: 500 * time.Millisecond}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	tb.Cleanup(func() {
		s.gateway.close()
		s.srv.Close()
	})
	return s
}

// Intercept lets fn answer calls first (a 429, a 404...): it returns true
// if it wrote the response. The call is recorded either way.
func (s *Server) Intercept(fn func(w http.ResponseWriter, c *Call) bool) {
	s.mu.Lock()
	s.intercept = fn
	s.mu.Unlock()
}

// AddFile serves data at the returned URL, as Discord's CDN serves attachments.
func (s *Server) AddFile(name string, data []byte) string {
	s.mu.Lock()
	s.files[name] = data
	s.mu.Unlock()
	return s.URL + "/files/" + url.PathEscape(name)
}

// Calls returns every call so far, in order (file downloads and gateway lookups excluded).
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.calls...)
}

// Wait returns the first call that matches, waiting up to timeout for it.
func (s *Server) Wait(tb testing.TB, timeout time.Duration, what string, match func(Call) bool) Call {
	tb.Helper()
	calls := s.WaitN(tb, timeout, what, 1, match)
	return calls[0]
}

// WaitN waits for n calls that match and returns every match so far.
func (s *Server) WaitN(tb testing.TB, timeout time.Duration, what string, n int, match func(Call) bool) []Call {
	tb.Helper()
	deadline := time.After(timeout)
	for {
		s.mu.Lock()
		var found []Call
		for _, c := range s.calls {
			if match(c) {
				found = append(found, c)
			}
		}
		changed := s.changed
		s.mu.Unlock()
		if len(found) >= n {
			return found
		}
		select {
		case <-changed:
		case <-deadline:
			tb.Fatalf("waited %s for %s; calls:\n%s", timeout, what, s.dump())
			return nil
		}
	}
}

func (s *Server) dump() string {
	var b strings.Builder
	for _, c := range s.Calls() {
		fmt.Fprintf(&b, "  %s %s\n", c.At.Format("15:04:05.000"), c)
	}
	return b.String()
}

var prefix = regexp.MustCompile(`^(/api)?(/v\d+)?`)

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	path := prefix.ReplaceAllString(r.URL.EscapedPath(), "")
	if p, err := url.PathUnescape(path); err == nil {
		path = p
	}
	switch {
	case r.Method == http.MethodGet && strings.HasPrefix(path, "/files/"):
		s.mu.Lock()
		data, ok := s.files[strings.TrimPrefix(path, "/files/")]
		s.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", http.DetectContentType(data))
		w.Write(data)
		return
	case path == "/gateway-ws" || path == "/gateway-ws/":
		s.gateway.serve(w, r)
		return
	case r.Method == http.MethodGet && (path == "/gateway" || path == "/gateway/bot"):
		writeJSON(w, http.StatusOK, map[string]any{"url": "ws" + strings.TrimPrefix(s.URL, "http") + "/gateway-ws", "shards": 1,
			"session_start_limit": map[string]int{"total": 1000, "remaining": 1000, "reset_after": 0, "max_concurrency": 1}})
		return
	}
	c := Call{Method: r.Method, Path: path, Query: r.URL.Query(), Auth: r.Header.Get("Authorization"), At: time.Now()}
	if err := readBody(r, &c); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"message": err.Error(), "code": 50035})
		return
	}
	s.mu.Lock()
	s.calls = append(s.calls, c)
	close(s.changed)
	s.changed = make(chan struct{})
	intercept := s.intercept
	s.mu.Unlock()
	if intercept != nil && intercept(w, &c) {
		return
	}
	s.answer(w, c)
}

// answer replies as Discord would.
func (s *Server) answer(w http.ResponseWriter, c Call) {
	parts := strings.Split(strings.Trim(c.Path, "/"), "/")
	switch {
	case c.Is("POST", `/interactions/[^/]+/[^/]+/callback`):
		w.WriteHeader(http.StatusNoContent)
	case c.Is("PATCH", `/webhooks/[^/]+/[^/]+/messages/[^/]+`):
		m := s.message(c, "", OriginalID(parts[2]))
		if parts[4] == "@original" {
			s.mu.Lock()
			s.originals[parts[2]] = m
			s.mu.Unlock()
		}
		writeJSON(w, http.StatusOK, m)
	case c.Is("GET", `/webhooks/[^/]+/[^/]+/messages/@original`):
		// The original response as edited last; an interaction only
		// deferred has an empty one.
		s.mu.Lock()
		m, ok := s.originals[parts[2]]
		s.mu.Unlock()
		if !ok {
			m = map[string]any{"id": OriginalID(parts[2]), "content": "", "attachments": []any{}}
		}
		writeJSON(w, http.StatusOK, m)
	case c.Is("GET", `/webhooks/[^/]+/[^/]+/messages/[^/]+`):
		writeJSON(w, http.StatusOK, s.message(c, "", parts[4]))
	case c.Is("DELETE", `/webhooks/[^/]+/[^/]+/messages/[^/]+`):
		if parts[4] == "@original" {
			s.mu.Lock()
			delete(s.originals, parts[2])
			s.mu.Unlock()
		}
		w.WriteHeader(http.StatusNoContent)
	case c.Is("POST", `/webhooks/[^/]+/[^/]+`):
		writeJSON(w, http.StatusOK, s.message(c, "", ""))
	case c.Is("POST", `/channels/[^/]+/messages/[^/]+/threads`):
		// A thread started from a message has the message's id.
		var body struct {
			Name string `json:"name"`
		}
		c.Decode(&body)
		if n := len([]rune(body.Name)); n < 1 || n > 100 {
			writeJSON(w, http.StatusBadRequest, map[string]any{"message": "Invalid Form Body", "code": 50035})
			return
		}
		writeJSON(w, http.StatusCreated, map[string]any{"id": parts[3], "type": 11, "parent_id": parts[1], "name": body.Name})
	case c.Is("POST", `/channels/[^/]+/messages`):
		m := s.message(c, parts[1], "")
		s.mu.Lock()
		s.posted[m["id"].(string)] = m
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, m)
	case c.Is("GET", `/channels/[^/]+/messages/[^/]+`):
		// Read by the bot's token: a message it posted, or an interaction's
		// original response (a normal message in the channel) as edited last.
		s.mu.Lock()
		m, ok := s.posted[parts[3]]
		for tok, o := range s.originals {
			if OriginalID(tok) == parts[3] {
				m, ok = o, true
			}
		}
		s.mu.Unlock()
		if !ok {
			writeJSON(w, http.StatusNotFound, map[string]any{"message": "Unknown Message", "code": 10008})
			return
		}
		writeJSON(w, http.StatusOK, m)
	case c.Is("POST", `/users/@me/channels`):
		var body struct {
			RecipientID string `json:"recipient_id"`
		}
		c.Decode(&body)
		writeJSON(w, http.StatusOK, map[string]any{"id": DMChannel(body.RecipientID), "type": 1})
	case c.Is("PUT", `/applications/[^/]+/commands`), c.Is("PUT", `/applications/[^/]+/guilds/[^/]+/commands`):
		var cmds []map[string]any
		if err := c.Decode(&cmds); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]any{"message": "Invalid Form Body", "code": 50035})
			return
		}
		if msg := checkCommands(cmds); msg != "" {
			writeJSON(w, http.StatusBadRequest, map[string]any{"message": "Invalid Form Body", "code": 50035, "errors": msg})
			return
		}
		for i, cmd := range cmds {
			cmd["id"] = strconv.Itoa(9000 + i)
			cmd["application_id"] = parts[1]
		}
		writeJSON(w, http.StatusOK, cmds)
	default:
		writeJSON(w, http.StatusNotFound, map[string]any{"message": "404: Not Found", "code": 0})
	}
}

// OriginalID is the message id the fake gives an interaction's original response.
func OriginalID(token string) string {
	sum := sha256.Sum256([]byte(token))
	return "7" + strconv.FormatUint(uint64(sum[0])<<16|uint64(sum[1])<<8|uint64(sum[2]), 10)
}

// DMChannel is the channel id the fake gives a user's DM.
func DMChannel(userID string) string { return "4" + userID }

func (s *Server) message(c Call, channel, id string) map[string]any {
	if id == "" {
		s.mu.Lock()
		s.nextID++
		id = strconv.Itoa(s.nextID)
		s.mu.Unlock()
	}
	var m map[string]any
	if json.Unmarshal(c.Payload, &m) != nil || m == nil {
		m = map[string]any{}
	}
	m["id"] = id
	if channel != "" {
		m["channel_id"] = channel
	}
	var atts []map[string]any
	for i, f := range c.Files {
		atts = append(atts, map[string]any{"id": strconv.Itoa(5000 + i), "filename": f.Name, "size": len(f.Data),
			"url": "https://cdn.example/" + f.Name, "content_type": f.ContentType})
	}
	m["attachments"] = atts
	delete(m, "message_reference")
	delete(m, "allowed_mentions")
	return m
}

func readBody(r *http.Request, c *Call) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
	if err != nil {
		return err
	}
	mt, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "multipart/form-data" {
		if len(body) > 0 {
			if !json.Valid(body) {
				return fmt.Errorf("body is not JSON")
			}
			c.Payload = body
		}
		return nil
	}
	mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		data, err := io.ReadAll(p)
		if err != nil {
			return err
		}
		if p.FormName() == "payload_json" {
			c.Payload = data
			continue
		}
		c.Files = append(c.Files, File{Field: p.FormName(), Name: p.FileName(), ContentType: p.Header.Get("Content-Type"), Data: data})
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// RateLimit answers a call with a 429 that asks to retry after d.
func RateLimit(w http.ResponseWriter, d time.Duration) {
	w.Header().Set("Retry-After", strconv.Itoa(int(d.Seconds()+0.999)))
	writeJSON(w, http.StatusTooManyRequests, map[string]any{"message": "You are being rate limited.", "retry_after": d.Seconds(), "global": false})
}

// Error answers a call with Discord's JSON error.
func Error(w http.ResponseWriter, status, code int, msg string) {
	writeJSON(w, status, map[string]any{"message": msg, "code": code})
}

// Keys returns a fresh Ed25519 key pair; the public key in hex is what the bot's public_key takes.
func Keys(tb testing.TB) (ed25519.PrivateKey, string) {
	tb.Helper()
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		tb.Fatal(err)
	}
	return priv, hex.EncodeToString(pub)
}

// Sign returns the headers Discord sends with an interaction posted at t.
func Sign(priv ed25519.PrivateKey, t time.Time, body []byte) http.Header {
	ts := strconv.FormatInt(t.Unix(), 10)
	sig := ed25519.Sign(priv, append([]byte(ts), body...))
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("X-Signature-Ed25519", hex.EncodeToString(sig))
	h.Set("X-Signature-Timestamp", ts)
	return h
}

// Post sends a signed interaction to the bot's endpoint and returns the
// status and body of the answer.
func Post(tb testing.TB, endpoint string, priv ed25519.PrivateKey, body []byte) (int, []byte) {
	tb.Helper()
	return PostAt(tb, endpoint, priv, time.Now(), body)
}

// PostAt is Post with the signature made at t.
func PostAt(tb testing.TB, endpoint string, priv ed25519.PrivateKey, t time.Time, body []byte) (int, []byte) {
	tb.Helper()
	req, err := http.NewRequest(http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	req.Header = Sign(priv, t, body)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("post interaction: %v", err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

// chatName is a CHAT_INPUT command's name as Discord takes it: lowercase
// letters, digits, - and _ (any script), 1 to 32.
var chatName = regexp.MustCompile(`^[-_\p{L}\p{N}\p{Devanagari}\p{Thai}]{1,32}$`)

// checkCommands applies Discord's rules for a bulk overwrite of commands:
// slash command names and descriptions; user and message commands take no
// description; at most 5 message commands; one name per type;
// integration_types of 0 (guild install) and 1 (user install); contexts
// of 0 (guild), 1 (bot DM) and 2 (private channel). "" if all is well.
func checkCommands(cmds []map[string]any) string {
	seen := map[string]bool{}
	messages := 0
	for i, c := range cmds {
		typ := 1.0
		if t, ok := c["type"].(float64); ok {
			typ = t
		}
		name, _ := c["name"].(string)
		desc, _ := c["description"].(string)
		switch typ {
		case 1:
			if !chatName.MatchString(name) || strings.ToLower(name) != name {
				return fmt.Sprintf("%d.name: APPLICATION_COMMAND_INVALID_NAME", i)
			}
			if n := len([]rune(desc)); n < 1 || n > 100 {
				return fmt.Sprintf("%d.description: BASE_TYPE_BAD_LENGTH", i)
			}
		case 2, 3:
			if n := len([]rune(name)); n < 1 || n > 32 {
				return fmt.Sprintf("%d.name: BASE_TYPE_BAD_LENGTH", i)
			}
			if desc != "" {
				return fmt.Sprintf("%d.description: APPLICATION_COMMAND_CONTEXT_MENU_DESCRIPTION_INVALID", i)
			}
			if typ == 3 {
				messages++
			}
		default:
			return fmt.Sprintf("%d.type: invalid", i)
		}
		key := fmt.Sprint(typ, "/", strings.ToLower(name))
		if seen[key] {
			return fmt.Sprintf("%d.name: APPLICATION_COMMANDS_DUPLICATE_NAME", i)
		}
		seen[key] = true
		for field, max := range map[string]float64{"integration_types": 1, "contexts": 2} {
			list, _ := c[field].([]any)
			for _, v := range list {
				if n, ok := v.(float64); !ok || n < 0 || n > max || n != float64(int(n)) {
					return fmt.Sprintf("%d.%s: invalid value %v", i, field, v)
				}
			}
		}
	}
	if messages > 5 {
		return "too many message commands (at most 5)"
	}
	return ""
}
