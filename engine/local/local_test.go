package local_test

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"testing"
	"time"

	"github.com/picbot/picbot/engine"
	"github.com/picbot/picbot/engine/local"
	"github.com/picbot/picbot/store"
)

func decode(t *testing.T, data []byte) image.Image {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestRender(t *testing.T) {
	ctx := context.Background()
	blobs, err := store.OpenBlobs(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	r := local.New(blobs, 0, nil)
	draw := &engine.Request{Kind: engine.KindDraw, Prompt: "a red fox", Width: 768, Height: 512, Steps: 25, Seed: 7, N: 2}

	t.Run("DrawDeterministic", func(t *testing.T) {
		a, err := r.Render(ctx, draw)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := r.Render(ctx, draw)
		if len(a) != 2 || !bytes.Equal(a[0], b[0]) || !bytes.Equal(a[1], b[1]) {
			t.Fatal("same request, different bytes")
		}
		if bytes.Equal(a[0], a[1]) {
			t.Fatal("the second image (seed+1) equals the first")
		}
		if got := decode(t, a[0]).Bounds().Size(); got != image.Pt(768, 512) {
			t.Fatalf("size %v", got)
		}
		other := *draw
		other.Prompt = "a blue whale"
		c, _ := r.Render(ctx, &other)
		if bytes.Equal(a[0], c[0]) {
			t.Fatal("different prompt, same picture")
		}
	})

	src, _ := r.Render(ctx, &engine.Request{Kind: engine.KindDraw, Prompt: "face", Width: 64, Height: 96, Steps: 5, N: 1})
	info, err := blobs.Put(ctx, bytes.NewReader(src[0]), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	in := []engine.Input{{Blob: info.Key, Width: 64, Height: 96}}
	for _, tc := range []struct {
		name string
		req  engine.Request
		size image.Point
	}{
		{"Upscale", engine.Request{Kind: engine.KindUpscale, Scale: 3, Inputs: in}, image.Pt(192, 288)},
		{"Anime", engine.Request{Kind: engine.KindAnime, Style: "anime", Inputs: in}, image.Pt(64, 96)},
		{"Sketch", engine.Request{Kind: engine.KindAnime, Style: "sketch", Inputs: in}, image.Pt(64, 96)},
		{"Swapface", engine.Request{Kind: engine.KindSwapface, Inputs: append(in, in...)}, image.Pt(64, 96)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := r.Render(ctx, &tc.req)
			if err != nil {
				t.Fatal(err)
			}
			if got := decode(t, out[0]).Bounds().Size(); got != tc.size {
				t.Fatalf("size %v, want %v", got, tc.size)
			}
			if bytes.Equal(out[0], src[0]) {
				t.Fatal("output equals input")
			}
		})
	}
	t.Run("ErrStyle", func(t *testing.T) {
		if err := r.Check(&engine.Request{Kind: engine.KindAnime, Style: "baroque"}); engine.ErrorCode(err) != engine.EINVALID {
			t.Fatalf("err %v", err)
		}
	})
}

func TestQueryProgress(t *testing.T) {
	now := time.Unix(1000, 0)
	r := local.New(nil, 10*time.Second, func() time.Time { return now })
	j := &engine.Job{SubmittedAt: time.Unix(996, 0), Request: engine.Request{Kind: engine.KindDraw, Prompt: "x", Width: 64, Height: 64, Steps: 1, N: 1}}
	out, err := r.Query(context.Background(), j)
	if err != nil || out.State != engine.TaskRunning || out.Progress != 0.4 {
		t.Fatalf("out %+v err %v", out, err)
	}
	now = time.Unix(1010, 0)
	out, _ = r.Query(context.Background(), j)
	if out.State != engine.TaskDone || len(out.Images) != 1 {
		t.Fatalf("out %+v", out)
	}
}
