package kernels

import (
	"fmt"
	"sync"
)

// This file is the matrix product's driver. op(A) and op(B) are packed into
// cache-sized blocks (BLIS order: columns of C in blocks of gemmNC, K in
// blocks of gemmKC, rows in blocks of gemmMC) and a micro-kernel computes
// one mr×nr tile of C from an mr-row panel of packed A and an nr-column
// panel of packed B. alpha is folded into packed A. Every element of C is
// reduced over K by one goroutine in the same order (K blocks ascending,
// each summed from zero and then added to C), so the result does not depend
// on how C is split between workers.

// Blocking sizes in floats. An A block (gemmMC×gemmKC) stays in L2, a B
// panel (gemmKC×nr) in L1.
const (
	gemmKC = 256
	gemmMC = 144 // a multiple of every mr (4, 6, 12)
	gemmNC = 2048
)

// gemmKernel is one level's micro-kernel for tiles of mr rows by nr columns.
// fn has the semantics of sgemmTileGo.
type gemmKernel struct {
	mr, nr int
	fn     func(kc int, a, b []float32, ldb int, c []float32, ldc int, load bool)
}

var gemmKernels [numLevels]*gemmKernel

func init() { gemmKernels[levelGo] = &gemmKernel{mr: 4, nr: 4, fn: sgemm4x4Go} }

// gemmFor returns the micro-kernel of the highest level <= l.
func gemmFor(l int) *gemmKernel {
	for ; l > 0; l-- {
		if gemmKernels[l] != nil {
			return gemmKernels[l]
		}
	}
	return gemmKernels[levelGo]
}

// sgemmTileGo is the reference of every GEMM micro-kernel. a is a packed
// panel of kc columns of mr floats, b a panel of kc rows of nr floats, ldb
// apart (nr when packed, the matrix's row stride when read in place):
//
//	for r := 0; r < mr; r++ {
//		for j := 0; j < nr; j++ {
//			s := float32(0)
//			for p := 0; p < kc; p++ {
//				s += a[p*mr+r] * b[p*ldb+j]
//			}
//			if load {
//				c[r*ldc+j] += s
//			} else {
//				c[r*ldc+j] = s
//			}
//		}
//	}
func sgemmTileGo(mr, nr, kc int, a, b []float32, ldb int, c []float32, ldc int, load bool) {
	for r := 0; r < mr; r++ {
		for j := 0; j < nr; j++ {
			s := float32(0)
			for p := 0; p < kc; p++ {
				s += a[p*mr+r] * b[p*ldb+j]
			}
			if load {
				c[r*ldc+j] += s
			} else {
				c[r*ldc+j] = s
			}
		}
	}
}

// sgemm4x4Go is sgemmTileGo with mr = nr = 4, register-blocked.
func sgemm4x4Go(kc int, a, b []float32, ldb int, c []float32, ldc int, load bool) {
	var c00, c01, c02, c03, c10, c11, c12, c13 float32
	var c20, c21, c22, c23, c30, c31, c32, c33 float32
	a = a[:kc*4]
	b = b[:(kc-1)*ldb+4]
	for p := 0; p < kc; p++ {
		ap := a[p*4 : p*4+4 : p*4+4]
		bp := b[p*ldb : p*ldb+4 : p*ldb+4]
		a0, a1, a2, a3 := ap[0], ap[1], ap[2], ap[3]
		b0, b1, b2, b3 := bp[0], bp[1], bp[2], bp[3]
		c00 += a0 * b0
		c01 += a0 * b1
		c02 += a0 * b2
		c03 += a0 * b3
		c10 += a1 * b0
		c11 += a1 * b1
		c12 += a1 * b2
		c13 += a1 * b3
		c20 += a2 * b0
		c21 += a2 * b1
		c22 += a2 * b2
		c23 += a2 * b3
		c30 += a3 * b0
		c31 += a3 * b1
		c32 += a3 * b2
		c33 += a3 * b3
	}
	acc := [16]float32{c00, c01, c02, c03, c10, c11, c12, c13, c20, c21, c22, c23, c30, c31, c32, c33}
	for r := 0; r < 4; r++ {
		row := c[r*ldc : r*ldc+4 : r*ldc+4]
		if load {
			row[0] += acc[r*4]
			row[1] += acc[r*4+1]
			row[2] += acc[r*4+2]
			row[3] += acc[r*4+3]
		} else {
			copy(row, acc[r*4:r*4+4])
		}
	}
}

// Sgemm computes C = alpha*op(A)*op(B) + beta*C, op(X) = X or Xᵀ.
// op(A) is m×k, op(B) is k×n, C is m×n; lda/ldb/ldc are row strides in
// floats (A is stored m×k, or k×m when transA). beta == 0 means C is
// write-only (NaNs in C are ignored). C is split between at most workers
// goroutines by rows or columns, never along k; the result is the same for
// every workers count. It panics when a slice is too short for its shape.
func Sgemm(transA, transB bool, m, n, k int, alpha float32,
	a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int, workers int) {
	checkGemm(transA, transB, m, n, k, len(a), lda, len(b), ldb, len(c), ldc)
	if m == 0 || n == 0 {
		return
	}
	if k == 0 || alpha == 0 {
		parallelFor(m, min(workers, gemmWorkers(m, n, 1)), func(lo, hi int) { scaleC(beta, c, lo, hi, 0, n, ldc) })
		return
	}
	if d := dotFor(level()); d != nil && useDot(transA, transB, m, n, k) {
		mt, nt := (m+d.mr-1)/d.mr, (n+d.nr-1)/d.nr
		w := min(max(workers, 1), gemmWorkers(m, n, k))
		if mt >= nt {
			parallelFor(mt, w, func(lo, hi int) {
				dotRange(d, lo*d.mr, min(hi*d.mr, m), 0, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
			})
			return
		}
		parallelFor(nt, w, func(lo, hi int) {
			dotRange(d, 0, m, lo*d.nr, min(hi*d.nr, n), k, alpha, a, lda, b, ldb, beta, c, ldc)
		})
		return
	}
	g := gemmFor(level())
	mt, nt := (m+g.mr-1)/g.mr, (n+g.nr-1)/g.nr
	w := min(max(workers, 1), gemmWorkers(m, n, k))
	if nt >= mt || nt >= w {
		// Columns of tiles; tiles of nr columns keep the packing aligned.
		parallelFor(nt, w, func(lo, hi int) {
			gemmRange(g, transA, transB, 0, m, lo*g.nr, min(hi*g.nr, n), k, alpha, a, lda, b, ldb, beta, c, ldc)
		})
		return
	}
	parallelFor(mt, w, func(lo, hi int) {
		gemmRange(g, transA, transB, lo*g.mr, min(hi*g.mr, m), 0, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
	})
}

// gemmWorkers bounds the goroutines of an m×n×k product: about 2 MFLOP
// each at least, so small products run on the caller.
func gemmWorkers(m, n, k int) int {
	const perWorker = 1 << 20
	return max(1, m*n*k/perWorker)
}

func checkGemm(transA, transB bool, m, n, k, na, lda, nb, ldb, nc, ldc int) {
	if m < 0 || n < 0 || k < 0 {
		panic(fmt.Sprintf("kernels: Sgemm: negative size m=%d n=%d k=%d", m, n, k))
	}
	check := func(name string, rows, cols, have, ld int) {
		if rows == 0 || cols == 0 {
			return
		}
		if ld < cols {
			panic(fmt.Sprintf("kernels: Sgemm: ld%s = %d, want >= %d", name, ld, cols))
		}
		if need := (rows-1)*ld + cols; have < need {
			panic(fmt.Sprintf("kernels: Sgemm: len(%s) = %d, want >= %d for %d×%d with ld%s = %d", name, have, need, rows, cols, name, ld))
		}
	}
	if transA {
		check("a", k, m, na, lda)
	} else {
		check("a", m, k, na, lda)
	}
	if transB {
		check("b", n, k, nb, ldb)
	} else {
		check("b", k, n, nb, ldb)
	}
	check("c", m, n, nc, ldc)
}

// scaleC sets C[i0:i1, j0:j1] to beta*C (to zero when beta == 0).
func scaleC(beta float32, c []float32, i0, i1, j0, j1, ldc int) {
	if beta == 1 {
		return
	}
	for i := i0; i < i1; i++ {
		row := c[i*ldc+j0 : i*ldc+j1]
		if beta == 0 {
			clear(row)
			continue
		}
		for j := range row {
			row[j] *= beta
		}
	}
}

// gemmBufs are one goroutine's packing buffers.
type gemmBufs struct{ a, b, tile []float32 }

var gemmPool sync.Pool

func getGemmBufs(g *gemmKernel) *gemmBufs {
	if v, ok := gemmPool.Get().(*gemmBufs); ok && len(v.tile) == g.mr*g.nr {
		return v
	}
	return &gemmBufs{
		a:    make([]float32, gemmMC*gemmKC),
		b:    make([]float32, gemmKC*gemmNC),
		tile: make([]float32, g.mr*g.nr),
	}
}

// gemmRange computes C[i0:i1, j0:j1] on the calling goroutine.
func gemmRange(g *gemmKernel, transA, transB bool, i0, i1, j0, j1, k int, alpha float32,
	a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if i0 >= i1 || j0 >= j1 {
		return
	}
	bufs := getGemmBufs(g)
	defer gemmPool.Put(bufs)
	mr, nr := g.mr, g.nr
	direct := useDirectB(transB, i1-i0)
	if beta != 0 {
		scaleC(beta, c, i0, i1, j0, j1, ldc)
	}
	for jc := j0; jc < j1; jc += gemmNC {
		ncb := min(gemmNC, j1-jc)
		for pc := 0; pc < k; pc += gemmKC {
			kcb := min(gemmKC, k-pc)
			load := beta != 0 || pc > 0
			if !direct {
				packB(bufs.b, b, ldb, transB, pc, kcb, jc, ncb, nr)
			} else if ncb%nr != 0 {
				// Only the last, partial panel is packed (zero-padded).
				q := ncb / nr * nr
				packB(bufs.b[q*kcb:], b, ldb, false, pc, kcb, jc+q, ncb-q, nr)
			}
			for ic := i0; ic < i1; ic += gemmMC {
				mcb := min(gemmMC, i1-ic)
				packA(bufs.a, a, lda, transA, ic, mcb, pc, kcb, mr, alpha)
				for jr := 0; jr < ncb; jr += nr {
					nrb := min(nr, ncb-jr)
					bp, bld := bufs.b[(jr/nr)*kcb*nr:], nr
					if direct && nrb == nr {
						bp, bld = b[pc*ldb+jc+jr:], ldb
					}
					for ir := 0; ir < mcb; ir += mr {
						mrb := min(mr, mcb-ir)
						ap := bufs.a[(ir/mr)*kcb*mr:]
						ci := (ic+ir)*ldc + jc + jr
						if mrb == mr && nrb == nr {
							g.fn(kcb, ap, bp, bld, c[ci:], ldc, load)
							continue
						}
						g.fn(kcb, ap, bp, bld, bufs.tile, nr, false)
						for r := 0; r < mrb; r++ {
							row := c[ci+r*ldc : ci+r*ldc+nrb]
							t := bufs.tile[r*nr : r*nr+nrb]
							if load {
								for j, v := range t {
									row[j] += v
								}
							} else {
								copy(row, t)
							}
						}
					}
				}
			}
		}
	}
}

// useDirectB reports whether full B panels are read in place (B not
// transposed) instead of packed: when few rows of C use each panel, packing
// costs as much as the product.
var useDirectB = func(transB bool, rows int) bool { return !transB && rows <= gemmMC }

// packA copies alpha*op(A)[i0:i0+mc, p0:p0+kc] into panels of mr rows:
// panel q holds dst[q*kc*mr + p*mr + r] = alpha*op(A)[i0+q*mr+r, p0+p],
// zero for rows past mc.
func packA(dst, a []float32, lda int, trans bool, i0, mc, p0, kc, mr int, alpha float32) {
	for ip := 0; ip < mc; ip += mr {
		d := dst[(ip/mr)*kc*mr : (ip/mr+1)*kc*mr]
		rows := min(mr, mc-ip)
		if !trans {
			for r := 0; r < rows; r++ {
				src := a[(i0+ip+r)*lda+p0 : (i0+ip+r)*lda+p0+kc]
				for p, v := range src {
					d[p*mr+r] = alpha * v
				}
			}
		} else {
			for p := 0; p < kc; p++ {
				src := a[(p0+p)*lda+i0+ip : (p0+p)*lda+i0+ip+rows]
				dd := d[p*mr : p*mr+rows]
				for r, v := range src {
					dd[r] = alpha * v
				}
			}
		}
		if rows < mr {
			for p := 0; p < kc; p++ {
				clear(d[p*mr+rows : p*mr+mr])
			}
		}
	}
}

// packB copies op(B)[p0:p0+kc, j0:j0+nc] into panels of nr columns:
// panel q holds dst[q*kc*nr + p*nr + j] = op(B)[p0+p, j0+q*nr+j], zero for
// columns past nc.
func packB(dst, b []float32, ldb int, trans bool, p0, kc, j0, nc, nr int) {
	for jp := 0; jp < nc; jp += nr {
		d := dst[(jp/nr)*kc*nr : (jp/nr+1)*kc*nr]
		cols := min(nr, nc-jp)
		if !trans {
			for p := 0; p < kc; p++ {
				dd := d[p*nr : p*nr+nr]
				copy(dd, b[(p0+p)*ldb+j0+jp:(p0+p)*ldb+j0+jp+cols])
				clear(dd[cols:])
			}
			continue
		}
		for j := 0; j < cols; j++ {
			src := b[(j0+jp+j)*ldb+p0 : (j0+jp+j)*ldb+p0+kc]
			for p, v := range src {
				d[p*nr+j] = v
			}
		}
		if cols < nr {
			for p := 0; p < kc; p++ {
				clear(d[p*nr+cols : p*nr+nr])
			}
		}
	}
}

// SgemmBatched runs batch independent products; matrix i of A starts at
// a[i*strideA] (likewise B and C). With at least workers matrices, each
// goroutine takes whole matrices; otherwise each product is split. The
// result is the same for every workers count.
func SgemmBatched(batch int, transA, transB bool, m, n, k int, alpha float32,
	a []float32, lda, strideA int, b []float32, ldb, strideB int, beta float32,
	c []float32, ldc, strideC int, workers int) {
	if batch < 0 {
		panic(fmt.Sprintf("kernels: SgemmBatched: negative batch %d", batch))
	}
	one := func(i, w int) {
		Sgemm(transA, transB, m, n, k, alpha, a[min(i*strideA, len(a)):], lda,
			b[min(i*strideB, len(b)):], ldb, beta, c[min(i*strideC, len(c)):], ldc, w)
	}
	if batch >= workers {
		parallelFor(batch, workers, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				one(i, 1)
			}
		})
		return
	}
	for i := 0; i < batch; i++ {
		one(i, workers)
	}
}

// dotKernels is one level's dot-product tiles for C = A·Bᵀ with both
// operands contiguous along k: tiles[r-1][c-1] has the semantics of
// sdotTileGo with mr = r, nr = c.
type dotKernels struct {
	mr, nr, vw int
	tiles      [][]func(k int, a []float32, lda int, b []float32, ldb int, t []float32)
}

var dotImpls [numLevels]*dotKernels

// dotFor returns the dot-product tiles of the highest level <= l, or nil.
func dotFor(l int) *dotKernels {
	for ; l > 0; l-- {
		if dotImpls[l] != nil {
			return dotImpls[l]
		}
	}
	return nil
}

// useDot picks the unpacked dot-product path: A·Bᵀ (both operands
// contiguous along k) with k long and C narrow, as for a filter gradient
// dW = dY·Xᵀ, where packing would cost as much as the product. The choice
// depends on the shape only, never on workers.
func useDot(transA, transB bool, m, n, k int) bool {
	return !transA && transB && k >= 256 && min(m, n) <= 96
}

// sdotTileGo is the reference of every dot-product tile: for i < mr,
// j < nr, vw lanes accumulate along k (k a multiple of vw), then fold
// pairwise, the upper half of the lanes onto the lower half, to one float:
//
//	var l [vw]float32
//	for p := 0; p < k; p++ {
//		l[p%vw] += a[i*lda+p] * b[j*ldb+p]
//	}
//	for h := vw / 2; h >= 1; h /= 2 {
//		for q := 0; q < h; q++ {
//			l[q] += l[h+q]
//		}
//	}
//	t[i*nr+j] = l[0]
func sdotTileGo(mr, nr, vw, k int, a []float32, lda int, b []float32, ldb int, t []float32) {
	l := make([]float32, vw)
	for i := 0; i < mr; i++ {
		for j := 0; j < nr; j++ {
			clear(l)
			ar, br := a[i*lda:i*lda+k], b[j*ldb:j*ldb+k]
			for p, v := range ar {
				l[p%vw] += v * br[p]
			}
			for h := vw / 2; h >= 1; h /= 2 {
				for q := 0; q < h; q++ {
					l[q] += l[h+q]
				}
			}
			t[i*nr+j] = l[0]
		}
	}
}

// dotRange computes C[i0:i1, j0:j1] = alpha*A·Bᵀ + beta*C on the calling
// goroutine: tiles sum the first k&^(vw-1) products, then the rest are
// added in order, then alpha and beta apply.
func dotRange(d *dotKernels, i0, i1, j0, j1, k int, alpha float32,
	a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	kv := k &^ (d.vw - 1)
	var t [64]float32
	for i := i0; i < i1; i += d.mr {
		r := min(d.mr, i1-i)
		for j := j0; j < j1; j += d.nr {
			cc := min(d.nr, j1-j)
			if kv > 0 {
				d.tiles[r-1][cc-1](kv, a[i*lda:], lda, b[j*ldb:], ldb, t[:])
			} else {
				clear(t[:])
			}
			for ii := 0; ii < r; ii++ {
				ar := a[(i+ii)*lda+kv : (i+ii)*lda+k]
				for jj := 0; jj < cc; jj++ {
					s := t[ii*cc+jj]
					br := b[(j+jj)*ldb+kv : (j+jj)*ldb+k]
					for p, v := range ar {
						s += v * br[p]
					}
					s *= alpha
					ce := &c[(i+ii)*ldc+j+jj]
					switch beta {
					case 0:
						*ce = s
					case 1:
						*ce += s
					default:
						*ce = beta**ce + s
					}
				}
			}
		}
	}
}
