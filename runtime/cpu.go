package runtime

import (
	"fmt"
	"os"
	goruntime "runtime"
	"sync/atomic"
)

// A kernel set is a family of implementations chosen once for the whole
// process. Levels are ordered: a higher level needs more of the CPU.
const (
	levelGo     = 0 // portable Go, every architecture
	levelAVX2   = 1 // amd64 AVX2 + FMA3
	levelAVX512 = 2 // amd64 AVX-512F
	levelNEON   = 1 // arm64 Advanced SIMD (names per architecture: levelNamesFor)
	numLevels   = 3
)

var levelNames = levelNamesFor(goruntime.GOARCH)

// isIntel reports an Intel CPU (CPUID vendor, set by cpuid_amd64.go);
// false where unknown.
var isIntel bool

// cpuFamily decodes the family of CPUID leaf 1's EAX: the base family,
// plus the extended family when the base is 0xf.
func cpuFamily(eax uint32) uint32 {
	f := eax >> 8 & 0xf
	if f == 0xf {
		f += eax >> 20 & 0xff
	}
	return f
}

// halfWidth512 reports a CPU whose AVX-512 units have the AVX2 FLOP rate,
// running each 512-bit operation as two 256-bit halves (AMD Zen 4; set by
// cpuid_amd64.go): there the AVX-512 programs run shallow and narrow
// GEMMs with the AVX2 kernels (gemmForShape).
var halfWidth512 bool

// levelFeatures lists, per level of this architecture, the CPU features
// its kernels need (the feature names of targets/presets.json).
var levelFeatures = levelFeaturesFor(goruntime.GOARCH)

// levelFeaturesFor lists, per kernel level of an architecture, the CPU
// features detection requires for it: the kernels execute them and the
// operating system must save their register state. The AVX-512 kernels
// also use AVX2/FMA3 tails, YMM registers 16-31 (AVX512VL) and BMI2
// (SHLX, BZHI) for masks.
func levelFeaturesFor(goarch string) [numLevels][]string {
	switch goarch {
	case "arm64":
		return [numLevels][]string{nil, {"asimd"}, nil}
	case "amd64":
		return [numLevels][]string{nil, {"avx2", "fma"}, {"avx2", "fma", "avx512f", "avx512vl", "bmi2"}}
	}
	return [numLevels][]string{}
}

// detectWith returns the highest level of this architecture whose
// features all satisfy has.
func detectWith(has func(feature string) bool) int {
	for l := numLevels - 1; l > levelGo; l-- {
		if levelNames[l] == "" || len(levelFeatures[l]) == 0 {
			continue
		}
		ok := true
		for _, f := range levelFeatures[l] {
			ok = ok && has(f)
		}
		if ok {
			return l
		}
	}
	return levelGo
}

// levelNamesFor names the kernel levels of an architecture: on arm64 level
// 1 is NEON and there is no level 2; elsewhere they are the amd64 names
// (other architectures reach only level 0, "go").
func levelNamesFor(goarch string) [numLevels]string {
	if goarch == "arm64" {
		return [numLevels]string{"go", "neon", ""}
	}
	return [numLevels]string{"go", "avx2", "avx512"}
}

// hwLevel is the highest level this CPU and this build can run, capped by
// the environment: PNAS_NOASM=1 allows only "go", PNAS_KERNELS=<set>
// allows nothing above that set.
var hwLevel = capLevel(detectLevel(), os.Getenv("PNAS_NOASM"), os.Getenv("PNAS_KERNELS"))

var activeLevel atomic.Int32

func init() { activeLevel.Store(int32(hwLevel)) }

func capLevel(l int, noasm, kernels string) int {
	if noasm == "1" {
		return levelGo
	}
	if v, ok := levelByName(kernels); ok && v < l {
		return v
	}
	return l
}

func levelByName(name string) (int, bool) {
	for i, n := range levelNames {
		if n != "" && n == name {
			return i, true
		}
	}
	return 0, false
}

// level is the active kernel level.
func level() int { return int(activeLevel.Load()) }

// KernelSet names the active kernel set: "avx512", "avx2" or "go" on
// amd64, "neon" or "go" on arm64.
func KernelSet() string { return levelNames[level()] }

// KernelSets lists the kernel sets this CPU and build can run, lowest
// first, within the caps of PNAS_NOASM and PNAS_KERNELS. It always starts
// with "go".
func KernelSets() []string {
	return append([]string(nil), levelNames[:hwLevel+1]...)
}

// AllKernelSets lists the kernel sets of this architecture, lowest
// first, whether or not this CPU runs them.
func AllKernelSets() []string {
	var out []string
	for _, n := range levelNames {
		if n != "" {
			out = append(out, n)
		}
	}
	return out
}

// SetKernelSet selects the kernel set used by all later calls, for example
// "avx2" to stay within GOAMD64=v3 on a machine that has AVX-512. It fails
// for an unknown name or one not in KernelSets. Operators whose
// family has no kernel at the chosen level use the next lower one. It must
// not be called while an operator runs.
func SetKernelSet(name string) error {
	l, ok := levelByName(name)
	if !ok {
		return fmt.Errorf("runtime: unknown kernel set %q (want one of %q)", name, levelNames)
	}
	if l > hwLevel {
		return fmt.Errorf("runtime: kernel set %q not available here (available: %q)", name, KernelSets())
	}
	activeLevel.Store(int32(l))
	return nil
}
