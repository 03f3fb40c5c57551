package archnet_test

import (
	"math/rand/v2"
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/pnasml/pnas/internal/archnet"
	"github.com/pnasml/pnas/internal/testnet"
	"github.com/pnasml/pnas/search/space"
)

func fmnistPlan(t *testing.T) *space.Plan {
	t.Helper()
	p, err := space.FMNIST().Plan()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// The keys of the profiling networks are exactly the keys the searcher's
// latency model looks up.
func TestKeysMatchSearch(t *testing.T) {
	p := fmnistPlan(t)
	want := map[string]bool{}
	for _, k := range p.FixedKeys() {
		want[k] = true
	}
	for _, l := range p.Layers {
		for _, c := range l.Candidates {
			if !c.Zero {
				want[l.Key(c)] = true
			}
		}
	}
	var wantKeys []string
	for k := range want {
		wantKeys = append(wantKeys, k)
	}
	sort.Strings(wantKeys)
	got, err := archnet.Keys(p)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(wantKeys, got); diff != "" {
		t.Fatalf("keys differ (-search +archnet):\n%s", diff)
	}
	nets, err := archnet.ProfileNets(p, "profile", rand.New(rand.NewPCG(1, 1)))
	if err != nil {
		t.Fatal(err)
	}
	if len(nets) != 6 {
		t.Fatalf("%d profile nets, want 6 (one per MBConv candidate)", len(nets))
	}
	covered := map[string]bool{}
	for _, m := range nets {
		bs, err := archnet.Blocks(m)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range bs {
			covered[b.Key] = true
		}
	}
	for _, k := range wantKeys {
		if !covered[k] {
			t.Errorf("key %s not covered by the profiling networks", k)
		}
	}
}

func TestRandomAndZero(t *testing.T) {
	p := fmnistPlan(t)
	rng := rand.New(rand.NewPCG(3, 3))
	for i := 0; i < 20; i++ {
		choice := archnet.Random(p, rng)
		m, err := archnet.Build(p, choice, "r", nil, rng)
		if err != nil {
			t.Fatal(err)
		}
		zeros := 0
		for l, j := range choice {
			if p.Layers[l].Candidates[j].Zero {
				zeros++
			}
		}
		bs, err := archnet.Blocks(m)
		if err != nil {
			t.Fatal(err)
		}
		// stem, first, head, classifier + one block per non-Zero layer
		if len(bs) != 4+len(choice)-zeros {
			t.Fatalf("%d blocks for %d layers with %d zero", len(bs), len(choice), zeros)
		}
	}
	if _, err := archnet.Build(p, []int{0}, "bad", nil, nil); err == nil {
		t.Fatal("no error for a short choice")
	}
}

// Blocks derives the keys of a hand-built annotated network.
func TestBlocksOfTiny(t *testing.T) {
	m := testnet.Tiny(t)
	blocks, err := archnet.Blocks(m)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	var parts []archnet.Part
	var cands []space.Candidate
	for _, b := range blocks {
		keys = append(keys, b.Key)
		parts = append(parts, b.Part)
		cands = append(cands, b.Candidate)
	}
	if diff := cmp.Diff([]archnet.Part{archnet.Stem, archnet.MBConv, archnet.MBConv, archnet.Head, archnet.Classifier}, parts); diff != "" {
		t.Errorf("parts (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]space.Candidate{{}, {Kernel: 3, Expand: 3}, {Kernel: 5, Expand: 6}, {}, {}}, cands); diff != "" {
		t.Errorf("candidates (-want +got):\n%s", diff)
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

func TestAnnotation(t *testing.T) {
	for _, c := range []space.Candidate{{Kernel: 3, Expand: 1}, {Kernel: 7, Expand: 6}, {Kernel: 4, Expand: 12}} {
		a := archnet.Annotation(c)
		got, err := archnet.ParseAnnotation(a)
		if err != nil || got != c {
			t.Errorf("ParseAnnotation(%q) = %v, %v; want %v", a, got, err, c)
		}
	}
	if got := archnet.Annotation(space.Candidate{Zero: true}); got != space.ZeroName {
		t.Errorf("Annotation(Zero) = %q, want %q", got, space.ZeroName)
	}
	for _, bad := range []string{"", "zero", "stem", "mbconv k5", "mbconv k5 e0", "mbconv kx e2", "conv k3 e1"} {
		if _, err := archnet.ParseAnnotation(bad); err == nil {
			t.Errorf("ParseAnnotation(%q): no error", bad)
		}
	}
}
