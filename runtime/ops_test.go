package runtime_test

import (
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/pnasml/pnas/runtime"
)

// TestPadC checks the channel strides: multiples of ChannelAlign, and for
// counts of at least 512 a stride in cache lines that is not a multiple of
// 8, so that a pixel's channel vectors spread over L1's sets.
func TestPadC(t *testing.T) {
	for c, want := range map[int]int{1: 8, 3: 8, 8: 8, 13: 16, 144: 144, 384: 384, 500: 504, 512: 528, 576: 576,
		960: 960, 1152: 1168, 1280: 1296, 1432: 1432, 1536: 1552, 1728: 1728} {
		if got := runtime.PadC(c); got != want {
			t.Errorf("PadC(%d) = %d, want %d", c, got, want)
		}
	}
	for c := 1; c <= 4096; c++ {
		cs := runtime.PadC(c)
		if cs < c || cs%runtime.ChannelAlign != 0 || cs-c >= runtime.ChannelAlign+16 {
			t.Fatalf("PadC(%d) = %d: not the next multiple of %d (plus 16)", c, cs, runtime.ChannelAlign)
		}
		if cs >= 512 && (cs*4/64)%8 == 0 && cs*4%64 == 0 {
			t.Fatalf("PadC(%d) = %d: %d cache lines a pixel, a multiple of 8", c, cs, cs*4/64)
		}
	}
}

func TestLinear(t *testing.T) {
	pools := testPools(t)
	forEachSet(t, func(t *testing.T, set string) {
		rng := rand.New(rand.NewPCG(11, 12))
		for _, c := range []struct{ h, w, c, n, pad int }{
			{1, 1, 1280, 1000, 0}, {1, 1, 7, 3, 0}, {1, 1, 64, 10, 0}, {3, 2, 5, 17, 0}, {2, 2, 16, 33, 1}, {7, 7, 40, 10, 0},
		} {
			act := acts[rng.IntN(3)]
			w := randSlice(rng, c.n*c.c*c.h*c.w)
			b := randSlice(rng, c.n)
			in := newGuarded(rng, c.h, c.w, c.c, runtime.PadC(c.c), c.pad, rng.IntN(3))
			// Reference: planar flatten order.
			want := make([]float64, c.n)
			mag := make([]float64, c.n)
			for j := range want {
				s, m := float64(b[j]), math.Abs(float64(b[j]))
				for ci := 0; ci < c.c; ci++ {
					for y := 0; y < c.h; y++ {
						for x := 0; x < c.w; x++ {
							p := float64(w[j*c.c*c.h*c.w+(ci*c.h+y)*c.w+x]) * float64(in.At(y, x, ci))
							s += p
							m += math.Abs(p)
						}
					}
				}
				want[j], mag[j] = actRef(act, s), m
			}
			pk, err := runtime.PackLinear(c.h, c.w, c.c, c.n, w)
			if err != nil {
				t.Fatal(err)
			}
			op, err := runtime.NewLinear(c.h, c.w, c.c, c.n, pk, b, act)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range pools {
				out := newGuarded(nil, 1, 1, c.n, runtime.PadC(c.n), 0, rng.IntN(3))
				if err := op.Run(p, out.Tensor, in.Tensor); err != nil {
					t.Fatal(err)
				}
				compare(t, "linear", out.Tensor, want, mag)
				out.checkFrame(t, "linear out")
			}
		}
	})
}

// TestGlobalAvgPoolOn checks the pooling split among threads by bands of
// channels, on a map large enough to be split (and an odd channel count,
// a halo, channel padding), against the mean in float64; after its first
// call on a pool it allocates nothing.
func TestGlobalAvgPoolOn(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	const h, w, c = 7, 7, 337
	in := newGuarded(rng, h, w, c, runtime.PadC(c), 1, 2)
	for _, p := range []*runtime.Pool{nil, runtime.NewPool(2), runtime.NewPool(3)} {
		out := newGuarded(nil, 1, 1, c, runtime.PadC(c), 0, 1)
		for i := range out.Data {
			out.Data[i] = 5 // stale
		}
		if err := runtime.GlobalAvgPoolOn(p, out.Tensor, in.Tensor); err != nil {
			t.Fatal(err)
		}
		for ch := 0; ch < out.CS; ch++ {
			var s float64
			for y := 0; y < h && ch < c; y++ {
				for x := 0; x < w; x++ {
					s += float64(in.At(y, x, ch))
				}
			}
			if got := float64(out.Data[ch]); math.Abs(got-s/(h*w)) > 1e-5 {
				t.Errorf("%d threads: channel %d = %v, want %v", p.Threads(), ch, got, s/(h*w))
			}
		}
		out.checkFrame(t, "gap")
		if allocs := testing.AllocsPerRun(20, func() { runtime.GlobalAvgPoolOn(p, out.Tensor, in.Tensor) }); allocs != 0 {
			t.Errorf("%d threads: GlobalAvgPoolOn allocates %.1f times per call", p.Threads(), allocs)
		}
		p.Close()
	}
}

func TestPoolsAndElementwise(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	in := newGuarded(rng, 5, 7, 13, 16, 1, 1)
	// Global average pool.
	gap := newGuarded(nil, 1, 1, 13, 16, 0, 0)
	if err := runtime.GlobalAvgPool(gap.Tensor, in.Tensor); err != nil {
		t.Fatal(err)
	}
	for c := 0; c < 13; c++ {
		var s float64
		for y := 0; y < 5; y++ {
			for x := 0; x < 7; x++ {
				s += float64(in.At(y, x, c))
			}
		}
		if got := float64(gap.At(0, 0, c)); math.Abs(got-s/35) > 1e-5 {
			t.Errorf("GlobalAvgPool channel %d = %v, want %v", c, got, s/35)
		}
	}
	gap.checkFrame(t, "gap")

	// Windowed pools, padded and strided.
	ps := runtime.PoolSpec{KH: 3, KW: 2, StrideH: 2, StrideW: 1, PadT: 1, PadL: 1, PadB: 1}
	oh, ow := ps.OutSize(5, 7)
	for _, isMax := range []bool{true, false} {
		out := newGuarded(nil, oh, ow, 13, 16, 1, 2)
		f := runtime.AvgPool2D
		if isMax {
			f = runtime.MaxPool2D
		}
		if err := f(out.Tensor, in.Tensor, ps); err != nil {
			t.Fatal(err)
		}
		for oy := 0; oy < oh; oy++ {
			for ox := 0; ox < ow; ox++ {
				for c := 0; c < 13; c++ {
					want, n := math.Inf(-1), 0
					if !isMax {
						want = 0
					}
					for ky := 0; ky < 3; ky++ {
						for kx := 0; kx < 2; kx++ {
							iy, ix := oy*2-1+ky, ox-1+kx
							if iy < 0 || iy >= 5 || ix < 0 || ix >= 7 {
								continue
							}
							v := float64(in.At(iy, ix, c))
							n++
							if isMax {
								want = math.Max(want, v)
							} else {
								want += v
							}
						}
					}
					if !isMax {
						want /= float64(n)
					}
					if got := float64(out.At(oy, ox, c)); math.Abs(got-want) > 1e-5 {
						t.Fatalf("pool max=%v (%d,%d,%d) = %v, want %v", isMax, oy, ox, c, got, want)
					}
				}
			}
		}
		out.checkFrame(t, "pool")
	}

	// Add and Activate, with different halos.
	b := newGuarded(rng, 5, 7, 13, 16, 0, 3)
	sum := newGuarded(nil, 5, 7, 13, 16, 2, 0)
	if err := runtime.Add(sum.Tensor, in.Tensor, b.Tensor, runtime.ActReLU); err != nil {
		t.Fatal(err)
	}
	act := newGuarded(nil, 5, 7, 13, 16, 0, 0)
	if err := runtime.Activate(act.Tensor, in.Tensor, runtime.ActReLU6); err != nil {
		t.Fatal(err)
	}
	for y := 0; y < 5; y++ {
		for x := 0; x < 7; x++ {
			for c := 0; c < 13; c++ {
				a, bb := float64(in.At(y, x, c)), float64(b.At(y, x, c))
				if got, want := float64(sum.At(y, x, c)), math.Max(a+bb, 0); math.Abs(got-want) > 1e-6 {
					t.Fatalf("Add (%d,%d,%d) = %v, want %v", y, x, c, got, want)
				}
				if got, want := float64(act.At(y, x, c)), math.Min(math.Max(a, 0), 6); got != want {
					t.Fatalf("Activate (%d,%d,%d) = %v, want %v", y, x, c, got, want)
				}
			}
		}
	}
	sum.checkFrame(t, "add")
	act.checkFrame(t, "activate")

	// Softmax.
	x := []float32{1, 2, 3, -1000, 1000}
	y := make([]float32, len(x))
	if err := runtime.Softmax(y, x); err != nil {
		t.Fatal(err)
	}
	if y[4] != 1 || y[3] != 0 {
		t.Errorf("Softmax = %v, want the large input to take all the mass", y)
	}
	x = x[:3]
	if err := runtime.Softmax(x, x); err != nil {
		t.Fatal(err)
	}
	e := []float64{math.Exp(-2), math.Exp(-1), 1}
	for i := range x {
		if want := e[i] / (e[0] + e[1] + e[2]); math.Abs(float64(x[i])-want) > 1e-7 {
			t.Errorf("Softmax[%d] = %v, want %v", i, x[i], want)
		}
	}
}

func TestTensor(t *testing.T) {
	tn := runtime.NewTensor(2, 3, 5, 1)
	if tn.CS != 8 || tn.Len() != 4*5*8 || tn.RowStride() != 40 || tn.Offset(0, 0) != 48 {
		t.Fatalf("NewTensor(2,3,5,1) = CS %d Len %d RowStride %d Offset %d", tn.CS, tn.Len(), tn.RowStride(), tn.Offset(0, 0))
	}
	src := make([]float32, 2*3*5)
	for i := range src {
		src[i] = float32(i + 1)
	}
	if err := tn.FromHWC(src); err != nil {
		t.Fatal(err)
	}
	if got := tn.ToHWC(); len(got) != len(src) || got[7] != src[7] || got[29] != src[29] {
		t.Fatalf("ToHWC(FromHWC(x)) = %v", got)
	}
	if err := tn.FromCHW(src); err != nil {
		t.Fatal(err)
	}
	if got := tn.At(1, 2, 4); got != src[(4*2+1)*3+2] {
		t.Errorf("FromCHW: (1,2,4) = %v, want %v", got, src[(4*2+1)*3+2])
	}
	// ZeroHalo clears the halo and channel padding, nothing else.
	for i := range tn.Data {
		tn.Data[i] = -1
	}
	tn.ZeroHalo()
	for y := -1; y <= 2; y++ {
		for x := -1; x <= 3; x++ {
			for c := 0; c < 8; c++ {
				v := tn.Data[tn.Offset(y, x)+c]
				inside := y >= 0 && y < 2 && x >= 0 && x < 3 && c < 5
				if inside && v != -1 || !inside && v != 0 {
					t.Fatalf("ZeroHalo: (%d,%d,%d) = %v", y, x, c, v)
				}
			}
		}
	}
	if err := tn.FromHWC(src[:3]); err == nil {
		t.Error("FromHWC accepted a short slice")
	}
}

// TestErrors checks that bad inputs are reported, naming what is wrong.
func TestErrors(t *testing.T) {
	pw := runtime.ConvSpec{Cin: 8, Cout: 16, KH: 1, KW: 1}
	dw := runtime.ConvSpec{Cin: 8, Cout: 8, Groups: 8, KH: 3, KW: 3, PadT: 1, PadL: 1, PadB: 1, PadR: 1}
	pk, _ := runtime.PackPointwise(pw, make([]float32, 128))
	op, _ := runtime.NewPointwise(pw, pk, nil)
	dk, _ := runtime.PackDepthwise(dw, make([]float32, 72))
	dop, _ := runtime.NewDepthwise(dw, dk, nil)
	in := runtime.NewTensor(4, 4, 8, 0)
	for _, c := range []struct {
		name string
		err  error
		want string
	}{
		{"bad groups", runtime.ConvSpec{Cin: 6, Cout: 4, Groups: 4, KH: 1, KW: 1}.Validate(), "groups"},
		{"bad act", runtime.ConvSpec{Cin: 1, Cout: 1, KH: 1, KW: 1, Act: 7}.Validate(), "activation"},
		{"short weights", func() error { _, err := runtime.PackPointwise(pw, make([]float32, 5)); return err }(), "OIHW"},
		{"wrong kind", func() error { _, err := runtime.PackPointwise(dw, make([]float32, 72)); return err }(), "depthwise"},
		{"packed length", func() error { _, err := runtime.NewDepthwise(dw, make([]float32, 3), nil); return err }(), "packed"},
		{"bias length", func() error { _, err := runtime.NewPointwise(pw, pk, make([]float32, 3)); return err }(), "bias"},
		{"out shape", op.Run(nil, runtime.NewTensor(4, 4, 15, 0), in, nil), "out"},
		{"in channels", op.Run(nil, runtime.NewTensor(4, 4, 16, 0), runtime.NewTensor(4, 4, 7, 0), nil), "channels"},
		{"short buffer", op.Run(nil, runtime.NewTensor(4, 4, 16, 0), runtime.Tensor{H: 4, W: 4, C: 8, CS: 8, Data: make([]float32, 9)}, nil), "buffer"},
		{"halo", dop.Run(nil, runtime.NewTensor(4, 4, 8, 0), in, nil), "halo"},
		{"res shape", op.Run(nil, runtime.NewTensor(4, 4, 16, 0), in, &in), "res"},
		{"kernel set", runtime.SetKernelSet("sse9"), "unknown kernel set"},
		{"pool window", runtime.MaxPool2D(runtime.NewTensor(1, 1, 8, 0), in, runtime.PoolSpec{KH: 0, KW: 1}), "invalid"},
		{"softmax", runtime.Softmax(make([]float32, 2), make([]float32, 3)), "softmax"},
	} {
		if c.err == nil {
			t.Errorf("%s: no error", c.name)
			continue
		}
		if !strings.Contains(c.err.Error(), c.want) {
			t.Errorf("%s: error %q does not mention %q", c.name, c.err, c.want)
		}
	}
}

func TestKernelSets(t *testing.T) {
	sets := runtime.KernelSets()
	if len(sets) == 0 || sets[0] != "go" {
		t.Fatalf("KernelSets() = %v, want it to start with go", sets)
	}
	if got, want := runtime.KernelSet(), sets[len(sets)-1]; got != want {
		t.Errorf("KernelSet() = %q, want the best available %q", got, want)
	}
	if os.Getenv("PNAS_NOASM") == "1" && len(sets) != 1 {
		t.Errorf("PNAS_NOASM=1: KernelSets() = %v, want [go]", sets)
	}
	if k := os.Getenv("PNAS_KERNELS"); k != "" && slices.Index(sets, k) >= 0 && sets[len(sets)-1] != k {
		t.Errorf("PNAS_KERNELS=%s: KernelSets() = %v goes beyond it", k, sets)
	}
	if len(sets) < 3 {
		if err := runtime.SetKernelSet("avx512"); err == nil {
			t.Error("SetKernelSet accepted a set this machine lacks")
		}
	}
}

// TestZeroHaloOn checks that the threaded halo clear writes exactly what
// ZeroHalo writes, for any split, and allocates nothing.
func TestZeroHaloOn(t *testing.T) {
	for _, sh := range []struct{ h, w, c, pad int }{{1, 1, 3, 1}, {7, 5, 5, 3}, {28, 28, 24, 2}, {14, 9, 17, 0}} {
		for _, threads := range []int{1, 2, 3} {
			want := runtime.NewTensor(sh.h, sh.w, sh.c, sh.pad)
			got := runtime.NewTensor(sh.h, sh.w, sh.c, sh.pad)
			for i := range want.Data {
				want.Data[i], got.Data[i] = float32(i), float32(i)
			}
			want.ZeroHalo()
			p := runtime.NewPool(threads)
			runtime.SetSerialWork(p, 0)
			got.ZeroHaloOn(p)
			if allocs := testing.AllocsPerRun(20, func() { got.ZeroHaloOn(p) }); allocs != 0 {
				t.Errorf("ZeroHaloOn allocates %.1f times per call", allocs)
			}
			p.Close()
			for i := range want.Data {
				if got.Data[i] != want.Data[i] {
					t.Fatalf("%+v, %d threads: element %d = %v, want %v", sh, threads, i, got.Data[i], want.Data[i])
				}
			}
		}
	}
	var nilPool *runtime.Pool
	tn := runtime.NewTensor(3, 3, 2, 1)
	tn.Data[0] = 5
	tn.ZeroHaloOn(nilPool)
	if tn.Data[0] != 0 {
		t.Error("ZeroHaloOn on a nil pool left the halo")
	}
}
