//go:build !noasm && !purego

package runtime

// Registers the generated AVX2+FMA depthwise kernels of zdw_avx2_amd64.s,
// by {k, stride}, and the whole-map kernels, by k.
func init() {
	dwImpls[levelAVX2] = &dwImpl{vw: 8, kernels: map[[2]int]dwFunc{
		{3, 1}: dwK3S1AVX2, {3, 2}: dwK3S2AVX2,
		{5, 1}: dwK5S1AVX2, {5, 2}: dwK5S2AVX2,
		{7, 1}: dwK7S1AVX2, {7, 2}: dwK7S2AVX2,
	}, maps: map[int]dwMapFunc{5: dwMapK5W7AVX2, 7: dwMapK7W7AVX2}}
}
