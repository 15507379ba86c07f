package engine

import "strings"

// Samplers are the sampler names users know (AUTOMATIC1111's), in the
// order help shows them. Each vendor maps them to its own words
// (SamplerAliases) and lists, as its choices, those it can honour.
var Samplers = []string{
	"Euler a", "Euler", "LMS", "Heun", "DPM2", "DPM2 a", "DPM++ 2S a", "DPM++ 2M", "DPM++ SDE",
	"DPM fast", "DPM adaptive", "LMS Karras", "DPM2 Karras", "DPM2 a Karras", "DPM++ 2S a Karras",
	"DPM++ SDE Karras", "DPM++ 2M Karras", "DDIM", "PLMS", "UniPC",
}

// SamplerKey folds a sampler's spelling ("dpm++_2m_karras", "Euler A") for comparison.
func SamplerKey(s string) string {
	return strings.Join(strings.Fields(strings.ToLower(strings.NewReplacer("_", " ", "-", " ").Replace(s))), " ")
}

// CanonicalSampler returns the canonical name a user's spelling means, and
// whether it is one.
func CanonicalSampler(s string) (string, bool) {
	k := SamplerKey(s)
	for _, name := range Samplers {
		if SamplerKey(name) == k {
			return name, true
		}
	}
	return "", false
}

// MapSampler finds what a vendor calls the sampler s: s itself if the
// vendor lists it (any spelling), else the vendor word aliases gives for
// its canonical name. ok is false when the vendor has no such sampler.
func MapSampler(s string, vendor []string, aliases map[string]string) (string, bool) {
	k := SamplerKey(s)
	for _, name := range vendor {
		if SamplerKey(name) == k {
			return name, true
		}
	}
	if c, ok := CanonicalSampler(s); ok {
		if w, ok := aliases[c]; ok {
			for _, name := range vendor {
				if SamplerKey(name) == SamplerKey(w) {
					return name, true
				}
			}
		}
	}
	return "", false
}

// SamplerChoices lists, for a vendor's own samplers, the canonical names
// aliases maps to them, then the vendor's words no canonical name maps to.
func SamplerChoices(vendor []string, aliases map[string]string) []string {
	var out []string
	mapped := map[string]bool{}
	for _, c := range Samplers {
		if w, ok := aliases[c]; ok {
			for _, name := range vendor {
				if SamplerKey(name) == SamplerKey(w) {
					out = append(out, c)
					mapped[SamplerKey(name)] = true
				}
			}
		}
	}
	for _, name := range vendor {
		if !mapped[SamplerKey(name)] {
			out = append(out, name)
		}
	}
	return out
}
