package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pnasml/pnas/ir"
)

// pnas pareto compiles, times and evaluates every net with its program and
// writes the plot and the table; accuracy agrees with the interpreter's.
func TestPareto(t *testing.T) {
	spacePath, _ := tinySetup(t)
	nets := filepath.Join(t.TempDir(), "nets")
	if code, _, errs := runCLI(t, "sample", "--space", spacePath, "-n", "1", "--uniform", "k3e3,k7e6", "-o", nets); code != 0 {
		t.Fatalf("sample: %s", errs)
	}
	out := filepath.Join(t.TempDir(), "pareto")
	code, stdout, errs := runCLI(t, "pareto", "uniform="+filepath.Join(nets, "tiny-k3e3.json"), "uniform="+filepath.Join(nets, "tiny-k7e6.json"),
		"random="+filepath.Join(nets, "tiny-random-0.json"), "--data", "fashion-mnist-subset", "--limit", "60", "--runs", "3",
		"--latency-target", "50us", "-o", out)
	if code != 0 {
		t.Fatalf("pareto: exit %d: %s\n%s", code, errs, stdout)
	}
	var rows []paretoRow
	b, err := os.ReadFile(filepath.Join(out, "pareto.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rows); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 || rows[0].Arch != "k3e3-k3e3-k3e3" || rows[2].Group != "random" {
		t.Fatalf("rows %+v", rows)
	}
	for _, r := range rows {
		if r.N != 60 || !(r.LatencyUS > 0) || r.MACs <= 0 || r.Params <= 0 {
			t.Errorf("row %+v", r)
		}
		_, ev, _ := runCLI(t, "eval", r.Model, "--data", "fashion-mnist-subset", "--limit", "60", "--json")
		var ref evalResult
		json.Unmarshal([]byte(ev), &ref)
		if ref.Top1 != r.Accuracy {
			t.Errorf("%s: program accuracy %v, interpreter %v", r.Name, r.Accuracy, ref.Top1)
		}
	}
	if !(rows[1].MACs > rows[0].MACs) {
		t.Errorf("k7e6 %d MACs, k3e3 %d", rows[1].MACs, rows[0].MACs)
	}
	md, _ := os.ReadFile(filepath.Join(out, "pareto.md"))
	if strings.Count(string(md), "\n") != 5 {
		t.Errorf("pareto.md:\n%s", md)
	}
	if _, err := os.Stat(filepath.Join(out, "pareto.png")); err != nil {
		t.Error(err)
	}
	if code, _, errs := runCLI(t, "pareto", "nogroup.json", "-o", out); code != 2 || !strings.Contains(errs, "expected GROUP=MODEL.json") {
		t.Errorf("bad argument: exit %d, %s", code, errs)
	}
}

// GROUP=A.json+B.json is one architecture trained twice: the row's
// accuracy is the mean of both programs' accuracies, each run is listed,
// and models of different architectures are refused.
func TestParetoRuns(t *testing.T) {
	spacePath, _ := tinySetup(t)
	var dirs []string
	for _, seed := range []string{"1", "2"} {
		d := filepath.Join(t.TempDir(), "nets"+seed)
		if code, _, errs := runCLI(t, "sample", "--space", spacePath, "-n", "0", "--uniform", "k3e3,k7e6", "--seed", seed, "-o", d); code != 0 {
			t.Fatalf("sample: %s", errs)
		}
		dirs = append(dirs, d)
	}
	a, b := filepath.Join(dirs[0], "tiny-k3e3.json"), filepath.Join(dirs[1], "tiny-k3e3.json")
	out := filepath.Join(t.TempDir(), "pareto")
	code, stdout, errs := runCLI(t, "pareto", "uniform="+a+"+"+b, "--data", "fashion-mnist-subset", "--limit", "80", "--runs", "3", "-o", out)
	if code != 0 {
		t.Fatalf("pareto: exit %d: %s\n%s", code, errs, stdout)
	}
	var rows []paretoRow
	js, err := os.ReadFile(filepath.Join(out, "pareto.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(js, &rows); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || len(rows[0].Runs) != 2 || rows[0].Models[1] != b {
		t.Fatalf("rows %+v", rows)
	}
	var sum float64
	for i, m := range []string{a, b} {
		_, ev, _ := runCLI(t, "eval", m, "--data", "fashion-mnist-subset", "--limit", "80", "--json")
		var ref evalResult
		json.Unmarshal([]byte(ev), &ref)
		if ref.Top1 != rows[0].Runs[i] {
			t.Errorf("run %d: program accuracy %v, interpreter %v", i, rows[0].Runs[i], ref.Top1)
		}
		sum += ref.Top1
	}
	if d := rows[0].Accuracy - sum/2; d > 1e-12 || d < -1e-12 {
		t.Errorf("accuracy %v, mean of runs %v", rows[0].Accuracy, sum/2)
	}
	md, _ := os.ReadFile(filepath.Join(out, "pareto.md"))
	if !strings.Contains(string(md), "(mean of ") {
		t.Errorf("pareto.md does not list the runs:\n%s", md)
	}
	other := filepath.Join(dirs[1], "tiny-k7e6.json")
	code, _, errs = runCLI(t, "pareto", "uniform="+a+"+"+other, "-o", filepath.Join(t.TempDir(), "p2"))
	if code != 2 || !strings.Contains(errs, other+": not the architecture of "+a) {
		t.Errorf("different architectures: exit %d, %s", code, errs)
	}
	if code, _, errs := runCLI(t, "pareto", "uniform="+a+"+", "-o", out); code != 2 || !strings.Contains(errs, "GROUP=A.json+B.json") {
		t.Errorf("empty run: exit %d, %s", code, errs)
	}
}

func TestMeanSD(t *testing.T) {
	m, sd := meanSD([]float64{0.88, 0.90, 0.86})
	if d := m - 0.88; d > 1e-12 || d < -1e-12 {
		t.Errorf("mean %v", m)
	}
	if d := sd - 0.02; d > 1e-12 || d < -1e-12 {
		t.Errorf("sd %v", sd)
	}
}

func TestParetoUniqueNames(t *testing.T) {
	rows := []paretoRow{
		{Name: "fmnist-searched", Model: "runs/train-200us/model.json"},
		{Name: "fmnist-searched", Model: "runs/train-300us/model.json"},
		{Name: "fmnist-k3e3", Model: "runs/train-fmnist-k3e3/model.json"},
	}
	uniqueNames(rows)
	for i, want := range []string{"fmnist-searched (train-200us)", "fmnist-searched (train-300us)", "fmnist-k3e3"} {
		if rows[i].Name != want {
			t.Errorf("row %d: name %q, want %q", i, rows[i].Name, want)
		}
	}
}

// Trainings of one architecture differ in weights and in the input
// normalisation their data split measured; other differences are refused.
func TestSameArchitecture(t *testing.T) {
	spacePath, _ := tinySetup(t)
	d := filepath.Join(t.TempDir(), "nets")
	if code, _, errs := runCLI(t, "sample", "--space", spacePath, "-n", "0", "--uniform", "k3e3", "-o", d); code != 0 {
		t.Fatalf("sample: %s", errs)
	}
	load := func() *ir.Model {
		m, err := ir.Load(filepath.Join(d, "tiny-k3e3.json"))
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	a, b := load(), load()
	b.Input.Mean, b.Input.Std = []float32{0.3}, []float32{0.4}
	for k := range b.Params {
		b.Params[k].Data[0]++
		break
	}
	if err := sameArchitecture(a, b); err != nil {
		t.Errorf("normalisation and weights: %v", err)
	}
	b.Input.Shape = []int{1, 14, 14}
	if err := sameArchitecture(a, b); err == nil || !strings.Contains(err.Error(), "inputs differ") {
		t.Errorf("input shape: %v", err)
	}
	c := load()
	c.Ops[0].Kernel = []int{5, 5}
	if err := sameArchitecture(a, c); err == nil || !strings.Contains(err.Error(), "op 0 ("+a.Ops[0].Name+") differs") {
		t.Errorf("kernel: %v", err)
	}
}

func TestSharedPrefix(t *testing.T) {
	for _, c := range []struct {
		names []string
		want  string
	}{
		{[]string{"fmnist-searched (t-110us)", "fmnist-random-110us-0", "fmnist-k3e3"}, "fmnist-"},
		{[]string{"fmnist-random-110us-0", "fmnist-random-180us-1"}, "fmnist-random-"},
		{[]string{"a-b", "c-d"}, ""},
		{[]string{"fmnist-k3e3"}, ""},
	} {
		var rows []paretoRow
		for _, n := range c.names {
			rows = append(rows, paretoRow{Name: n})
		}
		if got := sharedPrefix(rows); got != c.want {
			t.Errorf("sharedPrefix(%q) = %q, want %q", c.names, got, c.want)
		}
	}
}
