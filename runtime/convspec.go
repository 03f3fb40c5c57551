package runtime

import "fmt"

// ConvSpec describes a 2-D convolution with a fused epilogue
// out = act(conv(in, w) + bias + residual). Zero strides, dilations and
// groups mean 1. Weights are OIHW: w[((o*(Cin/Groups)+i)*KH+y)*KW+x].
type ConvSpec struct {
	Cin, Cout              int
	KH, KW                 int
	StrideH, StrideW       int
	PadT, PadL, PadB, PadR int
	DilH, DilW             int
	Groups                 int
	// InStride is the channel stride of the input tensor (Tensor.CS); 0
	// means PadC(Cin). Only the dense path's packed weights depend on it.
	InStride int
	Act      Act
}

// Conv kinds returned by ConvSpec.Kind; each names a file group in
// KernelFiles.
const (
	KindPointwise = "pointwise" // 1x1, stride 1, no padding, groups 1: one GEMM
	KindDepthwise = "depthwise" // groups = Cin = Cout, no dilation
	KindDense     = "dense"     // groups 1, no dilation: implicit GEMM
	KindGrouped   = "grouped"   // anything else: portable Go
)

// norm fills in defaults.
func (s ConvSpec) norm() ConvSpec {
	one := func(v *int) {
		if *v == 0 {
			*v = 1
		}
	}
	one(&s.StrideH)
	one(&s.StrideW)
	one(&s.DilH)
	one(&s.DilW)
	one(&s.Groups)
	if s.InStride == 0 {
		s.InStride = PadC(s.Cin)
	}
	return s
}

// Validate reports the first inconsistent field of the spec.
func (s ConvSpec) Validate() error {
	n := s.norm()
	switch {
	case n.Cin <= 0 || n.Cout <= 0:
		return fmt.Errorf("runtime: conv: channels Cin=%d Cout=%d must be positive", n.Cin, n.Cout)
	case n.KH <= 0 || n.KW <= 0:
		return fmt.Errorf("runtime: conv: kernel %dx%d must be positive", n.KH, n.KW)
	case n.StrideH < 0 || n.StrideW < 0 || n.DilH < 0 || n.DilW < 0 || n.Groups < 0:
		return fmt.Errorf("runtime: conv: negative stride, dilation or groups in %+v", s)
	case n.PadT < 0 || n.PadL < 0 || n.PadB < 0 || n.PadR < 0:
		return fmt.Errorf("runtime: conv: negative padding %d,%d,%d,%d", n.PadT, n.PadL, n.PadB, n.PadR)
	case n.Cin%n.Groups != 0 || n.Cout%n.Groups != 0:
		return fmt.Errorf("runtime: conv: groups %d must divide Cin=%d and Cout=%d", n.Groups, n.Cin, n.Cout)
	case n.InStride < n.Cin:
		return fmt.Errorf("runtime: conv: InStride %d < Cin %d", n.InStride, n.Cin)
	case !n.Act.valid():
		return fmt.Errorf("runtime: conv: unknown activation %d", int(n.Act))
	}
	return nil
}

// Kind names the implementation the spec runs on: KindPointwise,
// KindDepthwise, KindDense or KindGrouped.
func (s ConvSpec) Kind() string {
	n := s.norm()
	switch {
	case n.Groups == 1 && n.KH == 1 && n.KW == 1 && n.StrideH == 1 && n.StrideW == 1 &&
		n.PadT == 0 && n.PadL == 0 && n.PadB == 0 && n.PadR == 0:
		return KindPointwise
	case n.Groups == n.Cin && n.Cin == n.Cout && n.DilH == 1 && n.DilW == 1:
		return KindDepthwise
	case n.Groups == 1 && n.DilH == 1 && n.DilW == 1:
		return KindDense
	}
	return KindGrouped
}

// OutSize returns the output height and width for an h x w input.
func (s ConvSpec) OutSize(h, w int) (oh, ow int) {
	n := s.norm()
	oh = (h+n.PadT+n.PadB-n.DilH*(n.KH-1)-1)/n.StrideH + 1
	ow = (w+n.PadL+n.PadR-n.DilW*(n.KW-1)-1)/n.StrideW + 1
	return oh, ow
}

// Halo is the zero halo (Tensor.Pad) the input tensor needs for the
// depthwise and dense kinds: max of the four paddings. Pointwise and
// grouped convolutions need none.
func (s ConvSpec) Halo() int {
	switch s.Kind() {
	case KindDepthwise, KindDense:
		return max(s.PadT, s.PadL, s.PadB, s.PadR)
	}
	return 0
}

// checkWeights validates the lengths of OIHW weights and bias.
func (s ConvSpec) checkWeights(w, bias []float32) error {
	n := s.norm()
	want := n.Cout * (n.Cin / n.Groups) * n.KH * n.KW
	if len(w) != want {
		return fmt.Errorf("runtime: conv %s: weights have %d floats, OIHW %dx%dx%dx%d needs %d",
			s.Kind(), len(w), n.Cout, n.Cin/n.Groups, n.KH, n.KW, want)
	}
	if bias != nil && len(bias) != n.Cout {
		return fmt.Errorf("runtime: conv %s: bias has %d floats, want Cout = %d", s.Kind(), len(bias), n.Cout)
	}
	return nil
}

// checkRun validates the tensors of a convolution run.
func (s ConvSpec) checkRun(out, in Tensor, res *Tensor, halo int) error {
	n := s.norm()
	if err := in.Check("in"); err != nil {
		return err
	}
	if in.C != n.Cin {
		return fmt.Errorf("runtime: conv %s: input has %d channels, want %d", s.Kind(), in.C, n.Cin)
	}
	if in.Pad < halo {
		return fmt.Errorf("runtime: conv %s: input halo %d, want at least %d", s.Kind(), in.Pad, halo)
	}
	oh, ow := s.OutSize(in.H, in.W)
	if oh <= 0 || ow <= 0 {
		return fmt.Errorf("runtime: conv %s: %dx%d input is smaller than the %dx%d kernel", s.Kind(), in.H, in.W, n.KH, n.KW)
	}
	if err := checkOut("out", out, oh, ow, n.Cout); err != nil {
		return err
	}
	if res != nil {
		if err := checkOut("res", *res, oh, ow, n.Cout); err != nil {
			return err
		}
	}
	return nil
}

// padBias copies bias (nil means zeros) into a zeroed slice of length
// PadC(n) rounded up to a multiple of 32, as the kernels read whole
// vectors of it (a depthwise kernel runs over all PadC(n) channels).
func padBias(bias []float32, n int) []float32 {
	out := make([]float32, (PadC(n)+31)&^31)
	copy(out, bias)
	return out
}
