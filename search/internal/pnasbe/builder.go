package pnasbe

import (
	"fmt"
	"reflect"
	"slices"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/notimplemented"
	"github.com/gomlx/gomlx/backends/shapeinference"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

// Node is one op of a graph under construction.
type Node struct {
	id     int
	op     backends.OpType
	shape  shapes.Shape
	inputs []*Node
	b      *Builder
	attr   any // op-specific data
	fused  fusion
	expr   *exprProg // the fused expression when fused == fusedExpr
	// rowReds are the fusedRowRed nodes this expression computes.
	rowReds []rowRed
}

// Builder records a graph's ops; ops the backend does not implement come
// from notimplemented.Builder and return its error.
type Builder struct {
	notimplemented.Builder
	be       *Backend
	name     string
	nodes    []*Node
	params   []*Node
	pnames   []string
	compiled bool
}

var _ backends.Builder = (*Builder)(nil)

func newBuilder(be *Backend, name string) *Builder { return &Builder{be: be, name: name} }

func (b *Builder) Name() string { return b.name }

func (b *Builder) node(op backends.OpType, shape shapes.Shape, attr any, inputs ...*Node) *Node {
	n := &Node{id: len(b.nodes), op: op, shape: shape, inputs: inputs, b: b, attr: attr}
	b.nodes = append(b.nodes, n)
	return n
}

// in converts ops to this builder's nodes.
func (b *Builder) in(ops ...backends.Op) ([]*Node, error) {
	out := make([]*Node, len(ops))
	for i, op := range ops {
		n, ok := op.(*Node)
		if !ok || n == nil {
			return nil, fmt.Errorf("pnas backend: op %d is %T, not a node of this backend", i, op)
		}
		if n.b != b {
			return nil, fmt.Errorf("pnas backend: op %d belongs to another graph", i)
		}
		out[i] = n
	}
	if b.compiled {
		return nil, fmt.Errorf("pnas backend: graph %q already compiled", b.name)
	}
	return out, nil
}

func (b *Builder) in1(op backends.Op) (*Node, error) {
	ns, err := b.in(op)
	if err != nil {
		return nil, err
	}
	return ns[0], nil
}

func (b *Builder) OpShape(op backends.Op) (shapes.Shape, error) {
	n, ok := op.(*Node)
	if !ok {
		return shapes.Invalid(), fmt.Errorf("pnas backend: op is %T", op)
	}
	return n.shape, nil
}

// supported lists the ops the backend implements (Capabilities).
var supported = map[backends.OpType]bool{}

func init() {
	for _, op := range []backends.OpType{
		backends.OpTypeParameter, backends.OpTypeConstant, backends.OpTypeIdentity, backends.OpTypeReshape,
		backends.OpTypeTranspose, backends.OpTypeBroadcastInDim, backends.OpTypeSlice, backends.OpTypeConcatenate,
		backends.OpTypeIota, backends.OpTypeConvertDType, backends.OpTypeWhere, backends.OpTypeClamp,
		backends.OpTypeReduceSum, backends.OpTypeReduceMax, backends.OpTypeReduceMin, backends.OpTypeReduceProduct,
		backends.OpTypeDotGeneral, backends.OpTypePad, backends.OpTypeReverse, backends.OpTypeConvGeneral,
	} {
		supported[op] = true
	}
	for op := range unaryOps {
		supported[op] = true
	}
	for op := range binaryOps {
		supported[op] = true
	}
	for op := range compareOps {
		supported[op] = true
	}
}

func (b *Builder) Parameter(name string, shape shapes.Shape, sharding *backends.ShardingSpec) (backends.Op, error) {
	if b.compiled {
		return nil, fmt.Errorf("pnas backend: graph %q already compiled", b.name)
	}
	if sharding != nil {
		return nil, fmt.Errorf("pnas backend: sharding not supported")
	}
	n := b.node(backends.OpTypeParameter, shape.Clone(), len(b.params))
	b.params = append(b.params, n)
	b.pnames = append(b.pnames, name)
	return n, nil
}

func (b *Builder) Constant(flat any, dims ...int) (backends.Op, error) {
	v := reflect.ValueOf(flat)
	if v.Kind() != reflect.Slice {
		return nil, fmt.Errorf("pnas backend: Constant wants a flat slice, got %T", flat)
	}
	dt := dtypes.FromGoType(v.Type().Elem())
	shape := shapes.Make(dt, dims...)
	if shape.Size() != v.Len() {
		return nil, fmt.Errorf("pnas backend: Constant of %d values for shape %s", v.Len(), shape)
	}
	c := makeFlat(dt, v.Len())
	reflect.Copy(reflect.ValueOf(c), v)
	return b.node(backends.OpTypeConstant, shape, &Buffer{shape: shape, flat: c}), nil
}

func (b *Builder) Identity(x backends.Op) (backends.Op, error) {
	n, err := b.in1(x)
	if err != nil {
		return nil, err
	}
	return b.node(backends.OpTypeIdentity, n.shape, nil, n), nil
}

func (b *Builder) Reshape(x backends.Op, dims ...int) (backends.Op, error) {
	n, err := b.in1(x)
	if err != nil {
		return nil, err
	}
	s, err := shapeinference.ReshapeOp(n.shape, dims)
	if err != nil {
		return nil, err
	}
	return b.node(backends.OpTypeReshape, s, nil, n), nil
}

func (b *Builder) Transpose(x backends.Op, perm ...int) (backends.Op, error) {
	n, err := b.in1(x)
	if err != nil {
		return nil, err
	}
	s, err := shapeinference.TransposeOp(n.shape, perm)
	if err != nil {
		return nil, err
	}
	return b.node(backends.OpTypeTranspose, s, slices.Clone(perm), n), nil
}

func (b *Builder) BroadcastInDim(x backends.Op, out shapes.Shape, axes []int) (backends.Op, error) {
	n, err := b.in1(x)
	if err != nil {
		return nil, err
	}
	if err := shapeinference.BroadcastInDimOp(n.shape, out, axes); err != nil {
		return nil, err
	}
	return b.node(backends.OpTypeBroadcastInDim, out.Clone(), slices.Clone(axes), n), nil
}

type sliceAttr struct{ starts, limits, strides []int }

func (b *Builder) Slice(x backends.Op, starts, limits, strides []int) (backends.Op, error) {
	n, err := b.in1(x)
	if err != nil {
		return nil, err
	}
	s, err := shapeinference.SliceOp(n.shape, starts, limits, strides)
	if err != nil {
		return nil, err
	}
	st := slices.Clone(strides)
	if len(st) == 0 {
		st = make([]int, n.shape.Rank())
		for i := range st {
			st[i] = 1
		}
	}
	return b.node(backends.OpTypeSlice, s, &sliceAttr{slices.Clone(starts), slices.Clone(limits), st}, n), nil
}

func (b *Builder) Concatenate(axis int, ops ...backends.Op) (backends.Op, error) {
	ns, err := b.in(ops...)
	if err != nil {
		return nil, err
	}
	ss := make([]shapes.Shape, len(ns))
	for i, n := range ns {
		ss[i] = n.shape
	}
	s, err := shapeinference.ConcatenateOp(ss, axis)
	if err != nil {
		return nil, err
	}
	return b.node(backends.OpTypeConcatenate, s, axis, ns...), nil
}

func (b *Builder) Iota(shape shapes.Shape, axis int) (backends.Op, error) {
	if axis < 0 || axis >= shape.Rank() {
		return nil, fmt.Errorf("pnas backend: Iota axis %d for shape %s", axis, shape)
	}
	return b.node(backends.OpTypeIota, shape.Clone(), axis), nil
}

func (b *Builder) ConvertDType(x backends.Op, dt dtypes.DType) (backends.Op, error) {
	n, err := b.in1(x)
	if err != nil {
		return nil, err
	}
	s := n.shape.Clone()
	s.DType = dt
	return b.node(backends.OpTypeConvertDType, s, nil, n), nil
}

func (b *Builder) Where(cond, onTrue, onFalse backends.Op) (backends.Op, error) {
	ns, err := b.in(cond, onTrue, onFalse)
	if err != nil {
		return nil, err
	}
	s, err := shapeinference.WhereOp(ns[0].shape, ns[1].shape, ns[2].shape)
	if err != nil {
		return nil, err
	}
	return b.node(backends.OpTypeWhere, s, nil, ns...), nil
}

func (b *Builder) Clamp(lo, x, hi backends.Op) (backends.Op, error) {
	ns, err := b.in(lo, x, hi)
	if err != nil {
		return nil, err
	}
	for _, n := range []*Node{ns[0], ns[2]} {
		if n.shape.DType != ns[1].shape.DType || !n.shape.IsScalar() && !n.shape.Equal(ns[1].shape) {
			return nil, fmt.Errorf("pnas backend: Clamp bounds %s for operand %s", n.shape, ns[1].shape)
		}
	}
	return b.node(backends.OpTypeClamp, ns[1].shape, nil, ns...), nil
}

func (b *Builder) reduce(op backends.OpType, x backends.Op, axes []int) (backends.Op, error) {
	n, err := b.in1(x)
	if err != nil {
		return nil, err
	}
	if len(axes) == 0 {
		axes = make([]int, n.shape.Rank())
		for i := range axes {
			axes[i] = i
		}
	}
	s, err := shapeinference.ReduceOp(n.shape, axes)
	if err != nil {
		return nil, err
	}
	s.DType = n.shape.DType
	return b.node(op, s, slices.Clone(axes), n), nil
}

func (b *Builder) ReduceSum(x backends.Op, axes ...int) (backends.Op, error) {
	return b.reduce(backends.OpTypeReduceSum, x, axes)
}
func (b *Builder) ReduceMax(x backends.Op, axes ...int) (backends.Op, error) {
	return b.reduce(backends.OpTypeReduceMax, x, axes)
}
func (b *Builder) ReduceMin(x backends.Op, axes ...int) (backends.Op, error) {
	return b.reduce(backends.OpTypeReduceMin, x, axes)
}
func (b *Builder) ReduceProduct(x backends.Op, axes ...int) (backends.Op, error) {
	return b.reduce(backends.OpTypeReduceProduct, x, axes)
}

type padAttr struct{ axes []backends.PadAxis }

func (b *Builder) Pad(x, fill backends.Op, axes ...backends.PadAxis) (backends.Op, error) {
	ns, err := b.in(x, fill)
	if err != nil {
		return nil, err
	}
	if !ns[1].shape.IsScalar() || ns[1].shape.DType != ns[0].shape.DType || len(axes) > ns[0].shape.Rank() {
		return nil, fmt.Errorf("pnas backend: Pad of %s with fill %s and %d axes", ns[0].shape, ns[1].shape, len(axes))
	}
	full := make([]backends.PadAxis, ns[0].shape.Rank())
	copy(full, axes)
	s := ns[0].shape.Clone()
	for i, p := range full {
		d := s.Dimensions[i]
		if p.Interior < 0 {
			return nil, fmt.Errorf("pnas backend: Pad with negative interior padding")
		}
		nd := d + p.Start + p.End
		if d > 0 {
			nd += (d - 1) * p.Interior
		}
		if nd < 0 {
			return nil, fmt.Errorf("pnas backend: Pad gives negative dimension on axis %d", i)
		}
		s.Dimensions[i] = nd
	}
	return b.node(backends.OpTypePad, s, &padAttr{full}, ns...), nil
}

// dotAttr describes a DotGeneral.
type dotAttr struct {
	lc, lb, rc, rb []int
}

func (b *Builder) DotGeneral(lhs backends.Op, lc, lb []int, rhs backends.Op, rc, rb []int) (backends.Op, error) {
	ns, err := b.in(lhs, rhs)
	if err != nil {
		return nil, err
	}
	l, r := ns[0].shape, ns[1].shape
	if l.DType != r.DType {
		return nil, fmt.Errorf("pnas backend: DotGeneral of %s and %s", l, r)
	}
	if len(lc) != len(rc) || len(lb) != len(rb) {
		return nil, fmt.Errorf("pnas backend: DotGeneral axes lengths differ")
	}
	for i := range lc {
		if lc[i] < 0 || lc[i] >= l.Rank() || rc[i] < 0 || rc[i] >= r.Rank() || l.Dimensions[lc[i]] != r.Dimensions[rc[i]] {
			return nil, fmt.Errorf("pnas backend: DotGeneral contracting axes %v of %s and %v of %s", lc, l, rc, r)
		}
	}
	var dims []int
	for i := range lb {
		if lb[i] < 0 || lb[i] >= l.Rank() || rb[i] < 0 || rb[i] >= r.Rank() || l.Dimensions[lb[i]] != r.Dimensions[rb[i]] {
			return nil, fmt.Errorf("pnas backend: DotGeneral batch axes %v of %s and %v of %s", lb, l, rb, r)
		}
		dims = append(dims, l.Dimensions[lb[i]])
	}
	for _, a := range freeAxes(l.Rank(), lc, lb) {
		dims = append(dims, l.Dimensions[a])
	}
	for _, a := range freeAxes(r.Rank(), rc, rb) {
		dims = append(dims, r.Dimensions[a])
	}
	attr := &dotAttr{slices.Clone(lc), slices.Clone(lb), slices.Clone(rc), slices.Clone(rb)}
	return b.node(backends.OpTypeDotGeneral, shapes.Make(l.DType, dims...), attr, ns...), nil
}

func (b *Builder) Dot(lhs, rhs backends.Op) (backends.Op, error) {
	ns, err := b.in(lhs, rhs)
	if err != nil {
		return nil, err
	}
	l, r := ns[0].shape, ns[1].shape
	switch {
	case l.Rank() == 1 && r.Rank() == 1:
		return b.DotGeneral(lhs, []int{0}, nil, rhs, []int{0}, nil)
	case l.Rank() == 2 && (r.Rank() == 1 || r.Rank() == 2):
		return b.DotGeneral(lhs, []int{1}, nil, rhs, []int{0}, nil)
	}
	return nil, fmt.Errorf("pnas backend: Dot of %s and %s", l, r)
}

// freeAxes returns the axes of a rank-r operand that are neither
// contracted nor batch, in increasing order.
func freeAxes(r int, contract, batch []int) []int {
	var out []int
	for a := 0; a < r; a++ {
		if !slices.Contains(contract, a) && !slices.Contains(batch, a) {
			out = append(out, a)
		}
	}
	return out
}

// Element-wise ops.

var unaryOps = map[backends.OpType]bool{
	backends.OpTypeAbs: true, backends.OpTypeNeg: true, backends.OpTypeExp: true, backends.OpTypeExpm1: true,
	backends.OpTypeLog: true, backends.OpTypeLog1p: true, backends.OpTypeSqrt: true, backends.OpTypeRsqrt: true,
	backends.OpTypeTanh: true, backends.OpTypeLogistic: true, backends.OpTypeSign: true, backends.OpTypeFloor: true,
	backends.OpTypeCeil: true, backends.OpTypeRound: true, backends.OpTypeLogicalNot: true, backends.OpTypeCos: true,
	backends.OpTypeSin: true, backends.OpTypeIsFinite: true, backends.OpTypeErf: true,
}

var binaryOps = map[backends.OpType]bool{
	backends.OpTypeAdd: true, backends.OpTypeSub: true, backends.OpTypeMul: true, backends.OpTypeDiv: true,
	backends.OpTypeMax: true, backends.OpTypeMin: true, backends.OpTypePow: true, backends.OpTypeRem: true,
	backends.OpTypeLogicalAnd: true, backends.OpTypeLogicalOr: true, backends.OpTypeLogicalXor: true,
}

var compareOps = map[backends.OpType]bool{
	backends.OpTypeEqual: true, backends.OpTypeNotEqual: true, backends.OpTypeLessThan: true,
	backends.OpTypeLessOrEqual: true, backends.OpTypeGreaterThan: true, backends.OpTypeGreaterOrEqual: true,
}

func (b *Builder) unary(op backends.OpType, x backends.Op) (backends.Op, error) {
	n, err := b.in1(x)
	if err != nil {
		return nil, err
	}
	s := n.shape
	if op == backends.OpTypeIsFinite {
		s = s.Clone()
		s.DType = dtypes.Bool
	} else if s, err = shapeinference.UnaryOp(op, n.shape); err != nil {
		return nil, err
	}
	return b.node(op, s, nil, n), nil
}

func (b *Builder) binary(op backends.OpType, lhs, rhs backends.Op) (backends.Op, error) {
	ns, err := b.in(lhs, rhs)
	if err != nil {
		return nil, err
	}
	var s shapes.Shape
	if compareOps[op] {
		s, err = shapeinference.ComparisonOp(op, ns[0].shape, ns[1].shape)
	} else {
		s, err = shapeinference.BinaryOp(op, ns[0].shape, ns[1].shape)
	}
	if err != nil {
		return nil, err
	}
	return b.node(op, s, nil, ns...), nil
}

func (b *Builder) Abs(x backends.Op) (backends.Op, error)   { return b.unary(backends.OpTypeAbs, x) }
func (b *Builder) Neg(x backends.Op) (backends.Op, error)   { return b.unary(backends.OpTypeNeg, x) }
func (b *Builder) Exp(x backends.Op) (backends.Op, error)   { return b.unary(backends.OpTypeExp, x) }
func (b *Builder) Expm1(x backends.Op) (backends.Op, error) { return b.unary(backends.OpTypeExpm1, x) }
func (b *Builder) Log(x backends.Op) (backends.Op, error)   { return b.unary(backends.OpTypeLog, x) }
func (b *Builder) Log1p(x backends.Op) (backends.Op, error) { return b.unary(backends.OpTypeLog1p, x) }
func (b *Builder) Sqrt(x backends.Op) (backends.Op, error)  { return b.unary(backends.OpTypeSqrt, x) }
func (b *Builder) Rsqrt(x backends.Op) (backends.Op, error) { return b.unary(backends.OpTypeRsqrt, x) }
func (b *Builder) Tanh(x backends.Op) (backends.Op, error)  { return b.unary(backends.OpTypeTanh, x) }
func (b *Builder) Logistic(x backends.Op) (backends.Op, error) {
	return b.unary(backends.OpTypeLogistic, x)
}
func (b *Builder) Sign(x backends.Op) (backends.Op, error)  { return b.unary(backends.OpTypeSign, x) }
func (b *Builder) Floor(x backends.Op) (backends.Op, error) { return b.unary(backends.OpTypeFloor, x) }
func (b *Builder) Ceil(x backends.Op) (backends.Op, error)  { return b.unary(backends.OpTypeCeil, x) }
func (b *Builder) Round(x backends.Op) (backends.Op, error) { return b.unary(backends.OpTypeRound, x) }
func (b *Builder) Cos(x backends.Op) (backends.Op, error)   { return b.unary(backends.OpTypeCos, x) }
func (b *Builder) Sin(x backends.Op) (backends.Op, error)   { return b.unary(backends.OpTypeSin, x) }
func (b *Builder) Erf(x backends.Op) (backends.Op, error)   { return b.unary(backends.OpTypeErf, x) }
func (b *Builder) IsFinite(x backends.Op) (backends.Op, error) {
	return b.unary(backends.OpTypeIsFinite, x)
}
func (b *Builder) LogicalNot(x backends.Op) (backends.Op, error) {
	return b.unary(backends.OpTypeLogicalNot, x)
}

func (b *Builder) Add(l, r backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeAdd, l, r)
}
func (b *Builder) Sub(l, r backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeSub, l, r)
}
func (b *Builder) Mul(l, r backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeMul, l, r)
}
func (b *Builder) Div(l, r backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeDiv, l, r)
}
func (b *Builder) Max(l, r backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeMax, l, r)
}
func (b *Builder) Min(l, r backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeMin, l, r)
}
func (b *Builder) Pow(l, r backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypePow, l, r)
}
func (b *Builder) Rem(l, r backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeRem, l, r)
}
func (b *Builder) LogicalAnd(l, r backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeLogicalAnd, l, r)
}
func (b *Builder) LogicalOr(l, r backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeLogicalOr, l, r)
}
func (b *Builder) LogicalXor(l, r backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeLogicalXor, l, r)
}
func (b *Builder) Equal(l, r backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeEqual, l, r)
}
func (b *Builder) NotEqual(l, r backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeNotEqual, l, r)
}
func (b *Builder) LessThan(l, r backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeLessThan, l, r)
}
func (b *Builder) LessOrEqual(l, r backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeLessOrEqual, l, r)
}
func (b *Builder) GreaterThan(l, r backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeGreaterThan, l, r)
}
func (b *Builder) GreaterOrEqual(l, r backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeGreaterOrEqual, l, r)
}
func (b *Builder) IsNaN(x backends.Op) (backends.Op, error) { return b.NotEqual(x, x) }
