package runtime

import "fmt"

// Pointwise is a 1x1 convolution (KindPointwise) run as one GEMM with
// M = H*W pixels, K = Cin, N = PadC(Cout). A value is not safe for
// concurrent Runs.
type Pointwise struct {
	spec   ConvSpec
	packed []float32
	bias   []float32
	run    gemmRun
}

// PackPointwise packs OIHW 1x1 weights (Cout x Cin) into the GEMM panel
// format of PackGEMM.
func PackPointwise(s ConvSpec, w []float32) ([]float32, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if k := s.Kind(); k != KindPointwise {
		return nil, fmt.Errorf("runtime: PackPointwise: spec is %s, not %s", k, KindPointwise)
	}
	if err := s.checkWeights(w, nil); err != nil {
		return nil, err
	}
	return PackGEMM(w, s.Cout, s.Cin), nil
}

// NewPointwise builds the operator from weights packed by PackPointwise and
// a bias of Cout floats (nil for none).
func NewPointwise(s ConvSpec, packed, bias []float32) (*Pointwise, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if k := s.Kind(); k != KindPointwise {
		return nil, fmt.Errorf("runtime: NewPointwise: spec is %s, not %s", k, KindPointwise)
	}
	if want := (s.Cout + panelW - 1) / panelW * panelW * s.Cin; len(packed) != want {
		return nil, fmt.Errorf("runtime: NewPointwise: packed weights have %d floats, want %d", len(packed), want)
	}
	if bias != nil && len(bias) != s.Cout {
		return nil, fmt.Errorf("runtime: NewPointwise: bias has %d floats, want %d", len(bias), s.Cout)
	}
	return &Pointwise{spec: s.norm(), packed: packed, bias: padBias(bias, s.Cout)}, nil
}

// Spec returns the convolution's spec.
func (l *Pointwise) Spec() ConvSpec { return l.spec }

// Run computes out = act(conv(in) + bias + res); res may be nil or
// out itself, and must otherwise not overlap out; in must not overlap out.
func (l *Pointwise) Run(p *Pool, out, in Tensor, res *Tensor) error {
	if err := l.spec.checkRun(out, in, res, 0); err != nil {
		return err
	}
	g := &l.run
	gn, gz := gemmCols(out.CS, out.C)
	*g = gemmRun{
		impl: gemmFor(level()),
		a:    in.Data, aOff: in.Offset(0, 0), lda: in.CS,
		kseg: l.spec.Cin, nseg: 1,
		b: l.packed,
		c: out.Data, cOff: out.Offset(0, 0), ldc: out.CS,
		bias: l.bias, n: gn, zc: gz, act: l.spec.Act,
	}
	if res != nil {
		g.r, g.rOff, g.ldr = res.Data, res.Offset(0, 0), res.CS
	}
	if in.Dense() && out.Dense() && (res == nil || res.Dense()) {
		g.groups, g.rows = 1, in.H*in.W
	} else {
		g.groups, g.rows = in.H, in.W
		g.aGS, g.cGS = in.RowStride(), out.RowStride()
		if res != nil {
			g.rGS = res.RowStride()
		}
	}
	p.Run(l, g.plan(p))
	return nil
}

// Do implements Task.
func (l *Pointwise) Do(part, parts int) { l.run.do(part, parts) }
