package interp_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/pnasml/pnas/internal/testnet"
	"github.com/pnasml/pnas/ir"
	"github.com/pnasml/pnas/ir/interp"
)

func randInput(rng *rand.Rand, n int) []float32 {
	d := make([]float32, n)
	for i := range d {
		d[i] = float32(rng.NormFloat64())
	}
	return d
}

func numel(s []int) int {
	n := 1
	for _, d := range s {
		n *= d
	}
	return n
}

// im2colConv is a second formulation of conv2d: copy the input into an
// explicitly zero-padded buffer, gather every receptive field of a group
// into a column, and take dot products with the flattened filters.
func im2colConv(in []float32, c, h, w int, weight []float32, o, kh, kw, sh, sw int, pads [4]int, groups int,
	bias, residual []float32, act ir.Activation) []float32 {
	ph, pw := h+pads[0]+pads[2], w+pads[1]+pads[3]
	padded := make([]float64, c*ph*pw)
	for ch := 0; ch < c; ch++ {
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				padded[(ch*ph+y+pads[0])*pw+x+pads[1]] = float64(in[(ch*h+y)*w+x])
			}
		}
	}
	oh, ow := (ph-kh)/sh+1, (pw-kw)/sw+1
	cg, og := c/groups, o/groups
	out := make([]float32, o*oh*ow)
	col := make([]float64, cg*kh*kw)
	for g := 0; g < groups; g++ {
		for y := 0; y < oh; y++ {
			for x := 0; x < ow; x++ {
				col = col[:0]
				for ch := g * cg; ch < (g+1)*cg; ch++ {
					for ky := 0; ky < kh; ky++ {
						for kx := 0; kx < kw; kx++ {
							col = append(col, padded[(ch*ph+y*sh+ky)*pw+x*sw+kx])
						}
					}
				}
				for f := g * og; f < (g+1)*og; f++ {
					filter := weight[f*len(col) : (f+1)*len(col)]
					var s float64
					for i, v := range col {
						s += float64(filter[i]) * v
					}
					at := (f*oh+y)*ow + x
					if bias != nil {
						s += float64(bias[f])
					}
					if residual != nil {
						s += float64(residual[at])
					}
					out[at] = float32(act.Apply(s))
				}
			}
		}
	}
	return out
}

func TestRandomConvAgainstIm2col(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	acts := []ir.Activation{"", ir.ActReLU, ir.ActReLU6}
	for trial := 0; trial < 60; trial++ {
		groups := 1 + rng.IntN(3)
		c := groups * (1 + rng.IntN(3))
		o := groups * (1 + rng.IntN(3))
		if trial%5 == 0 { // depthwise
			groups, o = c, c
		}
		h, w := 1+rng.IntN(8), 1+rng.IntN(8)
		kh, kw := 1+rng.IntN(4), 1+rng.IntN(4)
		sh, sw := 1+rng.IntN(3), 1+rng.IntN(3)
		var pads [4]int
		for i := range pads {
			pads[i] = rng.IntN(3)
		}
		if h+pads[0]+pads[2] < kh {
			pads[2] += kh - (h + pads[0] + pads[2])
		}
		if w+pads[1]+pads[3] < kw {
			pads[3] += kw - (w + pads[1] + pads[3])
		}
		oh, ow := ir.ConvOutSize(h, kh, sh, pads[0], pads[2]), ir.ConvOutSize(w, kw, sw, pads[1], pads[3])
		useBias, useRes := rng.IntN(2) == 0, rng.IntN(2) == 0
		act := acts[rng.IntN(len(acts))]
		name := fmt.Sprintf("trial%d_c%d_o%d_g%d_%dx%d_k%dx%d_s%dx%d_p%v_b%v_r%v_%s",
			trial, c, o, groups, h, w, kh, kw, sh, sw, pads, useBias, useRes, act)

		b := ir.NewBuilder(name, c, h, w, rng)
		var res string
		inputs := []string{b.Input()}
		if useRes {
			// the residual is any tensor of the output shape: a 1x1 conv of a
			// strided, padded view is awkward, so make one from the input with
			// the same geometry and no bias.
			res = b.ConvFull("res", b.Input(), o, [2]int{kh, kw}, [2]int{sh, sw}, pads, 1, false, nil, nil)
			inputs = append(inputs, res)
		}
		weight := randInput(rng, o*(c/groups)*kh*kw)
		var bias []float32
		if useBias {
			bias = randInput(rng, o)
		}
		b.Raw().Ops = append(b.Raw().Ops, ir.Op{Name: "conv", Type: ir.OpConv2D, Inputs: inputs, Output: "conv",
			OutChannels: o, Kernel: []int{kh, kw}, Stride: []int{sh, sw}, Pads: pads[:], Groups: groups,
			Bias: useBias, Activation: act})
		b.Raw().SetParam("conv", "weight", &ir.Tensor{Shape: []int{o, c / groups, kh, kw}, Data: weight})
		if useBias {
			b.Raw().SetParam("conv", "bias", &ir.Tensor{Shape: []int{o}, Data: bias})
		}
		out := b.Flatten("flat", "conv")
		m, err := b.Model(out)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		const n = 2
		in := randInput(rng, n*c*h*w)
		all, err := interp.RunTensors(m, in, n)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		per := o * oh * ow
		if got := len(all["conv"]); got != n*per {
			t.Fatalf("%s: conv output has %d values, want %d", name, got, n*per)
		}
		for s := 0; s < n; s++ {
			var r []float32
			if useRes {
				r = all[res][s*per : (s+1)*per]
			}
			want := im2colConv(in[s*c*h*w:(s+1)*c*h*w], c, h, w, weight, o, kh, kw, sh, sw, pads, groups, bias, r, act)
			near(t, name, all["conv"][s*per:(s+1)*per], want, 1e-6)
		}
	}
}

// TestTinyNetByFormula recomputes the tiny MBConv network layer by layer
// from each op's definition (BN as an affine map, dense as a dot product)
// and from the im2col convolution, feeding every step with the
// interpreter's own inputs so each op is checked in isolation.
func TestTinyNetByFormula(t *testing.T) {
	m := testnet.Tiny(t)
	shapes, err := m.InferShapes()
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	const n = 2
	all, err := interp.RunTensors(m, randInput(rng, n*numel(m.Input.Shape)), n)
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range m.Ops {
		in, out := shapes[op.Inputs[0]], shapes[op.Output]
		pin, pout := numel(in), numel(out)
		for s := 0; s < n; s++ {
			x := all[op.Inputs[0]][s*pin : (s+1)*pin]
			var want []float32
			switch op.Type {
			case ir.OpConv2D:
				var bias []float32
				if op.Bias {
					bias = m.Param(op.Name, "bias").Data
				}
				want = im2colConv(x, in[0], in[1], in[2], m.Param(op.Name, "weight").Data, op.OutChannels,
					op.Kernel[0], op.Kernel[1], op.Stride[0], op.Stride[1], [4]int(op.Pads), op.Groups, bias, nil, op.Activation)
			case ir.OpBatchNorm:
				hw := pin / in[0]
				want = make([]float32, pin)
				for i := range want {
					ch := i / hw
					a := float64(m.Param(op.Name, "scale").Data[ch]) / math.Sqrt(float64(m.Param(op.Name, "var").Data[ch])+op.Epsilon)
					want[i] = float32(a*float64(x[i]) + (float64(m.Param(op.Name, "bias").Data[ch]) - a*float64(m.Param(op.Name, "mean").Data[ch])))
				}
			case ir.OpActivation:
				want = make([]float32, pin)
				for i, v := range x {
					want[i] = float32(op.Activation.Apply(float64(v)))
				}
			case ir.OpAdd:
				y := all[op.Inputs[1]][s*pin : (s+1)*pin]
				want = make([]float32, pin)
				for i := range x {
					want[i] = x[i] + y[i]
				}
			case ir.OpGlobalPool:
				want = make([]float32, in[0])
				hw := in[1] * in[2]
				for i, v := range x {
					want[i/hw] += v / float32(hw)
				}
			case ir.OpFlatten:
				want = x
			case ir.OpDense:
				want = append([]float32(nil), m.Param(op.Name, "bias").Data...)
				wt := m.Param(op.Name, "weight").Data
				for u := range want {
					for j, v := range x {
						want[u] += wt[u*len(x)+j] * v
					}
				}
			default:
				t.Fatalf("tiny net has an unexpected op %v", op.String())
			}
			near(t, op.Name, all[op.Output][s*pout:(s+1)*pout], want, 1e-5)
		}
	}
}
