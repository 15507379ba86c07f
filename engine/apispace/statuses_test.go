package apispace_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/picbot/picbot/engine"
)

// Every status of Nolibox's query, as a reply: pending, working, finished
// (safe or not), exception, interrupted, not_found.
func TestQueryStatusTable(t *testing.T) {
	for _, c := range []struct {
		status, cdn string
		safe        bool
		want        engine.TaskState
	}{
		{"pending", "", true, engine.TaskQueued}, {"working", "", true, engine.TaskRunning},
		{"finished", "https://x.test/a.png", true, engine.TaskDone}, {"finished", "", false, engine.TaskFailed},
		{"exception", "", true, engine.TaskFailed}, {"interrupted", "", true, engine.TaskFailed}, {"not_found", "", true, engine.TaskFailed},
	} {
		body := fmt.Sprintf(`{"code":0,"msg":"success","data":{"uid":"b50fd9dc699b0f69e5dac9d150939c94","status":%q,"cdn":%q,"cos":"","safe":%v,"reason":"","create_time":1,"start_time":2}}`,
			c.status, c.cdn, c.safe)
		out, err := fuzzVendor(t, 0, []byte(body)).Query(context.Background(), fuzzJob(false))
		if err != nil || out.State != c.want {
			t.Errorf("%s (safe %v): %+v %v, want state %d", c.status, c.safe, out, err, c.want)
		}
	}
}
