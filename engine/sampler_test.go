package engine_test

import (
	"reflect"
	"testing"

	"github.com/picbot/picbot/engine"
)

func TestSamplerMapping(t *testing.T) {
	vendor := []string{"K_EULER", "K_EULER_ANCESTRAL", "DDIM", "FancyNew"}
	aliases := map[string]string{"Euler": "K_EULER", "Euler a": "K_EULER_ANCESTRAL", "DDIM": "DDIM"}
	for in, want := range map[string]string{"euler a": "K_EULER_ANCESTRAL", "Euler_A": "K_EULER_ANCESTRAL", "k_euler": "K_EULER", "DDIM": "DDIM", "fancynew": "FancyNew", "DPM++ 2M Karras": ""} {
		got, ok := engine.MapSampler(in, vendor, aliases)
		if got != want || ok != (want != "") {
			t.Errorf("%q → %q %v, want %q", in, got, ok, want)
		}
	}
	if got := engine.SamplerChoices(vendor, aliases); !reflect.DeepEqual(got, []string{"Euler a", "Euler", "DDIM", "FancyNew"}) {
		t.Errorf("choices %v", got)
	}
	if c, ok := engine.CanonicalSampler("dpm++_2m_karras"); !ok || c != "DPM++ 2M Karras" {
		t.Errorf("canonical %q %v", c, ok)
	}
}
