package runtime

import (
	"fmt"
	"math"
)

// Add computes out = act(a + b) elementwise; out may be a or b.
func Add(out, a, b Tensor, act Act) error {
	if err := a.Check("a"); err != nil {
		return err
	}
	if err := b.Check("b"); err != nil {
		return err
	}
	if b.H != a.H || b.W != a.W || b.C != a.C {
		return fmt.Errorf("runtime: add: shapes %dx%dx%d and %dx%dx%d differ", a.H, a.W, a.C, b.H, b.W, b.C)
	}
	if err := checkOut("out", out, a.H, a.W, a.C); err != nil {
		return err
	}
	if !act.valid() {
		return fmt.Errorf("runtime: add: unknown activation %d", int(act))
	}
	for y := 0; y < a.H; y++ {
		for x := 0; x < a.W; x++ {
			pa := a.Data[a.Offset(y, x):][:a.C]
			pb := b.Data[b.Offset(y, x):][:len(pa)]
			px := out.Data[out.Offset(y, x):][:out.CS]
			clear(px[len(pa):])
			po := px[:len(pa)]
			for c := range po {
				po[c] = act.apply(pa[c] + pb[c])
			}
		}
	}
	return nil
}

// Activate computes out = act(in) elementwise; out may be in.
func Activate(out, in Tensor, act Act) error {
	if err := in.Check("in"); err != nil {
		return err
	}
	if err := checkOut("out", out, in.H, in.W, in.C); err != nil {
		return err
	}
	if !act.valid() {
		return fmt.Errorf("runtime: activate: unknown activation %d", int(act))
	}
	for y := 0; y < in.H; y++ {
		for x := 0; x < in.W; x++ {
			pi := in.Data[in.Offset(y, x):][:in.C]
			px := out.Data[out.Offset(y, x):][:out.CS]
			clear(px[len(pi):])
			po := px[:len(pi)]
			for c := range po {
				po[c] = act.apply(pi[c])
			}
		}
	}
	return nil
}

// Softmax writes exp(x_i - max x) / sum_j exp(x_j - max x) of src into
// dst, accumulating in float64; dst may be src.
func Softmax(dst, src []float32) error {
	if len(dst) != len(src) || len(src) == 0 {
		return fmt.Errorf("runtime: softmax: lengths %d and %d must be equal and non-zero", len(dst), len(src))
	}
	m := src[0]
	for _, v := range src {
		m = max(m, v)
	}
	var sum float64
	for i, v := range src {
		e := math.Exp(float64(v - m))
		sum += e
		dst[i] = float32(e)
	}
	inv := 1 / sum
	for i := range dst {
		dst[i] = float32(float64(dst[i]) * inv)
	}
	return nil
}
