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
	defer s.AddHandler(func(_ *discordgo.Session, ic *discordgo.InteractionCreate) {
		if ic.Interaction != nil {
			b.onGateway(ic.Interaction)
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

// onGateway takes an interaction from the gateway: it answers through the
// callback endpoint within Discord's 3 s, then does the work.
func (b *Bot) onGateway(in *discordgo.Interaction) {
	received := b.now()
	ctx, cancel := context.WithTimeout(b.base, planTime)
	resp, work := b.plan(ctx, in, received, false)
	cancel()
	if work != nil && !b.begin() {
		resp, work = restarting(in), nil
	}
	if work != nil {
		defer b.work.Done()
	}
	ctx, cancel = context.WithDeadline(b.base, received.Add(discordgo.InteractionDeadline))
	err := b.api.respond(ctx, in.ID, in.Token, resp)
	cancel()
	if err != nil {
		b.log.Warn("answer interaction", slog.String("chat_id", in.ChannelID), slog.Any("err", err))
		return
	}
	if work != nil {
		work(b.base)
	}
}
