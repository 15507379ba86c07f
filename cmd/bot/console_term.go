package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/picbot/picbot/bots/console"
)

// consoleLog says where the log goes. A person at a terminal typing to the
// console would have log lines cut into the replies, so then the log goes
// to data_dir/picbot.log (path says which); otherwise, to stderr.
func consoleLog(cfg Config, stdin io.Reader, stdout, stderr io.Writer) (out io.Writer, path string, closeLog func(), err error) {
	if !cfg.Console.Enabled || !console.IsTerminal(stdin, stdout) {
		return stderr, "", func() {}, nil
	}
	path = filepath.Join(cfg.DataDir, "picbot.log")
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, "", nil, fmt.Errorf("data_dir: %w", err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, "", nil, fmt.Errorf("console log: %w", err)
	}
	return f, path, func() { f.Close() }, nil
}
