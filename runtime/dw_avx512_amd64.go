//go:build !noasm && !purego

package runtime

// Registers the generated AVX-512 depthwise kernels of zdw_avx512_amd64.s,
// by {k, stride}, and the whole-map kernels, by k.
func init() {
	dwImpls[levelAVX512] = &dwImpl{vw: 16, kernels: map[[2]int]dwFunc{
		{3, 1}: dwK3S1AVX512, {3, 2}: dwK3S2AVX512,
		{5, 1}: dwK5S1AVX512, {5, 2}: dwK5S2AVX512,
		{7, 1}: dwK7S1AVX512, {7, 2}: dwK7S2AVX512,
	}, maps: map[int]dwMapFunc{5: dwMapK5W7AVX512, 7: dwMapK7W7AVX512}}
}
