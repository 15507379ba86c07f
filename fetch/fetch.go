// Package fetch downloads images from links users give. It refuses any
// address a user should not be able to point the bot at: loopback, private,
// link-local (cloud metadata), CGNAT, multicast and reserved ranges. The check
// runs when the connection is made, on the address actually dialled, so DNS
// rebinding and redirects cannot get around it.
package fetch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"

	"github.com/picbot/picbot/engine"
)

// Options configure a Client.
type Options struct {
	// MaxBytes caps one download; larger is refused while streaming.
	MaxBytes int64
	// Timeout bounds one download, redirects included.
	Timeout time.Duration
	// AllowPrivate lets links reach private and loopback addresses. For tests
	// only: it turns the bot into a way into the network it runs in.
	AllowPrivate bool
}

// Client implements bots/chat.Fetcher.
type Client struct {
	http *http.Client
	max  int64
}

// New returns a Client.
func New(opt Options) *Client {
	if opt.MaxBytes <= 0 {
		opt.MaxBytes = 20 << 20
	}
	if opt.Timeout <= 0 {
		opt.Timeout = 30 * time.Second
	}
	dialer := &net.Dialer{Timeout: 10 * time.Second}
	if !opt.AllowPrivate {
		dialer.Control = refusePrivate
	}
	transport := &http.Transport{
		// No proxy: the check must see the real destination.
		Proxy:                 nil,
		DialContext:           dialer.DialContext,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 15 * time.Second,
		MaxIdleConns:          10,
		IdleConnTimeout:       30 * time.Second,
	}
	return &Client{
		max: opt.MaxBytes,
		http: &http.Client{
			Transport: transport,
			Timeout:   opt.Timeout,
			CheckRedirect: func(req *http.Request, via []*http.Request) error {
				if len(via) >= 3 {
					return errors.New("too many redirects")
				}
				if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
					return errors.New("redirect to a non-http link")
				}
				return nil
			},
		},
	}
}

// errPrivate marks a refused destination.
var errPrivate = errors.New("destination address is not public")

// refusePrivate is the dialer's Control hook: it sees the resolved address.
func refusePrivate(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: %s", errPrivate, address)
	}
	if !Public(ap.Addr()) {
		return fmt.Errorf("%w: %s", errPrivate, ap.Addr())
	}
	return nil
}

var reserved = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"), // carrier-grade NAT
	netip.MustParsePrefix("192.0.0.0/24"),  // IETF protocol assignments
	netip.MustParsePrefix("192.0.2.0/24"),  // documentation
	netip.MustParsePrefix("198.18.0.0/15"), // benchmarking
	netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("203.0.113.0/24"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("64:ff9b::/96"), // NAT64: reaches IPv4 space
	netip.MustParsePrefix("64:ff9b:1::/48"),
	netip.MustParsePrefix("2001:db8::/32"),
	netip.MustParsePrefix("2002::/16"), // 6to4: embeds an IPv4 address
	netip.MustParsePrefix("fec0::/10"), // site-local
}

// Public reports whether a is an ordinary public unicast address.
func Public(a netip.Addr) bool {
	a = a.Unmap() // ::ffff:127.0.0.1 is 127.0.0.1
	if !a.IsValid() || a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() ||
		a.IsInterfaceLocalMulticast() || a.IsMulticast() || a.IsUnspecified() {
		return false
	}
	if a.Is4() && a == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return false
	}
	for _, p := range reserved {
		if p.Contains(a) {
			return false
		}
	}
	return true
}

// Fetch opens url for reading, at most MaxBytes. Errors are engine errors
// that say what went wrong without echoing internals.
func (c *Client) Fetch(ctx context.Context, url string) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil || (req.URL.Scheme != "http" && req.URL.Scheme != "https") || req.URL.Host == "" {
		return nil, engine.Errorf(engine.EINVALID, "That is not a valid http(s) link.", "这不是有效的 http(s) 链接。")
	}
	req.Header.Set("Accept", "image/*")
	resp, err := c.http.Do(req)
	if err != nil {
		if errors.Is(err, errPrivate) {
			return nil, engine.Wrap(engine.EINVALID, err, "That link points to a private address; the bot only fetches public links.", "该链接指向内网地址，机器人只获取公网链接。")
		}
		return nil, engine.Wrap(engine.EINVALID, err, "The image link could not be fetched.", "无法获取图片链接。")
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, engine.Errorf(engine.EINVALID, "The image link answered %d.", "图片链接返回了 %d。", resp.StatusCode)
	}
	if resp.ContentLength > c.max {
		resp.Body.Close()
		return nil, tooLarge(c.max)
	}
	return &capped{rc: resp.Body, left: c.max, max: c.max}, nil
}

func tooLarge(max int64) error {
	return engine.Errorf(engine.EINVALID, "The image is too large: more than %d MB.", "图片太大：超过 %d MB。", max>>20)
}

// capped fails a read that goes past the limit, rather than truncating.
type capped struct {
	rc   io.ReadCloser
	left int64
	max  int64
}

func (c *capped) Read(p []byte) (int, error) {
	if c.left <= 0 {
		// One byte more tells a body of exactly the limit from a larger one.
		var one [1]byte
		if n, _ := c.rc.Read(one[:]); n > 0 {
			return 0, tooLarge(c.max)
		}
		return 0, io.EOF
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.rc.Read(p)
	c.left -= int64(n)
	return n, err
}

func (c *capped) Close() error { return c.rc.Close() }
