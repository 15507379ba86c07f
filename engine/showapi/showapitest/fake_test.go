package showapitest_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/picbot/picbot/engine/showapi/showapitest"
)

func get(t *testing.T, u string, header http.Header) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

// TestDocumentExamples checks the fake answers with the document's own examples.
func TestDocumentExamples(t *testing.T) {
	s := showapitest.Start(showapitest.Options{AppCode: "c"})
	defer s.Close()
	auth := http.Header{"X-Apig-Appcode": {"c"}}
	for path, file := range map[string]string{"/models": "models.json", "/yourtaskresult?task_id=nope": "notfound.json"} {
		status, body := get(t, s.URL+path, auth)
		want, err := os.ReadFile("../testdata/" + file)
		if err != nil {
			t.Fatal(err)
		}
		var a, b any
		json.Unmarshal(body, &a)
		json.Unmarshal(want, &b)
		ja, _ := json.Marshal(a)
		jb, _ := json.Marshal(b)
		if status != 200 || !bytes.Equal(ja, jb) {
			t.Errorf("%s: %d %s\nwant %s", path, status, ja, jb)
		}
	}
	// The seed task answers as the example, but for its envelope's id.
	_, body := get(t, s.URL+"/yourtaskresult?task_id="+showapitest.SeedTaskID, auth)
	want, _ := os.ReadFile("../testdata/taskresult.json")
	var got, exp map[string]any
	json.Unmarshal(body, &got)
	json.Unmarshal(want, &exp)
	ga, _ := json.Marshal(got["showapi_res_body"])
	ea, _ := json.Marshal(exp["showapi_res_body"])
	if !bytes.Equal(ga, ea) {
		t.Errorf("seed task\n got %s\nwant %s", ga, ea)
	}
}

func TestAuth(t *testing.T) {
	s := showapitest.Start(showapitest.Options{AppCode: "c", AppKey: "k", AppSecret: "s"})
	defer s.Close()
	for name, h := range map[string]http.Header{
		"None":         {},
		"WrongCode":    {"X-Apig-Appcode": {"d"}},
		"BadSignature": {"Authorization": {"SDK-HMAC-SHA256 Access=k, SignedHeaders=host;x-sdk-date, Signature=00"}, "X-Sdk-Date": {time.Now().UTC().Format("20060102T150405Z")}},
		"WrongKey":     {"Authorization": {"SDK-HMAC-SHA256 Access=j, SignedHeaders=host;x-sdk-date, Signature=00"}},
	} {
		status, body := get(t, s.URL+"/models", h)
		if status != http.StatusUnauthorized || !strings.Contains(string(body), "APIG.0303") {
			t.Errorf("%s: %d %s", name, status, body)
		}
	}
	if s.Billed() != 0 {
		t.Errorf("refused calls billed %d", s.Billed())
	}
	status, body := get(t, s.URL+"/nosuchapi", http.Header{"X-Apig-Appcode": {"c"}})
	if status != http.StatusNotFound || !strings.Contains(string(body), "APIG.0101") {
		t.Errorf("unknown API: %d %s", status, body)
	}
}

func TestCreateValidates(t *testing.T) {
	s := showapitest.Start(showapitest.Options{})
	defer s.Close()
	for body, ok := range map[string]bool{
		"prompt=fox":                   true,
		"prompt=fox&width=512&seed=-1": true,
		"prompt=":                      false,
		"prompt=fox&width=abc":         false,
		"prompt=fox&batch_size=9":      false,
		"prompt=fox&width=4096":        false,
		"prompt=fox&scale=much":        false,
		"prompt=fox&steps=0":           false,
	} {
		resp, err := http.Post(s.URL+"/createtask", "application/x-www-form-urlencoded", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		var env struct {
			Body struct {
				RetCode int    `json:"ret_code"`
				TaskID  string `json:"task_id"`
			} `json:"showapi_res_body"`
		}
		json.NewDecoder(resp.Body).Decode(&env)
		resp.Body.Close()
		if (env.Body.RetCode == 0 && env.Body.TaskID != "") != ok {
			t.Errorf("%s: %+v, want ok=%v", body, env.Body, ok)
		}
	}
}
