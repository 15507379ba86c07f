package discord

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/bwmarrin/discordgo"
	"github.com/picbot/picbot/bots/chat"
	"github.com/picbot/picbot/engine"
)

// maxInteraction caps an interaction's body.
const maxInteraction = 4 << 20

// planTime bounds deciding the first answer, well inside Discord's 3 s.
const planTime = 2 * time.Second

// Routes mounts the interactions endpoint (HTTP mode) and the originals of
// re-encoded results (with a public URL) on the bot's HTTP server.
func (b *Bot) Routes(m *http.ServeMux) {
	if b.cfg.Mode == ModeHTTP {
		m.HandleFunc("POST "+b.cfg.InteractionsPath, b.ServeInteraction)
	}
	if b.cfg.PublicURL != "" {
		m.HandleFunc("GET "+originalPath+"/{id}/{i}/{sig}", b.serveOriginal)
	}
}

// ServeInteraction takes an interaction Discord posts. It checks the
// Ed25519 signature and the timestamp (a replayed request is refused),
// answers PING, and answers everything else at once, in the body: a
// deferred response (the interaction recorded first, intake.go), then the
// work goes on in the background.
func (b *Bot) ServeInteraction(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxInteraction))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "bad body", http.StatusBadRequest)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	if b.key == nil || !discordgo.VerifyInteraction(r, b.key) {
		http.Error(w, "invalid request signature", http.StatusUnauthorized)
		return
	}
	received := b.now()
	if !fresh(r.Header.Get("X-Signature-Timestamp"), received) {
		http.Error(w, "stale request", http.StatusUnauthorized)
		return
	}
	var in discordgo.Interaction
	if err := json.Unmarshal(body, &in); err != nil {
		http.Error(w, "unreadable interaction", http.StatusBadRequest)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), planTime)
	resp, work := b.plan(withRaw(ctx, body), &in, received, false)
	cancel()
	if work != nil && !b.begin() {
		resp, work = restarting(&in), nil
	}
	if work != nil && resp.Type == discordgo.InteractionResponseDeferredChannelMessageWithSource {
		// Recorded before the deferral promises an answer (intake.go).
		ctx, cancel := context.WithTimeout(r.Context(), planTime)
		err := b.record(ctx, in.ID, body, received)
		cancel()
		if err != nil {
			b.log.Error("take in interaction", slog.String("chat_id", in.ChannelID), slog.Any("err", err))
			b.work.Done()
			resp, work = unrecorded(&in), nil
		}
	}
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(resp); err != nil {
		b.log.Warn("answer interaction", slog.String("chat_id", in.ChannelID), slog.Any("err", err))
	}
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	if work != nil {
		go func() {
			defer b.work.Done()
			work(b.base)
		}()
	}
}

// fresh reports whether a signed timestamp (Unix seconds) is close enough to now.
func fresh(ts string, now time.Time) bool {
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return false
	}
	d := now.Sub(time.Unix(sec, 0))
	return d < MaxTimestampSkew && d > -MaxTimestampSkew
}

func unrecorded(in *discordgo.Interaction) *response {
	return private(chat.T(localeOf(in), "Sorry, the bot could not take your command just now; please try again.", "抱歉，机器人暂时无法接收你的命令，请再试一次。"))
}

func restarting(in *discordgo.Interaction) *response {
	return private(chat.T(localeOf(in), "The bot is restarting; please try again in a minute.", "机器人正在重启，请稍后再试。"))
}

// serveOriginal serves a result's original file to whoever has its signed link.
func (b *Bot) serveOriginal(w http.ResponseWriter, r *http.Request) {
	i, err := strconv.Atoi(r.PathValue("i"))
	if err != nil {
		http.NotFound(w, r)
		return
	}
	j, err := b.eng.Job(r.Context(), r.PathValue("id"))
	if err != nil || j.Chat.Platform != Platform || i < 0 || i >= len(j.Results) || j.CallbackToken == "" ||
		subtle.ConstantTimeCompare([]byte(r.PathValue("sig")), []byte(sign(j, i))) != 1 {
		http.NotFound(w, r)
		return
	}
	res := j.Results[i]
	rc, err := b.blobs.Open(r.Context(), res.Blob)
	if err != nil {
		if engine.ErrorCode(err) != engine.ENOTFOUND {
			b.log.Error("open original", slog.String("job_id", j.ID), slog.Any("err", err))
		}
		http.NotFound(w, r)
		return
	}
	defer rc.Close()
	w.Header().Set("Content-Type", res.Mime)
	w.Header().Set("Content-Disposition", `inline; filename="`+j.ID+"-"+strconv.Itoa(i+1)+chat.Ext(res.Mime)+`"`)
	w.Header().Set("Cache-Control", "private, max-age=86400")
	io.Copy(w, rc)
}
