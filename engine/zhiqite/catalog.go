package zhiqite

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/picbot/picbot/engine"
)

// Catalogue paging: each page is a billed call, so the lists are read at
// most catalogPages pages deep and kept for CatalogTTL.
const (
	catalogPageSize = 50
	catalogPages    = 20
)

// Catalog lists the online models and LoRAs, the VAEs and the embeddings.
// Entries the vendor marks isAdult are marked Adult. When a refresh fails,
// the last good list is returned if there is one.
func (v *Vendor) Catalog(ctx context.Context) ([]engine.CatalogEntry, error) {
	v.catMu.Lock()
	defer v.catMu.Unlock()
	if v.catalog != nil && v.now().Before(v.catUntil) {
		return append([]engine.CatalogEntry(nil), v.catalog...), nil
	}
	entries, err := v.fetchCatalog(ctx)
	if err != nil {
		if v.catalog != nil {
			v.log.Warn("catalogue refresh failed; keeping the last one", slog.String("vendor", Name), slog.Any("err", err))
			return append([]engine.CatalogEntry(nil), v.catalog...), nil
		}
		return nil, err
	}
	v.catalog, v.catUntil = entries, v.now().Add(v.cfg.CatalogTTL)
	return append([]engine.CatalogEntry(nil), entries...), nil
}

func (v *Vendor) fetchCatalog(ctx context.Context) ([]engine.CatalogEntry, error) {
	var out []engine.CatalogEntry
	models, err := list[modelRow](ctx, v, "saas/sd/v2/queryModelList", nil)
	if err != nil {
		return nil, err
	}
	for _, m := range models {
		if !online(m.ModelStatus) || strings.TrimSpace(m.SDModelCheckpoint) == "" {
			continue
		}
		e := engine.CatalogEntry{
			Vendor: Name, Kind: engine.EntryModel, ID: strings.TrimSpace(m.SDModelCheckpoint),
			Name: firstOf(m.SDModelName, m.SDModelCheckpoint), Base: strings.TrimSpace(m.ModelBaseModel),
			Cover: firstOf(m.ModelCoverImgURL2, m.ModelCoverImageURL, firstURL(m.ModelImgURL2)),
			Adult: m.IsAdult.V == 1,
		}
		if t := strings.TrimSpace(m.ModelType); t != "" {
			e.Tags = []string{t}
		}
		out = append(out, e)
	}
	loras, err := list[loraRow](ctx, v, "saas/sd/v2/queryLoraList", nil)
	if err != nil {
		return nil, err
	}
	for _, l := range loras {
		// The prompt names a LoRA by its simplified file name.
		id := firstOf(l.SDLoraFileSimplifyName, strings.TrimSuffix(l.SDLoraFileName, ".safetensors"))
		if !online(l.LoraStatus) || id == "" {
			continue
		}
		out = append(out, engine.CatalogEntry{
			Vendor: Name, Kind: engine.EntryLoRA, ID: id, Name: firstOf(l.SDLoraName, id),
			Base:  strings.TrimSpace(l.LoraBaseModel),
			Cover: firstOf(l.LoraCoverImgURL2, firstURL(l.LoraImgURL2)), Adult: l.IsAdult.V == 1,
		})
	}
	empty := "" // queryVaeList marks vaeFileName required; empty asks for all
	vaes, err := list[vaeRow](ctx, v, "saas/sd/v2/queryVaeList", &empty)
	var ref *refusal
	if errors.As(err, &ref) {
		// The seed shows vaeFileName only with a concrete name; that an
		// empty one lists every VAE is a guess. A refusal costs the VAEs
		// (the configured vae still works), not the whole catalogue.
		v.log.Warn("queryVaeList refused an empty vaeFileName: VAEs are not listed", slog.String("vendor", Name), slog.Any("err", err))
		vaes, err = nil, nil
	}
	if err != nil {
		return nil, err
	}
	for _, x := range vaes {
		if name := strings.TrimSpace(x.VAEFileName); name != "" {
			out = append(out, engine.CatalogEntry{Vendor: Name, Kind: engine.EntryVAE, ID: name, Name: name})
		}
	}
	embs, err := list[embeddingRow](ctx, v, "saas/sd/v2/queryEmbeddingList", nil)
	if err != nil {
		return nil, err
	}
	for _, x := range embs {
		// An embedding is used by writing its simplified name in the negative prompt.
		if id := firstOf(x.EmbeddingSimplifyName, x.EmbeddingName); id != "" {
			out = append(out, engine.CatalogEntry{Vendor: Name, Kind: engine.EntryEmbedding, ID: id, Name: firstOf(x.EmbeddingName, id)})
		}
	}
	return out, nil
}

// list reads every page of a list endpoint, up to catalogPages.
func list[T any](ctx context.Context, v *Vendor, endpoint string, vae *string) ([]T, error) {
	var rows []T
	for n := 1; n <= catalogPages; n++ {
		var p page[T]
		if err := v.call(ctx, endpoint, listBody{PageSize: catalogPageSize, PageNum: n, VAEFileName: vae}, &p); err != nil {
			return nil, fmt.Errorf("zhiqite catalogue: %w", err)
		}
		rows = append(rows, p.Rows...)
		if len(p.Rows) == 0 || (p.Total.Set && len(rows) >= int(p.Total.V)) || (!p.Total.Set && len(p.Rows) < catalogPageSize) {
			return rows, nil
		}
	}
	v.log.Warn("catalogue list cut short", slog.String("vendor", Name), slog.String("endpoint", endpoint), slog.Int("rows", len(rows)))
	return rows, nil
}

// online reads a model's or LoRA's status: only 1 is online.
func online(n num) bool { return n.Set && n.V == 1 }

func firstOf(ss ...string) string {
	for _, s := range ss {
		if s = strings.TrimSpace(s); s != "" {
			return s
		}
	}
	return ""
}

// firstURL takes the first of a comma-separated list of image links.
func firstURL(s string) string {
	first, _, _ := strings.Cut(s, ",")
	return strings.TrimSpace(first)
}

// unlisted names the first of r's model, LoRAs, VAE and embeddings that
// the cached catalogue does not hold, so a request the vendor would refuse
// (a billed refusal) goes to another vendor or is refused at once. Without
// a cached catalogue every name passes: Check makes no billed call.
func (v *Vendor) unlisted(r *engine.Request) error {
	v.catMu.Lock()
	cat := v.catalog
	v.catMu.Unlock()
	if cat == nil {
		return nil
	}
	has := map[string]bool{}
	for _, e := range cat {
		has[e.Kind+"\x00"+e.ID] = true
	}
	vaes := 0
	for _, e := range cat {
		if e.Kind == engine.EntryVAE {
			vaes++
		}
	}
	check := func(kind, flag, name string) error {
		if name == "" || has[kind+"\x00"+name] || (kind == engine.EntryVAE && vaes == 0) {
			return nil // no VAE list (queryVaeList refused): any name may do
		}
		return engine.Errorf(engine.EINVALID, "Zhiqite has no %[1]s %[2]q; /models lists what it has.", "Zhiqite 没有 %[1]s %[2]q，可用的见 /models。", flag, name)
	}
	if err := check(engine.EntryModel, "--model", r.Model); err != nil {
		return err
	}
	for _, l := range append([]string{r.LoRA}, r.ExtraLoRAs...) {
		name, _, _ := strings.Cut(l, ":")
		if err := check(engine.EntryLoRA, "--lora", strings.TrimSpace(name)); err != nil {
			return err
		}
	}
	if err := check(engine.EntryVAE, "--vae", r.VAE); err != nil {
		return err
	}
	for _, e := range r.Embeddings {
		if err := check(engine.EntryEmbedding, "--embedding", e); err != nil {
			return err
		}
	}
	return nil
}
