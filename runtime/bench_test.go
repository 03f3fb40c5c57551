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

func BenchmarkPointwise(b *testing.B) {
	for _, sh := range mnv2Pointwise {
		for _, threads := range []int{1, 2} {
			b.Run(fmt.Sprintf("%dx%dx%d-%d/t%d", sh.hw, sh.hw, sh.cin, sh.cout, threads), func(b *testing.B) {
				rng := rand.New(rand.NewPCG(1, 1))
				s := runtime.ConvSpec{Cin: sh.cin, Cout: sh.cout, KH: 1, KW: 1, Act: runtime.ActReLU6}
				pk, err := runtime.PackPointwise(s, randSlice(rng, sh.cin*sh.cout))
				if err != nil {
					b.Fatal(err)
				}
				op, err := runtime.NewPointwise(s, pk, randSlice(rng, sh.cout))
				if err != nil {
					b.Fatal(err)
				}
				in := runtime.NewTensor(sh.hw, sh.hw, sh.cin, 0)
				out := runtime.NewTensor(sh.hw, sh.hw, sh.cout, 0)
				p := runtime.NewPool(threads)
				defer p.Close()
				if threads == 1 {
					goruntime.LockOSThread()
					defer goruntime.UnlockOSThread()
				}
				c0 := runtime.ThreadCPU()
				for b.Loop() {
					if err := op.Run(p, out, in, nil); err != nil {
						b.Fatal(err)
					}
				}
				flops := 2 * float64(sh.hw*sh.hw*sh.cin*sh.cout)
				b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
				reportCPU(b, threads, c0, flops)
			})
		}
	}
}

func BenchmarkDepthwise(b *testing.B) {
	for _, sh := range mnv2Depthwise {
		for _, threads := range []int{1, 2} {
			b.Run(fmt.Sprintf("%dx%dx%d-k%ds%d/t%d", sh.hw, sh.hw, sh.c, sh.k, sh.stride, threads), func(b *testing.B) {
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
				in := runtime.NewTensor(sh.hw, sh.hw, sh.c, s.Halo())
				oh, ow := s.OutSize(sh.hw, sh.hw)
				out := runtime.NewTensor(oh, ow, sh.c, 0)
				p := runtime.NewPool(threads)
				defer p.Close()
				if threads == 1 {
					goruntime.LockOSThread()
					defer goruntime.UnlockOSThread()
				}
				c0 := runtime.ThreadCPU()
				for b.Loop() {
					if err := op.Run(p, out, in, nil); err != nil {
						b.Fatal(err)
					}
				}
				flops := 2 * float64(oh*ow*sh.c*sh.k*sh.k)
				b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
				reportCPU(b, threads, c0, flops)
			})
		}
	}
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
