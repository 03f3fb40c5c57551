package codegen

import (
	"bytes"
	"fmt"
	"go/build/constraint"
	"io/fs"
	"sort"
	"strings"

	"github.com/pnasml/pnas/runtime"
)

// The runtime is copied into the generated module's rt/ directory, file by
// file: the file groups of runtime.KernelFiles that the model's operators
// need ("common", the families of the steps, and "elementwise", which the
// program shell uses), without the kernel sets above the program's
// (runtime.FilesForSet). For the "go" kernel set the files excluded by
// -tags noasm are dropped. The runtime's CPU detection, which imports
// golang.org/x/sys/cpu, is replaced by CPUID-based detection (on the
// runtime's own cpuid_amd64.s) so that go.mod needs no requirements.

// replaced maps runtime files to the templates that replace them.
var replaced = map[string][]struct{ tmpl, name string }{
	"cpu_amd64.go": {{"cpu_amd64.go.txt", "cpu_amd64.go"}},
}

// stepGroup names the runtime file group a step needs.
func stepGroup(st *step) string {
	switch st.kind {
	case stepConv:
		return st.conv.kind
	case stepLinear:
		return "linear"
	case stepPool:
		return "pool"
	}
	return "elementwise"
}

// runtimeFiles copies the runtime files of the given groups.
func runtimeFiles(kernelSet string, groups map[string]bool) ([]File, error) {
	list := []string{"elementwise"}
	for g := range groups {
		if g != "elementwise" {
			list = append(list, g)
		}
	}
	sort.Strings(list)
	return memoized("rt "+kernelSet+" "+strings.Join(list, ","), func() ([]File, error) { return copyRuntime(kernelSet, list) })
}

func copyRuntime(kernelSet string, groups []string) ([]File, error) {
	names, err := runtime.FilesForSet(kernelSet, groups...)
	if err != nil {
		return nil, fmt.Errorf("codegen: %w", err)
	}
	// The runtime's sources are embedded in the runtime package itself, so
	// that compilation works from an installed pnas binary.
	src := runtime.Sources
	var out []File
	add := func(name string, data []byte) error {
		if kernelSet == "go" && !buildsWithNoasm(data) {
			return nil
		}
		f, err := rtFile(name, data)
		if err != nil {
			return err
		}
		out = append(out, f)
		return nil
	}
	for _, n := range names {
		if n == "doc.go" {
			continue // the package documentation of the runtime
		}
		if reps, ok := replaced[n]; ok {
			for _, r := range reps {
				data, err := templates.ReadFile("cpuid/" + r.tmpl)
				if err != nil {
					return nil, err
				}
				if err := add(r.name, data); err != nil {
					return nil, err
				}
			}
			continue
		}
		data, err := fs.ReadFile(src, n)
		if err != nil {
			return nil, fmt.Errorf("codegen: runtime file %s: %w", n, err)
		}
		if err := add(n, data); err != nil {
			return nil, err
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

// buildsWithNoasm reports whether a source file can be part of a build
// with -tags noasm: its //go:build line (if any) holds when noasm and every
// other tag are set.
func buildsWithNoasm(src []byte) bool {
	for _, line := range strings.Split(string(src), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "package ") {
			break
		}
		if constraint.IsGoBuild(line) {
			expr, err := constraint.Parse(line)
			if err != nil {
				return true
			}
			return expr.Eval(func(string) bool { return true })
		}
	}
	return true
}

// rtFile turns one runtime source file into a file of the rt package.
func rtFile(name string, data []byte) (File, error) {
	// The file's own generated-code banner is replaced by pnas compile's.
	data = generatedRE.ReplaceAll(data, nil)
	if strings.HasSuffix(name, ".s") {
		data = bytes.TrimLeft(data, "\n")
		return File{Path: "rt/" + name, Data: append([]byte("// "+Banner+"\n\n"), data...)}, nil
	}
	if strings.Contains(string(data), `"golang.org/x/`) {
		return File{}, fmt.Errorf("codegen: runtime file %s imports a golang.org/x package; generated programs may use only the standard library", name)
	}
	b, err := rewriteGo(name, data, "rt", "")
	if err != nil {
		return File{}, err
	}
	return File{Path: "rt/" + name, Data: b}, nil
}
