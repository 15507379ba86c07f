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
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	_ "time/tzdata" // the quota's time zone must load in a static image with no zoneinfo

	"github.com/picbot/picbot/bots/chat"
	"github.com/picbot/picbot/bots/console"
	"github.com/picbot/picbot/engine"
	"github.com/picbot/picbot/engine/local"
	"github.com/picbot/picbot/fetch"
	"github.com/picbot/picbot/metrics"
	"github.com/picbot/picbot/quota"
	"github.com/picbot/picbot/web"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "picbot:", err)
		var ue *usageError
		if errors.As(err, &ue) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// run is the whole program, so tests can run it in-process.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "backup":
			return backupCommand(ctx, args[1:], stdout, stderr)
		case "check":
			return checkCommand(args[1:], stdout, stderr)
		case "migrate":
			return migrateCommand(ctx, args[1:], stdout, stderr)
		case "help":
			args = []string{"-h"}
		}
	}
	fs := flag.NewFlagSet("picbot", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are returned, -h is written to stdout
	configPath := fs.String("config", "", "YAML configuration `file` (default: embedded defaults: the console and the local renderer)")
	showVersion := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage(stdout, fs)
			return nil
		}
		return &usageError{err.Error()}
	}
	if *showVersion {
		fmt.Fprintln(stdout, versionString())
		return nil
	}
	if fs.NArg() > 0 {
		msg := fmt.Sprintf("unexpected argument %q", fs.Arg(0))
		if strings.HasSuffix(fs.Arg(0), ".yaml") || strings.HasSuffix(fs.Arg(0), ".yml") {
			msg += fmt.Sprintf("; to run on a configuration file, give picbot -config %s", fs.Arg(0))
		}
		return &usageError{msg}
	}
	l, err := load(*configPath, os.LookupEnv)
	if err != nil {
		return err
	}
	if err := l.preflight(); err != nil {
		return err
	}
	cfg := l.cfg
	logOut, logPath, closeLog, err := consoleLog(cfg, stdin, stdout, stderr)
	if err != nil {
		return err
	}
	defer closeLog()
	log := newLogger(cfg.Log, logOut)
	log = slog.New(newRedactor(log.Handler(), cfg.secrets()))
	app, err := build(cfg, log, stdin, stdout)
	if err != nil {
		return err
	}
	app.loaded, app.terminal = l, stderr
	if app.console != nil && logPath != "" {
		app.console.Term, app.console.LogPath = true, logPath
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
	cfg       Config
	log       *slog.Logger
	db        appStore // bbolt, or PostgreSQL with database_url (store_pg.go)
	blobs     appBlobs
	quota     *quota.Quota
	engine    *engine.Engine
	svc       *chat.Service // shared by the platforms
	models    *chat.Catalog // the vendors' catalogues, adult entries filtered
	notifiers *mux
	console   *console.Console
	platforms []platform
	web       *web.Handler // the operator's console, nil when off
	server    *http.Server
	ln        net.Listener
	metrics   *metrics.Metrics
	ready     atomic.Bool // serving: started and not shutting down
	loaded    *loaded     // the configuration as read, for the start summary
	terminal  io.Writer   // where the console's user reads the summary

	// pools are the vendors with several accounts (accounts.go).
	pools []engine.Vendor
}

// platform is a chat platform adapter besides the console. Each is built in
// platform_<name>.go.
type platform interface {
	engine.Notifier
	// Name is the platform name on the jobs it starts.
	Name() string
	// Run serves until ctx ends.
	Run(ctx context.Context) error
}

// routed is a platform that also takes HTTP requests (a webhook) on the bot's server.
type routed interface {
	Routes(m *http.ServeMux)
}

func build(cfg Config, log *slog.Logger, stdin io.Reader, stdout io.Writer) (*app, error) {
	db, blobs, err := openStores(cfg, log)
	if err != nil {
		return nil, err
	}
	a := &app{cfg: cfg, log: log, db: db, blobs: blobs, notifiers: &mux{by: map[string]engine.Notifier{}}, metrics: metrics.New()}
	ok := false
	defer func() {
		if !ok {
			db.Close()
		}
	}()
	cfg.Quota.BoughtExpireAfter = cfg.Payments.ExpireAfter // payments.go
	if a.quota, err = quota.New(cfg.Quota, db, nil); err != nil {
		return nil, err
	}
	vendors, err := a.vendors()
	if err != nil {
		return nil, err
	}
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
		UncertainSubmit:  cfg.Engine.UncertainSubmit,
		MaxDownload:      cfg.Engine.MaxDownload,
		DeliveryAttempts: cfg.Engine.DeliveryAttempts,
		ProgressEvery:    cfg.Engine.ProgressEvery,
		Concurrency:      cfg.vendorConcurrency(),
		Logger:           log,
		Observer:         a.metrics,
	}
	a.engine = engine.New(ec, db, a.quota, a.blobs, a.notifiers, vendors...)
	a.svc = &chat.Service{
		Engine: a.engine, Quota: a.quota, Blobs: a.blobs, Log: log, MaxInput: cfg.Engine.MaxInput, MaxInputPixels: cfg.Engine.MaxInputPixels,
		Fetcher: fetch.New(fetch.Options{MaxBytes: cfg.Engine.MaxInput, Timeout: cfg.Fetch.Timeout, AllowPrivate: cfg.Fetch.AllowPrivate}),
	}
	a.models = &chat.Catalog{AllowAdult: cfg.Catalog.AllowAdult, Log: log}
	for _, v := range vendors {
		// /models lists what --model can reach: the catalogues of /draw's vendors.
		if c, ok := v.(engine.Cataloguer); ok && slices.Contains(cfg.Engine.Routes[string(engine.KindDraw)], v.Name()) {
			a.models.Sources = append(a.models.Sources, c)
		}
	}
	if len(a.models.Sources) > 0 {
		a.svc.Models = a.models.Models
	}
	if err := a.wireOps(); err != nil {
		return nil, err
	}
	if cfg.Console.Enabled {
		a.console = a.newConsole(stdin, stdout)
		a.notifiers.add(console.Platform, a.console)
	}
	for _, newPlatform := range []func() (platform, error){
		func() (platform, error) { return a.newTelegram(cfg.Telegram) },
		func() (platform, error) { return a.newDiscord(cfg.Discord) },
	} {
		p, err := newPlatform()
		if err != nil {
			return nil, err
		}
		if p != nil {
			a.platforms = append(a.platforms, p)
			a.notifiers.add(p.Name(), p)
		}
	}
	if cfg.HTTP.Listen != "" {
		ln, err := net.Listen("tcp", cfg.HTTP.Listen)
		if err != nil {
			return nil, fmt.Errorf("http.listen: %w", err)
		}
		a.ln = ln
		if err := a.buildWeb(); err != nil {
			ln.Close()
			return nil, err
		}
		a.server = newServer(a.routes(), cfg.HTTP)
	}
	ok = true
	return a, nil
}

// catalogFunc lists the vendors' models and LoRAs for autocomplete, adult
// entries filtered; nil when no vendor has a catalogue (the local renderer).
func (a *app) catalogFunc() func(ctx context.Context) ([]engine.CatalogEntry, error) {
	if len(a.models.Sources) == 0 {
		return nil
	}
	return func(ctx context.Context) ([]engine.CatalogEntry, error) { return a.models.Entries(ctx), nil }
}

// vendors builds every enabled vendor.
func (a *app) vendors() ([]engine.Vendor, error) {
	var out []engine.Vendor
	if a.cfg.Local.Enabled {
		out = append(out, local.New(a.blobs, a.cfg.Local.Duration, nil))
	}
	v := a.cfg.Vendors
	for _, newVendor := range []func() (engine.Vendor, error){
		func() (engine.Vendor, error) { return a.newZhiqite(v.Zhiqite) },
		func() (engine.Vendor, error) { return a.newShowAPI(v.ShowAPI) },
		func() (engine.Vendor, error) { return a.newAPISpace(v.APISpace) },
		func() (engine.Vendor, error) { return a.newA1111(v.A1111) },
		func() (engine.Vendor, error) { return a.newComfyUI(v.ComfyUI) },
	} {
		vendor, err := newVendor()
		if err != nil {
			return nil, err
		}
		if vendor != nil {
			out = append(out, vendor)
		}
	}
	return out, nil
}

func (a *app) newConsole(stdin io.Reader, stdout io.Writer) *console.Console {
	lang := engine.Lang(a.cfg.Console.Lang)
	if lang == "" {
		lang = console.EnvLang(os.Getenv)
	}
	svc := *a.svc
	svc.LocalFiles = true // the console user is on this machine
	c := a.cfg.Console
	return &console.Console{
		In: stdin, Out: stdout, Service: &svc, Jobs: a.engine, Blobs: a.blobs,
		OutDir: c.OutDir, Wait: c.Wait,
		User: engine.UserRef{Platform: console.Platform, ID: c.User, Name: c.User, Lang: engine.ParseLang(string(lang))},
	}
}

// run serves until ctx ends or, when the console is the only chat, until
// its input ends and its jobs are done. A platform that stops with an error
// (a token refused) stops the bot, which exits with that error.
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
	a.started()
	a.ready.Store(true)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stopHousekeeping := a.housekeeping(ctx)
	defer stopHousekeeping() // before the store closes
	errs := make(chan error, len(a.platforms))
	var platformErr error
	platformsDone := make(chan struct{})
	go func() {
		defer close(platformsDone)
		for range a.platforms {
			if perr := <-errs; perr != nil && ctx.Err() == nil {
				platformErr = perr
				cancel() // a platform that cannot run: stop, and say why
			}
		}
	}()
	for _, p := range a.platforms {
		go func() { errs <- p.Run(ctx) }()
	}
	var err error
	if a.console != nil {
		err = a.console.Run(ctx)
		if len(a.platforms) == 0 {
			cancel()
		}
	}
	<-ctx.Done()
	cancel()
	<-platformsDone
	if err == nil {
		err = platformErr
	}
	a.shutdown()
	return err
}

// started logs the start summary, and shows it on the terminal when the
// console is on (the log may be elsewhere or quieter there).
func (a *app) started() {
	if a.loaded == nil {
		return
	}
	var addr net.Addr
	if a.ln != nil {
		addr = a.ln.Addr()
	}
	s := a.loaded.summary(addr)
	for _, w := range s.warnings {
		a.log.Warn(w)
	}
	a.log.Info("picbot started", append([]any{slog.String("version", versionString())}, s.attrs()...)...)
	if a.console != nil && a.terminal != nil {
		fmt.Fprint(a.terminal, redactText(versionString()+"\n"+s.text(), a.cfg.secrets()))
	}
}

// shutdown stops taking commands, lets work under way finish within the
// configured timeout, and closes the server. The store closes last.
func (a *app) shutdown() {
	a.ready.Store(false)
	ctx, cancel := context.WithTimeout(context.Background(), a.cfg.Engine.ShutdownTimeout)
	defer cancel()
	a.engine.Stop(ctx)
	if a.server != nil {
		_ = a.server.Shutdown(ctx)
	}
	if a.loaded == nil {
		return
	}
	jobs, err := a.db.Unfinished(context.Background())
	if err != nil {
		a.log.Error("count unfinished jobs", slog.Any("err", err))
		return
	}
	msg := "no unfinished jobs"
	switch len(jobs) {
	case 0:
	case 1:
		msg = "1 unfinished job will resume at the next start"
	default:
		msg = fmt.Sprintf("%d unfinished jobs will resume at the next start", len(jobs))
	}
	a.log.Info("picbot stopped", slog.Int("resume", len(jobs)))
	if a.console != nil && a.terminal != nil {
		fmt.Fprintf(a.terminal, "picbot stopped: %s\n", msg)
	}
}

// mux sends each job's events to its platform's adapter.
type mux struct {
	by map[string]engine.Notifier
	// wake is the engine's, handed to the adapters that call deliveries
	// back (engine.Waker): they are added after the engine is made.
	wake engine.WakeHook
}

// add routes platform's jobs to n.
func (m *mux) add(platform string, n engine.Notifier) {
	m.by[platform] = n
	if w, ok := n.(engine.Waker); ok {
		w.SetWake(m.wake.Wake)
	}
}

func (m *mux) Progress(ctx context.Context, j *engine.Job, p engine.Progress) {
	if n, ok := m.by[j.Chat.Platform]; ok {
		n.Progress(ctx, j, p)
	}
}

// Watching implements engine.Watcher for the adapters that know.
func (m *mux) Watching(j *engine.Job) bool {
	w, ok := m.by[j.Chat.Platform].(engine.Watcher)
	return ok && w.Watching(j)
}

// SetWake implements engine.Waker for the adapters that call deliveries back.
func (m *mux) SetWake(wake func(jobID string)) { m.wake.SetWake(wake) }

func (m *mux) Deliver(ctx context.Context, j *engine.Job) error {
	n, ok := m.by[j.Chat.Platform]
	if !ok {
		// Not configured this run (the console, say): keep it for a run that has it.
		return fmt.Errorf("platform %q is not enabled", j.Chat.Platform)
	}
	return n.Deliver(ctx, j)
}
