package showapi

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
)

// Huawei API Gateway's AK/SK signing ("APP authentication" with a key and a secret).
const (
	Algorithm      = "SDK-HMAC-SHA256"
	DateHeader     = "X-Sdk-Date"
	DateFormat     = "20060102T150405Z"
	AppCodeHeader  = "X-Apig-AppCode"
	signedHeaders  = "host;x-sdk-date"
	authorizationH = "Authorization"
)

// Sign adds X-Sdk-Date and Authorization to req, signed with key and secret
// at time now. body must be the exact bytes req sends.
//
// It signs host and x-sdk-date only: the gateway checks exactly the headers
// SignedHeaders lists, and a proxy may rewrite others (content-type) on the way.
func Sign(req *http.Request, body []byte, key, secret string, now time.Time) {
	date := now.UTC().Format(DateFormat)
	req.Header.Set(DateHeader, date)
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	canonical := CanonicalRequest(req.Method, req.URL, map[string]string{"host": host, "x-sdk-date": date}, body)
	sig := Signature(secret, StringToSign(date, canonical))
	req.Header.Set(authorizationH, fmt.Sprintf("%s Access=%s, SignedHeaders=%s, Signature=%s", Algorithm, key, signedHeaders, sig))
}

// CanonicalRequest is the text the gateway hashes: method, the URI ending
// in "/", the sorted query, each signed header as "name:value\n", the signed
// header names, and the hex SHA-256 of the body. headers maps lower-case
// names to values; every one of them is signed.
func CanonicalRequest(method string, u *url.URL, headers map[string]string, body []byte) string {
	names := make([]string, 0, len(headers))
	for k := range headers {
		names = append(names, k)
	}
	sort.Strings(names)
	var h strings.Builder
	for _, k := range names {
		h.WriteString(k + ":" + strings.TrimSpace(headers[k]) + "\n")
	}
	sum := sha256.Sum256(body)
	return strings.Join([]string{
		strings.ToUpper(method),
		canonicalURI(u.EscapedPath()),
		canonicalQuery(u.Query()),
		h.String(),
		strings.Join(names, ";"),
		hex.EncodeToString(sum[:]),
	}, "\n")
}

// StringToSign is what the secret signs.
func StringToSign(date, canonicalRequest string) string {
	sum := sha256.Sum256([]byte(canonicalRequest))
	return Algorithm + "\n" + date + "\n" + hex.EncodeToString(sum[:])
}

// Signature is hex HMAC-SHA256(secret, stringToSign).
func Signature(secret, stringToSign string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(stringToSign))
	return hex.EncodeToString(m.Sum(nil))
}

// canonicalURI encodes each path segment and ends the path with "/", as the
// gateway does whether or not the request's path ends with one.
func canonicalURI(escaped string) string {
	segs := strings.Split(escaped, "/")
	for i, s := range segs {
		if u, err := url.PathUnescape(s); err == nil {
			s = u
		}
		segs[i] = escape(s)
	}
	p := strings.Join(segs, "/")
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	if !strings.HasSuffix(p, "/") {
		p += "/"
	}
	return p
}

// canonicalQuery is "k=v" pairs, encoded, in the order of the raw names,
// then of each name's raw values (the gateway sorts before encoding).
func canonicalQuery(q url.Values) string {
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var pairs []string
	for _, k := range keys {
		vs := append([]string(nil), q[k]...)
		sort.Strings(vs)
		for _, v := range vs {
			pairs = append(pairs, escape(k)+"="+escape(v))
		}
	}
	return strings.Join(pairs, "&")
}

// escape percent-encodes all but RFC 3986's unreserved characters, with
// upper-case hex: the gateway's rule, which url.QueryEscape ("+" for space) is not.
func escape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// ParseAuthorization splits an SDK-HMAC-SHA256 Authorization header into
// its access key, signed header names and signature.
func ParseAuthorization(h string) (access string, signed []string, signature string, err error) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(h), Algorithm+" ")
	if !ok {
		return "", nil, "", fmt.Errorf("authorization: not %s", Algorithm)
	}
	for part := range strings.SplitSeq(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "Access":
			access = v
		case "SignedHeaders":
			signed = strings.Split(strings.ToLower(v), ";")
		case "Signature":
			signature = v
		}
	}
	if access == "" || len(signed) == 0 || signature == "" {
		return "", nil, "", fmt.Errorf("authorization: Access, SignedHeaders and Signature are required")
	}
	return access, signed, signature, nil
}
