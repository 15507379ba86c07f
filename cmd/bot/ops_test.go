package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/picbot/picbot/bots/chat"
	"github.com/picbot/picbot/bots/telegram/telegramtest"
	"github.com/picbot/picbot/engine"
	"github.com/picbot/picbot/engine/zhiqite/zhiqitetest"
	"github.com/picbot/picbot/moderation"
	"github.com/picbot/picbot/quota"
	"github.com/picbot/picbot/store"
)

func groupSays(messageID int, from int64, lang, text string) string {
	return fmt.Sprintf(`{"message": {"message_id": %d, "date": 1700000000,
		"from": {"id": %d, "is_bot": false, "first_name": "U%d", "language_code": %q},
		"chat": {"id": %s, "title": "Artists", "type": "supergroup"},
		"text": %q}}`, messageID, from, from, lang, tgGroup, text)
}

var zhiqiteDoneLine = regexp.MustCompile(`^Job \w+ done:`)

var opsQueuedRe = regexp.MustCompile(`Job (\w+) queued`)

// TestTelegramPresetsModeration runs the binary against the fake Bot API:
// a member may not change the chat's settings, a group administrator
// (getChatMember) sets a default size and preset that the next /draw uses;
// a blocked prompt is refused in the user's language with no job; /jobs
// lists the job with its seed, and /show sends its picture again.
func TestTelegramPresetsModeration(t *testing.T) {
	fake := telegramtest.New(tgToken, tgBot)
	defer fake.Close()
	group, _ := strconv.ParseInt(tgGroup, 10, 64)
	fake.SetMember(group, 502, "administrator")
	dir := t.TempDir()
	cfg := telegramConfig(t, dir, fake, `moderation:
  blocked_words: [裸体, gore]
presets:
  anime:
    prompt_prefix: "anime style"
    negative: lowres
    steps: 12
quota:
  default:
    every: 0s
`)
	b := startBot(t, dir, "-config", cfg)
	defer stopBot(t, b)

	fake.AddUpdate(groupSays(31, 501, "en", "/settings size 640x512"))
	waitCall(t, b, fake, "refusal to a member", sent("sendMessage", "reply_to_message_id", "31", "text", "Only this chat's admins"))
	fake.AddUpdate(groupSays(32, 502, "en", "/settings size 640x512"))
	waitCall(t, b, fake, "size set", sent("sendMessage", "reply_to_message_id", "32", "text", "size 640x512"))
	fake.AddUpdate(groupSays(33, 502, "en", "/settings preset anime"))
	waitCall(t, b, fake, "preset set", sent("sendMessage", "reply_to_message_id", "33", "text", "preset anime"))

	fake.AddUpdate(groupSays(34, 501, "zh-hans", "/draw 海边一个裸体的人"))
	refusal := waitCall(t, b, fake, "moderation refusal", sent("sendMessage", "reply_to_message_id", "34"))
	if txt := refusal.Params["text"]; !strings.Contains(txt, "不允许") || strings.Contains(txt, "裸体") || strings.Contains(txt, "queued") {
		t.Fatalf("refusal %q", txt)
	}

	fake.AddUpdate(groupSays(35, 501, "en", "/draw a red fox --seed 9"))
	status := waitCall(t, b, fake, "status", sent("sendMessage", "reply_to_message_id", "35"))
	txt := status.Params["text"]
	if !strings.Contains(txt, `"anime style, a red fox"`) || !strings.Contains(txt, "640x512") {
		t.Fatalf("the chat's preset and size not applied: %q", txt)
	}
	id := opsQueuedRe.FindStringSubmatch(txt)[1]
	waitCall(t, b, fake, "photo", sent("sendPhoto", "reply_to_message_id", "35"))

	fake.AddUpdate(groupSays(36, 501, "en", "/jobs"))
	jobs := waitCall(t, b, fake, "/jobs", sent("sendMessage", "reply_to_message_id", "36"))
	if !strings.Contains(jobs.Params["text"], id) || !strings.Contains(jobs.Params["text"], "640x512 · seed 9 · steps 12") {
		t.Fatalf("/jobs %q", jobs.Params["text"])
	}
	fake.AddUpdate(groupSays(37, 501, "en", "/show "+id))
	again := waitCall(t, b, fake, "/show photo", sent("sendPhoto", "reply_to_message_id", "37"))
	if !strings.Contains(again.Params["caption"], id) || len(again.Files["photo"].Data) == 0 {
		t.Fatalf("/show sent %v", again.Params)
	}
	if n := len(fake.Calls("getChatMember")); n != 3 {
		t.Errorf("getChatMember called %d times, want 3 (once per change asked)", n)
	}
	for _, c := range fake.Calls("sendMessage") {
		if c.Params["reply_to_message_id"] == "34" && strings.Contains(c.Params["text"], "queued") {
			t.Errorf("a refused prompt made a job: %v", c.Params)
		}
	}
}

// TestZhiqiteAccountPool runs the binary with two Zhiqite accounts on one
// base URL, their codes from the file and the environment: every task is
// created and queried with one account's code only, /admin stats shows each
// account's spend, summing to what the vendor billed, and no code is logged.
func TestZhiqiteAccountPool(t *testing.T) {
	const codeA, codeB = "e2e-POOL-code-aaaa", "e2e-POOL-code-bbbb"
	fake := zhiqitetest.New(zhiqitetest.Options{AppCode: codeA, MoreAppCodes: []string{codeB}, Duration: 300 * time.Millisecond})
	defer fake.Close()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "picbot.yaml")
	yaml := fmt.Sprintf(`data_dir: %s
console:
  out_dir: %s
engine:
  routes:
    draw: [zhiqite]
vendors:
  zhiqite:
    enabled: true
    base_url: %s
    callbacks: false
    draw_duration: 200ms
    poll_every: 100ms
    poll_max: 200ms
    accounts:
      - {name: a, app_code: %s, weight: 1}
      - {name: b, weight: 1, daily_limit: 1000}
`, filepath.Join(dir, "data"), filepath.Join(dir, "out"), fake.URL, codeA)
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	b := startBotEnv(t, dir, []string{"PICBOT_ZHIQITE_ACCOUNT_B_APP_CODE=" + codeB}, "-config", cfg)
	var lines []string
	for i := range 6 {
		lines = append(lines, fmt.Sprintf("/draw fox number %d --seed %d", i, i+1))
	}
	io.WriteString(b.stdin, strings.Join(lines, "\n")+"\n")
	// /admin stats once the jobs are done.
	for done, deadline := 0, time.Now().Add(time.Minute); done < 6; {
		select {
		case line := <-b.lines:
			if zhiqiteDoneLine.MatchString(line) {
				done++
			}
		case <-time.After(time.Until(deadline)):
			o, e := b.output()
			t.Fatalf("%d of 6 jobs done:\n%s\n%s", done, o, e)
		}
	}
	io.WriteString(b.stdin, "/admin stats\n")
	b.stdin.Close()
	out := b.wait(t, time.Minute)
	_, logs := b.output()
	ids := zhiqiteQueued.FindAllStringSubmatch(out, -1)
	if len(ids) != 6 {
		t.Fatalf("%d jobs queued:\n%s", len(ids), out)
	}
	for _, m := range ids {
		codes := map[string]bool{}
		for _, c := range fake.Calls() {
			if bytes.Contains(c.Body, []byte(m[1])) {
				codes[c.Header.Get("Authorization")] = true
			}
		}
		if len(codes) != 1 {
			t.Errorf("job %s's calls used %d accounts: %v", m[1], len(codes), codes)
		}
	}
	var sum int
	for _, m := range regexp.MustCompile(`(?m)^zhiqite/(a|b): (\d+) billed calls today`).FindAllStringSubmatch(out, -1) {
		n, _ := strconv.Atoi(m[2])
		sum += n
	}
	if sum != fake.Billed() || !strings.Contains(out, "zhiqite/b: ") || !strings.Contains(out, " of 1000") {
		t.Errorf("accounts' spend %d, the vendor billed %d:\n%s", sum, fake.Billed(), out)
	}
	if strings.Contains(out+logs, codeA) || strings.Contains(out+logs, codeB) {
		t.Error("an account's app code is in the output or the logs")
	}
}

// Account and moderation settings are checked by key.
func TestOpsConfigErrors(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"vendors:\n  zhiqite:\n    enabled: true\n    accounts:\n      - {weight: 1, app_code: x}\n", "vendors.zhiqite.accounts[0].name: must be one word"},
		{"vendors:\n  zhiqite:\n    enabled: true\n    accounts:\n      - {name: a}\n", "vendors.zhiqite.accounts[0].app_code: is required, or app_key and app_secret (or set PICBOT_ZHIQITE_ACCOUNT_A_APP_CODE)"},
		{"vendors:\n  apispace:\n    enabled: true\n    accounts:\n      - {name: a, app_code: x}\n", "vendors.apispace.accounts[0]: APISpace takes a token"},
		{"vendors:\n  showapi:\n    enabled: true\n    accounts:\n      - {name: a, app_code: x}\n      - {name: a, app_code: y}\n", `vendors.showapi.accounts[1].name: line 8: "a" is taken`},
		{"moderation:\n  lockouts: [1h, -2h]\n", "moderation.lockouts: line 4: each must be a duration above 0"},
		{"moderation:\n  nsfw_chats: [\"-100123\"]\n", "moderation.nsfw_chats: line 4: \"-100123\" needs its platform"},
		{"presets:\n  anime:\n    size: 13x13\n", "presets.anime.size: line 5: must be WIDTHxHEIGHT"},
	} {
		path := filepath.Join(t.TempDir(), "c.yaml")
		if err := os.WriteFile(path, []byte("console:\n  enabled: true\n"+tc.yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := load(path, func(string) (string, bool) { return "", false })
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.yaml, err, tc.want)
		}
	}
	// One account's code from the environment is enough.
	path := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(path, []byte("vendors:\n  zhiqite:\n    enabled: true\n    accounts:\n      - {name: spare-1}\n"), 0o600)
	env := map[string]string{"PICBOT_ZHIQITE_ACCOUNT_SPARE_1_APP_CODE": "c0de"}
	l, err := load(path, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil || l.cfg.Vendors.Zhiqite.Accounts[0].AppCode != "c0de" {
		t.Fatalf("env account code: %v", err)
	}
}

// `picbot check vendors` probes each account of a pool on its own.
func TestCheckVendorsAccounts(t *testing.T) {
	zq := zhiqitetest.New(zhiqitetest.Options{AppCode: "check-POOL-good"})
	defer zq.Close()
	path := filepath.Join(t.TempDir(), "picbot.yaml")
	os.WriteFile(path, []byte(fmt.Sprintf(`vendors:
  zhiqite:
    enabled: true
    base_url: %s
    accounts:
      - {name: good, app_code: check-POOL-good}
      - {name: stale, app_code: check-POOL-stale}
`, zq.URL)), 0o600)
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"check", "vendors", "-config", path}, nil, &out, &errOut)
	text := out.String()
	if err == nil || !strings.Contains(text, "zhiqite account good: saas/sd/v2/queryModelList: OK") ||
		!strings.Contains(text, "zhiqite account stale: saas/sd/v2/queryModelList: FAILED") {
		t.Fatalf("err %v:\n%s\n%s", err, text, errOut.String())
	}
	if strings.Contains(text+errOut.String(), "check-POOL-") {
		t.Error("an account's code is in the output")
	}
}

// The web console's unban lifts a moderation lockout too.
func TestWebUnbanLiftsLockout(t *testing.T) {
	db, err := store.Open(filepath.Join(t.TempDir(), "db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	q, err := quota.New(quota.DefaultConfig(), db, nil)
	if err != nil {
		t.Fatal(err)
	}
	mc := moderation.DefaultConfig()
	mc.BlockedWords, mc.LockoutAfter = []string{"gore"}, 1
	m, err := moderation.New(mc, db, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	a := &app{quota: q, svc: &chat.Service{Moderator: m}}
	ctx := context.Background()
	u := engine.UserRef{Platform: "telegram", ID: "9"}
	_ = m.Check(ctx, u, "gore", false)
	if m.Check(ctx, u, "a fox", false) == nil {
		t.Fatal("not locked out")
	}
	if err := a.webAdmin().Ban(ctx, "telegram:9", false); err != nil {
		t.Fatal(err)
	}
	if err := m.Check(ctx, u, "a fox", false); err != nil {
		t.Fatalf("still locked out after the console's unban: %v", err)
	}
}

// check config (and the start summary) names the pools, moderation and presets.
func TestOpsSummary(t *testing.T) {
	path := filepath.Join(t.TempDir(), "picbot.yaml")
	os.WriteFile(path, []byte(`vendors:
  zhiqite:
    enabled: true
    app_code: own
    accounts: [{name: main, app_code: x}, {name: spare, app_code: y}]
moderation:
  blocked_words: [gore, 裸体]
presets:
  photo: {steps: 30}
  anime: {size: 512x768}
`), 0o600)
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"check", "config", "-config", path}, nil, &out, &errOut); err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	for _, want := range []string{"accounts:             zhiqite (default, main, spare)",
		"moderation:           2 blocked words, 0 word files, 0 NSFW words, 0 exceptions; lockout after 3 refusals: 1h, 2h, 10h",
		"presets:              anime, photo"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("no %q in:\n%s", want, out.String())
		}
	}
}
