package chat

import (
	"context"
	"strings"

	"github.com/picbot/picbot/engine"
)

// Queuer is an Engine that keeps the lines of self-hosted backends and
// vendors with a concurrency bound (engine.Engine is one): /queue shows them.
type Queuer interface {
	Queue(id string) engine.QueueInfo
	Queues() []engine.QueueInfo
}

// WaitLister is a Queuer that lists every waiting job, for admins' /queue.
type WaitLister interface {
	Waiting() []engine.WaitingJob
}

// adminWaiting is how many waiting jobs an admin's /queue lists at most.
const adminWaiting = 30

// queue answers /queue: each limited backend's or vendor's load, and where
// the user's own jobs stand in its line; an admin sees every waiting job.
func (s *Service) queue(ctx context.Context, u engine.UserRef) Reply {
	lang := u.Lang
	q, ok := s.Engine.(Queuer)
	var lines []string
	if ok {
		for _, b := range q.Queues() {
			if b.GPU {
				lines = append(lines, T(lang, "%s: %d at the GPU, %d waiting.", "%s：GPU 上 %d 个，排队 %d 个。", b.Vendor, b.Held, b.Waiting))
			} else {
				lines = append(lines, T(lang, "%s: %d of %d running, %d waiting.", "%s：进行中 %d 个（上限 %d），排队 %d 个。", b.Vendor, b.Held, b.Slots, b.Waiting))
			}
		}
	}
	if len(lines) == 0 {
		return Reply{Text: T(lang, "No queue here: jobs go straight to the image services.", "这里没有排队：任务直接交给绘图服务。")}
	}
	if w, ok := s.Engine.(WaitLister); ok && s.Quota.IsAdmin(u) {
		all := w.Waiting()
		for i, j := range all {
			if i == adminWaiting {
				lines = append(lines, T(lang, "... and %d more.", "……还有 %d 个。", len(all)-i))
				break
			}
			lines = append(lines, T(lang, "%s #%d: job %s of %s.", "%[1]s 第 %[2]d 位：%[4]s 的任务 %[3]s。", j.Vendor, j.Position, j.ID, j.Owner))
		}
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
