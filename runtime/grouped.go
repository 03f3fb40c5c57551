package runtime

import "fmt"

// GroupedConv is the portable fallback for any convolution (KindGrouped):
// any groups, kernel size, stride, padding and dilation. It reads only
// in-bounds input pixels, so its input needs no halo. A value is not safe
// for concurrent Runs.
type GroupedConv struct {
	spec   ConvSpec
	packed []float32
	bias   []float32

	out, in Tensor
	res     *Tensor
	acc     [][]float32 // per-thread accumulators
}

// PackGrouped reorders OIHW weights to [group][y][x][i][o] (output channel
// within the group fastest), the order GroupedConv's inner loop reads. It
// accepts a spec of any kind.
func PackGrouped(s ConvSpec, w []float32) ([]float32, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if err := s.checkWeights(w, nil); err != nil {
		return nil, err
	}
	n := s.norm()
	ipg, opg := n.Cin/n.Groups, n.Cout/n.Groups
	out := make([]float32, len(w))
	for g := 0; g < n.Groups; g++ {
		for o := 0; o < opg; o++ {
			for i := 0; i < ipg; i++ {
				for y := 0; y < n.KH; y++ {
					for x := 0; x < n.KW; x++ {
						src := (((g*opg+o)*ipg+i)*n.KH+y)*n.KW + x
						dst := (((g*n.KH+y)*n.KW+x)*ipg+i)*opg + o
						out[dst] = w[src]
					}
				}
			}
		}
	}
	return out, nil
}

// NewGroupedConv builds the operator from weights packed by PackGrouped and
// a bias of Cout floats (nil for none). It accepts a spec of any kind.
func NewGroupedConv(s ConvSpec, packed, bias []float32) (*GroupedConv, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	n := s.norm()
	if want := n.Cout * (n.Cin / n.Groups) * n.KH * n.KW; len(packed) != want {
		return nil, fmt.Errorf("runtime: NewGroupedConv: packed weights have %d floats, want %d", len(packed), want)
	}
	if bias != nil && len(bias) != n.Cout {
		return nil, fmt.Errorf("runtime: NewGroupedConv: bias has %d floats, want %d", len(bias), n.Cout)
	}
	return &GroupedConv{spec: n, packed: packed, bias: padBias(bias, n.Cout)}, nil
}

// Spec returns the convolution's spec.
func (l *GroupedConv) Spec() ConvSpec { return l.spec }

// Run computes out = act(conv(in) + bias + res); res may be nil or out
// itself; in must not overlap out.
func (l *GroupedConv) Run(p *Pool, out, in Tensor, res *Tensor) error {
	if err := l.spec.checkRun(out, in, res, 0); err != nil {
		return err
	}
	l.out, l.in, l.res = out, in, res
	s := &l.spec
	parts := p.Parts(out.H, int64(out.H*out.W)*int64(s.Cout*s.KH*s.KW*(s.Cin/s.Groups)))
	for len(l.acc) < parts {
		l.acc = append(l.acc, make([]float32, l.spec.Cout/l.spec.Groups))
	}
	p.Run(l, parts)
	return nil
}

// Do implements Task: part of the output rows.
func (l *GroupedConv) Do(part, parts int) {
	s := &l.spec
	in, out := l.in, l.out
	ipg, opg := s.Cin/s.Groups, s.Cout/s.Groups
	acc := l.acc[part] // parts never run twice at once
	y0, y1 := span(out.H, part, parts)
	for oy := y0; oy < y1; oy++ {
		for ox := 0; ox < out.W; ox++ {
			ob := out.Offset(oy, ox)
			for g := 0; g < s.Groups; g++ {
				copy(acc, l.bias[g*opg:(g+1)*opg])
				for ky := 0; ky < s.KH; ky++ {
					iy := oy*s.StrideH - s.PadT + ky*s.DilH
					if iy < 0 || iy >= in.H {
						continue
					}
					for kx := 0; kx < s.KW; kx++ {
						ix := ox*s.StrideW - s.PadL + kx*s.DilW
						if ix < 0 || ix >= in.W {
							continue
						}
						ip := in.Data[in.Offset(iy, ix)+g*ipg:][:ipg]
						wb := (((g*s.KH+ky)*s.KW + kx) * ipg) * opg
						for i, v := range ip {
							wp := l.packed[wb+i*opg:][:opg]
							for o := range acc {
								acc[o] += v * wp[o]
							}
						}
					}
				}
				for o, v := range acc {
					c := g*opg + o
					if l.res != nil {
						v += l.res.Data[l.res.Offset(oy, ox)+c]
					}
					out.Data[ob+c] = s.Act.apply(v)
				}
			}
			// Keep the channel padding zero.
			clear(out.Data[ob+s.Cout : ob+out.CS])
		}
	}
}
