package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// Benchmarks report GFLOP/s (2 flops per multiply-add) of the fastest of
// their b.N runs (on a shared machine other processes can only make a run
// slower) and, where this build has a peak probe, the share of the kernel
// set's peak: one core's register-only FMA rate (the best of all probes so
// far in the process, one run right before each benchmark) times the
// workers count. Run them with
//
//	go test -run=^$ -bench=. -benchtime=20x ./runtime/kernels/
//
// Every kernel set the CPU offers runs in the same process, "go" (the
// pure-Go twins) included, so their ratios are measured side by side.

// gemmShapes are the searcher's 1x1 convolutions of the fmnist space at
// batch 64 in [C, N·H·W] form, with their backward products.
var gemmShapes = []struct {
	name    string
	ta, tb  bool
	m, n, k int
}{
	{"fwd_24to144_14x14", false, false, 144, 64 * 14 * 14, 24}, // Y = W·X
	{"fwd_144to24_14x14", false, false, 24, 64 * 14 * 14, 144}, // projection
	{"dX_144to24_14x14", true, false, 24, 64 * 14 * 14, 144},   // dX = Wᵀ·dY
	{"dW_24to144_14x14", false, true, 144, 24, 64 * 14 * 14},   // dW = dY·Xᵀ
	{"fwd_40to240_7x7", false, false, 240, 64 * 7 * 7, 40},     // deeper stage
	{"dW_40to240_7x7", false, true, 240, 40, 64 * 7 * 7},       // its filter gradient
	{"square_512", false, false, 512, 512, 512},                // reference
}

// timeBest runs f b.N times and reports the best run's GFLOP/s and share of
// peak.
func timeBest(b *testing.B, flops float64, set string, workers int, f func()) {
	peak := bestPeak(set)
	b.ResetTimer()
	best := time.Duration(1 << 62)
	for i := 0; i < b.N; i++ {
		t := time.Now()
		f()
		best = min(best, time.Since(t))
	}
	g := flops / best.Seconds() / 1e9
	b.ReportMetric(g, "GFLOP/s")
	if peak > 0 {
		b.ReportMetric(100*g/(peak*float64(workers)), "%peak")
	}
}

// benchSets runs f under each kernel set.
func benchSets(b *testing.B, f func(b *testing.B, set string)) {
	prev := KernelSet()
	defer SetKernelSet(prev)
	for _, set := range KernelSets() {
		if err := SetKernelSet(set); err != nil {
			b.Fatal(err)
		}
		b.Run(set, func(b *testing.B) { f(b, set) })
	}
}

func BenchmarkSgemm(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	for _, sh := range gemmShapes {
		a, bm, c := randSlice(r, sh.m*sh.k), randSlice(r, sh.k*sh.n), make([]float32, sh.m*sh.n)
		lda, ldb := sh.k, sh.n
		if sh.ta {
			lda = sh.m
		}
		if sh.tb {
			ldb = sh.k
		}
		flops := 2 * float64(sh.m) * float64(sh.n) * float64(sh.k)
		b.Run(sh.name, func(b *testing.B) {
			benchSets(b, func(b *testing.B, set string) {
				for _, w := range []int{1, 2} {
					b.Run(fmt.Sprintf("w%d", w), func(b *testing.B) {
						timeBest(b, flops, set, w, func() {
							Sgemm(sh.ta, sh.tb, sh.m, sh.n, sh.k, 1, a, lda, bm, ldb, 0, c, sh.n, w)
						})
					})
				}
			})
		})
	}
}

func BenchmarkDepthwise(b *testing.B) {
	r := rand.New(rand.NewPCG(2, 2))
	const c, n, h, wd = 72, 64, 14, 14
	x := randSlice(r, c*n*h*wd)
	for _, k := range []int{3, 5, 7} {
		for _, s := range []int{1, 2} {
			d := newDWShape("bench", c, n, h, wd, k, s)
			w := randSlice(r, c*k*k)
			y := make([]float32, c*n*d.ho*d.wo)
			dy := randSlice(r, len(y))
			dx := make([]float32, len(x))
			dw := make([]float32, len(w))
			flops := 2 * float64(c*n*d.ho*d.wo*k*k)
			passes := []struct {
				name string
				f    func(workers int)
			}{
				{"fwd", func(wk int) { DepthwiseForward(x, c, n, h, wd, w, k, s, y, wk) }},
				{"bwdData", func(wk int) { DepthwiseBackwardData(dy, c, n, h, wd, w, k, s, dx, wk) }},
				{"bwdFilter", func(wk int) { DepthwiseBackwardFilter(x, dy, c, n, h, wd, k, s, dw, wk) }},
			}
			for _, p := range passes {
				b.Run(fmt.Sprintf("%dx%dx%dx%d_k%ds%d_%s", c, n, h, wd, k, s, p.name), func(b *testing.B) {
					benchSets(b, func(b *testing.B, set string) {
						for _, wk := range []int{1, 2} {
							b.Run(fmt.Sprintf("w%d", wk), func(b *testing.B) {
								timeBest(b, flops, set, wk, func() { p.f(wk) })
							})
						}
					})
				})
			}
		}
	}
}

var peaks = map[string]float64{}

// bestPeak probes the set's peak once more and returns the best so far.
func bestPeak(set string) float64 {
	peaks[set] = max(peaks[set], measurePeak(set, 5*time.Millisecond))
	return peaks[set]
}

// BenchmarkPeak reports the register-only FMA peak of one core per set.
func BenchmarkPeak(b *testing.B) {
	benchSets(b, func(b *testing.B, set string) {
		best := 0.0
		for i := 0; i < b.N; i++ {
			best = max(best, bestPeak(set))
		}
		b.ReportMetric(best, "GFLOP/s")
	})
}

// BenchmarkMicroKernel runs each set's GEMM micro-kernel alone on panels
// in cache (kc = gemmKC): the ceiling of the packed path.
func BenchmarkMicroKernel(b *testing.B) {
	r := rand.New(rand.NewPCG(3, 3))
	benchSets(b, func(b *testing.B, set string) {
		g := gemmFor(level())
		a, bp := randSlice(r, gemmKC*g.mr), randSlice(r, gemmKC*g.nr)
		c := make([]float32, g.mr*g.nr)
		const reps = 1000
		timeBest(b, 2*float64(g.mr*g.nr*gemmKC)*reps, set, 1, func() {
			for i := 0; i < reps; i++ {
				g.fn(gemmKC, a, bp, g.nr, c, g.nr, true)
			}
		})
	})
}

// BenchmarkMemmove copies the depthwise benchmarks' input tensor
// (72x64x14x14 floats): the memory-bound reference for those passes.
func BenchmarkMemmove(b *testing.B) {
	src := make([]float32, 72*64*14*14)
	dst := make([]float32, len(src))
	b.SetBytes(int64(8 * len(src)))
	best := time.Duration(1 << 62)
	for i := 0; i < b.N; i++ {
		t := time.Now()
		copy(dst, src)
		best = min(best, time.Since(t))
	}
	b.ReportMetric(float64(8*len(src))/best.Seconds()/1e9, "GB/s(read+write)")
}
