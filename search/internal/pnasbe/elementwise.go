package pnasbe

import (
	"fmt"
	"math"

	"github.com/gomlx/gomlx/backends"
	"github.com/pnasml/pnas/runtime/kernels"
)

type float interface{ ~float32 | ~float64 }

type number interface {
	~float32 | ~float64 | ~int32 | ~int64
}

func (r *run) unary(op backends.OpType, x, out *Buffer) error {
	switch xf := x.flat.(type) {
	case []float32:
		if op == backends.OpTypeIsFinite {
			isFinite(xf, out.flat.([]bool), r.workers)
			return nil
		}
		return unaryFloat(op, xf, out.flat.([]float32), r.workers)
	case []float64:
		if op == backends.OpTypeIsFinite {
			isFinite(xf, out.flat.([]bool), r.workers)
			return nil
		}
		return unaryFloat(op, xf, out.flat.([]float64), r.workers)
	case []int32:
		return unaryInt(op, xf, out.flat.([]int32))
	case []int64:
		return unaryInt(op, xf, out.flat.([]int64))
	case []bool:
		if op != backends.OpTypeLogicalNot {
			return fmt.Errorf("%s of bool", op)
		}
		o := out.flat.([]bool)
		for i, v := range xf {
			o[i] = !v
		}
		return nil
	}
	return fmt.Errorf("dtype %s not supported", x.shape.DType)
}

func isFinite[T float](x []T, o []bool, workers int) {
	for i, v := range x {
		f := float64(v)
		o[i] = !math.IsInf(f, 0) && !math.IsNaN(f)
	}
}

func unaryFloat[T float](op backends.OpType, x, o []T, workers int) error {
	var f func(float64) float64
	switch op {
	case backends.OpTypeNeg:
		parallel(len(x), workers, len(x), func(lo, hi int) {
			for i := lo; i < hi; i++ {
				o[i] = -x[i]
			}
		})
		return nil
	case backends.OpTypeAbs:
		f = math.Abs
	case backends.OpTypeExp:
		f = math.Exp
	case backends.OpTypeExpm1:
		f = math.Expm1
	case backends.OpTypeLog:
		f = math.Log
	case backends.OpTypeLog1p:
		f = math.Log1p
	case backends.OpTypeSqrt:
		f = math.Sqrt
	case backends.OpTypeRsqrt:
		f = func(v float64) float64 { return 1 / math.Sqrt(v) }
	case backends.OpTypeTanh:
		f = math.Tanh
	case backends.OpTypeLogistic:
		f = func(v float64) float64 {
			if v >= 0 {
				return 1 / (1 + math.Exp(-v))
			}
			e := math.Exp(v)
			return e / (1 + e)
		}
	case backends.OpTypeSign:
		f = func(v float64) float64 {
			switch {
			case v > 0:
				return 1
			case v < 0:
				return -1
			}
			return v
		}
	case backends.OpTypeFloor:
		f = math.Floor
	case backends.OpTypeCeil:
		f = math.Ceil
	case backends.OpTypeRound:
		f = math.RoundToEven
	case backends.OpTypeCos:
		f = math.Cos
	case backends.OpTypeSin:
		f = math.Sin
	case backends.OpTypeErf:
		f = math.Erf
	default:
		return fmt.Errorf("%s of floats not supported", op)
	}
	parallel(len(x), workers, 8*len(x), func(lo, hi int) {
		for i := lo; i < hi; i++ {
			o[i] = T(f(float64(x[i])))
		}
	})
	return nil
}

func unaryInt[T ~int32 | ~int64](op backends.OpType, x, o []T) error {
	for i, v := range x {
		switch op {
		case backends.OpTypeNeg:
			o[i] = -v
		case backends.OpTypeAbs:
			if v < 0 {
				v = -v
			}
			o[i] = v
		case backends.OpTypeSign:
			switch {
			case v > 0:
				o[i] = 1
			case v < 0:
				o[i] = -1
			default:
				o[i] = 0
			}
		default:
			return fmt.Errorf("%s of integers not supported", op)
		}
	}
	return nil
}

func (r *run) binary(op backends.OpType, x, y, out *Buffer) error {
	x, fx := r.expand(x, out)
	y, fy := r.expand(y, out)
	defer func() {
		if fx {
			r.release(x)
		}
		if fy {
			r.release(y)
		}
	}()
	if compareOps[op] {
		o := out.flat.([]bool)
		switch xf := x.flat.(type) {
		case []float32:
			return compare(op, xf, y.flat.([]float32), o)
		case []float64:
			return compare(op, xf, y.flat.([]float64), o)
		case []int32:
			return compare(op, xf, y.flat.([]int32), o)
		case []int64:
			return compare(op, xf, y.flat.([]int64), o)
		case []bool:
			if op != backends.OpTypeEqual && op != backends.OpTypeNotEqual {
				return fmt.Errorf("%s of bools", op)
			}
			return logical(op, xf, y.flat.([]bool), o)
		}
		return fmt.Errorf("dtype %s not supported", x.shape.DType)
	}
	switch xf := x.flat.(type) {
	case []float32:
		yf, of := y.flat.([]float32), out.flat.([]float32)
		if len(xf) == len(of) && len(yf) == len(of) && (op == backends.OpTypeAdd || op == backends.OpTypeMul) {
			parallel(len(of), r.workers, len(of), func(lo, hi int) {
				if op == backends.OpTypeAdd {
					kernels.Add(of[lo:hi], xf[lo:hi], yf[lo:hi])
				} else {
					kernels.Mul(of[lo:hi], xf[lo:hi], yf[lo:hi])
				}
			})
			return nil
		}
		return arith(op, xf, yf, of, r.workers)
	case []float64:
		return arith(op, xf, y.flat.([]float64), out.flat.([]float64), r.workers)
	case []int32:
		return arith(op, xf, y.flat.([]int32), out.flat.([]int32), r.workers)
	case []int64:
		return arith(op, xf, y.flat.([]int64), out.flat.([]int64), r.workers)
	case []bool:
		return logical(op, xf, y.flat.([]bool), out.flat.([]bool))
	}
	return fmt.Errorf("dtype %s not supported", x.shape.DType)
}

// arith computes o = x op y where x and y have len(o) elements or one.
func arith[T number](op backends.OpType, x, y, o []T, workers int) error {
	var f func(a, b T) T
	switch op {
	case backends.OpTypeAdd:
		f = func(a, b T) T { return a + b }
	case backends.OpTypeSub:
		f = func(a, b T) T { return a - b }
	case backends.OpTypeMul:
		f = func(a, b T) T { return a * b }
	case backends.OpTypeDiv:
		f = func(a, b T) T { return a / b }
	case backends.OpTypeMax:
		f = func(a, b T) T { return max(a, b) }
	case backends.OpTypeMin:
		f = func(a, b T) T { return min(a, b) }
	case backends.OpTypePow:
		f = func(a, b T) T { return T(math.Pow(float64(a), float64(b))) }
	case backends.OpTypeRem:
		f = func(a, b T) T { return T(math.Mod(float64(a), float64(b))) }
	default:
		return fmt.Errorf("%s of numbers not supported", op)
	}
	n := len(o)
	parallel(n, workers, n, func(lo, hi int) {
		oo := o[lo:hi]
		switch {
		case len(x) == n && len(y) == n:
			xx, yy := x[lo:hi], y[lo:hi]
			switch op {
			case backends.OpTypeAdd:
				for i := range oo {
					oo[i] = xx[i] + yy[i]
				}
			case backends.OpTypeSub:
				for i := range oo {
					oo[i] = xx[i] - yy[i]
				}
			case backends.OpTypeMul:
				for i := range oo {
					oo[i] = xx[i] * yy[i]
				}
			default:
				for i := range oo {
					oo[i] = f(xx[i], yy[i])
				}
			}
		case len(y) == n:
			a, yy := x[0], y[lo:hi]
			switch op {
			case backends.OpTypeAdd:
				for i := range oo {
					oo[i] = a + yy[i]
				}
			case backends.OpTypeMul:
				for i := range oo {
					oo[i] = a * yy[i]
				}
			default:
				for i := range oo {
					oo[i] = f(a, yy[i])
				}
			}
		case len(x) == n:
			xx, b := x[lo:hi], y[0]
			switch op {
			case backends.OpTypeAdd:
				for i := range oo {
					oo[i] = xx[i] + b
				}
			case backends.OpTypeMul:
				for i := range oo {
					oo[i] = xx[i] * b
				}
			default:
				for i := range oo {
					oo[i] = f(xx[i], b)
				}
			}
		default:
			v := f(x[0], y[0])
			for i := range oo {
				oo[i] = v
			}
		}
	})
	return nil
}

func at[T any](s []T, i int) T {
	if len(s) == 1 {
		return s[0]
	}
	return s[i]
}

func compare[T number](op backends.OpType, x, y []T, o []bool) error {
	if len(x) == len(o) && len(y) == 1 {
		b := y[0]
		switch op {
		case backends.OpTypeLessThan:
			for i, a := range x {
				o[i] = a < b
			}
			return nil
		case backends.OpTypeGreaterThan:
			for i, a := range x {
				o[i] = a > b
			}
			return nil
		}
	}
	if len(x) == len(o) && len(y) == len(o) {
		y = y[:len(x)]
		switch op {
		case backends.OpTypeLessThan:
			for i, a := range x {
				o[i] = a < y[i]
			}
			return nil
		case backends.OpTypeGreaterThan:
			for i, a := range x {
				o[i] = a > y[i]
			}
			return nil
		}
	}
	for i := range o {
		a, b := at(x, i), at(y, i)
		switch op {
		case backends.OpTypeEqual:
			o[i] = a == b
		case backends.OpTypeNotEqual:
			o[i] = a != b
		case backends.OpTypeLessThan:
			o[i] = a < b
		case backends.OpTypeLessOrEqual:
			o[i] = a <= b
		case backends.OpTypeGreaterThan:
			o[i] = a > b
		case backends.OpTypeGreaterOrEqual:
			o[i] = a >= b
		default:
			return fmt.Errorf("%s not supported", op)
		}
	}
	return nil
}

func logical(op backends.OpType, x, y, o []bool) error {
	if op == backends.OpTypeLogicalAnd && len(x) == len(o) && len(y) == len(o) {
		y = y[:len(x)]
		for i, a := range x {
			o[i] = a && y[i]
		}
		return nil
	}
	for i := range o {
		a, b := at(x, i), at(y, i)
		switch op {
		case backends.OpTypeLogicalAnd:
			o[i] = a && b
		case backends.OpTypeLogicalOr:
			o[i] = a || b
		case backends.OpTypeLogicalXor, backends.OpTypeNotEqual:
			o[i] = a != b
		case backends.OpTypeEqual:
			o[i] = a == b
		default:
			return fmt.Errorf("%s of bools not supported", op)
		}
	}
	return nil
}

func (r *run) where(c, t, f, out *Buffer) error {
	cond := c.flat.([]bool)
	switch o := out.flat.(type) {
	case []float32:
		where(cond, t.flat.([]float32), f.flat.([]float32), o)
	case []float64:
		where(cond, t.flat.([]float64), f.flat.([]float64), o)
	case []int32:
		where(cond, t.flat.([]int32), f.flat.([]int32), o)
	case []int64:
		where(cond, t.flat.([]int64), f.flat.([]int64), o)
	case []bool:
		where(cond, t.flat.([]bool), f.flat.([]bool), o)
	default:
		return fmt.Errorf("dtype %s not supported", out.shape.DType)
	}
	return nil
}

func where[T any](c []bool, t, f, o []T) {
	if len(c) == len(o) {
		c = c[:len(o)]
		switch {
		case len(t) == len(o) && len(f) == 1:
			t, fv := t[:len(o)], f[0]
			for i, ci := range c {
				if ci {
					o[i] = t[i]
				} else {
					o[i] = fv
				}
			}
			return
		case len(t) == len(o) && len(f) == len(o):
			t, f := t[:len(o)], f[:len(o)]
			for i, ci := range c {
				if ci {
					o[i] = t[i]
				} else {
					o[i] = f[i]
				}
			}
			return
		case len(t) == 1 && len(f) == len(o):
			tv, f := t[0], f[:len(o)]
			for i, ci := range c {
				if ci {
					o[i] = tv
				} else {
					o[i] = f[i]
				}
			}
			return
		}
	}
	for i := range o {
		if at(c, i) {
			o[i] = at(t, i)
		} else {
			o[i] = at(f, i)
		}
	}
}

func (r *run) clamp(lo, x, hi, out *Buffer) error {
	switch o := out.flat.(type) {
	case []float32:
		clamp(lo.flat.([]float32), x.flat.([]float32), hi.flat.([]float32), o, r.workers)
	case []float64:
		clamp(lo.flat.([]float64), x.flat.([]float64), hi.flat.([]float64), o, r.workers)
	case []int32:
		clamp(lo.flat.([]int32), x.flat.([]int32), hi.flat.([]int32), o, r.workers)
	case []int64:
		clamp(lo.flat.([]int64), x.flat.([]int64), hi.flat.([]int64), o, r.workers)
	default:
		return fmt.Errorf("dtype %s not supported", out.shape.DType)
	}
	return nil
}

// clamp computes min(max(lo, x), hi) as simplego does.
func clamp[T number](lo, x, hi, o []T, workers int) {
	parallel(len(o), workers, len(o), func(a, b int) {
		if len(lo) == 1 && len(hi) == 1 {
			l, h := lo[0], hi[0]
			for i := a; i < b; i++ {
				o[i] = min(max(l, x[i]), h)
			}
			return
		}
		for i := a; i < b; i++ {
			o[i] = min(max(at(lo, i), x[i]), at(hi, i))
		}
	})
}

func iotaFill(out *Buffer, axis int) error {
	dims := out.shape.Dimensions
	inner := 1
	for _, d := range dims[axis+1:] {
		inner *= d
	}
	n := dims[axis]
	val := func(i int) int { return (i / inner) % n }
	switch o := out.flat.(type) {
	case []float32:
		for i := range o {
			o[i] = float32(val(i))
		}
	case []float64:
		for i := range o {
			o[i] = float64(val(i))
		}
	case []int32:
		for i := range o {
			o[i] = int32(val(i))
		}
	case []int64:
		for i := range o {
			o[i] = int64(val(i))
		}
	default:
		return fmt.Errorf("Iota of %s not supported", out.shape.DType)
	}
	return nil
}

func convert(x, out *Buffer) error {
	switch xf := x.flat.(type) {
	case []float32:
		return convertFrom(xf, out.flat)
	case []float64:
		return convertFrom(xf, out.flat)
	case []int32:
		return convertFrom(xf, out.flat)
	case []int64:
		return convertFrom(xf, out.flat)
	case []bool:
		n := make([]int32, len(xf))
		for i, v := range xf {
			if v {
				n[i] = 1
			}
		}
		return convertFrom(n, out.flat)
	}
	return fmt.Errorf("conversion from %s not supported", x.shape.DType)
}

func convertFrom[F number](x []F, out any) error {
	switch o := out.(type) {
	case []float32:
		for i, v := range x {
			o[i] = float32(v)
		}
	case []float64:
		for i, v := range x {
			o[i] = float64(v)
		}
	case []int32:
		for i, v := range x {
			o[i] = int32(v)
		}
	case []int64:
		for i, v := range x {
			o[i] = int64(v)
		}
	case []bool:
		for i, v := range x {
			o[i] = v != 0
		}
	default:
		return fmt.Errorf("conversion to %T not supported", out)
	}
	return nil
}
