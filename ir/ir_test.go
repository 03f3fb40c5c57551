package ir_test

import (
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/pnasml/pnas/internal/testnet"
	"github.com/pnasml/pnas/ir"
)

func TestSaveLoadRoundTrip(t *testing.T) {
	m := testnet.Tiny(t)
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

func TestStats(t *testing.T) {
	m := testnet.Tiny(t)
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

}
