package runtime_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/pnasml/pnas/runtime"
)

// guard is the number of sentinel floats on each side of every buffer an
// operator writes; sentinel is their value.
const guard = 67

var sentinel = float32(math.Float32frombits(0x7fc0dead)) // a NaN payload no kernel makes

// guarded is a tensor whose buffer sits between two guard bands.
type guarded struct {
	runtime.Tensor
	buf []float32
}

// newGuarded allocates a tensor with sentinel guard bands, random values
// in its interior (if rng is non-nil) and zeros in its halo and channel
// padding. off shifts the buffer start by that many floats to exercise
// unaligned addresses.
func newGuarded(rng *rand.Rand, h, w, c, cs, pad, off int) *guarded {
	t := runtime.Tensor{H: h, W: w, C: c, CS: cs, Pad: pad}
	n := t.Len()
	buf := make([]float32, n+2*guard+off)
	for i := range buf {
		buf[i] = sentinel
	}
	t.Data = buf[guard+off : guard+off+n : guard+off+n]
	clear(t.Data)
	if rng != nil {
		fillRand(rng, t)
	}
	return &guarded{Tensor: t, buf: buf}
}

// checkFrame verifies that the guard bands still hold the sentinel and that
// the halo and channel padding still hold zero.
func (g *guarded) checkFrame(t *testing.T, name string) {
	t.Helper()
	base := len(g.buf) - len(g.Data) - guard // offset of Data in buf
	for i, v := range g.buf {
		if i >= base && i < base+len(g.Data) {
			continue
		}
		if math.Float32bits(v) != math.Float32bits(sentinel) {
			t.Fatalf("%s: guard float %d of %d overwritten with %v", name, i, len(g.buf), v)
		}
	}
	T := g.Tensor
	for y := -T.Pad; y < T.H+T.Pad; y++ {
		for x := -T.Pad; x < T.W+T.Pad; x++ {
			inside := y >= 0 && y < T.H && x >= 0 && x < T.W
			for c := 0; c < T.CS; c++ {
				if inside && c < T.C {
					continue
				}
				if v := T.Data[T.Offset(y, x)+c]; v != 0 {
					t.Fatalf("%s: halo/padding element (%d,%d,%d) = %v, want 0", name, y, x, c, v)
				}
			}
		}
	}
}

// randSlice returns n normal random floats.
func randSlice(rng *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(rng.NormFloat64())
	}
	return s
}

// randTensor returns an h x w x c tensor (channel stride PadC(c), halo
// pad) whose interior holds normal random floats, with a zero halo and
// channel padding. Benchmarks read their inputs from such tensors, so that
// their speed does not depend on the allocation: a large buffer fresh from
// the operating system that is never written reads one shared zero page,
// which stays in L1 however large the tensor (a 112x112x32 3x3 depthwise
// layer ran 2.3x faster on such an input than on a written one, on the
// Intel Xeon; docs/perf.md).
func randTensor(rng *rand.Rand, h, w, c, pad int) runtime.Tensor {
	t := runtime.NewTensor(h, w, c, pad)
	fillRand(rng, t)
	return t
}

// fillRand writes normal random floats to t's interior elements.
func fillRand(rng *rand.Rand, t runtime.Tensor) {
	for y := 0; y < t.H; y++ {
		for x := 0; x < t.W; x++ {
			for ch := 0; ch < t.C; ch++ {
				t.Set(y, x, ch, float32(rng.NormFloat64()))
			}
		}
	}
}

// actRef is the float64 activation.
func actRef(a runtime.Act, v float64) float64 {
	switch a {
	case runtime.ActReLU:
		return math.Max(v, 0)
	case runtime.ActReLU6:
		return math.Min(math.Max(v, 0), 6)
	}
	return v
}

// refConv is the float64 reference convolution on OIHW weights. It returns
// the output as [oh][ow][cout] and, per element, the sum of absolute terms,
// which scales the tolerance.
func refConv(s runtime.ConvSpec, w, bias []float32, in runtime.Tensor, res *runtime.Tensor) (out, mag []float64, oh, ow int) {
	sh, sw := max(s.StrideH, 1), max(s.StrideW, 1)
	dh, dw := max(s.DilH, 1), max(s.DilW, 1)
	groups := max(s.Groups, 1)
	oh, ow = s.OutSize(in.H, in.W)
	ipg, opg := s.Cin/groups, s.Cout/groups
	out = make([]float64, oh*ow*s.Cout)
	mag = make([]float64, len(out))
	for oy := 0; oy < oh; oy++ {
		for ox := 0; ox < ow; ox++ {
			for o := 0; o < s.Cout; o++ {
				g := o / opg
				var sum, m float64
				if bias != nil {
					sum, m = float64(bias[o]), math.Abs(float64(bias[o]))
				}
				for i := 0; i < ipg; i++ {
					for ky := 0; ky < s.KH; ky++ {
						iy := oy*sh - s.PadT + ky*dh
						if iy < 0 || iy >= in.H {
							continue
						}
						for kx := 0; kx < s.KW; kx++ {
							ix := ox*sw - s.PadL + kx*dw
							if ix < 0 || ix >= in.W {
								continue
							}
							p := float64(in.At(iy, ix, g*ipg+i)) * float64(w[((o*ipg+i)*s.KH+ky)*s.KW+kx])
							sum += p
							m += math.Abs(p)
						}
					}
				}
				if res != nil {
					r := float64(res.At(oy, ox, o))
					sum += r
					m += math.Abs(r)
				}
				k := (oy*ow+ox)*s.Cout + o
				out[k], mag[k] = actRef(s.Act, sum), m
			}
		}
	}
	return out, mag, oh, ow
}

// compare checks got's interior against want within a tolerance scaled by
// mag (the sum of absolute terms of each element).
func compare(t *testing.T, name string, got runtime.Tensor, want, mag []float64) {
	t.Helper()
	for y := 0; y < got.H; y++ {
		for x := 0; x < got.W; x++ {
			for c := 0; c < got.C; c++ {
				k := (y*got.W+x)*got.C + c
				g := float64(got.At(y, x, c))
				if d := math.Abs(g - want[k]); !(d <= 1e-5*mag[k]+1e-6) {
					t.Fatalf("%s: (%d,%d,%d) = %v, want %v (|diff| %.3g, scale %.3g)", name, y, x, c, g, want[k], d, mag[k])
				}
			}
		}
	}
}

// forEachSet runs f under every kernel set this machine and build offer.
func forEachSet(t *testing.T, f func(t *testing.T, set string)) {
	prev := runtime.KernelSet()
	defer func() {
		if err := runtime.SetKernelSet(prev); err != nil {
			t.Fatal(err)
		}
	}()
	for _, set := range runtime.KernelSets() {
		if err := runtime.SetKernelSet(set); err != nil {
			t.Fatal(err)
		}
		if set != "avx512" {
			t.Run(set, func(t *testing.T) { f(t, set) })
			continue
		}
		// AVX-512 programs run shallow and narrow GEMMs with the AVX2
		// kernels on CPUs whose AVX-512 units have the AVX2 rate: both
		// choices, whatever this CPU is.
		for _, half := range []bool{false, true} {
			restore := runtime.SetHalfWidth512(half)
			name := set
			if half {
				name += "-halfwidth"
			}
			t.Run(name, func(t *testing.T) { f(t, set) })
			restore()
		}
	}
}

func specString(s runtime.ConvSpec) string {
	return fmt.Sprintf("c%d-%d_k%dx%d_s%dx%d_p%d%d%d%d_d%dx%d_g%d_is%d_%v",
		s.Cin, s.Cout, s.KH, s.KW, s.StrideH, s.StrideW, s.PadT, s.PadL, s.PadB, s.PadR, s.DilH, s.DilW, s.Groups, s.InStride, s.Act)
}
