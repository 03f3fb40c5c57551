package runtime_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/pnasml/pnas/runtime"
)

// Small layers, as in the 28x28 benchmark network: each takes a few
// microseconds, so splitting one across threads must pay for itself.
//
//	go test -run '^$' -bench 'Small' ./runtime/
var smallPointwise = []struct{ hw, cin, cout, halo int }{
	{28, 16, 48, 1}, {28, 48, 16, 0}, {28, 16, 96, 2}, {14, 96, 24, 0}, {14, 24, 144, 3},
	{7, 144, 40, 0}, {7, 40, 240, 1}, {7, 240, 64, 0}, {7, 64, 256, 0},
}

var smallDepthwise = []dwShape{
	{28, 48, 3, 1}, {28, 96, 5, 2}, {14, 72, 3, 1}, {14, 144, 7, 2}, {7, 120, 5, 1}, {7, 240, 3, 1},
}

func BenchmarkSmallPointwise(b *testing.B) {
	for _, sh := range smallPointwise {
		for _, threads := range []int{1, 2} {
			b.Run(fmt.Sprintf("%dx%dx%d-%d-h%d/t%d", sh.hw, sh.hw, sh.cin, sh.cout, sh.halo, threads), func(b *testing.B) {
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
				out := runtime.NewTensor(sh.hw, sh.hw, sh.cout, sh.halo)
				p := runtime.NewPool(threads)
				defer p.Close()
				for b.Loop() {
					if err := op.Run(p, out, in, nil); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1e3, "µs/op")
			})
		}
	}
}

func BenchmarkSmallDepthwise(b *testing.B) {
	for _, sh := range smallDepthwise {
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
				for b.Loop() {
					if err := op.Run(p, out, in, nil); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1e3, "µs/op")
			})
		}
	}
}
