package runtime_test

import (
	"fmt"
	"math/rand/v2"
	goruntime "runtime"
	"testing"
	"time"

	"github.com/pnasml/pnas/runtime"
)

// Kernel benchmarks at MobileNetV2-224 layer shapes, reporting GFLOP/s
// (2 flops per multiply-add) for 1 and 2 threads under the active kernel
// set (PNAS_KERNELS=avx2 or PNAS_NOASM=1 select lower sets):
//
//	go test -run '^$' -bench 'Pointwise|Depthwise' ./runtime/

type pwShape struct{ hw, cin, cout int }

var mnv2Pointwise = []pwShape{
	{112, 32, 16}, {112, 16, 96}, {56, 24, 144}, {56, 144, 24}, {28, 32, 192}, {28, 192, 32},
	{14, 64, 384}, {14, 384, 64}, {14, 576, 96}, {7, 160, 960}, {7, 960, 160}, {7, 320, 1280},
}

type dwShape struct{ hw, c, k, stride int }

var mnv2Depthwise = []dwShape{
	{112, 32, 3, 1}, {112, 96, 3, 2}, {56, 144, 3, 1}, {28, 192, 3, 1}, {14, 384, 3, 1},
	{14, 576, 3, 1}, {7, 960, 3, 1}, {14, 240, 5, 1}, {14, 240, 7, 1},
}

// Small layers, as in the 28x28 benchmark network: each takes a few
// microseconds, so splitting one across threads must pay for itself. The
// halo is the output's (the next layer's depthwise padding).
//
//	go test -run '^$' -bench 'Small' ./runtime/
var smallPointwise = []struct {
	pwShape
	halo int
}{
	{pwShape{28, 16, 48}, 1}, {pwShape{28, 48, 16}, 0}, {pwShape{28, 16, 96}, 2}, {pwShape{14, 96, 24}, 0},
	{pwShape{14, 24, 144}, 3}, {pwShape{7, 144, 40}, 0}, {pwShape{7, 40, 240}, 1}, {pwShape{7, 240, 64}, 0},
	{pwShape{7, 64, 256}, 0},
}

// Wide layers of the 7x7 maps of the ProxylessNAS nets, whose weights
// (1.5-3 MiB) hardly fit in L2. Repeated here they run at 160-180 GFLOP/s
// on one AVX-512 thread of the Intel Xeon; inside the networks, where the
// weights come from L3 each time, at 130-165. Running the tiles of a part
// in blocks of 512 KiB of weights, so that each block is read from L3
// once, did not change that (in the network, 3 interleaved rounds).
//
//	go test -run '^$' -bench 'WidePointwise' ./runtime/
var widePointwise = []pwShape{{7, 256, 1536}, {7, 1536, 256}, {7, 432, 1728}, {7, 1536, 432}, {7, 320, 1280}}

var smallDepthwise = []dwShape{
	{28, 48, 3, 1}, {28, 96, 5, 2}, {14, 72, 3, 1}, {14, 144, 7, 2}, {7, 120, 5, 1}, {7, 240, 3, 1},
	{7, 1536, 7, 1}, {7, 1536, 5, 1}, {14, 768, 7, 2}, {14, 672, 5, 1}, {14, 384, 5, 1}, {28, 336, 7, 2}, {28, 168, 3, 1},
}

func BenchmarkPointwise(b *testing.B) {
	for _, sh := range mnv2Pointwise {
		for _, threads := range []int{1, 2} {
			b.Run(fmt.Sprintf("%dx%dx%d-%d/t%d", sh.hw, sh.hw, sh.cin, sh.cout, threads), func(b *testing.B) {
				benchPointwise(b, sh, 0, threads)
			})
		}
	}
}

func BenchmarkSmallPointwise(b *testing.B) {
	for _, sh := range smallPointwise {
		for _, threads := range []int{1, 2} {
			b.Run(fmt.Sprintf("%dx%dx%d-%d-h%d/t%d", sh.hw, sh.hw, sh.cin, sh.cout, sh.halo, threads), func(b *testing.B) {
				benchPointwise(b, sh.pwShape, sh.halo, threads)
			})
		}
	}
}

// Expansions of the 224x224 nets whose output, with the halo of the
// depthwise layer after them, is 0.7-1.3 MB, written "cold" as in a
// network: each call writes the next of 8 output tensors, which together
// exceed L2, where BenchmarkPointwise rewrites one that stays there. With
// the AVX-512 tiles cut at map-row ends these ran 1.03-1.3x as long cold
// as warm on a Zen 4; with tiles across map rows (wrap), 1.01-1.08x
// (docs/perf.md).
//
//	go test -run '^$' -bench 'ColdPointwise' ./runtime/
var coldPointwise = []struct {
	pwShape
	halo int
}{{pwShape{56, 32, 96}, 3}, {pwShape{56, 24, 144}, 1}, {pwShape{28, 32, 192}, 1}}

func BenchmarkColdPointwise(b *testing.B) {
	for _, sh := range coldPointwise {
		b.Run(fmt.Sprintf("%dx%dx%d-%d-h%d", sh.hw, sh.hw, sh.cin, sh.cout, sh.halo), func(b *testing.B) {
			rng := rand.New(rand.NewPCG(1, 1))
			op := newBenchPointwise(b, rng, sh.pwShape)
			in := randTensor(rng, sh.hw, sh.hw, sh.cin, 0)
			outs := make([]runtime.Tensor, 8)
			for i := range outs {
				outs[i] = randTensor(rng, sh.hw, sh.hw, sh.cout, sh.halo)
			}
			k := 0
			benchOp(b, 1, 2*float64(sh.hw*sh.hw*sh.cin*sh.cout), func(p *runtime.Pool) error {
				k = (k + 1) % len(outs)
				return op.Run(p, outs[k], in, nil)
			})
		})
	}
}

func BenchmarkWidePointwise(b *testing.B) {
	for _, sh := range widePointwise {
		for _, threads := range []int{1, 2} {
			b.Run(fmt.Sprintf("%dx%dx%d-%d/t%d", sh.hw, sh.hw, sh.cin, sh.cout, threads), func(b *testing.B) {
				benchPointwise(b, sh, 0, threads)
			})
		}
	}
}

// BenchmarkColdWidePointwise runs the wide layers as in a network, with
// weights not in cache: each call uses the next of enough copies of the
// layer (distinct weights, 64 MiB in all) to exceed the L3. On a Zen 4
// with AVX2 these took 1.18-1.25x the time of BenchmarkWidePointwise
// when each kernel call's first tile loaded its B panels from memory,
// and 1.02-1.06x with the next call's panels prefetched over a call's
// tiles (docs/perf.md).
//
//	go test -run '^$' -bench 'ColdWidePointwise' ./runtime/
func BenchmarkColdWidePointwise(b *testing.B) {
	for _, sh := range widePointwise {
		b.Run(fmt.Sprintf("%dx%dx%d-%d", sh.hw, sh.hw, sh.cin, sh.cout), func(b *testing.B) {
			rng := rand.New(rand.NewPCG(1, 1))
			ops := make([]*runtime.Pointwise, (64<<20)/(4*sh.cin*sh.cout)+1)
			for i := range ops {
				ops[i] = newBenchPointwise(b, rng, sh)
			}
			in := randTensor(rng, sh.hw, sh.hw, sh.cin, 0)
			out := runtime.NewTensor(sh.hw, sh.hw, sh.cout, 0)
			k := 0
			benchOp(b, 1, 2*float64(sh.hw*sh.hw*sh.cin*sh.cout), func(p *runtime.Pool) error {
				k = (k + 1) % len(ops)
				return ops[k].Run(p, out, in, nil)
			})
		})
	}
}

func BenchmarkDepthwise(b *testing.B) {
	for _, sh := range mnv2Depthwise {
		for _, threads := range []int{1, 2} {
			b.Run(fmt.Sprintf("%dx%dx%d-k%ds%d/t%d", sh.hw, sh.hw, sh.c, sh.k, sh.stride, threads), func(b *testing.B) {
				benchDepthwise(b, sh, threads)
			})
		}
	}
}

func BenchmarkSmallDepthwise(b *testing.B) {
	for _, sh := range smallDepthwise {
		for _, threads := range []int{1, 2} {
			b.Run(fmt.Sprintf("%dx%dx%d-k%ds%d/t%d", sh.hw, sh.hw, sh.c, sh.k, sh.stride, threads), func(b *testing.B) {
				benchDepthwise(b, sh, threads)
			})
		}
	}
}

// newBenchPointwise builds a 1x1 layer of the shape with random weights
// and ReLU6.
func newBenchPointwise(b *testing.B, rng *rand.Rand, sh pwShape) *runtime.Pointwise {
	s := runtime.ConvSpec{Cin: sh.cin, Cout: sh.cout, KH: 1, KW: 1, Act: runtime.ActReLU6}
	pk, err := runtime.PackPointwise(s, randSlice(rng, sh.cin*sh.cout))
	if err != nil {
		b.Fatal(err)
	}
	op, err := runtime.NewPointwise(s, pk, randSlice(rng, sh.cout))
	if err != nil {
		b.Fatal(err)
	}
	return op
}

func benchPointwise(b *testing.B, sh pwShape, halo, threads int) {
	rng := rand.New(rand.NewPCG(1, 1))
	op := newBenchPointwise(b, rng, sh)
	in := randTensor(rng, sh.hw, sh.hw, sh.cin, 0)
	out := runtime.NewTensor(sh.hw, sh.hw, sh.cout, halo)
	benchOp(b, threads, 2*float64(sh.hw*sh.hw*sh.cin*sh.cout), func(p *runtime.Pool) error {
		return op.Run(p, out, in, nil)
	})
}

func benchDepthwise(b *testing.B, sh dwShape, threads int) {
	rng := rand.New(rand.NewPCG(1, 1))
	p2 := sh.k / 2
	s := runtime.ConvSpec{Cin: sh.c, Cout: sh.c, Groups: sh.c, KH: sh.k, KW: sh.k,
		StrideH: sh.stride, StrideW: sh.stride, PadT: p2, PadL: p2, PadB: p2, PadR: p2, Act: runtime.ActReLU6}
	pk, err := runtime.PackDepthwise(s, randSlice(rng, sh.c*sh.k*sh.k))
	if err != nil {
		b.Fatal(err)
	}
	op, err := runtime.NewDepthwise(s, pk, randSlice(rng, sh.c))
	if err != nil {
		b.Fatal(err)
	}
	in := randTensor(rng, sh.hw, sh.hw, sh.c, s.Halo())
	oh, ow := s.OutSize(sh.hw, sh.hw)
	out := runtime.NewTensor(oh, ow, sh.c, 0)
	benchOp(b, threads, 2*float64(oh*ow*sh.c*sh.k*sh.k), func(p *runtime.Pool) error {
		return op.Run(p, out, in, nil)
	})
}

// benchOp times run on a pool of the given threads and reports GFLOP/s
// and µs per call.
func benchOp(b *testing.B, threads int, flops float64, run func(*runtime.Pool) error) {
	p := runtime.NewPool(threads)
	defer p.Close()
	if threads == 1 {
		goruntime.LockOSThread()
		defer goruntime.UnlockOSThread()
	}
	c0 := runtime.ThreadCPU()
	for b.Loop() {
		if err := run(p); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	b.ReportMetric(b.Elapsed().Seconds()*1e6/float64(b.N), "µs/op")
	reportCPU(b, threads, c0, flops)
}

// reportCPU adds a GFLOP/s figure based on the thread's CPU time for
// single-threaded runs: on a shared machine it leaves out time other
// processes took.
func reportCPU(b *testing.B, threads int, c0 time.Duration, flops float64) {
	if threads != 1 {
		return
	}
	if cpu := runtime.ThreadCPU() - c0; cpu > 0 {
		b.ReportMetric(flops*float64(b.N)/cpu.Seconds()/1e9, "cpuGFLOP/s")
	}
}

// The classifier of the 224x224 nets: at batch 1 its weights (5-7 MB)
// stream from L3 or memory on every inference.
//
//	go test -run '^$' -bench 'Classifier' ./runtime/
func BenchmarkClassifier(b *testing.B) {
	for _, k := range []int{1280, 1728} {
		for _, threads := range []int{1, 2} {
			b.Run(fmt.Sprintf("%d-1000/t%d", k, threads), func(b *testing.B) {
				rng := rand.New(rand.NewPCG(1, 1))
				pk, err := runtime.PackLinear(1, 1, k, 1000, randSlice(rng, k*1000))
				if err != nil {
					b.Fatal(err)
				}
				op, err := runtime.NewLinear(1, 1, k, 1000, pk, randSlice(rng, 1000), runtime.ActNone)
				if err != nil {
					b.Fatal(err)
				}
				in := randTensor(rng, 1, 1, k, 0)
				out := runtime.NewTensor(1, 1, 1000, 0)
				benchOp(b, threads, 2*float64(k*1000), func(p *runtime.Pool) error {
					return op.Run(p, out, in)
				})
			})
		}
	}
}
