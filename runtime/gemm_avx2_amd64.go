//go:build !noasm && !purego

package runtime

// Registers the generated AVX2+FMA GEMM micro-kernels of
// zgemm_avx2_amd64.s: tiles of 1..6 rows by 8 or 16 columns, and
// full tiles whose C rows wrap across the row groups of a map with a halo;
// tiles of 1..4 rows by 24 columns for the last columns of a GEMM 8 past
// a multiple of 16 wide.
func init() {
	gemmImpls[levelAVX2] = &gemmImpl{mr: 6, vw: 8, maxNV: 2, tiles: [][]tileFunc{
		{gemmAVX2m1n1, gemmAVX2m2n1, gemmAVX2m3n1, gemmAVX2m4n1, gemmAVX2m5n1, gemmAVX2m6n1},
		{gemmAVX2m1n2, gemmAVX2m2n2, gemmAVX2m3n2, gemmAVX2m4n2, gemmAVX2m5n2, gemmAVX2m6n2},
	},
		wrap:         []wrapFunc{gemmAVX2Wrapn1, gemmAVX2Wrapn2},
		prefetchNext: true,
		tail: &gemmImpl{mr: 4, vw: 8, maxNV: 3, tiles: [][]tileFunc{nil, nil,
			{gemmAVX2m1n3, gemmAVX2m2n3, gemmAVX2m3n3, gemmAVX2m4n3}},
			wrap: []wrapFunc{nil, nil, gemmAVX2Wrapn3}},
	}
}
