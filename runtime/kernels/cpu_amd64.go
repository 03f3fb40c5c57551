//go:build amd64 && !noasm && !purego

package kernels

import "golang.org/x/sys/cpu"

// detectLevel picks the highest kernel level the CPU supports.
func detectLevel() int {
	x := cpu.X86
	switch {
	// The AVX-512 set also runs the AVX2 element-wise kernels and builds
	// lane masks with BMI2's SHLX.
	case x.HasAVX512F && x.HasAVX512BW && x.HasAVX512VL && x.HasAVX512DQ && x.HasAVX2 && x.HasFMA && x.HasBMI2:
		return levelAVX512
	case x.HasAVX2 && x.HasFMA:
		return levelAVX2
	}
	return levelGo
}
