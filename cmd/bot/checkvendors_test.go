package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/picbot/picbot/engine/apispace/apispacetest"
	"github.com/picbot/picbot/engine/showapi/showapitest"
	"github.com/picbot/picbot/engine/zhiqite/zhiqitetest"
)

// picbot check vendors against the three fakes: one line per endpoint; a
// wrong guess (ShowAPI's create_path) shows the vendor's answer and the key.
func TestCheckVendors(t *testing.T) {
	zq := zhiqitetest.New(zhiqitetest.Options{AppCode: zhiqiteAppCode})
	defer zq.Close()
	sa := showapitest.Start(showapitest.Options{AppCode: "check-SECRET-showapi"})
	defer sa.Close()
	as := apispacetest.New(apispacetest.Options{Token: "check-SECRET-apispace"})
	defer as.Close()
	write := func(createPath string) string {
		path := filepath.Join(t.TempDir(), "picbot.yaml")
		cfg := fmt.Sprintf(`vendors:
  zhiqite: {enabled: true, base_url: %s, app_code: %s}
  showapi: {enabled: true, base_url: %s, app_code: check-SECRET-showapi, create_path: %s}
  apispace: {enabled: true, base_url: %s, token: check-SECRET-apispace}
`, zq.URL, zhiqiteAppCode, sa.URL, createPath, as.BaseURL())
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"check", "vendors", "-config", write("/createtask")}, nil, &out, &errOut); err != nil {
		t.Fatalf("%v\n%s\n%s", err, out.String(), errOut.String())
	}
	text := out.String()
	for _, want := range []string{
		"zhiqite saas/sd/v2/queryModelList: OK", "zhiqite saas/sd/v2/queryVaeList: OK", "zhiqite saas/sd/v2/queryTaskInfo: OK (a made-up task id: code 400",
		"showapi /models: OK", "showapi /yourtasklist: OK", "showapi /yourtaskresult: OK", "apispace /query-image: OK",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("no %q in:\n%s", want, text)
		}
	}
	if strings.Contains(text, "text2image") || len(zq.Tasks()) != 0 {
		t.Errorf("without --spend a task was made:\n%s", text)
	}
	out.Reset()
	err := run(context.Background(), []string{"check", "vendors", "-config", write("/nosuch"), "--spend"}, nil, &out, &errOut)
	text = out.String()
	if err == nil || !strings.Contains(text, "showapi /nosuch: FAILED") || !strings.Contains(text, "create_path") ||
		!strings.Contains(text, "zhiqite saas/sd/v2/text2image: OK") || !strings.Contains(text, "apispace /txt2img: OK") {
		t.Fatalf("%v:\n%s", err, text)
	}
	// Without a public URL the image kinds cannot be sent: said, not failed.
	if !strings.Contains(text, "zhiqite saas/tool/roop: SKIPPED") || !strings.Contains(text, "apispace /superres: SKIPPED") {
		t.Errorf("image kinds without http.public_url:\n%s", text)
	}
	t.Logf("picbot check vendors --spend:\n%s", text)
	if strings.Contains(text+errOut.String(), "SECRET") {
		t.Errorf("a credential in the output:\n%s", text)
	}
}

// --spend makes one smallest task of every kind each vendor offers, with
// the command's own input image served at http.public_url, and follows
// each to its end; a kind the fake refuses (APISpace's anime at another
// path) shows the vendor's answer and the key to change.
func TestCheckVendorsSpendEveryKind(t *testing.T) {
	zq := zhiqitetest.New(zhiqitetest.Options{AppCode: zhiqiteAppCode, Duration: 200 * time.Millisecond, ToolDuration: 200 * time.Millisecond})
	defer zq.Close()
	sa := showapitest.Start(showapitest.Options{AppCode: "check-SECRET-showapi", Duration: 200 * time.Millisecond})
	defer sa.Close()
	as := apispacetest.New(apispacetest.Options{Token: "check-SECRET-apispace", Duration: 200 * time.Millisecond, AnimePath: "/img2anime"})
	defer as.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	path := filepath.Join(t.TempDir(), "picbot.yaml")
	cfg := fmt.Sprintf(`http: {listen: "%[1]s", public_url: "http://%[1]s"}
vendors:
  zhiqite: {enabled: true, base_url: %[2]s, app_code: %[3]s, draw_duration: 100ms, tool_duration: 100ms, poll_every: 100ms}
  showapi: {enabled: true, base_url: %[4]s, app_code: check-SECRET-showapi, typical_duration: 100ms, poll_every: 100ms}
  apispace: {enabled: true, base_url: %[5]s, token: check-SECRET-apispace, draw_duration: 100ms, anime_duration: 100ms, superres_duration: 100ms, poll_every: 100ms}
`, addr, zq.URL, zhiqiteAppCode, sa.URL, as.BaseURL())
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	err = run(context.Background(), []string{"check", "vendors", "-config", path, "--spend", "-wait", "20s"}, nil, &out, &errOut)
	text := out.String()
	t.Logf("picbot check vendors --spend:\n%s%s", text, errOut.String())
	if err == nil || !strings.Contains(err.Error(), "1 endpoint(s) failed") {
		t.Errorf("err %v, want exactly the refused kind failed", err)
	}
	for _, want := range []string{
		"zhiqite saas/sd/v2/text2image: OK (task ", "zhiqite saas/sd/v2/image2image: OK (task ", "zhiqite saas/sd/v2/controlnet: OK (task ",
		"zhiqite saas/tool/enhance: OK (task ", "zhiqite saas/tool/roop: OK (task ",
		"showapi /createtask: OK (task ", "apispace /txt2img: OK (task ", "apispace /img2img: OK (task ", "apispace /superres: OK (task ",
	} {
		line := lineWith(text, want)
		if line == "" || !strings.Contains(line, "done in") {
			t.Errorf("no %q followed to its end in:\n%s", want, text)
		}
	}
	// ShowAPI says what each answer cost (showapi_fee_num): create and polls.
	if line := lineWith(text, "showapi /createtask: OK"); !strings.Contains(line, "billed") || !strings.Contains(line, "by the vendor's count") {
		t.Errorf("no billed figure: %q", line)
	}
	anime := lineWith(text, "apispace /portrait2anime: ")
	if !strings.Contains(anime, "FAILED") || !strings.Contains(anime, "[check vendors.apispace: paths.anime") {
		t.Errorf("the refused kind: %q", anime)
	}
	// Every kind made one task at its fake, each input served by the command.
	kinds := map[string]int{}
	for _, c := range zq.Calls() {
		if c.Status == 200 {
			kinds[c.Endpoint]++
		}
	}
	for _, ep := range []string{"text2image", "image2image", "controlnet", "enhance", "roop"} {
		n := 0
		for k, c := range kinds {
			if strings.HasSuffix(k, "/"+ep) || k == ep {
				n += c
			}
		}
		if n != 1 {
			t.Errorf("zhiqite %s: %d tasks, want 1 (%v)", ep, n, kinds)
		}
	}
	if strings.Contains(text+errOut.String(), "SECRET") {
		t.Errorf("a credential in the output:\n%s", text)
	}
}

// lineWith is the first line of text that contains s, or "".
func lineWith(text, s string) string {
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, s) {
			return l
		}
	}
	return ""
}

// Every guessed path, task name, field or code of the seed vendors is
// marked "unverified" in config.example.yaml, on its line or in the
// comment just above, so an operator knows what check vendors settles.
func TestExampleMarksGuesses(t *testing.T) {
	data, err := os.ReadFile("../../config.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	for _, key := range []string{"access_key_id", "access_key_secret", "scripts_key", "face_fix_model",
		"create_path", "create_encoding", "create_task_field", "list_order", "paths", "tasks"} {
		found := false
		for i, l := range lines {
			if !strings.HasPrefix(strings.TrimSpace(l), key+":") {
				continue
			}
			found = true
			// The comment above: the run of comment lines right before.
			above := ""
			for j := i - 1; j >= 0 && strings.HasPrefix(strings.TrimSpace(lines[j]), "#"); j-- {
				above += lines[j]
			}
			if !strings.Contains(l, "unverified") && !strings.Contains(above, "unverified") {
				t.Errorf("config.example.yaml:%d: %s is a guess not marked unverified: %s", i+1, key, l)
			}
		}
		if !found {
			t.Errorf("config.example.yaml has no %s", key)
		}
	}
}
