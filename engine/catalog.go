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

// Choices are the values a vendor lets a user pick for one kind of
// command, for /help and /models.
type Choices struct {
	Styles   []string // --style
	Samplers []string // --sampler
	Models   []string // --model, when the vendor has a fixed list (a Cataloguer lists its own)
	// Ignores lists the options the vendor accepts and does nothing with ("model", "lora", "sampler").
	Ignores []string
	// FreeNames lists the options ("model", "lora") whose names the vendor
	// takes unchecked, listed or not: a job naming one its catalogue lacks
	// still goes there, and /models says so.
	FreeNames []string
}

// Chooser is a vendor that says what a user may choose.
type Chooser interface {
	Choices(k Kind) Choices
}

// VendorChoices are one vendor's choices on a command's route.
type VendorChoices struct {
	Vendor string
	Choices
}
