package runtime

import "fmt"

// Linear is a fully connected layer out = act(W·flatten(in) + bias) on an
// H x W x C input (1 x 1 x C after a global pooling), writing a 1 x 1 x N
// tensor. It is a GEMM with M = 1, K = H*W*PadC(C), N = PadC(N). A value is
// not safe for concurrent Runs.
type Linear struct {
	h, w, c, n int
	act        Act
	packed     []float32
	bias       []float32
	run        gemmRun
}

// PackLinear packs an N x (C*H*W) weight matrix whose columns follow the
// planar flatten order of ONNX and PyTorch (column (c*H+y)*W+x for input
// element (y, x, c); for H = W = 1 simply a row-major N x C matrix) into
// GEMM panels (see PackGEMM) of K = H*W*PadC(C) rows, row (y*W+x)*PadC(C)+c.
func PackLinear(h, w, c, n int, weights []float32) ([]float32, error) {
	if h <= 0 || w <= 0 || c <= 0 || n <= 0 {
		return nil, fmt.Errorf("runtime: PackLinear: sizes %dx%dx%d -> %d must be positive", h, w, c, n)
	}
	if len(weights) != n*c*h*w {
		return nil, fmt.Errorf("runtime: PackLinear: weights have %d floats, want %d x %d = %d", len(weights), n, c*h*w, n*c*h*w)
	}
	cs := PadC(c)
	K := h * w * cs
	m := make([]float32, n*K)
	for j := 0; j < n; j++ {
		for ci := 0; ci < c; ci++ {
			for y := 0; y < h; y++ {
				for x := 0; x < w; x++ {
					m[j*K+(y*w+x)*cs+ci] = weights[j*c*h*w+(ci*h+y)*w+x]
				}
			}
		}
	}
	return PackGEMM(m, n, K), nil
}

// NewLinear builds the layer from weights packed by PackLinear and a bias
// of n floats (nil for none).
func NewLinear(h, w, c, n int, packed, bias []float32, act Act) (*Linear, error) {
	if h <= 0 || w <= 0 || c <= 0 || n <= 0 {
		return nil, fmt.Errorf("runtime: NewLinear: sizes %dx%dx%d -> %d must be positive", h, w, c, n)
	}
	if want := (n + panelW - 1) / panelW * panelW * h * w * PadC(c); len(packed) != want {
		return nil, fmt.Errorf("runtime: NewLinear: packed weights have %d floats, want %d", len(packed), want)
	}
	if bias != nil && len(bias) != n {
		return nil, fmt.Errorf("runtime: NewLinear: bias has %d floats, want %d", len(bias), n)
	}
	if !act.valid() {
		return nil, fmt.Errorf("runtime: NewLinear: unknown activation %d", int(act))
	}
	return &Linear{h: h, w: w, c: c, n: n, act: act, packed: packed, bias: padBias(bias, n)}, nil
}

// Run computes out (1 x 1 x N) from in (H x W x C, any halo).
func (l *Linear) Run(p *Pool, out, in Tensor) error {
	if err := in.Check("in"); err != nil {
		return err
	}
	if in.H != l.h || in.W != l.w || in.C != l.c || in.CS != PadC(l.c) {
		return fmt.Errorf("runtime: linear: input %dx%dx%d (stride %d), want %dx%dx%d (stride %d)",
			in.H, in.W, in.C, in.CS, l.h, l.w, l.c, PadC(l.c))
	}
	if err := checkOut("out", out, 1, 1, l.n); err != nil {
		return err
	}
	g := &l.run
	gn, gz := gemmCols(out.CS, out.C)
	*g = gemmRun{
		impl: gemmFor(level()),
		a:    in.Data, aOff: in.Offset(0, 0), lda: in.Len(),
		kseg: l.w * in.CS, nseg: l.h, segStride: in.RowStride(),
		b: l.packed,
		c: out.Data, cOff: out.Offset(0, 0), ldc: out.CS,
		bias: l.bias, n: gn, zc: gz, act: l.act,
		groups: 1, rows: 1,
	}
	p.Run(l, g.plan(p))
	return nil
}

// Do implements Task.
func (l *Linear) Do(part, parts int) { l.run.do(part, parts) }
