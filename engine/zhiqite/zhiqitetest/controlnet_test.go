package zhiqitetest_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/picbot/picbot/engine/zhiqite/zhiqitetest"
)

// The controlnet example of the seed, with its links on loopback, is
// accepted; what its table forbids is refused.
func TestSeedControlnet(t *testing.T) {
	f := zhiqitetest.New(zhiqitetest.Options{AppCode: code})
	defer f.Close()
	img := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/png")
		w.Write(zhiqitetest.PNG(64, 64, 3))
	}))
	defer img.Close()
	base := func(id string) map[string]any {
		m := example(t, "controlnet_request.json")
		sc := m["always_on_scripts"].(map[string]any)
		sc["id_task"], sc["image_link"] = id, img.URL+"/base.png"
		sc["controlnet"].(map[string]any)["args"].([]any)[0].(map[string]any)["image_link"] = img.URL + "/qr.png"
		return m
	}
	if _, _, out := post(t, f, "saas/sd/v2/controlnet", base("cn-ok"), nil); out["code"] != "200" {
		t.Fatalf("the seed's example: %v", out)
	}
	unit := func(m map[string]any) map[string]any {
		return m["always_on_scripts"].(map[string]any)["controlnet"].(map[string]any)["args"].([]any)[0].(map[string]any)
	}
	for name, mod := range map[string]func(m map[string]any){
		"NoControlnet": func(m map[string]any) { delete(m["always_on_scripts"].(map[string]any), "controlnet") },
		"Module":       func(m map[string]any) { unit(m)["module"] = "hed" },
		"Model":        func(m map[string]any) { unit(m)["model"] = "control_sd15_hed" },
		"NoModule":     func(m map[string]any) { delete(unit(m), "module") },
		"Weight":       func(m map[string]any) { unit(m)["weight"] = 2.5 },
		"GuidanceEnd":  func(m map[string]any) { unit(m)["guidance_end"] = 1.5 },
		"NoImage": func(m map[string]any) {
			delete(unit(m), "image_link")
			delete(m["always_on_scripts"].(map[string]any), "image_link")
		},
		"HiresScale": func(m map[string]any) { m["hr_scale"] = 1.5 },
		"HiresX":     func(m map[string]any) { m["hr_resize_x"] = 2056 },
	} {
		m := base(name)
		mod(m)
		if _, _, out := post(t, f, "saas/sd/v2/controlnet", m, nil); out["code"] != "400" {
			t.Errorf("%s: %v", name, out)
		}
	}
	// image2image: cfg_scale is an integer there.
	i2i := example(t, "image2image_request.json")
	sc := i2i["alwayson_scripts"].(map[string]any)
	sc["image_link"], sc["id_task"] = img.URL+"/a.png", "i2i-cfg"
	i2i["cfg_scale"] = 7.5
	if _, _, out := post(t, f, "saas/sd/v2/image2image", i2i, nil); out["code"] != "400" {
		t.Errorf("image2image cfg_scale 7.5: %v", out)
	}
	i2i["cfg_scale"] = 7
	if _, _, out := post(t, f, "saas/sd/v2/image2image", i2i, nil); out["code"] != "200" {
		t.Errorf("image2image cfg_scale 7: %v", out)
	}
}
