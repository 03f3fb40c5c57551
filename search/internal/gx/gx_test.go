package gx

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/gomlx/gomlx/backends"
	_ "github.com/gomlx/gomlx/backends/simplego"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	_ "github.com/pnasml/pnas/search/internal/pnasbe"
)

// testBackend is the backend the tests run on (see TestMain).
var testBackend backends.Backend

// TestMain runs every test twice: on simplego ("go") and on pnas's own
// backend ("pnas"), whose depthwise convolutions take the native path.
func TestMain(m *testing.M) {
	code := 0
	for _, name := range []string{"go:ops_sequential", "pnas"} {
		be, err := backends.NewWithConfig(name)
		if err != nil {
			panic(err)
		}
		testBackend = be
		if c := m.Run(); c != 0 {
			fmt.Fprintf(os.Stderr, "gx tests failed on backend %s\n", name)
			code = c
		}
	}
	os.Exit(code)
}

// arr is a float64 test array.
type arr struct {
	dims []int
	data []float64
}

func randArr(rng *rand.Rand, dims ...int) arr {
	n := 1
	for _, d := range dims {
		n *= d
	}
	a := arr{dims: dims, data: make([]float64, n)}
	for i := range a.data {
		a.data[i] = rng.NormFloat64()
	}
	return a
}

func (a arr) tensor() *tensors.Tensor {
	return tensors.FromFlatDataAndDimensions(append([]float64(nil), a.data...), a.dims...)
}

// run builds f over float64 parameters shaped like ins and returns the
// flat outputs.
func run(t *testing.T, f func(g *Graph, in []*Node) []*Node, ins ...arr) [][]float64 {
	t.Helper()
	g := graph.NewGraph(testBackend, "test")
	defer g.Finalize()
	defer Release(g)
	var params []*Node
	for i, a := range ins {
		params = append(params, graph.Parameter(g, fmt.Sprintf("p%d", i), shapes.Make(dtypes.Float64, a.dims...)))
	}
	outs := f(g, params)
	g.Compile(outs...)
	var args []any
	for _, a := range ins {
		args = append(args, a.tensor())
	}
	res := g.Run(args...)
	var flat [][]float64
	for _, r := range res {
		flat = append(flat, append([]float64(nil), tensors.MustCopyFlatData[float64](r)...))
		r.FinalizeAll()
	}
	return flat
}

// checkGrad compares the gradient of sum(r * f(ins)) (r a fixed random
// projection) with central finite differences at up to maxProbe elements
// of every input.
func checkGrad(t *testing.T, name string, f func(g *Graph, in []*Node) *Node, ins ...arr) {
	t.Helper()
	rng := rand.New(rand.NewPCG(7, 7))
	var proj []float64
	loss := func(g *Graph, in []*Node) *Node {
		y := f(g, in)
		if proj == nil {
			proj = make([]float64, y.Shape().Size())
			for i := range proj {
				proj[i] = rng.NormFloat64()
			}
		}
		r := graph.Const(g, tensors.FromFlatDataAndDimensions(proj, y.Shape().Dimensions...))
		if y.Rank() == 0 {
			r = graph.Reshape(r)
		}
		return graph.ReduceAllSum(graph.Mul(y, r))
	}
	ana := run(t, func(g *Graph, in []*Node) []*Node {
		l := loss(g, in)
		return append([]*Node{l}, graph.Gradient(l, in...)...)
	}, ins...)
	lossAt := func(in []arr) float64 {
		return run(t, func(g *Graph, p []*Node) []*Node { return []*Node{loss(g, p)} }, in...)[0][0]
	}
	const h = 1e-5
	const maxProbe = 12
	for i, a := range ins {
		idx := rng.Perm(len(a.data))
		if len(idx) > maxProbe {
			idx = idx[:maxProbe]
		}
		for _, e := range idx {
			mod := make([]arr, len(ins))
			copy(mod, ins)
			d := append([]float64(nil), a.data...)
			mod[i] = arr{dims: a.dims, data: d}
			d[e] = a.data[e] + h
			lp := lossAt(mod)
			d[e] = a.data[e] - h
			lm := lossAt(mod)
			num := (lp - lm) / (2 * h)
			got := ana[1+i][e]
			if math.Abs(num-got) > 1e-6*math.Max(1, math.Abs(num)) {
				t.Errorf("%s: d/d input%d[%d]: analytic %.9g, finite differences %.9g", name, i, e, got, num)
			}
		}
	}
}

func TestDotGeneralGrad(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	checkGrad(t, "matmul", func(g *Graph, in []*Node) *Node { return MatMul(in[0], in[1]) },
		randArr(rng, 3, 4), randArr(rng, 4, 5))
	checkGrad(t, "batched, two contracted axes, unsorted", func(g *Graph, in []*Node) *Node {
		return DotGeneral(in[0], []int{3, 1}, []int{0}, in[1], []int{1, 3}, []int{0})
	}, randArr(rng, 2, 3, 4, 5), randArr(rng, 2, 5, 6, 3))
	checkGrad(t, "batch axis last", func(g *Graph, in []*Node) *Node {
		return DotGeneral(in[0], []int{0}, []int{2}, in[1], []int{1}, []int{0})
	}, randArr(rng, 4, 3, 2), randArr(rng, 2, 4, 5))
	checkGrad(t, "matrix-vector", func(g *Graph, in []*Node) *Node {
		return DotGeneral(in[0], []int{1}, nil, in[1], []int{0}, nil)
	}, randArr(rng, 3, 4), randArr(rng, 4))
}

func TestSliceAxisGrad(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, c := range []struct{ axis, start, limit, stride int }{
		{1, 0, 7, 1}, {1, 2, 7, 1}, {1, 1, 6, 2}, {2, 0, 5, 2}, {2, 1, 5, 3}, {0, 1, 2, 1},
	} {
		c := c
		checkGrad(t, fmt.Sprintf("slice %+v", c), func(g *Graph, in []*Node) *Node {
			return SliceAxis(in[0], c.axis, c.start, c.limit, c.stride)
		}, randArr(rng, 2, 7, 5))
	}
}

// naiveConv is the reference convolution (PyTorch semantics, padding k/2)
// over x [Cin,N,H,W] with weight [Cout, Cin/groups, k, k].
func naiveConv(x arr, w arr, stride, groups int) arr {
	cin, n, h, wd := x.dims[0], x.dims[1], x.dims[2], x.dims[3]
	cout, cg, k := w.dims[0], w.dims[1], w.dims[3]
	p := k / 2
	ho, wo := OutSize(h, k, stride), OutSize(wd, k, stride)
	og := cout / groups
	_ = cin
	y := arr{dims: []int{cout, n, ho, wo}, data: make([]float64, cout*n*ho*wo)}
	for o := 0; o < cout; o++ {
		for b := 0; b < n; b++ {
			for i := 0; i < ho; i++ {
				for j := 0; j < wo; j++ {
					var s float64
					for c := 0; c < cg; c++ {
						ci := (o/og)*cg + c
						for u := 0; u < k; u++ {
							for v := 0; v < k; v++ {
								r, q := i*stride+u-p, j*stride+v-p
								if r < 0 || r >= h || q < 0 || q >= wd {
									continue
								}
								s += w.data[((o*cg+c)*k+u)*k+v] * x.data[((ci*n+b)*h+r)*wd+q]
							}
						}
					}
					y.data[((o*n+b)*ho+i)*wo+j] = s
				}
			}
		}
	}
	return y
}

func closeTo(t *testing.T, name string, got []float64, want arr) {
	t.Helper()
	if len(got) != len(want.data) {
		t.Fatalf("%s: %d values, want %d", name, len(got), len(want.data))
	}
	for i := range got {
		if math.Abs(got[i]-want.data[i]) > 1e-9*math.Max(1, math.Abs(want.data[i])) {
			t.Fatalf("%s: value %d = %.12g, want %.12g", name, i, got[i], want.data[i])
		}
	}
}

func TestDepthwise(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, c := range []struct{ c, n, h, w, k, s int }{
		{3, 2, 5, 6, 3, 1}, {3, 2, 8, 8, 3, 2}, {3, 2, 8, 8, 5, 1}, {2, 2, 7, 7, 3, 2}, {2, 1, 6, 5, 5, 2}, {2, 2, 4, 4, 7, 1}, {2, 1, 7, 6, 7, 2}, {3, 1, 3, 4, 1, 1}, {2, 2, 5, 5, 1, 2}, {2, 1, 8, 7, 3, 3}, {2, 2, 7, 8, 5, 3},
	} {
		name := fmt.Sprintf("depthwise %+v", c)
		x := randArr(rng, c.c, c.n, c.h, c.w)
		w := randArr(rng, c.c, 1, c.k, c.k)
		want := naiveConv(x, w, c.s, c.c)
		got := run(t, func(g *Graph, in []*Node) []*Node {
			y := Depthwise(in[0], in[1], c.s)
			if native := testBackend.Name() == NativeBackend && c.k >= 3; native != (y.Type() == graph.NodeTypeConvGeneral) {
				t.Errorf("%s on %s: Depthwise ends in %s", name, testBackend.Name(), y.Type())
			}
			return []*Node{y, DepthwiseForward(in[0], in[1], c.s)}
		}, x, w)
		closeTo(t, name, got[0], want)
		closeTo(t, name+" forward only", got[1], want)
		checkGrad(t, name, func(g *Graph, in []*Node) *Node { return Depthwise(in[0], in[1], c.s) }, x, w)
	}
}

// TestDepthwiseRowGroups checks the forward pass stacking one, two and all
// k row windows at a time (the products of the groups summed, the last
// group carrying the gradient).
func TestDepthwiseRowGroups(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	x := randArr(rng, 2, 2, 7, 6)
	w := randArr(rng, 2, 1, 5, 5)
	want := naiveConv(x, w, 1, 2)
	for _, rows := range []int{1, 2, 5} {
		name := fmt.Sprintf("depthwise k5, %d row windows at a time", rows)
		got := run(t, func(g *Graph, in []*Node) []*Node { return []*Node{depthwiseStacked(in[0], in[1], 1, rows)} }, x, w)
		closeTo(t, name, got[0], want)
		checkGrad(t, name, func(g *Graph, in []*Node) *Node { return depthwiseStacked(in[0], in[1], 1, rows) }, x, w)
	}
}

func TestConv(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 9))
	for _, c := range []struct{ cin, cout, n, h, w, k, s int }{
		{1, 4, 2, 5, 5, 3, 1}, {3, 2, 1, 7, 6, 3, 2}, {2, 3, 2, 4, 4, 1, 1}, {2, 2, 1, 5, 5, 5, 2},
	} {
		name := fmt.Sprintf("conv %+v", c)
		x := randArr(rng, c.cin, c.n, c.h, c.w)
		w := randArr(rng, c.cout, c.cin, c.k, c.k)
		got := run(t, func(g *Graph, in []*Node) []*Node { return []*Node{Conv(in[0], in[1], c.s)} }, x, w)
		closeTo(t, name, got[0], naiveConv(x, w, c.s, 1))
		checkGrad(t, name, func(g *Graph, in []*Node) *Node { return Conv(in[0], in[1], c.s) }, x, w)
	}
}

func TestBatchNormTrain(t *testing.T) {
	rng := rand.New(rand.NewPCG(10, 11))
	x := randArr(rng, 3, 4, 2, 3)
	scale := randArr(rng, 3)
	bias := randArr(rng, 3)
	const eps = 1e-3
	out := run(t, func(g *Graph, in []*Node) []*Node {
		y, m, v := BatchNormTrain(in[0], in[1], in[2], eps)
		return []*Node{y, m, v}
	}, x, scale, bias)
	m := 4 * 2 * 3
	for c := 0; c < 3; c++ {
		var mean, vr float64
		for i := 0; i < m; i++ {
			mean += x.data[c*m+i]
		}
		mean /= float64(m)
		for i := 0; i < m; i++ {
			d := x.data[c*m+i] - mean
			vr += d * d
		}
		vr /= float64(m)
		if math.Abs(out[1][c]-mean) > 1e-12 || math.Abs(out[2][c]-vr) > 1e-12 {
			t.Fatalf("channel %d: mean %g var %g, want %g %g", c, out[1][c], out[2][c], mean, vr)
		}
		for i := 0; i < m; i++ {
			want := (x.data[c*m+i]-mean)/math.Sqrt(vr+eps)*scale.data[c] + bias.data[c]
			if math.Abs(out[0][c*m+i]-want) > 1e-12 {
				t.Fatalf("y[%d,%d] = %g, want %g", c, i, out[0][c*m+i], want)
			}
		}
	}
	checkGrad(t, "batchnorm", func(g *Graph, in []*Node) *Node {
		y, _, _ := BatchNormTrain(in[0], in[1], in[2], eps)
		return y
	}, x, scale, bias)
}

// TestBatchNormReLU6Train checks the fused op against batch norm followed
// by ReLU6, the forward-only variants against both, and the fused
// gradient (through the clamp mask) against finite differences. The input
// is scaled so that some outputs fall below 0 and some above 6.
func TestBatchNormReLU6Train(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 18))
	x := randArr(rng, 3, 4, 3, 2)
	scale := arr{dims: []int{3}, data: []float64{4, -3, 0.5}}
	bias := arr{dims: []int{3}, data: []float64{2, 3, 1}}
	const eps = 1e-3
	out := run(t, func(g *Graph, in []*Node) []*Node {
		y, m, v := BatchNormReLU6Train(in[0], in[1], in[2], eps)
		y0, _, _ := BatchNormTrain(in[0], in[1], in[2], eps)
		f, fm, fv := BatchNormForward(in[0], in[1], in[2], eps, true)
		f0, _, _ := BatchNormForward(in[0], in[1], in[2], eps, false)
		return []*Node{y, m, v, ReLU6(y0), f, fm, fv, f0, y0}
	}, x, scale, bias)
	low, high := 0, 0
	for i, want := range out[3] {
		if out[0][i] != want || out[4][i] != want {
			t.Fatalf("y[%d]: fused %g, forward-only %g, batch norm then ReLU6 %g", i, out[0][i], out[4][i], want)
		}
		if out[7][i] != out[8][i] {
			t.Fatalf("forward-only batch norm [%d] = %g, want %g", i, out[7][i], out[8][i])
		}
		if want == 0 {
			low++
		}
		if want == 6 {
			high++
		}
	}
	if low == 0 || high == 0 {
		t.Fatalf("test input does not reach both clamp bounds: %d at 0, %d at 6", low, high)
	}
	for c := 0; c < 3; c++ {
		if out[1][c] != out[5][c] || out[2][c] != out[6][c] {
			t.Fatalf("channel %d: statistics differ between the fused and forward-only ops", c)
		}
	}
	checkGrad(t, "batchnorm+relu6", func(g *Graph, in []*Node) *Node {
		y, _, _ := BatchNormReLU6Train(in[0], in[1], in[2], eps)
		return y
	}, x, scale, bias)
}

func TestReLU6Grad(t *testing.T) {
	x := arr{dims: []int{2, 4}, data: []float64{-1.5, -0.2, 0.3, 1, 2.5, 5.5, 6.5, 9}}
	checkGrad(t, "relu6", func(g *Graph, in []*Node) *Node { return ReLU6(graph.MulScalar(in[0], 1)) }, x)
	got := run(t, func(g *Graph, in []*Node) []*Node { return []*Node{ReLU6(in[0])} }, x)
	want := []float64{0, 0, 0.3, 1, 2.5, 5.5, 6, 6}
	for i := range want {
		if got[0][i] != want[i] {
			t.Fatalf("relu6(%g) = %g, want %g", x.data[i], got[0][i], want[i])
		}
	}
}

func TestHeadGrads(t *testing.T) {
	rng := rand.New(rand.NewPCG(12, 13))
	x := randArr(rng, 4, 3, 2, 2)
	w := randArr(rng, 5, 4)
	b := randArr(rng, 5)
	target := arr{dims: []int{3, 5}, data: make([]float64, 15)}
	for n := 0; n < 3; n++ {
		for k := 0; k < 5; k++ {
			target.data[n*5+k] = 0.02
		}
		target.data[n*5+n] = 0.92
	}
	checkGrad(t, "pool+dense+ce", func(g *Graph, in []*Node) *Node {
		return SoftmaxCrossEntropy(Dense(GlobalAvgPool(in[0]), in[1], in[2]), graph.Const(g, target.tensor()))
	}, x, w, b)
	// The loss value against a direct computation.
	out := run(t, func(g *Graph, in []*Node) []*Node {
		return []*Node{SoftmaxCrossEntropy(Dense(GlobalAvgPool(in[0]), in[1], in[2]), in[3])}
	}, x, w, b, target)
	var want float64
	for n := 0; n < 3; n++ {
		z := make([]float64, 5)
		for k := 0; k < 5; k++ {
			z[k] = b.data[k]
			for c := 0; c < 4; c++ {
				var avg float64
				for i := 0; i < 4; i++ {
					avg += x.data[(c*3+n)*4+i] / 4
				}
				z[k] += w.data[k*4+c] * avg
			}
		}
		var lse float64
		for _, v := range z {
			lse += math.Exp(v)
		}
		lse = math.Log(lse)
		for k := range z {
			want -= target.data[n*5+k] * (z[k] - lse) / 3
		}
	}
	if math.Abs(out[0][0]-want) > 1e-12 {
		t.Fatalf("cross entropy %g, want %g", out[0][0], want)
	}
}

func TestReleaseForgetsNodes(t *testing.T) {
	before := numCustom()
	rng := rand.New(rand.NewPCG(1, 1))
	run(t, func(g *Graph, in []*Node) []*Node { return []*Node{Depthwise(in[0], in[1], 1)} },
		randArr(rng, 2, 1, 4, 4), randArr(rng, 2, 1, 3, 3))
	if after := numCustom(); after != before {
		t.Fatalf("custom VJP table grew from %d to %d entries", before, after)
	}
}

// TestPlanMemory checks the memory plan of a small graph: new buffers for
// products and concatenations, element-wise ops writing into an input at
// its last use, buffers freed after their last consumer, outputs held.
func TestPlanMemory(t *testing.T) {
	g := graph.NewGraph(testBackend, "plan")
	defer g.Finalize()
	const n = 1000
	x := graph.Parameter(g, "x", shapes.Make(dtypes.Float32, n))
	a := graph.Mul(x, x)                     // new: 4n bytes (x is an input)
	b := graph.AddScalar(a, 1)               // written into a
	c := graph.Concatenate([]*Node{b, b}, 0) // new: 8n, then b is freed
	d := graph.ReduceSum(c, 0)               // 4 bytes, then c is freed
	e := graph.MulScalar(b, 3)               // b is an output below: new 4n
	p := PlanMemory(g, []*Node{d})
	if p.Peak != 12*n || p.PeakAt != c || len(p.Live) != 2 || p.Inputs != 4*n {
		t.Fatalf("plan of d: peak %d at %v, %d live, inputs %d; want %d at the concatenation, 2 live, inputs %d",
			p.Peak, p.PeakAt, len(p.Live), p.Inputs, 12*n, 4*n)
	}
	// b held as an output: it is not freed after the concatenation.
	p = PlanMemory(g, []*Node{d, b, e})
	if want := int64(12*n + 4); p.Peak != want || p.PeakAt != d {
		t.Fatalf("plan of d, b, e: peak %d at %v, want %d at the sum", p.Peak, p.PeakAt, want)
	}
	// An output is not overwritten: e needs a buffer of its own.
	p = PlanMemory(g, []*Node{b, e})
	if want := int64(8 * n); p.Peak != want || p.PeakAt != e {
		t.Fatalf("plan of b, e: peak %d at %v, want %d at the last product", p.Peak, p.PeakAt, want)
	}
}
