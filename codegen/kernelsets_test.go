package codegen

import (
	"go/ast"
	"go/parser"
	"go/token"
	"slices"
	"strconv"
	"testing"

	"github.com/pnasml/pnas/runtime"
	"github.com/pnasml/pnas/targets"
)

// TestKernelSetTable checks the copies of the kernel-set description
// against presets.json's kernel_sets: the runtime's names, architectures,
// levels, detected features and per-set files, and the CPUID detection of
// generated programs.
func TestKernelSetTable(t *testing.T) {
	sets, err := targets.KernelSets()
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]targets.KernelSet{}
	for _, ks := range sets {
		byName[ks.Name] = ks
	}
	rtSets := runtime.KernelSetTable()
	seen := map[string]bool{}
	for _, r := range rtSets {
		seen[r.Name] = true
		ks, ok := byName[r.Name]
		if !ok {
			t.Errorf("runtime kernel set %q is not in presets.json", r.Name)
			continue
		}
		if ks.GOARCH != r.GOARCH {
			t.Errorf("kernel set %s: presets.json goarch %q, runtime %q", r.Name, ks.GOARCH, r.GOARCH)
		}
		if a, b := slices.Sorted(slices.Values(ks.Features)), slices.Sorted(slices.Values(r.Features)); !slices.Equal(a, b) {
			t.Errorf("kernel set %s: presets.json features %v, runtime detection checks %v", r.Name, a, b)
		}
		if !slices.Equal(ks.Files, r.Files) {
			t.Errorf("kernel set %s: presets.json files %v, runtime files %v", r.Name, ks.Files, r.Files)
		}
		if (r.Name == "go") != slices.Contains(ks.Tags, "noasm") {
			t.Errorf("kernel set %s: tags %v (only the portable set builds with noasm)", r.Name, ks.Tags)
		}
	}
	for _, ks := range sets {
		if ks.Device == "" && !seen[ks.Name] {
			t.Errorf("presets.json kernel set %q has no implementation in the runtime", ks.Name)
		}
	}
	// Within an architecture, presets.json's order (codegen's ranking) is
	// the runtime's level order.
	for i, a := range rtSets {
		for _, b := range rtSets[i+1:] {
			if a.GOARCH != b.GOARCH && a.GOARCH != "" {
				continue
			}
			if (a.Level < b.Level) != (kernelRank(a.Name) < kernelRank(b.Name)) {
				t.Errorf("kernel sets %s (level %d, rank %d) and %s (level %d, rank %d) are ordered differently",
					a.Name, a.Level, kernelRank(a.Name), b.Name, b.Level, kernelRank(b.Name))
			}
		}
	}
	// Generated amd64 programs detect features with CPUID: every feature
	// of an amd64 set must be in the template's table.
	keys := cpuidTemplateFeatures(t)
	for _, r := range rtSets {
		if r.GOARCH != "amd64" {
			continue
		}
		for _, f := range r.Features {
			if !slices.Contains(keys, f) {
				t.Errorf("kernel set %s needs %s, which cpuid/cpu_amd64.go.txt's cpuidFeatures does not detect", r.Name, f)
			}
		}
	}
}

// cpuidTemplateFeatures returns the keys of cpuidFeatures in the CPUID
// detection template.
func cpuidTemplateFeatures(t *testing.T) []string {
	src, err := templates.ReadFile("cpuid/cpu_amd64.go.txt")
	if err != nil {
		t.Fatal(err)
	}
	f, err := parser.ParseFile(token.NewFileSet(), "cpu_amd64.go", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	ast.Inspect(f, func(n ast.Node) bool {
		vs, ok := n.(*ast.ValueSpec)
		if !ok || len(vs.Names) != 1 || vs.Names[0].Name != "cpuidFeatures" {
			return true
		}
		for _, e := range vs.Values[0].(*ast.CompositeLit).Elts {
			k, err := strconv.Unquote(e.(*ast.KeyValueExpr).Key.(*ast.BasicLit).Value)
			if err != nil {
				t.Fatal(err)
			}
			keys = append(keys, k)
		}
		return false
	})
	if len(keys) == 0 {
		t.Fatal("cpuid/cpu_amd64.go.txt: no cpuidFeatures table")
	}
	return keys
}
