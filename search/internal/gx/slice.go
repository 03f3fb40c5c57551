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
	dims := v.Shape().Dimensions
	n := dims[axis]
	if stride > 1 {
		// Interleave stride-1 zeros after every element.
		exp := insertDim(dims, axis+1, 1)
		zdims := insertDim(dims, axis+1, stride-1)
		z := filled(v, 0, zdims...)
		v = graph.Concatenate([]*Node{graph.Reshape(v, exp...), z}, axis+1)
		nd := append([]int(nil), dims...)
		nd[axis] = n * stride
		v = graph.Reshape(v, nd...)
		n *= stride
	}
	parts := []*Node{}
	if start > 0 {
		parts = append(parts, zerosAlong(v, v, axis, start))
	}
	parts = append(parts, v)
	switch end := full - start - n; {
	case end > 0:
		parts = append(parts, zerosAlong(v, v, axis, end))
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
func PadZeros(x *Node, axis, lo, hi int) *Node { return padZerosAfter(x, x, axis, lo, hi) }

// padZerosAfter is PadZeros with zeros computed from ref (nil: x), so an
// executor running independent ops concurrently runs the padding only once
// ref is ready (see filled). Without padding it returns tie(x, ref).
func padZerosAfter(x, ref *Node, axis, lo, hi int) *Node {
	if ref == nil {
		ref = x
	}
	if lo == 0 && hi == 0 {
		if ref == x {
			return x
		}
		return tie(x, ref)
	}
	parts := []*Node{}
	if lo > 0 {
		parts = append(parts, zerosAlong(ref, x, axis, lo))
	}
	parts = append(parts, x)
	if hi > 0 {
		parts = append(parts, zerosAlong(ref, x, axis, hi))
	}
	if len(parts) == 1 {
		return x
	}
	return graph.Concatenate(parts, axis)
}

// zerosAlong returns zeros shaped like `like` except n along axis,
// computed from ref (see filled).
func zerosAlong(ref, like *Node, axis, n int) *Node {
	d := append([]int(nil), like.Shape().Dimensions...)
	d[axis] = n
	return filled(ref, 0, d...)
}

// tie returns x computed after ref: x plus a zero taken from ref, one pass
// over x (see filled).
func tie(x, ref *Node) *Node { return graph.Add(x, zeroOf(ref)) }

// Inner returns the sum over all elements of a*b, as one DotGeneral
// contracting every axis.
func Inner(a, b *Node) *Node {
	ax := iota(0, a.Rank())
	return graph.DotGeneral(a, ax, nil, b, ax, nil)
}

// first returns the first element of x as a scalar, with no gradient.
func first(x *Node) *Node {
	specs := make([]graph.SliceAxisSpec, x.Rank())
	for a := range specs {
		specs[a] = graph.AxisRange(0, 1)
	}
	return graph.StopGradient(graph.Reshape(graph.Slice(x, specs...)))
}

// zeroOf returns a scalar 0 computed from x (0 * its first element; NaN if
// that element is not finite, which only a diverged run sees). It is built
// once per x (see Release).
func zeroOf(x *Node) *Node {
	mu.Lock()
	z, ok := zeros[x]
	mu.Unlock()
	if ok {
		return z
	}
	z = graph.MulScalar(first(x), 0)
	mu.Lock()
	zeros[x] = z
	byGraphZeros[x.Graph()] = append(byGraphZeros[x.Graph()], x)
	mu.Unlock()
	return z
}

// filled returns a tensor of the given dims holding value, computed from
// ref rather than from constants alone. simplego, when it runs independent
// ops concurrently, starts an op as soon as its inputs are ready: a
// constant-only tensor would be materialized when the graph starts and held
// until used, and a gradient-side op that reads only forward values would
// run during the forward pass and hold its output until the backward pass.
// Tying such ops to the gradient keeps the memory of concurrent execution
// close to that of sequential execution.
func filled(ref *Node, value float64, dims ...int) *Node {
	return graph.BroadcastToDims(graph.AddScalar(zeroOf(ref), value), dims...)
}

func insertDim(dims []int, at, size int) []int {
	out := make([]int, 0, len(dims)+1)
	out = append(out, dims[:at]...)
	out = append(out, size)
	return append(out, dims[at:]...)
}
