//go:build !noasm && !purego

package runtime

// Registers the generated NEON depthwise kernels of zdw_neon_arm64.s, by
// {k, stride}. Channel blocks are multiples of 8 floats (ChannelAlign).
func init() {
	dwImpls[levelNEON] = &dwImpl{vw: 8, kernels: map[[2]int]dwFunc{
		{3, 1}: dwK3S1NEON, {3, 2}: dwK3S2NEON,
		{5, 1}: dwK5S1NEON, {5, 2}: dwK5S2NEON,
		{7, 1}: dwK7S1NEON, {7, 2}: dwK7S2NEON,
	}}
}
