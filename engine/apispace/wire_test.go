package apispace

import (
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/picbot/picbot/engine"
)

// seedToJSON turns the seed's callback sample into JSON: curly quotes become
// straight ones, // comments outside strings go, Python's True and False
// become true and false. Nothing else changes, so the result holds exactly
// the seed's fields and values.
func seedToJSON(s string) string {
	s = strings.NewReplacer("“", `"`, "”", `"`).Replace(s)
	var b strings.Builder
	inString := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case inString:
			if c == '\\' && i+1 < len(s) {
				b.WriteByte(c)
				i++
				c = s[i]
			} else if c == '"' {
				inString = false
			}
		case c == '"':
			inString = true
		case c == '/' && i+1 < len(s) && s[i+1] == '/':
			for i < len(s) && s[i] != '\n' {
				i++
			}
			c = '\n'
		case strings.HasPrefix(s[i:], "True"):
			b.WriteString("true")
			i += 3
			continue
		case strings.HasPrefix(s[i:], "False"):
			b.WriteString("false")
			i += 4
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

func readJSON(t *testing.T, path string) any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return v
}

// TestSeedCallbackTestdata proves testdata/callback.json is the seed's
// sample, every field and value, only made valid JSON.
func TestSeedCallbackTestdata(t *testing.T) {
	raw, err := os.ReadFile("testdata/seed_callback.txt")
	if err != nil {
		t.Fatal(err)
	}
	if json.Valid(raw) {
		t.Fatal("the seed's sample is expected not to be JSON")
	}
	var fromSeed any
	if err := json.Unmarshal([]byte(seedToJSON(string(raw))), &fromSeed); err != nil {
		t.Fatalf("converted seed: %v\n%s", err, seedToJSON(string(raw)))
	}
	if want := readJSON(t, "testdata/callback.json"); !reflect.DeepEqual(fromSeed, want) {
		t.Fatalf("testdata/callback.json differs from the seed:\nseed: %v\nfile: %v", fromSeed, want)
	}
}

func TestDecodeCallback(t *testing.T) {
	data, err := os.ReadFile("testdata/callback.json")
	if err != nil {
		t.Fatal(err)
	}
	cb, err := decodeCallback(data)
	if err != nil {
		t.Fatal(err)
	}
	const uid = "b50fd9dc699b0f69e5dac9d150939c94"
	d := cb.Data
	if cb.UID != uid || d.UID != uid || !cb.Success.set || !cb.Success.val || !d.Safe.set || !d.Safe.val || d.Reason != "" {
		t.Fatalf("callback %+v", cb)
	}
	if !strings.HasPrefix(d.CDN, "https://ailab-huawei-cdn.nolibox.com/") || !strings.HasPrefix(d.COS, "https://ailab-1d01.obs.") {
		t.Fatalf("cdn %q cos %q", d.CDN, d.COS)
	}
	if d.CreateTime != 1680079480.1837924 || d.StartTime != 1680079480.189582 || d.EndTime != 1680079483.7931507 || d.Duration != 3.609358310699463 {
		t.Fatalf("times %v %v %v %v", d.CreateTime, d.StartTime, d.EndTime, d.Duration)
	}
	var elapsed struct {
		Pending            float64            `json:"pending"`
		RunAlgorithm       float64            `json:"run_algorithm"`
		AlgorithmLatencies map[string]float64 `json:"algorithm_latencies"`
		Upload             float64            `json:"upload"`
		Audit              float64            `json:"audit"`
	}
	if err := json.Unmarshal(d.ElapsedTimes, &elapsed); err != nil {
		t.Fatal(err)
	}
	if elapsed.AlgorithmLatencies["__total"] != 2.9998888969421387 || elapsed.Audit != 0.29493021965026855 || len(elapsed.AlgorithmLatencies) != 4 {
		t.Fatalf("elapsed_times %+v", elapsed)
	}
	var req struct {
		Task  string         `json:"task"`
		Model map[string]any `json:"model"`
	}
	if err := json.Unmarshal(d.Request, &req); err != nil {
		t.Fatal(err)
	}
	if req.Task != "txt2img.sd" || req.Model["text"] != "Roses" || req.Model["version"] != "dreamlike_v1" || len(req.Model) != 18 {
		t.Fatalf("request %+v", req)
	}
}

func TestFlexBool(t *testing.T) {
	for _, tc := range []struct {
		in       string
		set, val bool
		err      bool
	}{
		{"true", true, true, false}, {"false", true, false, false},
		{`"True"`, true, true, false}, {`"False"`, true, false, false}, {`"true"`, true, true, false},
		{"1", true, true, false}, {"0", true, false, false}, {`"0"`, true, false, false},
		{"null", false, false, false}, {`"maybe"`, false, false, true}, {"2", false, false, true},
	} {
		var b flexBool
		err := json.Unmarshal([]byte(tc.in), &b)
		if (err != nil) != tc.err || b.set != tc.set || b.val != tc.val {
			t.Errorf("%s: got %+v err %v", tc.in, b, err)
		}
	}
	var n flexInt
	if err := json.Unmarshal([]byte(`"0"`), &n); err != nil || !n.set || n.val != 0 {
		t.Errorf(`code "0": %+v %v`, n, err)
	}
	if err := json.Unmarshal([]byte(`"x"`), &n); err == nil {
		t.Error(`code "x" decoded`)
	}
}

func TestReplyShapes(t *testing.T) {
	var env envelope
	if err := json.Unmarshal(mustRead(t, "testdata/submit_reply.json"), &env); err != nil {
		t.Fatal(err)
	}
	var sub struct {
		UID string `json:"uid"`
	}
	if err := json.Unmarshal(env.Data, &sub); err != nil || !env.Code.set || env.Code.val != 0 || env.Msg != "success" || sub.UID == "" {
		t.Fatalf("submit reply %+v %+v %v", env, sub, err)
	}
	if err := json.Unmarshal(mustRead(t, "testdata/query_reply.json"), &env); err != nil {
		t.Fatal(err)
	}
	var q result
	if err := json.Unmarshal(env.Data, &q); err != nil {
		t.Fatal(err)
	}
	if q.Status != "finished" || !q.Safe.val || q.CDN == "" || q.COS == "" || q.UID != sub.UID {
		t.Fatalf("query reply %+v", q)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestRefusal: only replies about the request itself refuse it; the
// account, the gateway and the unknown stay plain errors, for failover.
func TestRefusal(t *testing.T) {
	v := &Vendor{cfg: Config{UnsafeCodes: []int{7001}, InvalidCodes: []int{7002}}}
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"Transport", errors.New("connection refused"), engine.EINTERNAL},
		{"Sensitive", &apiError{Status: 200, Code: 20001, Msg: "提示词包含敏感词"}, engine.EUNSAFE},
		{"SensitiveEN", &apiError{Status: 200, Code: 1, Msg: "NSFW prompt"}, engine.EUNSAFE},
		{"BadParams", &apiError{Status: 200, Code: 400, Msg: "参数错误: w 最大 768"}, engine.EINVALID},
		{"BadParams400", &apiError{Status: 400, Code: 400, Msg: "invalid param w"}, engine.EINVALID},
		{"InvalidToken", &apiError{Status: 200, Code: 401, Msg: "invalid token"}, engine.EINTERNAL},
		{"QuotaCode", &apiError{Status: 200, Code: 1003, Msg: "调用次数已用完"}, engine.EINTERNAL},
		{"Quota403", &apiError{Status: 403, Code: 403, Msg: "参数 quota exhausted"}, engine.EINTERNAL},
		{"RateLimit429", &apiError{Status: 429, Msg: "too many requests"}, engine.EINTERNAL},
		{"Server500", &apiError{Status: 500, Code: 400, Msg: "参数错误"}, engine.EINTERNAL},
		{"Unknown", &apiError{Status: 200, Code: 9, Msg: "something odd"}, engine.EINTERNAL},
		{"ConfiguredUnsafe", &apiError{Status: 200, Code: 7001, Msg: "x"}, engine.EUNSAFE},
		{"ConfiguredInvalid", &apiError{Status: 200, Code: 7002, Msg: "x"}, engine.EINVALID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := v.refusal(tc.err)
			if got := engine.ErrorCode(err); got != tc.want {
				t.Fatalf("code %s, want %s (%v)", got, tc.want, err)
			}
			if !errors.Is(err, tc.err) {
				t.Fatalf("%v does not wrap %v", err, tc.err)
			}
		})
	}
	if !(&apiError{Status: http.StatusOK, Code: 404, Msg: "任务不存在", Business: true}).notFound() {
		t.Error("a business 'not found' is not notFound")
	}
	if (&apiError{Status: http.StatusNotFound, Msg: "404 page not found"}).notFound() {
		t.Error("a bare 404 page is notFound")
	}
}
