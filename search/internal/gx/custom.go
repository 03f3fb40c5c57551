package gx

import (
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

// Custom returns y, computed by the caller from inputs, as a node whose
// gradient with respect to inputs[i] is grads(v)[i], where v is the
// gradient at y; no gradient flows into the subgraph that computed y.
//
// GoMLX assigns VJPs per node, and a VJP returns gradients only for the
// node's direct inputs. Custom therefore adds to y a scalar zero made from
// a one-element slice of every input: the gradient reaching y is stashed
// by y's replacement node, and the one-element slices, whose direct inputs
// are the real inputs, return grads(v). The nodes GoMLX's default VJPs
// create along the zero's path are never consumed, so simplego never runs
// them. The forward cost is one pass adding a scalar.
func Custom(y *Node, inputs []*Node, grads func(v *Node) []*Node) *Node {
	var z *Node
	taps := make([]*Node, len(inputs))
	for i, in := range inputs {
		specs := make([]graph.SliceAxisSpec, in.Rank())
		for a := range specs {
			specs[a] = graph.AxisRange(0, 1)
		}
		taps[i] = graph.Slice(in, specs...)
		t := graph.Reshape(taps[i])
		if z == nil {
			z = t
		} else {
			z = graph.Add(z, t)
		}
	}
	z = graph.MulScalar(z, 0)
	out := graph.Add(y, z)
	// v is the gradient at out of the Gradient call in progress; gs are the
	// input gradients built from it (once per call).
	var v, gsFor *Node
	var gs []*Node
	setVJP(out, func(node *Node, vs []*Node, _ shapes.Shape) []*Node {
		v = vs[0]
		return []*Node{nil, graph.ZerosLike(z)}
	})
	for i, t := range taps {
		i := i
		setVJP(t, func(node *Node, _ []*Node, _ shapes.Shape) []*Node {
			if gsFor != v {
				gs, gsFor = grads(v), v
			}
			return []*Node{gs[i]}
		})
	}
	return out
}
