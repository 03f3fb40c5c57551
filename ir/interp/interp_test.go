package interp_test

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/pnasml/pnas/internal/testnet"
	"github.com/pnasml/pnas/ir"
	"github.com/pnasml/pnas/ir/interp"
)

// net assembles a model by hand: input shape, ops, weights keyed
// "<op>.<role>", output tensor.
func net(t *testing.T, in []int, out string, ops []ir.Op, params map[string]*ir.Tensor) *ir.Model {
	t.Helper()
	m := &ir.Model{
		Format: ir.FormatName, Version: ir.FormatVersion, Name: t.Name(), Producer: "test",
		Input:  ir.Input{Name: "x", Shape: in, Layout: "NCHW"},
		Output: out, Ops: ops, Params: params,
	}
	if err := m.Verify(); err != nil {
		t.Fatalf("test model does not verify: %v", err)
	}
	return m
}

func tensor(shape []int, data ...float32) *ir.Tensor { return &ir.Tensor{Shape: shape, Data: data} }

// conv is a conv2d op reading "x".
func conv(name string, inputs []string, out int, k, stride [2]int, pads [4]int, groups int, bias bool, act ir.Activation) ir.Op {
	return ir.Op{Name: name, Type: ir.OpConv2D, Inputs: inputs, Output: name, OutChannels: out,
		Kernel: k[:], Stride: stride[:], Pads: pads[:], Groups: groups, Bias: bias, Activation: act}
}

func flatten(in string) ir.Op {
	return ir.Op{Name: "flat", Type: ir.OpFlatten, Inputs: []string{in}, Output: "flat"}
}

func run(t *testing.T, m *ir.Model, input []float32, n int) map[string][]float32 {
	t.Helper()
	got, err := interp.RunTensors(m, input, n)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func near(t *testing.T, what string, got, want []float32, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %d values %v, want %d values %v", what, len(got), got, len(want), want)
	}
	for i := range want {
		if d := math.Abs(float64(got[i]) - float64(want[i])); d > tol*math.Max(1, math.Abs(float64(want[i]))) || math.IsNaN(float64(got[i])) {
			t.Fatalf("%s: value %d = %v, want %v\ngot  %v\nwant %v", what, i, got[i], want[i], got, want)
		}
	}
}

func TestGroupedConv(t *testing.T) {
	// 4 input channels of one pixel each: c0..c3 = 1, 2, 3, 4. With groups
	// 2 and 4 outputs, outputs 0 and 1 read (c0, c1) and outputs 2 and 3
	// read (c2, c3); weights are [O=4, I/g=2, 1, 1]:
	//   o0 = 1*c0 + 0*c1 = 1
	//   o1 = 0*c0 + 1*c1 = 2
	//   o2 = 1*c2 + 1*c3 = 7
	//   o3 = 2*c2 - 1*c3 = 2
	m := net(t, []int{4, 1, 1}, "flat", []ir.Op{
		conv("c", []string{"x"}, 4, [2]int{1, 1}, [2]int{1, 1}, [4]int{}, 2, false, ""),
		flatten("c"),
	}, map[string]*ir.Tensor{"c.weight": tensor([]int{4, 2, 1, 1}, 1, 0, 0, 1, 1, 1, 2, -1)})
	got, err := interp.Run(m, []float32{1, 2, 3, 4}, 1)
	if err != nil {
		t.Fatal(err)
	}
	near(t, "grouped conv", got, []float32{1, 2, 7, 2}, 0)
}

func TestDepthwiseConv(t *testing.T) {
	// Two channels, both holding
	//   1 2 3
	//   4 5 6
	//   7 8 9
	// 3x3 depthwise kernels with padding 1. Channel 0's kernel is all ones,
	// so each output is the sum of the 3x3 neighbourhood (zeros outside):
	//   1+2+4+5=12  1+2+3+4+5+6=21  2+3+5+6=16
	//   1+2+4+5+7+8=27  45  2+3+5+6+8+9=33
	//   4+5+7+8=24  4+5+6+7+8+9=39  5+6+8+9=28
	// Channel 1's kernel has a single 1 in its top-left tap, so output
	// (y,x) reads input (y-1,x-1): the image shifted down-right by one.
	// (A flipped "true" convolution would shift it up-left instead.)
	img := []float32{1, 2, 3, 4, 5, 6, 7, 8, 9}
	ones := []float32{1, 1, 1, 1, 1, 1, 1, 1, 1}
	topLeft := []float32{1, 0, 0, 0, 0, 0, 0, 0, 0}
	m := net(t, []int{2, 3, 3}, "flat", []ir.Op{
		conv("dw", []string{"x"}, 2, [2]int{3, 3}, [2]int{1, 1}, [4]int{1, 1, 1, 1}, 2, false, ""),
		flatten("dw"),
	}, map[string]*ir.Tensor{"dw.weight": tensor([]int{2, 1, 3, 3}, append(ones, topLeft...)...)})
	got, err := interp.Run(m, append(img, img...), 1)
	if err != nil {
		t.Fatal(err)
	}
	near(t, "depthwise", got, []float32{
		12, 21, 16,
		27, 45, 33,
		24, 39, 28,

		0, 0, 0,
		0, 1, 2,
		0, 4, 5,
	}, 0)
}

func TestStride2OddSize(t *testing.T) {
	// 5x5 input x[y][x] = 5y+x, 3x3 all-ones kernel, stride 2, padding 1:
	// output (5+2-3)/2+1 = 3 per side. Output (i,j) sums rows R_i and
	// columns C_j clipped to 0..4: R0 = C0 = {0,1}, R1 = C1 = {1,2,3},
	// R2 = C2 = {3,4}. The sum of 5y+x over R x C is
	// 5*|C|*sum(R) + |R|*sum(C), with sums 1, 6, 7 and sizes 2, 3, 2:
	//   (0,0) 5*2*1+2*1 = 12   (0,1) 5*3*1+2*6 = 27   (0,2) 5*2*1+2*7 = 24
	//   (1,0) 5*2*6+3*1 = 63   (1,1) 5*3*6+3*6 = 108  (1,2) 5*2*6+3*7 = 81
	//   (2,0) 5*2*7+2*1 = 72   (2,1) 5*3*7+2*6 = 117  (2,2) 5*2*7+2*7 = 84
	in := make([]float32, 25)
	for i := range in {
		in[i] = float32(i)
	}
	m := net(t, []int{1, 5, 5}, "flat", []ir.Op{
		conv("c", []string{"x"}, 1, [2]int{3, 3}, [2]int{2, 2}, [4]int{1, 1, 1, 1}, 1, false, ""),
		flatten("c"),
	}, map[string]*ir.Tensor{"c.weight": tensor([]int{1, 1, 3, 3}, 1, 1, 1, 1, 1, 1, 1, 1, 1)})
	got, err := interp.Run(m, in, 1)
	if err != nil {
		t.Fatal(err)
	}
	near(t, "stride 2", got, []float32{12, 27, 24, 63, 108, 81, 72, 117, 84}, 0)
}

func TestAsymmetricPadding(t *testing.T) {
	// Input [[1,2],[3,4]], pads top=1 left=0 bottom=0 right=2, kernel
	// [[1,10],[100,1000]]. Output is (2+1+0-2)+1 = 2 rows by (2+0+2-2)+1 = 3
	// columns over the padded input
	//   0 0 0 0
	//   1 2 0 0
	//   3 4 0 0
	// (0,0) = 100*1+1000*2 = 2100  (0,1) = 100*2 = 200  (0,2) = 0
	// (1,0) = 1*1+10*2+100*3+1000*4 = 4321  (1,1) = 1*2+100*4 = 402  (1,2) = 0
	m := net(t, []int{1, 2, 2}, "flat", []ir.Op{
		conv("c", []string{"x"}, 1, [2]int{2, 2}, [2]int{1, 1}, [4]int{1, 0, 0, 2}, 1, false, ""),
		flatten("c"),
	}, map[string]*ir.Tensor{"c.weight": tensor([]int{1, 1, 2, 2}, 1, 10, 100, 1000)})
	got := run(t, m, []float32{1, 2, 3, 4}, 1)
	near(t, "asymmetric padding", got["c"], []float32{2100, 200, 0, 4321, 402, 0}, 0)
}

func TestBiasResidualReLU6(t *testing.T) {
	// Input one channel of 1x3 pixels x = -1, 0.5, 2.
	// "r" is a 1x1 conv 1->2 with weights (1, 3): r0 = x, r1 = 3x.
	// "c" is a 1x1 conv 1->2 with weights (2, -1), bias (1, 0.5), residual r
	// and relu6, so before the clamp
	//   c0 = 2x + 1 + x = 3x + 1   -> -2, 2.5, 7   -> clamp 0, 2.5, 6
	//   c1 = -x + 0.5 + 3x = 2x+0.5 -> -1.5, 1.5, 4.5 -> clamp 0, 1.5, 4.5
	// Adding the residual after the clamp would give c0(2) = 5+2 = 7 and
	// c0(-1) = 0-1 = -1 instead.
	m := net(t, []int{1, 1, 3}, "flat", []ir.Op{
		conv("r", []string{"x"}, 2, [2]int{1, 1}, [2]int{1, 1}, [4]int{}, 1, false, ""),
		conv("c", []string{"x", "r"}, 2, [2]int{1, 1}, [2]int{1, 1}, [4]int{}, 1, true, ir.ActReLU6),
		flatten("c"),
	}, map[string]*ir.Tensor{
		"r.weight": tensor([]int{2, 1, 1, 1}, 1, 3),
		"c.weight": tensor([]int{2, 1, 1, 1}, 2, -1),
		"c.bias":   tensor([]int{2}, 1, 0.5),
	})
	got, err := interp.Run(m, []float32{-1, 0.5, 2}, 1)
	if err != nil {
		t.Fatal(err)
	}
	near(t, "bias+residual+relu6", got, []float32{0, 2.5, 6, 0, 1.5, 4.5}, 0)
}

func bnParams(name string) map[string]*ir.Tensor {
	// With epsilon 1: channel 0 has sqrt(3+1) = 2, channel 1 sqrt(15+1) = 4.
	return map[string]*ir.Tensor{
		name + ".scale": tensor([]int{2}, 3, 0.5),
		name + ".bias":  tensor([]int{2}, 1, -1),
		name + ".mean":  tensor([]int{2}, 1, 0),
		name + ".var":   tensor([]int{2}, 3, 15),
	}
}

func TestBatchNorm(t *testing.T) {
	// y = scale*(x-mean)/sqrt(var+eps) + bias with eps 1:
	//   channel 0: 3*(x-1)/2 + 1  -> x=1: 1, x=3: 4
	//   channel 1: 0.5*x/4 - 1    -> x=-2: -1.25, x=4: -0.5
	bn := ir.Op{Name: "bn", Type: ir.OpBatchNorm, Inputs: []string{"x"}, Output: "bn", Epsilon: 1}
	t.Run("map", func(t *testing.T) {
		m := net(t, []int{2, 1, 2}, "flat", []ir.Op{bn, flatten("bn")}, bnParams("bn"))
		got := run(t, m, []float32{1, 3, -2, 4}, 1)
		near(t, "bn map", got["bn"], []float32{1, 4, -1.25, -0.5}, 0)
	})
	t.Run("vector", func(t *testing.T) {
		vbn := bn
		vbn.Inputs = []string{"flat"}
		flat := flatten("x")
		m := net(t, []int{2, 1, 1}, "bn", []ir.Op{flat, vbn}, bnParams("bn"))
		got, err := interp.Run(m, []float32{3, 4}, 1)
		if err != nil {
			t.Fatal(err)
		}
		near(t, "bn vector", got, []float32{4, -0.5}, 0)
	})
}

func TestGlobalPool(t *testing.T) {
	// channel 0 = 1..6 -> mean 21/6 = 3.5; channel 1 = five zeros and 12 -> 2.
	m := net(t, []int{2, 2, 3}, "flat", []ir.Op{
		{Name: "pool", Type: ir.OpGlobalPool, Inputs: []string{"x"}, Output: "pool"},
		flatten("pool"),
	}, nil)
	got := run(t, m, []float32{1, 2, 3, 4, 5, 6, 0, 0, 0, 0, 0, 12}, 1)
	near(t, "pool", got["pool"], []float32{3.5, 2}, 0)
	near(t, "flatten", got["flat"], []float32{3.5, 2}, 0)
}

func denseNet(t *testing.T, act ir.Activation) *ir.Model {
	// W = [[1, 0, -1], [0.5, 0.5, 0.5]], b = [10, -4].
	return net(t, []int{3, 1, 1}, "fc", []ir.Op{
		flatten("x"),
		{Name: "fc", Type: ir.OpDense, Inputs: []string{"flat"}, Output: "fc", Units: 2, Bias: true, Activation: act},
	}, map[string]*ir.Tensor{
		"fc.weight": tensor([]int{2, 3}, 1, 0, -1, 0.5, 0.5, 0.5),
		"fc.bias":   tensor([]int{2}, 10, -4),
	})
}

func TestDense(t *testing.T) {
	// x = (1, 2, 3): y0 = 1 - 3 + 10 = 8, y1 = 0.5*6 - 4 = -1.
	for _, tc := range []struct {
		act  ir.Activation
		want []float32
	}{
		{"", []float32{8, -1}},
		{ir.ActReLU, []float32{8, 0}},
		{ir.ActReLU6, []float32{6, 0}},
	} {
		got, err := interp.Run(denseNet(t, tc.act), []float32{1, 2, 3}, 1)
		if err != nil {
			t.Fatal(err)
		}
		near(t, "dense "+string(tc.act), got, tc.want, 0)
	}
}

func TestBatchIndependent(t *testing.T) {
	// Sample 0 as in TestDense; sample 1 x = (-1, 0, 4):
	// y0 = -1 - 4 + 10 = 5, y1 = 0.5*3 - 4 = -2.5.
	m := denseNet(t, "")
	got, err := interp.Run(m, []float32{1, 2, 3, -1, 0, 4}, 2)
	if err != nil {
		t.Fatal(err)
	}
	near(t, "batch of 2", got, []float32{8, -1, 5, -2.5}, 0)

	// A real network: every sample of a batch equals its own run.
	tm := testnet.Tiny(t)
	rng := rand.New(rand.NewPCG(3, 4))
	in := randInput(rng, 3*numel(tm.Input.Shape))
	batch, err := interp.Run(tm, in, 3)
	if err != nil {
		t.Fatal(err)
	}
	per := len(in) / 3
	for s := 0; s < 3; s++ {
		one, err := interp.Run(tm, in[s*per:(s+1)*per], 1)
		if err != nil {
			t.Fatal(err)
		}
		near(t, "sample in batch", batch[s*10:(s+1)*10], one, 0)
	}
}

func TestSoftmax(t *testing.T) {
	// softmax(1,2,3) = (e, e^2, e^3) / (e + e^2 + e^3)
	//   = (2.718282, 7.389056, 20.085537) / 30.192875
	//   = (0.0900306, 0.2447285, 0.6652410).
	// Shifting every input by a constant leaves it unchanged, so +-1000
	// must give the same numbers (a naive exp overflows or underflows).
	want := []float32{0.0900306, 0.2447285, 0.6652410}
	for _, shift := range []float32{0, 1000, -1000} {
		m := net(t, []int{3, 1, 1}, "sm", []ir.Op{
			flatten("x"),
			{Name: "sm", Type: ir.OpSoftmax, Inputs: []string{"flat"}, Output: "sm"},
		}, nil)
		got, err := interp.Run(m, []float32{1 + shift, 2 + shift, 3 + shift}, 1)
		if err != nil {
			t.Fatal(err)
		}
		near(t, "softmax", got, want, 1e-6)
	}
}

func TestActivationAndAdd(t *testing.T) {
	// act = relu6(x) on x = (-1, 3, 7) -> (0, 3, 6);
	// sum = relu(x + act) -> relu(-1, 6, 13) = (0, 6, 13).
	m := net(t, []int{1, 1, 3}, "flat", []ir.Op{
		{Name: "act", Type: ir.OpActivation, Inputs: []string{"x"}, Output: "act", Activation: ir.ActReLU6},
		{Name: "sum", Type: ir.OpAdd, Inputs: []string{"x", "act"}, Output: "sum", Activation: ir.ActReLU},
		flatten("sum"),
	}, nil)
	got := run(t, m, []float32{-1, 3, 7}, 1)
	near(t, "input", got["x"], []float32{-1, 3, 7}, 0)
	near(t, "activation", got["act"], []float32{0, 3, 6}, 0)
	near(t, "add", got["sum"], []float32{0, 6, 13}, 0)
	if len(got) != 4 {
		t.Errorf("RunTensors returned %d tensors, want 4 (input and 3 ops)", len(got))
	}
}

func TestErrors(t *testing.T) {
	good := denseNet(t, "")
	bad := good.Clone()
	delete(bad.Params, "fc.bias")
	for _, tc := range []struct {
		name string
		m    *ir.Model
		in   []float32
		n    int
		want string
	}{
		{"nil model", nil, []float32{1, 2, 3}, 1, "nil model"},
		{"unverified", bad, []float32{1, 2, 3}, 1, `missing weight "fc.bias"`},
		{"short input", good, []float32{1, 2}, 1, "expected 3 values (1 samples of [3 1 1]), got 2"},
		{"batch mismatch", good, []float32{1, 2, 3}, 2, "expected 6 values"},
		{"zero batch", good, nil, 0, "positive number of samples"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := interp.Run(tc.m, tc.in, tc.n); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Run error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}
