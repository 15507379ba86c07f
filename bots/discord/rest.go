package discord

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/bwmarrin/discordgo"
)

// rest is what the bot asks of Discord's REST API: the test seam around
// discordgo. Every call takes its context's deadline as a hard limit and
// never retries on its own; errors are *apiError (or wrap one) and never
// contain an interaction token.
type rest interface {
	// respond answers an interaction through its callback endpoint (gateway mode).
	respond(ctx context.Context, id, token string, r *response) error
	// editOriginal replaces the interaction's original response.
	editOriginal(ctx context.Context, app, token string, m *message) (*discordgo.Message, error)
	// getOriginal reads the interaction's original response as Discord has it.
	getOriginal(ctx context.Context, app, token string) (*discordgo.Message, error)
	// channelMessage reads a message by the bot's own token: the original
	// response once the interaction token can no longer read it.
	channelMessage(ctx context.Context, channelID, messageID string) (*discordgo.Message, error)
	// deleteOriginal removes the interaction's original response.
	deleteOriginal(ctx context.Context, app, token string) error
	// followup posts a further message for the interaction (ephemeral with flag 64).
	followup(ctx context.Context, app, token string, m *message) (*discordgo.Message, error)
	// send posts a normal message in a channel.
	send(ctx context.Context, channelID string, m *message) (*discordgo.Message, error)
	// dmChannel opens (or finds) the direct-message channel with a user.
	dmChannel(ctx context.Context, userID string) (string, error)
	// startThread opens a thread on a message and returns its channel id.
	startThread(ctx context.Context, channelID, messageID, name string) (string, error)
	// overwriteCommands replaces the application's commands in a guild, or globally for "".
	overwriteCommands(ctx context.Context, app, guild string, cmds []*discordgo.ApplicationCommand) error
}

// response is the first answer to an interaction: in the HTTP body or through the callback.
type response struct {
	Type discordgo.InteractionResponseType `json:"type"`
	Data *responseData                     `json:"data,omitempty"`
}

type responseData struct {
	Content         string                                       `json:"content,omitempty"`
	Flags           discordgo.MessageFlags                       `json:"flags,omitempty"`
	AllowedMentions *discordgo.MessageAllowedMentions            `json:"allowed_mentions,omitempty"`
	Choices         *[]*discordgo.ApplicationCommandOptionChoice `json:"choices,omitempty"`
}

// message is a message the bot posts or edits. Content, embeds, components
// and attachments are always sent, so an edit states the whole message.
type message struct {
	Content         string                            `json:"content"`
	Embeds          []*discordgo.MessageEmbed         `json:"embeds"`
	Components      []discordgo.MessageComponent      `json:"components"`
	Attachments     []attachment                      `json:"attachments"`
	Flags           discordgo.MessageFlags            `json:"flags,omitempty"`
	AllowedMentions *discordgo.MessageAllowedMentions `json:"allowed_mentions"`
	Reference       *discordgo.MessageReference       `json:"message_reference,omitempty"`
	files           []upload
}

// attachment names a new file in an edit; Discord keeps only the attachments listed.
type attachment struct {
	ID       string `json:"id"`
	Filename string `json:"filename"`
}

// upload is a file sent with a message.
type upload struct {
	Name string
	Mime string
	Data []byte
}

func (m *message) attach(u upload) {
	m.Attachments = append(m.Attachments, attachment{ID: fmt.Sprint(len(m.files)), Filename: u.Name})
	m.files = append(m.files, u)
}

// full gives the message empty lists rather than nulls, so an edit clears
// the embeds, buttons and files it does not state.
func (m *message) full() *message {
	if m.Embeds == nil {
		m.Embeds = []*discordgo.MessageEmbed{}
	}
	if m.Components == nil {
		m.Components = []discordgo.MessageComponent{}
	}
	if m.Attachments == nil {
		m.Attachments = []attachment{}
	}
	return m
}

func (m *message) size() int64 {
	var n int64
	for _, f := range m.files {
		n += int64(len(f.Data))
	}
	return n
}

// noMentions lets no text the bot posts ping anyone (prompts are users' text).
func noMentions() *discordgo.MessageAllowedMentions {
	return &discordgo.MessageAllowedMentions{Parse: []discordgo.AllowedMentionType{}}
}

// apiError is a failed Discord call, safe to log: no token in it.
type apiError struct {
	Op         string
	Status     int           // HTTP status; 0 for a network failure
	Code       int           // Discord's JSON error code, when given
	RetryAfter time.Duration // for 429
	Msg        string
	Err        error // the cause, when it carries no secret (context errors)
}

func (e *apiError) Error() string {
	s := e.Op
	if e.Status != 0 {
		s += fmt.Sprintf(": HTTP %d", e.Status)
	}
	if e.Code != 0 {
		s += fmt.Sprintf(" (code %d)", e.Code)
	}
	if e.RetryAfter > 0 {
		s += fmt.Sprintf(", retry after %s", e.RetryAfter)
	}
	if e.Msg != "" {
		s += ": " + e.Msg
	}
	return s
}

func (e *apiError) Unwrap() error { return e.Err }

// Discord JSON error codes the bot acts on.
const (
	codeUnknownChannel     = 10003
	codeUnknownMessage     = 10008
	codeUnknownWebhook     = 10015
	codeUnknownInteraction = 10062
	codeMissingAccess      = 50001
	codeCannotDM           = 50007
	codeMissingPermissions = 50013
	codeTooLarge           = 40005
	codeInvalidToken       = 50027
)

// tokenGone reports whether the interaction token no longer works.
func tokenGone(err error) bool {
	var e *apiError
	if !errors.As(err, &e) {
		return false
	}
	switch e.Code {
	case codeUnknownWebhook, codeUnknownInteraction, codeInvalidToken, codeUnknownMessage:
		return true
	}
	return e.Status == http.StatusUnauthorized || e.Status == http.StatusNotFound
}

// rateLimited reports whether err is a 429, and for how long.
func rateLimited(err error) (time.Duration, bool) {
	var e *apiError
	if errors.As(err, &e) && e.Status == http.StatusTooManyRequests {
		return e.RetryAfter, true
	}
	return 0, false
}

// tooLarge reports whether Discord refused the upload's size.
func tooLarge(err error) bool {
	var e *apiError
	return errors.As(err, &e) && (e.Status == http.StatusRequestEntityTooLarge || e.Code == codeTooLarge)
}

// forbidden reports whether the bot may never post there.
func forbidden(err error) bool {
	var e *apiError
	if !errors.As(err, &e) {
		return false
	}
	switch e.Code {
	case codeUnknownChannel, codeMissingAccess, codeMissingPermissions, codeCannotDM:
		return true
	}
	return e.Status == http.StatusForbidden
}

// session implements rest with a discordgo session.
type session struct {
	s *discordgo.Session
}

// newSession returns a discordgo session whose REST calls go to apiBase
// (Discord's own when empty) through proxy (the environment's when empty).
func newSession(token, apiBase, proxy string) (*discordgo.Session, error) {
	if !strings.HasPrefix(token, "Bot ") {
		token = "Bot " + token
	}
	s, err := discordgo.New(token)
	if err != nil {
		return nil, fmt.Errorf("discord session: %w", err)
	}
	proxyFunc := http.ProxyFromEnvironment
	if proxy != "" {
		u, err := url.Parse(proxy)
		if err != nil {
			return nil, fmt.Errorf("discord proxy: %w", err)
		}
		proxyFunc = http.ProxyURL(u)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = proxyFunc
	var rt http.RoundTripper = tr
	if base := strings.TrimRight(apiBase, "/"); base != "" && base != discordAPI {
		if _, err := url.Parse(base); err != nil {
			return nil, fmt.Errorf("discord api base: %w", err)
		}
		from := discordAPI
		if versioned.MatchString(base) {
			// A base that names its version replaces discordgo's too.
			from = strings.TrimSuffix(discordgo.EndpointAPI, "/")
		}
		rt = &rewrite{from: from, to: base, next: tr}
	}
	s.Client = &http.Client{Transport: rt, Timeout: 2 * time.Minute}
	s.Dialer.Proxy = proxyFunc
	s.ShouldRetryOnRateLimit = false
	s.MaxRestRetries = 0
	s.StateEnabled = false
	s.Identify.Intents = discordgo.IntentsNone
	s.LogLevel = discordgo.LogError
	return s, nil
}

// discordAPI is the prefix of every REST URL discordgo builds.
var discordAPI = strings.TrimSuffix(discordgo.EndpointDiscord, "/") + "/api"

// versioned matches an API base that ends in a version: ".../api/v10".
var versioned = regexp.MustCompile(`/v[0-9]+$`)

// rewrite sends requests for Discord's API to another base URL: discordgo
// fixes its endpoints at init, so tests and API proxies change the URL here.
type rewrite struct {
	from, to string
	next     http.RoundTripper
}

func (t *rewrite) RoundTrip(r *http.Request) (*http.Response, error) {
	u := r.URL.String()
	if !strings.HasPrefix(u, t.from+"/") {
		return t.next.RoundTrip(r)
	}
	nu, err := url.Parse(t.to + strings.TrimPrefix(u, t.from))
	if err != nil {
		return nil, err
	}
	r2 := r.Clone(r.Context())
	r2.URL = nu
	r2.Host = nu.Host
	return t.next.RoundTrip(r2)
}

// call makes one request, through the session's rate limiter, so that the
// buckets Discord announces in its X-RateLimit headers hold for every later
// call on the same route. It never sleeps on a bucket: a call the limiter
// holds back fails at once as a 429 with the wait, unsent, and the caller
// decides (an interaction edit must not wait past its token; a delivery is
// tried again later without a worker waiting).
func (r *session) call(ctx context.Context, op, method, uri string, data any, files []upload) ([]byte, error) {
	var (
		ct   = "application/json"
		body []byte
		err  error
	)
	switch {
	case len(files) > 0:
		fs := make([]*discordgo.File, len(files))
		for i, f := range files {
			fs[i] = &discordgo.File{Name: f.Name, ContentType: f.Mime, Reader: bytes.NewReader(f.Data)}
		}
		ct, body, err = discordgo.MultipartBodyWithJSON(data, fs)
	case data != nil:
		body, err = json.Marshal(data)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: encode: %w", op, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, &apiError{Op: op, Msg: "not sent", Err: err}
	}
	bucket, wait := tryLockBucket(r.s.Ratelimiter, uri)
	if bucket == nil {
		return nil, &apiError{Op: op, Status: http.StatusTooManyRequests, RetryAfter: wait, Msg: "held back by the rate limit bucket"}
	}
	opts := []discordgo.RequestOption{discordgo.WithContext(ctx), discordgo.WithRetryOnRatelimit(false), discordgo.WithRestRetries(0)}
	out, err := r.s.RequestWithLockedBucket(method, uri, ct, body, bucket, 0, opts...)
	if err != nil {
		return nil, toAPIError(ctx, op, err)
	}
	return out, nil
}

// tryLockBucket is discordgo's LockBucket without its sleep: it takes the
// route's bucket (keyed as discordgo keys it, the URL without its query)
// when a request may go now, and otherwise returns nil and how long to wait.
func tryLockBucket(rl *discordgo.RateLimiter, uri string) (*discordgo.Bucket, time.Duration) {
	b := rl.GetBucket(strings.SplitN(uri, "?", 2)[0])
	b.Lock()
	if wait := rl.GetWaitTime(b, 1); wait > 0 {
		b.Unlock()
		return nil, wait
	}
	b.Remaining--
	return b, 0
}

// toAPIError turns discordgo's errors, whose texts may hold the URL and so
// the token, into an apiError that does not.
func toAPIError(ctx context.Context, op string, err error) error {
	var rl *discordgo.RateLimitError
	if errors.As(err, &rl) && rl.RateLimit != nil && rl.TooManyRequests != nil {
		return &apiError{Op: op, Status: http.StatusTooManyRequests, RetryAfter: rl.RetryAfter, Msg: rl.Message}
	}
	var re *discordgo.RESTError
	if errors.As(err, &re) && re.Response != nil {
		e := &apiError{Op: op, Status: re.Response.StatusCode}
		if re.Message != nil {
			e.Code, e.Msg = re.Message.Code, re.Message.Message
		}
		return e
	}
	e := &apiError{Op: op, Msg: "request failed"}
	if ctx.Err() != nil {
		e.Err = ctx.Err()
	} else if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		e.Err = context.DeadlineExceeded
	}
	if e.Err == nil {
		// A network error's text names the URL: keep only what follows it.
		msg := err.Error()
		if i := strings.LastIndex(msg, "\": "); i >= 0 {
			msg = msg[i+3:]
		}
		e.Msg = "request failed: " + msg
	}
	return e
}

func esc(token string) string { return url.PathEscape(token) }

func (r *session) respond(ctx context.Context, id, token string, resp *response) error {
	_, err := r.call(ctx, "interaction callback", http.MethodPost, discordgo.EndpointInteractionResponse(id, esc(token)), resp, nil)
	return err
}

func (r *session) editOriginal(ctx context.Context, app, token string, m *message) (*discordgo.Message, error) {
	out, err := r.call(ctx, "edit original response", http.MethodPatch, discordgo.EndpointWebhookMessage(app, esc(token), "@original"), m.full(), m.files)
	if err != nil {
		return nil, err
	}
	return decodeMessage(out)
}

func (r *session) getOriginal(ctx context.Context, app, token string) (*discordgo.Message, error) {
	out, err := r.call(ctx, "get original response", http.MethodGet, discordgo.EndpointWebhookMessage(app, esc(token), "@original"), nil, nil)
	if err != nil {
		return nil, err
	}
	return decodeMessage(out)
}

func (r *session) channelMessage(ctx context.Context, channelID, messageID string) (*discordgo.Message, error) {
	out, err := r.call(ctx, "read channel message", http.MethodGet, discordgo.EndpointChannelMessage(channelID, messageID), nil, nil)
	if err != nil {
		return nil, err
	}
	return decodeMessage(out)
}

func (r *session) deleteOriginal(ctx context.Context, app, token string) error {
	_, err := r.call(ctx, "delete original response", http.MethodDelete, discordgo.EndpointWebhookMessage(app, esc(token), "@original"), nil, nil)
	return err
}

func (r *session) followup(ctx context.Context, app, token string, m *message) (*discordgo.Message, error) {
	out, err := r.call(ctx, "follow-up message", http.MethodPost, discordgo.EndpointWebhookToken(app, esc(token))+"?wait=true", m.full(), m.files)
	if err != nil {
		return nil, err
	}
	return decodeMessage(out)
}

func (r *session) send(ctx context.Context, channelID string, m *message) (*discordgo.Message, error) {
	out, err := r.call(ctx, "channel message", http.MethodPost, discordgo.EndpointChannelMessages(channelID), m.full(), m.files)
	if err != nil {
		return nil, err
	}
	return decodeMessage(out)
}

func (r *session) dmChannel(ctx context.Context, userID string) (string, error) {
	out, err := r.call(ctx, "open DM", http.MethodPost, discordgo.EndpointUserChannels("@me"), map[string]string{"recipient_id": userID}, nil)
	if err != nil {
		return "", err
	}
	var ch discordgo.Channel
	if err := json.Unmarshal(out, &ch); err != nil || ch.ID == "" {
		return "", fmt.Errorf("open DM: unreadable reply: %v", err)
	}
	return ch.ID, nil
}

func (r *session) startThread(ctx context.Context, channelID, messageID, name string) (string, error) {
	body := map[string]any{"name": name, "auto_archive_duration": 1440}
	out, err := r.call(ctx, "start thread", http.MethodPost, discordgo.EndpointChannelMessageThread(channelID, messageID), body, nil)
	if err != nil {
		return "", err
	}
	var ch discordgo.Channel
	if err := json.Unmarshal(out, &ch); err != nil || ch.ID == "" {
		return "", fmt.Errorf("start thread: unreadable reply: %v", err)
	}
	return ch.ID, nil
}

func (r *session) overwriteCommands(ctx context.Context, app, guild string, cmds []*discordgo.ApplicationCommand) error {
	uri := discordgo.EndpointApplicationGlobalCommands(app)
	if guild != "" {
		uri = discordgo.EndpointApplicationGuildCommands(app, guild)
	}
	_, err := r.call(ctx, "register commands", http.MethodPut, uri, cmds, nil)
	return err
}

func decodeMessage(b []byte) (*discordgo.Message, error) {
	// The call succeeded: a reply without a readable message only costs the id.
	var m discordgo.Message
	if json.Unmarshal(b, &m) != nil {
		return &discordgo.Message{}, nil
	}
	return &m, nil
}
