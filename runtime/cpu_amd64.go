//go:build !noasm && !purego

package runtime

import "golang.org/x/sys/cpu"

// cpuHas maps the feature names of levelFeatures to x/sys/cpu's flags.
var cpuHas = map[string]*bool{
	"avx2": &cpu.X86.HasAVX2, "fma": &cpu.X86.HasFMA, "avx512f": &cpu.X86.HasAVX512F, "avx512vl": &cpu.X86.HasAVX512VL, "bmi2": &cpu.X86.HasBMI2,
}

// detectLevel picks the highest kernel level the CPU supports.
func detectLevel() int {
	return detectWith(func(f string) bool { p := cpuHas[f]; return p != nil && *p })
}
