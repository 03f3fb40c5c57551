//go:build !noasm && !purego

package runtime

// Registers the generated NEON GEMM micro-kernels of zgemm_neon_arm64.s:
// tiles of 1..5 rows by one 16-column panel. The assembly handles full
// panels (ncols == 16); narrower tiles, at the right edge of C, run the
// same kernel into a 16-column buffer and copy their columns out.
func init() {
	gemmImpls[levelNEON] = &gemmImpl{mr: 5, vw: panelW, maxNV: 1, tiles: [][]tileFunc{{
		neonTile(1, gemmNEONm1), neonTile(2, gemmNEONm2), neonTile(3, gemmNEONm3),
		neonTile(4, gemmNEONm4), neonTile(5, gemmNEONm5),
	}}}
}

// neonTile wraps a full-panel kernel of mr rows into a tileFunc.
func neonTile(mr int, k tileFunc) tileFunc {
	return func(a *float32, lda, kseg, nseg, segStride int, b *float32, bstride int,
		c *float32, ldc int, bias, res *float32, ldr, ntiles, ncols, act int) {
		if ncols == panelW {
			k(a, lda, kseg, nseg, segStride, b, bstride, c, ldc, bias, res, ldr, ntiles, ncols, act)
			return
		}
		var cb, rb [5 * panelW]float32
		for t := 0; t < ntiles; t++ {
			var rp *float32
			if res != nil {
				for r := 0; r < mr; r++ {
					copy(rb[r*panelW:r*panelW+ncols], unsafeRow(res, (t*mr+r)*ldr, ncols))
				}
				rp = &rb[0]
			}
			k(unsafeAdd(a, t*mr*lda), lda, kseg, nseg, segStride, b, bstride, &cb[0], panelW, bias, rp, panelW, 1, panelW, act)
			for r := 0; r < mr; r++ {
				copy(unsafeRow(c, (t*mr+r)*ldc, ncols), cb[r*panelW:r*panelW+ncols])
			}
		}
	}
}
