package kernels

import (
	"fmt"
	"os"
	"sync/atomic"
)

// Kernel levels, ordered: a higher level needs more of the CPU.
const (
	levelGo     = 0 // portable Go
	levelAVX2   = 1 // amd64 AVX2 + FMA3
	levelAVX512 = 2 // amd64 AVX-512 F/BW/VL/DQ
	numLevels   = 3
)

var levelNames = [numLevels]string{"go", "avx2", "avx512"}

// hwLevel is the highest level this CPU and build can run, capped by
// PNAS_NOASM=1 (only "go") and PNAS_KERNELS=<set> (nothing above it).
var hwLevel = capLevel(detectLevel(), os.Getenv("PNAS_NOASM"), os.Getenv("PNAS_KERNELS"))

var activeLevel atomic.Int32

func init() { activeLevel.Store(int32(hwLevel)) }

func capLevel(l int, noasm, set string) int {
	if noasm == "1" {
		return levelGo
	}
	for i, n := range levelNames {
		if n == set && i < l {
			return i
		}
	}
	return l
}

func level() int { return int(activeLevel.Load()) }

// KernelSet names the kernel set in use: "avx512", "avx2" or "go".
func KernelSet() string { return levelNames[level()] }

// KernelSets lists the kernel sets this CPU and build can run, lowest
// first; it always starts with "go".
func KernelSets() []string { return append([]string(nil), levelNames[:hwLevel+1]...) }

// SetKernelSet selects the kernel set of all later calls, e.g. "avx2" on a
// machine with AVX-512 to measure both. It fails for an unknown name or one
// not in KernelSets, and must not be called while a kernel runs.
func SetKernelSet(name string) error {
	for i, n := range levelNames {
		if n != name {
			continue
		}
		if i > hwLevel {
			return fmt.Errorf("kernels: kernel set %q not available here (available: %q)", name, KernelSets())
		}
		activeLevel.Store(int32(i))
		return nil
	}
	return fmt.Errorf("kernels: unknown kernel set %q (want one of %q)", name, levelNames)
}
