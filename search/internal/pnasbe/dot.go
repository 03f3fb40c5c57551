package pnasbe

import (
	"fmt"

	"github.com/pnasml/pnas/runtime/kernels"
)

// operand describes a DotGeneral operand as a batch of row-major matrices.
type operand struct {
	buf   *Buffer
	trans bool // stored as [B, cols, rows] of op(X)
	free  bool // buf is scratch to release
}

// arrangement returns x's axes in the order batch, g1, g2 and whether that
// order is x's memory order (unit axes ignored).
func inOrder(dims []int, order []int) bool {
	last := -1
	for _, a := range order {
		if dims[a] == 1 {
			continue
		}
		if a < last {
			return false
		}
		last = a
	}
	return true
}

func concatAxes(parts ...[]int) []int {
	var out []int
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func prod(dims []int, axes []int) int {
	p := 1
	for _, a := range axes {
		p *= dims[a]
	}
	return p
}

// prepare returns x as [B, first, second] (trans false) or [B, second,
// first] (trans true) without copying when its memory order allows, else a
// transposed copy as [B, first, second].
func (r *run) prepare(x *Buffer, batch, first, second []int) operand {
	dims := x.shape.Dimensions
	if inOrder(dims, concatAxes(batch, first, second)) {
		return operand{buf: x}
	}
	if inOrder(dims, concatAxes(batch, second, first)) {
		return operand{buf: x, trans: true}
	}
	perm := concatAxes(batch, first, second)
	td := make([]int, len(perm))
	for i, p := range perm {
		td[i] = dims[p]
	}
	t := r.temp(x.shape.DType, td...)
	r.transpose(x, perm, t)
	return operand{buf: t, free: true}
}

func (r *run) dot(l, rt *Buffer, a *dotAttr, out *Buffer) error {
	ld, rd := l.shape.Dimensions, rt.shape.Dimensions
	lf, rf := freeAxes(len(ld), a.lc, a.lb), freeAxes(len(rd), a.rc, a.rb)
	B, M, K, N := prod(ld, a.lb), prod(ld, lf), prod(ld, a.lc), prod(rd, rf)
	// op(A) is [M, K], op(B) is [K, N].
	A := r.prepare(l, a.lb, lf, a.lc)
	Bm := r.prepare(rt, a.rb, a.rc, rf)
	defer func() {
		if A.free {
			r.release(A.buf)
		}
		if Bm.free {
			r.release(Bm.buf)
		}
	}()
	lda := K
	if A.trans {
		lda = M
	}
	ldb := N
	if Bm.trans {
		ldb = K
	}
	switch o := out.flat.(type) {
	case []float32:
		if K == 0 {
			clear(o)
			return nil
		}
		if M == 1 || N == 1 {
			gemv(B, A.trans, Bm.trans, M, N, K, A.buf.flat.([]float32), lda, Bm.buf.flat.([]float32), ldb, o, r.workers)
			return nil
		}
		kernels.SgemmBatched(B, A.trans, Bm.trans, M, N, K, 1, A.buf.flat.([]float32), lda, M*K,
			Bm.buf.flat.([]float32), ldb, K*N, 0, o, N, M*N, r.workers)
	case []float64:
		gemm64(B, A.trans, Bm.trans, M, N, K, A.buf.flat.([]float64), lda, M*K,
			Bm.buf.flat.([]float64), ldb, K*N, o, N, M*N, r.workers)
	default:
		return fmt.Errorf("DotGeneral of %s not supported", out.shape.DType)
	}
	return nil
}

// gemm64 is the float64 matrix product (used by the gradient checks; not
// tuned): C = op(A)·op(B) per batch.
func gemm64(batch int, ta, tb bool, m, n, k int, a []float64, lda, sa int, b []float64, ldb, sb int, c []float64, ldc, sc int, workers int) {
	parallel(batch*m, workers, batch*m*n*k, func(lo, hi int) {
		for it := lo; it < hi; it++ {
			bi, i := it/m, it%m
			cr := c[bi*sc+i*ldc : bi*sc+i*ldc+n]
			clear(cr)
			for p := 0; p < k; p++ {
				var av float64
				if ta {
					av = a[bi*sa+p*lda+i]
				} else {
					av = a[bi*sa+i*lda+p]
				}
				if tb {
					for j := range cr {
						cr[j] += av * b[bi*sb+j*ldb+p]
					}
				} else {
					br := b[bi*sb+p*ldb : bi*sb+p*ldb+n]
					for j, bv := range br {
						cr[j] += av * bv
					}
				}
			}
		}
	})
}

// gemv is the batched product when op(A) has one row or op(B) one column
// (per-channel statistics, the classifier's bias-like products): dot
// products of contiguous rows, or sums of scaled rows, each output element
// accumulated in a fixed order by one goroutine.
func gemv(batch int, ta, tb bool, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, workers int) {
	sa, sb := m*k, k*n
	if n == 1 {
		// c[bi, i] = Σ_p opA[i, p] b[p]; b's column is contiguous (and so
		// is A's row when m == 1, transposed or not).
		if !ta || m == 1 {
			parallel(batch*m, workers, batch*m*k, func(lo, hi int) {
				for it := lo; it < hi; it++ {
					bi, i := it/m, it%m
					c[it] = kernels.Dot(a[bi*sa+i*lda:bi*sa+i*lda+k], b[bi*sb:bi*sb+k])
				}
			})
			return
		}
		// A stored [k, m]: c row = Σ_p b[p] * A[p, :].
		parallel(batch, workers, batch*m*k, func(lo, hi int) {
			for bi := lo; bi < hi; bi++ {
				cr := c[bi*m : (bi+1)*m]
				clear(cr)
				for p := 0; p < k; p++ {
					kernels.Axpy(b[bi*sb+p], a[bi*sa+p*lda:bi*sa+p*lda+m], cr)
				}
			}
		})
		return
	}
	// m == 1: c[bi, j] = Σ_p a[p] opB[p, j]; a's row is contiguous.
	if tb || n == 1 {
		parallel(batch*n, workers, batch*n*k, func(lo, hi int) {
			for it := lo; it < hi; it++ {
				bi, j := it/n, it%n
				c[it] = kernels.Dot(a[bi*sa:bi*sa+k], b[bi*sb+j*ldb:bi*sb+j*ldb+k])
			}
		})
		return
	}
	parallel(batch, workers, batch*n*k, func(lo, hi int) {
		for bi := lo; bi < hi; bi++ {
			cr := c[bi*n : (bi+1)*n]
			clear(cr)
			for p := 0; p < k; p++ {
				kernels.Axpy(a[bi*sa+p], b[bi*sb+p*ldb:bi*sb+p*ldb+n], cr)
			}
		}
	})
}
