package fetch_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/picbot/picbot/engine"
	"github.com/picbot/picbot/fetch"
)

func TestPublic(t *testing.T) {
	for addr, want := range map[string]bool{
		"8.8.8.8": true, "1.1.1.1": true, "2606:4700::1111": true,
		"127.0.0.1": false, "10.1.2.3": false, "172.16.0.1": false, "192.168.1.1": false,
		"169.254.169.254": false, "100.64.0.1": false, "0.0.0.0": false, "::1": false,
		"::ffff:127.0.0.1": false, "fe80::1": false, "fd00::1": false, "224.0.0.1": false,
		"255.255.255.255": false, "64:ff9b::7f00:1": false, "::": false,
	} {
		if got := fetch.Public(netip.MustParseAddr(addr)); got != want {
			t.Errorf("Public(%s) = %v, want %v", addr, got, want)
		}
	}
}

func TestFetch(t *testing.T) {
	ctx := context.Background()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/big":
			w.Write([]byte(strings.Repeat("x", 2000)))
		case "/redirect":
			http.Redirect(w, r, "/small", http.StatusFound)
		case "/missing":
			http.NotFound(w, r)
		default:
			w.Write([]byte("small"))
		}
	}))
	defer srv.Close()

	t.Run("ErrPrivate", func(t *testing.T) {
		c := fetch.New(fetch.Options{})
		for _, url := range []string{srv.URL + "/small", "http://localhost:1/x", "http://169.254.169.254/latest/meta-data/"} {
			_, err := c.Fetch(ctx, url)
			e, ok := err.(*engine.Error)
			if !ok || e.Code != engine.EINVALID || !strings.Contains(e.EN, "private address") {
				t.Errorf("%s: %v", url, err)
			}
		}
	})
	t.Run("ErrScheme", func(t *testing.T) {
		if _, err := fetch.New(fetch.Options{}).Fetch(ctx, "file:///etc/passwd"); engine.ErrorCode(err) != engine.EINVALID {
			t.Fatalf("err %v", err)
		}
	})
	c := fetch.New(fetch.Options{AllowPrivate: true, MaxBytes: 1000})
	t.Run("OK", func(t *testing.T) {
		rc, err := c.Fetch(ctx, srv.URL+"/redirect")
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		if b, _ := io.ReadAll(rc); string(b) != "small" {
			t.Fatalf("body %q", b)
		}
	})
	t.Run("ErrTooLarge", func(t *testing.T) {
		rc, err := c.Fetch(ctx, srv.URL+"/big")
		if err == nil {
			_, err = io.ReadAll(rc)
			rc.Close()
		}
		if engine.ErrorCode(err) != engine.EINVALID || !strings.Contains(err.Error(), "too large") {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("ErrStatus", func(t *testing.T) {
		if _, err := c.Fetch(ctx, srv.URL+"/missing"); engine.ErrorCode(err) != engine.EINVALID {
			t.Fatalf("err %v", err)
		}
	})
}
