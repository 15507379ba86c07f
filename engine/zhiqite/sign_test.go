package zhiqite

import (
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/picbot/picbot/engine"
	"github.com/picbot/picbot/engine/zhiqite/zhiqitetest"
)

// captured is one request as the server saw it.
type captured struct {
	header http.Header
	path   string
	body   []byte
}

// captureServer answers every call with a "200" reply and hands over what it received.
func captureServer(t *testing.T, reply string) (*httptest.Server, chan captured) {
	t.Helper()
	got := make(chan captured, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- captured{r.Header.Clone(), r.URL.Path, b}
		io.WriteString(w, reply)
	}))
	t.Cleanup(srv.Close)
	return srv, got
}

func TestSignature(t *testing.T) {
	const (
		key    = "203803574"
		secret = "bK9jk5dBEtjauy6gXL7vZCPJ1fOy076H"
		nonce  = "ef6d9e05-0697-4818-b841-23c206585bc2"
		millis = int64(1700000000123)
	)
	srv, got := captureServer(t, `{"code":"200","msg":"success","data":{"id_task":"job-1","status":3,"desc":"排队中"}}`)
	v, err := New(Config{BaseURL: srv.URL + "/AIGCImgOpenServ/", AppKey: key, AppSecret: secret}, srv.Client(), nil)
	if err != nil {
		t.Fatal(err)
	}
	v.now = func() time.Time { return time.UnixMilli(millis) }
	v.nonce = func() string { return nonce }
	if _, err := v.Query(context.Background(), &engine.Job{TaskID: "job-1", Request: engine.Request{Kind: engine.KindDraw}}); err != nil {
		t.Fatal(err)
	}
	c := <-got
	body := `{"businessTaskId":"job-1"}`
	if string(c.body) != body {
		t.Fatalf("body %s, want %s", c.body, body)
	}
	// The string to sign, built by hand from the gateway's documentation.
	sum := md5.Sum([]byte(body))
	md5b64 := base64.StdEncoding.EncodeToString(sum[:])
	sts := "POST\n" +
		"application/json\n" +
		md5b64 + "\n" +
		"application/json;charset=UTF-8\n" +
		"\n" + // no Date
		"x-ca-key:" + key + "\n" +
		"x-ca-nonce:" + nonce + "\n" +
		"x-ca-signature-method:HmacSHA256\n" +
		"x-ca-timestamp:1700000000123\n" +
		"/AIGCImgOpenServ/saas/sd/v2/queryTaskInfo"
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(sts))
	want := base64.StdEncoding.EncodeToString(mac.Sum(nil))

	for name, wantV := range map[string]string{
		"X-Ca-Signature":         want,
		"X-Ca-Key":               key,
		"X-Ca-Nonce":             nonce,
		"X-Ca-Timestamp":         "1700000000123",
		"X-Ca-Signature-Method":  "HmacSHA256",
		"X-Ca-Signature-Headers": "x-ca-key,x-ca-nonce,x-ca-signature-method,x-ca-timestamp",
		"Content-MD5":            md5b64,
		"Content-Type":           "application/json;charset=UTF-8",
		"Accept":                 "application/json",
		"Authorization":          "",
	} {
		if g := c.header.Get(name); g != wantV {
			t.Errorf("%s = %q, want %q", name, g, wantV)
		}
	}
	if strings.Contains(strings.Join(flatten(c.header), "\n"), secret) {
		t.Error("the secret was sent")
	}
}

func flatten(h http.Header) []string {
	var out []string
	for k, vs := range h {
		out = append(out, k+": "+strings.Join(vs, ","))
	}
	return out
}

func TestStringToSignQuery(t *testing.T) {
	req, _ := http.NewRequest(http.MethodPost, "https://h/AIGCImgOpenServ/x?b=2&a=1&c=", nil)
	req.Header.Set("Content-Type", ContentType)
	req.Header.Set("X-Ca-Key", "k")
	got := StringToSign(req, []string{"X-Ca-Key"})
	want := "POST\n\n\napplication/json;charset=UTF-8\n\nx-ca-key:k\n/AIGCImgOpenServ/x?a=1&b=2&c"
	if got != want {
		t.Fatalf("got %q\nwant %q", got, want)
	}
}

func TestAppCodeHeader(t *testing.T) {
	srv, got := captureServer(t, `{"code":"200","msg":"success","data":{"task_id":"x"}}`)
	v, err := New(Config{BaseURL: srv.URL + "/AIGCImgOpenServ/", AppCode: "c0de"}, srv.Client(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Query(context.Background(), &engine.Job{TaskID: "x", Request: engine.Request{Kind: engine.KindUpscale}}); err != nil {
		t.Fatal(err)
	}
	c := <-got
	if g := c.header.Get("Authorization"); g != "APPCODE c0de" {
		t.Errorf("Authorization %q", g)
	}
	if c.header.Get("X-Ca-Signature") != "" || c.header.Get("X-Ca-Key") != "" {
		t.Error("APPCODE calls must not carry a signature")
	}
	if c.path != "/AIGCImgOpenServ/saas/tool/enhance/queryTask" {
		t.Errorf("path %s", c.path)
	}
}

// The fake recomputes the signature independently: a right secret passes,
// a wrong one and a replayed nonce do not.
func TestSignatureAgainstFake(t *testing.T) {
	fake := zhiqitetest.New(zhiqitetest.Options{AppKey: "key", AppSecret: "right-secret"})
	defer fake.Close()
	ctx := context.Background()
	job := &engine.Job{TaskID: "nope", Request: engine.Request{Kind: engine.KindDraw}}

	good, _ := New(Config{BaseURL: fake.URL, AppKey: "key", AppSecret: "right-secret"}, nil, nil)
	// The fake does not know the task: ENOTFOUND means the call passed the gateway.
	if _, err := good.Query(ctx, job); engine.ErrorCode(err) != engine.ENOTFOUND {
		t.Fatalf("good signature: %v", err)
	}

	bad, _ := New(Config{BaseURL: fake.URL, AppKey: "key", AppSecret: "wrong-secret"}, nil, nil)
	_, err := bad.Query(ctx, job)
	if err == nil || !strings.Contains(err.Error(), "Invalid Signature") || engine.ErrorCode(err) != engine.EINTERNAL {
		t.Fatalf("bad signature: %v", err)
	}
	if strings.Contains(err.Error(), "wrong-secret") {
		t.Fatal("the secret leaked into an error")
	}

	replay, _ := New(Config{BaseURL: fake.URL, AppKey: "key", AppSecret: "right-secret"}, nil, nil)
	replay.nonce = func() string { return "same-nonce" }
	replay.Query(ctx, job)
	if _, err := replay.Query(ctx, job); err == nil || !strings.Contains(err.Error(), "Nonce Used") {
		t.Fatalf("replayed nonce: %v", err)
	}
}

func TestNonceIsUUID(t *testing.T) {
	a, b := newNonce(), newNonce()
	if a == b || len(a) != 36 || a[14] != '4' || strings.Count(a, "-") != 4 {
		t.Fatalf("nonces %q %q", a, b)
	}
	if _, err := url.Parse(a); err != nil {
		t.Fatal(err)
	}
}
