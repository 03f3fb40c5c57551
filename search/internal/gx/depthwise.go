package gx

import (
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// maxStack is the most row windows Depthwise stacks at once: a stack is a
// transient of maxStack times the map, so larger kernels are handled in
// groups whose products are summed (or concatenated, for dw).
const maxStack = 3

// tapsMaxK is the largest kernel whose weight gradient is computed tap by
// tap (see depthwiseDW).
const tapsMaxK = 3

// Depthwise applies a bias-free depthwise k x k convolution with stride s
// and padding k/2: x [C,N,H,W], w [C,k,k] (or [C,1,k,k]) -> [C,N,Ho,Wo].
//
// Rows are handled by stacking strided row windows of the row-padded input
// into xs [C, N*Ho, g, W] (g <= maxStack windows at a time); columns, with
// their padding and stride, by a banded matrix T[c, a, j, u] =
// w[c, a, u - j*s + k/2] (zero off the band), built from the kernel by a
// product with a constant 0/1 tensor. One DotGeneral batched over channels
// contracts each g*W window; the groups' products are summed.
//
// The gradient is written out and keeps nothing larger than x alive: the
// backward pass rebuilds what it needs from x, which the network keeps
// anyway (it is the previous activation's output).
//
//   - dx is the same banded product applied to row windows of the output
//     gradient v (per row phase when strided, see depthwiseDX).
//   - dw is, for k <= 3, one per-channel dot product of v with each of the
//     k*k shifted windows of x; for larger kernels, a banded dT from the
//     transposed v and transposed row windows of x (contracting N*Ho, so
//     neither operand needs the implicit transposes of the backend's
//     DotGeneral), reduced to dw by the constant band tensor.
//
// Successive groups are tied by data dependencies (see tie), so an
// executor running independent ops concurrently still builds one stack at
// a time; dx waits for dw.
//
// The band of the last group carries the custom gradient (see
// customTaps), so the forward pass costs nothing beyond the products.
//
// On pnas's own backend (see NativeDepthwise) Depthwise is one
// ConvGeneral instead, and its gradients are the two ConvGenerals of
// depthwiseConv, which that backend runs as depthwise kernels.
func Depthwise(x, w *Node, s int) *Node {
	if nativeDepthwise(x, w) {
		return depthwiseConv(x, w, s)
	}
	return depthwiseStacked(x, w, s, maxStack)
}

// depthwiseStacked is Depthwise stacking up to rows row windows at once in
// the forward pass (the backward pass always uses maxStack).
func depthwiseStacked(x, w *Node, s, rows int) *Node {
	g := x.Graph()
	d := x.Shape().Dimensions
	c, n, h, wd := d[0], d[1], d[2], d[3]
	k := w.Shape().Dimensions[w.Rank()-1]
	wShape := w.Shape().Dimensions
	p := k / 2
	ho, wo := OutSize(h, k, s), OutSize(wd, k, s)
	sel := bandConst(g, x.DType(), k, wo, wd, s) // [k(b), wo, wd]
	w3 := graph.StopGradient(w)
	if w.Rank() != 3 {
		w3 = graph.Reshape(w3, c, k, k)
	}
	t := graph.DotGeneral(w3, []int{2}, nil, sel, []int{0}, nil) // [c, k(a), wo, wd]
	zero, arrive := customTaps([]*Node{x, w}, func(v *Node) []*Node {
		v4 := graph.Reshape(v, c, n, ho, wo)
		dw := depthwiseDW(x, v4, sel, k, s)
		return []*Node{depthwiseDX(v4, t, dw, k, s, h, wd), graph.Reshape(dw, wShape...)}
	})
	rows = max(rows, 1)
	var y, prev *Node
	for a0 := 0; a0 < k; a0 += rows {
		na := min(rows, k-a0)
		xp := padZerosAfter(x, prev, 2, p, p)
		xs := stackRows(xp, na, a0, 1, s, ho) // [c, n*ho, na, wd]
		ta := t
		if na != k {
			ta = graph.SliceAxis(t, 1, graph.AxisRange(a0, a0+na)) // [c, na, wo, wd]
		}
		last := a0+na == k
		if last {
			ta = graph.Add(graph.StopGradient(ta), zero)
		}
		part := graph.DotGeneral(xs, []int{2, 3}, []int{0}, ta, []int{1, 3}, []int{0}) // [c, n*ho, wo]
		if last {
			tc := ta
			setVJP(part, func(node *Node, vs []*Node, _ shapes.Shape) []*Node {
				arrive(vs[0])
				return []*Node{nil, graph.ZerosLike(tc)}
			})
		} else {
			// The sum hands every part the same gradient; only the last
			// passes it on.
			setVJP(part, func(node *Node, vs []*Node, _ shapes.Shape) []*Node { return []*Node{nil, nil} })
		}
		if y == nil {
			y = part
		} else {
			y = graph.Add(y, part)
		}
		prev = part
	}
	return graph.Reshape(y, c, n, ho, wo)
}

// DepthwiseForward is Depthwise for graphs that take no gradient: all k
// row windows in one product and no custom-gradient machinery (a graph
// that keeps nothing for a backward pass is not made larger by the stack).
func DepthwiseForward(x, w *Node, s int) *Node {
	if nativeDepthwise(x, w) {
		return depthwiseConv(x, w, s)
	}
	d := x.Shape().Dimensions
	c, n, h, wd := d[0], d[1], d[2], d[3]
	k := w.Shape().Dimensions[w.Rank()-1]
	ho, wo := OutSize(h, k, s), OutSize(wd, k, s)
	sel := bandConst(x.Graph(), x.DType(), k, wo, wd, s)
	w3 := w
	if w.Rank() != 3 {
		w3 = graph.Reshape(w, c, k, k)
	}
	t := graph.DotGeneral(w3, []int{2}, nil, sel, []int{0}, nil) // [c, k(a), wo, wd]
	xs := stackRows(PadZeros(x, 2, k/2, k/2), k, 0, 1, s, ho)    // [c, n*ho, k, wd]
	y := graph.DotGeneral(xs, []int{2, 3}, []int{0}, t, []int{1, 3}, []int{0})
	return graph.Reshape(y, c, n, ho, wo)
}

// depthwiseDX is the input gradient of Depthwise, [c, n, h, wd], from the
// output gradient v [c, n, ho, wo] and the band t [c, k, wo, wd]: input row
// r receives v's row i through kernel row a = r + p - i*s. With stride 1 it
// is a banded product over the k row windows of the row-padded v. With a
// larger stride the input rows are split by phase r mod s (polyphase): the
// rows of one phase see only the kernel rows a = r + p (mod s), so each
// phase is a banded product over about k/s row windows of v, and the
// phases are interleaved back. (Dilating v by the stride instead would
// multiply s-fold the work, on rows of zeros.) after is the op the first
// stack waits for.
func depthwiseDX(v, t, after *Node, k, s, h, wd int) *Node {
	d := v.Shape().Dimensions
	c, n, ho := d[0], d[1], d[2]
	p := k / 2
	nq := (h + s - 1) / s // rows per phase
	phases := make([]*Node, s)
	prev := after
	for rho := 0; rho < s; rho++ {
		a0 := (rho + p) % s
		na := 0 // kernel rows of this phase: a0, a0+s, ...
		for a := a0; a < k; a += s {
			na++
		}
		if na == 0 {
			phases[rho] = filled(v, 0, c, n, nq, 1, wd)
			continue
		}
		// Input row rho + s*q takes v's row q + d0 - j through kernel row
		// a0 + s*j (j < na), maxStack windows at a time.
		d0 := (rho + p - a0) / s
		lo := max(0, na-1-d0)
		hi := max(0, nq-1+d0-(ho-1))
		var dx *Node
		for j0 := 0; j0 < na; j0 += maxStack {
			nj := min(maxStack, na-j0)
			vp := padZerosAfter(v, prev, 2, lo, hi)
			vs := stackRows(vp, nj, d0+lo-j0, -1, 1, nq) // [c, n*nq, nj, wo]
			a := a0 + s*j0
			ts := t
			if nj != k {
				ts = graph.SliceAxis(t, 1, graph.AxisRange(a, a+s*(nj-1)+1).Stride(s)) // [c, nj, wo, wd]
			}
			part := graph.DotGeneral(vs, []int{2, 3}, []int{0}, ts, []int{1, 2}, []int{0}) // [c, n*nq, wd]
			if dx == nil {
				dx = part
			} else {
				dx = graph.Add(dx, part)
			}
			prev = part
		}
		phases[rho] = graph.Reshape(dx, c, n, nq, 1, wd)
	}
	if s == 1 {
		return graph.Reshape(phases[0], c, n, h, wd)
	}
	dx := graph.Reshape(graph.Concatenate(phases, 3), c, n, nq*s, wd)
	if nq*s > h {
		dx = graph.SliceAxis(dx, 2, graph.AxisRange(0, h))
	}
	return dx
}

// depthwiseDW is the kernel gradient of Depthwise, [c, k, k], from the
// input x [c, n, h, wd] and the output gradient v [c, n, ho, wo]. Its
// stacks are built from v-dependent copies of x (see filled), so they are
// built in the backward pass.
func depthwiseDW(x, v, sel *Node, k, s int) *Node {
	d := x.Shape().Dimensions
	c, n, wd := d[0], d[1], d[3]
	vd := v.Shape().Dimensions
	ho, wo := vd[2], vd[3]
	p := k / 2
	if k <= tapsMaxK {
		// One shifted window of the padded input per tap, each reduced
		// against v by a per-channel dot product; one kernel row at a time.
		v2 := graph.Reshape(v, c, n*ho*wo)
		taps := make([]*Node, 0, k*k)
		prev := v
		for a := 0; a < k; a++ {
			xp := padZerosAfter(padZerosAfter(x, prev, 2, p, p), prev, 3, p, p)
			for b := 0; b < k; b++ {
				win := graph.Slice(xp, graph.AxisRange(), graph.AxisRange(),
					graph.AxisRange(a, a+s*(ho-1)+1).Stride(s), graph.AxisRange(b, b+s*(wo-1)+1).Stride(s))
				dot := graph.DotGeneral(v2, []int{1}, []int{0}, graph.Reshape(win, c, n*ho*wo), []int{1}, []int{0})
				taps = append(taps, graph.Reshape(dot, c, 1))
				prev = dot
			}
		}
		dw := taps[0]
		if len(taps) > 1 {
			dw = graph.Concatenate(taps, 1)
		}
		return graph.Reshape(dw, c, k, k)
	}
	// Banded: dT[c, j, a, u] = sum over (n, i) of v[c, n, i, j] x[c, n, i*s+a-p, u].
	vt := graph.Reshape(graph.TransposeAllAxes(v, 0, 3, 1, 2), c, wo, n*ho) // [c, wo, n*ho]
	xt := graph.TransposeAllAxes(padZerosAfter(x, v, 2, p, p), 0, 3, 1, 2)  // [c, wd, n, h+2p]
	var dws []*Node
	for a0 := 0; a0 < k; a0 += maxStack {
		na := min(maxStack, k-a0)
		src := xt
		if len(dws) > 0 {
			src = tie(xt, dws[len(dws)-1])
		}
		parts := make([]*Node, na)
		for i := range parts {
			a := a0 + i
			r := graph.SliceAxis(src, 3, graph.AxisRange(a, a+s*(ho-1)+1).Stride(s)) // [c, wd, n, ho]
			parts[i] = graph.Reshape(r, c, 1, wd, n*ho)
		}
		xs := parts[0]
		if na > 1 {
			xs = graph.Concatenate(parts, 1) // [c, na, wd, n*ho]
		}
		dt := graph.DotGeneral(vt, []int{2}, []int{0}, xs, []int{3}, []int{0})           // [c, wo, na, wd]
		dws = append(dws, graph.DotGeneral(dt, []int{1, 3}, nil, sel, []int{1, 2}, nil)) // [c, na, k(b)]
	}
	if len(dws) == 1 {
		return dws[0]
	}
	return graph.Concatenate(dws, 1)
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

// NativeBackend is the name of the backend that runs depthwise
// convolutions natively (pnas's own, package search/internal/pnasbe).
const NativeBackend = "pnas"

// nativeDepthwise reports whether Depthwise should be one ConvGeneral: on
// NativeBackend, with a kernel of at least 3 (k = 1 would need a negative
// padding in the kernel gradient).
func nativeDepthwise(x, w *Node) bool {
	k := w.Shape().Dimensions[w.Rank()-1]
	return native(x.Graph()) && k >= 3
}

// native reports whether g runs on NativeBackend.
func native(g *Graph) bool { return g.Backend().Name() == NativeBackend }

// cnhw is the ConvGeneral axes configuration of a depthwise convolution in
// the layout [C, N, H, W] with kernels [C, 1, k, k].
var cnhw = graph.ConvolveAxesConfig{
	InputBatch: 1, InputChannels: 0, InputSpatial: []int{2, 3},
	KernelInputChannels: 1, KernelOutputChannels: 0, KernelSpatial: []int{2, 3},
	OutputBatch: 1, OutputChannels: 0, OutputSpatial: []int{2, 3},
}

// filterAxes computes a depthwise kernel gradient as a convolution of x
// (its channel axis as the batch, grouped by C) with the output gradient
// as the kernel.
var filterAxes = graph.ConvolveAxesConfig{
	InputBatch: 0, InputChannels: 1, InputSpatial: []int{2, 3},
	KernelInputChannels: 1, KernelOutputChannels: 0, KernelSpatial: []int{2, 3},
	OutputBatch: 1, OutputChannels: 0, OutputSpatial: []int{2, 3},
}

// depthwiseConv is Depthwise as one grouped ConvGeneral (groups = C,
// stride s, padding k/2), with the standard gradients written as
// ConvGenerals too:
//
//   - dx: the output gradient v dilated by s (input dilation), convolved
//     with the spatially reversed kernel, stride 1, padding (k-1-p,
//     k-1-p+r) where p = k/2 and r = (H+2p-k) mod s;
//   - dw: x with its channels as the batch (batch groups = C) convolved
//     with v as the kernel, kernel dilation s, padding (p, p-r).
func depthwiseConv(x, w *Node, s int) *Node {
	d := x.Shape().Dimensions
	c, h, wd := d[0], d[2], d[3]
	k := w.Shape().Dimensions[w.Rank()-1]
	p := k / 2
	w4 := w
	if w.Rank() != 4 {
		w4 = graph.Reshape(w, c, 1, k, k)
	}
	y := graph.ConvGeneral(x, w4, cnhw, []int{s, s}, [][2]int{{p, p}, {p, p}}, nil, nil, c, 1)
	setVJP(y, func(node *Node, vs []*Node, _ shapes.Shape) []*Node {
		v := vs[0]
		rh, rw := (h+2*p-k)%s, (wd+2*p-k)%s
		dx := graph.ConvGeneral(v, graph.Reverse(graph.StopGradient(w4), 2, 3), cnhw, []int{1, 1},
			[][2]int{{k - 1 - p, k - 1 - p + rh}, {k - 1 - p, k - 1 - p + rw}}, []int{s, s}, nil, c, 1)
		dw := graph.ConvGeneral(graph.StopGradient(x), v, filterAxes, []int{1, 1},
			[][2]int{{p, p - rh}, {p, p - rw}}, nil, []int{s, s}, 1, c)
		return []*Node{dx, dw}
	})
	return y
}
