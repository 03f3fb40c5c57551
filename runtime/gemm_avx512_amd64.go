//go:build !noasm && !purego

package runtime

// Registers the generated AVX-512 GEMM micro-kernels of
// zgemm_avx512_amd64.s: tiles of 1..14 rows by 16 or 32 columns, and
// full tiles whose C rows wrap across the row groups of a map with a halo.
func init() {
	gemmImpls[levelAVX512] = &gemmImpl{mr: 14, vw: 16, maxNV: 2, tiles: [][]tileFunc{
		{gemmAVX512m1n1, gemmAVX512m2n1, gemmAVX512m3n1, gemmAVX512m4n1, gemmAVX512m5n1, gemmAVX512m6n1, gemmAVX512m7n1,
			gemmAVX512m8n1, gemmAVX512m9n1, gemmAVX512m10n1, gemmAVX512m11n1, gemmAVX512m12n1, gemmAVX512m13n1, gemmAVX512m14n1},
		{gemmAVX512m1n2, gemmAVX512m2n2, gemmAVX512m3n2, gemmAVX512m4n2, gemmAVX512m5n2, gemmAVX512m6n2, gemmAVX512m7n2,
			gemmAVX512m8n2, gemmAVX512m9n2, gemmAVX512m10n2, gemmAVX512m11n2, gemmAVX512m12n2, gemmAVX512m13n2, gemmAVX512m14n2},
	},
		wrap: []wrapFunc{gemmAVX512Wrapn1, gemmAVX512Wrapn2},
	}
}
