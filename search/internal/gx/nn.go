package gx

import (
	"fmt"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

// OutSize is the output length of a convolution with padding k/2 on both
// sides: floor((n + 2*(k/2) - k) / stride) + 1.
func OutSize(n, k, stride int) int { return (n+2*(k/2)-k)/stride + 1 }

// Conv1x1 applies a bias-free 1x1 convolution: x [Cin,N,H,W], w [Cout,Cin]
// (or [Cout,Cin,1,1]) -> [Cout,N,H,W], as one matrix product over the
// 4-D x (no reshape: the backend copies a reshaped tensor that is still
// used elsewhere). Its VJP is two products whose outputs come out in the
// operands' layouts, so neither needs a transpose: dW = v x^T contracting
// N, H, W, and dx = W^T v contracting Cout.
func Conv1x1(x, w *Node) *Node {
	cin := x.Shape().Dimensions[0]
	cout := w.Shape().Dimensions[0]
	w2 := w
	if w.Rank() != 2 {
		w2 = graph.Reshape(w, cout, cin)
	}
	y := graph.DotGeneral(w2, []int{1}, nil, x, []int{0}, nil)
	setVJP(y, func(node *Node, vs []*Node, _ shapes.Shape) []*Node {
		v := vs[0]
		dw := graph.DotGeneral(v, []int{1, 2, 3}, nil, x, []int{1, 2, 3}, nil) // [cout, cin]
		dx := graph.DotGeneral(w2, []int{0}, nil, v, []int{0}, nil)            // [cin, N, H, W]
		return []*Node{dw, dx}
	})
	return y
}

// Conv applies a dense bias-free k x k convolution with stride s and padding
// k/2: x [Cin,N,H,W], w [Cout,Cin,k,k] -> [Cout,N,Ho,Wo], by gathering the
// k*k shifted windows (im2col) and one matrix product.
func Conv(x, w *Node, s int) *Node {
	d := x.Shape().Dimensions
	cin, n, h, wd := d[0], d[1], d[2], d[3]
	wdims := w.Shape().Dimensions
	cout, k := wdims[0], wdims[3]
	if wdims[1] != cin {
		panic(fmt.Sprintf("gx.Conv: weight %v does not match %d input channels", wdims, cin))
	}
	if k == 1 && s == 1 {
		return Conv1x1(x, w)
	}
	p := k / 2
	ho, wo := OutSize(h, k, s), OutSize(wd, k, s)
	xp := PadZeros(PadZeros(x, 2, p, p), 3, p, p)
	var wins []*Node
	for a := 0; a < k; a++ {
		r := SliceAxis(xp, 2, a, a+s*(ho-1)+1, s)
		for b := 0; b < k; b++ {
			win := SliceAxis(r, 3, b, b+s*(wo-1)+1, s)
			wins = append(wins, graph.Reshape(win, cin, 1, n, ho, wo))
		}
	}
	pm := wins[0]
	if len(wins) > 1 {
		pm = graph.Concatenate(wins, 1)
	}
	pm = graph.Reshape(pm, cin*k*k, n*ho*wo)
	y := MatMul(graph.Reshape(w, cout, cin*k*k), pm)
	return graph.Reshape(y, cout, n, ho, wo)
}

// bcastBlock is the width of the block bcastRows repeats.
const bcastBlock = 64

// bcastRows broadcasts v [C] to [C, M]: BroadcastInDim to a [C, 64] block
// (simplego's BroadcastInDim walks an index iterator per element, so it
// only builds the block), then one Concatenate of M/64 copies of the block
// and the remainder, which the backend runs as memory copies. Three nodes
// whatever M (a doubling chain needs log2 M).
//
// On NativeBackend, whose BroadcastInDim is a strided fill, it is one
// BroadcastInDim.
func bcastRows(v *Node, m int) *Node {
	c := v.Shape().Dimensions[0]
	col := graph.Reshape(v, c, 1)
	if m <= bcastBlock || native(v.Graph()) {
		return graph.BroadcastToDims(col, c, m)
	}
	block := graph.BroadcastToDims(col, c, bcastBlock)
	parts := make([]*Node, 0, m/bcastBlock+1)
	for i := 0; i < m/bcastBlock; i++ {
		parts = append(parts, block)
	}
	if r := m % bcastBlock; r > 0 {
		parts = append(parts, graph.BroadcastToDims(col, c, r))
	}
	return graph.Concatenate(parts, 1)
}

// channelDot returns the per-channel inner products sum a[c,...] b[c,...]
// of a and b [C, ...]: one DotGeneral batched over channels, contracting
// every other axis (contiguous, so the backend needs no transpose).
func channelDot(a, b *Node) *Node {
	ax := iota(1, a.Rank()-1)
	return graph.DotGeneral(a, ax, []int{0}, b, ax, []int{0})
}

// channelSums returns sum x[c,...] per channel of x [C, ...].
//
// On NativeBackend it is a ReduceSum (contiguous rows, vectorised).
func channelSums(x *Node) *Node {
	if native(x.Graph()) {
		return graph.ReduceSum(x, iota(1, x.Rank()-1)...)
	}
	d := x.Shape().Dimensions
	ones := filled(x, 1, d[1:]...)
	ax := iota(1, x.Rank()-1)
	return graph.DotGeneral(x, ax, nil, ones, iota(0, len(ax)), nil)
}

// bcastLike broadcasts v [C] to the shape of x [C, ...] (see bcastRows).
func bcastLike(v, x *Node) *Node {
	d := x.Shape().Dimensions
	return graph.Reshape(bcastRows(v, x.Shape().Size()/d[0]), d...)
}

// bnParts is the train-mode normalization of x [C,N,H,W], computed as
// xc * (scale*rstd) + bias with xc = x - mean, and what its backward pass
// needs. Everything stays 4-D: the backend copies a reshaped tensor that
// is still used elsewhere.
type bnParts struct {
	m               int
	xc, rstd, a     *Node // centred input; 1/sqrt(var+eps), scale*rstd [C]
	pre, mean, vari *Node
}

func bnForward(x, scale, bias *Node, eps float64) bnParts {
	d := x.Shape().Dimensions
	m := d[1] * d[2] * d[3]
	inv := 1 / float64(m)
	mean := graph.MulScalar(channelSums(x), inv)
	xc := graph.Sub(x, bcastLike(mean, x))
	vari := graph.MulScalar(channelDot(xc, xc), inv)
	rstd := graph.Reciprocal(graph.Sqrt(graph.AddScalar(vari, eps)))
	a := graph.Mul(scale, rstd)
	// The bias broadcast is tied to x (see filled): built from the bias
	// alone, a concurrent executor would materialize it when the graph
	// starts and hold it until this layer runs.
	pre := graph.Add(graph.Mul(xc, bcastLike(a, x)), bcastLike(graph.Add(bias, zeroOf(x)), x))
	return bnParts{m: m, xc: xc, rstd: rstd, a: a, pre: pre, mean: mean, vari: vari}
}

// backward returns dx, dscale and dbias from the gradient v at the
// normalized output: with xhat = xc*rstd, dbias = sum v,
// dscale = sum v*xhat and dx = a*(v - dbias/M - xhat*dscale/M), written as
// v*a + xc*(-a*rstd*dscale/M) + (-a*dbias/M) so that only xc is kept
// from the forward pass.
func (bn bnParts) backward(v *Node) (dx, dscale, dbias *Node) {
	inv := 1 / float64(bn.m)
	dbias = channelSums(v)
	dscale = graph.Mul(channelDot(v, bn.xc), bn.rstd)
	cx := graph.MulScalar(graph.Mul(graph.Mul(bn.a, bn.rstd), dscale), -inv)
	c0 := graph.MulScalar(graph.Mul(bn.a, dbias), -inv)
	a := graph.Add(bn.a, zeroOf(v)) // broadcast once v is known (see filled)
	dx = graph.Add(graph.Add(graph.Mul(v, bcastLike(a, v)), graph.Mul(bn.xc, bcastLike(cx, v))), bcastLike(c0, v))
	return dx, dscale, dbias
}

// BatchNormTrain normalizes x [C,N,H,W] with its own per-channel batch
// statistics and applies scale and bias [C]. It returns the output and the
// batch mean and biased variance. The gradient is written out (see
// Custom); the centred input is all it keeps from the forward pass.
func BatchNormTrain(x, scale, bias *Node, eps float64) (y, mean, variance *Node) {
	var bn bnParts
	zero, arrive := customTaps([]*Node{x, scale, bias}, func(v *Node) []*Node {
		dx, ds, db := bn.backward(v)
		return []*Node{dx, ds, db}
	})
	bn = bnForward(x, scale, bias, eps)
	return customOutput(bn.pre, zero, arrive), bn.mean, bn.vari
}

// BatchNormReLU6Train is BatchNormTrain followed by ReLU6, as one op: the
// clamp is the output node and its lower bound carries the custom gradient
// (see customTaps), so the op adds no pass over x; the gradient masks v
// where the output is 0 or 6 and goes through the batch-norm backward. It
// keeps the centred input and its own output.
func BatchNormReLU6Train(x, scale, bias *Node, eps float64) (y, mean, variance *Node) {
	var bn bnParts
	var out *Node
	zero, arrive := customTaps([]*Node{x, scale, bias}, func(v *Node) []*Node {
		dx, ds, db := bn.backward(reluMask(out, v))
		return []*Node{dx, ds, db}
	})
	bn = bnForward(x, scale, bias, eps)
	out = graph.Clamp(zero, bn.pre, graph.Scalar(x.Graph(), x.DType(), 6))
	setVJP(out, func(node *Node, vs []*Node, _ shapes.Shape) []*Node {
		arrive(vs[0])
		return []*Node{graph.ZerosLike(zero), nil, nil}
	})
	return out, bn.mean, bn.vari
}

// BatchNormForward is BatchNormTrain, followed by ReLU6 when relu6 is set,
// for graphs that take no gradient: no custom-gradient machinery.
func BatchNormForward(x, scale, bias *Node, eps float64, relu6 bool) (y, mean, variance *Node) {
	bn := bnForward(x, scale, bias, eps)
	y = bn.pre
	if relu6 {
		g := x.Graph()
		y = graph.Clamp(graph.ScalarZero(g, x.DType()), y, graph.Scalar(g, x.DType(), 6))
	}
	return y, bn.mean, bn.vari
}

// reluMask returns v where 0 < y < 6 and 0 elsewhere, y being a ReLU6
// output (0 < y < 6 exactly where the input was strictly inside). The
// bounds are computed from v, so the comparisons run in the backward pass
// (see filled).
func reluMask(y, v *Node) *Node {
	zero := zeroOf(v)
	inside := graph.LogicalAnd(graph.GreaterThan(y, zero), graph.LessThan(y, graph.AddScalar(zero, 6)))
	return graph.Where(inside, v, zero)
}

// ReLU6 is min(max(x, 0), 6) with gradient 1 strictly inside (0, 6). The
// gradient reads the mask from the output, so x need not be kept.
func ReLU6(x *Node) *Node {
	g := x.Graph()
	zero := graph.ScalarZero(g, x.DType())
	six := graph.Scalar(g, x.DType(), 6)
	y := graph.Clamp(zero, x, six)
	setVJP(y, func(node *Node, vs []*Node, _ shapes.Shape) []*Node {
		return []*Node{nil, reluMask(node, vs[0]), nil}
	})
	return y
}

// GlobalAvgPool averages x [C,N,H,W] over H and W, giving [C,N].
func GlobalAvgPool(x *Node) *Node {
	d := x.Shape().Dimensions
	s := graph.ReduceSum(graph.Reshape(x, d[0], d[1], d[2]*d[3]), 2)
	return graph.MulScalar(s, 1/float64(d[2]*d[3]))
}

// Dense maps features f [F,N] to logits [N,K] with weight [K,F] and bias [K].
func Dense(f, w, b *Node) *Node {
	z := DotGeneral(f, []int{0}, nil, w, []int{1}, nil) // [N,K]
	d := z.Shape().Dimensions
	return graph.Add(z, graph.BroadcastToDims(graph.Reshape(b, 1, d[1]), d[0], d[1]))
}

// SoftmaxCrossEntropy returns the mean over the batch of
// -sum_k target[n,k] * log_softmax(logits)[n,k]; logits and target are [N,K].
func SoftmaxCrossEntropy(logits, target *Node) *Node {
	d := logits.Shape().Dimensions
	n, k := d[0], d[1]
	mx := graph.StopGradient(graph.ReduceMax(logits, 1))
	z := graph.Sub(logits, graph.BroadcastToDims(graph.Reshape(mx, n, 1), n, k))
	lse := graph.Log(graph.ReduceSum(graph.Exp(z), 1))
	logp := graph.Sub(z, graph.BroadcastToDims(graph.Reshape(lse, n, 1), n, k))
	return graph.MulScalar(graph.ReduceAllSum(graph.Mul(target, logp)), -1/float64(n))
}

// BatchNormInfer normalizes x [C,N,H,W] with given per-channel statistics
// (inference mode) and applies scale and bias [C].
func BatchNormInfer(x, scale, bias, mean, variance *Node, eps float64) *Node {
	d := x.Shape().Dimensions
	c := d[0]
	m := d[1] * d[2] * d[3]
	x2 := graph.Reshape(x, c, m)
	zero := zeroOf(x) // ties the broadcasts to x (see filled)
	a := graph.Add(graph.Mul(scale, graph.Reciprocal(graph.Sqrt(graph.AddScalar(variance, eps)))), zero)
	shift := graph.Add(graph.Sub(bias, graph.Mul(mean, a)), zero)
	y2 := graph.Add(graph.Mul(x2, bcastRows(a, m)), bcastRows(shift, m))
	return graph.Reshape(y2, d...)
}
