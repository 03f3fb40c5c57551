package pnasbe

import (
	"fmt"
	"math"

	"github.com/gomlx/gomlx/backends"
	"github.com/pnasml/pnas/runtime/kernels"
)

// reduce reduces x over axes into out. The reduced axes are brought
// together (by a transpose when they are not already one contiguous block)
// so that x is [O, R, I]: out[o, i] combines x[o, r, i] for r = 0, 1, ...
// in that order.
func (r *run) reduce(op backends.OpType, x *Buffer, axes []int, out *Buffer) error {
	dims := x.shape.Dimensions
	red := make([]bool, len(dims))
	for _, a := range axes {
		red[a] = true
	}
	// Groups of non-unit axes, merged by kind.
	type group struct {
		n   int
		red bool
	}
	var gs []group
	for a, d := range dims {
		if d == 1 {
			continue
		}
		if k := len(gs) - 1; k >= 0 && gs[k].red == red[a] {
			gs[k].n *= d
			continue
		}
		gs = append(gs, group{d, red[a]})
	}
	nred := 0
	for _, g := range gs {
		if g.red {
			nred++
		}
	}
	src := x
	O, R, I := 1, 1, 1
	if nred <= 1 {
		seen := false
		for _, g := range gs {
			switch {
			case g.red:
				R, seen = g.n, true
			case seen:
				I *= g.n
			default:
				O *= g.n
			}
		}
	} else {
		// Kept axes first, reduced axes last.
		var perm, tdims []int
		for a := range dims {
			if !red[a] {
				perm = append(perm, a)
				O *= dims[a]
			}
		}
		for a := range dims {
			if red[a] {
				perm = append(perm, a)
				R *= dims[a]
			}
		}
		for _, p := range perm {
			tdims = append(tdims, dims[p])
		}
		src = r.temp(x.shape.DType, tdims...)
		defer r.release(src)
		r.transpose(x, perm, src)
	}
	switch xf := src.flat.(type) {
	case []float32:
		if op == backends.OpTypeReduceSum && I == 1 {
			o := out.flat.([]float32)
			parallel(O, r.workers, O*R, func(lo, hi int) {
				for i := lo; i < hi; i++ {
					o[i] = kernels.Sum(xf[i*R : (i+1)*R])
				}
			})
			return nil
		}
		return reduceT(op, xf, out.flat.([]float32), O, R, I, r.workers)
	case []float64:
		return reduceT(op, xf, out.flat.([]float64), O, R, I, r.workers)
	case []int32:
		return reduceT(op, xf, out.flat.([]int32), O, R, I, r.workers)
	case []int64:
		return reduceT(op, xf, out.flat.([]int64), O, R, I, r.workers)
	}
	return fmt.Errorf("dtype %s not supported", x.shape.DType)
}

func initial[T number](op backends.OpType) T {
	switch op {
	case backends.OpTypeReduceProduct:
		return 1
	case backends.OpTypeReduceMax:
		var z T
		switch any(z).(type) {
		case float32, float64:
			return T(math.Inf(-1))
		case int32:
			m := int64(math.MinInt32)
			return T(m)
		default:
			m := int64(math.MinInt64)
			return T(m)
		}
	case backends.OpTypeReduceMin:
		var z T
		switch any(z).(type) {
		case float32, float64:
			return T(math.Inf(1))
		case int32:
			m := int64(math.MaxInt32)
			return T(m)
		default:
			m := int64(math.MaxInt64)
			return T(m)
		}
	}
	return 0
}

func reduceT[T number](op backends.OpType, x, o []T, O, R, I int, workers int) error {
	var f func(a, b T) T
	switch op {
	case backends.OpTypeReduceSum:
		f = func(a, b T) T { return a + b }
	case backends.OpTypeReduceProduct:
		f = func(a, b T) T { return a * b }
	case backends.OpTypeReduceMax:
		f = func(a, b T) T { return max(a, b) }
	case backends.OpTypeReduceMin:
		f = func(a, b T) T { return min(a, b) }
	default:
		return fmt.Errorf("%s not supported", op)
	}
	init := initial[T](op)
	if I == 1 {
		parallel(O, workers, O*R, func(lo, hi int) {
			for oi := lo; oi < hi; oi++ {
				row := x[oi*R : (oi+1)*R]
				if op == backends.OpTypeReduceSum {
					o[oi] = sum(row)
					continue
				}
				acc := init
				for _, v := range row {
					acc = f(acc, v)
				}
				o[oi] = acc
			}
		})
		return nil
	}
	// Rows of I: parallel over (o, chunk of I).
	const chunk = 256
	nc := (I + chunk - 1) / chunk
	parallel(O*nc, workers, O*R*I, func(lo, hi int) {
		for it := lo; it < hi; it++ {
			oi, c := it/nc, it%nc
			i0, i1 := c*chunk, min(I, (c+1)*chunk)
			acc := o[oi*I+i0 : oi*I+i1]
			for i := range acc {
				acc[i] = init
			}
			for ri := 0; ri < R; ri++ {
				row := x[(oi*R+ri)*I+i0 : (oi*R+ri)*I+i1]
				if op == backends.OpTypeReduceSum {
					for i, v := range row {
						acc[i] += v
					}
					continue
				}
				for i, v := range row {
					acc[i] = f(acc[i], v)
				}
			}
		}
	})
	return nil
}

// sum adds s in a fixed order with four partial sums.
func sum[T number](s []T) T {
	var a0, a1, a2, a3 T
	i := 0
	for ; i+4 <= len(s); i += 4 {
		a0 += s[i]
		a1 += s[i+1]
		a2 += s[i+2]
		a3 += s[i+3]
	}
	for ; i < len(s); i++ {
		a0 += s[i]
	}
	return (a0 + a1) + (a2 + a3)
}
