package main

// The crash suite's breakdown of the vendors' billed calls: where the calls
// a run with kills makes beyond the run without come from.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"
)

func (r *crashRun) billDebug(what string, c crashCall, id string) {
	if os.Getenv("PICBOT_CRASH_BILLDEBUG") == "" {
		return
	}
	r.t.Logf("%s: life %d job %s %s %s %s task %s status %d, sent %s, answered in %v: %s (%s)", what, c.epoch, id, c.proxy, c.phase, c.method, c.taskID, c.status,
		c.sent.Format("15:04:05.000"), c.at.Sub(c.sent).Round(time.Millisecond), c.reply, r.killOf(c.epoch))
}

func (r *crashRun) killOf(epoch int) string {
	for _, k := range r.kills {
		if k.epoch == epoch {
			return fmt.Sprintf("%s %v %s", k.phase, k.mode, k.detail)
		}
	}
	return ""
}

// crashBill sorts the billed calls the proxies saw (a vendor's API answered
// and its fake bills it, see crashBillOf) by what they were for.
type crashBill struct {
	total int // billed calls seen at the proxies
	// Submissions: tasks the jobs recorded, tasks made again after a kill
	// lost the answer, and billed submissions that made no task (refusals).
	submits, resubmits, refused int
	// Polls of a task the job knew; of them, the first in a life after a
	// restart (of a task known before it), and of those, the ones whose
	// answer was "not finished": a restart that polled too early.
	polls, restartPolls, restartEarly int
	notDone                           int // polls answered "not finished", restarts or not
	// lookups: calls about a task the job had not recorded (asking a vendor
	// whether a lost submission made a task, ShowAPI's task list).
	lookups int
	// unrecorded: billed calls a kill left unrecorded on their job, the
	// calls in flight at a kill (polls and submissions: the job's last calls
	// of that life); inFlightKills: kills that left any.
	unrecorded, unrecordedPolls, inFlightKills int
	perToken                                   map[string]int // billed calls per command token
}

func (b crashBill) String() string {
	return fmt.Sprintf("%d billed calls: submissions %d (tasks recorded %d, made again %d, refused %d), polls %d (answered \"not finished\" %d; "+
		"first of a life after a restart %d, of which too early %d), lookups of unrecorded tasks %d; in flight at a kill (billed, not recorded) %d (%d polls) in %d kills",
		b.total, b.submits+b.resubmits+b.refused, b.submits, b.resubmits, b.refused, b.polls, b.notDone,
		b.restartPolls, b.restartEarly, b.lookups, b.unrecorded, b.unrecordedPolls, b.inFlightKills)
}

// crashBillOf marks c, a call through a vendor's API proxy, billed (the
// fakes bill every call answered 200; ShowAPI those with showapi_fee_num
// 1) and, for a poll, done when the answer names a result, with the task
// it asked about.
func crashBillOf(c *crashCall, req *http.Request, body []byte, status int, reply []byte) {
	if c.phase != phaseSubmit && c.phase != phasePoll {
		return
	}
	switch c.proxy {
	case "zhiqite", "apispace":
		c.billed = status == http.StatusOK
	case "showapi":
		c.billed = status == http.StatusOK && bytes.Contains(reply, []byte(`"showapi_fee_num":1`))
	default:
		return
	}
	if os.Getenv("PICBOT_CRASH_BILLDEBUG") != "" {
		c.reply = string(reply[:min(len(reply), 300)])
	}
	if c.phase != phasePoll {
		return
	}
	c.done = bytes.Contains(reply, []byte("/files/")) || bytes.Contains(reply, []byte("/cdn/")) ||
		bytes.Contains(reply, []byte("/cos/")) || bytes.Contains(reply, []byte("/images/"))
	var q struct {
		UID  string `json:"uid"`
		Task any    `json:"businessTaskId"`
	}
	switch c.proxy {
	case "zhiqite":
		if json.Unmarshal(body, &q) == nil && q.Task != nil {
			c.taskID = fmt.Sprint(q.Task)
		}
	case "apispace":
		if json.Unmarshal(body, &q) == nil {
			c.taskID = q.UID
		}
	case "showapi":
		c.taskID = req.URL.Query().Get("task_id")
	}
}

// billBreakdown sorts the run's billed calls; jobOf maps command tokens to
// jobs, killed the lives that ended in a SIGKILL.
func (r *crashRun) billBreakdown(calls []crashCall, jobOf map[string]string, killed map[int]bool) crashBill {
	b := crashBill{perToken: map[string]int{}}
	tokenOf := map[string]string{}
	for tok, id := range jobOf {
		tokenOf[id] = tok
	}
	final := r.snaps[len(r.snaps)-1]
	// The job of each call: a submission by its prompt's token (or, for
	// Zhiqite, its task id "<job>-<attempt>"), a poll by its task.
	jobOfTask := map[string]string{}
	jobOfCall := func(c crashCall) string {
		if c.phase == phaseSubmit && c.token != "" {
			return jobOf[c.token]
		}
		if id := jobOfTask[c.taskID]; id != "" {
			return id
		}
		if job, _, ok := strings.Cut(c.taskID, "-"); ok && final.jobs[job] != nil {
			return job
		}
		return ""
	}
	// The task each job knew at the end of each life.
	snapAt := map[int]*crashSnap{}
	for _, s := range r.snaps {
		snapAt[s.epoch] = s
	}
	knew := func(epoch int, id, task string) bool {
		s := snapAt[epoch]
		return s != nil && s.jobs[id] != nil && s.jobs[id].TaskID == task && task != ""
	}
	recordedTasks := map[string]bool{} // tasks some snapshot shows a job holding, or that a job tried
	for _, s := range r.snaps {
		for _, j := range s.jobs {
			if j.TaskID != "" {
				recordedTasks[j.Vendor+"/"+j.TaskID] = true
			}
		}
	}
	type key struct {
		job   string
		epoch int
	}
	billedIn := map[key][]crashCall{}
	created := map[key]map[string]bool{} // tasks made in a life, by job
	polled := map[key]map[string]bool{}  // tasks polled in a life, by job
	for _, c := range calls {
		if c.phase == phaseSubmit && c.created {
			id := jobOfCall(c)
			if id != "" {
				jobOfTask[c.taskID] = id
			}
		}
		if !c.billed {
			continue
		}
		b.total++
		id := jobOfCall(c)
		k := key{id, c.epoch}
		if id != "" {
			billedIn[k] = append(billedIn[k], c)
			b.perToken[tokenOf[id]]++
		}
		switch {
		case c.phase == phaseSubmit && c.created:
			if created[k] == nil {
				created[k] = map[string]bool{}
			}
			created[k][c.taskID] = true
		case c.phase == phaseSubmit:
			b.refused++
			r.billDebug("refused", c, id)
		case id == "" || c.taskID == "":
			b.lookups++
			r.billDebug("lookup without a job", c, id)
		case !knew(c.epoch-1, id, c.taskID) && !created[k][c.taskID] && !polled[k][c.taskID]:
			// Neither known from an earlier life nor made in this one: the
			// bot asks about a task it may have lost.
			b.lookups++
			r.billDebug("lookup", c, id)
			if polled[k] == nil {
				polled[k] = map[string]bool{}
			}
			polled[k][c.taskID] = true // its next polls in this life are polls
		default:
			b.polls++
			if !c.done {
				b.notDone++
			}
			if knew(c.epoch-1, id, c.taskID) && !polled[k][c.taskID] {
				b.restartPolls++
				if !c.done {
					b.restartEarly++
					r.billDebug("restart poll too early", c, id)
					if os.Getenv("PICBOT_CRASH_BILLDEBUG") != "" {
						r.t.Logf("job %s:\n%s", id, r.trace(id))
					}
				}
			}
			if polled[k] == nil {
				polled[k] = map[string]bool{}
			}
			polled[k][c.taskID] = true
		}
	}
	// Tasks made: the first of each job at each vendor is recorded, others made again.
	perVendor := map[string]int{}
	for _, c := range calls {
		if c.phase == phaseSubmit && c.created && c.billed {
			if id := jobOfCall(c); id != "" {
				perVendor[id+"/"+c.proxy]++
				if perVendor[id+"/"+c.proxy] > 1 {
					b.resubmits++
					continue
				}
			}
			b.submits++
		}
	}
	// In flight at a kill: what a job's record gained in a killed life
	// falls short of what the vendors billed for it in that life.
	lost := map[int]int{}
	for k, list := range billedIn {
		n := len(list)
		if !killed[k.epoch] {
			continue
		}
		var before, after int
		if s := snapAt[k.epoch-1]; s != nil && s.jobs[k.job] != nil {
			before = s.jobs[k.job].BilledCalls
		}
		if s := snapAt[k.epoch]; s != nil && s.jobs[k.job] != nil {
			after = s.jobs[k.job].BilledCalls
		}
		if u := n - (after - before); u > 0 {
			b.unrecorded += u
			for _, c := range list[max(0, n-u):] {
				if c.phase == phasePoll {
					b.unrecordedPolls++
				}
				if os.Getenv("PICBOT_CRASH_BILLDEBUG") != "" {
					var at time.Time
					for _, kl := range r.kills {
						if kl.epoch == k.epoch {
							at = kl.at
						}
					}
					r.t.Logf("unrecorded: life %d job %s %s %s task %s done %v killed %v, sent %v before the kill, answered %v before (%s)", k.epoch, k.job, c.proxy, c.phase, c.taskID, c.done, c.killed, at.Sub(c.sent), at.Sub(c.at), r.killOf(k.epoch))
				}
			}
			lost[k.epoch] += u
		}
	}
	// Calls no job can be told by (ShowAPI's task-list pages: a search's
	// pages are recorded on one job of those it served, or on none if the
	// kill came first) are settled per life: what a killed life's calls
	// billed beyond what all its jobs' records gained was cut off, as the
	// per-job count above is for calls that name their job.
	for epoch := range killed {
		billed, gained := 0, 0
		for _, c := range calls {
			if c.billed && c.epoch == epoch {
				billed++
			}
		}
		after := snapAt[epoch]
		if after == nil {
			continue
		}
		for id, j := range after.jobs {
			before := 0
			if s := snapAt[epoch-1]; s != nil && s.jobs[id] != nil {
				before = s.jobs[id].BilledCalls
			}
			gained += j.BilledCalls - before
		}
		if u := billed - gained - lost[epoch]; u > 0 {
			if os.Getenv("PICBOT_CRASH_BILLDEBUG") != "" {
				r.t.Logf("unrecorded: life %d, %d calls no job names (%d billed in the life, its jobs' records gained %d, %d counted by job)", epoch, u, billed, gained, lost[epoch])
			}
			b.unrecorded += u
			lost[epoch] += u
		}
	}
	b.inFlightKills = len(lost)
	if os.Getenv("PICBOT_CRASH_BILLDEBUG") != "" {
		made := map[string]time.Time{}
		var lines []string
		for _, c := range calls {
			if c.phase == phaseSubmit && c.created {
				made[c.taskID] = c.at
			}
			if c.phase == phasePoll && c.billed && !made[c.taskID].IsZero() {
				lines = append(lines, fmt.Sprintf("%s life %d +%v done %v", c.taskID, c.epoch, c.sent.Sub(made[c.taskID]).Round(time.Millisecond), c.done))
			}
		}
		r.t.Logf("polls by task, from its creation:\n%s", strings.Join(lines, "\n"))
		for id := range final.jobs {
			if n := b.perToken[tokenOf[id]]; n >= 5 {
				r.t.Logf("job %s, %d billed calls:\n%s", id, n, r.trace(id))
			}
		}
	}
	return b
}

// crashExcess compares the billed calls of each command with kills and
// without: the calls added, the calls saved, and the commands that cost more.
func (b *crashBill) add(o crashBill) {
	b.total += o.total
	b.submits += o.submits
	b.resubmits += o.resubmits
	b.refused += o.refused
	b.polls += o.polls
	b.restartPolls += o.restartPolls
	b.restartEarly += o.restartEarly
	b.notDone += o.notDone
	b.lookups += o.lookups
	b.unrecorded += o.unrecorded
	b.unrecordedPolls += o.unrecordedPolls
	b.inFlightKills += o.inFlightKills
}

func crashExcess(base, kills map[string]int) (added, saved, jobs int) {
	for tok, n := range kills {
		switch d := n - base[tok]; {
		case d > 0:
			added += d
			jobs++
		case d < 0:
			saved -= d
		}
	}
	for tok, n := range base {
		if _, ok := kills[tok]; !ok {
			saved += n
		}
	}
	return added, saved, jobs
}
