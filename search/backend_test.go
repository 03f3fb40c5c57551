package search

import (
	"slices"
	"strings"
	"testing"
)

func TestBackendSpec(t *testing.T) {
	if !slices.Contains(Backends(), "go") {
		t.Fatalf("Backends() = %v, want the pure-Go backend \"go\" in it", Backends())
	}
	p := mustPlan(t, tinySpace())
	for _, tc := range []struct{ spec, want string }{
		{"nope:x", `backend "nope:x": not compiled into this program (compiled in: go`},
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
