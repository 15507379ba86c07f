package showapi_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"testing"
	"time"

	"github.com/picbot/picbot/engine/showapi"
)

const (
	testKey    = "test-key-4f5f626b"
	testSecret = "test-secret-0123456789"
)

var signDate = time.Date(2023, 8, 15, 1, 58, 53, 0, time.UTC)

// byHand signs a canonical request written out in full in the test, the
// way Huawei's document describes it, independently of the package.
func byHand(canonical string) string {
	sum := sha256.Sum256([]byte(canonical))
	mac := hmac.New(sha256.New, []byte(testSecret))
	mac.Write([]byte("SDK-HMAC-SHA256\n20230815T015853Z\n" + hex.EncodeToString(sum[:])))
	return hex.EncodeToString(mac.Sum(nil))
}

func hexSHA(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func TestSign(t *testing.T) {
	for _, tc := range []struct {
		name      string
		method    string
		url       string
		body      string
		canonical string
		// known is the signature computed once by an independent implementation
		// (Python's hmac and hashlib), to pin byHand itself.
		known string
	}{
		{
			name:   "GetWithQuery",
			method: http.MethodGet,
			url:    "https://art2.apistore.huaweicloud.com/yourtaskresult?task_id=sk202308152miohYCStMIdFRrvZGEfc",
			canonical: "GET\n/yourtaskresult/\ntask_id=sk202308152miohYCStMIdFRrvZGEfc\n" +
				"host:art2.apistore.huaweicloud.com\nx-sdk-date:20230815T015853Z\n\nhost;x-sdk-date\n" + hexSHA(nil),
			known: "7c5be407007db93c6c7abfb319e26743f3585e8ca673d3cfb90090acc49bd0a1",
		},
		{
			// Query values sorted, a space as %20 (not +), UTF-8 as upper-case %XX; a body.
			name:   "PostEscapes",
			method: http.MethodPost,
			url:    "http://127.0.0.1:8080/createtask?x=%E7%8B%90&x=a+b",
			body:   "batch_size=1&prompt=a+red+fox",
			canonical: "POST\n/createtask/\nx=a%20b&x=%E7%8B%90\n" +
				"host:127.0.0.1:8080\nx-sdk-date:20230815T015853Z\n\nhost;x-sdk-date\n" + hexSHA([]byte("batch_size=1&prompt=a+red+fox")),
			known: "6ddfec2e5b5f8530d69e0c24b4b6f0f008511d9832211a6cb24351bf026c7a50",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, tc.url, bytes.NewReader([]byte(tc.body)))
			if err != nil {
				t.Fatal(err)
			}
			showapi.Sign(req, []byte(tc.body), testKey, testSecret, signDate.In(time.FixedZone("CST", 8*3600)))
			if got, want := req.Header.Get("X-Sdk-Date"), "20230815T015853Z"; got != want {
				t.Fatalf("X-Sdk-Date %q, want %q (UTC)", got, want)
			}
			if got := byHand(tc.canonical); got != tc.known {
				t.Fatalf("the test's own signature %s differs from the known value %s", got, tc.known)
			}
			want := "SDK-HMAC-SHA256 Access=" + testKey + ", SignedHeaders=host;x-sdk-date, Signature=" + tc.known
			if got := req.Header.Get("Authorization"); got != want {
				t.Fatalf("Authorization\n got %s\nwant %s", got, want)
			}
			access, signed, sig, err := showapi.ParseAuthorization(req.Header.Get("Authorization"))
			if err != nil || access != testKey || len(signed) != 2 || sig != tc.known {
				t.Fatalf("ParseAuthorization: %q %q %q %v", access, signed, sig, err)
			}
		})
	}
}

// TestSignChangesWithEverything guards against a canonical request that
// leaves a part out: changing any input changes the signature.
func TestSignChangesWithEverything(t *testing.T) {
	sign := func(method, url, body, secret string, at time.Time) string {
		req, _ := http.NewRequest(method, url, bytes.NewReader([]byte(body)))
		showapi.Sign(req, []byte(body), testKey, secret, at)
		return req.Header.Get("Authorization")
	}
	base := sign("POST", "http://h/createtask?a=1", "x=1", testSecret, signDate)
	for name, other := range map[string]string{
		"method": sign("PUT", "http://h/createtask?a=1", "x=1", testSecret, signDate),
		"host":   sign("POST", "http://g/createtask?a=1", "x=1", testSecret, signDate),
		"path":   sign("POST", "http://h/createtasks?a=1", "x=1", testSecret, signDate),
		"query":  sign("POST", "http://h/createtask?a=2", "x=1", testSecret, signDate),
		"body":   sign("POST", "http://h/createtask?a=1", "x=2", testSecret, signDate),
		"secret": sign("POST", "http://h/createtask?a=1", "x=1", testSecret+"x", signDate),
		"date":   sign("POST", "http://h/createtask?a=1", "x=1", testSecret, signDate.Add(time.Second)),
	} {
		if other == base {
			t.Errorf("changing the %s leaves the signature alone", name)
		}
	}
	if sign("POST", "http://h/createtask?a=1", "x=1", testSecret, signDate) != base {
		t.Error("the same request signs differently")
	}
}
