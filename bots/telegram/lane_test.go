package telegram

import (
	"context"
	"fmt"
	"image/color"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/picbot/picbot/bots/telegram/telegramtest"
	"github.com/picbot/picbot/engine"
)

// TestPostLanes: four jobs, each for a chat of its own, are delivered at
// once while the fake Bot API holds sendPhoto. No more photos than there
// are post lanes come to the fake before the first is answered and noted on
// its job: a crash then would repeat that many posts, not four. Once let
// through, every job is delivered and noted, each photo posted once.
func TestPostLanes(t *testing.T) {
	for _, lanes := range []int{1, 2} {
		t.Run(fmt.Sprintf("lanes=%d", lanes), func(t *testing.T) {
			h := newHarness(t, "", nil, withConfig(func(c *Config) { c.PostLanes = lanes }))
			pic := testPNG(t, 32, 32, color.White)
			release := h.fake.Hold("sendPhoto")
			defer release(true)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var jobs []*engine.Job
			errs := make(chan error, 4)
			for i := range 4 {
				j := h.storedJob(fmt.Sprint(700+i), true, engine.EN, pic)
				jobs = append(jobs, j)
				go func() { errs <- deliver(h.bot, ctx, j) }()
			}
			if err := h.fake.WaitHeld(ctx, "sendPhoto"); err != nil {
				t.Fatal(err)
			}
			// The others would reach the fake within milliseconds: give them
			// time to try.
			for end := time.Now().Add(500 * time.Millisecond); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
				if n := h.fake.Held("sendPhoto"); n > lanes {
					t.Fatalf("%d photos posted and not recorded at once; %d post lanes", n, lanes)
				}
			}
			if n := h.fake.Held("sendPhoto"); n != lanes {
				t.Errorf("%d photos under way with %d post lanes free to take them", n, lanes)
			}
			release(true)
			for range jobs {
				if err := <-errs; err != nil {
					t.Fatalf("Deliver: %v", err)
				}
			}
			for _, j := range jobs {
				stored, err := h.engine.Job(ctx, j.ID)
				if err != nil {
					t.Fatal(err)
				}
				if stored.Meta[metaSent] != "1" {
					t.Errorf("job %s: delivery noted %q, want 1", j.ID, stored.Meta[metaSent])
				}
				if n := len(ok(inChat(h, "sendPhoto", j.Chat.ChatID))); n != 1 {
					t.Errorf("job %s: %d photos posted, want 1", j.ID, n)
				}
			}
		})
	}
}

// inChat is h's calls of method to chat.
func inChat(h *harness, method, chat string) []telegramtest.Call {
	var out []telegramtest.Call
	for _, c := range h.fake.Calls(method) {
		if c.Params["chat_id"] == chat {
			out = append(out, c)
		}
	}
	return out
}

// BenchmarkPostLanes: results for as many chats, one each, delivered by
// sixteen workers as the engine's (a Later puts the job back after its
// wait), against a fake Bot API whose sendPhoto takes the given time, as an
// upload over a network does. It reports posts a second with 1 and with 4
// post lanes.
//
//	go test -run XXX -bench PostLanes -benchtime 200x -count 5 ./bots/telegram
func BenchmarkPostLanes(b *testing.B) {
	for _, upload := range []time.Duration{0, 20 * time.Millisecond, 100 * time.Millisecond} {
		for _, lanes := range []int{1, 4} {
			b.Run(fmt.Sprintf("upload=%s/lanes=%d", upload, lanes), func(b *testing.B) {
				benchLanes(b, lanes, upload)
			})
		}
	}
}

func benchLanes(b *testing.B, lanes int, upload time.Duration) {
	h := newHarness(b, "", nil, withConfig(func(c *Config) {
		c.PostLanes = lanes
		c.GlobalRate = 1_000_000 // the lanes are measured, not Telegram's limit
	}))
	h.fake.Latency("sendPhoto", upload)
	pic := testPNG(b, 32, 32, color.White)
	jobs := make([]*engine.Job, b.N)
	for i := range jobs {
		jobs[i] = h.storedJob(fmt.Sprint(10_000+i), true, engine.EN, pic)
	}
	queue := make(chan *engine.Job, b.N)
	ctx, cancel := context.WithCancel(context.Background())
	var (
		wg   sync.WaitGroup
		left sync.WaitGroup
	)
	left.Add(b.N)
	// As the engine's: a delivery told to come back is due again after its
	// wait, or at once when the lanes call it back.
	var (
		mu      sync.Mutex
		waits   = map[string]*time.Timer{}
		requeue = func(id string) {
			mu.Lock()
			t, ok := waits[id]
			delete(waits, id)
			mu.Unlock()
			if !ok || !t.Stop() {
				return // not waiting, or its wait ended already
			}
			defer wg.Done()
			if stored, err := h.engine.Job(ctx, id); err == nil && ctx.Err() == nil {
				queue <- stored
			}
		}
	)
	h.bot.SetWake(func(id string) { go requeue(id) })
	b.ResetTimer()
	for _, j := range jobs {
		queue <- j
	}
	for range 16 {
		wg.Go(func() {
			for {
				var j *engine.Job
				select {
				case <-ctx.Done():
					return
				case j = <-queue:
				}
				err := h.bot.Deliver(ctx, j)
				if d, later := engine.AsLater(err); later {
					wg.Add(1)
					mu.Lock()
					var t *time.Timer
					t = time.AfterFunc(max(d, 50*time.Millisecond), func() { // the engine's minLater
						mu.Lock()
						if waits[j.ID] == t {
							delete(waits, j.ID)
						}
						mu.Unlock()
						defer wg.Done()
						if stored, err := h.engine.Job(ctx, j.ID); err == nil && ctx.Err() == nil {
							queue <- stored
						}
					})
					waits[j.ID] = t
					mu.Unlock()
					continue
				}
				if err != nil {
					b.Errorf("Deliver %s: %v", j.ID, err)
				}
				left.Done()
			}
		})
	}
	left.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "posts/s")
	cancel()
	wg.Wait()
}

// TestLaneCallsBackTold: through the engine, three results for three chats
// come while the one post lane is held by a slow upload, after uploads of
// 2 s taught the lane its holds: one waits in line, the next is told to
// come back after the holds ahead (4 s). The uploads turn quick: once the
// one in line has posted and freed the lane, the one told is called back
// at once, not left to its wait while the lane stands idle (as under a
// loaded database, where one slow hold among quick ones had every delivery
// behind it told to come back seconds later, and the lane idled a third of
// the time while a replica's results waited: TestReplicasRandomKills).
func TestLaneCallsBackTold(t *testing.T) {
	h := newHarness(t, "", nil, withRender(10*time.Millisecond), withConfig(func(c *Config) { c.PostLanes = 1 }))
	draw := func(chat int) {
		h.fake.AddUpdate(map[string]any{"message": map[string]any{
			"message_id": 40,
			"from":       map[string]any{"id": chat, "is_bot": false, "first_name": "u"},
			"chat":       map[string]any{"id": chat, "type": "private", "first_name": "u"},
			"date":       1700000010,
			"text":       "/draw a fox",
		}})
	}
	posted := func(chat int) (time.Time, bool) {
		for _, c := range inChat(h, "sendPhoto", strconv.Itoa(chat)) {
			if c.Status == 200 {
				return c.At, true
			}
		}
		return time.Time{}, false
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for end := time.Now().Add(20 * time.Second); !ok(); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(end) {
				t.Fatalf("%s: not in 20 s\n%s", what, h.logs.String())
			}
		}
	}
	h.fake.Latency("sendPhoto", 2*time.Second)
	draw(801)
	waitFor("the first, slow, post", func() bool { _, ok := posted(801); return ok })
	h.fake.Latency("sendPhoto", 0)

	release := h.fake.Hold("sendPhoto")
	defer release(true)
	for _, chat := range []int{802, 803, 804} {
		draw(chat)
	}
	later := regexp.MustCompile(`msg="post later" job_id=\w+ after=(\S+)`)
	var told time.Duration
	waitFor("a post held, one in line, one told to come back", func() bool {
		if h.fake.Held("sendPhoto") != 1 {
			return false
		}
		for _, m := range later.FindAllStringSubmatch(h.logs.String(), -1) {
			if d, err := time.ParseDuration(m[1]); err == nil && d >= time.Second {
				told = d
				return true
			}
		}
		return false
	})
	freed := time.Now()
	release(true)
	var last time.Time
	waitFor("every post", func() bool {
		last = time.Time{}
		for _, chat := range []int{802, 803, 804} {
			at, ok := posted(chat)
			if !ok {
				return false
			}
			if at.After(last) {
				last = at
			}
		}
		return true
	})
	if took := last.Sub(freed); took > time.Second {
		t.Errorf("the last post came %s after the held one was let through: the one told to come back after %s was not called back when the lane freed", took.Round(time.Millisecond), told)
	}
}

// TestStalledPostKeepsWorkers: after quick posts taught the one lane its
// holds, an upload stalls while a dozen chats' results come for the lane.
// One waits in line and the rest are told to come back, so another chat's
// job, drawn next, is still rendered in its usual time: before, the line
// took as many deliveries as 100 ms of quick holds would clear, which was
// every engine worker, and they waited out the stall (up to 30 s), with
// nothing else on the replica moving. Let through, every result is posted
// once.
func TestStalledPostKeepsWorkers(t *testing.T) {
	h := newHarness(t, "", nil, withRender(10*time.Millisecond), withConfig(func(c *Config) { c.PostLanes = 1 }))
	draw := func(chat int) {
		h.fake.AddUpdate(map[string]any{"message": map[string]any{
			"message_id": 40,
			"from":       map[string]any{"id": chat, "is_bot": false, "first_name": "u"},
			"chat":       map[string]any{"id": chat, "type": "private", "first_name": "u"},
			"date":       1700000010,
			"text":       "/draw a fox",
		}})
	}
	jobState := func(chat int) engine.State {
		jobs := h.jobsOf(strconv.Itoa(chat))
		if len(jobs) == 0 {
			return ""
		}
		return jobs[0].State
	}
	for _, chat := range []int{801, 802} { // quick posts
		draw(chat)
		h.wait(20*time.Second, "a quick post", is("sendPhoto", "chat_id", strconv.Itoa(chat)))
	}
	release := h.fake.Hold("sendPhoto")
	defer release(true)
	chats := make([]int, 12)
	for i := range chats {
		chats[i] = 810 + i
		draw(chats[i])
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := h.fake.WaitHeld(ctx, "sendPhoto"); err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(20 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		succeeded := 0
		for _, chat := range chats {
			if jobState(chat) == engine.StateSucceeded {
				succeeded++
			}
		}
		if succeeded == len(chats) {
			break // all rendered: a worker each has tried the lane
		}
		if time.Now().After(end) {
			t.Fatalf("%d of %d results rendered while one upload stalls: workers wait in the lane's line\n%s", succeeded, len(chats), h.logs.String())
		}
	}
	drawn := time.Now()
	draw(900)
	for jobState(900) != engine.StateSucceeded {
		if took := time.Since(drawn); took > 5*time.Second {
			t.Fatalf("another chat's job is %q %s after it was drawn (10 ms to render) while one upload stalls: no worker free", jobState(900), took.Round(time.Millisecond))
		}
		time.Sleep(5 * time.Millisecond)
	}
	release(true)
	for _, chat := range append(chats, 900) {
		h.wait(20*time.Second, "every post", is("sendPhoto", "chat_id", strconv.Itoa(chat)))
	}
	for _, chat := range chats {
		if n := len(ok(inChat(h, "sendPhoto", strconv.Itoa(chat)))); n != 1 {
			t.Errorf("chat %d: %d photos posted, want 1", chat, n)
		}
	}
}
