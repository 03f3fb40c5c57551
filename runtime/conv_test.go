package runtime_test

import (
	"math/rand/v2"
	"testing"

	"github.com/pnasml/pnas/runtime"
)

// convOp is the common shape of the convolution operators.
type convOp interface {
	Run(p *runtime.Pool, out, in runtime.Tensor, res *runtime.Tensor) error
}

// buildConv packs w and constructs the operator for the spec's kind, or
// the grouped fallback when generic is set.
func buildConv(t testing.TB, s runtime.ConvSpec, w, bias []float32, generic bool) convOp {
	t.Helper()
	kind := s.Kind()
	if generic {
		kind = runtime.KindGrouped
	}
	var (
		op  convOp
		err error
	)
	switch kind {
	case runtime.KindPointwise:
		var pk []float32
		if pk, err = runtime.PackPointwise(s, w); err == nil {
			op, err = runtime.NewPointwise(s, pk, bias)
		}
	case runtime.KindDepthwise:
		var pk []float32
		if pk, err = runtime.PackDepthwise(s, w); err == nil {
			op, err = runtime.NewDepthwise(s, pk, bias)
		}
	case runtime.KindDense:
		var pk []float32
		if pk, err = runtime.PackDense(s, w); err == nil {
			op, err = runtime.NewDenseConv(s, pk, bias)
		}
	default:
		var pk []float32
		if pk, err = runtime.PackGrouped(s, w); err == nil {
			op, err = runtime.NewGroupedConv(s, pk, bias)
		}
	}
	if err != nil {
		t.Fatalf("%s: %v", specString(s), err)
	}
	return op
}

// convCase is one convolution test.
type convCase struct {
	s       runtime.ConvSpec
	h, w    int
	inPad   int // extra halo beyond what the spec needs
	outPad  int
	resPad  int
	res     bool
	noBias  bool
	generic bool
}

func runConvCase(t *testing.T, rng *rand.Rand, c convCase, pools []*runtime.Pool) {
	t.Helper()
	s := c.s
	groups := max(s.Groups, 1)
	w := randSlice(rng, s.Cout*(s.Cin/groups)*s.KH*s.KW)
	var bias []float32
	if !c.noBias {
		bias = randSlice(rng, s.Cout)
	}
	cs := s.InStride
	if cs == 0 {
		cs = runtime.PadC(s.Cin)
	}
	halo := s.Halo() + c.inPad
	in := newGuarded(rng, c.h, c.w, s.Cin, cs, halo, rng.IntN(4))
	oh, ow := s.OutSize(c.h, c.w)
	var res *runtime.Tensor
	var rg *guarded
	if c.res {
		rg = newGuarded(rng, oh, ow, s.Cout, runtime.PadC(s.Cout), c.resPad, rng.IntN(4))
		res = &rg.Tensor
	}
	want, mag, _, _ := refConv(s, w, bias, in.Tensor, res)
	op := buildConv(t, s, w, bias, c.generic)
	name := specString(s)
	for _, p := range pools {
		out := newGuarded(nil, oh, ow, s.Cout, runtime.PadC(s.Cout), c.outPad, rng.IntN(4))
		// Poison the interior so stale values cannot pass.
		for y := 0; y < oh; y++ {
			for x := 0; x < ow; x++ {
				for ch := 0; ch < out.CS; ch++ {
					out.Data[out.Offset(y, x)+ch] = 12345
				}
			}
		}
		if err := op.Run(p, out.Tensor, in.Tensor, res); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		compare(t, name, out.Tensor, want, mag)
		out.checkFrame(t, name+" out")
		in.checkFrame(t, name+" in")
		if rg != nil {
			rg.checkFrame(t, name+" res")
		}
	}
}

func testPools(t *testing.T) []*runtime.Pool {
	pools := []*runtime.Pool{nil, runtime.NewPool(2), runtime.NewPool(3)}
	for _, p := range pools[1:] {
		runtime.SetSerialWork(p, 0) // split even the small cases
	}
	t.Cleanup(func() {
		for _, p := range pools {
			p.Close()
		}
	})
	return pools
}

var acts = []runtime.Act{runtime.ActNone, runtime.ActReLU, runtime.ActReLU6}

func TestPointwise(t *testing.T) {
	pools := testPools(t)
	forEachSet(t, func(t *testing.T, set string) {
		rng := rand.New(rand.NewPCG(1, 2))
		chans := []int{1, 3, 8, 13, 16, 17, 24, 31, 32, 33, 40, 48, 57, 64, 96}
		sizes := [][2]int{{1, 1}, {1, 2}, {2, 3}, {3, 3}, {5, 7}, {7, 7}, {4, 4}, {14, 14}, {9, 17}, {28, 3}}
		for i := 0; i < 120; i++ {
			sz := sizes[rng.IntN(len(sizes))]
			c := convCase{
				s: runtime.ConvSpec{Cin: chans[rng.IntN(len(chans))], Cout: chans[rng.IntN(len(chans))],
					KH: 1, KW: 1, Act: acts[rng.IntN(3)]},
				h: sz[0], w: sz[1],
				res: rng.IntN(2) == 0, noBias: rng.IntN(5) == 0,
			}
			if rng.IntN(3) == 0 {
				c.inPad, c.outPad, c.resPad = rng.IntN(3), rng.IntN(3), rng.IntN(2)
			}
			runConvCase(t, rng, c, pools)
		}
		// Dense inputs, outputs (and residuals) with a halo: full tiles
		// run across the ends of the map rows.
		for _, sz := range [][2]int{{2, 1}, {3, 2}, {4, 5}, {7, 7}, {5, 9}, {28, 28}, {13, 14}, {3, 29}} {
			for _, pad := range [][2]int{{1, 0}, {2, 1}, {0, 2}, {3, 0}} {
				runConvCase(t, rng, convCase{
					s: runtime.ConvSpec{Cin: chans[rng.IntN(len(chans))], Cout: chans[rng.IntN(len(chans))],
						KH: 1, KW: 1, Act: acts[rng.IntN(3)]},
					h: sz[0], w: sz[1], outPad: pad[0], resPad: pad[1], res: pad[1] > 0 || rng.IntN(2) == 0,
				}, pools)
			}
		}
		// Large K and N, both loop orders and column splitting.
		for _, c := range []convCase{
			{s: runtime.ConvSpec{Cin: 320, Cout: 1280, KH: 1, KW: 1, Act: runtime.ActReLU6}, h: 3, w: 3},
			{s: runtime.ConvSpec{Cin: 960, Cout: 168, KH: 1, KW: 1}, h: 5, w: 3, res: true},
			{s: runtime.ConvSpec{Cin: 24, Cout: 144, KH: 1, KW: 1, Act: runtime.ActReLU6}, h: 30, w: 29},
			{s: runtime.ConvSpec{Cin: 1000, Cout: 40, KH: 1, KW: 1}, h: 1, w: 1},
			// outputs whose channel stride has PadC's extra line, which the
			// GEMM fills with zeros: dense, with a halo (tiles across map
			// rows, and cut at row ends), a residual, an input with it
			{s: runtime.ConvSpec{Cin: 24, Cout: 512, KH: 1, KW: 1, Act: runtime.ActReLU6}, h: 7, w: 7},
			{s: runtime.ConvSpec{Cin: 40, Cout: 640, KH: 1, KW: 1, Act: runtime.ActReLU6}, h: 5, w: 9, outPad: 2},
			{s: runtime.ConvSpec{Cin: 40, Cout: 768, KH: 1, KW: 1}, h: 14, w: 14, outPad: 3},
			{s: runtime.ConvSpec{Cin: 1536, Cout: 1536, KH: 1, KW: 1}, h: 2, w: 3, res: true, resPad: 1},
		} {
			runConvCase(t, rng, c, pools)
		}
	})
}

func TestDepthwise(t *testing.T) {
	pools := testPools(t)
	forEachSet(t, func(t *testing.T, set string) {
		rng := rand.New(rand.NewPCG(3, 4))
		chans := []int{1, 5, 8, 15, 16, 17, 24, 40, 48, 72, 96, 144, 512}
		ks := []int{1, 2, 3, 3, 3, 5, 5, 7, 7, 9}
		for i := 0; i < 150; i++ {
			k := ks[rng.IntN(len(ks))]
			kw := k
			if rng.IntN(8) == 0 {
				kw = 1 + rng.IntN(5)
			}
			ch := chans[rng.IntN(len(chans))]
			st := 1 + rng.IntN(2)
			if rng.IntN(10) == 0 {
				st = 3
			}
			s := runtime.ConvSpec{Cin: ch, Cout: ch, Groups: ch, KH: k, KW: kw, StrideH: st, StrideW: st, Act: acts[rng.IntN(3)]}
			switch rng.IntN(4) {
			case 0: // valid
			case 1: // asymmetric, as TF "same" with stride 2
				s.PadT, s.PadL, s.PadB, s.PadR = (k-1)/2, (kw-1)/2, k/2, kw/2
			default: // symmetric
				s.PadT, s.PadB, s.PadL, s.PadR = k/2, k/2, kw/2, kw/2
			}
			h, w := 1+rng.IntN(16), 1+rng.IntN(16)
			if h+s.PadT+s.PadB < k {
				h = k
			}
			if w+s.PadL+s.PadR < kw {
				w = kw
			}
			c := convCase{s: s, h: h, w: w, res: rng.IntN(3) == 0, noBias: rng.IntN(5) == 0}
			if rng.IntN(3) == 0 {
				c.inPad, c.outPad, c.resPad = rng.IntN(2), rng.IntN(3), rng.IntN(2)
			}
			runConvCase(t, rng, c, pools)
		}
		for _, c := range []convCase{
			{s: runtime.ConvSpec{Cin: 24, Cout: 24, Groups: 24, KH: 7, KW: 7, PadT: 3, PadL: 3, PadB: 3, PadR: 3}, h: 4, w: 4},
			{s: runtime.ConvSpec{Cin: 40, Cout: 40, Groups: 40, KH: 7, KW: 7, StrideH: 2, StrideW: 2, PadT: 3, PadL: 3, PadB: 3, PadR: 3}, h: 7, w: 7, res: true},
			{s: runtime.ConvSpec{Cin: 96, Cout: 96, Groups: 96, KH: 3, KW: 3, StrideH: 2, StrideW: 2, PadT: 1, PadL: 1, PadB: 1, PadR: 1, Act: runtime.ActReLU6}, h: 15, w: 13},
			{s: runtime.ConvSpec{Cin: 8, Cout: 8, Groups: 8, KH: 5, KW: 5, PadT: 2, PadL: 2, PadB: 2, PadR: 2}, h: 1, w: 1},
			{s: runtime.ConvSpec{Cin: 960, Cout: 960, Groups: 960, KH: 3, KW: 3, PadT: 1, PadL: 1, PadB: 1, PadR: 1}, h: 2, w: 3},
			// split by channel blocks on 2 and 3 threads (7 rows)
			{s: runtime.ConvSpec{Cin: 1528, Cout: 1528, Groups: 1528, KH: 7, KW: 7, PadT: 3, PadL: 3, PadB: 3, PadR: 3, Act: runtime.ActReLU6}, h: 7, w: 7, res: true},
			{s: runtime.ConvSpec{Cin: 32, Cout: 32, Groups: 32, KH: 3, KW: 3, PadT: 1, PadL: 1, PadB: 1, PadR: 1}, h: 40, w: 37, res: true},
			{s: runtime.ConvSpec{Cin: 24, Cout: 24, Groups: 24, KH: 3, KW: 3, StrideH: 1, StrideW: 2, PadT: 1, PadL: 1, PadB: 1, PadR: 1}, h: 9, w: 11},
		} {
			runConvCase(t, rng, c, pools)
		}
		// Maps 7 wide with 5x5 and 7x7 windows and same padding run the
		// whole-map kernels, which skip the padding: maps of 1 to 9 rows
		// (windows that cover all rows, and some that cover none of the
		// padding), channel counts past whole vectors.
		for i, h := range []int{1, 2, 3, 4, 7, 9} {
			for _, k := range []int{5, 7} {
				p := (k - 1) / 2
				c := []int{8, 17, 40, 1528}[(i+k)%4]
				runConvCase(t, rng, convCase{s: runtime.ConvSpec{Cin: c, Cout: c, Groups: c, KH: k, KW: k, PadT: p, PadL: p, PadB: p, PadR: p,
					Act: acts[(i+k)%3]}, h: h, w: 7, res: i%2 == 0, inPad: i % 2, outPad: (i + 1) % 2, noBias: i == 3}, pools)
			}
		}
		// Strips of one to a few output rows, cut by the input bytes of
		// all channels or by the lines of one channel vector's pass.
		for _, st := range []struct{ strip, pass int }{{1, 0}, {3 << 10, 0}, {10 << 10, 0}, {1, 7 << 10}} {
			restore := runtime.SetDepthwiseStrips(st.strip, 0, st.pass)
			for _, c := range []convCase{
				{s: runtime.ConvSpec{Cin: 48, Cout: 48, Groups: 48, KH: 3, KW: 3, PadT: 1, PadL: 1, PadB: 1, PadR: 1, Act: runtime.ActReLU6}, h: 11, w: 9, res: true, outPad: 1},
				{s: runtime.ConvSpec{Cin: 40, Cout: 40, Groups: 40, KH: 5, KW: 5, StrideH: 2, StrideW: 2, PadT: 2, PadL: 2, PadB: 2, PadR: 2}, h: 13, w: 14, inPad: 1},
				{s: runtime.ConvSpec{Cin: 17, Cout: 17, Groups: 17, KH: 7, KW: 7, PadT: 3, PadL: 3, PadB: 3, PadR: 3}, h: 10, w: 7, res: true},
			} {
				runConvCase(t, rng, c, pools)
			}
			restore()
		}
	})
}

func TestDenseConv(t *testing.T) {
	pools := testPools(t)
	forEachSet(t, func(t *testing.T, set string) {
		rng := rand.New(rand.NewPCG(5, 6))
		for i := 0; i < 80; i++ {
			cin := []int{1, 2, 3, 8, 11, 16}[rng.IntN(6)]
			k := []int{1, 2, 3, 3, 5}[rng.IntN(5)]
			st := 1 + rng.IntN(2)
			s := runtime.ConvSpec{Cin: cin, Cout: []int{3, 8, 16, 24, 32, 40}[rng.IntN(6)], KH: k, KW: k,
				StrideH: st, StrideW: st, Act: acts[rng.IntN(3)]}
			if rng.IntN(4) != 0 {
				s.PadT, s.PadL, s.PadB, s.PadR = k/2, k/2, k/2, k/2
			}
			switch rng.IntN(3) {
			case 0:
				s.InStride = cin
			case 1:
				s.InStride = cin + rng.IntN(3)
			}
			if s.Kind() == runtime.KindPointwise {
				s.StrideH = 2 // keep it on the dense path
			}
			h, w := k+rng.IntN(20), k+rng.IntN(20)
			c := convCase{s: s, h: h, w: w, res: rng.IntN(3) == 0}
			if rng.IntN(3) == 0 {
				c.inPad, c.outPad, c.resPad = rng.IntN(2), rng.IntN(3), rng.IntN(2)
			}
			runConvCase(t, rng, c, pools)
		}
		// MobileNetV2 stem at a reduced size, and the 28x28x1 stem.
		for _, c := range []convCase{
			{s: runtime.ConvSpec{Cin: 3, Cout: 32, KH: 3, KW: 3, StrideH: 2, StrideW: 2, PadT: 1, PadL: 1, PadB: 1, PadR: 1, InStride: 3, Act: runtime.ActReLU6}, h: 33, w: 31},
			{s: runtime.ConvSpec{Cin: 1, Cout: 16, KH: 3, KW: 3, PadT: 1, PadL: 1, PadB: 1, PadR: 1, InStride: 1, Act: runtime.ActReLU}, h: 28, w: 28},
		} {
			runConvCase(t, rng, c, pools)
		}
	})
}

func TestGroupedConv(t *testing.T) {
	pools := testPools(t)
	rng := rand.New(rand.NewPCG(7, 8))
	for i := 0; i < 60; i++ {
		g := []int{1, 2, 3, 4}[rng.IntN(4)]
		s := runtime.ConvSpec{Cin: g * (1 + rng.IntN(6)), Cout: g * (1 + rng.IntN(6)), Groups: g,
			KH: 1 + rng.IntN(4), KW: 1 + rng.IntN(4), StrideH: 1 + rng.IntN(3), StrideW: 1 + rng.IntN(3),
			DilH: 1 + rng.IntN(2), DilW: 1 + rng.IntN(2), Act: acts[rng.IntN(3)]}
		s.PadT, s.PadL, s.PadB, s.PadR = rng.IntN(3), rng.IntN(3), rng.IntN(3), rng.IntN(3)
		h := s.DilH*(s.KH-1) + 1 + rng.IntN(9)
		w := s.DilW*(s.KW-1) + 1 + rng.IntN(9)
		runConvCase(t, rng, convCase{s: s, h: h, w: w, res: rng.IntN(2) == 0, outPad: rng.IntN(2), generic: true}, pools)
	}
	// Depthwise with a channel multiplier of 2.
	s := runtime.ConvSpec{Cin: 6, Cout: 12, Groups: 6, KH: 3, KW: 3, PadT: 1, PadL: 1, PadB: 1, PadR: 1}
	if k := s.Kind(); k != runtime.KindGrouped {
		t.Fatalf("kind %s, want grouped", k)
	}
	runConvCase(t, rng, convCase{s: s, h: 5, w: 6}, pools)
}
