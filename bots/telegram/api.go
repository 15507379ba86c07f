package telegram

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"
)

// botAPI is the Bot API as the adapter uses it: the seam between the adapter
// and the SDK, so tests can put a fake behind it.
type botAPI interface {
	// do sends one request built with the SDK's configs and returns its result.
	do(ctx context.Context, c tgbotapi.Chattable) (json.RawMessage, error)
	// call sends a method with plain parameters, for fields the SDK lacks
	// (setWebhook's secret_token).
	call(ctx context.Context, method string, p tgbotapi.Params) (json.RawMessage, error)
	// download opens a file by the file_path getFile returned.
	download(ctx context.Context, path string) (io.ReadCloser, error)
}

// sdk is botAPI over go-telegram-bot-api. The SDK's calls take no context
// and its errors carry URLs with the token in them; sdk adds the one and
// removes the other.
type sdk struct {
	bot      *tgbotapi.BotAPI
	client   *http.Client
	endpoint string // the API base URL, without a trailing slash
	token    string
}

func newSDK(token, endpoint string, client *http.Client) *sdk {
	endpoint = strings.TrimRight(endpoint, "/")
	// Built by hand rather than with NewBotAPIWithClient, which calls getMe
	// at once and without a context; Run calls it.
	bot := &tgbotapi.BotAPI{Token: token, Client: client, Buffer: 100}
	bot.SetAPIEndpoint(endpoint + "/bot%s/%s")
	return &sdk{bot: bot, client: client, endpoint: endpoint, token: token}
}

// with returns a copy of the SDK's bot whose HTTP requests carry ctx.
func (s *sdk) with(ctx context.Context) *tgbotapi.BotAPI {
	b := *s.bot
	b.Client = ctxClient{ctx: ctx, client: s.client, token: s.token}
	return &b
}

func (s *sdk) do(ctx context.Context, c tgbotapi.Chattable) (json.RawMessage, error) {
	resp, err := s.with(ctx).Request(c)
	if err != nil {
		return nil, redact(err, s.token)
	}
	return resp.Result, nil
}

func (s *sdk) call(ctx context.Context, method string, p tgbotapi.Params) (json.RawMessage, error) {
	resp, err := s.with(ctx).MakeRequest(method, p)
	if err != nil {
		return nil, redact(err, s.token)
	}
	return resp.Result, nil
}

// download reads <endpoint>/file/bot<token>/<path>: the configured endpoint,
// not the SDK's FileEndpoint, which is fixed to the public server.
func (s *sdk) download(ctx context.Context, path string) (io.ReadCloser, error) {
	if strings.Contains(path, "..") {
		return nil, fmt.Errorf("download: bad file path %q", path)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.endpoint+"/file/bot"+s.token+"/"+strings.TrimLeft(path, "/"), nil)
	if err != nil {
		return nil, redact(fmt.Errorf("download: %w", err), s.token)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, redact(fmt.Errorf("download: %w", err), s.token)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("download %s: status %d", path, resp.StatusCode)
	}
	return resp.Body, nil
}

// ctxClient is the SDK's HTTPClient: it gives every request a context and
// strips the token from transport errors.
type ctxClient struct {
	ctx    context.Context
	client *http.Client
	token  string
}

func (c ctxClient) Do(req *http.Request) (*http.Response, error) {
	if err := addThread(req, threadOf(c.ctx)); err != nil {
		return nil, err
	}
	resp, err := c.client.Do(req.WithContext(c.ctx))
	if err != nil {
		return nil, redact(err, c.token)
	}
	return resp, nil
}

// redactedError is an error whose text had the token in it. It unwraps to
// the cause without the URL, so errors.Is(err, context.Canceled) still works.
type redactedError struct {
	msg   string
	cause error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.cause }

// redact returns err with every occurrence of token removed from its text.
func redact(err error, token string) error {
	if err == nil || token == "" {
		return err
	}
	msg := err.Error()
	escaped := url.PathEscape(token)
	if !strings.Contains(msg, token) && !strings.Contains(msg, escaped) {
		return err
	}
	var te *tgbotapi.Error
	if errors.As(err, &te) {
		// Keep the API error's type: its retry_after matters.
		clean := *te
		clean.Message = strings.ReplaceAll(strings.ReplaceAll(te.Message, token, "<token>"), escaped, "<token>")
		return &clean
	}
	var cause error
	var ue *url.Error
	if errors.As(err, &ue) {
		cause = ue.Err
	}
	if cause != nil && (strings.Contains(cause.Error(), token) || strings.Contains(cause.Error(), escaped)) {
		cause = nil
	}
	msg = strings.ReplaceAll(strings.ReplaceAll(msg, token, "<token>"), escaped, "<token>")
	return &redactedError{msg: msg, cause: cause}
}
