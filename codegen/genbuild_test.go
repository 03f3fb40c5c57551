package codegen_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pnasml/pnas/codegen"
)

// TestGenerateAndBuild: one call writes the module to dir and builds a
// program that lists the model, with the build target taken from the
// generate options when BuildOptions leaves it out; a generate error
// leaves dir unwritten.
func TestGenerateAndBuild(t *testing.T) {
	models := suite(t)[:1]
	dir := filepath.Join(t.TempDir(), "m")
	bin, err := codegen.GenerateAndBuild(models, codegen.Options{Target: target(t, "generic")}, dir, codegen.BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if bin != filepath.Join(dir, "model") {
		t.Errorf("binary %s, want DIR/model", bin)
	}
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		t.Errorf("module not written: %v", err)
	}
	out, err := exec.Command(bin, "-list").Output()
	if err != nil || !strings.HasPrefix(string(out), models[0].Name+"\t") {
		t.Errorf("-list: %v\n%s", err, out)
	}
	bad := filepath.Join(t.TempDir(), "bad")
	if _, err := codegen.GenerateAndBuild(models, codegen.Options{}, bad, codegen.BuildOptions{}); err == nil {
		t.Error("no target: no error")
	}
	if _, err := os.Stat(bad); !os.IsNotExist(err) {
		t.Errorf("failed generate wrote %s: %v", bad, err)
	}
}
