package pnasbe

import (
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/pnasml/pnas/runtime/kernels"
)

// Element-wise fusion. A tree of float element-wise ops (Add, Sub, Mul,
// Div, Max, Min, Neg, Clamp and the fused clamp-gradient mask) whose
// inner values have no other reader runs as one op: the output is computed
// in tiles of exprTile elements, each tile going through the ops in order
// with the intermediate values in per-goroutine tile registers, so nothing
// in between is written to memory. Its inputs (leaves) are read in place:
// full tensors of the output's size, scalars, and per-row broadcasts, whose
// element at flat index i is src[(i/inner) % n] (the batch-norm scale,
// shift and mean broadcast over [C, N, H, W], a bias broadcast over the
// batch). A BroadcastInDim read only by fused ops is never materialized.
//
// The output is written over an input read in full when this op is the
// input's last reader (each element is read before it is written).
//
// Each op computes exactly what it computes unfused (one rounding per op,
// no contraction into FMAs), so results are bit-identical to the unfused
// graph and do not depend on the thread count.

// exprTile is the number of elements a tile of a fused op holds.
const exprTile = 1024

// fuseElementwise turns element-wise fusion on (tests compare with it off).
var fuseElementwise = true

type leafKind uint8

const (
	leafFull   leafKind = iota // the output's size, read at the same index
	leafScalar                 // one value
	leafRows                   // the value at flat index i is src[(i/inner) % n]
)

type exprLeaf struct {
	kind     leafKind
	inner, n int
}

// exprOp is one op of a fused expression. Its arguments index the
// operands: a >= 0 is the result of ops[a], a < 0 the leaf -a-1.
type exprOp struct {
	op   backends.OpType // Add, Sub, Mul, Div, Max, Min, Neg, Clamp (lo, x, hi); Where: band mask (y, lo, hi, t, f)
	args []int
}

// exprProg is a fused expression: the node's inputs are its leaves, in
// order; the last op's result is the output.
type exprProg struct {
	leaves []exprLeaf
	ops    []exprOp
}

func (p *exprProg) String() string {
	var names []string
	for _, o := range p.ops {
		if o.op == backends.OpTypeWhere {
			names = append(names, "Mask")
		} else {
			names = append(names, o.op.String())
		}
	}
	return "Fused[" + strings.Join(names, " ") + "]"
}

// exprable reports whether n can be an op of a fused expression.
func exprable(n *Node) bool {
	if dt := n.shape.DType; dt != dtypes.Float32 && dt != dtypes.Float64 {
		return false
	}
	switch n.fused {
	case fusedBandMask:
		return true
	case notFused:
	default:
		return false
	}
	switch n.op {
	case backends.OpTypeAdd, backends.OpTypeSub, backends.OpTypeMul, backends.OpTypeDiv,
		backends.OpTypeMax, backends.OpTypeMin, backends.OpTypeNeg, backends.OpTypeClamp:
		return true
	}
	return false
}

// exprFuser builds fused expressions over a graph whose reader counts are
// known.
type exprFuser struct {
	uses     []int
	isOut    []bool
	absorbed []bool
}

// etree is an expression under construction.
type etree struct {
	node *Node
	args []earg
}

type earg struct {
	sub  *etree // an absorbed op, or nil for a leaf
	src  *Node
	leaf exprLeaf
	// bypass: src is the source of a broadcast operand, which is not run.
	bypass bool
}

// fuseExprs rewrites the fusable trees among the reachable nodes (visited
// from the last: a tree's root is the op whose result leaves it).
func fuseExprs(nodes []*Node, reach []bool, uses []int, isOut []bool) {
	f := &exprFuser{uses: uses, isOut: isOut, absorbed: make([]bool, len(nodes))}
	for i := len(nodes) - 1; i >= 0; i-- {
		n := nodes[i]
		if !reach[i] || f.absorbed[i] || !exprable(n) {
			continue
		}
		t, ok := f.build(n, n)
		if !ok || !worthFusing(t) && n.fused != fusedBandMask {
			continue
		}
		p := &exprProg{}
		var srcs []*Node
		f.emit(t, p, &srcs)
		n.fused = fusedExpr
		n.expr = p
		n.inputs = srcs
	}
}

// rowRed is a per-row reduction of a fused float32 expression's output
// [rows, ...] computed as the expression writes each row (fusedRowRed): a
// ReduceSum over every axis but the first (kernels.Sum of the row), or a
// DotGeneral batched over the first axis and contracting the others, with
// the output itself (other == nil) or with another tensor of its shape
// computed earlier (kernels.Dot of the rows).
type rowRed struct {
	node  *Node
	other *Node
}

// fuseRowReds attaches to fused expressions the per-row reductions of
// their outputs (a batch norm's variance, and in its backward pass the
// sums and products with the centred input of the incoming gradient), so
// that each row is reduced while in cache instead of read again.
func fuseRowReds(nodes []*Node, reach []bool) {
	allAfter := func(r int) []int {
		ax := make([]int, r-1)
		for i := range ax {
			ax[i] = i + 1
		}
		return ax
	}
	rowsOK := func(x *Node) bool {
		return x.fused == fusedExpr && x.shape.DType == dtypes.Float32 && x.shape.Rank() >= 2
	}
	for _, d := range nodes {
		if !reach[d.id] || d.fused != notFused {
			continue
		}
		switch d.op {
		case backends.OpTypeReduceSum:
			x := d.inputs[0]
			if rowsOK(x) && slices.Equal(slices.Sorted(slices.Values(d.attr.([]int))), allAfter(x.shape.Rank())) {
				x.rowReds = append(x.rowReds, rowRed{node: d})
				d.fused = fusedRowRed
			}
		case backends.OpTypeDotGeneral:
			a := d.attr.(*dotAttr)
			l, r := d.inputs[0], d.inputs[1]
			if !l.shape.Equal(r.shape) || l.shape.Rank() < 2 || !slices.Equal(a.lb, []int{0}) || !slices.Equal(a.rb, []int{0}) ||
				!slices.Equal(a.lc, allAfter(l.shape.Rank())) || !slices.Equal(a.rc, a.lc) {
				continue
			}
			// The later operand computes the product; the other one
			// already exists when it runs.
			x, y := l, r
			if y.id > x.id {
				x, y = y, x
			}
			if !rowsOK(x) {
				continue
			}
			red := rowRed{node: d, other: y}
			if y == x {
				red.other = nil
			}
			x.rowReds = append(x.rowReds, red)
			d.fused = fusedRowRed
		}
	}
}

// worthFusing: more than one op, or a broadcast read from its source.
func worthFusing(t *etree) bool {
	for _, a := range t.args {
		if a.sub != nil || a.leaf.kind == leafRows || a.bypass {
			return true
		}
	}
	return false
}

// build returns the tree rooted at n (an op of root's size and dtype).
func (f *exprFuser) build(root, n *Node) (*etree, bool) {
	t := &etree{node: n}
	size := root.shape.Size()
	for i, in := range n.inputs {
		if in.shape.Size() == size && in.shape.DType == root.shape.DType && f.uses[in.id] == 1 && !f.isOut[in.id] &&
			!f.absorbed[in.id] && exprable(in) {
			if sub, ok := f.build(root, in); ok {
				t.args = append(t.args, earg{sub: sub})
				continue
			}
		}
		if in.shape.DType != root.shape.DType {
			return nil, false
		}
		if n.op == backends.OpTypeClamp && i != 1 || n.fused == fusedBandMask && i != 0 && i != 3 {
			// Bounds and the mask's fill value: scalars or full.
			if sz := in.shape.Size(); sz != 1 && sz != size {
				return nil, false
			}
		}
		src, leaf, ok := classify(n, in, size)
		if !ok {
			return nil, false
		}
		t.args = append(t.args, earg{src: src, leaf: leaf, bypass: src != in})
	}
	return t, true
}

// emit marks t's ops absorbed and appends them, after their arguments, to p.
func (f *exprFuser) emit(t *etree, p *exprProg, srcs *[]*Node) int {
	op := exprOp{op: t.node.op}
	if t.node.fused == fusedBandMask {
		op.op = backends.OpTypeWhere
	}
	for _, a := range t.args {
		if a.sub != nil {
			op.args = append(op.args, f.emit(a.sub, p, srcs))
			continue
		}
		li := -1
		for j, s := range *srcs {
			if s == a.src && p.leaves[j] == a.leaf {
				li = j
				break
			}
		}
		if li < 0 {
			li = len(*srcs)
			*srcs = append(*srcs, a.src)
			p.leaves = append(p.leaves, a.leaf)
		}
		op.args = append(op.args, -li-1)
	}
	f.absorbed[t.node.id] = true
	p.ops = append(p.ops, op)
	return len(p.ops) - 1
}

// classify describes how in, an operand of n (whose output has size
// elements), is read: in place in full, as a scalar, or, for a broadcast
// (a BroadcastInDim, possibly reshaped, or an operand with unit axes),
// from its source by rows.
func classify(n, in *Node, size int) (*Node, exprLeaf, bool) {
	switch sz := in.shape.Size(); {
	case sz == 1:
		for (in.op == backends.OpTypeReshape || in.op == backends.OpTypeBroadcastInDim) && in.fused == notFused {
			in = in.inputs[0]
		}
		return in, exprLeaf{kind: leafScalar}, true
	case sz == size:
		x := in
		for x.op == backends.OpTypeReshape {
			x = x.inputs[0]
		}
		if x.op == backends.OpTypeBroadcastInDim && x.fused == notFused {
			src := x.inputs[0]
			xs := rowStrides(src.shape.Dimensions)
			ss := make([]int, x.shape.Rank())
			for i, a := range x.attr.([]int) {
				if src.shape.Dimensions[i] != 1 {
					ss[a] = xs[i]
				}
			}
			if leaf, ok := rowsOf(x.shape.Dimensions, ss, size); ok {
				return src, leaf, true
			}
		}
		return in, exprLeaf{kind: leafFull}, true
	case in.shape.Rank() == n.shape.Rank():
		// An implicit broadcast of unit axes.
		ss := rowStrides(in.shape.Dimensions)
		for i, d := range in.shape.Dimensions {
			if d == 1 {
				ss[i] = 0
			}
		}
		if leaf, ok := rowsOf(n.shape.Dimensions, ss, size); ok {
			return in, leaf, true
		}
	}
	return nil, exprLeaf{}, false
}

// rowsOf describes the broadcast that reads element src[Σ idx[a]*ss[a]]
// at index idx of dims, if its source axes are one contiguous row-major
// block.
func rowsOf(dims, ss []int, size int) (exprLeaf, bool) {
	var d, s []int
	for i, n := range dims {
		if n != 1 {
			d, s = append(d, n), append(s, ss[i])
		}
	}
	p, q := -1, -1
	for i := range s {
		if s[i] != 0 {
			if p < 0 {
				p = i
			}
			q = i
		}
	}
	if p < 0 {
		return exprLeaf{kind: leafScalar}, true
	}
	if s[q] != 1 {
		return exprLeaf{}, false
	}
	c := d[q]
	for k := q - 1; k >= p; k-- {
		if s[k] != s[k+1]*d[k+1] {
			return exprLeaf{}, false
		}
		c *= d[k]
	}
	inner := 1
	for _, n := range d[q+1:] {
		inner *= n
	}
	if c == size {
		return exprLeaf{kind: leafFull}, true
	}
	return exprLeaf{kind: leafRows, inner: inner, n: c}, true
}

// val is an operand within one tile: a vector of the tile's length or a
// scalar.
type val[T float] struct {
	v  []T
	s  T
	sc bool
}

func (v val[T]) at(i int) T {
	if v.sc {
		return v.s
	}
	return v.v[i]
}

var tilePools [2]sync.Pool // []float32, []float64 register files

// expr runs the fused expression n, writing over reuse (an input that
// only n reads) when not nil, and n's row reductions reds.
func (r *run) expr(n *Node, ins []*Buffer, reuse *Buffer, reds []rowRedRun) (*Buffer, error) {
	var out *Buffer
	if reuse != nil {
		reuse.st.refs++
		out = &Buffer{shape: n.shape, flat: reuse.flat, st: reuse.st}
	} else {
		out = r.alloc(n.shape)
	}
	var err error
	switch o := out.flat.(type) {
	case []float32:
		if len(reds) > 0 {
			err = runExprRows(n.expr, ins, o, reds, r.workers)
			break
		}
		err = runExpr(n.expr, ins, o, r.workers, &tilePools[0])
	case []float64:
		err = runExpr(n.expr, ins, o, r.workers, &tilePools[1])
	default:
		err = fmt.Errorf("fused expression of %s not supported", out.shape.DType)
	}
	if err != nil {
		r.release(out)
		return nil, err
	}
	return out, nil
}

// exprEval evaluates a fused expression over ranges of its output, with
// one goroutine's tile registers.
type exprEval[T float] struct {
	p      *exprProg
	srcs   [][]T
	out    []T
	regs   []T
	leaves []val[T]
	res    []val[T]
	args   []val[T]
	pool   *sync.Pool
}

func newExprEval[T float](p *exprProg, srcs [][]T, out []T, pool *sync.Pool) *exprEval[T] {
	nregs := len(p.ops) - 1 + len(p.leaves)
	var regs []T
	if v := pool.Get(); v != nil {
		regs = v.([]T)
	}
	if len(regs) < nregs*exprTile {
		regs = make([]T, nregs*exprTile)
	}
	return &exprEval[T]{p: p, srcs: srcs, out: out, regs: regs, pool: pool,
		leaves: make([]val[T], len(p.leaves)), res: make([]val[T], len(p.ops)), args: make([]val[T], 0, 5)}
}

func (e *exprEval[T]) done() { e.pool.Put(e.regs) }

// run computes out[lo:hi].
func (e *exprEval[T]) run(lo, hi int) {
	p, regs, leaves, out := e.p, e.regs, e.leaves, e.out
	last := len(p.ops) - 1
	for t := lo; t < hi; {
		end := min(t+exprTile, hi)
		for _, l := range p.leaves {
			if l.kind == leafRows && l.inner >= 64 {
				end = min(end, (t/l.inner+1)*l.inner)
			}
		}
		m := end - t
		for i, l := range p.leaves {
			src := e.srcs[i]
			switch l.kind {
			case leafFull:
				leaves[i] = val[T]{v: src[t:end]}
			case leafScalar:
				leaves[i] = val[T]{s: src[0], sc: true}
			case leafRows:
				if t/l.inner == (end-1)/l.inner {
					leaves[i] = val[T]{s: src[(t/l.inner)%l.n], sc: true}
					continue
				}
				buf := regs[(last+i)*exprTile:][:m]
				for j := t; j < end; {
					row := j / l.inner
					stop := min(end, (row+1)*l.inner)
					fill(buf[j-t:stop-t], src[row%l.n])
					j = stop
				}
				leaves[i] = val[T]{v: buf}
			}
		}
		for oi, op := range p.ops {
			var dst []T
			if oi == last {
				dst = out[t:end]
			} else {
				dst = regs[oi*exprTile:][:m]
			}
			e.args = e.args[:0]
			for _, a := range op.args {
				if a >= 0 {
					e.args = append(e.args, e.res[a])
				} else {
					e.args = append(e.args, leaves[-a-1])
				}
			}
			applyOp(op.op, dst, e.args)
			e.res[oi] = val[T]{v: dst}
		}
		t = end
	}
}

func exprSources[T float](ins []*Buffer) ([][]T, error) {
	srcs := make([][]T, len(ins))
	for i, in := range ins {
		s, ok := in.flat.([]T)
		if !ok {
			return nil, fmt.Errorf("fused expression: input %d is %s", i, in.shape.DType)
		}
		srcs[i] = s
	}
	return srcs, nil
}

func runExpr[T float](p *exprProg, ins []*Buffer, out []T, workers int, pool *sync.Pool) error {
	srcs, err := exprSources[T](ins)
	if err != nil {
		return err
	}
	size := len(out)
	parallel(size, workers, size*len(p.ops), func(lo, hi int) {
		e := newExprEval(p, srcs, out, pool)
		defer e.done()
		e.run(lo, hi)
	})
	return nil
}

// runExprRows runs the float32 expression row by row (rows of out
// [rows, ...]) and computes the reductions reds of each row while it is in
// cache, as the unfused ops do: dst[r] = kernels.Sum(row r), or
// kernels.Dot(row r, row r of other (out itself if nil)).
func runExprRows(p *exprProg, ins []*Buffer, out []float32, reds []rowRedRun, workers int) error {
	srcs, err := exprSources[float32](ins)
	if err != nil {
		return err
	}
	rows := len(reds[0].dst)
	l := len(out) / rows
	parallel(rows, workers, len(out)*(len(p.ops)+len(reds)), func(lo, hi int) {
		e := newExprEval(p, srcs, out, &tilePools[0])
		defer e.done()
		for r := lo; r < hi; r++ {
			row := out[r*l : (r+1)*l]
			e.run(r*l, (r+1)*l)
			for _, red := range reds {
				switch {
				case red.sum:
					red.dst[r] = kernels.Sum(row)
				case red.other == nil:
					red.dst[r] = kernels.Dot(row, row)
				default:
					red.dst[r] = kernels.Dot(row, red.other[r*l:(r+1)*l])
				}
			}
		}
	})
	return nil
}

// rowRedRun is a rowRed at run time.
type rowRedRun struct {
	sum   bool
	other []float32
	dst   []float32
}

// applyOp computes one op of a fused expression into dst.
func applyOp[T float](op backends.OpType, dst []T, a []val[T]) {
	switch op {
	case backends.OpTypeNeg:
		x := a[0]
		if x.sc {
			fill(dst, -x.s)
			return
		}
		x.v = x.v[:len(dst)]
		for i, v := range x.v {
			dst[i] = -v
		}
	case backends.OpTypeClamp:
		lo, x, hi := a[0], a[1], a[2]
		if lo.sc && hi.sc && !x.sc {
			if d, ok := any(dst).([]float32); ok && lo.s == 0 && hi.s == 6 {
				kernels.ReLU6(d, any(x.v).([]float32))
				return
			}
			l, h, xv := lo.s, hi.s, x.v[:len(dst)]
			for i, v := range xv {
				dst[i] = min(max(l, v), h)
			}
			return
		}
		for i := range dst {
			dst[i] = min(max(lo.at(i), x.at(i)), hi.at(i))
		}
	case backends.OpTypeWhere:
		y, lo, hi, t, f := a[0], a[1], a[2], a[3], a[4]
		if !y.sc && !t.sc && lo.sc && hi.sc && f.sc {
			if d, ok := any(dst).([]float32); ok && lo.s == 0 && hi.s == 6 && f.s == 0 {
				kernels.ReLU6Grad(d, any(y.v).([]float32), any(t.v).([]float32))
				return
			}
		}
		for i := range dst {
			if v := y.at(i); lo.at(i) < v && v < hi.at(i) {
				dst[i] = t.at(i)
			} else {
				dst[i] = f.at(i)
			}
		}
	default:
		binop(op, dst, a[0], a[1])
	}
}

func fill[T any](dst []T, v T) {
	for i := range dst {
		dst[i] = v
	}
}

func binop[T float](op backends.OpType, dst []T, x, y val[T]) {
	n := len(dst)
	switch {
	case x.sc && y.sc:
		var v T
		switch op {
		case backends.OpTypeAdd:
			v = x.s + y.s
		case backends.OpTypeSub:
			v = x.s - y.s
		case backends.OpTypeMul:
			v = x.s * y.s
		case backends.OpTypeDiv:
			v = x.s / y.s
		case backends.OpTypeMax:
			v = max(x.s, y.s)
		case backends.OpTypeMin:
			v = min(x.s, y.s)
		}
		fill(dst, v)
	case !x.sc && !y.sc:
		xv, yv := x.v[:n], y.v[:n]
		switch op {
		case backends.OpTypeAdd:
			if d, ok := any(dst).([]float32); ok {
				kernels.Add(d, any(xv).([]float32), any(yv).([]float32))
				return
			}
			for i := range dst {
				dst[i] = xv[i] + yv[i]
			}
		case backends.OpTypeSub:
			if d, ok := any(dst).([]float32); ok {
				kernels.Sub(d, any(xv).([]float32), any(yv).([]float32))
				return
			}
			for i := range dst {
				dst[i] = xv[i] - yv[i]
			}
		case backends.OpTypeMul:
			if d, ok := any(dst).([]float32); ok {
				kernels.Mul(d, any(xv).([]float32), any(yv).([]float32))
				return
			}
			for i := range dst {
				dst[i] = xv[i] * yv[i]
			}
		case backends.OpTypeDiv:
			for i := range dst {
				dst[i] = xv[i] / yv[i]
			}
		case backends.OpTypeMax:
			for i := range dst {
				dst[i] = max(xv[i], yv[i])
			}
		case backends.OpTypeMin:
			for i := range dst {
				dst[i] = min(xv[i], yv[i])
			}
		}
	case y.sc:
		xv, b := x.v[:n], y.s
		if d, ok := any(dst).([]float32); ok {
			// x - b is x + (-b) exactly.
			switch op {
			case backends.OpTypeAdd, backends.OpTypeSub:
				if op == backends.OpTypeSub {
					b = -b
				}
				kernels.AddConst(d, any(xv).([]float32), float32(b))
				return
			case backends.OpTypeMul:
				kernels.MulConst(d, any(xv).([]float32), float32(b))
				return
			}
		}
		switch op {
		case backends.OpTypeAdd:
			for i := range dst {
				dst[i] = xv[i] + b
			}
		case backends.OpTypeSub:
			for i := range dst {
				dst[i] = xv[i] - b
			}
		case backends.OpTypeMul:
			for i := range dst {
				dst[i] = xv[i] * b
			}
		case backends.OpTypeDiv:
			for i := range dst {
				dst[i] = xv[i] / b
			}
		case backends.OpTypeMax:
			for i := range dst {
				dst[i] = max(xv[i], b)
			}
		case backends.OpTypeMin:
			for i := range dst {
				dst[i] = min(xv[i], b)
			}
		}
	default:
		a, yv := x.s, y.v[:n]
		if d, ok := any(dst).([]float32); ok {
			switch op {
			case backends.OpTypeAdd:
				kernels.AddConst(d, any(yv).([]float32), float32(a))
				return
			case backends.OpTypeMul:
				kernels.MulConst(d, any(yv).([]float32), float32(a))
				return
			}
		}
		switch op {
		case backends.OpTypeAdd:
			for i := range dst {
				dst[i] = a + yv[i]
			}
		case backends.OpTypeSub:
			for i := range dst {
				dst[i] = a - yv[i]
			}
		case backends.OpTypeMul:
			for i := range dst {
				dst[i] = a * yv[i]
			}
		case backends.OpTypeDiv:
			for i := range dst {
				dst[i] = a / yv[i]
			}
		case backends.OpTypeMax:
			for i := range dst {
				dst[i] = max(a, yv[i])
			}
		case backends.OpTypeMin:
			for i := range dst {
				dst[i] = min(a, yv[i])
			}
		}
	}
}
