package main

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestRedactor(t *testing.T) {
	var buf bytes.Buffer
	secret := "123456:ABC-telegram-token"
	log := slog.New(newRedactor(slog.NewTextHandler(&buf, nil), []string{secret, "k"}))
	err := fmt.Errorf("post https://api.telegram.org/bot%s/sendMessage: %w", secret, errors.New("EOF"))
	log.With(slog.String("url", "/bot"+secret)).Error("send "+secret, slog.Any("err", err),
		slog.Group("req", slog.String("token", secret)), slog.Int("n", 3))
	out := buf.String()
	if strings.Contains(out, secret) {
		t.Fatalf("secret in log: %s", out)
	}
	if strings.Count(out, "[REDACTED]") != 4 || !strings.Contains(out, "n=3") {
		t.Fatalf("log: %s", out)
	}
}
