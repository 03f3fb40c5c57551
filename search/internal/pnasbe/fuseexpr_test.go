package pnasbe

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// rowsLike is the broadcast [C] -> [C, N, H, W] of the batch norm.
func rowsLike(v, x *graph.Node) *graph.Node {
	d := x.Shape().Dimensions
	c := d[0]
	return graph.Reshape(graph.BroadcastToDims(graph.Reshape(v, c, 1), c, x.Shape().Size()/c), d...)
}

// fusedCases are element-wise trees as the searcher's graphs build them:
// in[0], in[1] are [C, N, H, W], in[2..4] are [C].
var fusedCases = map[string]builderFn{
	"bn forward and ReLU6": func(g *graph.Graph, in []*graph.Node) *graph.Node {
		x := in[0]
		xc := graph.Sub(x, rowsLike(in[2], x))
		pre := graph.Add(graph.Mul(xc, rowsLike(in[3], x)), rowsLike(in[4], x))
		z := graph.ScalarZero(g, x.DType())
		y := graph.Clamp(z, pre, graph.Scalar(g, x.DType(), 6))
		return graph.Add(y, xc) // xc read twice: a root of its own
	},
	"bn variance": func(g *graph.Graph, in []*graph.Node) *graph.Node {
		x := in[0]
		xc := graph.Sub(x, rowsLike(in[2], x))
		ax := []int{1, 2, 3}
		v := graph.DotGeneral(xc, ax, []int{0}, xc, ax, []int{0})
		return graph.Add(graph.Mul(xc, rowsLike(in[3], x)), rowsLike(v, x))
	},
	"bn backward reductions": func(g *graph.Graph, in []*graph.Node) *graph.Node {
		y, v := in[0], in[1]
		z, six := graph.ScalarZero(g, y.DType()), graph.Scalar(g, y.DType(), 6)
		c := graph.Clamp(z, y, six)
		m := graph.Where(graph.LogicalAnd(graph.GreaterThan(c, z), graph.LessThan(c, six)), v, z)
		ax := []int{1, 2, 3}
		sum := graph.ReduceSum(m, ax...)
		d1 := graph.DotGeneral(m, ax, []int{0}, y, ax, []int{0})
		d2 := graph.DotGeneral(v, ax, []int{0}, m, ax, []int{0})
		return graph.Add(graph.Add(graph.Mul(m, rowsLike(sum, y)), rowsLike(d1, y)), graph.Mul(c, rowsLike(d2, y)))
	},
	"bn backward": func(g *graph.Graph, in []*graph.Node) *graph.Node {
		v, xc := in[0], in[1]
		return graph.Add(graph.Add(graph.Mul(v, rowsLike(in[2], v)), graph.Mul(xc, rowsLike(in[3], v))), rowsLike(in[4], v))
	},
	"ReLU6 mask inside a tree": func(g *graph.Graph, in []*graph.Node) *graph.Node {
		y, v := in[0], in[1]
		z, six := graph.ScalarZero(g, y.DType()), graph.Scalar(g, y.DType(), 6)
		c := graph.Clamp(z, y, six)
		inside := graph.LogicalAnd(graph.GreaterThan(c, z), graph.LessThan(c, graph.AddScalar(z, 6)))
		m := graph.Where(inside, graph.Mul(v, rowsLike(in[2], v)), z)
		return graph.Add(graph.Neg(m), c)
	},
	"other ops and bounds": func(g *graph.Graph, in []*graph.Node) *graph.Node {
		x, y := in[0], in[1]
		a := graph.Max(graph.Div(x, graph.AddScalar(graph.Abs(y), 1)), rowsLike(in[2], x))
		b := graph.Min(graph.Sub(rowsLike(in[3], x), a), graph.MulScalar(x, 0.5))
		return graph.Clamp(graph.Scalar(g, x.DType(), -1), b, graph.Scalar(g, x.DType(), 2))
	},
	"column broadcast": func(g *graph.Graph, in []*graph.Node) *graph.Node {
		// [C*N*H, W] plus a bias over the last axis, as a dense layer's.
		d := in[0].Shape().Dimensions
		w := d[3]
		x := graph.Reshape(in[0], in[0].Shape().Size()/w, w)
		b := graph.Reshape(graph.Slice(graph.Reshape(in[1], in[1].Shape().Size()), graph.AxisRange(0, w)), 1, w)
		return graph.MulScalar(graph.Add(x, graph.BroadcastToDims(b, x.Shape().Dimensions...)), 3)
	},
}

// TestFusedElementwise checks the fused element-wise trees bit for bit
// against the same graphs run op by op (one thread), and against simplego,
// on shapes whose rows straddle tiles and rows shorter than the fill
// threshold, in float32 and float64.
func TestFusedElementwise(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, dims := range [][]int{{5, 3, 17, 13}, {7, 4, 2, 3}, {3, 2, 32, 32}, {1, 1, 1, 1}, {2, 1, 1, 9}} {
		c := dims[0]
		ins := []*tensors.Tensor{randT(rng, -2, 8, dims...), randT(rng, -3, 3, dims...),
			randT(rng, -1, 1, c), randT(rng, 0.5, 2, c), randT(rng, -1, 1, c)}
		names := slices.Sorted(func(yield func(string) bool) {
			for k := range fusedCases {
				if !yield(k) {
					return
				}
			}
		})
		for _, name := range names {
			f := fusedCases[name]
			for _, dt := range []dtypes.DType{dtypes.Float32, dtypes.Float64} {
				label := fmt.Sprintf("%s %v %s", name, dims, dt)
				in := ins
				if dt == dtypes.Float64 {
					in = make([]*tensors.Tensor, len(ins))
					for i, x := range ins {
						v := tensors.MustCopyFlatData[float32](x)
						w := make([]float64, len(v))
						for j := range v {
							w[j] = float64(v[j])
						}
						in[i] = tensors.FromFlatDataAndDimensions(w, x.Shape().Dimensions...)
					}
				}
				EnableProfile(true)
				fused := runOn(t, pnasBackend, f, in)
				var keys []string
				for k := range prof.table {
					keys = append(keys, k)
				}
				EnableProfile(false)
				if !slices.ContainsFunc(keys, func(k string) bool { return strings.HasPrefix(k, "Fused[") }) {
					t.Errorf("%s: nothing fused (ops run: %v)", label, keys)
				}
				if name == "bn variance" && dt == dtypes.Float32 && !slices.ContainsFunc(keys, func(k string) bool { return strings.HasSuffix(k, "+RowDot") }) {
					t.Errorf("%s: the variance was not computed with its operand (ops run: %v)", label, keys)
				}
				if name == "bn backward reductions" && dt == dtypes.Float32 && !slices.ContainsFunc(keys, func(k string) bool { return strings.HasSuffix(k, "+RowSum+RowDot+RowDot") }) {
					t.Errorf("%s: the row reductions were not computed with their operand (ops run: %v)", label, keys)
				}
				if name != "column broadcast" && slices.Contains(keys, backends.OpTypeBroadcastInDim.String()) {
					t.Errorf("%s: a per-row broadcast was materialized (ops run: %v)", label, keys)
				}
				fuseElementwise = false
				plain := runOn(t, onePass, f, in)
				fuseElementwise = true
				for i := range plain {
					if math.Float32bits(fused[i]) != math.Float32bits(plain[i]) && !(fused[i] == 0 && plain[i] == 0) {
						t.Fatalf("%s: output[%d] fused %g, op by op %g", label, i, fused[i], plain[i])
					}
				}
				conform(t, label, tol, f, in...)
			}
		}
	}
}

var onePass = func() backends.Backend {
	b, err := New("parallelism=1")
	if err != nil {
		panic(err)
	}
	return b
}()
