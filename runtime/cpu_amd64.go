//go:build !noasm && !purego

package runtime

import "golang.org/x/sys/cpu"

// detectLevel picks the highest kernel level the CPU supports.
func detectLevel() int {
	switch {
	case cpu.X86.HasAVX512F && cpu.X86.HasAVX2 && cpu.X86.HasFMA && cpu.X86.HasBMI2:
		return levelAVX512
	case cpu.X86.HasAVX2 && cpu.X86.HasFMA:
		return levelAVX2
	}
	return levelGo
}
