package search

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func TestBackendSpec(t *testing.T) {
	if !slices.Contains(Backends(), "go") || !slices.Contains(Backends(), DefaultBackend) {
		t.Fatalf("Backends() = %v, want the pure-Go backend \"go\" and the default %q in it", Backends(), DefaultBackend)
	}
	p := mustPlan(t, tinySpace())
	for _, tc := range []struct{ spec, want string }{
		{"nope:x", `backend "nope:x": not compiled into this program (compiled in: go, pnas`},
		{"pnas:bogus", `backend "pnas:bogus": pnas backend: unknown option "bogus"`},
		{"pnas:parallelism=x", `backend "pnas:parallelism=x"`},
		{"go:bogus", `backend "go:bogus": unknown configuration option "bogus"`},
		{"go:parallelism=x", `backend "go:parallelism=x"`},
	} {
		cfg := testConfig()
		cfg.Backend = tc.spec
		s, err := New(p, cfg, nil)
		if err == nil {
			s.Close()
			t.Errorf("Backend %q: no error", tc.spec)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Backend %q: error %q, want it to contain %q", tc.spec, err, tc.want)
		}
	}
	if !slices.Contains(Backends(), "xla") {
		cfg := testConfig()
		cfg.Backend = "xla:cpu"
		if _, err := New(p, cfg, nil); err == nil || !strings.Contains(err.Error(), "-tags xla") {
			t.Errorf("Backend xla:cpu without the xla build tag: error %v, want a hint to build with -tags xla", err)
		}
	}
}

// TestBackendsAgree runs the same weight and architecture steps (same
// seed, so the same paths) on pnas's backend and on simplego: the loss
// curves agree within float32 rounding, and both learn.
func TestBackendsAgree(t *testing.T) {
	losses := map[string][]float64{}
	for _, be := range []string{"", "go"} {
		cfg := testConfig()
		cfg.Backend = be
		cfg.Seed = 3
		s := newTest(t, tinySpace("k3e3", "k5e6", "k7e3", "zero"), cfg)
		rng := rand.New(rand.NewPCG(21, 22))
		x, y := synthBatch(s.Plan(), 8, rng)
		for i := 0; i < 12; i++ {
			st, err := s.WeightStep(x, y, 0.05, false)
			if err != nil {
				t.Fatal(err)
			}
			losses[be] = append(losses[be], st.Loss)
			if i%3 == 2 {
				at, err := s.ArchStep(x, y)
				if err != nil {
					t.Fatal(err)
				}
				losses[be] = append(losses[be], at.Loss)
			}
		}
	}
	a, b := losses[""], losses["go"]
	for i := range a {
		if math.Abs(a[i]-b[i]) > 2e-3*math.Max(1, math.Abs(b[i])) {
			t.Errorf("step %d: loss %.6f on pnas, %.6f on simplego", i, a[i], b[i])
		}
	}
	if a[len(a)-2] >= a[0] {
		t.Errorf("loss did not fall on pnas: %v", a)
	}
}
