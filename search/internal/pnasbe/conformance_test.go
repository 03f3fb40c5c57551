package pnasbe

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/simplego"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// The conformance tests build the same graph on simplego and on this
// backend, over random inputs of random (often odd) shapes, and compare the
// float32 outputs.

var (
	refBackend = func() backends.Backend {
		b, err := simplego.New("ops_sequential")
		if err != nil {
			panic(err)
		}
		return b
	}()
	pnasBackend = func() backends.Backend {
		b, err := New("parallelism=3")
		if err != nil {
			panic(err)
		}
		return b
	}()
)

type builderFn func(g *graph.Graph, in []*graph.Node) *graph.Node

func runOn(t *testing.T, be backends.Backend, f builderFn, ins []*tensors.Tensor) []float32 {
	t.Helper()
	g := graph.NewGraph(be, "conformance")
	defer g.Finalize()
	var ps []*graph.Node
	for i, in := range ins {
		ps = append(ps, graph.Parameter(g, fmt.Sprintf("p%d", i), in.Shape()))
	}
	out := f(g, ps)
	if out.DType() != dtypes.Float32 {
		out = graph.ConvertDType(out, dtypes.Float32)
	}
	g.Compile(out)
	args := make([]any, len(ins))
	for i, in := range ins {
		c, err := in.LocalClone()
		if err != nil {
			t.Fatal(err)
		}
		args[i] = c
	}
	res := g.Run(args...)
	defer res[0].FinalizeAll()
	return slices.Clone(tensors.MustCopyFlatData[float32](res[0]))
}

// conform checks that f gives the same outputs on both backends (relative
// tolerance tol on the output's scale).
func conform(t *testing.T, name string, tol float64, f builderFn, ins ...*tensors.Tensor) {
	t.Helper()
	want := runOn(t, refBackend, f, ins)
	got := runOn(t, pnasBackend, f, ins)
	if len(got) != len(want) {
		t.Fatalf("%s: %d outputs, simplego %d", name, len(got), len(want))
	}
	scale := 1.0
	for _, v := range want {
		scale = math.Max(scale, math.Abs(float64(v)))
	}
	for i := range want {
		if d := math.Abs(float64(got[i]) - float64(want[i])); d > tol*scale || math.IsNaN(float64(got[i])) != math.IsNaN(float64(want[i])) {
			t.Errorf("%s: output[%d] = %g, simplego %g", name, i, got[i], want[i])
			return
		}
	}
}

func randDims(rng *rand.Rand, rank int) []int {
	d := make([]int, rank)
	for i := range d {
		d[i] = 1 + rng.IntN(7)
	}
	return d
}

func randT(rng *rand.Rand, lo, hi float32, dims ...int) *tensors.Tensor {
	n := 1
	for _, d := range dims {
		n *= d
	}
	v := make([]float32, n)
	for i := range v {
		v[i] = lo + (hi-lo)*rng.Float32()
	}
	return tensors.FromFlatDataAndDimensions(v, dims...)
}

const tol = 1e-5

func TestConformElementwise(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	unary := map[string]func(*graph.Node) *graph.Node{
		"Abs": graph.Abs, "Neg": graph.Neg, "Exp": graph.Exp, "Tanh": graph.Tanh, "Logistic": graph.Logistic,
		"Sign": graph.Sign, "Floor": graph.Floor, "Ceil": graph.Ceil,
		"Log":   func(x *graph.Node) *graph.Node { return graph.Log(graph.Abs(x)) },
		"Sqrt":  func(x *graph.Node) *graph.Node { return graph.Sqrt(graph.Abs(x)) },
		"Rsqrt": func(x *graph.Node) *graph.Node { return graph.Rsqrt(graph.AddScalar(graph.Abs(x), 0.5)) },
	}
	binary := map[string]func(a, b *graph.Node) *graph.Node{
		"Add": graph.Add, "Sub": graph.Sub, "Mul": graph.Mul, "Div": graph.Div, "Max": graph.Max, "Min": graph.Min,
		"Pow": func(a, b *graph.Node) *graph.Node { return graph.Pow(graph.Abs(a), b) },
	}
	compare := map[string]func(a, b *graph.Node) *graph.Node{
		"Equal": graph.Equal, "NotEqual": graph.NotEqual, "LessThan": graph.LessThan, "LessOrEqual": graph.LessOrEqual,
		"GreaterThan": graph.GreaterThan, "GreaterOrEqual": graph.GreaterOrEqual,
	}
	for trial := 0; trial < 4; trial++ {
		dims := randDims(rng, 1+rng.IntN(4))
		x, y := randT(rng, -3, 3, dims...), randT(rng, -3, 3, dims...)
		// One operand with some axes of size 1 (broadcast by the graph).
		bd := slices.Clone(dims)
		for i := range bd {
			if rng.IntN(2) == 0 {
				bd[i] = 1
			}
		}
		yb := randT(rng, -3, 3, bd...)
		for name, f := range unary {
			conform(t, fmt.Sprintf("%s %v", name, dims), tol, func(g *graph.Graph, in []*graph.Node) *graph.Node { return f(in[0]) }, x)
		}
		for name, f := range binary {
			conform(t, fmt.Sprintf("%s %v", name, dims), tol, func(g *graph.Graph, in []*graph.Node) *graph.Node { return f(in[0], in[1]) }, x, y)
			conform(t, fmt.Sprintf("%s %v with %v", name, dims, bd), tol, func(g *graph.Graph, in []*graph.Node) *graph.Node {
				return f(in[0], graph.BroadcastToDims(in[1], dims...))
			}, x, yb)
			conform(t, fmt.Sprintf("%s %v with a scalar", name, dims), tol, func(g *graph.Graph, in []*graph.Node) *graph.Node {
				return f(in[0], graph.Scalar(g, dtypes.Float32, 1.5))
			}, x)
		}
		for name, f := range compare {
			conform(t, fmt.Sprintf("%s %v", name, dims), 0, func(g *graph.Graph, in []*graph.Node) *graph.Node {
				// Half the elements equal.
				b := graph.Where(graph.GreaterThan(in[1], graph.ScalarZero(g, dtypes.Float32)), in[0], in[1])
				return graph.ConvertDType(f(in[0], b), dtypes.Float32)
			}, x, y)
		}
		conform(t, fmt.Sprintf("Where/LogicalAnd/Or/Not %v", dims), 0, func(g *graph.Graph, in []*graph.Node) *graph.Node {
			z := graph.ScalarZero(g, dtypes.Float32)
			a, b := graph.GreaterThan(in[0], z), graph.LessThan(in[1], z)
			c := graph.LogicalOr(graph.LogicalAnd(a, b), graph.LogicalNot(b))
			return graph.Where(c, in[0], in[1])
		}, x, y)
		for _, hi := range []float64{2, 6} {
			xs := randT(rng, -2, 8, dims...)
			conform(t, fmt.Sprintf("clamp to [0, %g] and its fused gradient mask %v", hi, dims), 0, func(g *graph.Graph, in []*graph.Node) *graph.Node {
				z, top := graph.ScalarZero(g, dtypes.Float32), graph.Scalar(g, dtypes.Float32, hi)
				c := graph.Clamp(z, in[0], top)
				inside := graph.LogicalAnd(graph.GreaterThan(c, z), graph.LessThan(c, top))
				return graph.Add(c, graph.Where(inside, in[1], z))
			}, xs, y)
		}
		ia := rng.IntN(len(dims))
		conform(t, fmt.Sprintf("ConvertDType and Iota %v axis %d", dims, ia), 0, func(g *graph.Graph, in []*graph.Node) *graph.Node {
			i := graph.ConvertDType(graph.ConvertDType(graph.MulScalar(in[0], 10), dtypes.Int32), dtypes.Float64)
			io := graph.Iota(g, shapes.Make(dtypes.Float64, dims...), ia)
			return graph.Add(i, io)
		}, x)
	}
}

func TestConformLayout(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for trial := 0; trial < 20; trial++ {
		rank := 1 + rng.IntN(4)
		dims := randDims(rng, rank)
		x := randT(rng, -1, 1, dims...)
		perm := rng.Perm(rank)
		conform(t, fmt.Sprintf("Transpose %v %v", dims, perm), 0, func(g *graph.Graph, in []*graph.Node) *graph.Node {
			return graph.TransposeAllAxes(in[0], perm...)
		}, x)
		conform(t, fmt.Sprintf("Reshape %v", dims), 0, func(g *graph.Graph, in []*graph.Node) *graph.Node {
			return graph.Reshape(in[0], x.Shape().Size())
		}, x)
		specs := make([]graph.SliceAxisSpec, rank)
		for a, d := range dims {
			lo := rng.IntN(d)
			hi := lo + 1 + rng.IntN(d-lo)
			specs[a] = graph.AxisRange(lo, hi).Stride(1 + rng.IntN(3))
		}
		conform(t, fmt.Sprintf("Slice %v", dims), 0, func(g *graph.Graph, in []*graph.Node) *graph.Node {
			return graph.Slice(in[0], specs...)
		}, x)
		axis := rng.IntN(rank)
		od := slices.Clone(dims)
		od[axis] = 1 + rng.IntN(5)
		y := randT(rng, -1, 1, od...)
		conform(t, fmt.Sprintf("Concatenate %v %v axis %d", dims, od, axis), 0, func(g *graph.Graph, in []*graph.Node) *graph.Node {
			return graph.Concatenate([]*graph.Node{in[0], in[1], in[0]}, axis)
		}, x, y)
		// BroadcastInDim: insert new axes and expand unit axes.
		bd := slices.Clone(dims)
		for i := range bd {
			if rng.IntN(2) == 0 {
				bd[i] = 1
			}
		}
		xb := randT(rng, -1, 1, bd...)
		conform(t, fmt.Sprintf("BroadcastToDims %v -> [3 %v]", bd, dims), 0, func(g *graph.Graph, in []*graph.Node) *graph.Node {
			return graph.BroadcastToDims(graph.ExpandAxes(in[0], 0), append([]int{3}, dims...)...)
		}, xb)
		var axes []int
		for a := range rank {
			if rng.IntN(2) == 0 {
				axes = append(axes, a)
			}
		}
		if len(axes) == 0 {
			axes = []int{rng.IntN(rank)}
		}
		for name, f := range map[string]func(*graph.Node, ...int) *graph.Node{
			"ReduceSum": graph.ReduceSum, "ReduceMax": graph.ReduceMax, "ReduceMin": graph.ReduceMin,
		} {
			conform(t, fmt.Sprintf("%s %v over %v", name, dims, axes), tol, func(g *graph.Graph, in []*graph.Node) *graph.Node {
				return f(in[0], axes...)
			}, x)
		}
	}
}

func TestConformDotGeneral(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for trial := 0; trial < 60; trial++ {
		// Axes: nb batch, nc contracting, lf and rf free; each operand's
		// axes in a random order.
		nb, nc, lf, rf := rng.IntN(2), 1+rng.IntN(2), rng.IntN(3), rng.IntN(3)
		size := func() int {
			if rng.IntN(4) == 0 {
				return 1
			}
			return 1 + rng.IntN(40)
		}
		bs, cs := make([]int, nb), make([]int, nc)
		for i := range bs {
			bs[i] = 1 + rng.IntN(4)
		}
		for i := range cs {
			cs[i] = size()
		}
		mk := func(free int) (dims, batch, contract []int) {
			kinds := make([]int, 0, nb+nc+free) // 0 batch, 1 contract, 2 free
			for range nb {
				kinds = append(kinds, 0)
			}
			for range nc {
				kinds = append(kinds, 1)
			}
			for range free {
				kinds = append(kinds, 2)
			}
			rng.Shuffle(len(kinds), func(i, j int) { kinds[i], kinds[j] = kinds[j], kinds[i] })
			dims = make([]int, len(kinds))
			bi, ci := 0, 0
			batch, contract = make([]int, nb), make([]int, nc)
			for a, k := range kinds {
				switch k {
				case 0:
					dims[a], batch[bi] = bs[bi], a
					bi++
				case 1:
					dims[a], contract[ci] = cs[ci], a
					ci++
				default:
					dims[a] = size()
				}
			}
			return
		}
		ld, lb, lc := mk(lf)
		rd, rb, rc := mk(rf)
		l, r := randT(rng, -1, 1, ld...), randT(rng, -1, 1, rd...)
		conform(t, fmt.Sprintf("DotGeneral %v c%v b%v · %v c%v b%v", ld, lc, lb, rd, rc, rb), 1e-5, func(g *graph.Graph, in []*graph.Node) *graph.Node {
			return graph.DotGeneral(in[0], lc, lb, in[1], rc, rb)
		}, l, r)
	}
}

// TestConformDepthwise checks the three depthwise passes in float32 (the
// kernels) against this backend's float64 direct loops. (simplego's
// ConvGeneral fails on the [C, N, H, W] layout; package gx checks the
// float64 passes against a naive convolution and finite differences.)
func TestConformDepthwise(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, c := range []struct{ c, n, h, w, k, s int }{
		{3, 2, 5, 6, 3, 1}, {5, 3, 8, 8, 3, 2}, {4, 2, 9, 7, 5, 1}, {3, 2, 7, 7, 5, 2}, {2, 2, 6, 5, 7, 1}, {3, 1, 9, 8, 7, 2}, {17, 5, 14, 14, 3, 2},
	} {
		x := randT(rng, -1, 1, c.c, c.n, c.h, c.w)
		w := randT(rng, -1, 1, c.c, 1, c.k, c.k)
		p := c.k / 2
		ho, wo := (c.h+2*p-c.k)/c.s+1, (c.w+2*p-c.k)/c.s+1
		v := randT(rng, -1, 1, c.c, c.n, ho, wo)
		rh, rw := (c.h+2*p-c.k)%c.s, (c.w+2*p-c.k)%c.s
		fwd := func(g *graph.Graph, in []*graph.Node) *graph.Node {
			return graph.ConvGeneral(in[0], in[1], cnhw, []int{c.s, c.s}, [][2]int{{p, p}, {p, p}}, nil, nil, c.c, 1)
		}
		name := fmt.Sprintf("depthwise %+v", c)
		passes := map[string]builderFn{
			"forward": fwd,
			"input gradient": func(g *graph.Graph, in []*graph.Node) *graph.Node {
				return graph.ConvGeneral(in[2], graph.Reverse(in[1], 2, 3), cnhw, []int{1, 1},
					[][2]int{{c.k - 1 - p, c.k - 1 - p + rh}, {c.k - 1 - p, c.k - 1 - p + rw}}, []int{c.s, c.s}, nil, c.c, 1)
			},
			"kernel gradient": func(g *graph.Graph, in []*graph.Node) *graph.Node {
				return graph.ConvGeneral(in[0], in[2], filterAxes, []int{1, 1}, [][2]int{{p, p - rh}, {p, p - rw}}, nil, []int{c.s, c.s}, 1, c.c)
			},
		}
		for pass, f := range passes {
			got := runOn(t, pnasBackend, f, []*tensors.Tensor{x, w, v})
			want := runOn(t, pnasBackend, func(g *graph.Graph, in []*graph.Node) *graph.Node {
				for i := range in {
					in[i] = graph.ConvertDType(in[i], dtypes.Float64)
				}
				return f(g, in)
			}, []*tensors.Tensor{x, w, v})
			for i := range want {
				if math.Abs(float64(got[i]-want[i])) > 1e-4 {
					t.Errorf("%s %s: output[%d] = %g, float64 loops %g", name, pass, i, got[i], want[i])
					break
				}
			}
		}
	}
}

// TestOtherConvolutionsRefused checks that a convolution other than the
// depthwise passes is an error at graph building, not a wrong result.
func TestOtherConvolutionsRefused(t *testing.T) {
	b := pnasBackend.Builder("refuse")
	x, _ := b.Parameter("x", shapes.Make(dtypes.Float32, 2, 3, 5, 5), nil)
	w, _ := b.Parameter("w", shapes.Make(dtypes.Float32, 4, 2, 3, 3), nil)
	axes := backends.ConvolveAxesConfig{
		InputBatch: 1, InputChannels: 0, InputSpatial: []int{2, 3},
		KernelInputChannels: 1, KernelOutputChannels: 0, KernelSpatial: []int{2, 3},
		OutputBatch: 1, OutputChannels: 0, OutputSpatial: []int{2, 3},
	}
	if _, err := b.ConvGeneral(x, w, axes, []int{1, 1}, [][2]int{{1, 1}, {1, 1}}, nil, nil, 1, 1); err == nil {
		t.Fatal("dense convolution: no error")
	}
}
