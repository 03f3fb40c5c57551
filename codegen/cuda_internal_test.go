package codegen

import (
	"os"
	"strings"
	"testing"
)

// TestPuregoPinned checks that the purego version and go.sum lines the
// CUDA programs get are this repository's.
func TestPuregoPinned(t *testing.T) {
	mod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(mod), "\t"+puregoModule+" "+puregoVer+"\n") {
		t.Errorf("go.mod does not require %s %s", puregoModule, puregoVer)
	}
	sum, err := os.ReadFile("../go.sum")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.SplitAfter(puregoSum, "\n") {
		if line != "" && !strings.Contains(string(sum), line) {
			t.Errorf("go.sum lacks %q", line)
		}
	}
}
