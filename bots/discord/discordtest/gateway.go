package discordtest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// Gateway is the fake gateway, served by the Server at the URL that
// GET /gateway (and /gateway/bot) gives: it sends HELLO, takes IDENTIFY,
// sends READY, acknowledges heartbeats, and dispatches events on demand.
type Gateway struct {
	// HeartbeatInterval is what HELLO asks for; set it before the bot connects.
	HeartbeatInterval time.Duration

	mu         sync.Mutex
	conn       *websocket.Conn
	wmu        sync.Mutex // one writer at a time
	seq        int
	identify   json.RawMessage
	identified chan struct{}
	heartbeats int
	closed     bool
}

var upgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}

// Gateway returns the server's gateway.
func (s *Server) Gateway() *Gateway { return s.gateway }

type frame struct {
	Op int             `json:"op"`
	D  json.RawMessage `json:"d,omitempty"`
	S  *int            `json:"s,omitempty"`
	T  string          `json:"t,omitempty"`
}

func (g *Gateway) serve(w http.ResponseWriter, r *http.Request) {
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		conn.Close()
		return
	}
	g.conn = conn
	g.mu.Unlock()
	defer conn.Close()
	g.write(conn, map[string]any{"op": 10, "d": map[string]any{"heartbeat_interval": g.HeartbeatInterval.Milliseconds()}})
	for {
		var f frame
		if err := conn.ReadJSON(&f); err != nil {
			return
		}
		switch f.Op {
		case 1: // heartbeat
			g.mu.Lock()
			g.heartbeats++
			g.mu.Unlock()
			g.write(conn, map[string]any{"op": 11})
		case 2: // identify
			ready := map[string]any{
				"v":                9,
				"user":             map[string]any{"id": "1", "username": "picbot", "bot": true},
				"session_id":       "fake-session",
				"guilds":           []any{},
				"private_channels": []any{},
				"application":      map[string]any{"id": "1", "flags": 0},
			}
			if err := g.dispatch(conn, "READY", ready); err != nil {
				return
			}
			g.mu.Lock()
			first := g.identify == nil
			g.identify = f.D
			g.mu.Unlock()
			if first {
				close(g.identified)
			}
		}
	}
}

func (g *Gateway) write(conn *websocket.Conn, v any) error {
	g.wmu.Lock()
	defer g.wmu.Unlock()
	conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	return conn.WriteJSON(v)
}

func (g *Gateway) dispatch(conn *websocket.Conn, event string, data any) error {
	raw, err := json.Marshal(data)
	if err != nil {
		return err
	}
	if r, ok := data.(json.RawMessage); ok {
		raw = r
	}
	g.mu.Lock()
	g.seq++
	seq := g.seq
	g.mu.Unlock()
	return g.write(conn, map[string]any{"op": 0, "s": seq, "t": event, "d": json.RawMessage(raw)})
}

// WaitIdentified waits until the bot has identified, and returns its IDENTIFY payload.
func (g *Gateway) WaitIdentified(tb testing.TB, timeout time.Duration) json.RawMessage {
	tb.Helper()
	select {
	case <-g.identified:
	case <-time.After(timeout):
		tb.Fatalf("the bot did not identify within %s", timeout)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.identify
}

// Heartbeats counts the heartbeats received.
func (g *Gateway) Heartbeats() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.heartbeats
}

// Dispatch sends an event (INTERACTION_CREATE, say) with data, a value or json.RawMessage.
func (g *Gateway) Dispatch(event string, data any) error {
	g.mu.Lock()
	conn := g.conn
	g.mu.Unlock()
	if conn == nil {
		return fmt.Errorf("no gateway connection")
	}
	return g.dispatch(conn, event, data)
}

func (g *Gateway) close() {
	g.mu.Lock()
	g.closed = true
	conn := g.conn
	g.mu.Unlock()
	if conn != nil {
		conn.Close()
	}
}
