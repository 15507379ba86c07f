package discord

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	_ "image/gif" // decoders for results
	"image/jpeg"
	_ "image/png"
	"math"

	"golang.org/x/image/draw"
	_ "golang.org/x/image/webp"
)

// fit returns an image of at most budget bytes: data itself if it fits,
// else re-encoded as JPEG, and scaled down if that is not enough. changed
// reports whether the result differs from the original.
func fit(data []byte, mime string, budget int64) (out []byte, outMime string, changed bool, err error) {
	if int64(len(data)) <= budget {
		return data, mime, false, nil
	}
	src, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, "", false, fmt.Errorf("decode result: %w", err)
	}
	img := flatten(src)
	for _, q := range []int{90, 80, 70} {
		if out, err = encodeJPEG(img, q); err != nil {
			return nil, "", false, err
		}
		if int64(len(out)) <= budget {
			return out, "image/jpeg", true, nil
		}
	}
	// JPEG size grows with the pixel count: scale by the square root of the excess.
	scale := math.Sqrt(float64(budget)/float64(len(out))) * 0.95
	b := img.Bounds()
	for range 8 {
		w, h := max(int(float64(b.Dx())*scale), 1), max(int(float64(b.Dy())*scale), 1)
		small := image.NewRGBA(image.Rect(0, 0, w, h))
		draw.CatmullRom.Scale(small, small.Bounds(), img, b, draw.Src, nil)
		if out, err = encodeJPEG(small, 80); err != nil {
			return nil, "", false, err
		}
		if int64(len(out)) <= budget {
			return out, "image/jpeg", true, nil
		}
		scale *= 0.75
	}
	return nil, "", false, fmt.Errorf("cannot fit a %dx%d image in %d bytes", b.Dx(), b.Dy(), budget)
}

// flatten puts an image with transparency on white, as JPEG has no alpha.
func flatten(src image.Image) image.Image {
	b := src.Bounds()
	dst := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	draw.Draw(dst, dst.Bounds(), &image.Uniform{C: color.White}, image.Point{}, draw.Src)
	draw.Draw(dst, dst.Bounds(), src, b.Min, draw.Over)
	return dst
}

func encodeJPEG(img image.Image, quality int) ([]byte, error) {
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: quality}); err != nil {
		return nil, fmt.Errorf("encode JPEG: %w", err)
	}
	return buf.Bytes(), nil
}
