// Command bot runs picbot. With no arguments it runs on embedded defaults:
// the console chat, the built-in local renderer, and a bbolt file under ./data.
//
// A command's way: a chat adapter (bots/*) parses it into an engine.Request
// and calls chat.Service.Handle → engine.Submit, which validates, asks the
// quota and persists the job. Engine workers then hand it to a vendor
// (engine/<vendor>), follow it by callback (the HTTP server here) or poll,
// download the images, and call the adapter's Deliver.
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
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/picbot/picbot/bots/chat"
	"github.com/picbot/picbot/bots/console"
	"github.com/picbot/picbot/engine"
	"github.com/picbot/picbot/engine/local"
	"github.com/picbot/picbot/quota"
	"github.com/picbot/picbot/store"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "picbot:", err)
		os.Exit(1)
	}
}

// run is the whole program, so tests can run it in-process.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("picbot", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "YAML configuration `file` (default: embedded defaults)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := LoadConfig(*configPath)
	if err != nil {
		return err
	}
	log := newLogger(cfg.Log, stderr)
	app, err := build(cfg, log, stdin, stdout)
	if err != nil {
		return err
	}
	return app.run(ctx)
}

func newLogger(c LogConfig, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// app is the wired program.
type app struct {
	cfg     Config
	log     *slog.Logger
	db      *store.DB
	engine  *engine.Engine
	console *console.Console
	server  *http.Server
	ln      net.Listener
}

func build(cfg Config, log *slog.Logger, stdin io.Reader, stdout io.Writer) (*app, error) {
	db, err := store.Open(filepath.Join(cfg.DataDir, "picbot.db"), store.Options{})
	if err != nil {
		return nil, err
	}
	a := &app{cfg: cfg, log: log, db: db}
	ok := false
	defer func() {
		if !ok {
			db.Close()
		}
	}()
	blobs, err := store.OpenBlobs(filepath.Join(cfg.DataDir, "blobs"), 0)
	if err != nil {
		return nil, err
	}
	q, err := quota.New(cfg.Quota, db, nil)
	if err != nil {
		return nil, err
	}
	var vendors []engine.Vendor
	if cfg.Local.Enabled {
		vendors = append(vendors, local.New(blobs, cfg.Local.Duration, nil))
	}
	notifiers := mux{}
	routes := make(map[engine.Kind][]string)
	for k, v := range cfg.Engine.Routes {
		routes[engine.Kind(k)] = v
	}
	ec := engine.Config{
		Workers:          cfg.Engine.Workers,
		PublicURL:        cfg.HTTP.PublicURL,
		Routes:           routes,
		Limits:           cfg.Engine.Limits,
		JobTimeout:       cfg.Engine.JobTimeout,
		VendorTimeout:    cfg.Engine.VendorTimeout,
		MaxDownload:      cfg.Engine.MaxDownload,
		DeliveryAttempts: cfg.Engine.DeliveryAttempts,
		Logger:           log,
	}
	a.engine = engine.New(ec, db, q, blobs, notifiers, vendors...)
	svc := &chat.Service{Engine: a.engine, Quota: q, Blobs: blobs, Log: log, MaxInput: cfg.Engine.MaxInput}
	if cfg.Console.Enabled {
		lang := cfg.Console.Lang
		if lang == "" {
			lang = os.Getenv("LANG")
		}
		svc := *svc
		svc.LocalFiles = true
		a.console = &console.Console{
			In: stdin, Out: stdout, Service: &svc, Jobs: a.engine, Blobs: blobs,
			OutDir: cfg.Console.OutDir, Wait: cfg.Console.Wait,
			User: engine.UserRef{Platform: console.Platform, ID: cfg.Console.User, Name: cfg.Console.User, Lang: engine.ParseLang(lang)},
		}
		notifiers[console.Platform] = a.console
	}
	if cfg.HTTP.Listen != "" {
		ln, err := net.Listen("tcp", cfg.HTTP.Listen)
		if err != nil {
			return nil, fmt.Errorf("http.listen: %w", err)
		}
		a.ln = ln
		a.server = newServer(a.routes())
	}
	ok = true
	return a, nil
}

func (a *app) run(ctx context.Context) error {
	defer a.db.Close()
	if err := a.engine.Start(ctx); err != nil {
		return err
	}
	if a.server != nil {
		a.log.Info("http server listening", slog.String("addr", a.ln.Addr().String()))
		go func() {
			if err := a.server.Serve(a.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				a.log.Error("http server", slog.Any("err", err))
			}
		}()
	}
	var err error
	if a.console != nil {
		err = a.console.Run(ctx)
	} else {
		<-ctx.Done()
	}
	a.shutdown()
	return err
}

// shutdown stops taking commands, lets work under way finish within the
// configured timeout, and closes the server. The store closes last.
func (a *app) shutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), a.cfg.Engine.ShutdownTimeout)
	defer cancel()
	a.engine.Stop(ctx)
	if a.server != nil {
		_ = a.server.Shutdown(ctx)
	}
}

// mux sends each job's events to its platform's adapter.
type mux map[string]engine.Notifier

func (m mux) Progress(ctx context.Context, j *engine.Job, p engine.Progress) {
	if n, ok := m[j.Chat.Platform]; ok {
		n.Progress(ctx, j, p)
	}
}

func (m mux) Deliver(ctx context.Context, j *engine.Job) error {
	n, ok := m[j.Chat.Platform]
	if !ok {
		// Not configured this run (the console, say): keep it for a run that has it.
		return fmt.Errorf("platform %q is not enabled", j.Chat.Platform)
	}
	return n.Deliver(ctx, j)
}
