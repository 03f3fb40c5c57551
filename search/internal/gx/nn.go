package gx

import (
	"fmt"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// OutSize is the output length of a convolution with padding k/2 on both
// sides: floor((n + 2*(k/2) - k) / stride) + 1.
func OutSize(n, k, stride int) int { return (n+2*(k/2)-k)/stride + 1 }

// Conv1x1 applies a bias-free 1x1 convolution: x [Cin,N,H,W], w [Cout,Cin]
// (or [Cout,Cin,1,1]) -> [Cout,N,H,W], as one matrix product.
func Conv1x1(x, w *Node) *Node {
	d := x.Shape().Dimensions
	cout := w.Shape().Dimensions[0]
	if w.Rank() != 2 {
		w = graph.Reshape(w, cout, d[0])
	}
	y := MatMul(w, graph.Reshape(x, d[0], d[1]*d[2]*d[3]))
	return graph.Reshape(y, cout, d[1], d[2], d[3])
}

// Depthwise applies a bias-free depthwise k x k convolution with stride s
// and padding k/2: x [C,N,H,W], w [C,k,k] (or [C,1,k,k]) -> [C,N,Ho,Wo].
//
// Rows are handled by stacking the k strided row windows of the row-padded
// input into xs [C, N*Ho, k, W]; columns, with their padding and stride, by
// a banded matrix T[c, a, j, u] = w[c, a, u - j*s + k/2] (zero off the
// band), built from the kernel by a product with a constant 0/1 tensor. One
// DotGeneral batched over channels contracts the k*W window. The gradient
// is written out (see Custom): dT from v and xs, and dx as the same banded
// product applied to the row windows of v dilated by the stride.
func Depthwise(x, w *Node, s int) *Node {
	g := x.Graph()
	d := x.Shape().Dimensions
	c, n, h, wd := d[0], d[1], d[2], d[3]
	k := w.Shape().Dimensions[w.Rank()-1]
	if w.Rank() != 3 {
		w = graph.Reshape(w, c, k, k)
	}
	p := k / 2
	ho, wo := OutSize(h, k, s), OutSize(wd, k, s)
	sel := bandConst(g, x.DType(), k, wo, wd, s) // [k(b), wo, wd]
	band := func(w *Node) *Node {                // [c, k(a), wo, wd]
		return graph.DotGeneral(w, []int{2}, nil, sel, []int{0}, nil)
	}
	xs := stackRows(PadZeros(x, 2, p, p), k, 0, 1, s, ho) // [c, n*ho, k, wd]
	t := band(w)
	y := graph.DotGeneral(xs, []int{2, 3}, []int{0}, t, []int{1, 3}, []int{0}) // [c, n*ho, wo]
	y = graph.Reshape(y, c, n, ho, wo)
	return Custom(y, []*Node{x, w}, func(v *Node) []*Node {
		v3 := graph.Reshape(v, c, n*ho, wo)
		dt := graph.DotGeneral(v3, []int{1}, []int{0}, xs, []int{1}, []int{0}) // [c, wo, k, wd]
		dw := graph.DotGeneral(dt, []int{1, 3}, nil, sel, []int{1, 2}, nil)    // [c, k(a), k(b)]
		vd := v
		if s > 1 {
			vd = dilateRows(v, s) // [c, n, ho*s, wo]
		}
		rows := vd.Shape().Dimensions[2]
		lo := k - 1 - p
		hi := h + k - 1 - lo - rows
		if hi >= 0 {
			vd = PadZeros(vd, 2, lo, hi)
		} else {
			vd = PadZeros(graph.SliceAxis(vd, 2, graph.AxisRange(0, rows+hi)), 2, lo, 0)
		}
		vs := stackRows(vd, k, k-1, -1, 1, h)                                       // [c, n*h, k, wo], window a at rows h+k-1-a
		dx := graph.DotGeneral(vs, []int{2, 3}, []int{0}, t, []int{1, 2}, []int{0}) // [c, n*h, wd]
		dx = graph.Reshape(dx, c, n, h, wd)
		return []*Node{dx, graph.Reshape(dw, w.Shape().Dimensions...)}
	})
}

// stackRows returns [C, N*rows, k, W] whose window a holds rows
// first+dir*a + s*i (i < rows) of x [C,N,H,W].
func stackRows(x *Node, k, first, dir, s, rows int) *Node {
	d := x.Shape().Dimensions
	c, n, w := d[0], d[1], d[3]
	parts := make([]*Node, k)
	for a := 0; a < k; a++ {
		start := first + dir*a
		r := graph.SliceAxis(x, 2, graph.AxisRange(start, start+s*(rows-1)+1).Stride(s))
		parts[a] = graph.Reshape(r, c, n, rows, 1, w)
	}
	xs := parts[0]
	if k > 1 {
		xs = graph.Concatenate(parts, 3)
	}
	return graph.Reshape(xs, c, n*rows, k, w)
}

// dilateRows inserts s-1 zero rows after every row of x [C,N,H,W], giving
// [C,N,H*s,W].
func dilateRows(x *Node, s int) *Node {
	d := x.Shape().Dimensions
	z := graph.Zeros(x.Graph(), shapes.Make(x.DType(), d[0], d[1], d[2], s-1, d[3]))
	y := graph.Concatenate([]*Node{graph.Reshape(x, d[0], d[1], d[2], 1, d[3]), z}, 3)
	return graph.Reshape(y, d[0], d[1], d[2]*s, d[3])
}

// bandConst returns S[b, j, w] = 1 where w == j*s + b - k/2, else 0.
func bandConst(g *Graph, dt dtypes.DType, k, wo, wd, s int) *Node {
	t := tensors.FromShape(shapes.Make(dtypes.Float32, k, wo, wd))
	tensors.MutableFlatData(t, func(f []float32) {
		for b := 0; b < k; b++ {
			for j := 0; j < wo; j++ {
				if col := j*s + b - k/2; col >= 0 && col < wd {
					f[(b*wo+j)*wd+col] = 1
				}
			}
		}
	})
	c := graph.ConstTensor(g, t)
	if dt != dtypes.Float32 {
		c = graph.ConvertDType(c, dt)
	}
	return c
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

// bcastRows broadcasts v [C] to [C, M] by repeated doubling
// concatenation (memory copies; simplego's BroadcastInDim walks an index
// iterator per element).
func bcastRows(v *Node, m int) *Node {
	c := v.Shape().Dimensions[0]
	cur := graph.Reshape(v, c, 1)
	var parts []*Node
	for width := 1; ; width *= 2 {
		if m&width != 0 {
			parts = append(parts, cur)
		}
		if 2*width > m {
			break
		}
		cur = graph.Concatenate([]*Node{cur, cur}, 1)
	}
	if len(parts) == 1 {
		return parts[0]
	}
	return graph.Concatenate(parts, 1)
}

// rowSums sums x [C, M] over M as a product with a vector of ones.
func rowSums(x *Node) *Node {
	m := x.Shape().Dimensions[1]
	ones := graph.Ones(x.Graph(), shapes.Make(x.DType(), m))
	return graph.DotGeneral(x, []int{1}, nil, ones, []int{0}, nil)
}

// BatchNormTrain normalizes x [C,N,H,W] with its own per-channel batch
// statistics and applies scale and bias [C]. It returns the output and the
// batch mean and biased variance. The gradient is written out (see Custom):
// with xhat the normalized input and v the incoming gradient,
// dbias = sum v, dscale = sum v*xhat and
// dx = scale/std * (v - dbias/M - xhat*dscale/M).
func BatchNormTrain(x, scale, bias *Node, eps float64) (y, mean, variance *Node) {
	d := x.Shape().Dimensions
	c := d[0]
	m := d[1] * d[2] * d[3]
	x2 := graph.Reshape(x, c, m)
	inv := 1 / float64(m)
	mean = graph.MulScalar(rowSums(x2), inv)
	xc := graph.Sub(x2, bcastRows(mean, m))
	variance = graph.MulScalar(rowSums(graph.Mul(xc, xc)), inv)
	rstd := graph.Reciprocal(graph.Sqrt(graph.AddScalar(variance, eps)))
	xhat := graph.Mul(xc, bcastRows(rstd, m))
	y2 := graph.Add(graph.Mul(xhat, bcastRows(scale, m)), bcastRows(bias, m))
	y = Custom(graph.Reshape(y2, d...), []*Node{x, scale, bias}, func(v *Node) []*Node {
		v2 := graph.Reshape(v, c, m)
		db := rowSums(v2)
		ds := rowSums(graph.Mul(v2, xhat))
		t := graph.Sub(v2, bcastRows(graph.MulScalar(db, inv), m))
		t = graph.Sub(t, graph.Mul(xhat, bcastRows(graph.MulScalar(ds, inv), m)))
		dx := graph.Mul(t, bcastRows(graph.Mul(scale, rstd), m))
		return []*Node{graph.Reshape(dx, d...), ds, db}
	})
	return y, mean, variance
}

// ReLU6 is min(max(x, 0), 6) with gradient 1 strictly inside (0, 6).
func ReLU6(x *Node) *Node {
	g := x.Graph()
	zero := graph.ScalarZero(g, x.DType())
	six := graph.Scalar(g, x.DType(), 6)
	y := graph.Clamp(zero, x, six)
	setVJP(y, func(node *Node, vs []*Node, _ shapes.Shape) []*Node {
		inside := graph.LogicalAnd(graph.GreaterThan(x, zero), graph.LessThan(x, six))
		return []*Node{nil, graph.Where(inside, vs[0], graph.ZerosLike(vs[0])), nil}
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
	a := graph.Mul(scale, graph.Reciprocal(graph.Sqrt(graph.AddScalar(variance, eps))))
	shift := graph.Sub(bias, graph.Mul(mean, a))
	y2 := graph.Add(graph.Mul(x2, bcastRows(a, m)), bcastRows(shift, m))
	return graph.Reshape(y2, d...)
}
