package main

import (
	"bytes"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pnasml/pnas/data"
	"github.com/pnasml/pnas/internal/testnet"
	"github.com/pnasml/pnas/ir"
)

func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

// smallModel writes a tiny MBConv classifier for 28x28x1 inputs.
func smallModel(t *testing.T) string {
	t.Helper()
	b := ir.NewBuilder("small", 1, 28, 28, rand.New(rand.NewPCG(1, 1)))
	b.Block = &ir.Block{Candidate: "stem"}
	x := b.ConvBNAct("stem", b.Input(), 8, 3, 2, 1, ir.ActReLU6)
	b.Block = &ir.Block{Stage: 1, Candidate: "mbconv k3 e3"}
	x = testnet.MBConv(b, "s1.l0", x, 8, 3, 3, 1)
	b.Block = &ir.Block{Stage: -1, Candidate: "classifier"}
	x = b.GlobalPool("pool", x)
	x = b.Flatten("flat", x)
	x = b.Dense("fc", x, 10, nil, nil)
	m, err := b.Model(x)
	if err != nil {
		t.Fatal(err)
	}
	m.Input.Labels = data.FashionMNISTClasses
	m.Input.Mean = []float32{0.286}
	m.Input.Std = []float32{0.353}
	path := filepath.Join(t.TempDir(), "small.json")
	if err := ir.Save(m, path); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestVersion(t *testing.T) {
	code, out, _ := runCLI(t, "version")
	if code != 0 || !strings.HasPrefix(out, "pnas ") {
		t.Fatalf("version: code %d, out %q", code, out)
	}
}

func TestHelpHasExamples(t *testing.T) {
	for _, cmd := range []string{"inspect", "eval", "version"} {
		code, out, _ := runCLI(t, cmd, "--help")
		if code != 0 || !strings.Contains(out, "Example") {
			t.Errorf("%s --help: code %d, no examples in:\n%s", cmd, code, out)
		}
	}
}

func TestInspect(t *testing.T) {
	path := smallModel(t)
	code, out, errs := runCLI(t, "inspect", path)
	if code != 0 {
		t.Fatalf("inspect failed (%d): %s", code, errs)
	}
	// stem: 14*14*8 outputs x 9 MACs each
	for _, want := range []string{"stem.conv", "conv 3x3/2", "8x14x14", "14,112", "total:", "peak activations"} {
		if !strings.Contains(out, want) {
			t.Errorf("inspect output lacks %q:\n%s", want, out)
		}
	}
}

func TestEvalSubset(t *testing.T) {
	path := smallModel(t)
	code, out, errs := runCLI(t, "eval", path, "--data", "fashion-mnist-subset", "--limit", "40", "--json")
	if code != 0 {
		t.Fatalf("eval failed (%d): %s", code, errs)
	}
	for _, want := range []string{`"n": 40`, `"top1":`, `"per_class_top1"`} {
		if !strings.Contains(out, want) {
			t.Errorf("eval output lacks %q:\n%s", want, out)
		}
	}
}

func TestErrorsAreOneLineAndNonZero(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"inspect", filepath.Join(dir, "missing.json")}, 2, "missing.json"},
		{[]string{"nosuchcommand"}, 2, "unexpected argument"},
		{[]string{"eval", smallModel(t), "--data", "nosuchset"}, 1, `spec "nosuchset"`},
		{[]string{"eval", smallModel(t), "--data", "fashion-mnist-subset", "--batch", "0"}, 1, "--batch"},
	}
	for _, c := range cases {
		code, _, errs := runCLI(t, c.args...)
		if code != c.code {
			t.Errorf("%v: exit %d, want %d (stderr %q)", c.args, code, c.code, errs)
		}
		if !strings.Contains(errs, c.want) || !strings.HasPrefix(errs, "pnas: ") {
			t.Errorf("%v: stderr %q lacks %q", c.args, errs, c.want)
		}
	}
}

func TestImportExportRoundTrip(t *testing.T) {
	dir := t.TempDir()
	code, out, errs := runCLI(t, "import", "../../ir/onnx/testdata/mbconv_fmnist28.onnx", "-o", filepath.Join(dir, "net.json"), "--labels", "fashion-mnist")
	if code != 0 {
		t.Fatalf("import failed (%d): %s", code, errs)
	}
	if !strings.Contains(out, "imported") {
		t.Fatalf("import output: %q", out)
	}
	code, _, errs = runCLI(t, "export", filepath.Join(dir, "net.json"), "-o", filepath.Join(dir, "net.onnx"))
	if code != 0 {
		t.Fatalf("export failed (%d): %s", code, errs)
	}
	code, _, errs = runCLI(t, "import", filepath.Join(dir, "net.onnx"), "-o", filepath.Join(dir, "net2.json"))
	if code != 0 {
		t.Fatalf("re-import failed (%d): %s", code, errs)
	}
	code, _, errs = runCLI(t, "import", "main.go", "-o", filepath.Join(dir, "bad.json"))
	if code != 1 || !strings.Contains(errs, "main.go") {
		t.Fatalf("importing a non-ONNX file: code %d, stderr %q", code, errs)
	}
}
