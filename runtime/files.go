package runtime

import (
	"fmt"
	"slices"
	"sort"
)

// KernelFiles lists, per file group, the source files of this package that
// a generated program copies to run operators of that group. Every program
// needs "common"; each other group lists its files including those of the
// groups it builds on ("gemm" for the GEMM-based operators). Test files and
// this file and sources.go are never needed. The keys are the ConvSpec kinds
// (KindPointwise, KindDepthwise, KindDense, KindGrouped) and "mbconv" (the
// fused inverted-residual block, MBConv, in row strips or split by
// channels, whose first operator may be a dense convolution), "linear",
// "pool", "elementwise", "gemm", "common".
var KernelFiles = map[string][]string{
	"common":      {"doc.go", "tensor.go", "threads.go", "yield_linux.go", "yield_other.go", "cpu.go", "cpu_amd64.go", "cpuid_amd64.go", "cpuid_amd64.s", "cpu_arm64.go", "cpu_other.go", "convspec.go"},
	"gemm":        gemmFiles,
	KindPointwise: append([]string{"pointwise.go"}, gemmFiles...),
	KindDense:     append([]string{"convdense.go"}, gemmFiles...),
	"linear":      append([]string{"linear.go"}, gemmFiles...),
	KindDepthwise: dwFiles,
	KindGrouped:   {"grouped.go"},
	"mbconv":      append(append([]string{"mbconv.go", "mbchannels.go", "pointwise.go", "convdense.go"}, dwFiles...), gemmFiles...),
	"pool":        {"pool.go"},
	"elementwise": {"elementwise.go"},
}

var dwFiles = []string{"depthwise.go", "dw_avx2_amd64.go", "zdw_avx2_amd64.go", "zdw_avx2_amd64.s",
	"dw_avx512_amd64.go", "zdw_avx512_amd64.go", "zdw_avx512_amd64.s",
	"dw_neon_arm64.go", "zdw_neon_arm64.go", "zdw_neon_arm64.s"}

var gemmFiles = []string{"gemm.go", "cache.go", "gemm_avx2_amd64.go", "zgemm_avx2_amd64.go", "zgemm_avx2_amd64.s",
	"gemm_avx512_amd64.go", "zgemm_avx512_amd64.go", "zgemm_avx512_amd64.s",
	"gemm_neon_arm64.go", "neon_arm64.go", "zgemm_neon_arm64.go", "zgemm_neon_arm64.s"}

// setFiles lists the files that hold one kernel set's code: for the
// GEMM and depthwise families a registration file plus the generated
// declarations and assembly. TestKernelFiles checks that the groups above
// list them.
var setFiles = map[string][]string{
	"avx2": {"gemm_avx2_amd64.go", "zgemm_avx2_amd64.go", "zgemm_avx2_amd64.s",
		"dw_avx2_amd64.go", "zdw_avx2_amd64.go", "zdw_avx2_amd64.s",
		// CPUID, for the detection of the amd64 sets (cpu_amd64.go)
		"cpuid_amd64.go", "cpuid_amd64.s"},
	"avx512": {"gemm_avx512_amd64.go", "zgemm_avx512_amd64.go", "zgemm_avx512_amd64.s",
		"dw_avx512_amd64.go", "zdw_avx512_amd64.go", "zdw_avx512_amd64.s"},
	"neon": {"gemm_neon_arm64.go", "neon_arm64.go", "zgemm_neon_arm64.go", "zgemm_neon_arm64.s",
		"dw_neon_arm64.go", "zdw_neon_arm64.go", "zdw_neon_arm64.s"},
}

// kernelSets are the kernel sets of every architecture with their level:
// a program for a set keeps the files of the sets of its architecture at
// or below that level. The names match levelNames on their architecture.
var kernelSets = []struct {
	name, goarch string
	level        int
}{
	{"go", "", levelGo},
	{"avx2", "amd64", levelAVX2},
	{"avx512", "amd64", levelAVX512},
	{"neon", "arm64", levelNEON},
}

// FilesForSet is FilesFor for a program built for one kernel set, of any
// architecture: it leaves out the files of every kernel set above it and
// of every other architecture's sets, so that an "avx2" program carries no
// AVX-512 code, a "neon" program no amd64 code and a "go" program no
// assembly. The sets below it stay, as the fallback on a CPU that lacks the
// set (an "avx512" program runs AVX2 kernels there).
func FilesForSet(set string, groups ...string) ([]string, error) {
	i := slices.IndexFunc(kernelSets, func(k struct {
		name, goarch string
		level        int
	}) bool {
		return k.name == set
	})
	if i < 0 {
		names := make([]string, len(kernelSets))
		for j, k := range kernelSets {
			names[j] = k.name
		}
		return nil, fmt.Errorf("runtime: FilesForSet: unknown kernel set %q (want one of %q)", set, names)
	}
	chosen := kernelSets[i]
	all, err := FilesFor(groups...)
	if err != nil {
		return nil, err
	}
	drop := map[string]bool{}
	for _, k := range kernelSets {
		if k.goarch == chosen.goarch && k.level <= chosen.level {
			continue
		}
		for _, f := range setFiles[k.name] {
			drop[f] = true
		}
	}
	out := all[:0]
	for _, f := range all {
		if !drop[f] {
			out = append(out, f)
		}
	}
	return out, nil
}

// FilesFor returns the sorted, de-duplicated files a program needs for the
// given groups, "common" included.
func FilesFor(groups ...string) ([]string, error) {
	seen := map[string]bool{}
	for _, g := range append([]string{"common"}, groups...) {
		fs, ok := KernelFiles[g]
		if !ok {
			return nil, fmt.Errorf("runtime: FilesFor: unknown file group %q", g)
		}
		for _, f := range fs {
			seen[f] = true
		}
	}
	out := make([]string, 0, len(seen))
	for f := range seen {
		out = append(out, f)
	}
	sort.Strings(out)
	return out, nil
}

// KernelSetInfo describes one kernel set as this package implements it.
type KernelSetInfo struct {
	Name, GOARCH string   // GOARCH is empty for the portable set
	Level        int      // order within the architecture; higher needs more of the CPU
	Features     []string // what CPU detection requires for the set
	Files        []string // the files holding only this set's code
}

// KernelSetTable describes every kernel set of every architecture. It is
// a copy of targets/presets.json's kernel_sets, which codegen's
// TestKernelSetTable checks it against.
func KernelSetTable() []KernelSetInfo {
	out := make([]KernelSetInfo, len(kernelSets))
	for i, k := range kernelSets {
		var feat []string
		if k.goarch != "" {
			feat = slices.Clone(levelFeaturesFor(k.goarch)[k.level])
		}
		out[i] = KernelSetInfo{Name: k.name, GOARCH: k.goarch, Level: k.level, Features: feat, Files: slices.Clone(setFiles[k.name])}
	}
	return out
}
