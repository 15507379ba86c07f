package chat

import (
	"context"
	"strings"

	"github.com/picbot/picbot/engine"
)

// Queuer is an Engine that keeps self-hosted backends' lines
// (engine.Engine is one): /queue shows them.
type Queuer interface {
	Queue(id string) engine.QueueInfo
	Queues() []engine.QueueInfo
}

// queue answers /queue: each self-hosted backend's load, and where the
// user's own jobs stand in its line.
func (s *Service) queue(ctx context.Context, u engine.UserRef) Reply {
	lang := u.Lang
	q, ok := s.Engine.(Queuer)
	var lines []string
	if ok {
		for _, b := range q.Queues() {
			lines = append(lines, T(lang, "%s: %d at the GPU, %d waiting.", "%s：GPU 上 %d 个，排队 %d 个。", b.Vendor, b.Held, b.Waiting))
		}
	}
	if len(lines) == 0 {
		return Reply{Text: T(lang, "No self-hosted GPU here: jobs go straight to the image services.", "这里没有自建 GPU：任务直接交给绘图服务。")}
	}
	jobs, err := s.Engine.Jobs(ctx, u, 20)
	if err != nil {
		return s.fail(lang, err, "")
	}
	for _, j := range jobs {
		if j.Finished() || j.State.Terminal() || j.State == engine.StateSucceeded {
			continue
		}
		if p := q.Queue(j.ID); p.Position > 0 {
			lines = append(lines, T(lang, "Job %s: number %d in line for %s, about %s.", "任务 %[1]s：%[3]s 排队第 %[2]d 位，约 %[4]s。", j.ID, p.Position, p.Vendor, roughDuration(p.ETA, lang)))
		} else if j.State.AtVendor() {
			lines = append(lines, T(lang, "Job %s: at %s now.", "任务 %s：正在 %s 上。", j.ID, j.Vendor))
		}
	}
	return Reply{Text: strings.Join(lines, "\n")}
}
