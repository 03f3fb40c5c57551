package runtime

import (
	"fmt"
	"sort"
)

// KernelFiles lists, per file group, the source files of this package that
// a generated program copies to run operators of that group. Every program
// needs "common"; each other group lists its files including those of the
// groups it builds on ("gemm" for the GEMM-based operators). Test files and
// this file and sources.go are never needed. The keys are the ConvSpec kinds
// (KindPointwise, KindDepthwise, KindDense, KindGrouped) and "linear",
// "pool", "elementwise", "gemm", "common".
var KernelFiles = map[string][]string{
	"common":      {"doc.go", "tensor.go", "threads.go", "yield_linux.go", "yield_other.go", "cpu.go", "cpu_amd64.go", "cpu_other.go", "convspec.go"},
	"gemm":        gemmFiles,
	KindPointwise: append([]string{"pointwise.go"}, gemmFiles...),
	KindDense:     append([]string{"convdense.go"}, gemmFiles...),
	"linear":      append([]string{"linear.go"}, gemmFiles...),
	KindDepthwise: {"depthwise.go", "dw_amd64.go", "zdw_amd64.go", "zdw_amd64.s"},
	KindGrouped:   {"grouped.go"},
	"pool":        {"pool.go"},
	"elementwise": {"elementwise.go"},
}

var gemmFiles = []string{"gemm.go", "gemm_amd64.go", "zgemm_amd64.go", "zgemm_amd64.s"}

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
