package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
	t.Logf("picbot check vendors --spend:\n%s", text)
	if strings.Contains(text+errOut.String(), "SECRET") {
		t.Errorf("a credential in the output:\n%s", text)
	}
}
