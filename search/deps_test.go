package search

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestNoXLA checks that the search packages build without cgo and reach
// GoMLX only through the pure-Go backend: nothing that pulls in XLA/PJRT.
func TestNoXLA(t *testing.T) {
	cmd := exec.Command("go", "list", "-deps", "github.com/pnasml/pnas/search/...")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	sawSimplego := false
	for _, pkg := range strings.Fields(string(out)) {
		low := strings.ToLower(pkg)
		for _, bad := range []string{"xla", "pjrt", "stablehlo", "gomlx/backends/default", "runtime/cgo"} {
			if strings.Contains(low, bad) {
				t.Errorf("search depends on %s", pkg)
			}
		}
		if pkg == "github.com/gomlx/gomlx/backends/simplego" {
			sawSimplego = true
		}
	}
	if !sawSimplego {
		t.Errorf("search does not use GoMLX's simplego backend")
	}
}
