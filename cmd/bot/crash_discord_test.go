package main

// The crash suite's Discord setup: commands arrive as signed HTTP
// interactions (discord.mode http), each answered in its HTTP reply with a
// deferred response; the bot edits the original response through the
// interaction's webhook (the job's acceptance, progress, the result) while
// the token lives, and after it posts the result to the channel with the
// bot token (late delivery). The token lifetime is cut, to one of
// crashDiscordLifetimes by life, so that both paths are taken in every run,
// on a quiet machine or a loaded one. Discord
// is the test: a fake REST API behind a recording proxy, which refuses a
// token Discord never heard acknowledged (10015) and one past its lifetime
// (50027), as Discord does; and the users, who post interactions one at a
// time and type a command again when Discord could not reach the bot.
// See crash_test.go for the design; beside its invariants (charges and
// counters, posts at most once per life and job, submissions, billed calls,
// phases), here:
//
//   - Discord never posts an interaction twice. One the bot never answered
//     may be lost as a command: the user sees "the application did not
//     respond" and types it again (here: when the post never reached the
//     bot; when it may have, the user gives up), so a lost command is one
//     whose only post a kill interrupted, at most one per kill;
//   - an interaction answered with a deferred response is a promise: after
//     every kill it has its job in the store or is recorded as taken in
//     (discord.Pending), and at the end its job is delivered, or failed with
//     a notice, whatever the kills;
//   - a command makes at most one job, over all its interactions;
//   - a result goes by token only while Discord takes the token, and late to
//     the channel otherwise: the fake refuses what Discord would, so a
//     result counts as posted only where the user sees it; the results the
//     fake took are counted against the proxy's record.

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/picbot/picbot/bots/discord"
	"github.com/picbot/picbot/bots/discord/discordtest"
	"github.com/picbot/picbot/engine"
)

// The Discord phases beside the vendors' (submit, poll, callback,
// download) and the timer. phaseIntake is Discord posting an interaction
// and reading the bot's deferred answer in the reply: killed before, the
// bot never got it; during, it may or may not have; after, the bot
// answered but Discord did not hear it in time ("the application did not
// respond"); after the reply, Discord showed "thinking…" and the bot dies
// while it takes the command in.
const (
	phaseEdit crashPhase = "edit" // an edit of the original response by token: the acceptance, progress, a failure notice
	phaseLate crashPhase = "late" // a message to the channel with the bot token: a result or notice after the token
)

// crashDiscordLifetimes are the interaction token's lifetimes in the
// Discord setup (15 minutes on Discord), for odd and even lives: in the
// short one most jobs end after their token and are delivered late, in the
// long one most jobs of a life end within it, and those a kill carries
// into the next life end late. The same for the machine's load: a job
// takes from about 1 s (one setup alone) to 3 s or more (all five). Not
// shorter: the adapter keeps a tenth of the lifetime as its margin, and a
// call on a loaded machine can take a good part of 100 ms.
var crashDiscordLifetimes = [2]time.Duration{8 * time.Second, 2 * time.Second}

// crashDiscordLateLifetime is the lifetime in a life whose kill is aimed at
// a late post: about a job's own time, so that about half end after it.
const crashDiscordLateLifetime = 1200 * time.Millisecond

// lifetime sets life epoch's token lifetime: the short one in odd lives,
// and in any life whose kill is aimed at a late post, which needs a job to
// outlive its token (in a long life only those a kill carried over do).
func (d *crashDiscord) lifetime(epoch int) time.Duration {
	d.r.mu.Lock()
	defer d.r.mu.Unlock()
	switch {
	case d.r.plan.phase == phaseLate:
		// A life has a few jobs of under a second each: most of them would
		// still end within even the short lifetime.
		d.lifetimes[epoch] = crashDiscordLateLifetime
	case epoch%2 == 1:
		d.lifetimes[epoch] = crashDiscordLifetimes[1]
	default:
		d.lifetimes[epoch] = crashDiscordLifetimes[0]
	}
	return d.lifetimes[epoch]
}

// crashAttempt is one interaction Discord posted for a command.
type crashAttempt struct {
	cmd   *crashCmd
	id    string
	token string
	epoch int
	state attemptState
	at    time.Time // when Discord got the deferred answer
}

type attemptState int

const (
	attemptNotSent   attemptState = iota // the bot never got it: the user types the command again
	attemptAnswered                      // Discord got the deferred answer: "thinking…"
	attemptUncertain                     // the bot may have got it; Discord heard no answer
	attemptRefused                       // answered at once, politely (restarting): the user types it again
)

func (s attemptState) String() string {
	return [...]string{"not sent", "answered", "uncertain", "refused"}[s]
}

// crashDiscord is the Discord side of a run.
type crashDiscord struct {
	r      *crashRun
	api    *discordtest.Server
	priv   ed25519.PrivateKey
	pub    string
	proxy  *crashProxy
	client *http.Client // Discord's, for interactions: a new connection each

	// Guarded by r.mu.
	attempts []*crashAttempt
	byToken  map[string]*crashAttempt
	queue    []*crashCmd // commands waiting for an interaction Discord can deliver
	seq      int
	refused  map[string]int // results the fake refused, by job
	wake     chan struct{}
	// lifetimes are the token lifetimes by life (lifetime).
	lifetimes map[int]time.Duration
}

func (r *crashRun) newCrashDiscord() *crashDiscord {
	d := &crashDiscord{r: r, api: discordtest.NewServer(r.t), byToken: map[string]*crashAttempt{}, refused: map[string]int{}, wake: make(chan struct{}, 1), lifetimes: map[int]time.Duration{}}
	d.priv, d.pub = discordtest.Keys(r.t)
	d.client = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	d.proxy = &crashProxy{run: r, name: "discord", upstream: func() string { return d.api.URL }, phase: d.phase}
	d.api.Intercept(d.refuse)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.push(ctx)
	}()
	r.t.Cleanup(func() {
		cancel()
		<-done
	})
	return d
}

// phases are the setup's phases. Intake is listed twice: once every
// phase is hit, it is aimed at twice as often, for the moments between a
// deferral and the job (its after-reply kills, see nextPlan) are where
// Discord's promise is most at risk.
func (d *crashDiscord) phases(callbacks bool) []crashPhase {
	p := []crashPhase{phaseIntake, phaseIntake, phaseEdit, phasePost, phaseLate, phaseSubmit, phasePoll, phaseDownload, phaseTimer}
	if callbacks {
		p = append(p, phaseCallback)
	}
	return p
}

// config is the discord block of life epoch's configuration.
func (d *crashDiscord) config(epoch int) string {
	return fmt.Sprintf("discord:\n  enabled: true\n  mode: http\n  token: crash-discord-token\n  application_id: %q\n  public_key: %s\n  api_base: %s\n  guild_ids: [\"111\"]\n  token_lifetime: %s\n",
		discordApp, d.pub, d.r.listen(d.proxy, epoch), d.lifetime(epoch))
}

func crashGuild(user int64) string   { return "7" + strconv.FormatInt(user, 10) }
func crashChannel(user int64) string { return "8" + strconv.FormatInt(user, 10) }

// add queues the next n planned commands for Discord to post.
func (d *crashDiscord) add(n int) {
	r := d.r
	for range n {
		if len(r.cmds) >= len(r.planned) {
			break
		}
		c := r.planned[len(r.cmds)]
		r.cmds = append(r.cmds, c)
		r.mu.Lock()
		d.queue = append(d.queue, c)
		r.mu.Unlock()
	}
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

var crashDrawRe = regexp.MustCompile(`^/draw (.*?) --size (\S+) --seed (\d+)$`)

// interaction is the payload Discord posts for attempt a: /draw with options.
func (d *crashDiscord) interaction(a *crashAttempt) []byte {
	c := a.cmd
	m := crashDrawRe.FindStringSubmatch(c.text)
	if m == nil {
		d.r.t.Fatalf("command %q: not a /draw the Discord setup can post", c.text)
	}
	prompt, count := m[1], 0
	if strings.Contains(prompt, "--n 2") {
		prompt, count = strings.TrimSpace(strings.ReplaceAll(prompt, "--n 2", "")), 2
	}
	seed, _ := strconv.Atoi(m[3])
	opts := []map[string]any{
		{"name": "prompt", "type": 3, "value": prompt},
		{"name": "size", "type": 3, "value": m[2]},
		{"name": "seed", "type": 4, "value": seed},
	}
	if count > 0 {
		opts = append(opts, map[string]any{"name": "count", "type": 4, "value": count})
	}
	uid := strconv.FormatInt(c.user, 10)
	body, err := json.Marshal(map[string]any{
		"id": a.id, "application_id": discordApp, "type": 2, "token": a.token, "version": 1,
		"guild_id": crashGuild(c.user), "channel_id": crashChannel(c.user), "locale": "en-US", "context": 0,
		"member": map[string]any{"user": map[string]any{"id": uid, "username": "crash", "discriminator": "0"},
			"roles": []string{}, "permissions": "0", "joined_at": "2024-01-01T00:00:00.000000+00:00"},
		"data": map[string]any{"id": "9000", "name": "draw", "type": 1, "options": opts},
	})
	if err != nil {
		d.r.t.Fatal(err)
	}
	return body
}

// push is Discord and its users: it posts the oldest command waiting to the
// bot of the life current, one interaction at a time, each once. A
// command whose post never reached the bot (or was answered "restarting")
// is typed again, as a new interaction; one answered is done; one whose
// post a kill interrupted is given up.
func (d *crashDiscord) push(ctx context.Context) {
	r := d.r
	for {
		r.mu.Lock()
		var c *crashCmd
		if len(d.queue) > 0 {
			c = d.queue[0]
		}
		r.mu.Unlock()
		if c == nil {
			select {
			case <-ctx.Done():
				return
			case <-d.wake:
			}
			continue
		}
		epoch, url := r.current(), r.botURL()
		state := attemptNotSent
		if url != "" {
			r.mu.Lock()
			d.seq++
			a := &crashAttempt{cmd: c, id: strconv.FormatInt(1400000000000000000+int64(d.seq), 10),
				token: fmt.Sprintf("crashtok%s%05d", r.setup.tag, d.seq), epoch: epoch}
			d.attempts = append(d.attempts, a)
			d.byToken[a.token] = a
			r.mu.Unlock()
			state = d.post(ctx, epoch, url, a)
		}
		if state == attemptAnswered || state == attemptUncertain {
			r.mu.Lock()
			d.queue = d.queue[1:]
			r.mu.Unlock()
			continue
		}
		// Discord told the user the application did not respond: a pause,
		// and the user types the command again.
		select {
		case <-ctx.Done():
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// post sends attempt a to the bot of epoch, as Discord does, with the kill
// the plan aims at phaseIntake, and says what Discord made of it.
func (d *crashDiscord) post(ctx context.Context, epoch int, url string, a *crashAttempt) attemptState {
	r := d.r
	mode, delay := r.event(epoch, phaseIntake, false)
	call := crashCall{epoch: epoch, proxy: "interaction", phase: phaseIntake, method: "interaction " + a.id, token: a.cmd.token, killed: mode}
	set := func(s attemptState) attemptState {
		r.mu.Lock()
		a.state = s
		if s == attemptAnswered {
			a.at = time.Now()
		}
		r.mu.Unlock()
		return s
	}
	if mode == killBefore {
		r.killNow(epoch, phaseIntake, mode, call.method)
		r.record(call)
		return set(attemptNotSent)
	}
	if mode == killDuring {
		go func() {
			time.Sleep(delay)
			r.killNow(epoch, phaseIntake, mode, call.method)
		}()
	}
	body := d.interaction(a)
	// Discord waits 3 s for the answer.
	pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(pctx, http.MethodPost, url+discord.DefaultInteractionsPath, bytes.NewReader(body))
	if err != nil {
		r.t.Error(err)
		return set(attemptNotSent)
	}
	req.Header = discordtest.Sign(d.priv, time.Now(), body)
	var answer struct {
		Type int `json:"type"`
	}
	// A bot killed before the post began never got it, whatever error the
	// post ends in; one killed after may have. One post at a time: at most
	// one interaction a kill leaves in doubt.
	r.mu.Lock()
	dead := r.cur == nil || r.cur.epoch != epoch || r.cur.kill != nil
	r.mu.Unlock()
	resp, err := d.client.Do(req)
	if err == nil {
		call.status = resp.StatusCode
		raw, rerr := io.ReadAll(resp.Body)
		resp.Body.Close()
		if rerr != nil {
			err = rerr
		} else if json.Unmarshal(raw, &answer) != nil {
			answer.Type = 0
		}
	}
	r.record(call)
	state := attemptUncertain
	switch {
	case err != nil && (dead || errors.Is(err, syscall.ECONNREFUSED)):
		state = attemptNotSent
	case err != nil:
	case call.status == http.StatusOK && answer.Type == 5:
		state = attemptAnswered
	case call.status == http.StatusOK && answer.Type == 4:
		state = attemptRefused
	case call.status == http.StatusServiceUnavailable:
		state = attemptNotSent // not taking work yet: nothing recorded
	default:
		r.violation("interaction %s (%s): status %d, answer type %d", a.id, a.cmd.token, call.status, answer.Type)
	}
	switch mode {
	case killAfter:
		r.killNow(epoch, phaseIntake, mode, call.method)
		if state == attemptAnswered {
			state = attemptUncertain // the answer never reached Discord
		}
	case killAfterReply:
		if state == attemptAnswered {
			set(state)
			go func() {
				time.Sleep(delay)
				r.killNow(epoch, phaseIntake, mode, call.method)
			}()
		} else {
			r.killNow(epoch, phaseIntake, mode, call.method)
		}
	}
	return set(state)
}

// refuse answers what Discord would refuse: a webhook call with the token
// of an interaction Discord never heard acknowledged, or past its lifetime.
func (d *crashDiscord) refuse(w http.ResponseWriter, c *discordtest.Call) bool {
	parts := strings.Split(strings.Trim(c.Path, "/"), "/")
	if len(parts) < 3 || parts[0] != "webhooks" {
		return false
	}
	d.r.mu.Lock()
	defer d.r.mu.Unlock()
	a := d.byToken[parts[2]]
	switch {
	case a == nil || a.state != attemptAnswered:
		discordtest.Error(w, http.StatusNotFound, 10015, "Unknown Webhook")
	case time.Since(a.at) > d.lifetimes[a.epoch]:
		discordtest.Error(w, http.StatusUnauthorized, 50027, "Invalid Webhook Token")
	default:
		return false
	}
	if id := crashResultOf(*c); id != "" {
		d.refused[id]++
	}
	return true
}

var (
	crashDiscordPrefix = regexp.MustCompile(`^(/api)?(/v\d+)?`)
	crashDiscordFile   = regexp.MustCompile(`filename="([a-z2-7]{16})-\d+\.\w+"`)
	crashDiscordJob    = regexp.MustCompile(`Job ([a-z2-7]{16})\b`)
	crashDiscordFailed = regexp.MustCompile(`Job ([a-z2-7]{16}) failed`)
)

func crashDiscordPath(req *http.Request) string {
	return crashDiscordPrefix.ReplaceAllString(req.URL.Path, "")
}

// phase is the phase of a call the bot makes to Discord.
func (d *crashDiscord) phase(req *http.Request, body []byte) crashPhase {
	path := crashDiscordPath(req)
	switch {
	case req.Method == http.MethodPatch && strings.HasPrefix(path, "/webhooks/") && strings.HasSuffix(path, "/messages/@original"):
		if crashDiscordFile.Match(body) {
			return phasePost
		}
		return phaseEdit
	case req.Method == http.MethodPost && strings.HasPrefix(path, "/channels/") && strings.HasSuffix(path, "/messages"):
		return phaseLate
	}
	return ""
}

// label names what a call to Discord is about: the job (by its files or
// its text), the command (by the interaction token, or the prompt in a
// caption) and whether it carries a result or a failure notice.
func (d *crashDiscord) label(call *crashCall, req *http.Request, body []byte) {
	r := d.r
	path := crashDiscordPath(req)
	call.method = req.Method + " " + path
	if m := crashDiscordFile.FindSubmatch(body); m != nil {
		call.job = string(m[1])
		call.method += " result"
	} else if m := crashDiscordFailed.FindSubmatch(body); m != nil {
		call.job = string(m[1])
		call.method += " notice"
	} else if m := crashDiscordJob.FindSubmatch(body); m != nil {
		call.job = string(m[1])
	}
	if parts := strings.Split(strings.Trim(path, "/"), "/"); len(parts) >= 3 && parts[0] == "webhooks" {
		call.method = strings.Replace(call.method, parts[2], "TOKEN", 1)
		r.mu.Lock()
		if a := d.byToken[parts[2]]; a != nil {
			call.token = a.cmd.token
		}
		r.mu.Unlock()
	}
	if call.token == "" {
		call.token = string(crashTokenRe.Find(body))
	}
}

var crashDiscordName = regexp.MustCompile(`^([a-z2-7]{16})-\d+\.\w+$`)

// crashResultOf is the job whose result a call to the fake posts, if it posts one.
func crashResultOf(c discordtest.Call) string {
	if !c.Is("PATCH", `/webhooks/[^/]+/[^/]+/messages/@original`) && !c.Is("POST", `/channels/[^/]+/messages`) {
		return ""
	}
	for _, f := range c.Files {
		if m := crashDiscordName.FindStringSubmatch(f.Name); m != nil {
			return m[1] // an album is one post
		}
	}
	return ""
}

// crashIsPost reports whether a call posted a job's result where the user sees it.
func crashIsPost(c crashCall) bool {
	switch c.proxy {
	case "telegram":
		return c.phase == phasePost && c.status == http.StatusOK && c.job != ""
	case "discord":
		return (c.phase == phasePost || c.phase == phaseLate) && c.status/100 == 2 && c.job != "" && strings.HasSuffix(c.method, " result")
	}
	return false
}

// view is what the users saw: per command the job its messages named, per
// job its results and failure notices.
func (d *crashDiscord) view() crashView {
	r := d.r
	v := crashView{ack: map[string]string{}, reply: map[string]string{}, posts: map[string]int{}, failed: map[string]bool{}}
	byToken := map[string]*crashCmd{}
	for _, c := range r.cmds {
		byToken[c.token] = c
	}
	// Results as the fake itself saw them, less those it refused: the
	// proxy's count is checked against it.
	r.mu.Lock()
	calls := slices.Clone(r.calls)
	for _, c := range d.api.Calls() {
		if id := crashResultOf(c); id != "" {
			v.posts[id]++
		}
	}
	for id, n := range d.refused {
		v.posts[id] -= n
	}
	r.mu.Unlock()
	for _, c := range calls {
		if c.proxy != "discord" || c.status/100 != 2 || c.job == "" {
			continue
		}
		if cmd := byToken[c.token]; cmd != nil {
			key := crashMsgKey(cmd.user, cmd.msgID)
			v.ack[key] = c.job
			v.reply[key] = c.job
		}
		if strings.HasSuffix(c.method, " notice") {
			v.failed[c.job] = true
		}
	}
	return v
}

// named lists the jobs a message the users saw named.
func (d *crashDiscord) named() map[string]bool {
	r := d.r
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]bool{}
	for _, c := range r.calls {
		if c.proxy == "discord" && c.status/100 == 2 && c.job != "" {
			out[c.job] = true
		}
	}
	return out
}

// allAnswered reports whether every job the bot has named to Discord (in
// any call, taken or refused) has its outcome in the chat, and each user
// has as many jobs with an outcome as commands Discord got a deferred
// answer for: a failure notice posted late names its job and its user's
// channel, not its command.
func (d *crashDiscord) allAnswered() bool {
	r := d.r
	if len(r.cmds) < r.setup.jobs {
		return false
	}
	r.mu.Lock()
	waiting := len(d.queue)
	owed := map[int64]int{} // user → commands answered with a deferred response
	seen := map[*crashCmd]bool{}
	for _, a := range d.attempts {
		if a.state == attemptAnswered && !seen[a.cmd] {
			seen[a.cmd] = true
			owed[a.cmd.user]++
		}
	}
	userOf := map[string]int64{} // job → its user
	for _, c := range r.calls {
		if c.proxy != "discord" || c.job == "" {
			continue
		}
		if m := crashChannelPath.FindStringSubmatch(c.method); m != nil {
			u, _ := strconv.ParseInt(m[1], 10, 64)
			userOf[c.job] = u
		} else if tok := c.token; tok != "" {
			for _, cmd := range r.cmds {
				if cmd.token == tok {
					userOf[c.job] = cmd.user
				}
			}
		}
	}
	r.mu.Unlock()
	if waiting > 0 {
		return false
	}
	v := r.view()
	have := map[int64]int{}
	for id, u := range userOf {
		if v.posts[id] == 0 && !v.failed[id] {
			return false
		}
		have[u]++
	}
	for u, n := range owed {
		if have[u] < n {
			return false
		}
	}
	return true
}

// crashChannelPath reads the user from a channel message's path (crashChannel).
var crashChannelPath = regexp.MustCompile(`^POST /channels/8(\d+)/messages`)

// settled reports whether the store of a stopped bot holds every job a
// command made, finished, with nothing left to take in.
func (d *crashDiscord) settled(s *crashSnap) bool {
	if len(s.unfinished) > 0 || len(s.pending) > 0 {
		return false
	}
	byAttempt := map[string]bool{}
	for _, j := range s.jobs {
		byAttempt[j.Chat.MessageID] = true
	}
	d.r.mu.Lock()
	defer d.r.mu.Unlock()
	for _, a := range d.attempts {
		if a.state == attemptAnswered && !byAttempt[a.id] {
			return false
		}
	}
	return true
}

// checkSnap checks, after a kill, that every interaction Discord got a
// deferred answer for has its job, or is recorded as taken in; and that no
// command made two jobs.
func (d *crashDiscord) checkSnap(s *crashSnap) {
	r := d.r
	byAttempt := map[string]string{}
	byCommand := map[string][]string{}
	for id, j := range s.jobs {
		byAttempt[j.Chat.MessageID] = id
		if tok := crashTokenRe.FindString(j.Request.Prompt); tok != "" {
			byCommand[tok] = append(byCommand[tok], id)
		}
	}
	for tok, ids := range byCommand {
		if len(ids) > 1 {
			r.chargeViolation(tok, "epoch %d: command %s made %d jobs: %v", s.epoch, tok, len(ids), ids)
		}
	}
	r.mu.Lock()
	var answered []*crashAttempt
	for _, a := range d.attempts {
		if a.state == attemptAnswered && a.epoch <= s.epoch {
			answered = append(answered, a)
		}
	}
	r.mu.Unlock()
	for _, a := range answered {
		if byAttempt[a.id] == "" && !s.pending[a.id] {
			r.violation("epoch %d: interaction %s (command %s) was answered with a deferred response, but it has no job and is not recorded as taken in", s.epoch, a.id, a.cmd.token)
		}
	}
}

// checkCommands is check's part on commands for Discord: each interaction
// answered with a deferred response made one job, which ended delivered or
// failed with a notice; a command made at most one job; a command lost is
// one whose only interaction a kill interrupted, at most one per kill.
func (d *crashDiscord) checkCommands(res *crashResult, final *crashSnap, v crashView, jobOf map[string]string, killed map[int]bool, lastEpoch int) {
	r := d.r
	byAttempt := map[string]string{}
	for id, j := range final.jobs {
		byAttempt[j.Chat.MessageID] = id
	}
	named := d.named()
	r.mu.Lock()
	attempts := map[*crashCmd][]*crashAttempt{}
	for _, a := range d.attempts {
		attempts[a.cmd] = append(attempts[a.cmd], a)
	}
	r.mu.Unlock()
	droppedIn := map[int]int{}
	for _, c := range r.cmds {
		var ids []string
		answered := false
		var last *crashAttempt
		for _, a := range attempts[c] {
			if id := byAttempt[a.id]; id != "" {
				ids = append(ids, id)
			}
			answered = answered || a.state == attemptAnswered
			last = a
		}
		res.outcomes["interactions"] += len(attempts[c])
		if len(ids) > 1 {
			r.chargeViolation(c.token, "command %s made %d jobs: %v", c.token, len(ids), ids)
		}
		if len(ids) == 0 {
			switch {
			case r.bad > 0:
			case answered:
				r.violation("command %s: its interaction was answered with a deferred response, but it made no job", c.token)
				res.lost++
			case last == nil || last.state != attemptUncertain:
				r.violation("command %s: never delivered to the bot (%d interactions)", c.token, len(attempts[c]))
				res.lost++
			case !killed[last.epoch]:
				r.violation("command %s: interaction %s unanswered in life %d, which was not killed", c.token, last.id, last.epoch)
				res.lost++
			default:
				res.outcomes["dropped"]++ // Discord's "did not respond": allowed
				droppedIn[last.epoch]++
			}
			continue
		}
		id := ids[0]
		if answered {
			res.accepted++
		}
		if told := v.job(c); told != "" && told != id {
			r.violation("command %s: the bot's messages name job %s, the store has job %s", c.token, told, id)
		}
		if !named[id] && r.bad == 0 {
			r.violation("command %s: job %s was never named in the chat", c.token, id)
		}
		jobOf[c.token] = id
		j := final.jobs[id]
		if lastEpoch < 0 {
			continue
		}
		r.checkOutcome(res, v, c, id, j)
	}
	for e, n := range droppedIn {
		if n > 1 {
			r.violation("life %d: %d commands lost to one kill; interactions are posted one at a time", e, n)
		}
	}
	// The paths: results by token and late, both taken.
	r.mu.Lock()
	for _, c := range r.calls {
		if crashIsPost(c) {
			res.outcomes["posted "+string(c.phase)]++
		}
	}
	r.mu.Unlock()
	if lastEpoch >= 0 && r.bad == 0 && r.setup.kills > 0 && (res.outcomes["posted "+string(phasePost)] == 0 || res.outcomes["posted "+string(phaseLate)] == 0) {
		r.violation("results posted by token %d, late to the channel %d: both paths must be taken", res.outcomes["posted "+string(phasePost)], res.outcomes["posted "+string(phaseLate)])
	}
}

// pendingInteractions reads the interactions the adapter recorded as taken
// in and has not made into jobs (or answered) yet.
func pendingInteractions(c engine.Counters) map[string]bool {
	out := map[string]bool{}
	for _, id := range discord.Pending(c) {
		out[id] = true
	}
	return out
}
