package runtime_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/pnasml/pnas/runtime"
)

// The large inverted-residual blocks of MobileNetV2-224 and the
// ProxylessNAS nets, fused (rt.MBConv, default strips and fixed ones)
// against the three operators with the expanded tensor in memory, one
// thread (and both on 2 threads), active kernel set. hidden 0 is a block
// without expansion (the first block of those nets: depthwise → project):
// fused, only the depthwise output stays in cache.
//
//	go test -run '^$' -bench MBConv ./runtime/
var mbconvBlocks = []struct {
	hw, cin, hidden, cout, k, s int
}{
	{112, 16, 96, 24, 3, 2}, {56, 24, 144, 24, 3, 1}, {56, 24, 144, 32, 3, 2},
	{112, 16, 48, 32, 5, 2}, {56, 32, 96, 32, 7, 1}, {56, 32, 192, 40, 7, 2},
	{112, 32, 0, 16, 3, 1}, {112, 40, 0, 24, 3, 1},
}

func BenchmarkMBConv(b *testing.B) {
	pool := runtime.NewPool(2)
	defer pool.Close()
	for _, c := range mbconvBlocks {
		rng := rand.New(rand.NewPCG(3, 3))
		p := c.k / 2
		hidden := c.hidden
		if hidden == 0 {
			hidden = c.cin
		}
		ds := runtime.ConvSpec{Cin: hidden, Cout: hidden, KH: c.k, KW: c.k, StrideH: c.s, StrideW: c.s, Groups: hidden,
			PadT: p, PadL: p, PadB: p, PadR: p, Act: runtime.ActReLU6}
		ps := runtime.ConvSpec{Cin: hidden, Cout: c.cout, KH: 1, KW: 1}
		var expand *runtime.Pointwise
		inPad := 0
		if c.hidden > 0 {
			es := runtime.ConvSpec{Cin: c.cin, Cout: c.hidden, KH: 1, KW: 1, Act: runtime.ActReLU6}
			expand = buildConv(b, es, randSlice(rng, c.hidden*c.cin), randSlice(rng, c.hidden), false).(*runtime.Pointwise)
		} else {
			inPad = ds.Halo()
		}
		dw := buildConv(b, ds, randSlice(rng, hidden*c.k*c.k), randSlice(rng, hidden), false).(*runtime.Depthwise)
		project := buildConv(b, ps, randSlice(rng, c.cout*hidden), randSlice(rng, c.cout), false).(*runtime.Pointwise)
		m, err := runtime.NewMBConv(expand, dw, project)
		if err != nil {
			b.Fatal(err)
		}
		in := randTensor(rng, c.hw, c.hw, c.cin, inPad)
		oh, ow := ds.OutSize(c.hw, c.hw)
		out := runtime.NewTensor(oh, ow, c.cout, 0)
		name := fmt.Sprintf("%dx%dx%d-%d-%d_k%d_s%d", c.hw, c.hw, c.cin, c.hidden, c.cout, c.k, c.s)
		unfused := func(p *runtime.Pool, mid, mid2 runtime.Tensor) {
			if expand != nil {
				_ = expand.Run(p, mid, in, nil)
			} else {
				mid = in
			}
			_ = dw.Run(p, mid2, mid, nil)
			_ = project.Run(p, out, mid2, nil)
		}
		b.Run(name+"/unfused", func(b *testing.B) {
			mid := runtime.NewTensor(c.hw, c.hw, hidden, ds.Halo())
			mid2 := runtime.NewTensor(oh, ow, hidden, 0)
			for b.Loop() {
				unfused(nil, mid, mid2)
			}
		})
		b.Run(name+"/unfused-2threads", func(b *testing.B) {
			mid := runtime.NewTensor(c.hw, c.hw, hidden, ds.Halo())
			mid2 := runtime.NewTensor(oh, ow, hidden, 0)
			for b.Loop() {
				unfused(pool, mid, mid2)
			}
		})
		b.Run(name+"/fused-2threads", func(b *testing.B) {
			runtime.SetMBConvStrip(m, 0)
			for b.Loop() {
				_ = m.Run(pool, out, in, nil)
			}
		})
		for _, strip := range []int{0, 1, 2, 4, 8, 16} {
			b.Run(fmt.Sprintf("%s/strip%d", name, strip), func(b *testing.B) {
				runtime.SetMBConvStrip(m, strip)
				for b.Loop() {
					_ = m.Run(nil, out, in, nil)
				}
			})
		}
	}
}

// The small blocks that compiled programs split by hidden channels on two
// threads (MBConv.RunChannels) against the three operators on two threads
// and on one: 7x7 maps of the 224x224 nets (the last, ProxylessNAS GPU's
// k7 block), the stride-2 blocks that lead into them, and the 28x28
// net's. Weights and maps stay in cache here; in a network the weights
// of a 7x7 block (3 MB for the last) come from memory.
//
//	go test -run '^$' -bench MBConvChannels ./runtime/
var mbconvSmall = []struct {
	hw, cin, hidden, cout, k, s int
}{
	{14, 96, 576, 160, 3, 2}, {7, 160, 960, 160, 3, 1}, {14, 80, 480, 128, 5, 2},
	{28, 40, 240, 80, 5, 2}, {14, 24, 144, 40, 3, 2}, {7, 40, 240, 40, 3, 1},
	{7, 256, 1536, 256, 7, 1},
}

func BenchmarkMBConvChannels(b *testing.B) {
	pool := runtime.NewPool(2)
	defer pool.Close()
	for _, c := range mbconvSmall {
		rng := rand.New(rand.NewPCG(3, 3))
		p := c.k / 2
		es := runtime.ConvSpec{Cin: c.cin, Cout: c.hidden, KH: 1, KW: 1, Act: runtime.ActReLU6}
		ds := runtime.ConvSpec{Cin: c.hidden, Cout: c.hidden, KH: c.k, KW: c.k, StrideH: c.s, StrideW: c.s, Groups: c.hidden,
			PadT: p, PadL: p, PadB: p, PadR: p, Act: runtime.ActReLU6}
		ps := runtime.ConvSpec{Cin: c.hidden, Cout: c.cout, KH: 1, KW: 1}
		expand := buildConv(b, es, randSlice(rng, c.hidden*c.cin), randSlice(rng, c.hidden), false).(*runtime.Pointwise)
		dw := buildConv(b, ds, randSlice(rng, c.hidden*c.k*c.k), randSlice(rng, c.hidden), false).(*runtime.Depthwise)
		project := buildConv(b, ps, randSlice(rng, c.cout*c.hidden), randSlice(rng, c.cout), false).(*runtime.Pointwise)
		m, err := runtime.NewMBConv(expand, dw, project)
		if err != nil {
			b.Fatal(err)
		}
		in := randTensor(rng, c.hw, c.hw, c.cin, 0)
		oh, ow := ds.OutSize(c.hw, c.hw)
		out := runtime.NewTensor(oh, ow, c.cout, 0)
		name := fmt.Sprintf("%dx%dx%d-%d-%d_k%d_s%d", c.hw, c.hw, c.cin, c.hidden, c.cout, c.k, c.s)
		for _, u := range []struct {
			label string
			p     *runtime.Pool
		}{{"unfused-2threads", pool}, {"unfused-1thread", nil}} {
			b.Run(name+"/"+u.label, func(b *testing.B) {
				mid := runtime.NewTensor(c.hw, c.hw, c.hidden, ds.Halo())
				mid2 := runtime.NewTensor(oh, ow, c.hidden, 0)
				for b.Loop() {
					_ = expand.Run(u.p, mid, in, nil)
					_ = dw.Run(u.p, mid2, mid, nil)
					_ = project.Run(u.p, out, mid2, nil)
				}
			})
		}
		b.Run(name+"/channels-2threads", func(b *testing.B) {
			for b.Loop() {
				_ = m.RunChannels(pool, out, in, nil)
			}
		})
	}
}
