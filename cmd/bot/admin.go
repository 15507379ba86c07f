package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/picbot/picbot/store"
)

// The admin socket is a Unix socket in the data directory, mode 0600: only
// the bot's own user reaches it, so it needs no token and is never on the
// network. `picbot backup` uses it, since bbolt's file lock keeps a second
// process from opening the database while the bot runs.
const adminSocket = "admin.sock"

func socketPath(cfg Config) string { return filepath.Join(cfg.DataDir, adminSocket) }

// serveAdmin listens on the admin socket until ctx ends. A socket left by a
// killed process is removed first: this process holds the store's lock, so
// no other bot uses this data directory.
func (a *app) serveAdmin(ctx context.Context) (stop func(), err error) {
	path := socketPath(a.cfg)
	_ = os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	m := http.NewServeMux()
	m.HandleFunc("GET /backup", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		n, err := a.db.(*store.DB).Backup(r.Context(), w)
		if err != nil {
			a.log.Error("backup", slog.Any("err", err))
			panic(http.ErrAbortHandler) // cut the stream, so the client sees a failure, not a short copy
		}
		a.log.Info("backup written", slog.Int64("bytes", n))
	})
	srv := &http.Server{Handler: m, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("admin socket", slog.Any("err", err))
		}
	}()
	return func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		<-done
		_ = os.Remove(path)
	}, nil
}

// backupCommand is `picbot backup -config FILE OUT`: a consistent copy of the
// database, from the running bot through its admin socket, or straight from
// the file when no bot runs.
func backupCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("picbot backup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "YAML configuration `file` of the bot to back up")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("usage: picbot backup [-config FILE] OUT")
	}
	out := fs.Arg(0)
	cfg, err := LoadConfig(*configPath)
	if err != nil {
		return err
	}
	if cfg.usesPostgres() {
		return errBackupPostgres
	}
	tmp, err := os.CreateTemp(filepath.Dir(out), ".picbot-backup-*")
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer os.Remove(tmp.Name()) // harmless after the rename
	defer tmp.Close()
	n, err := backupFromBot(ctx, cfg, tmp)
	if errors.Is(err, errNoBot) {
		n, err = backupFromFile(ctx, cfg, tmp)
	}
	if err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	fmt.Fprintf(stdout, "backup: %d bytes written to %s\n", n, out)
	return nil
}

var errNoBot = errors.New("no bot is running")

func backupFromBot(ctx context.Context, cfg Config, w io.Writer) (int64, error) {
	path := socketPath(cfg)
	if _, err := os.Stat(path); err != nil {
		return 0, errNoBot
	}
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
	}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://picbot/backup", nil)
	if err != nil {
		return 0, err
	}
	resp, err := client.Do(req)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return 0, errNoBot // a socket left by a killed bot
		}
		return 0, fmt.Errorf("backup from the running bot: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("backup from the running bot: %s", resp.Status)
	}
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return n, fmt.Errorf("backup from the running bot: %w", err)
	}
	if resp.ContentLength >= 0 && n != resp.ContentLength {
		return n, fmt.Errorf("backup from the running bot: %d of %d bytes", n, resp.ContentLength)
	}
	return n, nil
}

func backupFromFile(ctx context.Context, cfg Config, w io.Writer) (int64, error) {
	path := filepath.Join(cfg.DataDir, "picbot.db")
	if _, err := os.Stat(path); err != nil {
		return 0, fmt.Errorf("backup: %w", err) // never create an empty store to copy
	}
	db, err := store.Open(path, store.Options{LockTimeout: 2 * time.Second})
	if err != nil {
		return 0, err
	}
	defer db.Close()
	return db.Backup(ctx, w)
}
