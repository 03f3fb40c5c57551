package main

import (
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pnasml/pnas/ir"
)

func TestLayerKind(t *testing.T) {
	for _, c := range []struct {
		op   *ir.Op
		want string
	}{
		{&ir.Op{Type: ir.OpConv2D, Kernel: []int{3, 3}, Groups: 32}, "depthwise"},
		{&ir.Op{Type: ir.OpConv2D, Kernel: []int{1, 1}, Groups: 1}, "1x1"},
		{&ir.Op{Type: ir.OpConv2D, Kernel: []int{3, 3}, Groups: 1}, "full conv"},
		{&ir.Op{Type: ir.OpDense}, "dense"},
		{&ir.Op{Type: ir.OpGlobalPool}, "other"},
		{nil, "other"},
	} {
		if got := layerKind(c.op); got != c.want {
			t.Errorf("layerKind(%+v) = %q, want %q", c.op, got, c.want)
		}
	}
}

func TestMedianRelErr(t *testing.T) {
	if m := median([]float64{3, 1, 2}); m != 2 {
		t.Errorf("median of 3 = %v", m)
	}
	if m := median([]float64{4, 1, 2, 3}); m != 2.5 {
		t.Errorf("median of 4 = %v", m)
	}
	if !math.IsNaN(median(nil)) {
		t.Error("median of nothing is not NaN")
	}
	if e := relErr([]float32{1, -2.5}, []float32{1, -2}); e != 0.25 {
		t.Errorf("relErr = %v, want 0.25", e)
	}
}

// TestReprint checks that -from reads what -json writes.
func TestReprint(t *testing.T) {
	rows := []*row{
		{Model: "m", Target: "amd64", Threads: 1, KernelSet: "avx2", MACs: 1e6, PnasMS: []float64{1, 2, 3}, OrtMS: []float64{2, 2, 2}},
		{Model: "m", Target: "amd64" + baselineSuffix, Threads: 1, KernelSet: "avx2", MACs: 1e6, PnasMS: []float64{4}, OrtMS: []float64{2}},
	}
	b, err := json.Marshal(rows)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "r.json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := reprint(path); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := reprint(path); err == nil {
		t.Error("reprint accepted a broken file")
	}
}

// An -extra row is timed after, and compared with, its reference model's
// ONNX Runtime timing.
func TestExtraRowsCompareWithTheirReference(t *testing.T) {
	ref := &row{Model: "mbconv_fmnist28"}
	extra := &row{Model: "fmnist", VsModel: "mbconv_fmnist28"}
	if ref.ortModel() != "mbconv_fmnist28" || extra.ortModel() != "mbconv_fmnist28" {
		t.Errorf("ortModel: %q, %q; want the reference model for both", ref.ortModel(), extra.ortModel())
	}
}

func TestPassRatios(t *testing.T) {
	lo, hi, ok := passRatios([]float64{4, 3.5, 4}, []float64{4.8, 4.5, 4.4})
	if !ok || math.Abs(lo-3.5/4.5) > 1e-12 || math.Abs(hi-4/4.4) > 1e-12 {
		t.Errorf("passRatios = %v, %v, %v; want %v, %v", lo, hi, ok, 3.5/4.5, 4/4.4)
	}
	if _, _, ok := passRatios([]float64{1, 2}, []float64{1}); ok {
		t.Error("passRatios accepted passes of different counts")
	}
}

// TestServer drives the request protocol of -interleave blocks against
// shell stand-ins for the engines.
func TestServer(t *testing.T) {
	sh := func(script string) *exec.Cmd { return exec.Command("sh", "-c", script) }
	s, err := startServer("ok", sh(`while read n; do echo "[1000000,2000000,3000000]"; done`), 1e-6)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.runs(3)
	if err != nil || len(got) != 3 || got[0] != 1 || got[2] != 3 {
		t.Errorf("runs(3) = %v, %v; want [1 2 3] ms", got, err)
	}
	if _, err := s.runs(2); err == nil || !strings.Contains(err.Error(), "JSON array of 2 run times") {
		t.Errorf("runs(2) against 3 times: %v", err)
	}
	if err := s.close(); err != nil {
		t.Errorf("close: %v", err)
	}
	s, err = startServer("failing", sh(`read n; echo "no such flag: -bench-stdin" >&2; exit 2`), 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.runs(1); err == nil || !strings.Contains(err.Error(), "no such flag: -bench-stdin") {
		t.Errorf("a server that exits: %v, want its stderr in the error", err)
	}
	if err := s.close(); err == nil {
		t.Error("close of a server that failed: nil error")
	}
}
