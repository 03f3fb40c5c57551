package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/pnasml/pnas/targets"
)

// goField matches a search.Config field name used as an error's subject.
var goField = regexp.MustCompile(`\b(` + strings.Join(keys(configFlags), "|") + `)[:=]`)

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// Out-of-range values, with or without "=", are usage errors (exit 2) named
// by their flags, never by Go field names, and nothing is written.
func TestSearchUsageErrors(t *testing.T) {
	spacePath, lutPath := tinySetup(t)
	dir := filepath.Join(t.TempDir(), "run")
	cases := []struct {
		extra []string
		want  string
	}{
		{[]string{"--epochs", "-1"}, "--epochs: expected >= 1, got -1"},
		{[]string{"--epochs=-1"}, "--epochs: expected >= 1, got -1"},
		{[]string{"--epochs", "0", "--warmup-epochs", "0", "--train-epochs", "0"}, "--epochs: expected >= 1, got 0"},
		{[]string{"--warmup-epochs=-2"}, "--warmup-epochs: expected >= 0, got -2"},
		{[]string{"--train-epochs", "-1"}, "--train-epochs"},
		{[]string{"--train-limit=-10"}, "--train-limit: expected >= 0, got -10"},
		{[]string{"--held-out", "-1"}, "--held-out"},
		{[]string{"--bn-images", "-5"}, "--bn-images"},
		{[]string{"--checkpoint-every", "0"}, "--checkpoint-every"},
		{[]string{"--batch", "1"}, "--batch: expected >= 2, got 1"},
		{[]string{"--arch-batch=1"}, "--arch-batch: expected >= 2, got 1"},
		{[]string{"--arch-every", "0"}, "--arch-every"},
		{[]string{"--threads", "-1"}, "--threads"},
		{[]string{"--lr", "-0.5"}, "--lr: expected a finite value >= 0, got -0.5"},
		{[]string{"--warmup-lr=-1"}, "--warmup-lr"},
		{[]string{"--train-lr", "-1"}, "--train-lr"},
		{[]string{"--weight-decay", "-1"}, "--weight-decay"},
		{[]string{"--label-smoothing", "1"}, "--label-smoothing"},
		{[]string{"--arch-lr", "-1"}, "--arch-lr"},
		{[]string{"--loss-a", "0"}, "--loss-a"},
		{[]string{"--loss-beta", "-1"}, "--loss-beta"},
		{[]string{"--loss", "add#linear", "--loss-lambda", "-1"}, "--loss-lambda"},
		{[]string{"--latency-target", "300"}, "--latency-target: expected a positive duration with a unit"},
		{[]string{"--latency-target", "-3us"}, "--latency-target"},
		{[]string{"--latency-target", "fast"}, "--latency-target"},
	}
	for _, c := range cases {
		code, _, errs := runCLI(t, searchArgs(spacePath, lutPath, dir, c.extra...)...)
		if code != 2 || !strings.Contains(errs, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 and %q", c.extra, code, errs, c.want)
		}
		if m := goField.FindString(errs); m != "" {
			t.Errorf("%v: stderr %q names the Go field %s", c.extra, errs, m)
		}
		if _, err := os.Stat(dir); err == nil {
			t.Fatalf("%v: a failed search created its run directory", c.extra)
		}
	}
}

// A latency target below the table's fastest network is a usage error
// that names the fastest and the slowest network's latency.
func TestSearchUnreachableLatencyTarget(t *testing.T) {
	spacePath, lutPath, plan, _, lm := tinyLatency(t)
	fast, slow := extremes(plan, lm)
	if !(fast > 0.2 && slow > fast) {
		t.Fatalf("table extremes %v, %v", fast, slow)
	}
	dir := filepath.Join(t.TempDir(), "run")
	code, _, errs := runCLI(t, searchArgs(spacePath, lutPath, dir, "--latency-target", "0.1us")...)
	for _, want := range []string{"--latency-target 0.1us: unreachable", formatUS(fast), formatUS(slow)} {
		if code != 2 || !strings.Contains(errs, want) {
			t.Errorf("exit %d, stderr %q; want exit 2 and %q", code, errs, want)
		}
	}
	if _, err := os.Stat(dir); err == nil {
		t.Error("a failed search created its run directory")
	}
}

func formatUS(v float64) string { return fmt.Sprintf("%.1f µs", v) }

// A search that fails leaves an existing run directory byte-identical: a
// new search over it, and a resume against a latency table that changed
// since.
func TestFailedSearchChangesNothing(t *testing.T) {
	spacePath, lutPath := tinySetup(t)
	dir := filepath.Join(t.TempDir(), "run")
	code, out, errs := runCLI(t, searchArgs(spacePath, lutPath, dir, "--stop-after", "5")...)
	if code != 0 {
		t.Fatalf("search (%d): %s\n%s", code, errs, out)
	}
	before := dirBytes(t, dir)
	code, _, errs = runCLI(t, searchArgs(spacePath, lutPath, dir)...)
	if code == 0 || !strings.Contains(errs, "already holds a search") {
		t.Errorf("a new search over a run: exit %d, stderr %q", code, errs)
	}
	sameDir(t, dir, before)

	// the table the run used changes: the resume fails, the run stays
	l, err := targets.Load(lutPath)
	if err != nil {
		t.Fatal(err)
	}
	for k, e := range l.Entries {
		e.MedianUS *= 2
		l.Entries[k] = e
		break
	}
	if err := l.Save(lutPath); err != nil {
		t.Fatal(err)
	}
	code, _, errs = runCLI(t, "search", "--resume", dir)
	if code == 0 || !strings.Contains(errs, "latency table") {
		t.Errorf("resume against a changed table: exit %d, stderr %q", code, errs)
	}
	sameDir(t, dir, before)
}

func dirBytes(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		out[p] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sameDir(t *testing.T, dir string, before map[string]string) {
	t.Helper()
	after := dirBytes(t, dir)
	if len(after) != len(before) {
		t.Errorf("%s: %d files after the failed command, %d before", dir, len(after), len(before))
	}
	for p, b := range before {
		if after[p] != b {
			t.Errorf("the failed command changed %s", p)
		}
	}
}

func TestVersionFlag(t *testing.T) {
	code, out, _ := runCLI(t, "--version")
	code2, out2, _ := runCLI(t, "version")
	if code != 0 || code2 != 0 || !strings.HasPrefix(out, "pnas ") || strings.TrimSpace(out) != strings.TrimSpace(out2) {
		t.Fatalf("--version: exit %d, %q; version: exit %d, %q", code, out, code2, out2)
	}
}

// import and export create the output's directory, as compile does.
func TestImportExportCreateDirectory(t *testing.T) {
	dir := t.TempDir()
	model := filepath.Join(dir, "a", "b", "net.json")
	code, _, errs := runCLI(t, "import", "../../ir/onnx/testdata/mbconv_fmnist28.onnx", "-o", model, "--labels", "fashion-mnist")
	if code != 0 {
		t.Fatalf("import into a new directory (%d): %s", code, errs)
	}
	onnxOut := filepath.Join(dir, "c", "net.onnx")
	code, _, errs = runCLI(t, "export", model, "-o", onnxOut)
	if code != 0 {
		t.Fatalf("export into a new directory (%d): %s", code, errs)
	}
	if _, err := os.Stat(onnxOut); err != nil {
		t.Error(err)
	}
}

// The closing "wrote" line lists exactly the files written: without a
// latency loss there are no architecture steps, no alpha plot, and it is
// not announced.
func TestSearchReportsOnlyWrittenFiles(t *testing.T) {
	spacePath, lutPath := tinySetup(t)
	dir := filepath.Join(t.TempDir(), "run")
	code, out, errs := runCLI(t, searchArgs(spacePath, lutPath, dir, "--loss", "none", "--epochs", "1", "--train-epochs", "0")...)
	if code != 0 {
		t.Fatalf("search (%d): %s\n%s", code, errs, out)
	}
	var wrote string
	for _, line := range strings.Split(out, "\n") {
		if rest, ok := strings.CutPrefix(line, "wrote "); ok {
			wrote = rest
		}
	}
	if wrote == "" {
		t.Fatalf("no wrote line in:\n%s", out)
	}
	for _, p := range strings.Split(wrote, ", ") {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("announced %s: %v", p, err)
		}
	}
	// without a latency loss no architecture step runs: no alpha plot
	for _, f := range []string{"alpha.png", "arch.png", "latency-accuracy.png"} {
		_, err := os.Stat(filepath.Join(dir, f))
		if announced := strings.Contains(wrote, f); announced != (err == nil) {
			t.Errorf("%s: announced %v, exists %v", f, announced, err == nil)
		}
	}
	if strings.Contains(wrote, "alpha.png") {
		t.Errorf("announced an alpha plot without architecture steps: %s", wrote)
	}
}

// Failing table commands leave the table they would write byte-identical.
func TestFailedTableCommandsChangeNothing(t *testing.T) {
	spacePath, lutPath := tinySetup(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "lut.json")
	old, err := os.ReadFile(lutPath)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(out, old, 0o644)
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"schema":"pnas-bench/1","model":"x"}`), 0o644)
	for _, args := range [][]string{
		{"lut", "ingest", bad, "--space", spacePath, "-o", out},
		{"profile", "--space", "nosuch", "-o", out, "--dir", filepath.Join(dir, "prof")},
		{"profile", "--space", spacePath, "--runs", "2", "-o", out, "--dir", filepath.Join(dir, "prof")},
		{"profile", "--space", spacePath, "--target", "nosuch", "-o", out, "--dir", filepath.Join(dir, "prof")},
	} {
		code, _, errs := runCLI(t, args...)
		if code == 0 || !strings.HasPrefix(errs, "pnas: ") {
			t.Errorf("%v: exit %d, stderr %q; want a failure", args, code, errs)
		}
		if b, _ := os.ReadFile(out); string(b) != string(old) {
			t.Fatalf("%v: the failed command changed %s", args, out)
		}
	}
}

// Help examples name only files that pnas writes: a search's run directory
// holds model.json, never an arch.json.
func TestHelpExamplesNameRealFiles(t *testing.T) {
	for _, cmd := range [][]string{{"search"}, {"inspect"}, {"eval"}, {"compile"}, {"export"}, {"import"}, {"profile"}, {"calibrate"}, {"lut", "ingest"}, {"lut", "show"}} {
		code, out, _ := runCLI(t, append(cmd, "--help")...)
		if code != 0 {
			t.Errorf("%v --help: exit %d", cmd, code)
		}
		if strings.Contains(out, "arch.json") {
			t.Errorf("%v --help names arch.json, a file no command writes:\n%s", cmd, out)
		}
	}
}
