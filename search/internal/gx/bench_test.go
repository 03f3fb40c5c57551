package gx

import (
	"fmt"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// benchGraph times forward+backward of f (gradient of the sum of its
// output with respect to every input) on float32 inputs.
func benchGraph(b *testing.B, f func(g *Graph, in []*Node) *Node, dims ...[]int) {
	g := graph.NewGraph(testBackend, "bench")
	defer g.Finalize()
	var params []*Node
	var args []any
	for i, d := range dims {
		params = append(params, graph.Parameter(g, fmt.Sprintf("p%d", i), shapes.Make(dtypes.Float32, d...)))
		t := tensors.FromShape(shapes.Make(dtypes.Float32, d...))
		tensors.MutableFlatData(t, func(f []float32) {
			for j := range f {
				f[j] = float32(j%13)*0.1 - 0.6
			}
		})
		args = append(args, t)
	}
	y := f(g, params)
	l := graph.ReduceAllSum(y)
	outs := append([]*Node{l}, graph.Gradient(l, params...)...)
	Release(g)
	g.Compile(outs...)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, r := range g.Run(args...) {
			r.FinalizeAll()
		}
	}
}

func BenchmarkDepthwise(b *testing.B) {
	for _, k := range []int{3, 5, 7} {
		b.Run(fmt.Sprintf("k%d_144x64x14x14", k), func(b *testing.B) {
			benchGraph(b, func(g *Graph, in []*Node) *Node { return Depthwise(in[0], in[1], 1) }, []int{144, 64, 14, 14}, []int{144, k, k})
		})
	}
}

func BenchmarkConv1x1(b *testing.B) {
	benchGraph(b, func(g *Graph, in []*Node) *Node { return Conv1x1(in[0], in[1]) }, []int{24, 64, 14, 14}, []int{144, 24})
}

func BenchmarkBatchNorm(b *testing.B) {
	benchGraph(b, func(g *Graph, in []*Node) *Node {
		y, _, _ := BatchNormTrain(in[0], in[1], in[2], 1e-3)
		return y
	}, []int{144, 64, 14, 14}, []int{144}, []int{144})
}

func BenchmarkReLU6(b *testing.B) {
	benchGraph(b, func(g *Graph, in []*Node) *Node { return ReLU6(in[0]) }, []int{144, 64, 14, 14})
}
