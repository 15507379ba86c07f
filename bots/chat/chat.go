// Package chat is what the chat adapters share: it runs a parsed command
// against the engine and the quota, fetches the images a command names, and
// words every reply in the user's language. Adapters only translate their
// platform's events into Messages and Replies into platform messages.
package chat

import (
	"bufio"
	"context"
	"fmt"
	"image"
	_ "image/gif" // decoders for the intake check
	_ "image/jpeg"
	_ "image/png"
	"io"
	"log/slog"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/picbot/picbot/bots/command"
	"github.com/picbot/picbot/engine"
	"github.com/picbot/picbot/quota"
	_ "golang.org/x/image/webp"
)

// Engine is what the chat needs of the engine.
type Engine interface {
	Check(r *engine.Request) error
	Submit(ctx context.Context, owner engine.UserRef, chat engine.ChatRef, req engine.Request) (*engine.Job, error)
	Cancel(ctx context.Context, id string, by engine.UserRef, admin bool) (*engine.Job, error)
	Jobs(ctx context.Context, owner engine.UserRef, limit int) ([]*engine.Job, error)
	Job(ctx context.Context, id string) (*engine.Job, error)
	// Limits, Route and Choices say what the configuration allows, for
	// parse errors and /help.
	Limits() engine.Limits
	Route(k engine.Kind) []string
	Choices(k engine.Kind) []engine.VendorChoices
}

// Quota is what the chat needs of the quota.
type Quota interface {
	Status(ctx context.Context, owner engine.UserRef) (quota.Status, error)
	IsAdmin(u engine.UserRef) bool
	SetTier(ctx context.Context, user, tier string) error
	SetDaily(ctx context.Context, user string, n int) error
	Ban(ctx context.Context, key string, banned bool) error
	Stats(ctx context.Context) (quota.Stats, error)
}

// Prechecker is a Quota that can say, writing nothing, whether a command
// would be admitted (quota.Quota is one).
type Prechecker interface {
	Precheck(ctx context.Context, owner engine.UserRef, chat engine.ChatRef, req *engine.Request) error
}

// Fetcher opens an image a user named by URL. It must refuse private
// addresses and cap the size; see package fetch.
type Fetcher interface {
	Fetch(ctx context.Context, url string) (io.ReadCloser, error)
}

// Image is an image attached to a message (a Telegram photo, a Discord
// attachment): the adapter knows how to open it.
type Image struct {
	Name string
	Open func(ctx context.Context) (io.ReadCloser, error)
}

// Message is one command as an adapter received it.
type Message struct {
	User engine.UserRef
	Chat engine.ChatRef
	Text string
	// Command, if set, is used instead of parsing Text (Discord's options).
	Command *command.Command
	// Images are attached images, used before image references in the text.
	Images []Image
	// Control and Mask are images attached in their own place (Discord's
	// control and mask options). Without them, /draw --control (or --mask)
	// with no image named takes the first attached image (then the next).
	Control, Mask *Image
	// NSFW is the platform's own flag on the chat (a Discord channel marked
	// age-restricted); the chat's /settings nsfw overrides it.
	NSFW bool
	// ChatAdmin asks the platform whether the user administers the chat
	// (Telegram's getChatMember); nil: nobody but the bot's admins does.
	ChatAdmin func(ctx context.Context) (bool, error)
}

// Reply is the service's answer: text for the chat, and the job if one was started.
type Reply struct {
	Text string
	Job  *engine.Job
	// Err is set when the reply is an error message (adapters may show it privately).
	Err *engine.Error
	// Show is a past job whose pictures the adapter sends again (/show).
	Show *engine.Job
}

// Service runs commands.
type Service struct {
	Engine  Engine
	Quota   Quota
	Blobs   engine.Blobs
	Fetcher Fetcher
	Log     *slog.Logger
	// MaxInput caps an input image, in bytes.
	MaxInput int64
	// MaxInputPixels caps an input image's width × height (0: DefaultMaxInputPixels).
	// Every input is decoded in full at intake, so this bounds that memory too.
	MaxInputPixels int64
	// LocalFiles lets image arguments name files on this machine: the console only.
	LocalFiles bool
	// Models lists what /models shows; nil shows that there is no catalogue.
	Models func(ctx context.Context, lang engine.Lang) (string, error)
	// Moderator refuses prompts with blocked words; nil refuses none.
	Moderator Moderator
	// Settings keeps chats' /settings; nil: /settings is not available.
	Settings SettingsStore
	// Presets are /draw --preset's names.
	Presets map[string]Preset
	// Adult says whether a catalogue entry is adult and whether the
	// operator allows adult entries at all (chat.Catalog.Adult).
	Adult func(ctx context.Context, kind, id string) (adult, allowed bool)
	// MoreStats add paragraphs to /admin stats (vendor accounts' spend); "" adds none.
	MoreStats []func(ctx context.Context) (string, error)
}

// Handle runs one message and returns the reply. It never panics on user
// input and never shows an internal error's cause.
func (s *Service) Handle(ctx context.Context, m Message) Reply {
	lang := m.User.Lang
	c := m.Command
	if c == nil {
		var err error
		if c, err = command.ParseLimits(m.Text, s.Engine.Limits()); err != nil {
			return s.fail(lang, err, "")
		}
	}
	switch c.Name {
	case "help", "start":
		return Reply{Text: s.Help(lang, s.Quota.IsAdmin(m.User))}
	case "again", "vary":
		return s.Follow(ctx, m, strings.ToLower(c.Args[0]), c.Name, 0)
	case "upscale":
		// "/upscale <job id>": the button under a result, typed.
		if len(m.Images) == 0 && len(c.Images) == 1 && s.isJobRef(c.Images[0]) {
			return s.follow(ctx, m, strings.ToLower(c.Images[0]), ActionUpscale, 0, c.Request.Scale)
		}
	case "quota":
		return s.quota(ctx, m.User)
	case "jobs":
		return s.jobs(ctx, m.User)
	case "queue":
		return s.queue(ctx, m.User)
	case "cancel":
		j, err := s.Engine.Cancel(ctx, strings.ToLower(c.Args[0]), m.User, s.Quota.IsAdmin(m.User))
		if err != nil {
			return s.fail(lang, err, c.Args[0])
		}
		return Reply{Text: Cancelled(j, lang), Job: j}
	case "admin":
		return s.admin(ctx, m.User, c.Args)
	case "models":
		return s.models(s.adultContext(ctx, m), lang)
	case "settings":
		return s.settings(ctx, m, c.Args)
	case "show":
		return s.show(ctx, m, strings.ToLower(c.Args[0]))
	}
	return s.submit(ctx, m, c)
}

func (s *Service) submit(ctx context.Context, m Message, c *command.Command) Reply {
	lang := m.User.Lang
	req := c.Request
	if err := s.prepare(ctx, m, c, &req); err != nil {
		return s.fail(lang, err, "")
	}
	attached := m.Images
	var control, mask func(context.Context) (io.ReadCloser, error)
	take := func(own *Image, ref string, wanted bool, flag string) (func(context.Context) (io.ReadCloser, error), error) {
		switch {
		case own != nil:
			return own.Open, nil
		case ref != "":
			return s.opener(ref), nil
		case !wanted:
			return nil, nil
		case len(attached) == 0:
			return nil, engine.Errorf(engine.EINVALID, "--%[1]s needs an image: send it as a photo with this command as its caption, reply to it with the command, or give its link after --%[1]s.",
				"--%[1]s 需要一张图片：把命令写在图片的说明里发送，或回复那张图片，或在 --%[1]s 后给出图片链接。", flag)
		}
		first := attached[0]
		attached = attached[1:]
		return first.Open, nil
	}
	var err error
	if req.Control != nil || m.Control != nil {
		if control, err = take(m.Control, c.Control, true, "control"); err != nil {
			return s.fail(lang, withUsage(err, c.Name), "")
		}
		if req.Control == nil {
			req.Control = &engine.Control{}
		} else {
			cc := *req.Control
			req.Control = &cc
		}
	}
	if mask, err = take(m.Mask, c.Mask, c.MaskAttached, "mask"); err != nil {
		return s.fail(lang, withUsage(err, c.Name), "")
	}
	var refs []func(context.Context) (io.ReadCloser, error)
	for _, img := range attached {
		refs = append(refs, img.Open)
	}
	for _, ref := range c.Images {
		refs = append(refs, s.opener(ref))
	}
	// Check everything but the images first, so bad input costs no download.
	pending := engine.Input{Blob: "pending", Width: 1, Height: 1}
	probe := req
	probe.Inputs = make([]engine.Input, len(refs))
	for i := range probe.Inputs {
		probe.Inputs[i] = pending
	}
	if control != nil {
		cc := *req.Control
		cc.Input = pending
		probe.Control = &cc
	}
	if mask != nil {
		probe.Mask = &pending
	}
	if err := s.Engine.Check(&probe); err != nil {
		return s.fail(lang, withUsage(err, c.Name), "")
	}
	// Refuse a user the engine would refuse before any byte is downloaded.
	if p, ok := s.Quota.(Prechecker); ok && len(refs) > 0 {
		if err := p.Precheck(ctx, m.User, m.Chat, &probe); err != nil {
			return s.fail(lang, err, "")
		}
	}
	for i, open := range refs {
		in, err := s.input(ctx, open)
		if err != nil {
			return s.fail(lang, wrapImage(err, i+1), "")
		}
		req.Inputs = append(req.Inputs, in)
	}
	if control != nil {
		in, err := s.input(ctx, control)
		if err != nil {
			return s.fail(lang, wrapImage(err, len(refs)+1), "")
		}
		req.Control.Input = in
	}
	if mask != nil {
		in, err := s.input(ctx, mask)
		if err != nil {
			return s.fail(lang, wrapImage(err, len(refs)+2), "")
		}
		req.Mask = &in
	}
	j, err := s.Engine.Submit(ctx, m.User, m.Chat, req)
	if err != nil {
		return s.fail(lang, err, "")
	}
	return Reply{Text: Accepted(j, lang), Job: j}
}

// opener returns how to open an image argument: a URL, or with LocalFiles a path.
func (s *Service) opener(ref string) func(context.Context) (io.ReadCloser, error) {
	return func(ctx context.Context) (io.ReadCloser, error) {
		if strings.HasPrefix(ref, "http://") || strings.HasPrefix(ref, "https://") {
			if s.Fetcher == nil {
				return nil, engine.Errorf(engine.EINVALID, "Links to images are not accepted here; attach the image instead.", "这里不接受图片链接，请直接发送图片。")
			}
			return s.Fetcher.Fetch(ctx, ref)
		}
		if !s.LocalFiles {
			return nil, engine.Errorf(engine.EINVALID, "%q is not an image link; attach the image or give an http(s) link.", "%q 不是图片链接；请发送图片或给出 http(s) 链接。", ref)
		}
		f, err := os.Open(ref)
		if err != nil {
			return nil, engine.Wrap(engine.EINVALID, err, "Cannot open %q.", "无法打开 %q。", ref)
		}
		return f, nil
	}
}

// DefaultMaxInputPixels bounds an input image's width × height: 16
// megapixels (4096 × 4096), 64 MiB once decoded.
const DefaultMaxInputPixels = 4096 * 4096

func (s *Service) input(ctx context.Context, open func(context.Context) (io.ReadCloser, error)) (engine.Input, error) {
	rc, err := open(ctx)
	if err != nil {
		return engine.Input{}, err
	}
	defer rc.Close()
	limit := s.MaxInput
	if limit <= 0 {
		limit = 20 << 20
	}
	info, err := s.Blobs.Put(ctx, rc, limit)
	if err != nil {
		return engine.Input{}, err
	}
	if err := s.decodes(ctx, info); err != nil {
		return engine.Input{}, err
	}
	return engine.Input{Blob: info.Key, Mime: info.Mime, Width: info.Width, Height: info.Height, Size: info.Size}, nil
}

// decodes reads a stored input image to its last pixel, so that a truncated
// or corrupt file is refused now, before a job exists, and not by a vendor later.
func (s *Service) decodes(ctx context.Context, info engine.BlobInfo) error {
	most := s.MaxInputPixels
	if most <= 0 {
		most = DefaultMaxInputPixels
	}
	if int64(info.Width)*int64(info.Height) > most {
		return engine.Errorf(engine.EINVALID, "The picture is %[1]dx%[2]d; at most %[3]s pixels are accepted (%[4]s). Please send a smaller one.",
			"图片为 %[1]dx%[2]d；最多接受 %[3]s 像素（%[5]s），请发送小一些的图片。", info.Width, info.Height, pixels(most), megapixels(most, engine.EN), megapixels(most, engine.ZH))
	}
	rc, err := s.Blobs.Open(ctx, info.Key)
	if err != nil {
		return err
	}
	defer rc.Close()
	if _, _, err := image.Decode(bufio.NewReader(rc)); err != nil {
		return engine.Wrap(engine.EINVALID, err, "The picture is damaged or cut short; please send it again.", "图片已损坏或不完整，请重新发送。")
	}
	return nil
}

// pixels writes n with thousands separators: "16,777,216".
func pixels(n int64) string {
	d := strconv.FormatInt(n, 10)
	for i := len(d) - 3; i > 0; i -= 3 {
		d = d[:i] + "," + d[i:]
	}
	return d
}

// megapixels says n pixels as a side: "4096x4096 at 1:1" reads best, so
// the square's side is given.
func megapixels(n int64, lang engine.Lang) string {
	side := int64(math.Sqrt(float64(n)))
	return T(lang, "a square of %[1]dx%[1]d", "相当于 %[1]dx%[1]d 的正方形", side)
}

// withUsage adds the command's usage to an EINVALID error, as the parser does.
func withUsage(err error, name string) error {
	e := engine.AsError(err)
	if e.Code != engine.EINVALID {
		return err
	}
	return &engine.Error{Code: e.Code, Err: e.Err,
		EN: e.EN + "\nUsage: " + command.Usage(name, engine.EN),
		ZH: e.ZH + "\n用法：" + command.Usage(name, engine.ZH)}
}

func wrapImage(err error, n int) error {
	e := engine.AsError(err)
	if e.Code == engine.EINTERNAL {
		return engine.Wrap(engine.EINVALID, err, "Image %d could not be fetched.", "第 %d 张图片获取失败。", n)
	}
	return &engine.Error{Code: e.Code, EN: fmt.Sprintf("Image %d: %s", n, e.EN), ZH: fmt.Sprintf("第 %d 张图片：%s", n, e.ZH), Err: e.Err}
}

// fail words err for the chat. Internal errors are logged in full once and
// shown only as a short apology with a reference.
func (s *Service) fail(lang engine.Lang, err error, ref string) Reply {
	e := engine.AsError(err)
	if e.Code == engine.EINTERNAL {
		id := engine.NewID()
		if s.Log != nil {
			s.Log.Error("command failed", slog.String("ref", id), slog.Any("err", err))
		}
		return Reply{Text: T(lang, "Sorry, something went wrong on our side (reference %s).", "抱歉，服务内部出错了（编号 %s）。", id), Err: e}
	}
	return Reply{Text: e.Message(lang), Err: e}
}

// admin runs an admin command for an admin. Keys without a platform
// ("12345") are taken to be on the admin's own platform.
func (s *Service) admin(ctx context.Context, u engine.UserRef, args []string) Reply {
	if !s.Quota.IsAdmin(u) {
		return s.fail(u.Lang, engine.Errorf(engine.EFORBIDDEN, "Sorry, admin commands are for the bot's admins.", "抱歉，管理命令仅限机器人管理员使用。"), "")
	}
	key := func(k string) string {
		if !strings.Contains(k, ":") {
			return u.Platform + ":" + k
		}
		return k
	}
	var err error
	switch args[0] {
	case "stats":
		st, err := s.Quota.Stats(ctx)
		if err != nil {
			return s.fail(u.Lang, err, "")
		}
		text := st.String()
		if s.Moderator != nil {
			mod, err := s.Moderator.Report(ctx)
			if err != nil {
				return s.fail(u.Lang, err, "")
			}
			text += "\n" + mod
		}
		for _, more := range s.MoreStats {
			p, err := more(ctx)
			if err != nil {
				return s.fail(u.Lang, err, "")
			}
			if p != "" {
				text += "\n" + p
			}
		}
		return Reply{Text: text}
	case "tier":
		err = s.Quota.SetTier(ctx, key(args[1]), args[2])
	case "quota":
		n := -1
		if args[2] != "default" {
			if n, err = strconv.Atoi(args[2]); err != nil || n < 0 {
				return s.fail(u.Lang, engine.Errorf(engine.EINVALID, "The quota must be a whole number or default.", "额度必须是整数或 default。"), "")
			}
		}
		err = s.Quota.SetDaily(ctx, key(args[1]), n)
	case "ban", "unban":
		err = s.Quota.Ban(ctx, key(args[1]), args[0] == "ban")
		if err == nil && args[0] == "unban" && s.Moderator != nil {
			err = s.Moderator.Lift(ctx, key(args[1])) // a lockout ends with the ban
		}
	}
	if err != nil {
		return s.fail(u.Lang, err, "")
	}
	if s.Log != nil {
		s.Log.Info("admin command", slog.String("user_id", u.Key()), slog.String("command", strings.Join(args, " ")))
	}
	return Reply{Text: T(u.Lang, "Done: %s.", "已完成：%s。", strings.Join(args, " "))}
}

func (s *Service) quota(ctx context.Context, u engine.UserRef) Reply {
	st, err := s.Quota.Status(ctx, u)
	if err != nil {
		return s.fail(u.Lang, err, "")
	}
	reset := Duration(time.Until(st.ResetAt), u.Lang)
	var bought string
	if st.Bought > 0 && !st.Unlimited && st.Limit > 0 {
		bought = T(u.Lang, " Bought images left: %d (used after today's, they do not expire).", "已购图片剩余：%d 张（今日额度用完后使用，不会过期）。", st.Bought)
		if !st.Expires.IsZero() {
			bought = T(u.Lang, " Bought images left: %d (used after today's, until %s).", "已购图片剩余：%d 张（今日额度用完后使用，有效期至 %s）。", st.Bought, st.Expires.Format("2006-01-02 15:04 MST"))
		}
	}
	switch {
	case st.Unlimited:
		return Reply{Text: T(u.Lang, "You have no limits (admin). Jobs running: %d.", "你没有额度限制（管理员）。进行中的任务：%d。", st.Running)}
	case st.Limit == 0:
		return Reply{Text: T(u.Lang, "No daily limit. Used today: %d. Jobs running: %d.", "没有每日限制。今天已用：%d。进行中的任务：%d。", st.Used, st.Running)}
	}
	return Reply{Text: T(u.Lang, "Today: %d of %d images used, %d left; resets in %s. Jobs running: %d.",
		"今天：已用 %d / %d 张，剩余 %d 张；%s后重置。进行中的任务：%d。", st.Used, st.Limit, max(st.Limit-st.Used, 0), reset, st.Running) + bought}
}

func (s *Service) jobs(ctx context.Context, u engine.UserRef) Reply {
	jobs, err := s.Engine.Jobs(ctx, u, 10)
	if err != nil {
		return s.fail(u.Lang, err, "")
	}
	if len(jobs) == 0 {
		return Reply{Text: T(u.Lang, "You have no jobs yet. Try /draw a red fox.", "你还没有任务。试试 /draw 一只红狐狸。")}
	}
	var b strings.Builder
	b.WriteString(T(u.Lang, "Your latest jobs:", "你最近的任务："))
	for _, j := range jobs {
		fmt.Fprintf(&b, "\n%s  %-9s  /%s %s\n    %s", j.ID, engine.StateText(j.State, u.Lang), j.Request.Kind, Cut(j.Request.Prompt, 40), params(j, u.Lang))
	}
	b.WriteString(T(u.Lang, "\n/show <id> sends a picture again.", "\n/show <编号> 可重新发送图片。"))
	return Reply{Text: b.String()}
}

// T picks en or zh by lang and formats it.
func T(lang engine.Lang, en, zh string, args ...any) string {
	if lang == engine.ZH {
		return fmt.Sprintf(zh, args...)
	}
	return fmt.Sprintf(en, args...)
}

// Cut shortens s to n runes, with an ellipsis.
func Cut(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:max(n-1, 0)]) + "…"
}
