//go:build !noasm && !purego

package runtime

// Registers the generated AVX-512 GEMM micro-kernels of
// zgemm_avx512_amd64.s: tiles of 1..14 rows by 16 or 32 columns, and
// full tiles whose C rows wrap across the row groups of a map with a halo;
// tiles of 1..14 rows by 24 columns (a ZMM and a YMM vector) for the last
// columns of a GEMM 8 past a multiple of 16 wide. On Zen 4, which runs a
// ZMM operation as two YMM halves, those take three quarters of the time
// of a masked 32-column tile (a 56x56 map, 144 to 24 channels: 83 GFLOP/s
// before, docs/perf.md); on cores with 512-bit FMA units both take two
// FMAs per row.
func init() {
	gemmImpls[levelAVX512] = &gemmImpl{mr: 14, vw: 16, maxNV: 2, tiles: [][]tileFunc{
		{gemmAVX512m1n1, gemmAVX512m2n1, gemmAVX512m3n1, gemmAVX512m4n1, gemmAVX512m5n1, gemmAVX512m6n1, gemmAVX512m7n1,
			gemmAVX512m8n1, gemmAVX512m9n1, gemmAVX512m10n1, gemmAVX512m11n1, gemmAVX512m12n1, gemmAVX512m13n1, gemmAVX512m14n1},
		{gemmAVX512m1n2, gemmAVX512m2n2, gemmAVX512m3n2, gemmAVX512m4n2, gemmAVX512m5n2, gemmAVX512m6n2, gemmAVX512m7n2,
			gemmAVX512m8n2, gemmAVX512m9n2, gemmAVX512m10n2, gemmAVX512m11n2, gemmAVX512m12n2, gemmAVX512m13n2, gemmAVX512m14n2},
	},
		wrap:         []wrapFunc{gemmAVX512Wrapn1, gemmAVX512Wrapn2},
		prefetchNext: true,
		tail: &gemmImpl{mr: 14, vw: 8, maxNV: 3, tiles: [][]tileFunc{nil, nil,
			{gemmAVX512m1t24, gemmAVX512m2t24, gemmAVX512m3t24, gemmAVX512m4t24, gemmAVX512m5t24, gemmAVX512m6t24, gemmAVX512m7t24,
				gemmAVX512m8t24, gemmAVX512m9t24, gemmAVX512m10t24, gemmAVX512m11t24, gemmAVX512m12t24, gemmAVX512m13t24, gemmAVX512m14t24}},
			wrap: []wrapFunc{nil, nil, gemmAVX512Wrapt24}},
	}
}
