package a1111

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/picbot/picbot/engine"
)

// caps is what the first backend offers: its lists and its extensions.
type caps struct {
	Samplers   []string
	Schedulers []scheduler
	Models     []string // titles, what sd_model_checkpoint takes
	LoRAs      []string
	VAEs       []string
	Embeddings []string
	Upscalers  []string
	ControlNet bool
	ADetailer  bool
	ReActor    bool
}

type scheduler struct{ Name, Label string }

// sampler matches a user's --sampler to a sampler, and a scheduler when
// the name ends with one ("DPM++ 2M Karras"), as the web UI's
// get_sampler_and_scheduler does.
func (c *caps) sampler(s string) (string, string, bool) {
	norm := func(s string) string {
		return strings.Join(strings.Fields(strings.ToLower(strings.ReplaceAll(s, "_", " "))), " ")
	}
	want := norm(s)
	for _, name := range c.Samplers {
		if norm(name) == want {
			return name, "", true
		}
	}
	for _, sch := range c.Schedulers {
		for _, suffix := range []string{norm(sch.Label), norm(sch.Name)} {
			if suffix == "" || !strings.HasSuffix(want, " "+suffix) {
				continue
			}
			base := strings.TrimSuffix(want, " "+suffix)
			for _, name := range c.Samplers {
				if norm(name) == base {
					return name, sch.Name, true
				}
			}
		}
	}
	return "", "", false
}

func (v *Vendor) cachedCaps() *caps {
	v.catMu.Lock()
	defer v.catMu.Unlock()
	return v.caps
}

// Probe reads the backend's lists and extensions now; the wiring calls it
// at start, so /swapface and --sampler are checked from the first command.
func (v *Vendor) Probe(ctx context.Context) error {
	_, err := v.capabilities(ctx)
	return err
}

// capabilities returns the lists, read again after CatalogTTL.
func (v *Vendor) capabilities(ctx context.Context) (*caps, error) {
	v.catMu.Lock()
	c, fresh := v.caps, v.now().Before(v.capUntil)
	v.catMu.Unlock()
	if c != nil && fresh {
		return c, nil
	}
	nc, err := v.readCaps(ctx)
	if err != nil {
		if c != nil {
			return c, nil // the old lists beat none
		}
		return nil, err
	}
	v.catMu.Lock()
	v.caps, v.capUntil = nc, v.now().Add(v.cfg.CatalogTTL)
	v.catMu.Unlock()
	return nc, nil
}

func (v *Vendor) readCaps(ctx context.Context) (*caps, error) {
	b := 0 // the first web UI speaks for all
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c := &caps{}
	var samplers []struct {
		Name string `json:"name"`
	}
	if _, err := v.do(ctx, b, http.MethodGet, "sdapi/v1/samplers", nil, &samplers); err != nil {
		return nil, err
	}
	for _, s := range samplers {
		c.Samplers = append(c.Samplers, s.Name)
	}
	var schedulers []struct {
		Name  string `json:"name"`
		Label string `json:"label"`
	}
	// /schedulers came with web UI 1.9; an older one splits no names.
	if _, err := v.do(ctx, b, http.MethodGet, "sdapi/v1/schedulers", nil, &schedulers); err == nil {
		for _, s := range schedulers {
			c.Schedulers = append(c.Schedulers, scheduler{Name: s.Name, Label: s.Label})
		}
	}
	var models []struct {
		Title string `json:"title"`
	}
	if _, err := v.do(ctx, b, http.MethodGet, "sdapi/v1/sd-models", nil, &models); err != nil {
		return nil, err
	}
	for _, m := range models {
		c.Models = append(c.Models, m.Title)
	}
	var loras []struct {
		Name  string `json:"name"`
		Alias string `json:"alias"`
	}
	if _, err := v.do(ctx, b, http.MethodGet, "sdapi/v1/loras", nil, &loras); err == nil {
		for _, l := range loras {
			c.LoRAs = append(c.LoRAs, l.Name)
		}
	}
	var vaes []struct {
		Name string `json:"model_name"`
	}
	if _, err := v.do(ctx, b, http.MethodGet, "sdapi/v1/sd-vae", nil, &vaes); err == nil {
		for _, x := range vaes {
			c.VAEs = append(c.VAEs, x.Name)
		}
	}
	var emb struct {
		Loaded map[string]any `json:"loaded"`
	}
	if _, err := v.do(ctx, b, http.MethodGet, "sdapi/v1/embeddings", nil, &emb); err == nil {
		for name := range emb.Loaded {
			c.Embeddings = append(c.Embeddings, name)
		}
		slices.Sort(c.Embeddings)
	}
	var ups []struct {
		Name string `json:"name"`
	}
	if _, err := v.do(ctx, b, http.MethodGet, "sdapi/v1/upscalers", nil, &ups); err == nil {
		for _, u := range ups {
			c.Upscalers = append(c.Upscalers, u.Name)
		}
	}
	var scripts struct {
		Txt2Img []string `json:"txt2img"`
		Img2Img []string `json:"img2img"`
	}
	if _, err := v.do(ctx, b, http.MethodGet, "sdapi/v1/scripts", nil, &scripts); err == nil {
		all := append(scripts.Txt2Img, scripts.Img2Img...)
		has := func(name string) bool {
			return slices.ContainsFunc(all, func(s string) bool { return strings.EqualFold(s, name) })
		}
		c.ControlNet, c.ADetailer, c.ReActor = has("controlnet"), has("adetailer"), has("reactor")
	}
	if !c.ControlNet {
		// The ControlNet extension's own route, where the scripts list says nothing.
		if _, err := v.do(ctx, b, http.MethodGet, "controlnet/version", nil, nil); err == nil {
			c.ControlNet = true
		}
	}
	return c, nil
}

// Catalog implements engine.Cataloguer: the backend's checkpoints, LoRAs,
// VAEs and embeddings.
func (v *Vendor) Catalog(ctx context.Context) ([]engine.CatalogEntry, error) {
	c, err := v.capabilities(ctx)
	if err != nil {
		return nil, err
	}
	var out []engine.CatalogEntry
	add := func(kind string, names []string, id func(string) string) {
		for _, n := range names {
			out = append(out, engine.CatalogEntry{Vendor: Name, Kind: kind, ID: id(n), Name: n})
		}
	}
	same := func(s string) string { return s }
	add(engine.EntryModel, c.Models, same)
	add(engine.EntryLoRA, c.LoRAs, same)
	add(engine.EntryVAE, c.VAEs, same)
	add(engine.EntryEmbedding, c.Embeddings, same)
	return out, nil
}

// Choices implements engine.Chooser: the samplers of /draw, as read.
func (v *Vendor) Choices(k engine.Kind) engine.Choices {
	if k != engine.KindDraw {
		return engine.Choices{}
	}
	if c := v.cachedCaps(); c != nil {
		return engine.Choices{Samplers: slices.Clone(c.Samplers)}
	}
	return engine.Choices{}
}
