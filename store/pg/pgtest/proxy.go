package pgtest

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// Cut is where a Proxy cuts the connection that sends the next COMMIT.
type Cut int

const (
	// CutNone forwards everything.
	CutNone Cut = iota
	// CutBeforeCommit forwards what the connection sent before the COMMIT,
	// and closes both sides in its place: the server never sees the COMMIT
	// and rolls back when it reads the end of the connection.
	CutBeforeCommit
	// CutPartition is CutBeforeCommit with the server's side left open, as
	// across a network partition: the server's transaction stays open,
	// holding its locks, until something ends it.
	CutPartition
	// CutAfterCommit forwards the COMMIT and waits for the server's answer;
	// if it is COMMIT (the transaction is committed), the answer is dropped
	// and both sides are closed. A COMMIT answered otherwise (a pipeline
	// that failed before it) goes through, and the cut waits for the next.
	CutAfterCommit
	// CutPartitionAfterBegin lets the pipeline that begins a transaction
	// through, drops the server's answer, and closes the client's side
	// only, as across a partition: the server's session stays in its
	// transaction, holding what it locked. (A transaction whose BEGIN goes
	// with its COMMIT, in one pipeline, is cut after its commit.)
	CutPartitionAfterBegin
)

// Proxy forwards TCP connections to a PostgreSQL server and cuts, once
// armed, the one that sends a COMMIT, at a point of the commit.
type Proxy struct {
	ln     net.Listener
	target string
	armed  atomic.Int64 // a Cut
	fired  chan Cut
	mu     sync.Mutex
	conns  []net.Conn
}

// NewProxy starts a proxy on loopback to the server of u (a postgres://
// URL) and returns it with u pointed at it. It stops when the test ends.
func NewProxy(tb testing.TB, u string) (*Proxy, string) {
	tb.Helper()
	pu, err := url.Parse(u)
	if err != nil {
		tb.Fatalf("proxy: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("proxy: %v", err)
	}
	p := &Proxy{ln: ln, target: pu.Host, fired: make(chan Cut, 16)}
	go p.accept()
	tb.Cleanup(p.close)
	pu.Host = ln.Addr().String()
	return p, pu.String()
}

// Arm makes the proxy cut at where on the next COMMIT; Fired says when.
func (p *Proxy) Arm(where Cut) { p.armed.Store(int64(where)) }

// Fired is told each cut made.
func (p *Proxy) Fired() <-chan Cut { return p.fired }

func (p *Proxy) close() {
	_ = p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		_ = c.Close()
	}
}

func (p *Proxy) keep(c net.Conn) {
	p.mu.Lock()
	p.conns = append(p.conns, c)
	p.mu.Unlock()
}

func (p *Proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.keep(c)
		p.keep(s)
		l := &link{p: p, client: c, server: s}
		go l.fromClient()
		go l.fromServer()
	}
}

// link is one proxied connection.
type link struct {
	p              *Proxy
	client, server net.Conn
	// awaiting: a COMMIT went through under CutAfterCommit, or a BEGIN
	// under CutPartitionAfterBegin (the Cut); the server's answers are
	// held until its ReadyForQuery says what they were.
	awaiting atomic.Int64
	cut      atomic.Bool
}

// fromClient forwards the client's messages whole, reading each to learn
// which prepared statement is a COMMIT and when one is executed.
func (l *link) fromClient() {
	stmts := map[string]string{}
	startup := true
	var buf []byte
	tmp := make([]byte, 32<<10)
	for {
		n, err := l.client.Read(tmp)
		if n > 0 {
			buf = append(buf, tmp[:n]...)
			off := 0
			for {
				if startup { // no type byte: length, then the rest
					if len(buf)-off < 4 {
						break
					}
					m := int(binary.BigEndian.Uint32(buf[off:]))
					if len(buf)-off < m {
						break
					}
					off += m
					startup = false
					continue
				}
				if len(buf)-off < 5 {
					break
				}
				m := 1 + int(binary.BigEndian.Uint32(buf[off+1:]))
				if len(buf)-off < m {
					break
				}
				body := buf[off+5 : off+m]
				var sql string
				switch buf[off] {
				case 'P':
					name, rest := cstring(body)
					q, _ := cstring(rest)
					stmts[name] = q
				case 'B':
					_, rest := cstring(body)
					st, _ := cstring(rest)
					sql = stmts[st]
				case 'Q':
					sql, _ = cstring(body)
				}
				if is(sql, "COMMIT") && l.commitSeen(buf[:off]) {
					return
				}
				if is(sql, "BEGIN") && Cut(l.p.armed.Load()) == CutPartitionAfterBegin {
					l.awaiting.Store(int64(CutPartitionAfterBegin))
				}
				off += m
			}
			if _, werr := l.server.Write(buf[:off]); werr != nil {
				l.shut()
				return
			}
			buf = append(buf[:0], buf[off:]...)
		}
		if err != nil {
			l.shut()
			return
		}
	}
}

// commitSeen acts on a COMMIT about to be forwarded, after before (the
// messages ahead of it, not yet sent): true if the link was cut.
func (l *link) commitSeen(before []byte) bool {
	switch where := Cut(l.p.armed.Load()); where {
	case CutBeforeCommit, CutPartition:
		if !l.p.armed.CompareAndSwap(int64(where), int64(CutNone)) {
			return false
		}
		l.cut.Store(true)
		_, _ = l.server.Write(before)
		l.p.fired <- where // before the client hears of it
		_ = l.client.Close()
		if where == CutBeforeCommit {
			_ = l.server.Close()
		}
		return true
	case CutAfterCommit:
		l.awaiting.Store(int64(CutAfterCommit))
	}
	return false
}

// fromServer forwards the server's messages; while a COMMIT under
// CutAfterCommit is awaited, it holds them until ReadyForQuery, and drops
// them and cuts if the server answered COMMIT.
func (l *link) fromServer() {
	var held []byte
	tmp := make([]byte, 32<<10)
	for {
		n, err := l.server.Read(tmp)
		if n > 0 {
			if l.awaiting.Load() == int64(CutNone) && len(held) == 0 {
				if _, werr := l.client.Write(tmp[:n]); werr != nil {
					l.shut()
					return
				}
			} else {
				held = append(held, tmp[:n]...)
				committed, ready := answered(held)
				if ready {
					switch where := Cut(l.awaiting.Load()); {
					case where == CutAfterCommit && committed, where == CutPartitionAfterBegin:
						if !l.p.armed.CompareAndSwap(int64(where), int64(CutNone)) {
							break
						}
						l.cut.Store(true)
						l.p.fired <- where // before the client hears of it
						_ = l.client.Close()
						if where == CutAfterCommit {
							_ = l.server.Close()
						}
						return
					}
					l.awaiting.Store(int64(CutNone))
					if _, werr := l.client.Write(held); werr != nil {
						l.shut()
						return
					}
					held = held[:0]
				}
			}
		}
		if err != nil {
			l.shut()
			return
		}
	}
}

// answered reads the server's messages in b: whether a CommandComplete
// said COMMIT, and whether a ReadyForQuery ended them (complete messages only).
func answered(b []byte) (committed, ready bool) {
	for off := 0; len(b)-off >= 5; {
		m := 1 + int(binary.BigEndian.Uint32(b[off+1:]))
		if len(b)-off < m {
			return committed, false
		}
		switch b[off] {
		case 'C':
			tag, _ := cstring(b[off+5 : off+m])
			if tag == "COMMIT" {
				committed = true
			}
		case 'Z':
			return committed, true
		}
		off += m
	}
	return committed, false
}

// shut closes both sides, unless a cut decided otherwise.
func (l *link) shut() {
	if l.cut.Load() {
		return
	}
	_ = l.client.Close()
	_ = l.server.Close()
}

func cstring(b []byte) (string, []byte) {
	i := bytes.IndexByte(b, 0)
	if i < 0 {
		return string(b), nil
	}
	return string(b[:i]), b[i+1:]
}

// is reports whether sql is the statement word alone (BEGIN, COMMIT).
func is(sql, word string) bool {
	return strings.EqualFold(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(sql), ";")), word)
}

func (c Cut) String() string {
	switch c {
	case CutNone:
		return "None"
	case CutBeforeCommit:
		return "BeforeCommit"
	case CutPartition:
		return "Partition"
	case CutAfterCommit:
		return "AfterCommit"
	case CutPartitionAfterBegin:
		return "PartitionAfterBegin"
	}
	return "Cut(" + strconv.Itoa(int(c)) + ")"
}
