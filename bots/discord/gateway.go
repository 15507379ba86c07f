package discord

import (
	"context"
	"log/slog"
	"time"

	"github.com/bwmarrin/discordgo"
)

// runGateway connects to the gateway, retrying with backoff until it
// succeeds, and takes interactions until ctx ends. discordgo reconnects by
// itself after the first connection.
func (b *Bot) runGateway(ctx context.Context) error {
	if b.sess == nil {
		<-ctx.Done()
		return nil
	}
	s := b.sess
	// The raw event, for the interaction as Discord sent it: what is
	// recorded before a deferral (intake.go).
	defer s.AddHandler(func(_ *discordgo.Session, e *discordgo.Event) {
		if ic, ok := e.Struct.(*discordgo.InteractionCreate); ok && ic.Interaction != nil {
			b.onGateway(ic.Interaction, e.RawData)
		}
	})()
	defer s.AddHandler(func(_ *discordgo.Session, r *discordgo.Ready) {
		b.log.Info("gateway ready", slog.Int("guilds", len(r.Guilds)))
	})()
	wait := time.Second
	for {
		err := s.Open()
		if err == nil {
			break
		}
		b.log.Error("connect to the gateway", slog.Any("err", toAPIError(ctx, "gateway", err)), slog.Duration("retry_in", wait))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		wait = min(wait*2, time.Minute)
	}
	<-ctx.Done()
	if err := s.Close(); err != nil {
		b.log.Warn("close the gateway", slog.Any("err", err))
	}
	return nil
}

// onGateway takes an interaction from the gateway (raw: its JSON): it
// answers through the callback endpoint within Discord's 3 s, then does the work.
func (b *Bot) onGateway(in *discordgo.Interaction, raw []byte) {
	received := b.now()
	ctx, cancel := context.WithTimeout(b.base, planTime)
	resp, work := b.plan(withRaw(ctx, raw), in, received, false)
	cancel()
	if work != nil && !b.begin() {
		resp, work = restarting(in), nil
	}
	if work != nil && resp.Type == discordgo.InteractionResponseDeferredChannelMessageWithSource {
		ctx, cancel := context.WithTimeout(b.base, planTime)
		err := b.record(ctx, in.ID, raw, received)
		cancel()
		if err != nil {
			b.log.Error("take in interaction", slog.String("chat_id", in.ChannelID), slog.Any("err", err))
			b.work.Done()
			resp, work = unrecorded(in), nil
		}
	}
	if work != nil {
		defer b.work.Done()
	}
	ctx, cancel = context.WithDeadline(b.base, received.Add(discordgo.InteractionDeadline))
	err := b.api.respond(ctx, in.ID, in.Token, resp)
	cancel()
	if err != nil {
		b.log.Warn("answer interaction", slog.String("chat_id", in.ChannelID), slog.Any("err", err))
		if work != nil {
			// Discord shows the command failed: it is not taken in.
			b.mu.Lock()
			delete(b.recorded, in.ID)
			b.mu.Unlock()
			b.done(in.ID)
		}
		return
	}
	if work != nil {
		work(b.base)
	}
}
