// Package s3fake starts an S3-compatible server for tests on loopback:
// github.com/johannesboyne/gofakes3, an independent implementation of the
// protocol, in memory, with a clock a test can move and a check of the
// access key the requests are signed with.
package s3fake

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// The credentials the fake accepts.
const (
	AccessKey = "PICBOTTESTKEY"
	SecretKey = "picbot-test-secret-key"
	Region    = "us-east-1"
)

// Server is a running fake.
type Server struct {
	Host   string // host:port on loopback
	Bucket string
	Clock  *Clock
	mem    *s3mem.Backend
	mu     sync.Mutex
	reqs   map[string]int // method → count
}

// Start serves a fake with one empty bucket until the test ends.
func Start(tb testing.TB, bucket string) *Server {
	tb.Helper()
	s := &Server{Bucket: bucket, Clock: &Clock{}, reqs: make(map[string]int)}
	s.mem = s3mem.New(s3mem.WithTimeSource(s.Clock))
	if err := s.mem.CreateBucket(bucket); err != nil {
		tb.Fatal(err)
	}
	// One clock for the objects and their Last-Modified header; no skew
	// check, as the clock may be moved hours away from the client's.
	fake := gofakes3.New(s.mem, gofakes3.WithAutoBucket(false), gofakes3.WithTimeSource(s.Clock), gofakes3.WithTimeSkewLimit(0))
	srv := httptest.NewServer(s.checkKey(decodeParts(fake.Server())))
	tb.Cleanup(srv.Close)
	s.Host = strings.TrimPrefix(srv.URL, "http://")
	return s
}

// URL is a blobs_url for the fake's bucket, credentials left out.
func (s *Server) URL(prefix string) string {
	return fmt.Sprintf("s3://%s/%s?endpoint=%s&region=%s&tls=false&path_style=true", s.Bucket, prefix, s.Host, Region)
}

// Objects lists the names of the objects in the bucket under prefix.
func (s *Server) Objects(tb testing.TB, prefix string) []string {
	tb.Helper()
	p := gofakes3.NewPrefix(&prefix, nil)
	list, err := s.mem.ListBucket(s.Bucket, &p, gofakes3.ListBucketPage{})
	if err != nil {
		tb.Fatal(err)
	}
	var out []string
	for _, c := range list.Contents {
		out = append(out, c.Key)
	}
	return out
}

// Get returns an object's bytes, or nil if there is none.
func (s *Server) Get(tb testing.TB, name string) []byte {
	tb.Helper()
	obj, err := s.mem.GetObject(s.Bucket, name, nil)
	if err != nil {
		return nil
	}
	defer obj.Contents.Close()
	b, err := io.ReadAll(obj.Contents)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// Requests counts the requests served with an HTTP method.
func (s *Server) Requests(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reqs[method]
}

// checkKey refuses a request signed with another access key, as S3 does
// (403, InvalidAccessKeyId). The signature itself is not verified: gofakes3
// checks no credentials at all, and a wrong key is what a test needs.
func (s *Server) checkKey(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.reqs[r.Method]++
		s.mu.Unlock()
		if key := accessKey(r); key != AccessKey {
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusForbidden)
			if r.Method != http.MethodHead {
				fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>InvalidAccessKeyId</Code><Message>The AWS Access Key Id you provided does not exist in our records.</Message><AWSAccessKeyId>%s</AWSAccessKeyId></Error>`, xmlEscape(key))
			}
			return
		}
		next.ServeHTTP(w, r)
	})
}

// accessKey reads the key from a SigV4 Authorization header
// ("AWS4-HMAC-SHA256 Credential=KEY/date/region/s3/aws4_request, ...") or a
// presigned URL's X-Amz-Credential.
func accessKey(r *http.Request) string {
	cred := r.URL.Query().Get("X-Amz-Credential")
	if a := r.Header.Get("Authorization"); a != "" {
		_, after, ok := strings.Cut(a, "Credential=")
		if !ok {
			return ""
		}
		cred = after
	}
	key, _, _ := strings.Cut(cred, "/")
	return key
}

// decodeParts strips the chunk signatures of a multipart upload's part sent
// with a streaming signature (x-amz-content-sha256:
// STREAMING-AWS4-HMAC-SHA256-PAYLOAD, as minio-go does over plain HTTP):
// gofakes3 v1.2.0 decodes them for a single PUT but stores a part's body as
// it came. Per AWS's "Transferring payload in multiple chunks", each chunk is
// "<hex size>;chunk-signature=<sig>\r\n<data>\r\n", ending with size 0.
func decodeParts(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if r.Method == http.MethodPut && q.Has("partNumber") && q.Has("uploadId") &&
			r.Header.Get("X-Amz-Content-Sha256") == "STREAMING-AWS4-HMAC-SHA256-PAYLOAD" {
			n, err := strconv.ParseInt(r.Header.Get("X-Amz-Decoded-Content-Length"), 10, 64)
			if err != nil {
				http.Error(w, "bad x-amz-decoded-content-length", http.StatusBadRequest)
				return
			}
			r.Body = io.NopCloser(&chunked{r: bufio.NewReader(r.Body)})
			r.ContentLength = n
			r.Header.Set("Content-Length", strconv.FormatInt(n, 10))
			r.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
		}
		next.ServeHTTP(w, r)
	})
}

type chunked struct {
	r    *bufio.Reader
	left int64 // of the current chunk
	done bool
}

func (c *chunked) Read(p []byte) (int, error) {
	for c.left == 0 {
		if c.done {
			return 0, io.EOF
		}
		line, err := c.r.ReadString('\n')
		if err != nil {
			return 0, fmt.Errorf("chunk header: %w", err)
		}
		size, _, _ := strings.Cut(strings.TrimSpace(line), ";")
		n, err := strconv.ParseInt(size, 16, 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("chunk size %q", size)
		}
		c.left, c.done = n, n == 0
		if n == 0 {
			return 0, io.EOF
		}
	}
	n, err := c.r.Read(p[:min(int64(len(p)), c.left)])
	c.left -= int64(n)
	if c.left == 0 && err == nil {
		if crlf, _ := c.r.Peek(2); string(crlf) == "\r\n" {
			_, _ = c.r.Discard(2)
		}
	}
	return n, err
}

func xmlEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '<', '>', '&', '"', '\'':
			fmt.Fprintf(&b, "&#%d;", r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// Clock is the fake's time: the real time moved by an offset a test sets,
// so that objects can be made to look old.
type Clock struct {
	mu     sync.Mutex
	offset time.Duration
}

// Now implements gofakes3.TimeSource.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset).UTC()
}

// Since implements gofakes3.TimeSource.
func (c *Clock) Since(t time.Time) time.Duration { return c.Now().Sub(t) }

// Shift moves the clock by d from the real time (negative: into the past).
func (c *Clock) Shift(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset = d
}

// Delete removes an object, as another client of the bucket might.
func (s *Server) Delete(tb testing.TB, name string) {
	tb.Helper()
	if _, err := s.mem.DeleteObject(s.Bucket, name); err != nil {
		tb.Fatal(err)
	}
}
