package kernels

import "fmt"

// This file is the depthwise convolution driver. The planes of a group of
// images of one channel are copied side by side, each zero-padded, into a
// scratch plane whose rows are split into s phases (column q*s+ph of the
// padded row at ph*hoff+q), so that a stride-s window reads contiguous runs
// of every phase. A row kernel then computes whole rows across the group:
// cols = the group's width rounded up to the vector width, so that narrow
// images (7 or 14 columns) still fill the vectors. Outputs that straddle two
// images are computed and dropped. Padding is zeroed once per goroutine and
// never written again. Channels are split between goroutines; within a
// channel the filter gradient is summed over groups, rows and columns in a
// fixed order, so every result is the same for every workers count.

// dwRowFunc computes output rows; see dwRowsGo. nv = cols / vector width.
type dwRowFunc func(y []float32, ldy int, x []float32, ldx, hoff int, w []float32, rows, nv int)

// dwFiltFunc accumulates filter-gradient lanes; see dwFiltGo.
type dwFiltFunc func(acc, dy []float32, ldd int, x []float32, ldx, hoff int, rows, nv int)

// dwPackFunc copies rows into a scratch plane; see dwPackGo.
type dwPackFunc func(d0, d1 []float32, ldd int, src []float32, lds, rows, wd int)

// dwKernels is one level's depthwise kernels for k ∈ {3,5,7}, s ∈ {1,2}.
type dwKernels struct {
	vw     int
	rows   [8][3]dwRowFunc // [k][s]
	filt   [8][3]dwFiltFunc
	pack   [3]dwPackFunc // [s]
	unpack dwUnpackFunc
}

// dwUnpackFunc merges even and odd rows; see dwUnpackGo.
type dwUnpackFunc func(dst []float32, ldd int, e, o []float32, lds, rows, wd int)

// unpackFor returns the interleave kernel at the highest level <= l that
// has one, else its Go twin.
func unpackFor(l int) dwUnpackFunc {
	for ; l > 0; l-- {
		if d := dwImpls[l]; d != nil && d.unpack != nil {
			return d.unpack
		}
	}
	return dwUnpackGo
}

// dwUnpackGo is the reference of the interleave kernels, the inverse of
// dwPackGo with s = 2:
//
//	for r := 0; r < rows; r++ {
//		for i := 0; i < wd; i++ {
//			if i%2 == 0 {
//				dst[r*ldd+i] = e[r*lds+i/2]
//			} else {
//				dst[r*ldd+i] = o[r*lds+i/2]
//			}
//		}
//	}
func dwUnpackGo(dst []float32, ldd int, e, o []float32, lds, rows, wd int) {
	for r := 0; r < rows; r++ {
		d := dst[r*ldd : r*ldd+wd]
		er := e[r*lds : r*lds+(wd+1)/2]
		for t, v := range er {
			d[2*t] = v
		}
		if wd > 1 {
			or := o[r*lds : r*lds+wd/2]
			for t, v := range or {
				d[2*t+1] = v
			}
		}
	}
}

// packFor returns the packing kernel for stride s ∈ {1, 2} at the highest
// level <= l that has one, else its Go twin.
func packFor(l, s int) dwPackFunc {
	for ; l > 0; l-- {
		if d := dwImpls[l]; d != nil && d.pack[s] != nil {
			return d.pack[s]
		}
	}
	return func(d0, d1 []float32, ldd int, src []float32, lds, rows, wd int) {
		dwPackGo(s, d0, d1, ldd, src, lds, rows, wd)
	}
}

// dwPackGo is the reference of the packing kernels. Stride 1 copies rows;
// stride 2 splits each row into its even and odd elements:
//
//	for r := 0; r < rows; r++ {
//		for i := 0; i < wd; i++ {
//			v := src[r*lds+i]
//			switch {
//			case s == 1:
//				d0[r*ldd+i] = v
//			case i%2 == 0:
//				d0[r*ldd+i/2] = v
//			default:
//				d1[r*ldd+i/2] = v
//			}
//		}
//	}
func dwPackGo(s int, d0, d1 []float32, ldd int, src []float32, lds, rows, wd int) {
	for r := 0; r < rows; r++ {
		sr := src[r*lds : r*lds+wd]
		if s == 1 {
			copy(d0[r*ldd:r*ldd+wd], sr)
			continue
		}
		e := d0[r*ldd : r*ldd+(wd+1)/2]
		for t := range e {
			e[t] = sr[2*t]
		}
		if wd > 1 {
			o := d1[r*ldd : r*ldd+wd/2]
			sr = sr[1:]
			for t := range o {
				o[t] = sr[2*t]
			}
		}
	}
}

var dwImpls [numLevels]*dwKernels

// dwFor returns the row and filter kernels for k and s at the highest level
// <= l that has them, and their vector width; the Go twins (vector width 1)
// serve every k and s.
func dwFor(l, k, s int) (dwRowFunc, dwFiltFunc, int) {
	for ; l > 0; l-- {
		d := dwImpls[l]
		if d != nil && k < len(d.rows) && s < len(d.rows[k]) && d.rows[k][s] != nil {
			return d.rows[k][s], d.filt[k][s], d.vw
		}
	}
	rows := func(y []float32, ldy int, x []float32, ldx, hoff int, w []float32, n, nv int) {
		dwRowsGo(k, s, y, ldy, x, ldx, hoff, w, n, nv)
	}
	filt := func(acc, dy []float32, ldd int, x []float32, ldx, hoff int, n, nv int) {
		dwFiltGo(k, s, 1, acc, dy, ldd, x, ldx, hoff, n, nv)
	}
	return rows, filt, 1
}

// dwRowsGo is the reference of every depthwise row kernel. x holds padded
// input rows ldx floats apart, each split into s phases hoff floats apart;
// off(j) = (j%s)*hoff + j/s is where tap column j of output column 0 lies.
// With cols = nv times the vector width (1 here):
//
//	for r := 0; r < rows; r++ {
//		for col := 0; col < cols; col++ {
//			a := float32(0)
//			for i := 0; i < k; i++ {
//				for j := 0; j < k; j++ {
//					a += w[i*k+j] * x[(r*s+i)*ldx+off(j)+col]
//				}
//			}
//			y[r*ldy+col] = a
//		}
//	}
func dwRowsGo(k, s int, y []float32, ldy int, x []float32, ldx, hoff int, w []float32, rows, cols int) {
	w = w[:k*k]
	for r := 0; r < rows; r++ {
		yr := y[r*ldy : r*ldy+cols]
		clear(yr)
		for i := 0; i < k; i++ {
			base := (r*s + i) * ldx
			for j := 0; j < k; j++ {
				wij := w[i*k+j]
				off := base + (j%s)*hoff + j/s
				xr := x[off : off+cols]
				for col, v := range xr {
					yr[col] += wij * v
				}
			}
		}
	}
}

// dwFiltGo is the reference of every depthwise filter-gradient kernel, with
// off(j) as for dwRowsGo and cols = nv*vw:
//
//	for i := 0; i < k; i++ {
//		for r := 0; r < rows; r++ {
//			for col := 0; col < cols; col++ {
//				for j := 0; j < k; j++ {
//					acc[(i*k+j)*vw+col%vw] += dy[r*ldd+col] * x[(r*s+i)*ldx+off(j)+col]
//				}
//			}
//		}
//	}
func dwFiltGo(k, s, vw int, acc, dy []float32, ldd int, x []float32, ldx, hoff int, rows, nv int) {
	cols := nv * vw
	acc = acc[:k*k*vw]
	for i := 0; i < k; i++ {
		for r := 0; r < rows; r++ {
			d := dy[r*ldd : r*ldd+cols]
			base := (r*s + i) * ldx
			for j := 0; j < k; j++ {
				off := base + (j%s)*hoff + j/s
				xr := x[off : off+cols]
				a := acc[(i*k+j)*vw : (i*k+j+1)*vw]
				for col, v := range d {
					a[col%vw] += v * xr[col]
				}
			}
		}
	}
}

// dwShape is the geometry of one depthwise call.
type dwShape struct {
	c, n, h, wd, k, s, p, ho, wo int
}

func newDWShape(fn string, c, n, h, wd, k, s int) dwShape {
	if c < 0 || n < 0 || h < 1 || wd < 1 || k < 1 || s < 1 {
		panic(fmt.Sprintf("kernels: %s: bad shape c=%d n=%d h=%d w=%d k=%d s=%d", fn, c, n, h, wd, k, s))
	}
	p := k / 2
	if h+2*p < k || wd+2*p < k {
		panic(fmt.Sprintf("kernels: %s: kernel %d larger than padded input %dx%d", fn, k, h+2*p, wd+2*p))
	}
	d := dwShape{c: c, n: n, h: h, wd: wd, k: k, s: s, p: p}
	d.ho = (h+2*p-k)/s + 1
	d.wo = (wd+2*p-k)/s + 1
	return d
}

func checkLen(fn, name string, have, want int) {
	if have < want {
		panic(fmt.Sprintf("kernels: %s: len(%s) = %d, want >= %d", fn, name, have, want))
	}
}

// dwWorkers bounds the goroutines: about 256k multiply-adds each at least.
func dwWorkers(d dwShape, workers int) int {
	work := d.c * d.n * d.ho * d.wo * d.k * d.k
	return min(max(workers, 1), max(1, work>>18), max(d.c, 1))
}

// dwGroupWidth is the target width in floats of a group's output row:
// small enough that a group's scratch planes stay in L1.
const dwGroupWidth = 128

// dwPlan is the scratch geometry of one pass: g images side by side, each
// wq columns wide in output (phase) space.
type dwPlan struct {
	g, wq, cols, hoff, ldx, rows int
}

// fwdPlan lays out the padded input for DepthwiseForward and
// DepthwiseBackwardFilter: image q's padded column cp at phase cp%s, index
// q*wq + cp/s, with wq = the padded width rounded up to s, over s.
func (d dwShape) fwdPlan(vw int) dwPlan {
	wp := (d.wd + 2*d.p + d.s - 1) / d.s * d.s
	wq := max(wp/d.s, d.wo)
	g := min(max(1, d.n), max(1, dwGroupWidth/wq))
	cols := (g*wq + vw - 1) / vw * vw
	hoff := cols + (d.k-1)/d.s
	return dwPlan{g: g, wq: wq, cols: cols, hoff: hoff, ldx: d.s * hoff, rows: (d.ho-1)*d.s + d.k}
}

// packInput copies image q's plane x into slot q of the scratch plane xp
// with pk, the packing kernel for d.s (nil for strides above 2).
func (d dwShape) packInput(pk dwPackFunc, pl dwPlan, xp, x []float32, q int) {
	rows := min(d.h, pl.rows-d.p)
	base := q*pl.wq + d.p*pl.ldx
	switch {
	case rows <= 0:
		return
	case d.s == 1:
		pk(xp[base+d.p:], nil, pl.ldx, x, d.wd, rows, d.wd)
		return
	case d.s == 2:
		// src[iw] goes to padded column iw+p: phase (iw+p)&1, index
		// (iw+p)>>1 of the slot.
		e := base + (d.p&1)*pl.hoff + d.p>>1
		o := base + ((d.p+1)&1)*pl.hoff + (d.p+1)>>1
		pk(xp[e:], xp[o:], pl.ldx, x, d.wd, rows, d.wd)
		return
	}
	for ih := 0; ih < d.h; ih++ {
		rr := ih + d.p
		if rr >= pl.rows {
			break
		}
		src := x[ih*d.wd : (ih+1)*d.wd]
		dst := xp[rr*pl.ldx : (rr+1)*pl.ldx]
		base := q * pl.wq
		for iw, v := range src {
			cp := iw + d.p
			dst[(cp%d.s)*pl.hoff+base+cp/d.s] = v
		}
	}
}

// DepthwiseForward computes the depthwise convolution y = x ⋆ w in the
// layout [C, N, H, W] (channels first): square kernel k, stride s, zero
// padding k/2 on each side, Ho = (H+2*(k/2)-k)/s+1 (likewise Wo); w is
// [C, k, k], y is [C, N, Ho, Wo] and is overwritten. k ∈ {3,5,7} with
// s ∈ {1,2} have vector kernels; other k and s run the Go twins.
func DepthwiseForward(x []float32, c, n, h, wd int, w []float32, k, s int, y []float32, workers int) {
	const fn = "DepthwiseForward"
	d := newDWShape(fn, c, n, h, wd, k, s)
	checkLen(fn, "x", len(x), c*n*h*wd)
	checkLen(fn, "w", len(w), c*k*k)
	checkLen(fn, "y", len(y), c*n*d.ho*d.wo)
	rowFn, _, vw := dwFor(level(), k, s)
	pk, pk1 := packFor(level(), min(s, 2)), packFor(level(), 1)
	pl := d.fwdPlan(vw)
	parallelFor(c, dwWorkers(d, workers), func(lo, hi int) {
		xp := make([]float32, pl.rows*pl.ldx)
		yp := make([]float32, d.ho*pl.cols)
		for ci := lo; ci < hi; ci++ {
			wc := w[ci*k*k : (ci+1)*k*k]
			for n0 := 0; n0 < n; n0 += pl.g {
				cnt := min(pl.g, n-n0)
				for q := 0; q < cnt; q++ {
					p := ci*n + n0 + q
					d.packInput(pk, pl, xp, x[p*h*wd:(p+1)*h*wd], q)
				}
				rowFn(yp, pl.cols, xp, pl.ldx, pl.hoff, wc, d.ho, pl.cols/vw)
				for q := 0; q < cnt; q++ {
					p := ci*n + n0 + q
					pk1(y[p*d.ho*d.wo:(p+1)*d.ho*d.wo], nil, d.wo, yp[q*pl.wq:], pl.cols, d.ho, d.wo)
				}
			}
		}
	})
}

// DepthwiseBackwardData computes dx = ∂L/∂x of DepthwiseForward given
// dy = ∂L/∂y ([C, N, Ho, Wo]); dx ([C, N, H, W]) is overwritten. Stride 1
// (and strides above 2) run the stride-1 row kernel over dy (dilated by s)
// padded, with the filter flipped; stride 2 splits dx into its four
// (row, column) parity phases, each a stride-1 correlation of dy with a
// quarter of the filter (dwBackwardDataS2).
func DepthwiseBackwardData(dy []float32, c, n, h, wd int, w []float32, k, s int, dx []float32, workers int) {
	const fn = "DepthwiseBackwardData"
	d := newDWShape(fn, c, n, h, wd, k, s)
	checkLen(fn, "dy", len(dy), c*n*d.ho*d.wo)
	checkLen(fn, "w", len(w), c*k*k)
	checkLen(fn, "dx", len(dx), c*n*h*wd)
	if s == 2 {
		dwBackwardDataS2(d, dy, w, dx, workers)
		return
	}
	rowFn, _, vw := dwFor(level(), k, 1)
	pk1 := packFor(level(), 1)
	// Image q's block of the dilated, padded dy is lq = W+k-1 columns wide;
	// dy[oh][ow] lands at row oh*s+e, column q*lq+ow*s+e.
	lq := wd + k - 1
	g := min(max(1, n), max(1, dwGroupWidth/lq))
	cols := (g*lq + vw - 1) / vw * vw
	ldq, hq := cols+k-1, h+k-1
	e := k - 1 - d.p
	parallelFor(c, dwWorkers(d, workers), func(lo, hi int) {
		qp := make([]float32, hq*ldq)
		xp := make([]float32, h*cols)
		wf := make([]float32, k*k)
		for ci := lo; ci < hi; ci++ {
			wc := w[ci*k*k : (ci+1)*k*k]
			for t := range wf {
				wf[t] = wc[k*k-1-t]
			}
			for n0 := 0; n0 < n; n0 += g {
				cnt := min(g, n-n0)
				for q := 0; q < cnt; q++ {
					p := ci*n + n0 + q
					src := dy[p*d.ho*d.wo : (p+1)*d.ho*d.wo]
					if s == 1 {
						pk1(qp[e*ldq+q*lq+e:], nil, ldq, src, d.wo, min(d.ho, hq-e), d.wo)
						continue
					}
					for oh := 0; oh < d.ho; oh++ {
						u := oh*s + e
						if u >= hq {
							break
						}
						qr := qp[u*ldq+q*lq : u*ldq+(q+1)*lq]
						sr := src[oh*d.wo : (oh+1)*d.wo]
						for ow, v := range sr {
							qr[ow*s+e] = v
						}
					}
				}
				rowFn(xp, cols, qp, ldq, ldq, wf, h, cols/vw)
				for q := 0; q < cnt; q++ {
					p := ci*n + n0 + q
					pk1(dx[p*h*wd:(p+1)*h*wd], nil, wd, xp[q*lq:], cols, h, wd)
				}
			}
		}
	})
}

// DepthwiseBackwardFilter computes dw = ∂L/∂w ([C, k, k], overwritten) of
// DepthwiseForward given x and dy. Each channel's sums run over groups of
// images, output rows and columns in a fixed order (lane-wise over
// vector-width column groups, then across lanes), independent of workers.
func DepthwiseBackwardFilter(x, dy []float32, c, n, h, wd int, k, s int, dw []float32, workers int) {
	const fn = "DepthwiseBackwardFilter"
	d := newDWShape(fn, c, n, h, wd, k, s)
	checkLen(fn, "x", len(x), c*n*h*wd)
	checkLen(fn, "dy", len(dy), c*n*d.ho*d.wo)
	checkLen(fn, "dw", len(dw), c*k*k)
	_, filtFn, vw := dwFor(level(), k, s)
	pk, pk1 := packFor(level(), min(s, 2)), packFor(level(), 1)
	pl := d.fwdPlan(vw)
	parallelFor(c, dwWorkers(d, workers), func(lo, hi int) {
		xp := make([]float32, pl.rows*pl.ldx)
		acc := make([]float32, k*k*vw)
		// dyp holds each image's dy at row r, columns q*wq+ow; the other
		// columns stay zero so that outputs straddling images add nothing.
		dyp := make([]float32, d.ho*pl.cols)
		for ci := lo; ci < hi; ci++ {
			clear(acc)
			for n0 := 0; n0 < n; n0 += pl.g {
				cnt := min(pl.g, n-n0)
				if cnt < pl.g {
					clear(xp)
					clear(dyp)
				}
				for q := 0; q < cnt; q++ {
					p := ci*n + n0 + q
					d.packInput(pk, pl, xp, x[p*h*wd:(p+1)*h*wd], q)
					pk1(dyp[q*pl.wq:], nil, pl.cols, dy[p*d.ho*d.wo:(p+1)*d.ho*d.wo], d.wo, d.ho, d.wo)
				}
				filtFn(acc, dyp, pl.cols, xp, pl.ldx, pl.hoff, d.ho, pl.cols/vw)
			}
			out := dw[ci*k*k : (ci+1)*k*k]
			for t := range out {
				sum := float32(0)
				for _, v := range acc[t*vw : (t+1)*vw] {
					sum += v
				}
				out[t] = sum
			}
		}
	})
}

// dwPhase is one parity phase of a stride-2 backward data pass: outputs
// dx[2u+a][2v+b] for u < rows, v < cols, from ni×nj filter taps.
type dwPhase struct {
	i0, ni, oa int // first tap row, tap rows, dy row offset (likewise j0, nj, ob)
	j0, nj, ob int
	rows, cols int
}

// s2Phase describes phase (a, b): taps i ≡ a+p (mod 2) reach it, and
//
//	dx[2u+a][2v+b] = Σ_{t<ni, t2<nj} w[i0+2(ni-1-t)][j0+2(nj-1-t2)] · dy[u+oa+t][v+ob+t2].
func (d dwShape) s2Phase(a, b int) dwPhase {
	f := dwPhase{i0: (a + d.p) & 1, j0: (b + d.p) & 1}
	f.ni, f.nj = (d.k-f.i0+1)/2, (d.k-f.j0+1)/2
	f.oa = (a+d.p-f.i0)/2 - (f.ni - 1)
	f.ob = (b+d.p-f.j0)/2 - (f.nj - 1)
	f.rows, f.cols = (d.h-a+1)/2, (d.wd-b+1)/2
	return f
}

// dwBackwardDataS2 is DepthwiseBackwardData for stride 2. dy is copied into
// a padded scratch plane (images side by side, lq columns each, a margin
// m on the top and left); each phase runs the stride-1 row kernel of size
// kq (the phase's filter quarter, flipped and zero-padded to kq×kq) over
// the plane at its offset, and the interleave kernel merges the phases
// into dx rows.
func dwBackwardDataS2(d dwShape, dy, w, dx []float32, workers int) {
	k, n := d.k, d.n
	var ph [4]dwPhase
	m, kq := 0, 3
	for i := range ph {
		ph[i] = d.s2Phase(i/2, i%2)
		m = max(m, -ph[i].oa, -ph[i].ob)
		kq = max(kq, ph[i].ni, ph[i].nj)
	}
	kq |= 1 // the row kernels are odd-sized
	rowFn, _, vw := dwFor(level(), kq, 1)
	pk1, unpack := packFor(level(), 1), unpackFor(level())
	lq, hq := d.wo+m, d.ho+m
	for _, f := range ph {
		lq = max(lq, f.cols+f.ob+m+kq-1)
		hq = max(hq, f.rows+f.oa+m+kq)
	}
	g := min(max(1, n), max(1, dwGroupWidth/lq))
	cols := (g*lq + vw - 1) / vw * vw
	ldq := cols + kq - 1 + 2*m + 1
	parallelFor(d.c, dwWorkers(d, workers), func(lo, hi int) {
		qp := make([]float32, hq*ldq)
		var yp [4][]float32
		var wq [4][]float32
		for i := range yp {
			yp[i] = make([]float32, ph[i].rows*cols)
			wq[i] = make([]float32, kq*kq)
		}
		for ci := lo; ci < hi; ci++ {
			wc := w[ci*k*k : (ci+1)*k*k]
			for i, f := range ph {
				for t := 0; t < f.ni; t++ {
					for t2 := 0; t2 < f.nj; t2++ {
						wq[i][t*kq+t2] = wc[(f.i0+2*(f.ni-1-t))*k+f.j0+2*(f.nj-1-t2)]
					}
				}
			}
			for n0 := 0; n0 < n; n0 += g {
				cnt := min(g, n-n0)
				for q := 0; q < cnt; q++ {
					p := ci*n + n0 + q
					pk1(qp[m*ldq+q*lq+m:], nil, ldq, dy[p*d.ho*d.wo:(p+1)*d.ho*d.wo], d.wo, d.ho, d.wo)
				}
				for i, f := range ph {
					if f.rows > 0 && f.cols > 0 {
						rowFn(yp[i], cols, qp[(f.oa+m)*ldq+f.ob+m:], ldq, ldq, wq[i], f.rows, cols/vw)
					}
				}
				for q := 0; q < cnt; q++ {
					out := dx[(ci*n+n0+q)*d.h*d.wd : (ci*n+n0+q+1)*d.h*d.wd]
					for a := 0; a < 2; a++ {
						if rows := ph[2*a].rows; rows > 0 {
							unpack(out[a*d.wd:], 2*d.wd, yp[2*a][q*lq:], yp[2*a+1][q*lq:], cols, rows, d.wd)
						}
					}
				}
			}
		}
	})
}
