package search

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestDocImports checks that the import sentence at the end of doc.go names
// exactly the pnas packages package search imports.
func TestDocImports(t *testing.T) {
	doc, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	text := string(doc)
	i := strings.Index(text, "// Package search imports")
	if i < 0 {
		t.Fatal("doc.go has no \"Package search imports\" sentence")
	}
	sentence := strings.ReplaceAll(text[i:strings.Index(text, "\npackage search")], "//", " ")
	out, err := exec.Command("go", "list", "-f", `{{join .Imports " "}}`, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	const mod = "github.com/pnasml/pnas/"
	imported := map[string]bool{}
	for _, p := range strings.Fields(string(out)) {
		if rel, ok := strings.CutPrefix(p, mod); ok {
			imported[rel] = true
			if !strings.Contains(sentence, " "+rel+" ") && !strings.Contains(sentence, " "+rel+",") {
				t.Errorf("doc.go's import sentence does not name %s", rel)
			}
		}
	}
	for _, w := range strings.Fields(sentence) {
		w = strings.Trim(w, ",.()")
		if w == "" || w == "search" || imported[w] {
			continue
		}
		if st, err := os.Stat(filepath.Join("..", w)); err == nil && st.IsDir() && strings.ToLower(w) == w {
			if m, _ := filepath.Glob(filepath.Join("..", w, "*.go")); len(m) > 0 {
				t.Errorf("doc.go's import sentence names %s, which package search does not import", w)
			}
		}
	}
}
