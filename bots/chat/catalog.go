package chat

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/picbot/picbot/engine"
)

// Catalog merges the vendors' catalogues for /models and Discord's
// autocomplete. The vendors cache their own lists (listing is billed).
type Catalog struct {
	Sources []engine.Cataloguer
	// AllowAdult shows entries the vendors mark as adult; an operator's choice.
	AllowAdult bool
	Log        *slog.Logger
}

// Entries returns every usable entry. A vendor whose list fails is left out
// and logged: the others still answer.
func (c *Catalog) Entries(ctx context.Context) []engine.CatalogEntry {
	var out []engine.CatalogEntry
	for _, src := range c.Sources {
		entries, err := src.Catalog(ctx)
		if err != nil {
			if c.Log != nil {
				c.Log.Warn("catalogue", slog.Any("err", err))
			}
			continue
		}
		for _, e := range entries {
			if e.Adult && (!c.AllowAdult || adultOff(ctx)) {
				continue
			}
			out = append(out, e)
		}
	}
	return out
}

// Models is the /models text: models, LoRAs, VAEs and embeddings, a few
// of each, each with the vendor that has it.
func (c *Catalog) Models(ctx context.Context, lang engine.Lang) (string, error) {
	entries := c.Entries(ctx)
	if len(entries) == 0 {
		return T(lang, "No models are available right now.", "暂时没有可用的模型。"), nil
	}
	const show = 15
	var b strings.Builder
	titles := map[string][2]string{
		engine.EntryModel:     {"Models (--model):", "模型（--model）："},
		engine.EntryLoRA:      {"LoRAs (--lora):", "LoRA（--lora）："},
		engine.EntryVAE:       {"VAEs (--vae):", "VAE（--vae）："},
		engine.EntryEmbedding: {"Embeddings (--embedding, for the negative prompt):", "Embedding（--embedding，用于反向提示词）："},
	}
	for _, kind := range []string{engine.EntryModel, engine.EntryLoRA, engine.EntryVAE, engine.EntryEmbedding} {
		var names []string
		total := 0
		for _, e := range entries {
			if e.Kind != kind {
				continue
			}
			total++
			if len(names) < show {
				names = append(names, fmt.Sprintf("%s (%s)", e.ID, e.Vendor))
			}
		}
		if total == 0 {
			continue
		}
		title := titles[kind][0]
		if lang == engine.ZH {
			title = titles[kind][1]
		}
		if b.Len() > 0 {
			b.WriteString("\n")
		}
		b.WriteString(title + "\n  " + strings.Join(names, "\n  "))
		if total > show {
			b.WriteString("\n  " + T(lang, "… and %d more", "……另有 %d 个", total-show))
		}
	}
	return b.String(), nil
}

// Adult reports whether a vendor's catalogue marks the model or LoRA id
// adult, and whether the operator allows adult entries at all. An id no
// catalogue knows is not adult: the vendor refuses it if it must.
func (c *Catalog) Adult(ctx context.Context, kind, id string) (adult, allowed bool) {
	for _, src := range c.Sources {
		entries, err := src.Catalog(ctx)
		if err != nil {
			continue
		}
		for _, e := range entries {
			if e.Kind == kind && (strings.EqualFold(e.ID, id) || strings.EqualFold(e.Name, id)) && e.Adult {
				return true, c.AllowAdult
			}
		}
	}
	return false, c.AllowAdult
}

type adultKey struct{}

// adultOff reports whether ctx comes from a chat whose NSFW policy is off
// (adultContext), where adult entries are not listed even when allowed.
func adultOff(ctx context.Context) bool {
	off, _ := ctx.Value(adultKey{}).(bool)
	return off
}

// adultContext marks ctx with the message's chat's NSFW policy, for /models.
func (s *Service) adultContext(ctx context.Context, m Message) context.Context {
	cs, err := s.chatSettings(ctx, m.Chat)
	if err != nil {
		return context.WithValue(ctx, adultKey{}, true)
	}
	return context.WithValue(ctx, adultKey{}, !s.nsfw(m, cs))
}
