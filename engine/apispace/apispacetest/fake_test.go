package apispacetest_test

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/picbot/picbot/engine/apispace/apispacetest"
)

// post sends body to the fake with the documented headers, minus those in drop.
func post(t *testing.T, f *apispacetest.Server, path, body string, drop ...string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, f.BaseURL()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	h := map[string]string{"X-APISpace-Token": f.Token(), "Authorization-Type": "apikey", "Content-Type": "application/json"}
	for _, d := range drop {
		delete(h, d)
	}
	for k, v := range h {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	data, _ := io.ReadAll(resp.Body)
	json.Unmarshal(data, &m)
	return resp.StatusCode, m
}

func seedPayload(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("../testdata/seed_txt2img_payload.json")
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// TestSeedSampleAccepted: the seed's Python sample, as is, creates a task.
func TestSeedSampleAccepted(t *testing.T) {
	f := apispacetest.New(apispacetest.Options{Duration: 20 * time.Millisecond})
	defer f.Close()
	status, m := post(t, f, "/txt2img", seedPayload(t))
	data, _ := m["data"].(map[string]any)
	if status != 200 || m["code"] != 0.0 || m["msg"] != "success" || data["uid"] == "" {
		t.Fatalf("%d %v", status, m)
	}
	time.Sleep(50 * time.Millisecond)
	status, m = post(t, f, "/query-image", `{"uid":"`+data["uid"].(string)+`"}`)
	data, _ = m["data"].(map[string]any)
	if status != 200 || data["status"] != "finished" || data["safe"] != true || !strings.HasSuffix(data["cdn"].(string), ".png") {
		t.Fatalf("%d %v", status, m)
	}
	if v := f.Violations(); len(v) != 0 {
		t.Fatalf("violations %v", v)
	}
	if f.Billed() != 2 {
		t.Fatalf("billed %d", f.Billed())
	}
}

// TestViolations: the fake refuses and records what the documents do not allow.
func TestViolations(t *testing.T) {
	sample := seedPayload(t)
	for _, tc := range []struct {
		name, path, body string
		drop             []string
		status           int
		says             string
	}{
		{"NoToken", "/txt2img", sample, []string{"X-APISpace-Token"}, 401, "X-APISpace-Token"},
		{"NoAuthType", "/txt2img", sample, []string{"Authorization-Type"}, 401, "Authorization-Type"},
		{"NoContentType", "/txt2img", sample, []string{"Content-Type"}, 400, "Content-Type"},
		{"NotJSON", "/txt2img", `{"task":`, nil, 200, "not a JSON object"},
		{"WrongTask", "/txt2img", strings.Replace(sample, `"txt2img.sd"`, `"img2img.sd"`, 1), nil, 200, "task"},
		{"NotDoubled", "/txt2img", strings.Replace(sample, `,"model":"art","text":"玫瑰花"`, `,"model":"art"`, 1), nil, 200, "top-level text"},
		{"DoubleDiffers", "/txt2img", strings.Replace(sample, `"seed":-1,"num_steps":20,"notify_url"`, `"seed":7,"num_steps":20,"notify_url"`, 1), nil, 200, "top-level seed"},
		{"NoNotifyURL", "/txt2img", strings.Replace(sample, `,"notify_url":""`, ``, 1), nil, 200, "notify_url"},
		{"MissingParam", "/txt2img", strings.Replace(sample, `"sampler":"k_euler",`, ``, 2), nil, 200, "params.sampler"},
		{"QueryWithoutUID", "/query-image", `{}`, nil, 200, "uid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := apispacetest.New(apispacetest.Options{})
			defer f.Close()
			status, m := post(t, f, tc.path, tc.body, tc.drop...)
			if status != tc.status || m["code"] == 0.0 {
				t.Fatalf("%d %v", status, m)
			}
			v := f.Violations()
			if len(v) != 1 || !strings.Contains(v[0], tc.says) {
				t.Fatalf("violations %q, want one saying %q", v, tc.says)
			}
			if len(f.Tasks()) != 0 {
				t.Fatal("a task was created")
			}
		})
	}
	t.Run("WrongTokenIsNoViolation", func(t *testing.T) {
		f := apispacetest.New(apispacetest.Options{Token: "other"})
		defer f.Close()
		req, _ := http.NewRequest(http.MethodPost, f.BaseURL()+"/txt2img", strings.NewReader(sample))
		req.Header.Set("X-APISpace-Token", "nope")
		req.Header.Set("Authorization-Type", "apikey")
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 || len(f.Violations()) != 0 || f.Billed() != 0 {
			t.Fatalf("%d %v billed %d", resp.StatusCode, f.Violations(), f.Billed())
		}
	})
	t.Run("TooLargeIsRefusedNotViolation", func(t *testing.T) {
		f := apispacetest.New(apispacetest.Options{})
		defer f.Close()
		status, m := post(t, f, "/txt2img", strings.ReplaceAll(sample, `"w":512`, `"w":1024`))
		if status != 200 || m["code"] != float64(apispacetest.CodeBadParams) || len(f.Violations()) != 0 {
			t.Fatalf("%d %v %v", status, m, f.Violations())
		}
	})
}
