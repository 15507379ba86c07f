package showapi_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/picbot/picbot/engine"
	"github.com/picbot/picbot/engine/showapi"
	"github.com/picbot/picbot/engine/showapi/showapitest"
)

// The record keeps a LoRA's id and weight apart: --lora ID:W is lora=ID, lora_scale=W.
func TestLoRAWeight(t *testing.T) {
	for _, c := range []struct{ lora, id, scale string }{
		{"647944c3911a6fa8a2e2712b:0.6", "647944c3911a6fa8a2e2712b", "0.6"},
		{"647944c3911a6fa8a2e2712b", "647944c3911a6fa8a2e2712b", "0.9"},
	} {
		fake, v, _ := setup(t, showapitest.Options{}, showapi.Config{})
		j := drawJob("a red fox")
		j.Request.LoRA = c.lora
		submit(t, v, j, "")
		rec, ok := fake.Task(j.TaskID)
		if !ok || rec["lora"] != c.id || rec["lora_scale"] != c.scale {
			t.Fatalf("--lora %s: record %v", c.lora, rec)
		}
	}
}

// A 404 from the gateway on creation is a wrong create_path: the job fails
// at once, with a message that says so and an error in the log.
func TestCreate404(t *testing.T) {
	var logs bytes.Buffer
	fake := showapitest.Start(showapitest.Options{AppCode: testCode})
	t.Cleanup(fake.Close)
	v, err := showapi.New(showapi.Config{BaseURL: fake.URL, AppCode: testCode, CreatePath: "/nosuchpath"}, nil,
		slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	j := drawJob("a red fox")
	start := time.Now()
	_, err = v.Submit(context.Background(), j, engine.Task{ID: "J1-1"})
	if engine.ErrorCode(err) != engine.EINVALID || time.Since(start) > 5*time.Second {
		t.Fatalf("create 404: %v; want EINVALID at once (the engine then fails the job, not retries it)", err)
	}
	if e := engine.AsError(err); !strings.Contains(e.EN, "misconfigured") {
		t.Fatalf("message %q", e.EN)
	}
	if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "create_path=/nosuchpath") {
		t.Fatalf("log %s", logs.String())
	}
}

// The field holding the created task's id is configurable.
func TestCreateTaskField(t *testing.T) {
	_, v, _ := setup(t, showapitest.Options{}, showapi.Config{CreateTaskField: "nosuch.field"})
	j := drawJob("a red fox")
	submit(t, v, j, "") // falls back to task_id
	if j.TaskID == "" {
		t.Fatal("no task id")
	}
}

// A canonical sampler name reaches ShowAPI as its scheduler.
func TestCanonicalScheduler(t *testing.T) {
	fake, v, _ := setup(t, showapitest.Options{}, showapi.Config{})
	j := drawJob("a red fox")
	j.Request.Sampler = "Euler a"
	submit(t, v, j, "")
	if rec, _ := fake.Task(j.TaskID); rec["scheduler"] != "K_EULER_ANCESTRAL" {
		t.Fatalf("scheduler %v", rec["scheduler"])
	}
}
