package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/picbot/picbot/engine"
	"github.com/picbot/picbot/engine/pool"
)

// checkVendors is `picbot check vendors [-config FILE] [--spend]`: with the
// operator's real keys, the cheapest call to each endpoint of each enabled
// vendor (authentication, catalogues, a task query for a made-up id) and,
// with --spend, one smallest real task of every kind each vendor offers,
// followed to its end. One line an endpoint: OK, or the vendor's own
// answer and the configuration key that decides it. This is how a guess
// marked "unverified" becomes a fact.
func checkVendors(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("picbot check vendors", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "YAML configuration `file` with the vendors' keys")
	spend := fs.Bool("spend", false, "also make one smallest real task of every kind each vendor offers (billed)")
	timeout := fs.Duration("timeout", 30*time.Second, "for each call")
	wait := fs.Duration("wait", 5*time.Minute, "with --spend, how long to follow each task to its end")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return &usageError{err.Error()}
	}
	if fs.NArg() == 1 && *configPath == "" {
		*configPath = fs.Arg(0)
	} else if fs.NArg() > 0 {
		return &usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	l, err := load(*configPath, os.LookupEnv)
	if err != nil {
		return err
	}
	a := &app{cfg: l.cfg, log: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	a.cfg.Local.Enabled = false // nothing to check, and it needs the blob store
	vendors, err := a.vendors()
	if err != nil {
		return err
	}
	secrets := l.cfg.secrets()
	failed, probed := 0, 0
	print := func(r engine.ProbeResult) {
		r.Answer = strings.Join(strings.Fields(r.Answer), " ") // one line an endpoint, whatever the vendor wrote
		line := fmt.Sprintf("%s %s: ", r.Vendor, r.Endpoint)
		switch {
		case r.OK:
			line += "OK"
			if r.Answer != "" {
				line += " (" + r.Answer + ")"
			}
		case r.Key == skipped:
			line += "SKIPPED: " + r.Answer
		default:
			failed++
			line += "FAILED: " + r.Answer
			if r.Key != "" {
				line += " [check vendors." + r.Vendor + ": " + r.Key + "]"
			}
		}
		fmt.Fprintln(stdout, redactText(line, secrets))
	}
	var inputs *checkInputs
	if *spend && a.cfg.HTTP.PublicURL != "" {
		if inputs, err = serveCheckInputs(a.cfg.HTTP.Listen, a.cfg.HTTP.PublicURL); err != nil {
			return err
		}
		defer inputs.close()
	}
	for _, v := range vendors {
		if p, ok := v.(engine.Prober); ok {
			probed++
			ctx, cancel := context.WithTimeout(context.Background(), *timeout*8)
			for _, r := range p.Probe(ctx) {
				print(r)
			}
			cancel()
		}
		if !*spend {
			continue
		}
		for _, m := range pool.Members(v) {
			s, ok := m.Vendor.(engine.Spender)
			if !ok {
				continue
			}
			for _, c := range s.SpendCases() {
				r := spendOne(m.Vendor, c, inputs, *timeout, *wait)
				if m.Account != "" {
					r.Endpoint = "account " + m.Account + ": " + r.Endpoint
				}
				print(r)
			}
		}
	}
	if probed == 0 {
		fmt.Fprintln(stdout, "no vendor to check is enabled (vendors.zhiqite, vendors.showapi, vendors.apispace)")
	}
	if failed > 0 {
		return fmt.Errorf("%d endpoint(s) failed", failed)
	}
	return nil
}

// skipped marks a ProbeResult that was not tried: not a failure.
const skipped = "\x00skipped"

// spendOne makes one case's task, its input images served by inputs.
func spendOne(v engine.Vendor, c engine.SpendCase, inputs *checkInputs, timeout, wait time.Duration) engine.ProbeResult {
	n := len(c.Request.AllInputs())
	if n > 0 && inputs == nil {
		return engine.ProbeResult{Vendor: v.Name(), Endpoint: c.Endpoint, Key: skipped,
			Answer: "the vendor reads input images by link: set http.public_url and http.listen to check it"}
	}
	t := engine.Task{ID: fmt.Sprintf("picbot-check-%d", time.Now().UnixNano())}
	if n > 0 {
		t.InputURLs = inputs.links(n)
		t.Open = func(context.Context, int) (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(checkPNG)), nil }
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout+wait)
	defer cancel()
	return engine.Spend(ctx, v, c, t, wait)
}

// checkPNG is the input image of the check's tasks: 64×64, a face-less
// gradient (a face swap may be refused for it: that answer still shows
// the endpoint and its keys work).
var checkPNG = func() []byte {
	img := image.NewRGBA(image.Rect(0, 0, 64, 64))
	for y := range 64 {
		for x := range 64 {
			img.Set(x, y, color.RGBA{uint8(x * 4), uint8(y * 4), 128, 255})
		}
	}
	var b bytes.Buffer
	_ = png.Encode(&b, img)
	return b.Bytes()
}()

// checkInputs serves checkPNG at http.listen under the path the bot's
// input images have (/input/...), so a proxy in front of the bot passes
// it as it passes theirs; a random token keeps the links unguessable.
type checkInputs struct {
	srv    *http.Server
	public string
	token  string
}

func serveCheckInputs(listen, public string) (*checkInputs, error) {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("check vendors --spend serves its input image at http.listen: %w", err)
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	c := &checkInputs{public: strings.TrimSuffix(public, "/"), token: hex.EncodeToString(b[:])}
	m := http.NewServeMux()
	m.HandleFunc("GET /input/picbot-check/{token}/{i}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("token") != c.token {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "image/png")
		w.Write(checkPNG)
	})
	c.srv = &http.Server{Handler: m, ReadHeaderTimeout: 10 * time.Second}
	go c.srv.Serve(ln)
	return c, nil
}

func (c *checkInputs) links(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s/input/picbot-check/%s/%d", c.public, c.token, i)
	}
	return out
}

func (c *checkInputs) close() { c.srv.Close() }
