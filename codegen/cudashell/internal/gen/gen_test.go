package gen

import (
	"bytes"
	"flag"
	"os"
	"testing"
)

var update = flag.Bool("update", false, "rewrite ../../zshared.go from package codegen/shell")

// TestSharedIsCurrent fails when cudashell's zshared.go is stale: the CPU shell
// changed and go generate ./codegen/cudashell was not run.
func TestSharedIsCurrent(t *testing.T) {
	want, err := Source("../../../shell")
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile("../../zshared.go", want, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile("../../zshared.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Error("zshared.go is stale: run go generate ./codegen/cudashell")
	}
}
