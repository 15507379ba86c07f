package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v4"
)

func TestConfig(t *testing.T) {
	t.Run("ExampleIsDefaults", func(t *testing.T) {
		cfg, err := LoadConfig("../../config.example.yaml")
		if err != nil {
			t.Fatal(err)
		}
		// Compared as YAML, where an empty list and a missing one are alike.
		got, _ := yaml.Marshal(cfg)
		want, _ := yaml.Marshal(DefaultConfig())
		if string(got) != string(want) {
			t.Fatalf("config.example.yaml differs from the defaults:\n got %s\nwant %s", got, want)
		}
	})
	t.Run("ErrNamesKey", func(t *testing.T) {
		for yaml, want := range map[string]string{
			"engine:\n  routes:\n    draw: [nope]\n": "engine.routes.draw",
			"log:\n  level: loud\n":                  "log.level",
			"http:\n  public_url: ftp://x\n":         "http.public_url",
			"bogus: 1\n":                             "bogus",
		} {
			path := filepath.Join(t.TempDir(), "c.yaml")
			os.WriteFile(path, []byte(yaml), 0o600)
			if _, err := LoadConfig(path); err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%q: err %v, want it to name %s", yaml, err, want)
			}
		}
	})
	t.Run("Env", func(t *testing.T) {
		cfg := DefaultConfig()
		cfg.applyEnv(func(k string) (string, bool) {
			return map[string]string{"PICBOT_DATA_DIR": "/srv/picbot"}[k], k == "PICBOT_DATA_DIR"
		})
		if cfg.DataDir != "/srv/picbot" {
			t.Fatal(cfg.DataDir)
		}
	})
}
