package main

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v4"
)

// configKeys lists every key path the configuration accepts; a map's
// entries are free-form (tier names, user keys), so only the map's own key.
func configKeys(prefix string, t reflect.Type) []string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var out []string
	for _, f := range yamlFields(t) {
		key := join(prefix, f.name)
		out = append(out, key)
		ft := f.typ
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Struct && ft != durationType {
			out = append(out, configKeys(key, ft)...)
		}
	}
	return out
}

// TestExampleHasEveryKey: every field of the configuration's structs is in
// config.example.yaml, as a key or, for the few whose default is a built-in
// list, as a commented-out key.
func TestExampleHasEveryKey(t *testing.T) {
	data, err := os.ReadFile("../../config.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	c := nodeChecker{lines: map[string]int{}}
	c.check("", &doc, reflect.TypeFor[Config]())
	if len(c.problems) > 0 {
		t.Fatalf("the example does not check: %v", c.problems)
	}
	keys := configKeys("", reflect.TypeFor[Config]())
	if len(keys) < 150 {
		t.Fatalf("only %d keys found: the walk is broken", len(keys))
	}
	for _, key := range keys {
		if _, ok := c.lines[key]; ok {
			continue
		}
		leaf := key[strings.LastIndex(key, ".")+1:]
		if regexp.MustCompile(`(?m)^\s*#\s*` + regexp.QuoteMeta(leaf) + `:`).Match(data) {
			continue
		}
		t.Errorf("config.example.yaml lacks %s", key)
	}
}

// TestConfigErrors runs the built binary on bad files: each error names the
// YAML key and its line in the user's words, never a Go type, and the exit
// status is 1.
func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"engine:\n  workers: many\n", `engine.workers: line 2: "many" is not a number`},
		{"log:\n  levl: info\n", "log.levl: line 2: unknown key (did you mean level?)"},
		{"engine:\n  job_timeout: 15\n", "engine.job_timeout: line 2: 15 is not a duration: give it a unit, like 15s"},
		{"engine:\n  limits:\n    max_guidance: lots\n", `engine.limits.max_guidance: line 3: "lots" is not a number`},
		{"http:\n  max_body: 1.5\n", "http.max_body: line 2: 1.5 is not a whole number"},
		{"http:\n  metrics: maybe\n", `http.metrics: line 2: "maybe" is not true or false`},
		{"engine:\n  routes:\n    draw: local\n", `engine.routes.draw: line 3: should be a list, like [a, b], not "local"`},
		{"log: 3\n", "log: line 1: should hold keys"},
		{"quota:\n  default:\n    daily: -5\n", "quota.default.daily: line 3: must not be negative"},
		{"quota:\n  tiers:\n    vip: {daily: 5, concurrent: -1}\n", "quota.tiers.vip.concurrent: line 3: must not be negative"},
		{"quota:\n  chat_daily: -1\n", "quota.chat_daily: line 2: must not be negative"},
		{"quota:\n  admins: ['12345']\n", `quota.admins: line 2: "12345" must name its platform`},
		{"quota:\n  users: {'telegram:1': vip}\n", `quota.users.telegram:1: line 2: tier "vip" is not in quota.tiers`},
		{"quota:\n  time_zone: Mars/Olympus\n", `quota.time_zone: line 2: "Mars/Olympus" is not a time zone`},
		{"console:\n  lang: fr\n", `console.lang: line 2: must be en or zh`},
		{"engine:\n  workers: 0\n", "engine.workers: line 2: must be more than 0"},
		{"engine:\n  job_timeout: -1s\n", "engine.job_timeout: line 2: must be a duration above 0"},
		{"engine:\n  delivery_attempts: 0\n", "engine.delivery_attempts: line 2: must be at least 1"},
		{"retention:\n  jobs: -1h\n", "retention.jobs: line 2: must not be negative"},
		{"fetch:\n  timeout: 0s\n", "fetch.timeout: line 2: must be a duration above 0"},
		{"http:\n  listen: 8080\n", `http.listen: line 2: must be host:port or :port`},
		{"engine:\n  routes:\n    draw: [zhiqite]\n", "engine.routes.draw: line 3: vendors.zhiqite is not enabled"},
		{"engine:\n  routes:\n    draw: [zhiqte]\n", `engine.routes.draw: line 3: no vendor is named "zhiqte" (did you mean zhiqite?)`},
		{"engine:\n  routes:\n    drow: [local]\n", "engine.routes.drow: line 3: is not a command (did you mean draw?)"},
		{"engine:\n  routes:\n    anime: [showapi]\nvendors:\n  showapi: {enabled: true, app_code: c}\n", "engine.routes.anime: line 3: showapi does not offer /anime"},
		{"engine:\n  routes:\n    upscale: [zhiqite]\nvendors:\n  zhiqite: {enabled: true, app_code: c}\n",
			"engine.routes.upscale: line 3: zhiqite reads input images by link, which needs http.public_url"},
		{"local:\n\tenabled: true\n", "not tabs"},
	} {
		dir := t.TempDir()
		path := filepath.Join(dir, "c.yaml")
		os.WriteFile(path, []byte(tc.yaml), 0o600)
		out, err := runFail(dir, path)
		if code := exitCode(err); code != 1 {
			t.Errorf("%q: exit %d, want 1\n%s", tc.yaml, code, out)
		}
		if !strings.Contains(out, tc.want) {
			t.Errorf("%q:\n got %s\nwant %s", tc.yaml, out, tc.want)
		}
		if goType.MatchString(out) {
			t.Errorf("%q: a Go type in %s", tc.yaml, out)
		}
	}
}

var goType = regexp.MustCompile(`time\.Duration|main\.|\bint64\b|\bint\b|\bfloat64\b|!!str|!!int|construct`)

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := err.(interface{ ExitCode() int }); ok {
		return ee.ExitCode()
	}
	return -1
}

// TestConfigErrorsTogether: every problem in a file is reported at once, in
// file order.
func TestConfigErrorsTogether(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(path, []byte("quota:\n  global_daily: -3\nlog:\n  level: loud\n"), 0o600)
	_, err := LoadConfig(path)
	if err == nil {
		t.Fatal("accepted")
	}
	msg := err.Error()
	i, j := strings.Index(msg, "quota.global_daily: line 2"), strings.Index(msg, "log.level: line 4")
	if i < 0 || j < 0 || i > j || !strings.Contains(msg, "2 problems") {
		t.Fatalf("%s", msg)
	}
}

func TestSuggest(t *testing.T) {
	names := []string{"level", "format", "public_url", "listen", "workers"}
	for in, want := range map[string]string{"levl": "level", "lvel": "level", "publicurl": "public_url", "public-url": "public_url",
		"Listen": "listen", "wrokers": "workers", "colour": "", "x": ""} {
		if got := suggest(in, names); got != want {
			t.Errorf("suggest(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestEnvTurnsPlatformOn: a token in the environment enables its platform,
// unless the file says enabled: false, which is then a warning.
func TestEnvTurnsPlatformOn(t *testing.T) {
	env := func(kv ...string) func(string) (string, bool) {
		return func(k string) (string, bool) {
			i := slices.Index(kv, k)
			if i < 0 || i%2 == 1 {
				return "", false
			}
			return kv[i+1], true
		}
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "c.yaml")
	os.WriteFile(path, []byte("console:\n  enabled: false\n"), 0o600)
	l, err := load(path, env("PICBOT_TELEGRAM_TOKEN", "1:abc"))
	if err != nil || !l.cfg.Telegram.Enabled || l.cfg.Discord.Enabled {
		t.Fatalf("telegram %v discord %v err %v", l.cfg.Telegram.Enabled, l.cfg.Discord.Enabled, err)
	}
	l, err = load(path, env("PICBOT_DISCORD_TOKEN", "tok", "PICBOT_DISCORD_APPLICATION_ID", "123"))
	if err != nil || !l.cfg.Discord.Enabled || l.cfg.Discord.ApplicationID != "123" {
		t.Fatalf("discord %+v err %v", l.cfg.Discord, err)
	}
	os.WriteFile(path, []byte("console:\n  enabled: false\ntelegram:\n  enabled: false\n"), 0o600)
	l, err = load(path, env("PICBOT_TELEGRAM_TOKEN", "1:abc"))
	if err != nil || l.cfg.Telegram.Enabled || len(l.warnings) != 1 || !strings.Contains(l.warnings[0], "telegram.enabled: false") {
		t.Fatalf("telegram %v warnings %v err %v", l.cfg.Telegram.Enabled, l.warnings, err)
	}
}
