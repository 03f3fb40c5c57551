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
// depthwise convolution reads the cin input channels. dk > 0: a dense
// dk x dk convolution of stride dstride (padding dk/2) in place of the
// expansion, its input of channel stride cin when narrow, else PadC(cin).
type mbconvCase struct {
	h, w, cin, hidden, cout, k, s int
	pads                          [4]int // T, L, B, R
	res                           bool
	dk, dstride                   int
	narrow                        bool
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
	cases = append(cases,
		// an expanded tensor whose channel stride carries the extra line
		// (PadC(512) = 528), and an input and output that do (640 → 656)
		mbconvCase{h: 7, w: 6, cin: 24, hidden: 512, cout: 40, k: 5, s: 1, pads: [4]int{2, 2, 2, 2}},
		mbconvCase{h: 6, w: 5, cin: 640, hidden: 1152, cout: 640, k: 3, s: 1, pads: [4]int{1, 1, 1, 1}, res: true},
		mbconvCase{h: 12, w: 10, cin: 6, hidden: 24, cout: 9, k: 3, s: 2, pads: [4]int{0, 0, 1, 1}},
		mbconvCase{h: 11, w: 11, cin: 6, hidden: 24, cout: 9, k: 5, s: 2, pads: [4]int{1, 1, 2, 2}},
		mbconvCase{h: 12, w: 10, cin: 40, cout: 9, k: 3, s: 2, pads: [4]int{0, 0, 1, 1}},
		// a stem (dense 3x3 stride 2 or 1) in place of the expansion
		mbconvCase{h: 17, w: 15, cin: 3, hidden: 20, cout: 8, k: 3, s: 1, pads: [4]int{1, 1, 1, 1}, dk: 3, dstride: 2, narrow: true},
		mbconvCase{h: 16, w: 16, cin: 3, hidden: 32, cout: 16, k: 3, s: 1, pads: [4]int{1, 1, 1, 1}, dk: 3, dstride: 2},
		mbconvCase{h: 9, w: 11, cin: 5, hidden: 24, cout: 24, k: 5, s: 1, pads: [4]int{2, 2, 2, 2}, dk: 3, dstride: 1, res: true},
		mbconvCase{h: 14, w: 13, cin: 4, hidden: 12, cout: 6, k: 7, s: 2, pads: [4]int{3, 3, 3, 3}, dk: 5, dstride: 2, narrow: true})
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
	var (
		expand *runtime.Pointwise
		dense  *runtime.DenseConv
		fs     runtime.ConvSpec // the dense convolution's
	)
	inCS := runtime.PadC(c.cin)
	switch {
	case c.dk > 0:
		if c.narrow {
			inCS = c.cin
		}
		fs = runtime.ConvSpec{Cin: c.cin, Cout: c.hidden, KH: c.dk, KW: c.dk, StrideH: c.dstride, StrideW: c.dstride,
			PadT: c.dk / 2, PadL: c.dk / 2, PadB: c.dk / 2, PadR: c.dk / 2, InStride: inCS, Act: runtime.ActReLU6}
		dense = buildConv(t, fs, randSlice(rng, c.hidden*c.cin*c.dk*c.dk), randSlice(rng, c.hidden), false).(*runtime.DenseConv)
	case c.hidden > 0:
		es := runtime.ConvSpec{Cin: c.cin, Cout: c.hidden, KH: 1, KW: 1, Act: runtime.ActReLU6}
		expand = buildConv(t, es, randSlice(rng, c.hidden*c.cin), randSlice(rng, c.hidden), false).(*runtime.Pointwise)
	}
	dw := buildConv(t, ds, randSlice(rng, hidden*c.k*c.k), randSlice(rng, hidden), false).(*runtime.Depthwise)
	pw := randSlice(rng, c.cout*hidden)
	project := buildConv(t, ps, pw, randSlice(rng, c.cout), false).(*runtime.Pointwise)
	var (
		m   *runtime.MBConv
		err error
	)
	if dense != nil {
		m, err = runtime.NewMBConvDense(dense, dw, project)
	} else {
		m, err = runtime.NewMBConv(expand, dw, project)
	}
	if err != nil {
		t.Fatal(err)
	}
	runtime.SetMBConvStrip(m, strip)

	// Without expansion the depthwise convolution reads the input, which
	// then needs its halo, and so does a dense convolution.
	pad := rng.IntN(2)
	switch {
	case dense != nil:
		pad = fs.Halo() + rng.IntN(2)
	case expand == nil:
		pad = ds.Halo() + rng.IntN(2)
	}
	in := newGuarded(rng, c.h, c.w, c.cin, inCS, pad, rng.IntN(4))
	mh, mw := c.h, c.w // the expanded tensor's size
	if dense != nil {
		mh, mw = fs.OutSize(c.h, c.w)
	}
	oh, ow := ds.OutSize(mh, mw)
	var res *runtime.Tensor
	if c.res {
		res = &in.Tensor
		if dense != nil {
			// the input is not of the output's size: a residual of its own
			r := newGuarded(rng, oh, ow, c.cout, runtime.PadC(c.cout), 0, 0)
			res = &r.Tensor
		}
	}
	// The unfused reference: the same operators one after the other.
	mid := in.Tensor
	mid2 := runtime.NewTensor(oh, ow, hidden, 0)
	want := runtime.NewTensor(oh, ow, c.cout, 0)
	switch {
	case dense != nil:
		mid = runtime.NewTensor(mh, mw, c.hidden, ds.Halo())
		if err := dense.Run(nil, mid, in.Tensor, nil); err != nil {
			t.Fatal(err)
		}
	case expand != nil:
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
	// The strips on the given pools; for a block with expansion the
	// channel split too, on 1 to 3 threads (3 bands of 16 channels or
	// fewer when the hidden channels are fewer), run twice on each pool:
	// its buffers are kept between runs. Its projection's sums run in
	// another order (the bands' partial sums are added up last), so it is
	// allowed rounding relative to the size of the terms.
	type runner struct {
		label string
		run   func(*runtime.Pool, runtime.Tensor) error
		pools []*runtime.Pool
		runs  int
		sums  bool
	}
	runners := []runner{{"", func(p *runtime.Pool, out runtime.Tensor) error { return m.Run(p, out, in.Tensor, res) }, pools, 1, false}}
	if expand != nil && strip == 0 {
		runners = append(runners, runner{", channel split", func(p *runtime.Pool, out runtime.Tensor) error {
			return m.RunChannels(p, out, in.Tensor, res)
		}, append(pools, threePool(t)), 2, true})
		// in scratch floats laid out as the expanded tensor with its
		// halo, left with NaN by "earlier layers" before every run
		scratch := make([]float32, runtime.NewTensor(c.h, c.w, c.hidden, ds.Halo()).Len())
		runners = append(runners, runner{", channel split in scratch", func(p *runtime.Pool, out runtime.Tensor) error {
			for i := range scratch {
				scratch[i] = float32(math.NaN())
			}
			return m.RunChannelsIn(p, out, in.Tensor, res, scratch)
		}, append(pools, threePool(t)), 2, true})
	}
	for _, r := range runners {
		for _, p := range r.pools {
			for k := 0; k < r.runs; k++ {
				out := newGuarded(nil, oh, ow, c.cout, runtime.PadC(c.cout), rng.IntN(2), rng.IntN(4))
				for y := 0; y < oh; y++ {
					for x := 0; x < ow; x++ {
						for ch := 0; ch < out.CS; ch++ {
							out.Data[out.Offset(y, x)+ch] = 12345
						}
					}
				}
				if err := r.run(p, out.Tensor); err != nil {
					t.Fatalf("%s%s: %v", name, r.label, err)
				}
				for y := 0; y < oh; y++ {
					for x := 0; x < ow; x++ {
						for ch := 0; ch < out.CS; ch++ {
							g, w := out.At(y, x, ch), want.At(y, x, ch)
							mag := 0.0
							for k := 0; r.sums && k < hidden && ch < c.cout; k++ {
								mag += math.Abs(float64(mid2.At(y, x, k) * pw[ch*hidden+k]))
							}
							if d := math.Abs(float64(g - w)); !(d <= 1e-5*math.Max(1, math.Abs(float64(w)))+1e-6*mag) {
								t.Fatalf("%s%s, %d threads: (%d,%d,%d) = %v, unfused %v", name, r.label, p.Threads(), y, x, ch, g, w)
							}
						}
					}
				}
				out.checkFrame(t, name+r.label+" out")
				in.checkFrame(t, name+r.label+" in")
			}
		}
	}
}

// threePool returns a pool of 3 threads, closed when the test ends.
func threePool(t *testing.T) *runtime.Pool {
	p := runtime.NewPool(3)
	t.Cleanup(p.Close)
	return p
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
	fs := runtime.ConvSpec{Cin: 3, Cout: 12, KH: 3, KW: 3, StrideH: 2, StrideW: 2, PadT: 1, PadL: 1, PadB: 1, PadR: 1}
	fs2 := fs
	fs2.Cout = 8
	dense := buildConv(t, fs, randSlice(rng, 12*27), nil, false).(*runtime.DenseConv)
	dense2 := buildConv(t, fs2, randSlice(rng, 8*27), nil, false).(*runtime.DenseConv)
	if _, err := runtime.NewMBConvDense(dense2, dw, project); err == nil {
		t.Error("dense convolution: channel mismatch accepted")
	}
	if _, err := runtime.NewMBConvDense(nil, dw, project); err == nil {
		t.Error("nil dense convolution accepted")
	}
	if _, err := runtime.NewMBConvDense(dense, nil, project); err == nil {
		t.Error("dense convolution first: nil depthwise accepted")
	}
	md, err := runtime.NewMBConvDense(dense, dw, project)
	if err != nil {
		t.Fatal(err)
	}
	// Without expansion the depthwise convolution reads the input: it must
	// have the depthwise channels and a halo.
	noex, err := runtime.NewMBConv(nil, dw, project)
	if err != nil {
		t.Fatal(err)
	}
	T := runtime.NewTensor
	for _, c := range []struct {
		name    string
		m       *runtime.MBConv
		out, in runtime.Tensor
		want    string // "": no error; else a part of the error
	}{
		{"dense convolution first", md, T(3, 3, 4, 0), T(6, 6, 3, 1), ""},
		{"dense convolution first, input without halo", md, T(3, 3, 4, 0), T(6, 6, 3, 0), "halo"},
		{"dense convolution first, wrong output size", md, T(6, 6, 4, 0), T(6, 6, 3, 1), "shape"},
		{"block without expansion", noex, T(6, 6, 4, 0), T(6, 6, 12, 1), ""},
		{"block without expansion, input without halo", noex, T(6, 6, 4, 0), T(6, 6, 12, 0), "halo"},
		{"block without expansion, wrong input channels", noex, T(6, 6, 4, 0), T(6, 6, 4, 1), "channels"},
	} {
		err := c.m.Run(nil, c.out, c.in, nil)
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%s: got error %v, want %q", c.name, err, c.want)
		}
	}
	// The channel split: only with a pointwise expansion, and it checks
	// shapes as Run does.
	p := runtime.NewPool(2)
	defer p.Close()
	for _, c := range []struct {
		name    string
		m       *runtime.MBConv
		out, in runtime.Tensor
		want    string
	}{
		{"channel split", m, T(6, 6, 4, 0), T(6, 6, 4, 0), ""},
		{"channel split, wrong output shape", m, T(5, 6, 4, 0), T(6, 6, 4, 0), "shape"},
		{"channel split, wrong input channels", m, T(6, 6, 4, 0), T(6, 6, 5, 0), "channels"},
		{"channel split after a dense convolution", md, T(3, 3, 4, 0), T(6, 6, 3, 1), "pointwise expansion"},
		{"channel split without expansion", noex, T(6, 6, 4, 0), T(6, 6, 12, 1), "pointwise expansion"},
	} {
		err := c.m.RunChannels(p, c.out, c.in, nil)
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%s: got error %v, want %q", c.name, err, c.want)
		}
	}
}

// TestMBConvChannelsShared checks what RunChannels allows beyond Run: an
// output sharing memory with the input (its halo over the input's floats,
// which RunChannels clears once the input is read), and the input, the
// output and the residual being one tensor; and that a residual that
// overlaps the output without being it is refused.
func TestMBConvChannelsShared(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const h, w, c, hidden = 7, 6, 24, 72
	es := runtime.ConvSpec{Cin: c, Cout: hidden, KH: 1, KW: 1, Act: runtime.ActReLU6}
	ds := runtime.ConvSpec{Cin: hidden, Cout: hidden, KH: 3, KW: 3, StrideH: 1, StrideW: 1, Groups: hidden,
		PadT: 1, PadL: 1, PadB: 1, PadR: 1, Act: runtime.ActReLU6}
	ps := runtime.ConvSpec{Cin: hidden, Cout: c, KH: 1, KW: 1}
	expand := buildConv(t, es, randSlice(rng, hidden*c), randSlice(rng, hidden), false).(*runtime.Pointwise)
	dw := buildConv(t, ds, randSlice(rng, hidden*9), randSlice(rng, hidden), false).(*runtime.Depthwise)
	project := buildConv(t, ps, randSlice(rng, c*hidden), randSlice(rng, c), false).(*runtime.Pointwise)
	m, err := runtime.NewMBConv(expand, dw, project)
	if err != nil {
		t.Fatal(err)
	}
	src := newGuarded(rng, h, w, c, runtime.PadC(c), 0, 0)
	// want: the unfused operators, with and without the residual
	mid := runtime.NewTensor(h, w, hidden, 1)
	mid2 := runtime.NewTensor(h, w, hidden, 0)
	want := runtime.NewTensor(h, w, c, 0)
	wantRes := runtime.NewTensor(h, w, c, 0)
	for _, err := range []error{expand.Run(nil, mid, src.Tensor, nil), dw.Run(nil, mid2, mid, nil),
		project.Run(nil, want, mid2, nil), project.Run(nil, wantRes, mid2, &src.Tensor)} {
		if err != nil {
			t.Fatal(err)
		}
	}
	check := func(name string, got runtime.Tensor, want runtime.Tensor) {
		t.Helper()
		for y := -got.Pad; y < h+got.Pad; y++ {
			for x := -got.Pad; x < w+got.Pad; x++ {
				for ch := 0; ch < got.CS; ch++ {
					g := got.Data[got.Offset(y, x)+ch]
					wv := float32(0)
					if y >= 0 && y < h && x >= 0 && x < w && ch < c {
						wv = want.At(y, x, ch)
					}
					if d := math.Abs(float64(g - wv)); !(d <= 1e-4*math.Max(1, math.Abs(float64(wv)))) {
						t.Fatalf("%s: (%d,%d,%d) = %v, want %v", name, y, x, ch, g, wv)
					}
				}
			}
		}
	}
	for _, p := range []*runtime.Pool{nil, runtime.NewPool(2), threePool(t)} {
		name := fmt.Sprintf("%d threads", p.Threads())
		// The output (halo 2) ends inside the input's floats.
		in := runtime.Tensor{H: h, W: w, C: c, CS: runtime.PadC(c)}
		out := runtime.Tensor{H: h, W: w, C: c, CS: runtime.PadC(c), Pad: 2}
		buf := make([]float32, in.Len()+out.Len())
		for i := range buf {
			buf[i] = 7 // what earlier operators left
		}
		in.Data = buf[out.Len()/2 : out.Len()/2+in.Len()]
		copy(in.Data, src.Data)
		out.Data = buf[:out.Len()]
		if err := m.RunChannels(p, out, in, nil); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		check(name+", output over the input", out, want)

		// In place: input, output and residual one tensor.
		x := runtime.NewTensor(h, w, c, 0)
		copy(x.Data, src.Data)
		if err := m.RunChannels(p, x, x, &x); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		check(name+", in place", x, wantRes)

		// A residual that overlaps the output at another offset.
		y := runtime.Tensor{H: h, W: w, C: c, CS: runtime.PadC(c)}
		shared := make([]float32, y.Len()+y.CS)
		y.Data = shared[:y.Len()]
		r := y
		r.Data = shared[y.CS:]
		if err := m.RunChannels(p, y, src.Tensor, &r); err == nil {
			t.Errorf("%s: a residual overlapping the output at another offset was accepted", name)
		}

		// Scratch floats for the expanded maps may share memory with
		// the output (written once the maps are used), not with the
		// input or the residual; too few of them, and the block uses
		// buffers of its own.
		exLen := runtime.NewTensor(h, w, hidden, 1).Len()
		x = runtime.NewTensor(h, w, c, 0)
		buf = make([]float32, exLen+x.Len())
		x.Data = buf[exLen-x.Len()/2:][:x.Len()]
		for i := range buf[:exLen] {
			buf[i] = float32(math.NaN())
		}
		if err := m.RunChannelsIn(p, x, src.Tensor, nil, buf[:exLen]); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		check(name+", output over the scratch", x, want)
		short := make([]float32, exLen-1)
		for i := range short {
			short[i] = float32(math.NaN())
		}
		x = runtime.NewTensor(h, w, c, 0)
		if err := m.RunChannelsIn(p, x, src.Tensor, nil, short); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		check(name+", too little scratch", x, want)
		big := make([]float32, exLen+len(src.Data))
		in = src.Tensor
		in.Data = big[exLen:]
		copy(in.Data, src.Data)
		if err := m.RunChannelsIn(p, x, in, nil, big[1:]); err == nil || !strings.Contains(err.Error(), "overlap the input") {
			t.Errorf("%s: scratch over the input: got %v, want an error", name, err)
		}
		r = src.Tensor
		r.Data = big[exLen:]
		if err := m.RunChannelsIn(p, x, src.Tensor, &r, big[1:]); err == nil || !strings.Contains(err.Error(), "residual") {
			t.Errorf("%s: scratch over the residual: got %v, want an error", name, err)
		}
		p.Close()
	}
}
