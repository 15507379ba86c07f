package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/picbot/picbot/engine"
)

// checkVendors is `picbot check vendors [-config FILE] [--spend]`: with the
// operator's real keys, the cheapest call to each endpoint of each enabled
// vendor (authentication, catalogues, a task query for a made-up id) and,
// with --spend, one smallest real task per vendor. One line an endpoint: OK,
// or the vendor's own answer and the configuration key that decides it. This
// is how a guess marked "unverified" becomes a fact.
func checkVendors(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("picbot check vendors", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "YAML configuration `file` with the vendors' keys")
	spend := fs.Bool("spend", false, "also make one smallest real task per vendor (billed)")
	timeout := fs.Duration("timeout", 30*time.Second, "for each call")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return &usageError{err.Error()}
	}
	if fs.NArg() == 1 && *configPath == "" {
		*configPath = fs.Arg(0)
	} else if fs.NArg() > 0 {
		return &usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	l, err := load(*configPath, os.LookupEnv)
	if err != nil {
		return err
	}
	a := &app{cfg: l.cfg, log: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	a.cfg.Local.Enabled = false // nothing to check, and it needs the blob store
	vendors, err := a.vendors()
	if err != nil {
		return err
	}
	secrets := l.cfg.secrets()
	failed, probed := 0, 0
	for _, v := range vendors {
		p, ok := v.(engine.Prober)
		if !ok {
			continue
		}
		probed++
		ctx, cancel := context.WithTimeout(context.Background(), *timeout*8)
		for _, r := range p.Probe(ctx, *spend) {
			line := fmt.Sprintf("%s %s: ", r.Vendor, r.Endpoint)
			if r.OK {
				line += "OK"
				if r.Answer != "" {
					line += " (" + r.Answer + ")"
				}
			} else {
				failed++
				line += "FAILED: " + r.Answer
				if r.Key != "" {
					line += " [check vendors." + r.Vendor + ": " + r.Key + "]"
				}
			}
			fmt.Fprintln(stdout, redactText(line, secrets))
		}
		cancel()
	}
	if probed == 0 {
		fmt.Fprintln(stdout, "no vendor to check is enabled (vendors.zhiqite, vendors.showapi, vendors.apispace)")
	}
	if failed > 0 {
		return fmt.Errorf("%d endpoint(s) failed", failed)
	}
	return nil
}
