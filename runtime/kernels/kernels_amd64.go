//go:build amd64 && !noasm && !purego

package kernels

import "unsafe"

// This file registers the generated amd64 kernels (z*_amd64.s) with the
// drivers.

func init() {
	gemmKernels[levelAVX2] = &gemmKernel{mr: 6, nr: 16, fn: func(kc int, a, b []float32, ldb int, c []float32, ldc int, load bool) {
		_ = a[kc*6-1]
		_ = b[(kc-1)*ldb+15]
		_ = c[5*ldc+15]
		sgemmAVX2m6n16(kc, &a[0], &b[0], ldb, &c[0], ldc, b2i(load))
	}}
	gemmKernels[levelAVX512] = &gemmKernel{mr: 12, nr: 32, fn: func(kc int, a, b []float32, ldb int, c []float32, ldc int, load bool) {
		_ = a[kc*12-1]
		_ = b[(kc-1)*ldb+31]
		_ = c[11*ldc+31]
		sgemmAVX512m12n32(kc, &a[0], &b[0], ldb, &c[0], ldc, b2i(load))
	}}

	dotImpls[levelAVX2] = &dotKernels{mr: 4, nr: 3, vw: 8, tiles: dotTiles(8, [][]dotAsm{
		{sdotAVX2m1n1, sdotAVX2m1n2, sdotAVX2m1n3},
		{sdotAVX2m2n1, sdotAVX2m2n2, sdotAVX2m2n3},
		{sdotAVX2m3n1, sdotAVX2m3n2, sdotAVX2m3n3},
		{sdotAVX2m4n1, sdotAVX2m4n2, sdotAVX2m4n3},
	})}
	dotImpls[levelAVX512] = &dotKernels{mr: 6, nr: 4, vw: 16, tiles: dotTiles(16, [][]dotAsm{
		{sdotAVX512m1n1, sdotAVX512m1n2, sdotAVX512m1n3, sdotAVX512m1n4},
		{sdotAVX512m2n1, sdotAVX512m2n2, sdotAVX512m2n3, sdotAVX512m2n4},
		{sdotAVX512m3n1, sdotAVX512m3n2, sdotAVX512m3n3, sdotAVX512m3n4},
		{sdotAVX512m4n1, sdotAVX512m4n2, sdotAVX512m4n3, sdotAVX512m4n4},
		{sdotAVX512m5n1, sdotAVX512m5n2, sdotAVX512m5n3, sdotAVX512m5n4},
		{sdotAVX512m6n1, sdotAVX512m6n2, sdotAVX512m6n3, sdotAVX512m6n4},
	})}

	type rowAsm = func(y *float32, ldy int, x *float32, ldx, hoff int, w *float32, rows, nv int)
	type filtAsm = func(acc, dy *float32, ldd int, x *float32, ldx, hoff int, rows, nv int)
	sets := []struct {
		level, vw int
		rows      [8][3]rowAsm
		filt      [8][3]filtAsm
	}{
		{levelAVX2, 8,
			[8][3]rowAsm{3: {1: dwRowsK3S1AVX2, 2: dwRowsK3S2AVX2}, 5: {1: dwRowsK5S1AVX2, 2: dwRowsK5S2AVX2}, 7: {1: dwRowsK7S1AVX2, 2: dwRowsK7S2AVX2}},
			[8][3]filtAsm{3: {1: dwFiltK3S1AVX2, 2: dwFiltK3S2AVX2}, 5: {1: dwFiltK5S1AVX2, 2: dwFiltK5S2AVX2}, 7: {1: dwFiltK7S1AVX2, 2: dwFiltK7S2AVX2}}},
		{levelAVX512, 16,
			[8][3]rowAsm{3: {1: dwRowsK3S1AVX512, 2: dwRowsK3S2AVX512}, 5: {1: dwRowsK5S1AVX512, 2: dwRowsK5S2AVX512}, 7: {1: dwRowsK7S1AVX512, 2: dwRowsK7S2AVX512}},
			[8][3]filtAsm{3: {1: dwFiltK3S1AVX512, 2: dwFiltK3S2AVX512}, 5: {1: dwFiltK5S1AVX512, 2: dwFiltK5S2AVX512}, 7: {1: dwFiltK7S1AVX512, 2: dwFiltK7S2AVX512}}},
	}
	for _, set := range sets {
		d := &dwKernels{vw: set.vw}
		for k := range set.rows {
			for s := range set.rows[k] {
				if set.rows[k][s] == nil {
					continue
				}
				d.rows[k][s] = dwRowAdapter(set.rows[k][s], k, s, set.vw)
				d.filt[k][s] = dwFiltAdapter(set.filt[k][s], k, s, set.vw)
			}
		}
		if set.vw == 8 {
			d.pack = [3]dwPackFunc{1: dwPackAdapter(dwPackS1AVX2, 1), 2: dwPackAdapter(dwPackS2AVX2, 2)}
			d.unpack = dwUnpackAdapter(dwUnpackS2AVX2)
		} else {
			d.pack = [3]dwPackFunc{1: dwPackAdapter(dwPackS1AVX512, 1), 2: dwPackAdapter(dwPackS2AVX512, 2)}
			d.unpack = dwUnpackAdapter(dwUnpackS2AVX512)
		}
		dwImpls[set.level] = d
	}

	elemImpls[levelAVX2] = &elemKernels{
		axpy: func(alpha float32, x, y []float32) {
			n := len(x) &^ 7
			if n > 0 {
				_ = y[n-1]
				elemAxpyAVX2(alpha, &x[0], &y[0], n)
			}
			axpyGo(alpha, x[n:], y[n:])
		},
		scale: func(alpha float32, x []float32) {
			n := len(x) &^ 7
			if n > 0 {
				elemScaleAVX2(alpha, &x[0], n)
			}
			scaleGo(alpha, x[n:])
		},
		add: func(dst, a, b []float32) {
			n := len(dst) &^ 7
			if n > 0 {
				_, _ = a[n-1], b[n-1]
				elemAddAVX2(&dst[0], &a[0], &b[0], n)
			}
			addGo(dst[n:], a[n:], b[n:])
		},
		mul: func(dst, a, b []float32) {
			n := len(dst) &^ 7
			if n > 0 {
				_, _ = a[n-1], b[n-1]
				elemMulAVX2(&dst[0], &a[0], &b[0], n)
			}
			mulGo(dst[n:], a[n:], b[n:])
		},
		sub: func(dst, a, b []float32) {
			n := len(dst) &^ 7
			if n > 0 {
				_, _ = a[n-1], b[n-1]
				elemSubAVX2(&dst[0], &a[0], &b[0], n)
			}
			subGo(dst[n:], a[n:], b[n:])
		},
		addConst: func(dst, x []float32, c float32) {
			n := len(dst) &^ 7
			if n > 0 {
				_ = x[n-1]
				elemAddConstAVX2(&dst[0], &x[0], c, n)
			}
			addConstGo(dst[n:], x[n:], c)
		},
		mulConst: func(dst, x []float32, c float32) {
			n := len(dst) &^ 7
			if n > 0 {
				_ = x[n-1]
				elemMulConstAVX2(&dst[0], &x[0], c, n)
			}
			mulConstGo(dst[n:], x[n:], c)
		},
		relu6: func(dst, x []float32) {
			n := len(dst) &^ 7
			if n > 0 {
				_ = x[n-1]
				elemReLU6AVX2(&dst[0], &x[0], n)
			}
			relu6Go(dst[n:], x[n:])
		},
		relu6Grad: func(dx, x, dy []float32) {
			n := len(dx) &^ 7
			if n > 0 {
				_, _ = x[n-1], dy[n-1]
				elemReLU6GradAVX2(&dx[0], &x[0], &dy[0], n)
			}
			relu6GradGo(dx[n:], x[n:], dy[n:])
		},
		sum: func(x []float32) float32 {
			n := len(x) &^ 31
			s := float32(0)
			if n > 0 {
				s = elemSumAVX2(&x[0], n)
			}
			return s + sumGo(x[n:])
		},
		dot: func(x, y []float32) float32 {
			n := len(x) &^ 31
			s := float32(0)
			if n > 0 {
				_ = y[n-1]
				s = elemDotAVX2(&x[0], &y[0], n)
			}
			return s + dotGo(x[n:], y[n:len(x)])
		},
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// dwRowAdapter checks the extent of a row kernel's operands (ldx must be
// s*hoff) and calls it.
func dwRowAdapter(f func(y *float32, ldy int, x *float32, ldx, hoff int, w *float32, rows, nv int), k, s, vw int) dwRowFunc {
	return func(y []float32, ldy int, x []float32, ldx, hoff int, w []float32, rows, nv int) {
		if rows <= 0 || nv <= 0 {
			return
		}
		cols := nv * vw
		if ldx != s*hoff || hoff < cols+(k-1)/s {
			panic("kernels: depthwise row kernel: bad geometry")
		}
		_ = y[(rows-1)*ldy+cols-1]
		_ = x[((rows-1)*s+k)*ldx-1]
		_ = w[k*k-1]
		f(unsafe.SliceData(y), ldy, unsafe.SliceData(x), ldx, hoff, unsafe.SliceData(w), rows, nv)
	}
}

// dwFiltAdapter checks the extent of a filter kernel's operands and calls it.
func dwFiltAdapter(f func(acc, dy *float32, ldd int, x *float32, ldx, hoff int, rows, nv int), k, s, vw int) dwFiltFunc {
	return func(acc, dy []float32, ldd int, x []float32, ldx, hoff int, rows, nv int) {
		if rows <= 0 || nv <= 0 {
			return
		}
		cols := nv * vw
		if ldx != s*hoff || hoff < cols+(k-1)/s {
			panic("kernels: depthwise filter kernel: bad geometry")
		}
		_ = acc[k*k*vw-1]
		_ = dy[(rows-1)*ldd+cols-1]
		_ = x[((rows-1)*s+k)*ldx-1]
		f(unsafe.SliceData(acc), unsafe.SliceData(dy), ldd, unsafe.SliceData(x), ldx, hoff, rows, nv)
	}
}

type dotAsm = func(k int, a *float32, lda int, b *float32, ldb int, t *float32)

// dotTiles wraps the dot-product tiles fs[r-1][c-1] with extent checks.
func dotTiles(vw int, fs [][]dotAsm) [][]func(k int, a []float32, lda int, b []float32, ldb int, t []float32) {
	out := make([][]func(k int, a []float32, lda int, b []float32, ldb int, t []float32), len(fs))
	for r := range fs {
		for c := range fs[r] {
			f, rows, cols := fs[r][c], r+1, c+1
			out[r] = append(out[r], func(k int, a []float32, lda int, b []float32, ldb int, t []float32) {
				if k <= 0 || k%vw != 0 {
					panic("kernels: dot tile: k must be a positive multiple of the vector width")
				}
				_ = a[(rows-1)*lda+k-1]
				_ = b[(cols-1)*ldb+k-1]
				_ = t[rows*cols-1]
				f(k, &a[0], lda, &b[0], ldb, &t[0])
			})
		}
	}
	return out
}

// dwPackTab is the lane table of the packing kernels: lanes 0..15, the
// even lanes 0..30 and the odd lanes 1..31 of a pair of vectors, and the
// two halves of the interleave of a pair.
var dwPackTab = [80]int32{
	0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
	0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30,
	1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31,
	0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23,
	8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31,
}

// dwPackAdapter checks the extent of a packing kernel's operands and calls it.
func dwPackAdapter(f func(d0, d1 *float32, ldd int, src *float32, lds, rows, wd int, tab *int32), s int) dwPackFunc {
	return func(d0, d1 []float32, ldd int, src []float32, lds, rows, wd int) {
		if rows <= 0 || wd <= 0 {
			return
		}
		_ = src[(rows-1)*lds+wd-1]
		if s == 1 {
			_ = d0[(rows-1)*ldd+wd-1]
		} else {
			_ = d0[(rows-1)*ldd+(wd+1)/2-1]
			if wd > 1 {
				_ = d1[(rows-1)*ldd+wd/2-1]
			}
		}
		f(unsafe.SliceData(d0), unsafe.SliceData(d1), ldd, unsafe.SliceData(src), lds, rows, wd, &dwPackTab[0])
	}
}

// dwUnpackAdapter checks the extent of an interleave kernel's operands and
// calls it.
func dwUnpackAdapter(f func(dst *float32, ldd int, e, o *float32, lds, rows, wd int, tab *int32)) dwUnpackFunc {
	return func(dst []float32, ldd int, e, o []float32, lds, rows, wd int) {
		if rows <= 0 || wd <= 0 {
			return
		}
		_ = dst[(rows-1)*ldd+wd-1]
		_ = e[(rows-1)*lds+(wd+1)/2-1]
		if wd > 1 {
			_ = o[(rows-1)*lds+wd/2-1]
		}
		f(unsafe.SliceData(dst), ldd, unsafe.SliceData(e), unsafe.SliceData(o), lds, rows, wd, &dwPackTab[0])
	}
}
