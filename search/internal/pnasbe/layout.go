package pnasbe

import (
	"fmt"
	"reflect"
	"sync"
)

// grain is the least work (elements) worth a goroutine of its own.
const grain = 1 << 15

// parallel splits [0, n) into at most workers contiguous ranges of about
// equal size, each worth at least cost elements of work in all, and runs f
// on each. The partition depends only on n, workers and cost.
func parallel(n, workers, cost int, f func(lo, hi int)) {
	if p := cost / grain; p < workers {
		workers = max(p, 1)
	}
	if workers > n {
		workers = n
	}
	if workers <= 1 {
		if n > 0 {
			f(0, n)
		}
		return
	}
	var wg sync.WaitGroup
	for w := 1; w < workers; w++ {
		lo, hi := n*w/workers, n*(w+1)/workers
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(lo, hi)
		}()
	}
	f(0, n/workers)
	wg.Wait()
}

func copyAny(dst, src any) { reflect.Copy(reflect.ValueOf(dst), reflect.ValueOf(src)) }

// stridedCopy copies the elements of a box with dimensions dims from src
// (element at index i is src[sbase + Σ i[a]*ss[a]]) to dst (likewise with
// dbase, ds).
func stridedCopy[T any](dst []T, dbase int, ds []int, src []T, sbase int, ss []int, dims []int, workers int) {
	// Drop unit axes and merge axes that are contiguous on both sides.
	var d, a, b []int
	for i, n := range dims {
		if n == 0 {
			return
		}
		if n == 1 {
			continue
		}
		if k := len(d) - 1; k >= 0 && a[k] == ss[i]*n && b[k] == ds[i]*n {
			d[k] *= n
			a[k], b[k] = ss[i], ds[i]
			continue
		}
		d, a, b = append(d, n), append(a, ss[i]), append(b, ds[i])
	}
	if len(d) == 0 {
		dst[dbase] = src[sbase]
		return
	}
	r := len(d) - 1
	inner, si, di := d[r], a[r], b[r]
	rows := 1
	for _, n := range d[:r] {
		rows *= n
	}
	parallel(rows, workers, rows*inner, func(lo, hi int) {
		idx := make([]int, r)
		// Position of row lo.
		rem := lo
		for k := r - 1; k >= 0; k-- {
			idx[k] = rem % d[k]
			rem /= d[k]
		}
		so, do := sbase, dbase
		for k := 0; k < r; k++ {
			so += idx[k] * a[k]
			do += idx[k] * b[k]
		}
		for row := lo; row < hi; row++ {
			switch {
			case si == 1 && di == 1:
				copy(dst[do:do+inner], src[so:so+inner])
			case si == 0 && di == 1:
				v := src[so]
				dd := dst[do : do+inner]
				for j := range dd {
					dd[j] = v
				}
			default:
				for j := 0; j < inner; j++ {
					dst[do+j*di] = src[so+j*si]
				}
			}
			for k := r - 1; k >= 0; k-- {
				idx[k]++
				so += a[k]
				do += b[k]
				if idx[k] < d[k] {
					break
				}
				so -= a[k] * d[k]
				do -= b[k] * d[k]
				idx[k] = 0
			}
		}
	})
}

// rowStrides returns the row-major strides of dims.
func rowStrides(dims []int) []int {
	s := make([]int, len(dims))
	acc := 1
	for i := len(dims) - 1; i >= 0; i-- {
		s[i] = acc
		acc *= dims[i]
	}
	return s
}

// copyBox dispatches stridedCopy on the dtype.
func copyBox(dst any, dbase int, ds []int, src any, sbase int, ss []int, dims []int, workers int) error {
	switch d := dst.(type) {
	case []float32:
		stridedCopy(d, dbase, ds, src.([]float32), sbase, ss, dims, workers)
	case []float64:
		stridedCopy(d, dbase, ds, src.([]float64), sbase, ss, dims, workers)
	case []int32:
		stridedCopy(d, dbase, ds, src.([]int32), sbase, ss, dims, workers)
	case []int64:
		stridedCopy(d, dbase, ds, src.([]int64), sbase, ss, dims, workers)
	case []bool:
		stridedCopy(d, dbase, ds, src.([]bool), sbase, ss, dims, workers)
	default:
		return fmt.Errorf("dtype %T not supported", dst)
	}
	return nil
}

// permuted writes x with its axes permuted (out axis i is x's axis perm[i])
// into out.
func (r *run) transpose(x *Buffer, perm []int, out *Buffer) {
	xs := rowStrides(x.shape.Dimensions)
	ss := make([]int, len(perm))
	for i, p := range perm {
		ss[i] = xs[p]
	}
	_ = copyBox(out.flat, 0, rowStrides(out.shape.Dimensions), x.flat, 0, ss, out.shape.Dimensions, r.workers)
}

func (r *run) broadcastInDim(x *Buffer, axes []int, out *Buffer) {
	xs := rowStrides(x.shape.Dimensions)
	ss := make([]int, out.shape.Rank())
	for i, a := range axes {
		if x.shape.Dimensions[i] != 1 {
			ss[a] = xs[i]
		}
	}
	_ = copyBox(out.flat, 0, rowStrides(out.shape.Dimensions), x.flat, 0, ss, out.shape.Dimensions, r.workers)
}

func (r *run) slice(x *Buffer, a *sliceAttr, out *Buffer) {
	xs := rowStrides(x.shape.Dimensions)
	ss := make([]int, len(xs))
	base := 0
	for i := range xs {
		base += a.starts[i] * xs[i]
		ss[i] = xs[i] * a.strides[i]
	}
	_ = copyBox(out.flat, 0, rowStrides(out.shape.Dimensions), x.flat, base, ss, out.shape.Dimensions, r.workers)
}

func (r *run) concatenate(axis int, ins []*Buffer, out *Buffer) {
	os := rowStrides(out.shape.Dimensions)
	off := 0
	for _, in := range ins {
		_ = copyBox(out.flat, off*os[axis], os, in.flat, 0, rowStrides(in.shape.Dimensions), in.shape.Dimensions, r.workers)
		off += in.shape.Dimensions[axis]
	}
}

func (r *run) pad(x, fill *Buffer, a *padAttr, out *Buffer) error {
	for _, p := range a.axes {
		if p.Start < 0 || p.End < 0 {
			return fmt.Errorf("negative padding not supported")
		}
	}
	// Fill, then copy x into place.
	one := make([]int, out.shape.Rank())
	if err := copyBox(out.flat, 0, rowStrides(out.shape.Dimensions), fill.flat, 0, one, out.shape.Dimensions, r.workers); err != nil {
		return err
	}
	os := rowStrides(out.shape.Dimensions)
	ds := make([]int, len(os))
	base := 0
	for i, p := range a.axes {
		base += p.Start * os[i]
		ds[i] = os[i] * (p.Interior + 1)
	}
	return copyBox(out.flat, base, ds, x.flat, 0, rowStrides(x.shape.Dimensions), x.shape.Dimensions, r.workers)
}

// expand returns x's data broadcast to out's dimensions (x's dimensions
// equal out's or are 1), and whether it is a scratch buffer to release.
func (r *run) expand(x *Buffer, out *Buffer) (*Buffer, bool) {
	if x.shape.IsScalar() || x.shape.Size() == out.shape.Size() {
		return x, false
	}
	t := r.temp(x.shape.DType, out.shape.Dimensions...)
	xs := rowStrides(x.shape.Dimensions)
	for i, d := range x.shape.Dimensions {
		if d == 1 {
			xs[i] = 0
		}
	}
	_ = copyBox(t.flat, 0, rowStrides(out.shape.Dimensions), x.flat, 0, xs, out.shape.Dimensions, r.workers)
	return t, true
}
