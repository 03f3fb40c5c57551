package runtime

import (
	"fmt"
	"math"
)

// GlobalAvgPool writes the mean over all pixels of in into out (1 x 1 x C).
func GlobalAvgPool(out, in Tensor) error { return GlobalAvgPoolOn(nil, out, in) }

// GlobalAvgPoolOn is GlobalAvgPool on p's threads, each taking a band of
// the channels: the layer before (a network's last 1x1 convolution, on a
// 7x7 map with many channels) splits its output columns the same way, so
// each thread reads what it wrote. On the calling thread alone it read half
// of the map from the other core's cache, and took longer on two threads
// than on one (ProxylessNAS GPU, AVX-512: 22.6 µs on one thread, 29.4 on
// two). It allocates nothing.
func GlobalAvgPoolOn(p *Pool, out, in Tensor) error {
	if err := in.Check("in"); err != nil {
		return err
	}
	if err := checkOut("out", out, 1, 1, in.C); err != nil {
		return err
	}
	units := (in.C + gapBand - 1) / gapBand
	parts := 1
	if n := p.Threads(); n > 1 && in.H*in.W*in.C >= gapSplitFloats {
		parts = min(n, units)
	}
	if parts == 1 {
		gapChannels(out, in, 0, in.C)
		return nil
	}
	if p.gap == nil {
		p.gap = &gapTask{}
	}
	g := p.gap.(*gapTask)
	*g = gapTask{out: out, in: in, units: units}
	p.Run(g, parts)
	*g = gapTask{}
	return nil
}

// gapBand is the channels GlobalAvgPoolOn hands out at a time: a cache
// line, the unit of the GEMMs' column panels.
const gapBand = 16

// gapSplitFloats is the least input, in floats, that GlobalAvgPoolOn
// shares among threads (a 7x7 map of 320 channels).
const gapSplitFloats = 7 * 7 * 320

// gapTask is GlobalAvgPoolOn's task; a Pool keeps one, so that only the
// first call allocates.
type gapTask struct {
	out, in Tensor
	units   int // bands of 16 channels
}

// Do averages part's band of channels.
func (g *gapTask) Do(part, parts int) {
	u0, u1 := span(g.units, part, parts)
	gapChannels(g.out, g.in, u0*gapBand, min(u1*gapBand, g.in.C))
}

// gapChannels averages channels [c0, c1) of in into out, and clears the
// channel padding of out when c1 is the last channel.
func gapChannels(out, in Tensor, c0, c1 int) {
	acc := out.Data[out.Offset(0, 0):][:out.CS]
	if c1 == in.C {
		clear(acc[c1:])
	}
	a := acc[c0:c1]
	clear(a)
	for y := 0; y < in.H; y++ {
		row := in.Data[in.Offset(y, 0):][:in.W*in.CS]
		x := 0
		for ; x+4 <= in.W; x += 4 { // four pixels per pass over acc
			p0 := row[x*in.CS+c0:][:len(a)]
			p1 := row[(x+1)*in.CS+c0:][:len(a)]
			p2 := row[(x+2)*in.CS+c0:][:len(a)]
			p3 := row[(x+3)*in.CS+c0:][:len(a)]
			for c := range a {
				a[c] += (p0[c] + p1[c]) + (p2[c] + p3[c])
			}
		}
		for ; x < in.W; x++ {
			px := row[x*in.CS+c0:][:len(a)]
			for c := range a {
				a[c] += px[c]
			}
		}
	}
	scale := 1 / float32(in.H*in.W)
	for c := range a {
		a[c] *= scale
	}
}

// PoolSpec describes a windowed max or average pooling. Zero strides mean
// 1. Padded positions are skipped: they never win a max and are not
// counted in an average (ONNX count_include_pad = 0).
type PoolSpec struct {
	KH, KW                 int
	StrideH, StrideW       int
	PadT, PadL, PadB, PadR int
}

// OutSize returns the output height and width for an h x w input.
func (s PoolSpec) OutSize(h, w int) (oh, ow int) {
	sh, sw := max(s.StrideH, 1), max(s.StrideW, 1)
	return (h+s.PadT+s.PadB-s.KH)/sh + 1, (w+s.PadL+s.PadR-s.KW)/sw + 1
}

// MaxPool2D writes the windowed maximum of in into out.
func MaxPool2D(out, in Tensor, s PoolSpec) error { return pool2D(out, in, s, true) }

// AvgPool2D writes the windowed mean of in into out.
func AvgPool2D(out, in Tensor, s PoolSpec) error { return pool2D(out, in, s, false) }

func pool2D(out, in Tensor, s PoolSpec, isMax bool) error {
	if s.KH <= 0 || s.KW <= 0 || s.StrideH < 0 || s.StrideW < 0 ||
		s.PadT < 0 || s.PadL < 0 || s.PadB < 0 || s.PadR < 0 || s.PadT >= s.KH || s.PadB >= s.KH ||
		s.PadL >= s.KW || s.PadR >= s.KW {
		return fmt.Errorf("runtime: pool: invalid spec %+v (padding must be below the window size)", s)
	}
	if err := in.Check("in"); err != nil {
		return err
	}
	oh, ow := s.OutSize(in.H, in.W)
	if oh <= 0 || ow <= 0 {
		return fmt.Errorf("runtime: pool: %dx%d input is smaller than the %dx%d window", in.H, in.W, s.KH, s.KW)
	}
	if err := checkOut("out", out, oh, ow, in.C); err != nil {
		return err
	}
	sh, sw := max(s.StrideH, 1), max(s.StrideW, 1)
	for oy := 0; oy < oh; oy++ {
		for ox := 0; ox < ow; ox++ {
			px := out.Data[out.Offset(oy, ox):][:out.CS]
			clear(px[in.C:])
			o := px[:in.C]
			for c := range o {
				if isMax {
					o[c] = float32(math.Inf(-1))
				} else {
					o[c] = 0
				}
			}
			n := 0
			for ky := 0; ky < s.KH; ky++ {
				iy := oy*sh - s.PadT + ky
				if iy < 0 || iy >= in.H {
					continue
				}
				for kx := 0; kx < s.KW; kx++ {
					ix := ox*sw - s.PadL + kx
					if ix < 0 || ix >= in.W {
						continue
					}
					n++
					px := in.Data[in.Offset(iy, ix):][:in.C]
					for c, v := range px {
						if isMax {
							o[c] = max(o[c], v)
						} else {
							o[c] += v
						}
					}
				}
			}
			if !isMax {
				inv := 1 / float32(n)
				for c := range o {
					o[c] *= inv
				}
			}
		}
	}
	return nil
}
