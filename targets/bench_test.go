package targets_test

import (
	"math"
	"strings"
	"testing"

	"github.com/pnasml/pnas/targets"
)

const benchJSON = `{
  "schema": "pnas-bench/1",
  "model": "fmnist-amd64",
  "model_id": "9f2c41d07a3b",
  "target": "amd64",
  "kernel_set": "avx2",
  "cpu": "AMD EPYC 7B13",
  "cores": 2,
  "goos": "linux",
  "goarch": "amd64",
  "go_version": "go1.26.8",
  "threads": 1,
  "runs": 200,
  "warmup": 20,
  "layers": [
    {"name": "stem", "key": "Conv-input:28x28x1-output:28x28x16", "ops": ["stem.conv", "stem.bn", "stem.act"],
     "median_ns": 41200, "p90_ns": 43900, "mean_ns": 41850.5, "var_ns2": 1.9e6},
    {"name": "s1.l0", "key": "expanded_conv-input:28x28x16-output:14x14x24-expand:6-kernel:5-stride:2-idskip:0",
     "ops": ["s1.l0.expand.conv", "s1.l0.dw.conv", "s1.l0.project.conv"],
     "median_ns": 120400, "p90_ns": 126000, "mean_ns": 121000, "var_ns2": 6.2e6},
    {"name": "softmax", "key": "", "ops": ["softmax"], "median_ns": 0, "p90_ns": 0, "mean_ns": 0.4, "var_ns2": 0.3}
  ],
  "total": {"median_ns": 175000, "p90_ns": 182000, "mean_ns": 176100, "var_ns2": 1.1e7}
}`

func TestParseBench(t *testing.T) {
	r, err := targets.ParseBench([]byte(benchJSON))
	if err != nil {
		t.Fatal(err)
	}
	if r.Model != "fmnist-amd64" || r.Runs != 200 || len(r.Layers) != 3 || r.Layers[1].Ops[1] != "s1.l0.dw.conv" {
		t.Errorf("parsed %+v", r)
	}
	if r.Layers[0].MedianNS != 41200 || r.Total.P90NS != 182000 {
		t.Errorf("timings %+v %+v", r.Layers[0].Timing, r.Total)
	}
	if keys := r.Keys(); len(keys) != 2 || keys[0] != "Conv-input:28x28x1-output:28x28x16" {
		t.Errorf("Keys = %v", keys)
	}
	if r.TotalUS() != 175 {
		t.Errorf("TotalUS = %v", r.TotalUS())
	}
}

func TestParseBenchErrors(t *testing.T) {
	edit := func(old, new string) string {
		if !strings.Contains(benchJSON, old) {
			t.Fatalf("fixture lacks %q", old)
		}
		return strings.Replace(benchJSON, old, new, 1)
	}
	cases := []struct {
		name, content, field string
		parts                []string
	}{
		{"empty", "", "", []string{"got empty input"}},
		{"truncated", benchJSON[:300], "", []string{"truncated"}},
		{"not json", "model: x", "", []string{"invalid JSON at line 1 column 1"}},
		{"schema", edit(`"pnas-bench/1"`, `"pnas-bench/2"`), "schema", []string{`expected "pnas-bench/1", got "pnas-bench/2"`}},
		{"no schema", edit(`"schema": "pnas-bench/1",`, ``), "schema", []string{`missing; expected "pnas-bench/1"`}},
		{"unknown", edit(`"runs": 200`, `"runs": 200, "batch": 1`), "", []string{`unknown field "batch"`}},
		{"missing top", edit(`"warmup": 20,`, ``), "", []string{`missing required field "warmup"`}},
		{"null", edit(`"warmup": 20`, `"warmup": null`), "", []string{`missing required field "warmup"`}},
		{"missing layer field", edit(`"key": "", `, ``), "layers[2]", []string{`missing required field "key"`}},
		{"missing total", edit(`"p90_ns": 182000, `, ``), "total", []string{`missing required field "p90_ns"`}},
		{"type", edit(`"threads": 1`, `"threads": "1"`), "threads", []string{"expected an integer, got JSON string"}},
		{"layer type", edit(`"median_ns": 41200`, `"median_ns": "41200"`), "layers[0].median_ns", []string{"expected a number, got JSON string"}},
		{"runs", edit(`"runs": 200`, `"runs": 0`), "runs", []string{"expected a positive integer, got 0"}},
		{"negative", edit(`"var_ns2": 6.2e6`, `"var_ns2": -1`), "layers[1].var_ns2", []string{"expected a finite number >= 0, got -1"}},
		{"p90", edit(`"p90_ns": 43900`, `"p90_ns": 100`), "layers[0].p90_ns", []string{"expected >= median_ns (41200), got 100"}},
		{"total zero", edit(`"median_ns": 175000, "p90_ns": 182000`, `"median_ns": 0, "p90_ns": 0`), "total.median_ns", []string{"expected a positive time"}},
		{"duplicate layer", edit(`"name": "softmax"`, `"name": "stem"`), "layers[2].name", []string{`expected a unique name, got "stem" (also layers[0])`}},
		{"no ops", edit(`"ops": ["softmax"]`, `"ops": []`), "layers[2].ops", []string{"expected at least one op name"}},
		{"key spaces", edit(`"key": ""`, `"key": "a b"`), "layers[2].key", []string{"without spaces"}},
		{"target", edit(`"target": "amd64"`, `"target": "AMD 64"`), "target", []string{`got "AMD 64"`}},
		{"model", edit(`"model": "fmnist-amd64"`, `"model": ""`), "model", []string{"expected the model name"}},
		{"trailing", benchJSON + "\n{}", "", []string{"after top-level value"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := targets.ParseBench([]byte(c.content))
			wantErr(t, err, c.parts...)
			if c.field != "" && fieldOf(err) != c.field {
				t.Errorf("field = %q, want %q (%v)", fieldOf(err), c.field, err)
			}
		})
	}
}

func TestSummarize(t *testing.T) {
	got := targets.Summarize([]float64{5, 1, 4, 2, 3, 10, 6, 7, 9, 8})
	// Sorted 1..10: median between 5 and 6, p90 at position 8.1 -> 9.1.
	if got.MedianNS != 5.5 || !approx(got.P90NS, 9.1, 1e-12) || got.MeanNS != 5.5 || !approx(got.VarNS2, 8.25, 1e-12) {
		t.Errorf("Summarize = %+v", got)
	}
	one := targets.Summarize([]float64{42})
	if one != (targets.Timing{MedianNS: 42, P90NS: 42, MeanNS: 42}) {
		t.Errorf("one sample: %+v", one)
	}
	if z := targets.Summarize(nil); z != (targets.Timing{}) || math.IsNaN(z.MeanNS) {
		t.Errorf("no samples: %+v", z)
	}
}
