package console

import (
	"bufio"
	"bytes"
	"io"
	"strings"
	"testing"
)

// onceReader hands out its content, then reports through asked whether the
// scanner came back for more before the test saw the line it waits for.
type onceReader struct {
	r     *bytes.Reader
	asked func()
}

func (o *onceReader) Read(p []byte) (int, error) {
	if o.r.Len() == 0 {
		o.asked()
		return 0, io.EOF
	}
	return o.r.Read(p)
}

// A line after a skipped over-long one is returned from what is already
// buffered: the scanner must not wait for more input (a terminal or pipe
// would block there) before answering a command it already holds.
func TestSplitLinesAfterLongLine(t *testing.T) {
	input := strings.Repeat("x", maxLine+10) + "\n/help\n"
	seen := false
	early := false
	sc := bufio.NewScanner(&onceReader{r: bytes.NewReader([]byte(input)), asked: func() {
		if !seen {
			early = true
		}
	}})
	sc.Buffer(make([]byte, 64<<10), maxLine)
	sc.Split(splitLines())
	var got []string
	for sc.Scan() {
		got = append(got, sc.Text())
		if sc.Text() == "/help" {
			seen = true
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != tooLong || got[1] != "/help" {
		t.Fatalf("tokens = %q, want [tooLong /help]", got)
	}
	if early {
		t.Fatal("the scanner asked for more input while holding the complete line /help")
	}
}

// Several long lines in a row, and lines split across reads, still come out in order.
func TestSplitLinesSequence(t *testing.T) {
	long := strings.Repeat("y", maxLine+1)
	input := "a\n" + long + "\n" + long + "\nb\nc"
	sc := bufio.NewScanner(iotestHalfReader(strings.NewReader(input)))
	sc.Buffer(make([]byte, 64<<10), maxLine)
	sc.Split(splitLines())
	var got []string
	for sc.Scan() {
		t := sc.Text()
		if t == tooLong {
			t = "LONG"
		}
		got = append(got, t)
	}
	want := []string{"a", "LONG", "LONG", "b", "c"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("tokens = %q, want %q", got, want)
	}
}

// iotestHalfReader reads at most 4 KiB at a time, so lines straddle reads.
func iotestHalfReader(r io.Reader) io.Reader { return &smallReader{r} }

type smallReader struct{ r io.Reader }

func (s *smallReader) Read(p []byte) (int, error) {
	if len(p) > 4096 {
		p = p[:4096]
	}
	return s.r.Read(p)
}
