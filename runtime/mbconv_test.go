package runtime_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/pnasml/pnas/runtime"
)

// mbconvCase is one fused block: cin -> hidden (1x1) -> depthwise k x k
// stride s -> cout (1x1) on an h x w map; hidden 0: no expansion, the
// depthwise convolution reads the cin input channels.
type mbconvCase struct {
	h, w, cin, hidden, cout, k, s int
	pads                          [4]int // T, L, B, R
	res                           bool
}

// TestMBConv checks the strip driver against the three operators run one
// after the other, for every kernel set, kernel size and stride, with and
// without residual, on odd sizes, with strips of 1, 2, 3 rows and the
// default, on 1 and 2 threads.
func TestMBConv(t *testing.T) {
	var cases []mbconvCase
	for _, k := range []int{3, 5, 7} {
		for _, s := range []int{1, 2} {
			p := k / 2
			cases = append(cases,
				mbconvCase{h: 13, w: 11, cin: 5, hidden: 30, cout: 7, k: k, s: s, pads: [4]int{p, p, p, p}},
				mbconvCase{h: 9, w: 7, cin: 12, hidden: 36, cout: 12, k: k, s: s, pads: [4]int{p, p, p, p}, res: s == 1},
				mbconvCase{h: 4, w: 5, cin: 8, hidden: 17, cout: 8, k: k, s: s, pads: [4]int{p, p, p, p}, res: s == 1},
				mbconvCase{h: 13, w: 11, cin: 21, cout: 7, k: k, s: s, pads: [4]int{p, p, p, p}},
				mbconvCase{h: 9, w: 7, cin: 12, cout: 12, k: k, s: s, pads: [4]int{p, p, p, p}, res: s == 1})
		}
	}
	// asymmetric ("same" with stride 2) padding
	cases = append(cases, mbconvCase{h: 12, w: 10, cin: 6, hidden: 24, cout: 9, k: 3, s: 2, pads: [4]int{0, 0, 1, 1}},
		mbconvCase{h: 11, w: 11, cin: 6, hidden: 24, cout: 9, k: 5, s: 2, pads: [4]int{1, 1, 2, 2}},
		mbconvCase{h: 12, w: 10, cin: 40, cout: 9, k: 3, s: 2, pads: [4]int{0, 0, 1, 1}})
	pools := []*runtime.Pool{nil, runtime.NewPool(2)}
	runtime.SetSerialWork(pools[1], 0) // split even the small cases
	t.Cleanup(func() { pools[1].Close() })
	forEachSet(t, func(t *testing.T, set string) {
		rng := rand.New(rand.NewPCG(5, 9))
		for _, c := range cases {
			for _, strip := range []int{1, 2, 3, 0} {
				runMBConvCase(t, rng, c, strip, pools)
			}
		}
	})
}

func runMBConvCase(t *testing.T, rng *rand.Rand, c mbconvCase, strip int, pools []*runtime.Pool) {
	t.Helper()
	name := fmt.Sprintf("%+v strip %d", c, strip)
	hidden := c.hidden
	if hidden == 0 {
		hidden = c.cin
	}
	ds := runtime.ConvSpec{Cin: hidden, Cout: hidden, KH: c.k, KW: c.k, StrideH: c.s, StrideW: c.s, Groups: hidden,
		PadT: c.pads[0], PadL: c.pads[1], PadB: c.pads[2], PadR: c.pads[3], Act: runtime.ActReLU}
	ps := runtime.ConvSpec{Cin: hidden, Cout: c.cout, KH: 1, KW: 1}
	var expand *runtime.Pointwise
	if c.hidden > 0 {
		es := runtime.ConvSpec{Cin: c.cin, Cout: c.hidden, KH: 1, KW: 1, Act: runtime.ActReLU6}
		expand = buildConv(t, es, randSlice(rng, c.hidden*c.cin), randSlice(rng, c.hidden), false).(*runtime.Pointwise)
	}
	dw := buildConv(t, ds, randSlice(rng, hidden*c.k*c.k), randSlice(rng, hidden), false).(*runtime.Depthwise)
	project := buildConv(t, ps, randSlice(rng, c.cout*hidden), randSlice(rng, c.cout), false).(*runtime.Pointwise)
	m, err := runtime.NewMBConv(expand, dw, project)
	if err != nil {
		t.Fatal(err)
	}
	runtime.SetMBConvStrip(m, strip)

	// Without expansion the depthwise convolution reads the input, which
	// then needs its halo.
	pad := rng.IntN(2)
	if expand == nil {
		pad = ds.Halo() + rng.IntN(2)
	}
	in := newGuarded(rng, c.h, c.w, c.cin, runtime.PadC(c.cin), pad, rng.IntN(4))
	oh, ow := ds.OutSize(c.h, c.w)
	var res *runtime.Tensor
	if c.res {
		res = &in.Tensor
	}
	// The unfused reference: the same operators one after the other.
	mid := in.Tensor
	mid2 := runtime.NewTensor(oh, ow, hidden, 0)
	want := runtime.NewTensor(oh, ow, c.cout, 0)
	if expand != nil {
		mid = runtime.NewTensor(c.h, c.w, c.hidden, ds.Halo())
		if err := expand.Run(nil, mid, in.Tensor, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := dw.Run(nil, mid2, mid, nil); err != nil {
		t.Fatal(err)
	}
	if err := project.Run(nil, want, mid2, res); err != nil {
		t.Fatal(err)
	}
	for _, p := range pools {
		out := newGuarded(nil, oh, ow, c.cout, runtime.PadC(c.cout), rng.IntN(2), rng.IntN(4))
		for y := 0; y < oh; y++ {
			for x := 0; x < ow; x++ {
				for ch := 0; ch < out.CS; ch++ {
					out.Data[out.Offset(y, x)+ch] = 12345
				}
			}
		}
		if err := m.Run(p, out.Tensor, in.Tensor, res); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for y := 0; y < oh; y++ {
			for x := 0; x < ow; x++ {
				for ch := 0; ch < out.CS; ch++ {
					g, w := out.At(y, x, ch), want.At(y, x, ch)
					if d := math.Abs(float64(g - w)); !(d <= 1e-5*math.Max(1, math.Abs(float64(w)))) {
						t.Fatalf("%s, %d threads: (%d,%d,%d) = %v, unfused %v", name, p.Threads(), y, x, ch, g, w)
					}
				}
			}
		}
		out.checkFrame(t, name+" out")
		in.checkFrame(t, name+" in")
	}
}

// TestMBConvErrors checks that bad shapes and aliasing are refused.
func TestMBConvErrors(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	es := runtime.ConvSpec{Cin: 4, Cout: 12, KH: 1, KW: 1}
	ds := runtime.ConvSpec{Cin: 12, Cout: 12, KH: 3, KW: 3, Groups: 12, PadT: 1, PadL: 1, PadB: 1, PadR: 1}
	ps := runtime.ConvSpec{Cin: 12, Cout: 4, KH: 1, KW: 1}
	ds2 := runtime.ConvSpec{Cin: 8, Cout: 8, KH: 3, KW: 3, Groups: 8, PadT: 1, PadL: 1, PadB: 1, PadR: 1}
	expand := buildConv(t, es, randSlice(rng, 48), nil, false).(*runtime.Pointwise)
	dw := buildConv(t, ds, randSlice(rng, 108), nil, false).(*runtime.Depthwise)
	dw2 := buildConv(t, ds2, randSlice(rng, 72), nil, false).(*runtime.Depthwise)
	project := buildConv(t, ps, randSlice(rng, 48), nil, false).(*runtime.Pointwise)
	if _, err := runtime.NewMBConv(expand, dw2, project); err == nil {
		t.Error("channel mismatch accepted")
	}
	m, err := runtime.NewMBConv(expand, dw, project)
	if err != nil {
		t.Fatal(err)
	}
	in := runtime.NewTensor(6, 6, 4, 0)
	if err := m.Run(nil, in, in, nil); err == nil {
		t.Error("output over the input accepted")
	}
	if err := m.Run(nil, runtime.NewTensor(5, 6, 4, 0), in, nil); err == nil {
		t.Error("wrong output shape accepted")
	}
	if err := m.Run(nil, runtime.NewTensor(6, 6, 4, 0), runtime.NewTensor(6, 6, 5, 0), nil); err == nil {
		t.Error("wrong input channels accepted")
	}
	if _, err := runtime.NewMBConv(expand, nil, project); err == nil {
		t.Error("nil depthwise accepted")
	}

	// Without expansion the depthwise convolution reads the input: it must
	// have the depthwise channels and a halo.
	noex, err := runtime.NewMBConv(nil, dw, project)
	if err != nil {
		t.Fatal(err)
	}
	if err := noex.Run(nil, runtime.NewTensor(6, 6, 4, 0), runtime.NewTensor(6, 6, 12, 1), nil); err != nil {
		t.Errorf("block without expansion: %v", err)
	}
	if err := noex.Run(nil, runtime.NewTensor(6, 6, 4, 0), runtime.NewTensor(6, 6, 12, 0), nil); err == nil ||
		!strings.Contains(err.Error(), "halo") {
		t.Errorf("input without halo: got %v, want a halo error", err)
	}
	if err := noex.Run(nil, runtime.NewTensor(6, 6, 4, 0), runtime.NewTensor(6, 6, 4, 1), nil); err == nil {
		t.Error("block without expansion: wrong input channels accepted")
	}
}
