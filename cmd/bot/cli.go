package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"runtime/debug"
	"slices"
	"strings"
)

// version is set at build time (-ldflags "-X main.version=v1.2.3"); else
// the module version and VCS stamp from the build info are used.
var version = ""

// usageError is a command line the bot does not understand: exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg + " (picbot -h lists the flags)" }

// envHelp says what each environment variable sets; every one envFields
// reads must be here (a test checks).
var envHelp = map[string]string{
	"PICBOT_DATA_DIR":                  "data_dir: the store and the images",
	"PICBOT_HTTP_LISTEN":               "http.listen, e.g. :8080",
	"PICBOT_HTTP_PUBLIC_URL":           "http.public_url: where vendors and platforms reach the bot",
	"PICBOT_LOG_LEVEL":                 "log.level: debug, info, warn or error",
	"PICBOT_LOG_FORMAT":                "log.format: text or json",
	"PICBOT_TELEGRAM_TOKEN":            "telegram.token; turns Telegram on unless the file says enabled: false",
	"PICBOT_TELEGRAM_WEBHOOK_SECRET":   "telegram.webhook_secret",
	"PICBOT_TELEGRAM_API_ENDPOINT":     "telegram.api_endpoint: a self-hosted Bot API server",
	"PICBOT_DISCORD_TOKEN":             "discord.token; turns Discord on unless the file says enabled: false",
	"PICBOT_DISCORD_APPLICATION_ID":    "discord.application_id",
	"PICBOT_DISCORD_PUBLIC_KEY":        "discord.public_key (mode http)",
	"PICBOT_ZHIQITE_APP_CODE":          "vendors.zhiqite.app_code",
	"PICBOT_ZHIQITE_APP_KEY":           "vendors.zhiqite.app_key",
	"PICBOT_ZHIQITE_APP_SECRET":        "vendors.zhiqite.app_secret",
	"PICBOT_SHOWAPI_APP_CODE":          "vendors.showapi.app_code",
	"PICBOT_SHOWAPI_APP_KEY":           "vendors.showapi.app_key",
	"PICBOT_SHOWAPI_APP_SECRET":        "vendors.showapi.app_secret",
	"PICBOT_APISPACE_TOKEN":            "vendors.apispace.token",
	"PICBOT_WEB_PASSWORD":              "web.password: turns the web console on under /admin/",
	"PICBOT_WEB_PASSWORD_HASH":         "web.password_hash: bcrypt or argon2id, instead of the password",
	"PICBOT_ZHIQITE_ACCESS_KEY_SECRET": "vendors.zhiqite.access_key_secret",
	"PICBOT_A1111_USERNAME":            "vendors.a1111.username",
	"PICBOT_A1111_PASSWORD":            "vendors.a1111.password",
	"PICBOT_A1111_TOKEN":               "vendors.a1111.token",
	"PICBOT_COMFYUI_TOKEN":             "vendors.comfyui.token",
	"PICBOT_DATABASE_URL":              "database_url: postgres://... keeps jobs and images in PostgreSQL, shared by replicas",
	"PICBOT_BLOBS_URL":                 "blobs_url: s3://bucket/prefix?endpoint=host:port keeps images in an S3-compatible bucket",
	"PICBOT_BLOBS_ACCESS_KEY":          "blobs_access_key: the bucket's access key",
	"PICBOT_BLOBS_SECRET_KEY":          "blobs_secret_key: the bucket's secret key",
}

// usage is picbot -h.
func usage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprint(w, `picbot: a chat bot (console, Telegram, Discord) that makes pictures through image vendors.

Usage:
  picbot [-config FILE]               run the bot (no -config: the console and the built-in renderer)
  picbot check config -config FILE    check a configuration, print what it runs, and exit (0: valid)
  picbot check vendors [-config FILE] [--spend]
                                      call each enabled vendor's endpoints with the real keys: OK, or
                                      the vendor's answer and the key to change (--spend: one real task each)
  picbot backup [-config FILE] OUT    copy the database of a bot, running or not
  picbot migrate [-config FILE] --to postgres://...
                                      copy a stopped bot's data_dir into PostgreSQL (again: copies nothing twice)
  picbot -version                     print the version

Flags:
`)
	fs.SetOutput(w)
	fs.PrintDefaults()
	fmt.Fprint(w, "\nEnvironment (each overrides the file; secrets belong here, not in the file):\n")
	for _, name := range slices.Sorted(maps.Keys(envHelp)) {
		fmt.Fprintf(w, "  %-31s %s\n", name, envHelp[name])
	}
	fmt.Fprint(w, `
Every key, with its default: config.example.yaml. Step by step (Telegram, Discord,
Docker): README.md, https://github.com/picbot/picbot#readme
`)
}

// versionString is "picbot v1.2.3 (commit abc1234, 2026-12-01T10:00:00Z, go1.26.0)".
func versionString() string {
	v := version
	var extra []string
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v == "" && bi.Main.Version != "" {
			v = bi.Main.Version
		}
		s := map[string]string{}
		for _, kv := range bi.Settings {
			s[kv.Key] = kv.Value
		}
		if rev := s["vcs.revision"]; rev != "" {
			if len(rev) > 12 {
				rev = rev[:12]
			}
			if s["vcs.modified"] == "true" {
				rev += "+changes"
			}
			extra = append(extra, "commit "+rev)
		}
		if t := s["vcs.time"]; t != "" {
			extra = append(extra, t)
		}
		extra = append(extra, bi.GoVersion)
	}
	if v == "" {
		v = "(devel)"
	}
	if len(extra) == 0 {
		return "picbot " + v
	}
	return "picbot " + v + " (" + strings.Join(extra, ", ") + ")"
}

// checkCommand is `picbot check config -config FILE`: load and validate,
// including what the bot checks at start (a chat platform, writable
// directories), and print the summary it would start with.
func checkCommand(args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "vendors" {
		return checkVendors(args[1:], stdout, stderr)
	}
	if len(args) == 0 || args[0] != "config" {
		return &usageError{"usage: picbot check config -config FILE, or picbot check vendors [-config FILE] [--spend]"}
	}
	fs := flag.NewFlagSet("picbot check config", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "YAML configuration `file` to check (none: the embedded defaults)")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return &usageError{err.Error()}
	}
	if fs.NArg() == 1 && *configPath == "" {
		*configPath = fs.Arg(0) // picbot check config FILE
	} else if fs.NArg() > 0 {
		return &usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	l, err := load(*configPath, os.LookupEnv)
	if err != nil {
		return err
	}
	if err := l.preflight(); err != nil {
		return err
	}
	name := *configPath
	if name == "" {
		name = "the embedded defaults"
	}
	fmt.Fprintf(stdout, "%s: valid\n", name)
	fmt.Fprint(stdout, redactText(l.summary(nil).text(), l.cfg.secrets()))
	return nil
}
