package engine_test

import (
	"encoding/base32"
	"strings"
	"testing"

	"github.com/picbot/picbot/engine"
)

// Job ids act as capabilities in buttons and URLs: at least 64 bits of
// randomness, in a form that fits Telegram's 64-byte callback_data.
func TestNewIDEntropy(t *testing.T) {
	seen := make(map[string]bool)
	for range 1000 {
		id := engine.NewID()
		raw, err := base32.StdEncoding.DecodeString(strings.ToUpper(id))
		if err != nil {
			t.Fatalf("id %q is not base32: %v", id, err)
		}
		if len(raw)*8 < 64 {
			t.Fatalf("id %q carries %d bits, want at least 64", id, len(raw)*8)
		}
		if len(id) > 20 || strings.ContainsAny(id, "=:") {
			t.Fatalf("id %q does not fit a button", id)
		}
		if seen[id] {
			t.Fatalf("id %q repeated", id)
		}
		seen[id] = true
	}
}
