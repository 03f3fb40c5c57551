package runtime

import "fmt"

// DenseConv is a groups-1 KH x KW convolution (KindDense, e.g. a network's
// stem) run as an implicit GEMM: output pixel row oy, column ox is GEMM row
// (oy, ox); its A row is the KH input row segments of KW*InStride floats
// that the kernel covers, read in place from the zero-haloed input, so no
// im2col buffer is built. A value is not safe for concurrent Runs.
type DenseConv struct {
	spec   ConvSpec
	packed []float32
	bias   []float32
	run    gemmRun
}

// PackDense packs OIHW weights into GEMM panels (see PackGEMM) of
// K = KH*KW*InStride rows, row (y*KW+x)*InStride+i holding input channel i
// at kernel tap (y, x); rows for i >= Cin are zero.
func PackDense(s ConvSpec, w []float32) ([]float32, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if k := s.Kind(); k != KindDense && k != KindPointwise {
		return nil, fmt.Errorf("runtime: PackDense: spec is %s, not %s", k, KindDense)
	}
	if err := s.checkWeights(w, nil); err != nil {
		return nil, err
	}
	n := s.norm()
	K := n.KH * n.KW * n.InStride
	m := make([]float32, n.Cout*K)
	for o := 0; o < n.Cout; o++ {
		for i := 0; i < n.Cin; i++ {
			for y := 0; y < n.KH; y++ {
				for x := 0; x < n.KW; x++ {
					m[o*K+(y*n.KW+x)*n.InStride+i] = w[((o*n.Cin+i)*n.KH+y)*n.KW+x]
				}
			}
		}
	}
	return PackGEMM(m, n.Cout, K), nil
}

// NewDenseConv builds the operator from weights packed by PackDense and a
// bias of Cout floats (nil for none).
func NewDenseConv(s ConvSpec, packed, bias []float32) (*DenseConv, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if k := s.Kind(); k != KindDense && k != KindPointwise {
		return nil, fmt.Errorf("runtime: NewDenseConv: spec is %s, not %s", k, KindDense)
	}
	n := s.norm()
	if want := (n.Cout + panelW - 1) / panelW * panelW * n.KH * n.KW * n.InStride; len(packed) != want {
		return nil, fmt.Errorf("runtime: NewDenseConv: packed weights have %d floats, want %d", len(packed), want)
	}
	if bias != nil && len(bias) != n.Cout {
		return nil, fmt.Errorf("runtime: NewDenseConv: bias has %d floats, want %d", len(bias), n.Cout)
	}
	return &DenseConv{spec: n, packed: packed, bias: padBias(bias, n.Cout)}, nil
}

// Spec returns the convolution's spec.
func (l *DenseConv) Spec() ConvSpec { return l.spec }

// Run computes out = act(conv(in) + bias + res). in needs a halo of at
// least Spec().Halo() and channel stride InStride; res may be nil or out
// itself; in must not overlap out.
func (l *DenseConv) Run(p *Pool, out, in Tensor, res *Tensor) error {
	s := l.spec
	if err := s.checkRun(out, in, res, s.Halo()); err != nil {
		return err
	}
	if in.CS != s.InStride {
		return fmt.Errorf("runtime: conv dense: input channel stride %d, weights packed for %d", in.CS, s.InStride)
	}
	g := &l.run
	gn, gz := gemmCols(out.CS, out.C)
	*g = gemmRun{
		impl: gemmFor(level()),
		a:    in.Data, aOff: in.Offset(-s.PadT, -s.PadL), aGS: s.StrideH * in.RowStride(), lda: s.StrideW * in.CS,
		kseg: s.KW * in.CS, nseg: s.KH, segStride: in.RowStride(),
		b: l.packed,
		c: out.Data, cOff: out.Offset(0, 0), cGS: out.RowStride(), ldc: out.CS,
		bias: l.bias, n: gn, zc: gz, act: s.Act,
		groups: out.H, rows: out.W,
	}
	if res != nil {
		g.r, g.rOff, g.rGS, g.ldr = res.Data, res.Offset(0, 0), res.RowStride(), res.CS
	}
	p.Run(l, g.plan(p))
	return nil
}

// Do implements Task.
func (l *DenseConv) Do(part, parts int) { l.run.do(part, parts) }
