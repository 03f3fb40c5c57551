package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pnasml/pnas/targets"
)

// pnas eval --binary measures the compiled program with its -eval mode and
// agrees with the interpreter on the embedded test subset, image for image
// per class.
func TestEvalBinaryMatchesInterpreter(t *testing.T) {
	path := smallModel(t)
	target := "amd64"
	if tg, err := targets.Lookup(target); err != nil || tg.HostSupports() != nil {
		target = "generic"
	}
	dir := filepath.Join(t.TempDir(), "out")
	code, out, errs := runCLI(t, "compile", path, "--target", target, "-o", dir)
	if code != 0 {
		t.Fatalf("compile failed (%d): %s", code, errs)
	}
	bin := lastLine(out)
	eval := func(extra ...string) evalResult {
		t.Helper()
		code, out, errs := runCLI(t, append([]string{"eval", path, "--data", "fashion-mnist-subset", "--json"}, extra...)...)
		if code != 0 {
			t.Fatalf("eval %v: exit %d: %s", extra, code, errs)
		}
		var r evalResult
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		return r
	}
	ref, got := eval(), eval("--binary", bin)
	if got.N != 500 || got.N != ref.N || got.Correct != ref.Correct || got.Top1 != ref.Top1 {
		t.Fatalf("compiled program: %d/%d (%.4f); interpreter: %d/%d (%.4f)", got.Correct, got.N, got.Top1, ref.Correct, ref.N, ref.Top1)
	}
	for c := range ref.PerClass {
		if got.PerClass[c] != ref.PerClass[c] {
			t.Errorf("class %d: compiled %.4f, interpreter %.4f", c, got.PerClass[c], ref.PerClass[c])
		}
	}
	code, out, _ = runCLI(t, "eval", path, "--data", "fashion-mnist-subset", "--limit", "20", "--binary", bin)
	if code != 0 || !strings.Contains(out, "(compiled program "+bin+")") || !strings.Contains(out, "Trouser") {
		t.Errorf("text output (exit %d):\n%s", code, out)
	}
	code, _, errs = runCLI(t, "eval", path, "--data", "fashion-mnist-subset", "--binary", path)
	if code == 0 || strings.Count(strings.TrimSpace(errs), "\n") != 0 || !strings.Contains(errs, "--binary") {
		t.Errorf("a JSON file as the binary: exit %d, %q", code, errs)
	}
}
