package showapi_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/picbot/picbot/engine/showapi"
)

func TestNumber(t *testing.T) {
	for _, tc := range []struct {
		in      string
		wantInt int64
		intOK   bool
		wantF   float64
		floatOK bool
	}{
		{`"512"`, 512, true, 512, true},
		{`512`, 512, true, 512, true},
		{`" -1 "`, -1, true, -1, true},
		{`"0.9"`, 0, false, 0.9, true},
		{`"8.0"`, 8, true, 8, true},
		{`1e3`, 1000, true, 1000, true},
		{`null`, 0, false, 0, false},
		{`""`, 0, false, 0, false},
		{`"abc"`, 0, false, 0, false},
	} {
		var n showapi.Number
		if err := json.Unmarshal([]byte(tc.in), &n); err != nil {
			t.Errorf("%s: %v", tc.in, err)
			continue
		}
		i, ok := n.Int()
		if ok != tc.intOK || i != tc.wantInt {
			t.Errorf("%s: Int() = %d, %v; want %d, %v", tc.in, i, ok, tc.wantInt, tc.intOK)
		}
		f, ok := n.Float()
		if ok != tc.floatOK || f != tc.wantF {
			t.Errorf("%s: Float() = %g, %v; want %g, %v", tc.in, f, ok, tc.wantF, tc.floatOK)
		}
	}
	for _, bad := range []string{`true`, `{}`, `[1]`} {
		var n showapi.Number
		if err := json.Unmarshal([]byte(bad), &n); err == nil {
			t.Errorf("%s decoded as a number: %q", bad, n)
		}
	}
}

func TestList(t *testing.T) {
	for in, want := range map[string][]string{
		`["a", "", "b"]`:   {"a", "b"},
		`"a"`:              {"a"},
		`"[\"a\",\"b\"]"`:  {"a", "b"},
		`null`:             nil,
		`[]`:               nil,
		`[" https://x "]`:  {"https://x"},
		`[1, "https://y"]`: {"1", "https://y"},
	} {
		var l showapi.List
		if err := json.Unmarshal([]byte(in), &l); err != nil {
			t.Errorf("%s: %v", in, err)
			continue
		}
		if !slices.Equal(l, want) {
			t.Errorf("%s: %q, want %q", in, l, want)
		}
	}
}

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestSeedRecord decodes the document's /yourtaskresult example.
func TestSeedRecord(t *testing.T) {
	var env struct {
		Code showapi.Number `json:"showapi_res_code"`
		Fee  showapi.Number `json:"showapi_fee_num"`
		Body showapi.Record `json:"showapi_res_body"`
	}
	if err := json.Unmarshal(readTestdata(t, "taskresult.json"), &env); err != nil {
		t.Fatal(err)
	}
	r := env.Body
	ints := map[string]showapi.Number{"width": r.Width, "height": r.Height, "steps": r.Steps, "seed": r.Seed, "batch_size": r.BatchSize, "scale": r.Scale, "ret_code": r.RetCode, "fee": env.Fee, "code": env.Code}
	want := map[string]int64{"width": 512, "height": 768, "steps": 25, "seed": -1, "batch_size": 1, "scale": 8, "ret_code": 0, "fee": 1, "code": 0}
	for k, n := range ints {
		if got, ok := n.Int(); !ok || got != want[k] {
			t.Errorf("%s = %q, want %d", k, n, want[k])
		}
	}
	if f, ok := r.LoRAScale.Float(); !ok || f != 0.9 {
		t.Errorf("lora_scale %q", r.LoRAScale)
	}
	if r.Status != "finish" || r.TaskID != "sk202308152miohYCStMIdFRrvZGEfc" || r.ModelID != "Y99mNKb" || r.Scheduler != "K_EULER" || r.LoRA != "647944c3911a6fa8a2e2712b" {
		t.Errorf("record %+v", r)
	}
	if len(r.ResultList) != 1 || r.ResultList[0] != "https://xyzs.vip/images/20230815/mSAaxBuiSCYdFxsEbeSifU.png" {
		t.Errorf("result_list %q", r.ResultList)
	}
	created, ok := r.Created()
	if want := time.Date(2023, 8, 15, 1, 58, 53, 485e6, time.UTC); !ok || !created.Equal(want) {
		t.Errorf("ct %q → %v, want %v (Beijing time)", r.CT, created, want)
	}
}

func TestSeedTaskList(t *testing.T) {
	var env struct {
		Body showapi.TaskPage `json:"showapi_res_body"`
	}
	if err := json.Unmarshal(readTestdata(t, "tasklist.json"), &env); err != nil {
		t.Fatal(err)
	}
	p := env.Body
	for name, c := range map[string]struct {
		n    showapi.Number
		want int64
	}{"allPages": {p.AllPages, 1}, "currentPage": {p.CurrentPage, 1}, "allNum": {p.AllNum, 2}, "maxResult": {p.MaxResult, 5}} {
		if got, ok := c.n.Int(); !ok || got != c.want {
			t.Errorf("%s = %q, want %d", name, c.n, c.want)
		}
	}
	if len(p.Tasks) != 1 || p.Tasks[0].TaskID != "sk202308152miohYCStMIdFRrvZGEfc" || p.Tasks[0].Status != "finish" {
		t.Errorf("contentlist %+v", p.Tasks)
	}
}
