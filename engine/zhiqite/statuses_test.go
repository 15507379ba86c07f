package zhiqite_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/picbot/picbot/engine"
)

// Every row of the seed's status tables, as a query reply.
func TestSeedStatusTables(t *testing.T) {
	// queryTaskInfo: "1:生成中 2:成功 0:失败 3:排队中 5:任务上传中".
	for status, want := range map[int]engine.TaskState{1: engine.TaskRunning, 2: engine.TaskDone, 0: engine.TaskFailed, 3: engine.TaskQueued, 5: engine.TaskRunning} {
		body := fmt.Sprintf(`{"code":"200","msg":"success","data":{"id_task":"fuzzjob1-1","status":%d,"desc":"","temporaryImageDto":null,
			"differentialImageRspList":[{"img_audit":[{"confidence":null,"label":"nonLabel"}],"img_audit_status":true,"image_status":1,"image_url":"https://x.test/0.png","seed":1}]}}`, status)
		out, err := fuzzVendor(t, 0, []byte(body)).Query(context.Background(), fuzzJob(false))
		if err != nil || out.State != want {
			t.Errorf("queryTaskInfo status %d: %+v %v, want state %d", status, out, err, want)
		}
	}
	// Tools: enhance's "1:生成中 2:成功 0:失败"; roop's table says "1:成功 2:失败",
	// but its submit reply shows 1 with a link the file is not at yet: 2 with
	// a link is done, 2 without one failed, 1 with one still running.
	for _, c := range []struct {
		status any
		link   string
		want   engine.TaskState
	}{
		{1, "https://x.test/o.png", engine.TaskRunning}, {"1", "https://x.test/o.png", engine.TaskRunning},
		{2, "https://x.test/o.png", engine.TaskDone}, {"2", "https://x.test/o.png", engine.TaskDone},
		{2, "", engine.TaskFailed}, {0, "", engine.TaskFailed}, {0, "https://x.test/o.png", engine.TaskFailed},
		{3, "https://x.test/o.png", engine.TaskRunning},
	} {
		st, _ := c.status.(string)
		if st == "" {
			st = fmt.Sprint(c.status)
		} else {
			st = `"` + st + `"`
		}
		body := fmt.Sprintf(`{"code":"200","msg":"success","data":{"businessTaskId":"fuzzjob1-1","status":%s,"taskId":"pre1","outputImageUrl":%q}}`, st, c.link)
		out, err := fuzzVendor(t, 0, []byte(body)).Query(context.Background(), fuzzJob(true))
		if err != nil || out.State != c.want {
			t.Errorf("tool status %v link %q: %+v %v, want state %d", c.status, c.link, out, err, c.want)
		}
	}
}
