package kernels

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// detectExtra lists the features this package's detection requires beyond
// the kernel set's features in targets/presets.json. A CPU that lacks them
// runs the next lower set here, so the extra checks can only narrow the
// choice, never pick a set the CPU cannot run.
var detectExtra = map[string][]string{
	"avx512": {"avx512bw", "avx512dq"},
}

// TestKernelSetTable checks the package's kernel sets (levelNames and the
// features detectLevel checks in cpu_amd64.go) against the kernel_sets
// table of targets/presets.json, which owns them: every level is a set
// there, with its architecture, in the same order, and detection checks
// every feature the table names, plus only those in detectExtra. The table
// is read as a file, since the package may import only the standard library
// and golang.org/x/sys/cpu.
func TestKernelSetTable(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "targets", "presets.json"))
	if err != nil {
		t.Fatal(err)
	}
	var presets struct {
		KernelSets []struct {
			Name     string   `json:"name"`
			GOARCH   string   `json:"goarch"`
			Features []string `json:"features"`
		} `json:"kernel_sets"`
	}
	if err := json.Unmarshal(b, &presets); err != nil {
		t.Fatalf("targets/presets.json: %v", err)
	}
	index := map[string]int{}
	for i, ks := range presets.KernelSets {
		index[ks.Name] = i
	}
	detected := detectedFeatures(t)
	prev := -1
	for l, name := range levelNames {
		i, ok := index[name]
		if !ok {
			t.Errorf("kernel set %q (level %d) is not in targets/presets.json", name, l)
			continue
		}
		ks := presets.KernelSets[i]
		// Level 0 is the portable Go set; detectLevel finds the others
		// in cpu_amd64.go only.
		wantArch := "amd64"
		if l == levelGo {
			wantArch = ""
		}
		if ks.GOARCH != wantArch {
			t.Errorf("kernel set %s: presets.json goarch %q, this package runs it on %q", name, ks.GOARCH, wantArch)
		}
		if i < prev {
			t.Errorf("kernel set %s: presets.json orders it before %s, this package after", name, levelNames[l-1])
		}
		prev = i
		if l == levelGo {
			continue
		}
		want := slices.Sorted(slices.Values(append(slices.Clone(ks.Features), detectExtra[name]...)))
		got := slices.Sorted(slices.Values(detected[l]))
		if !slices.Equal(got, want) {
			t.Errorf("kernel set %s: cpu_amd64.go detects it by %v; presets.json features %v plus detectExtra %v make %v",
				name, got, ks.Features, detectExtra[name], want)
		}
	}
}

// detectedFeatures returns, per level, the x.HasXxx fields (lowercased,
// without Has) tested by the switch case of detectLevel that returns it.
func detectedFeatures(t *testing.T) map[int][]string {
	f, err := parser.ParseFile(token.NewFileSet(), "cpu_amd64.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	levels := map[string]int{"levelGo": levelGo, "levelAVX2": levelAVX2, "levelAVX512": levelAVX512}
	out := map[int][]string{}
	ast.Inspect(f, func(n ast.Node) bool {
		cc, ok := n.(*ast.CaseClause)
		if !ok || len(cc.Body) != 1 {
			return true
		}
		ret, ok := cc.Body[0].(*ast.ReturnStmt)
		if !ok || len(ret.Results) != 1 {
			return true
		}
		id, ok := ret.Results[0].(*ast.Ident)
		if !ok {
			return true
		}
		l, ok := levels[id.Name]
		if !ok {
			t.Fatalf("cpu_amd64.go: case returns %s, not a level constant", id.Name)
		}
		for _, e := range cc.List {
			ast.Inspect(e, func(n ast.Node) bool {
				if sel, ok := n.(*ast.SelectorExpr); ok {
					if feat, ok := strings.CutPrefix(sel.Sel.Name, "Has"); ok {
						out[l] = append(out[l], strings.ToLower(feat))
					}
				}
				return true
			})
		}
		return false
	})
	for l := levelGo + 1; l < numLevels; l++ {
		if len(out[l]) == 0 {
			t.Fatalf("cpu_amd64.go: no detection case returns level %d (%s)", l, levelNames[l])
		}
	}
	return out
}
