package zhiqitetest

import (
	"bytes"
	"context"
	"fmt"
	"hash/fnv"
	"image"
	"image/color"
	_ "image/gif" // inputs may be any common format
	"image/jpeg"
	"image/png"
	"io"
	"net"
	"net/http"
	"net/url"

	_ "golang.org/x/image/webp"
)

// PNG returns a w×h PNG whose colours depend on seed: a test input or result.
func PNG(w, h int, seed int64) []byte {
	b, err := encode(paint(w, h, seed), "png")
	if err != nil {
		panic(err) // encoding an in-memory RGBA cannot fail
	}
	return b
}

func paint(w, h int, seed int64) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	base := uint8(seed*37) + 40
	for y := range h {
		for x := range w {
			img.SetRGBA(x, y, color.RGBA{R: uint8(x * 255 / max(w, 1)), G: uint8(y * 255 / max(h, 1)), B: base, A: 255})
		}
	}
	return img
}

func encode(img image.Image, format string) ([]byte, error) {
	var buf bytes.Buffer
	var err error
	if format == "png" {
		err = png.Encode(&buf, img)
	} else {
		err = jpeg.Encode(&buf, img, &jpeg.Options{Quality: 85})
	}
	return buf.Bytes(), err
}

func promptSeed(prompt string, seed int64) int64 {
	h := fnv.New64a()
	fmt.Fprintf(h, "%s\x00%d", prompt, seed)
	return int64(h.Sum64() >> 1)
}

// upscale enlarges img by f, nearest neighbour: a real image of the right size.
func upscale(img image.Image, f int) image.Image {
	b := img.Bounds()
	out := image.NewRGBA(image.Rect(0, 0, b.Dx()*f, b.Dy()*f))
	for y := range out.Bounds().Dy() {
		for x := range out.Bounds().Dx() {
			out.Set(x, y, img.At(b.Min.X+x/f, b.Min.Y+y/f))
		}
	}
	return out
}

// swapface pastes the face image, shrunk to a third, on the target's centre.
func swapface(face, target image.Image) image.Image {
	tb := target.Bounds()
	out := image.NewRGBA(image.Rect(0, 0, tb.Dx(), tb.Dy()))
	for y := range tb.Dy() {
		for x := range tb.Dx() {
			out.Set(x, y, target.At(tb.Min.X+x, tb.Min.Y+y))
		}
	}
	fb := face.Bounds()
	w, h := max(tb.Dx()/3, 1), max(tb.Dy()/3, 1)
	x0, y0 := (tb.Dx()-w)/2, (tb.Dy()-h)/2
	for y := range h {
		for x := range w {
			out.Set(x0+x, y0+y, face.At(fb.Min.X+x*fb.Dx()/w, fb.Min.Y+y*fb.Dy()/h))
		}
	}
	return out
}

// fetch downloads and decodes an image, as the vendor does with image links.
// Only loopback hosts are fetched: the fake never reaches the network.
func (s *Server) fetch(ctx context.Context, link string) (image.Image, error) {
	if err := loopback(link); err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, link, nil)
	if err != nil {
		return nil, err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", link, resp.Status)
	}
	img, _, err := image.Decode(io.LimitReader(resp.Body, 50<<20))
	return img, err
}

func loopback(link string) error {
	u, err := url.Parse(link)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return fmt.Errorf("not an http(s) link: %q", link)
	}
	host := u.Hostname()
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("the fake only reaches loopback hosts, not %q", host)
}
