package pnasbe

import (
	"fmt"

	"github.com/gomlx/gomlx/backends"
	"github.com/pnasml/pnas/runtime/kernels"
)

// fusion marks a node that runs a fused pattern instead of its own op.
type fusion int

const (
	notFused fusion = iota
	// fusedBandMask is Where(LogicalAnd(GreaterThan(y, lo), LessThan(y,
	// hi)), t, f) with scalars lo, hi and f (the gradient of a clamp such as
	// ReLU6): inputs become y, lo, hi, t, f and the comparisons, which then
	// have no readers unless others use them, are not run.
	fusedBandMask
	// fusedExpr is a tree of element-wise ops run as one (see fuseexpr.go):
	// the node's inputs are the expression's leaves.
	fusedExpr
	// fusedRowRed is a per-row reduction of a fused expression's output,
	// computed by the expression as it writes each row (the expression's
	// node lists it in rowReds); running it is a no-op.
	fusedRowRed
)

// fuse rewrites the fusable patterns among nodes (before Compile counts
// readers).
func fuse(nodes []*Node) {
	for _, w := range nodes {
		if w.op != backends.OpTypeWhere || w.fused != notFused {
			continue
		}
		cond, t, f := w.inputs[0], w.inputs[1], w.inputs[2]
		if cond.op != backends.OpTypeLogicalAnd || !f.shape.IsScalar() || !t.shape.Equal(w.shape) {
			continue
		}
		gt, lt := cond.inputs[0], cond.inputs[1]
		if gt.op != backends.OpTypeGreaterThan || lt.op != backends.OpTypeLessThan {
			continue
		}
		y, lo, y2, hi := gt.inputs[0], gt.inputs[1], lt.inputs[0], lt.inputs[1]
		if y != y2 || !lo.shape.IsScalar() || !hi.shape.IsScalar() || !y.shape.Equal(w.shape) {
			continue
		}
		w.fused = fusedBandMask
		w.inputs = []*Node{y, lo, hi, t, f}
	}
}

// bandMask runs fusedBandMask: out = lo < y < hi ? t : f.
func bandMask(ins []*Buffer, out *Buffer, workers int) error {
	switch o := out.flat.(type) {
	case []float32:
		y, t := ins[0].flat.([]float32), ins[3].flat.([]float32)
		if ins[1].flat.([]float32)[0] == 0 && ins[2].flat.([]float32)[0] == 6 && ins[4].flat.([]float32)[0] == 0 {
			// ReLU6's gradient: the vector kernel.
			parallel(len(o), workers, len(o), func(a, b int) { kernels.ReLU6Grad(o[a:b], y[a:b], t[a:b]) })
			return nil
		}
		bandMaskT(ins[0].flat.([]float32), ins[1].flat.([]float32)[0], ins[2].flat.([]float32)[0],
			ins[3].flat.([]float32), ins[4].flat.([]float32)[0], o, workers)
	case []float64:
		bandMaskT(ins[0].flat.([]float64), ins[1].flat.([]float64)[0], ins[2].flat.([]float64)[0],
			ins[3].flat.([]float64), ins[4].flat.([]float64)[0], o, workers)
	default:
		return fmt.Errorf("fused mask of %s not supported", out.shape.DType)
	}
	return nil
}

func bandMaskT[T float](y []T, lo, hi T, t []T, f T, o []T, workers int) {
	parallel(len(o), workers, len(o), func(a, b int) {
		yy, tt, oo := y[a:b], t[a:b], o[a:b]
		for i, v := range yy {
			if lo < v && v < hi {
				oo[i] = tt[i]
			} else {
				oo[i] = f
			}
		}
	})
}
