// Package local is a built-in renderer that needs no network and no account:
// the embedded default for trying the bot and for tests. It is not an AI
// model: it draws a deterministic picture from the prompt, and applies plain
// image filters for the other kinds. The same request gives the same PNG bytes.
//
// It is stateless: a task's progress is the time since the job was submitted,
// and the images are made when a query finds the time is up. So a restart
// loses nothing, and the engine follows it exactly as it follows a remote vendor.
package local

import (
	"bytes"
	"context"
	"fmt"
	"image"
	_ "image/gif" // input decoders
	_ "image/jpeg"
	"image/png"
	"io"
	"slices"
	"time"

	"github.com/picbot/picbot/engine"
	xdraw "golang.org/x/image/draw"
	_ "golang.org/x/image/webp"
)

// Name is the vendor name of the local renderer.
const Name = "local"

// Disclaimer goes with every local result.
const (
	DisclaimerEN = "made by picbot's built-in local renderer, not by an AI model"
	DisclaimerZH = "由 picbot 内置本地渲染器生成，并非 AI 模型作品"
)

// Renderer implements engine.Vendor.
type Renderer struct {
	blobs    engine.Blobs
	duration time.Duration
	now      func() time.Time
}

// New returns a renderer that takes duration per job and reads inputs from blobs.
func New(blobs engine.Blobs, duration time.Duration, now func() time.Time) *Renderer {
	if now == nil {
		now = time.Now
	}
	return &Renderer{blobs: blobs, duration: duration, now: now}
}

func (r *Renderer) Name() string { return Name }

// Check accepts every kind; the engine's limits already bound sizes.
func (r *Renderer) Check(req *engine.Request) error {
	if req.Kind == engine.KindAnime && !validStyle(req.Style) {
		return engine.Errorf(engine.EINVALID, "Unknown --style %q; try one of: %s.", "未知的 --style %q，可选：%s。", req.Style, stylesList())
	}
	return nil
}

// Submit accepts the task at once; its id is the engine's suggestion.
func (r *Renderer) Submit(ctx context.Context, j *engine.Job, t engine.Task) (string, error) {
	return t.ID, nil
}

// Timing polls ten times over the duration; local calls cost nothing.
func (r *Renderer) Timing(req *engine.Request) engine.Timing {
	step := max(r.duration/10, 10*time.Millisecond)
	return engine.Timing{First: step, Every: step, Max: step}
}

// Query reports progress until the duration has passed, then renders.
func (r *Renderer) Query(ctx context.Context, j *engine.Job) (*engine.Outcome, error) {
	elapsed := r.now().Sub(j.SubmittedAt)
	if elapsed < r.duration {
		return &engine.Outcome{State: engine.TaskRunning, Progress: float64(elapsed) / float64(r.duration)}, nil
	}
	imgs, err := r.Render(ctx, &j.Request)
	if err != nil {
		return &engine.Outcome{State: engine.TaskFailed, Err: err}, nil
	}
	out := &engine.Outcome{State: engine.TaskDone, Progress: 1}
	for i, data := range imgs {
		seed := j.Request.Seed
		if j.Request.Kind == engine.KindDraw {
			seed += int64(i)
		}
		out.Images = append(out.Images, engine.Remote{Data: data, Seed: seed})
	}
	return out, nil
}

// Render makes the request's images as PNG bytes.
func (r *Renderer) Render(ctx context.Context, req *engine.Request) ([][]byte, error) {
	inputs := make([]image.Image, len(req.Inputs))
	for i, in := range req.Inputs {
		img, err := r.decode(ctx, in.Blob)
		if err != nil {
			return nil, err
		}
		inputs[i] = img
	}
	var out [][]byte
	for i := range req.Images() {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var img image.Image
		switch req.Kind {
		case engine.KindDraw:
			img = draw(req, req.Seed+int64(i), inputs)
		case engine.KindAnime:
			img = anime(inputs[0], req.Style)
		case engine.KindUpscale:
			img = upscale(inputs[0], req.Scale)
		case engine.KindSwapface:
			img = swapface(inputs[0], inputs[1])
		default:
			return nil, engine.Errorf(engine.EINVALID, "Unknown kind %q.", "未知类型 %q。", req.Kind)
		}
		rgba, ok := img.(*image.RGBA)
		if !ok || rgba.Bounds().Min != (image.Point{}) {
			rgba = image.NewRGBA(image.Rect(0, 0, img.Bounds().Dx(), img.Bounds().Dy()))
			xdraw.Draw(rgba, rgba.Bounds(), img, img.Bounds().Min, xdraw.Src)
		}
		label(rgba) // every kind says it is not AI, on the picture itself
		var buf bytes.Buffer
		if err := png.Encode(&buf, rgba); err != nil {
			return nil, fmt.Errorf("encode png: %w", err)
		}
		out = append(out, buf.Bytes())
	}
	return out, nil
}

func (r *Renderer) decode(ctx context.Context, key string) (image.Image, error) {
	rc, err := r.blobs.Open(ctx, key)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	img, _, err := image.Decode(io.LimitReader(rc, 256<<20))
	if err != nil {
		return nil, engine.Wrap(engine.EINVALID, err, "The picture could not be read.", "无法读取这张图片。")
	}
	return img, nil
}

// Choices implements engine.Chooser: the styles of /anime; /draw takes no
// model, LoRA or sampler, and says so rather than pretend.
func (r *Renderer) Choices(k engine.Kind) engine.Choices {
	switch k {
	case engine.KindAnime:
		return engine.Choices{Styles: slices.Clone(styles)}
	case engine.KindDraw:
		return engine.Choices{Ignores: []string{"model", "lora", "sampler"}}
	}
	return engine.Choices{}
}
