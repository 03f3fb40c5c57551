package ir_test

import (
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/pnasml/pnas/internal/archnet"
	"github.com/pnasml/pnas/ir"
)

// tinyNet is a small MBConv network annotated like a searched model.
func tinyNet(t testing.TB) *ir.Model {
	t.Helper()
	b := ir.NewBuilder("tiny", 1, 9, 9, rand.New(rand.NewPCG(7, 7)))
	b.Block = &ir.Block{Stage: 0, Layer: 0, Candidate: "stem"}
	x := b.ConvBNAct("stem", b.Input(), 8, 3, 1, 1, ir.ActReLU6)
	b.Block = &ir.Block{Stage: 1, Layer: 0, Candidate: "mbconv k3 e3"}
	x = b.MBConv("s1.l0", x, 12, 3, 3, 2)
	b.Block = &ir.Block{Stage: 1, Layer: 1, Candidate: "mbconv k5 e6"}
	x = b.MBConv("s1.l1", x, 12, 5, 6, 1)
	b.Block = &ir.Block{Stage: -1, Layer: 0, Candidate: "head"}
	x = b.ConvBNAct("head", x, 16, 1, 1, 1, ir.ActReLU6)
	b.Block = &ir.Block{Stage: -1, Layer: 1, Candidate: "classifier"}
	x = b.GlobalPool("pool", x)
	x = b.Flatten("flatten", x)
	x = b.Dense("fc", x, 10, nil, nil)
	m, err := b.Model(x)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestSaveLoadRoundTrip(t *testing.T) {
	m := tinyNet(t)
	m.Metadata.Search = &ir.SearchInfo{Space: "fmnist", Target: "amd64", Seed: 3, Alpha: [][]float64{{0.1, -0.2}}}
	path := filepath.Join(t.TempDir(), "tiny.json")
	if err := ir.Save(m, path); err != nil {
		t.Fatal(err)
	}
	got, err := ir.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	m.Weights = "tiny.safetensors"
	if diff := cmp.Diff(m, got); diff != "" {
		t.Fatalf("round trip differs (-want +got):\n%s", diff)
	}
}

func TestStatsAndBlocks(t *testing.T) {
	m := tinyNet(t)
	st, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	// stem: 9*9*8*1*9 MACs
	if st.Ops[0].MACs != 9*9*8*9 {
		t.Errorf("stem MACs = %d, want %d", st.Ops[0].MACs, 9*9*8*9)
	}
	var sum int64
	for _, o := range st.Ops {
		sum += o.MACs
	}
	if sum != st.MACs {
		t.Errorf("total MACs %d != sum of ops %d", st.MACs, sum)
	}
	blocks, err := archnet.Blocks(m)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, b := range blocks {
		keys = append(keys, b.Key)
	}
	want := []string{
		"Conv-input:9x9x1-output:9x9x8",
		"expanded_conv-input:9x9x8-output:5x5x12-expand:3-kernel:3-stride:2-idskip:0",
		"expanded_conv-input:5x5x12-output:5x5x12-expand:6-kernel:5-stride:1-idskip:1",
		"Conv_1-input:5x5x12-output:5x5x16",
		"Logits-input:5x5x16-output:10",
	}
	if diff := cmp.Diff(want, keys); diff != "" {
		t.Fatalf("keys (-want +got):\n%s", diff)
	}
}
