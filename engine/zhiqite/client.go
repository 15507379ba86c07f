package zhiqite

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/picbot/picbot/engine"
)

// ContentType is what every call sends; the seed warns that without it
// "data may come back abnormal".
const ContentType = "application/json;charset=UTF-8"

// SignatureMethod is the API gateway signature the adapter uses.
const SignatureMethod = "HmacSHA256"

// signedHeaders are the X-Ca-* headers covered by the signature, in the
// gateway's order (sorted), lower-case as the gateway compares them.
var signedHeaders = []string{"x-ca-key", "x-ca-nonce", "x-ca-signature-method", "x-ca-timestamp"}

// refusal is a reply whose code is not "200": the vendor read the call and said no.
type refusal struct {
	Endpoint string
	Code     string
	Msg      string
}

func (r *refusal) Error() string {
	return fmt.Sprintf("zhiqite %s: code %s: %s", r.Endpoint, r.Code, r.Msg)
}

// lostError is a failure after which the vendor may have acted on the call
// (no reply, or a reply that could not be read), so a submission may exist.
type lostError struct{ err error }

func (e *lostError) Error() string { return e.err.Error() }
func (e *lostError) Unwrap() error { return e.err }

// call POSTs in as JSON to endpoint (relative to the base URL) and decodes a
// "200" reply's data into out (nil: ignore data). It returns *refusal for
// other codes, an EUNAVAILABLE engine error when the purchased calls are used
// up, and plain errors for everything else.
func (v *Vendor) call(ctx context.Context, endpoint string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("zhiqite %s: encode: %w", endpoint, err)
	}
	u := v.base.JoinPath(endpoint)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("zhiqite %s: %w", endpoint, err)
	}
	v.authorize(req, body)
	resp, err := v.client.Do(req)
	if err != nil {
		// The request may have reached the vendor; the reply did not come back.
		return &lostError{fmt.Errorf("zhiqite %s: %w", endpoint, v.redactErr(err))}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, v.maxReply+1))
	if err != nil {
		return &lostError{fmt.Errorf("zhiqite %s: read reply: %w", endpoint, err)}
	}
	if int64(len(data)) > v.maxReply {
		return fmt.Errorf("zhiqite %s: reply larger than %d bytes", endpoint, v.maxReply)
	}
	if resp.StatusCode != http.StatusOK {
		return v.httpError(endpoint, resp, data)
	}
	var env envelope
	if err := json.Unmarshal(data, &env); err != nil {
		return &lostError{fmt.Errorf("zhiqite %s: bad JSON reply: %w", endpoint, err)}
	}
	if code := strings.TrimSpace(string(env.Code)); code != "200" {
		return &refusal{Endpoint: endpoint, Code: v.redact(code), Msg: v.redact(env.Msg)}
	}
	if out == nil || !env.hasData() {
		if out != nil {
			return errNoData
		}
		return nil
	}
	if err := json.Unmarshal(env.Data, out); err != nil {
		return &lostError{fmt.Errorf("zhiqite %s: bad data in reply: %w", endpoint, err)}
	}
	return nil
}

// ErrQuotaExhausted is in the chain of an error for Aliyun's 403 "Quota
// Exhausted": the account's purchased calls are used up (an account pool
// parks the account).
var ErrQuotaExhausted = errors.New("quota exhausted")

// errNoData is a "200" reply without data.
var errNoData = errors.New("reply has no data")

// httpError maps a non-200 HTTP status. The Aliyun gateway explains its own
// refusals in X-Ca-Error-Message; "Quota Exhausted" means the purchased calls are used up.
func (v *Vendor) httpError(endpoint string, resp *http.Response, body []byte) error {
	msg := resp.Header.Get("X-Ca-Error-Message")
	if msg == "" {
		msg = strings.TrimSpace(string(body))
	}
	msg = v.redact(msg)
	if len(msg) > 300 {
		msg = msg[:300] + "…"
	}
	err := fmt.Errorf("zhiqite %s: HTTP %d: %s", endpoint, resp.StatusCode, msg)
	if resp.StatusCode == http.StatusForbidden && strings.Contains(strings.ToLower(msg), "quota exhausted") {
		return engine.Wrap(engine.EUNAVAILABLE, fmt.Errorf("%w: %w", ErrQuotaExhausted, err), "The image service's purchased calls are used up.", "绘图服务已购买的调用次数已用完。")
	}
	if resp.StatusCode == http.StatusBadGateway || resp.StatusCode == http.StatusGatewayTimeout {
		// The gateway gave up waiting for the backend, which may still act on the call.
		return &lostError{err}
	}
	return err
}

// authorize adds the headers every call needs: the content type and either
// the APPCODE or the gateway signature.
func (v *Vendor) authorize(req *http.Request, body []byte) {
	req.Header.Set("Content-Type", ContentType)
	// An explicit Accept: some clients add */* when it is empty, which breaks the signature.
	req.Header.Set("Accept", "application/json")
	if v.cfg.AccessKeyID != "" {
		req.Header.Set("X-Request-req-accessKeyId", v.cfg.AccessKeyID)
	}
	if v.cfg.AccessKeySecret != "" {
		req.Header.Set("X-Request-req-accessKeySecret", v.cfg.AccessKeySecret)
	}
	if v.cfg.AppKey == "" {
		req.Header.Set("Authorization", "APPCODE "+v.cfg.AppCode)
		return
	}
	sum := md5.Sum(body)
	req.Header.Set("Content-MD5", base64.StdEncoding.EncodeToString(sum[:]))
	req.Header.Set("X-Ca-Key", v.cfg.AppKey)
	req.Header.Set("X-Ca-Timestamp", strconv.FormatInt(v.now().UnixMilli(), 10))
	req.Header.Set("X-Ca-Nonce", v.nonce())
	req.Header.Set("X-Ca-Signature-Method", SignatureMethod)
	req.Header.Set("X-Ca-Signature-Headers", strings.Join(signedHeaders, ","))
	req.Header.Set("X-Ca-Signature", Sign(v.cfg.AppSecret, StringToSign(req, signedHeaders)))
}

// StringToSign is the Aliyun API gateway's string to sign for req:
//
//	METHOD \n Accept \n Content-MD5 \n Content-Type \n Date \n
//	name:value \n for each signed header, sorted by name
//	path, then ?query sorted by key
//
// Empty values keep their line. The body counts only through Content-MD5.
// The fake server uses it too, to check the adapter's signature.
func StringToSign(req *http.Request, headers []string) string {
	var b strings.Builder
	b.WriteString(strings.ToUpper(req.Method) + "\n")
	for _, h := range []string{"Accept", "Content-MD5", "Content-Type", "Date"} {
		b.WriteString(req.Header.Get(h) + "\n")
	}
	names := make([]string, 0, len(headers))
	for _, h := range headers {
		if h = strings.ToLower(strings.TrimSpace(h)); h != "" {
			names = append(names, h)
		}
	}
	sort.Strings(names)
	for _, h := range names {
		b.WriteString(h + ":" + req.Header.Get(h) + "\n")
	}
	b.WriteString(pathAndQuery(req.URL))
	return b.String()
}

// pathAndQuery is the URL part of the string to sign: the path, then the
// query parameters sorted by key ("k=v", or "k" alone when the value is empty).
func pathAndQuery(u *url.URL) string {
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	q := u.Query()
	if len(q) == 0 {
		return path
	}
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		if val := q.Get(k); val != "" {
			parts = append(parts, k+"="+val)
		} else {
			parts = append(parts, k)
		}
	}
	return path + "?" + strings.Join(parts, "&")
}

// Sign is base64(HMAC-SHA256(secret, s)).
func Sign(secret, s string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(s))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// newNonce returns a random UUID (version 4), as X-Ca-Nonce wants.
func newNonce() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// redact removes the configured secrets from text that came from outside,
// so that a gateway echoing a credential cannot put it in a log.
func (v *Vendor) redact(s string) string {
	for _, secret := range []string{v.cfg.AppCode, v.cfg.AppSecret, v.cfg.AccessKeySecret} {
		if len(secret) >= 4 {
			s = strings.ReplaceAll(s, secret, "***")
		}
	}
	return s
}

func (v *Vendor) redactErr(err error) error {
	if s := err.Error(); v.redact(s) != s {
		return errors.New(v.redact(s))
	}
	return err
}
