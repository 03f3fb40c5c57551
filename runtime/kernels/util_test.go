package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

// forEachSet runs f under every kernel set this CPU and build offer.
func forEachSet(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	prev := KernelSet()
	defer SetKernelSet(prev)
	for _, s := range KernelSets() {
		if err := SetKernelSet(s); err != nil {
			t.Fatal(err)
		}
		t.Run(s, f)
	}
}

func randSlice(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(r.Float64()*2 - 1)
	}
	return s
}

// guard is a slice with guard bands of sentinel values on both sides.
const guardLen = 37

var sentinel = float32(math.Float32frombits(0x7fc0dead)) // a NaN payload

type guarded struct{ all []float32 }

func newGuarded(n int, fill func(i int) float32) guarded {
	g := guarded{all: make([]float32, n+2*guardLen)}
	for i := range g.all {
		g.all[i] = sentinel
	}
	for i := 0; i < n; i++ {
		g.all[guardLen+i] = fill(i)
	}
	return g
}

func (g guarded) s() []float32 { return g.all[guardLen : len(g.all)-guardLen] }

func (g guarded) check(t *testing.T, name string) {
	t.Helper()
	for i := 0; i < guardLen; i++ {
		if math.Float32bits(g.all[i]) != math.Float32bits(sentinel) ||
			math.Float32bits(g.all[len(g.all)-1-i]) != math.Float32bits(sentinel) {
			t.Fatalf("%s: guard band overwritten", name)
		}
	}
}

// close reports whether got is within a float32 tolerance of want, scaled
// by mag, the sum of the magnitudes of the terms that make up want.
func closeTo(got float32, want, mag float64) bool {
	return math.Abs(float64(got)-want) <= 1e-5*mag+1e-6
}

func sameBits(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}
