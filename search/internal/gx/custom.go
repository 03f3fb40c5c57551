package gx

import (
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

// customTaps makes a subgraph one differentiable op with hand-written
// input gradients. It returns a scalar zero built from one-element slices
// ("taps") of every input, and arrive, to be called from the VJP of the
// op's output node with the gradient v arriving there.
//
// GoMLX assigns VJPs per node, and a VJP returns gradients only for the
// node's direct inputs. The caller therefore folds zero into a small direct
// input of its output node (a carrier: a band matrix, a clamp bound, or the
// output itself, see Custom) and gives the output node a VJP that calls
// arrive(v) and returns zeros for the carrier and nil for every other input,
// so no gradient flows into the subgraph that computed the output. The
// zeros reach the taps, whose direct inputs are the real inputs, and the
// taps return grads(v). The nodes GoMLX's default VJPs create along the
// zero's path are scalars or carrier-sized.
func customTaps(inputs []*Node, grads func(v *Node) []*Node) (zero *Node, arrive func(v *Node)) {
	taps := make([]*Node, len(inputs))
	for i, in := range inputs {
		specs := make([]graph.SliceAxisSpec, in.Rank())
		for a := range specs {
			specs[a] = graph.AxisRange(0, 1)
		}
		taps[i] = graph.Slice(in, specs...)
		t := graph.Reshape(taps[i])
		if zero == nil {
			zero = t
		} else {
			zero = graph.Add(zero, t)
		}
	}
	zero = graph.MulScalar(zero, 0)
	// v is the gradient at the output in the Gradient call in progress; gs
	// are the input gradients built from it (once per call).
	var v, gsFor *Node
	var gs []*Node
	for i, t := range taps {
		setVJP(t, func(node *Node, _ []*Node, _ shapes.Shape) []*Node {
			if gsFor != v {
				gs, gsFor = grads(v), v
			}
			return []*Node{gs[i]}
		})
	}
	return zero, func(vOut *Node) { v = vOut }
}

// Custom returns y, computed by the caller from inputs, as a node whose
// gradient with respect to inputs[i] is grads(v)[i], where v is the
// gradient at y; no gradient flows into the subgraph that computed y.
//
// The carrier is y itself: the output adds the scalar zero of customTaps
// to y, which costs one pass over y. Callers should build y after calling
// customTaps when they can (BatchNormTrain does), so the one-element taps
// run before y's subgraph and do not keep an input alive; Custom builds
// the taps after y. Ops whose last node has a small
// direct input use that input as the carrier instead (Depthwise,
// BatchNormReLU6Train).
func Custom(y *Node, inputs []*Node, grads func(v *Node) []*Node) *Node {
	zero, arrive := customTaps(inputs, grads)
	return customOutput(y, zero, arrive)
}

// customOutput adds the carrier zero to y and gives the sum the VJP that
// hands the arriving gradient to the taps.
func customOutput(y, zero *Node, arrive func(v *Node)) *Node {
	out := graph.Add(y, zero)
	setVJP(out, func(node *Node, vs []*Node, _ shapes.Shape) []*Node {
		arrive(vs[0])
		return []*Node{nil, graph.ZerosLike(zero)}
	})
	return out
}
