package local

import (
	"hash/fnv"
	"image"
	"image/color"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/picbot/picbot/engine"
	xdraw "golang.org/x/image/draw"
	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// rng is splitmix64: tiny, and fixed forever, so pictures never change
// between Go releases the way math/rand's streams may.
type rng uint64

func (r *rng) next() uint64 {
	*r += 0x9E3779B97F4A7C15
	z := uint64(*r)
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}

// float returns a number in [0, 1).
func (r *rng) float() float64 { return float64(r.next()>>11) / (1 << 53) }

// colourWords give a prompt that names a colour that colour.
var colourWords = []struct {
	words []string
	hue   float64
}{
	{[]string{"red", "红"}, 0},
	{[]string{"orange", "fox", "橙", "狐"}, 25},
	{[]string{"yellow", "gold", "黄", "金"}, 50},
	{[]string{"green", "forest", "绿", "森林"}, 120},
	{[]string{"cyan", "sea", "ocean", "青", "海"}, 185},
	{[]string{"blue", "sky", "蓝", "天"}, 220},
	{[]string{"purple", "violet", "紫"}, 275},
	{[]string{"pink", "rose", "粉", "玫瑰"}, 330},
}

func promptHue(prompt string, r *rng) float64 {
	p := strings.ToLower(prompt)
	for _, c := range colourWords {
		for _, w := range c.words {
			if strings.Contains(p, w) {
				return c.hue
			}
		}
	}
	return r.float() * 360
}

func hsv(h, s, v float64) color.RGBA {
	h = math.Mod(h+360, 360) / 60
	i := math.Floor(h)
	f := h - i
	p, q, t := v*(1-s), v*(1-s*f), v*(1-s*(1-f))
	var r, g, b float64
	switch int(i) {
	case 0:
		r, g, b = v, t, p
	case 1:
		r, g, b = q, v, p
	case 2:
		r, g, b = p, v, t
	case 3:
		r, g, b = p, q, v
	case 4:
		r, g, b = t, p, v
	default:
		r, g, b = v, p, q
	}
	return color.RGBA{uint8(r * 255), uint8(g * 255), uint8(b * 255), 255}
}

// blend mixes c into img's pixel at (x, y) with weight a in [0, 1].
func blend(img *image.RGBA, x, y int, c color.RGBA, a float64) {
	i := img.PixOffset(x, y)
	p := img.Pix[i : i+3 : i+3]
	p[0] = uint8(float64(p[0])*(1-a) + float64(c.R)*a)
	p[1] = uint8(float64(p[1])*(1-a) + float64(c.G)*a)
	p[2] = uint8(float64(p[2])*(1-a) + float64(c.B)*a)
}

// draw paints a landscape of soft shapes whose colours and layout come
// from the prompt and the seed, with a reference image, if given, under it.
func draw(req *engine.Request, seed int64, inputs []image.Image) image.Image {
	w, h := req.Width, req.Height
	hf := fnv.New64a()
	for _, s := range []string{req.Prompt, req.Negative, req.Model, req.LoRA, req.Sampler, strconv.Itoa(req.Steps), strconv.FormatFloat(req.Guidance, 'g', -1, 64)} {
		hf.Write([]byte(s))
		hf.Write([]byte{0})
	}
	r := rng(hf.Sum64() ^ uint64(seed)*0x9E3779B97F4A7C15)
	hue := promptHue(req.Prompt, &r)

	img := image.NewRGBA(image.Rect(0, 0, w, h))
	top, bottom := hsv(hue+180, 0.35, 0.95), hsv(hue+200, 0.6, 0.45)
	for y := 0; y < h; y++ {
		t := float64(y) / float64(h)
		c := color.RGBA{uint8(float64(top.R)*(1-t) + float64(bottom.R)*t), uint8(float64(top.G)*(1-t) + float64(bottom.G)*t), uint8(float64(top.B)*(1-t) + float64(bottom.B)*t), 255}
		for x := 0; x < w; x++ {
			i := img.PixOffset(x, y)
			img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = c.R, c.G, c.B, 255
		}
	}
	if len(inputs) > 0 {
		ref := image.NewRGBA(img.Bounds())
		xdraw.ApproxBiLinear.Scale(ref, ref.Bounds(), inputs[0], inputs[0].Bounds(), xdraw.Src, nil)
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				blend(img, x, y, ref.RGBAAt(x, y), 0.6)
			}
		}
	}
	// Hills: layered sine silhouettes, darker towards the front.
	for layer := range 3 {
		base := float64(h) * (0.55 + 0.12*float64(layer))
		amp, freq, phase := float64(h)*(0.05+0.05*r.float()), (1+3*r.float())*math.Pi/float64(w), r.float()*2*math.Pi
		c := hsv(hue+float64(layer)*15, 0.5+0.15*float64(layer), 0.55-0.12*float64(layer))
		for x := 0; x < w; x++ {
			top := int(base + amp*math.Sin(float64(x)*freq+phase))
			for y := max(top, 0); y < h; y++ {
				blend(img, x, y, c, 0.85)
			}
		}
	}
	// Soft discs: more of them for more steps.
	for range 4 + req.Steps/5 {
		cx, cy := r.float()*float64(w), r.float()*float64(h)*0.7
		rad := (0.04 + 0.12*r.float()) * float64(min(w, h))
		c := hsv(hue+r.float()*80-40, 0.5+0.4*r.float(), 0.7+0.3*r.float())
		x0, x1 := max(int(cx-rad), 0), min(int(cx+rad)+1, w)
		y0, y1 := max(int(cy-rad), 0), min(int(cy+rad)+1, h)
		for y := y0; y < y1; y++ {
			for x := x0; x < x1; x++ {
				d := math.Hypot(float64(x)-cx, float64(y)-cy) / rad
				if d < 1 {
					blend(img, x, y, c, 0.75*(1-d*d))
				}
			}
		}
	}
	return img
}

// notices are the "not AI" notice, longest first: label writes the longest
// that fits the picture's width.
var notices = []string{"picbot local renderer - not AI", "local renderer - not AI", "not AI"}

// label writes the "not AI" notice on a dark strip along the bottom edge,
// on every kind of result. The 7x13 font is scaled by whole steps with the
// picture, so the notice stays readable on a 2048-pixel result; on a small
// one it is shortened, down to "not AI" (42 pixels), and below that a
// crossed-out box stands for it.
func label(img *image.RGBA) {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	scale := max(1, min(w/512, h/128))
	const cw, ch, pad = 7, 13, 4 // basicfont.Face7x13's cell, and the margin
	text := ""
	for _, t := range notices {
		if len(t)*cw*scale+2*pad*scale <= w {
			text = t
			break
		}
	}
	strip := min((ch+3)*scale, h)
	for y := b.Max.Y - strip; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			blend(img, x, y, color.RGBA{0, 0, 0, 255}, 0.7)
		}
	}
	if text == "" {
		mark(img, strip)
		return
	}
	glyphs := image.NewAlpha(image.Rect(0, 0, len(text)*cw, ch))
	d := font.Drawer{Dst: glyphs, Src: image.Opaque, Face: basicfont.Face7x13, Dot: fixed.P(0, ch-2)}
	d.DrawString(text)
	x0, y0 := b.Min.X+pad*scale, b.Max.Y-strip+scale
	for gy := 0; gy < ch; gy++ {
		for gx := 0; gx < len(text)*cw; gx++ {
			a := float64(glyphs.AlphaAt(gx, gy).A) / 255
			if a == 0 {
				continue
			}
			for dy := 0; dy < scale; dy++ {
				for dx := 0; dx < scale; dx++ {
					if x, y := x0+gx*scale+dx, y0+gy*scale+dy; x < b.Max.X && y < b.Max.Y {
						blend(img, x, y, color.RGBA{255, 255, 255, 255}, a)
					}
				}
			}
		}
	}
}

// mark draws a white box with a cross in the strip of a picture too
// narrow for any text: the notice is in the caption beside it.
func mark(img *image.RGBA, strip int) {
	b := img.Bounds()
	side := max(strip-2, 3)
	x0, y0 := b.Min.X+1, b.Max.Y-strip+1
	for i := 0; i < side; i++ {
		for _, p := range []image.Point{{i, 0}, {i, side - 1}, {0, i}, {side - 1, i}, {i, i}, {side - 1 - i, i}} {
			if x, y := x0+p.X, y0+p.Y; x < b.Max.X && y < b.Max.Y {
				img.SetRGBA(x, y, color.RGBA{255, 255, 255, 255})
			}
		}
	}
}

// Styles for /anime.
var styles = []string{"anime", "sketch", "pop"}

func validStyle(s string) bool { return slices.Contains(styles, s) }

func stylesList() string { return strings.Join(styles, ", ") }

// anime posterizes colours and inks the edges: a cartoon look from plain filters.
func anime(src image.Image, style string) image.Image {
	b := src.Bounds()
	w, h := b.Dx(), b.Dy()
	in := image.NewRGBA(image.Rect(0, 0, w, h))
	xdraw.Draw(in, in.Bounds(), src, b.Min, xdraw.Src)
	lum := make([]float64, w*h)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			c := in.RGBAAt(x, y)
			lum[y*w+x] = 0.299*float64(c.R) + 0.587*float64(c.G) + 0.114*float64(c.B)
		}
	}
	levels := map[string]float64{"anime": 5, "pop": 3, "sketch": 2}[style]
	out := image.NewRGBA(image.Rect(0, 0, w, h))
	at := func(x, y int) float64 { return lum[min(max(y, 0), h-1)*w+min(max(x, 0), w-1)] }
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			gx := at(x+1, y-1) + 2*at(x+1, y) + at(x+1, y+1) - at(x-1, y-1) - 2*at(x-1, y) - at(x-1, y+1)
			gy := at(x-1, y+1) + 2*at(x, y+1) + at(x+1, y+1) - at(x-1, y-1) - 2*at(x, y-1) - at(x+1, y-1)
			edge := math.Hypot(gx, gy) > 180
			c := in.RGBAAt(x, y)
			var o color.RGBA
			switch {
			case edge:
				o = color.RGBA{30, 20, 30, 255}
			case style == "sketch":
				o = color.RGBA{250, 248, 240, 255}
			default:
				q := func(v uint8) uint8 {
					f := float64(v) / 255
					if style == "pop" {
						f = math.Min(1, f*1.25)
					}
					return uint8(math.Round(f*(levels-1)) / (levels - 1) * 255)
				}
				o = color.RGBA{q(c.R), q(c.G), q(c.B), 255}
			}
			out.SetRGBA(x, y, o)
		}
	}
	return out
}

// upscale resamples with Catmull-Rom: real interpolation, no invented detail.
func upscale(src image.Image, scale int) image.Image {
	b := src.Bounds()
	dst := image.NewRGBA(image.Rect(0, 0, b.Dx()*scale, b.Dy()*scale))
	xdraw.CatmullRom.Scale(dst, dst.Bounds(), src, b, xdraw.Src, nil)
	return dst
}

// swapface cuts an ellipse from the middle of the face picture and blends
// it, feathered, onto the upper middle of the target.
func swapface(face, target image.Image) image.Image {
	tb := target.Bounds()
	out := image.NewRGBA(image.Rect(0, 0, tb.Dx(), tb.Dy()))
	xdraw.Draw(out, out.Bounds(), target, tb.Min, xdraw.Src)

	fb := face.Bounds()
	side := min(fb.Dx(), fb.Dy())
	crop := image.Rect(fb.Min.X+(fb.Dx()-side)/2, fb.Min.Y+(fb.Dy()-side)/2, 0, 0)
	crop.Max = crop.Min.Add(image.Pt(side, side))
	size := max(int(0.4*float64(min(tb.Dx(), tb.Dy()))), 8)
	patch := image.NewRGBA(image.Rect(0, 0, size, size))
	xdraw.ApproxBiLinear.Scale(patch, patch.Bounds(), face, crop, xdraw.Src, nil)

	ox, oy := (tb.Dx()-size)/2, int(0.38*float64(tb.Dy()))-size/2
	for y := 0; y < size; y++ {
		for x := 0; x < size; x++ {
			dx, dy := (float64(x)+0.5)/float64(size)*2-1, (float64(y)+0.5)/float64(size)*2-1
			d := math.Sqrt(dx*dx/0.7 + dy*dy)
			if d >= 1 || ox+x < 0 || oy+y < 0 || ox+x >= tb.Dx() || oy+y >= tb.Dy() {
				continue
			}
			a := 1.0
			if d > 0.75 {
				a = (1 - d) / 0.25
			}
			blend(out, ox+x, oy+y, patch.RGBAAt(x, y), a)
		}
	}
	return out
}
