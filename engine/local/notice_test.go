package local_test

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"os"
	"path/filepath"
	"testing"

	"github.com/picbot/picbot/engine"
	"github.com/picbot/picbot/engine/local"
	"github.com/picbot/picbot/store"
)

// TestNoticeOnEveryKind: every kind of local result carries the "not AI"
// notice on its pixels, large enough to read at 2048 px and still there at
// 64 px. Set PICBOT_NOTICE_DIR to keep the PNGs for a look.
func TestNoticeOnEveryKind(t *testing.T) {
	ctx := context.Background()
	blobs, err := store.OpenBlobs(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	r := local.New(blobs, 0, nil)
	put := func(w, h int) engine.Input {
		t.Helper()
		imgs, err := r.Render(ctx, &engine.Request{Kind: engine.KindDraw, Prompt: "white snow", Width: w, Height: h, Steps: 5, N: 1})
		if err != nil {
			t.Fatal(err)
		}
		info, err := blobs.Put(ctx, bytes.NewReader(imgs[0]), 64<<20)
		if err != nil {
			t.Fatal(err)
		}
		return engine.Input{Blob: info.Key, Width: info.Width, Height: info.Height}
	}
	small, large := put(64, 64), put(1024, 1024)
	for _, tc := range []struct {
		name string
		req  engine.Request
		// the white text's bounding box must be at least this tall and wide
		minH, minW int
	}{
		{"draw64", engine.Request{Kind: engine.KindDraw, Prompt: "white snow", Width: 64, Height: 64, Steps: 5, N: 1}, 8, 36},
		{"draw2048", engine.Request{Kind: engine.KindDraw, Prompt: "white snow", Width: 2048, Height: 2048, Steps: 5, N: 1}, 36, 700},
		{"anime64", engine.Request{Kind: engine.KindAnime, Style: "sketch", N: 1, Inputs: []engine.Input{small}}, 8, 36},
		{"upscale2048", engine.Request{Kind: engine.KindUpscale, Scale: 2, N: 1, Inputs: []engine.Input{large}}, 36, 700},
		{"upscale64", engine.Request{Kind: engine.KindUpscale, Scale: 2, N: 1, Inputs: []engine.Input{put(32, 32)}}, 8, 36},
		{"swapface64", engine.Request{Kind: engine.KindSwapface, N: 1, Inputs: []engine.Input{small, small}}, 8, 36},
	} {
		t.Run(tc.name, func(t *testing.T) {
			imgs, err := r.Render(ctx, &tc.req)
			if err != nil {
				t.Fatal(err)
			}
			if dir := os.Getenv("PICBOT_NOTICE_DIR"); dir != "" {
				os.WriteFile(filepath.Join(dir, tc.name+".png"), imgs[0], 0o644)
			}
			img := decode(t, imgs[0])
			b := img.Bounds()
			// The strip is darkened, so only the text is near white there.
			box := image.Rectangle{}
			dark := 0
			strip := b.Dy() / 5
			for y := b.Max.Y - strip; y < b.Max.Y; y++ {
				for x := b.Min.X; x < b.Max.X; x++ {
					r, g, bl, _ := img.At(x, y).RGBA()
					switch {
					case r>>8 > 200 && g>>8 > 200 && bl>>8 > 200:
						box = box.Union(image.Rect(x, y, x+1, y+1))
					case r>>8 < 90 && g>>8 < 90 && bl>>8 < 90:
						dark++
					}
				}
			}
			if box.Empty() {
				t.Fatalf("%v: no notice in the bottom strip", b.Size())
			}
			if box.Dy() < tc.minH || box.Dx() < tc.minW {
				t.Fatalf("%v: notice %dx%d, want at least %dx%d", b.Size(), box.Dx(), box.Dy(), tc.minW, tc.minH)
			}
			if dark < box.Dx()*box.Dy()/2 {
				t.Fatalf("%v: the notice is not on a dark strip (%d dark pixels)", b.Size(), dark)
			}
			fmt.Printf("%s %v: notice %v\n", tc.name, b.Size(), box.Size())
		})
	}
}
