package chat_test

import (
	"context"
	"strings"
	"testing"

	"github.com/picbot/picbot/bots/chat"
	"github.com/picbot/picbot/engine"
)

type fixedCatalog []engine.CatalogEntry

func (f fixedCatalog) Catalog(context.Context) ([]engine.CatalogEntry, error) { return f, nil }

// /models lists VAEs and embeddings too, each entry with its vendor.
func TestModelsListsEveryKind(t *testing.T) {
	c := &chat.Catalog{Sources: []engine.Cataloguer{fixedCatalog{
		{Vendor: "zhiqite", Kind: engine.EntryModel, ID: "revAnimated_v122_7371.safetensors"},
		{Vendor: "showapi", Kind: engine.EntryLoRA, ID: "647944c3911a6fa8a2e2712b"},
		{Vendor: "zhiqite", Kind: engine.EntryVAE, ID: "k1F8Anime2_k1F8Anime2VAE.ckpt"},
		{Vendor: "zhiqite", Kind: engine.EntryEmbedding, ID: "bad-hands-5"},
	}}}
	text, err := c.Models(context.Background(), engine.EN)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Models (--model):", "revAnimated_v122_7371.safetensors (zhiqite)", "647944c3911a6fa8a2e2712b (showapi)",
		"VAEs (--vae):\n  k1F8Anime2_k1F8Anime2VAE.ckpt (zhiqite)", "Embeddings (--embedding", "bad-hands-5 (zhiqite)"} {
		if !strings.Contains(text, want) {
			t.Errorf("/models lacks %q:\n%s", want, text)
		}
	}
}
