package main

import (
	"bytes"
	bin "encoding/binary"
	"fmt"
	"hash/crc32"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/picbot/picbot/bots/telegram/telegramtest"
)

// Hostile input through the built binary: commands that must be refused
// with a clear, polite message, with the bot running on, no job created
// and no quota charged; and fetch.allow_private shown to be the switch.

// hugePNG is a valid PNG header that claims width × height, with no pixels:
// only a header-first check (image.DecodeConfig) can refuse it safely.
func hugePNG(width, height uint32) []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	chunk := func(typ string, data []byte) {
		bin.Write(&b, bin.BigEndian, uint32(len(data)))
		crc := crc32.NewIEEE()
		crc.Write([]byte(typ))
		crc.Write(data)
		b.WriteString(typ)
		b.Write(data)
		bin.Write(&b, bin.BigEndian, crc.Sum32())
	}
	ihdr := make([]byte, 13)
	bin.BigEndian.PutUint32(ihdr[0:], width)
	bin.BigEndian.PutUint32(ihdr[4:], height)
	ihdr[8], ihdr[9] = 8, 2 // 8-bit RGB
	chunk("IHDR", ihdr)
	chunk("IDAT", []byte{0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01})
	chunk("IEND", nil)
	return b.Bytes()
}

// imageHost is a loopback web server with hostile images. It counts every
// request, and how many bytes the endless stream got out before the client left.
type imageHost struct {
	srv      *httptest.Server
	hits     atomic.Int64
	streamed atomic.Int64
	streams  sync.WaitGroup
}

const streamLimit = 64 << 20 // the endless stream ends here, whatever happens

func newImageHost(t *testing.T) *imageHost {
	t.Helper()
	fox, huge := smallPNG(t, 64, 48), hugePNG(100000, 100000)
	h := &imageHost{}
	mux := http.NewServeMux()
	mux.HandleFunc("/fox.png", func(w http.ResponseWriter, r *http.Request) { w.Write(fox) })
	mux.HandleFunc("/huge.png", func(w http.ResponseWriter, r *http.Request) { w.Write(huge) })
	mux.HandleFunc("/page.html", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/png") // lies: the bytes decide
		fmt.Fprint(w, "<!doctype html><html><body>not a picture</body></html>")
	})
	// stream: a PNG's first bytes, then zeros, with no Content-Length.
	mux.HandleFunc("/stream.png", func(w http.ResponseWriter, r *http.Request) {
		h.streams.Add(1)
		defer h.streams.Done()
		w.Header().Set("Content-Type", "image/png")
		w.Write(fox[:64])
		chunk := make([]byte, 32<<10)
		for n := int64(64); n < streamLimit; n += int64(len(chunk)) {
			if _, err := w.Write(chunk); err != nil {
				return
			}
			h.streamed.Store(n)
		}
	})
	// biglength: says 50 MB up front.
	mux.HandleFunc("/biglength.png", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(50<<20))
		w.Write(fox)
	})
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.hits.Add(1)
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

// hostileCase is a command and the start of the reply it must get.
type hostileCase struct {
	name, command string
	reply         *regexp.Regexp
}

// refuse types each command and checks the reply: the expected reason, a
// polite sentence without internals, and no job.
func refuse(t *testing.T, c *consoleBot, cases []hostileCase) {
	t.Helper()
	for _, tc := range cases {
		from := c.send(tc.command)
		if m, _ := c.await(from, tc.reply, 15*time.Second); m == nil {
			t.Errorf("%s: no reply matching %q\n%s", tc.name, tc.reply, c.dump())
			continue
		}
		var line string
		for _, l := range c.lines()[from:] {
			if tc.reply.MatchString(l.text) {
				line = l.text
				break
			}
		}
		checkMessage(t, tc.name, line)
		t.Logf("%-18s → %s", tc.name, line)
	}
}

func TestHostileInput(t *testing.T) {
	host := newImageHost(t)
	hostURL, _ := url.Parse(host.srv.URL)
	port := hostURL.Port()
	dir := t.TempDir()
	notes := filepath.Join(dir, "notes.txt")
	fakePNG := filepath.Join(dir, "broken.png")
	huge := filepath.Join(dir, "huge.png")
	os.WriteFile(notes, []byte("remember the milk\n"), 0o600)
	os.WriteFile(fakePNG, append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte{0xee}, 200)...), 0o600)
	os.WriteFile(huge, hugePNG(100000, 100000), 0o600)
	zq := newVendorFake(t, "zhiqite")

	config := func(allowPrivate bool) string {
		return fmt.Sprintf(`data_dir: %[1]s/data
console:
  out_dir: %[1]s/out
  user: tester
engine:
  max_input: 1048576
  routes:
    draw: [zhiqite]
  limits:
    max_prompt_runes: 100
fetch:
  allow_private: %[2]v
local:
  duration: 200ms
quota:
  default: {daily: 100, concurrent: 20, every: 1ms, burst: 100}
vendors:
%[3]s`, dir, allowPrivate, zq.block)
	}
	link := func(host, path string) string { return "http://" + host + ":" + port + path }
	private := regexp.MustCompile(`^Image 1: That link points to a private address; the bot only fetches public links\.$`)

	t.Run("Refused", func(t *testing.T) {
		c := startConsole(t, dir, config(false))
		refuse(t, c, []hostileCase{
			{"EmptyPrompt", "/draw", regexp.MustCompile(`^Please describe the picture`)},
			{"BlankPrompt", "/draw    \t  ", regexp.MustCompile(`^Please describe the picture`)},
			{"EmptyQuotes", `/draw ""`, regexp.MustCompile(`^Please describe the picture`)},
			{"LongPrompt", "/draw " + strings.Repeat("猫", 101), regexp.MustCompile(`^The prompt is too long: 101 characters, at most 100\.$`)},
			{"HugeLine", "/draw " + strings.Repeat("a", 200000), regexp.MustCompile(`^The prompt is too long: 200000 characters, at most 100\.$`)},
			{"OverMegabyteLine", "/draw " + strings.Repeat("b", 2<<20), regexp.MustCompile(`^That line is too long \(over 1 MB\); it was ignored\.$`)},
			{"LongNegative", "/draw a cat --neg " + strings.Repeat("x", 150), regexp.MustCompile(`^The negative prompt is too long: 150 characters`)},
			{"SizeOffVendorRules", "/draw a cat --size 2048x2048", regexp.MustCompile(`^Zhiqite draws at most 1024x1024, each side a multiple of 8; 2048x2048 is not possible\.$`)},
			{"SizeOffLimits", "/draw a cat --size 13x13", regexp.MustCompile(`^--size 13x13 is not allowed`)},
			{"CfgNaN", "/draw a cat --cfg NaN", regexp.MustCompile(`^--cfg must be a number from 1 to 30, like 7\.5, not "NaN"\.$`)},
			{"StepsOverflow", "/draw a cat --steps 99999999999999999999", regexp.MustCompile(`^--steps must be a whole number`)},
			{"NotAnImage", "/upscale " + notes, regexp.MustCompile(`^Image 1: That file is not a picture \(PNG, JPEG, GIF or WebP\)\.$`)},
			{"BrokenPNG", "/anime " + fakePNG, regexp.MustCompile(`^Image 1: The picture could not be read\.$`)},
			{"HugeDimensions", "/anime " + huge, regexp.MustCompile(`^Image 1: The picture's dimensions \(100000x100000\) are too large: at most 67108864 pixels\.$`)},
			{"Loopback", "/anime " + link("127.0.0.1", "/fox.png"), private},
			{"LocalhostName", "/anime " + link("localhost", "/fox.png"), private},
			{"LoopbackV6", "/anime " + link("[::1]", "/fox.png"), private},
			{"MappedV4", "/anime " + link("[::ffff:127.0.0.1]", "/fox.png"), private},
			{"Unspecified", "/anime " + link("0.0.0.0", "/fox.png"), private},
			{"CloudMetadata", "/anime http://169.254.169.254/latest/meta-data/iam/security-credentials/", private},
			{"PrivateRange", "/anime http://10.1.2.3/x.png", private},
			{"SwapfaceOneBad", "/swapface " + link("127.0.0.1", "/fox.png") + " " + huge, private},
			{"NoSuchJob", "/cancel zzzzzzzz", regexp.MustCompile(`^There is no job zzzzzzzz\.$`)},
			{"NotAdmin", "/admin stats", regexp.MustCompile(`^Sorry, admin commands are for the bot's admins\.$`)},
			{"UnknownCommand", "/frobnicate --now", regexp.MustCompile(`^Unknown command /frobnicate\. Commands: /draw`)},
		})
		from := c.send("/jobs")
		if m, _ := c.await(from, regexp.MustCompile(`^You have no jobs yet`), 10*time.Second); m == nil {
			t.Errorf("a job was created\n%s", c.dump())
		}
		used, running := c.quotaUsed()
		c.close(30 * time.Second)
		if used != 0 || running != 0 {
			t.Errorf("quota: %d used, %d running; want nothing charged", used, running)
		}
		if strings.Contains(c.stdout(), "queued") {
			t.Errorf("a job was queued\n%s", c.stdout())
		}
		if strings.Contains(c.stderr(), "command failed") {
			t.Errorf("an internal error\n%s", c.stderr())
		}
		if n := host.hits.Load(); n != 0 {
			t.Errorf("the loopback host was reached %d times", n)
		}
		if zq.billed() != 0 {
			t.Errorf("the vendor was called %d times", zq.billed())
		}
	})

	t.Run("AllowPrivate", func(t *testing.T) {
		c := startConsole(t, dir, config(true))
		r, ok := c.runJob("/anime "+link("127.0.0.1", "/fox.png"), 30*time.Second)
		if !ok || !r.ok {
			t.Fatalf("with fetch.allow_private a loopback link is refused: %+v\n%s", r, c.dump())
		}
		start := time.Now()
		refuse(t, c, []hostileCase{
			{"EndlessStream", "/anime " + link("127.0.0.1", "/stream.png"), regexp.MustCompile(`^Image 1: The image is too large: more than 1 MB\.$`)},
			{"BigContentLength", "/anime " + link("localhost", "/biglength.png"), regexp.MustCompile(`^Image 1: The image is too large: more than 1 MB\.$`)},
			{"HTMLAsPNG", "/anime " + link("127.0.0.1", "/page.html"), regexp.MustCompile(`^Image 1: That file is not a picture`)},
			{"HugeDimensions", "/anime " + link("127.0.0.1", "/huge.png"), regexp.MustCompile(`^Image 1: The picture's dimensions \(100000x100000\) are too large: at most 67108864 pixels\.$`)},
			{"NotFound", "/anime " + link("127.0.0.1", "/missing.png"), regexp.MustCompile(`^Image 1: The image link answered 404\.$`)},
		})
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("the refusals took %s", d)
		}
		used, running := c.quotaUsed()
		c.close(30 * time.Second)
		if used != 1 || running != 0 {
			t.Errorf("quota: %d used, %d running; want only the one job", used, running)
		}
		if n := strings.Count(c.stdout(), "queued"); n != 1 {
			t.Errorf("%d jobs queued, want 1", n)
		}
		// The stream was dropped once past the limit, not read to its end.
		done := make(chan struct{})
		go func() { host.streams.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("the endless stream is still being read")
		}
		t.Logf("the endless stream got %d KB out before the bot hung up", host.streamed.Load()>>10)
		if n := host.streamed.Load(); n >= 16<<20 {
			t.Errorf("%d MB were streamed before the bot hung up; the limit is 1 MB", n>>20)
		}
	})
}

// TestHostileTelegram: the same refusals reach a Telegram chat as replies,
// and the bot keeps serving it.
func TestHostileTelegram(t *testing.T) {
	host := newImageHost(t)
	fake := telegramtest.New(tgToken, tgBot)
	defer fake.Close()
	dir := t.TempDir()
	cfg := telegramConfig(t, dir, fake, fmt.Sprintf("data_dir: %s/data\nengine:\n  limits:\n    max_prompt_runes: 100\n", dir))
	b := startBot(t, dir, "-config", cfg)
	private := func(id int, text string) string {
		return fmt.Sprintf(`{"message": {"message_id": %d, "date": 1700000000,
			"from": {"id": 777, "is_bot": false, "first_name": "Eve", "language_code": "en"},
			"chat": {"id": 777, "first_name": "Eve", "type": "private"}, "text": %q}}`, id, text)
	}
	u, _ := url.Parse(host.srv.URL)
	for i, tc := range []struct{ text, reply string }{
		{"/anime http://localhost:" + u.Port() + "/fox.png", "That link points to a private address"},
		{"/anime http://169.254.169.254/latest/meta-data/", "That link points to a private address"},
		{"/draw " + strings.Repeat("狐", 150), "The prompt is too long: 150 characters, at most 100."},
		{"/draw a fox --cfg NaN", `--cfg must be a number from 1 to 30, like 7.5, not "NaN".`},
		{"/anime /etc/passwd", "is not an image link"},
	} {
		fake.AddUpdate(private(20+i, tc.text))
		c := waitCall(t, b, fake, tc.reply, sent("sendMessage", "chat_id", "777", "reply_to_message_id", fmt.Sprint(20+i)))
		if !strings.Contains(c.Params["text"], tc.reply) {
			t.Errorf("%q: reply %q, want %q", tc.text, c.Params["text"], tc.reply)
		}
		checkMessage(t, tc.text, strings.SplitN(c.Params["text"], "\n", 2)[0])
	}
	// Still serving: a good command makes a picture.
	fake.AddUpdate(private(40, "/draw a fox in the snow"))
	waitCall(t, b, fake, "photo", sent("sendPhoto", "chat_id", "777"))
	stopBot(t, b)
	if n := host.hits.Load(); n != 0 {
		t.Errorf("the loopback host was reached %d times", n)
	}
}
