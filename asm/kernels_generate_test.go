package asm

// The generator also writes the kernels of runtime/kernels; TestGeneratedCurrent
// checks them with the runtime's.
func init() {
	generated = append(generated,
		"kernels/zsgemm_amd64.s", "kernels/zsgemm_amd64.go",
		"kernels/zdwk_amd64.s", "kernels/zdwk_amd64.go",
		"kernels/zelem_amd64.s", "kernels/zelem_amd64.go",
		"kernels/zdot_amd64.s", "kernels/zdot_amd64.go",
		"kernels/zpack_amd64.s", "kernels/zpack_amd64.go",
		"kernels/zpeak_amd64.s", "kernels/zpeak_amd64.go")
}
