package main

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pnasml/pnas/ir"
)

// TestRoofline checks the per-class arithmetic on a one-layer net with a
// given time: a 1x1 convolution of 8 to 16 channels on a 4x4 map at batch
// 2 does 2*16*16*8*2 = 8192 flops and moves 4*2*(128+256) + 4*128 = 3584
// bytes; in 1000 ns that is 8.192 GFLOP/s and 3.584 GB/s.
func TestRoofline(t *testing.T) {
	b := ir.NewBuilder("pw", 8, 4, 4, rand.New(rand.NewPCG(1, 1)))
	x := b.ConvFull("pw", b.Input(), 16, [2]int{1, 1}, [2]int{1, 1}, [4]int{}, 1, false, nil, nil)
	x = b.Flatten("flat", x)
	m, err := b.Model(x)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "pw"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := ir.Save(m, filepath.Join(dir, "pw", "model.json")); err != nil {
		t.Fatal(err)
	}
	timing := map[string]float64{"median_ns": 1000, "p90_ns": 1000, "mean_ns": 1000, "var_ns2": 0}
	rep := map[string]any{"schema": "pnas-bench/1", "model": "pw", "model_id": "0123456789abcdef", "target": "cuda",
		"kernel_set": "cuda", "cpu": "test GPU", "cores": 1, "goos": "linux", "goarch": "amd64", "go_version": "go1.26",
		"threads": 1, "runs": 1, "warmup": 0, "total": timing,
		"layers": []map[string]any{
			{"name": "pw", "key": "", "ops": []string{"pw"}, "median_ns": 1000.0, "p90_ns": 1000.0, "mean_ns": 1000.0, "var_ns2": 0.0},
			{"name": "flat", "key": "", "ops": []string{"flat"}, "median_ns": 0.0, "p90_ns": 0.0, "mean_ns": 0.0, "var_ns2": 0.0},
		}}
	data, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "pw", "bench-b2.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := roofline(&out, dir, "pw", 2, 100, 10); err != nil {
		t.Fatal(err)
	}
	// intensity 8192/3584 = 2.29 flop/B; the bandwidth roof binds at
	// 22.9 GFLOP/s, of which 8.192 is 35.8%
	want := "pointwise 1.0 8.2 3.6 2.29 35.8%"
	found := false
	for _, line := range strings.Split(out.String(), "\n") {
		found = found || strings.Join(strings.Fields(line), " ") == want
	}
	if !found {
		t.Errorf("got\n%s\nwant a line %q", out.String(), want)
	}
}
