package gx

import (
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

// SliceAxis slices x along one axis: elements start, start+stride, ...
// below limit. Its VJP scatters the incoming gradient back with
// concatenations of zeros (simplego has no Pad).
func SliceAxis(x *Node, axis, start, limit, stride int) *Node {
	out := graph.SliceAxis(x, axis, graph.AxisRange(start, limit).Stride(stride))
	full := x.Shape().Dimensions[axis]
	setVJP(out, func(node *Node, vs []*Node, _ shapes.Shape) []*Node {
		return []*Node{PadAxis(vs[0], axis, start, stride, full)}
	})
	return out
}

// PadAxis places v's elements along axis at positions start, start+stride,
// ... of an axis of length full, with zeros everywhere else.
func PadAxis(v *Node, axis, start, stride, full int) *Node {
	g := v.Graph()
	dims := v.Shape().Dimensions
	n := dims[axis]
	if stride > 1 {
		// Interleave stride-1 zeros after every element.
		exp := insertDim(dims, axis+1, 1)
		zdims := insertDim(dims, axis+1, stride-1)
		z := graph.Zeros(g, shapes.Make(v.DType(), zdims...))
		v = graph.Concatenate([]*Node{graph.Reshape(v, exp...), z}, axis+1)
		nd := append([]int(nil), dims...)
		nd[axis] = n * stride
		v = graph.Reshape(v, nd...)
		n *= stride
	}
	parts := []*Node{}
	if start > 0 {
		parts = append(parts, zerosAlong(g, v, axis, start))
	}
	parts = append(parts, v)
	switch end := full - start - n; {
	case end > 0:
		parts = append(parts, zerosAlong(g, v, axis, end))
	case end < 0:
		// Only interleaved zeros lie beyond full.
		parts[len(parts)-1] = graph.SliceAxis(v, axis, graph.AxisRange(0, n+end))
	}
	if len(parts) == 1 {
		return parts[0]
	}
	return graph.Concatenate(parts, axis)
}

// PadZeros surrounds x with lo zeros before and hi zeros after along axis.
// Its gradient is the matching slice (Concatenate's own VJP).
func PadZeros(x *Node, axis, lo, hi int) *Node {
	g := x.Graph()
	parts := []*Node{}
	if lo > 0 {
		parts = append(parts, zerosAlong(g, x, axis, lo))
	}
	parts = append(parts, x)
	if hi > 0 {
		parts = append(parts, zerosAlong(g, x, axis, hi))
	}
	if len(parts) == 1 {
		return x
	}
	return graph.Concatenate(parts, axis)
}

func zerosAlong(g *Graph, like *Node, axis, n int) *Node {
	d := append([]int(nil), like.Shape().Dimensions...)
	d[axis] = n
	return graph.Zeros(g, shapes.Make(like.DType(), d...))
}

func insertDim(dims []int, at, size int) []int {
	out := make([]int, 0, len(dims)+1)
	out = append(out, dims[:at]...)
	out = append(out, size)
	return append(out, dims[at:]...)
}
