package engine

import "context"

// Catalogue entry kinds.
const (
	EntryModel     = "model"
	EntryLoRA      = "lora"
	EntryVAE       = "vae"
	EntryEmbedding = "embedding"
)

// CatalogEntry is one model, LoRA, VAE or embedding a user may choose.
type CatalogEntry struct {
	Vendor string   `json:"vendor"`
	Kind   string   `json:"kind"` // EntryModel, EntryLoRA, ...
	ID     string   `json:"id"`   // what the vendor wants in a request
	Name   string   `json:"name"` // what a user reads
	Tags   []string `json:"tags,omitempty"`
	Cover  string   `json:"cover,omitempty"`
	Base   string   `json:"base,omitempty"` // the base model a LoRA is for
	Adult  bool     `json:"adult,omitempty"`
}

// Cataloguer is a vendor with models and LoRAs to choose from. Catalog
// returns only entries the vendor says are usable now.
type Cataloguer interface {
	Catalog(ctx context.Context) ([]CatalogEntry, error)
}
