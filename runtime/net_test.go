package runtime_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/pnasml/pnas/runtime"
)

// This file assembles whole MBConv networks from the runtime's operators
// the way a generated program does: every tensor gets the halo its
// consumer needs, residual adds are fused into the projecting 1x1
// convolution, and one Pool serves all layers.

// netLayer is one layer of a sequential MBConv network.
type netLayer struct {
	op           string // "conv" (any kind), "gap", "fc"
	cin, cout, k int
	stride       int
	group        int
	act          runtime.Act
	w, b         []float32 // OIHW weights and bias
	residual     bool      // add the input of the block this layer ends
	blockStart   bool      // this layer's input is a block input (kept for a residual)
}

// mbconvArch describes a network like the ONNX Runtime anchors: a 3x3
// stem, inverted-residual blocks (expand 1x1, depthwise kxk, project 1x1,
// residual when stride 1 and channels match), a 1x1 head, global average
// pooling and a linear classifier. Blocks are (expand, channels, stride, k).
type mbconvArch struct {
	h, w, cin, stem, stemStride int
	blocks                      [][4]int
	head, classes               int
}

var (
	archFMNIST = mbconvArch{h: 28, w: 28, cin: 1, stem: 16, stemStride: 1,
		blocks: [][4]int{{3, 16, 1, 3}, {6, 24, 2, 5}, {3, 24, 1, 3}, {6, 40, 2, 7}, {3, 40, 1, 5}, {6, 64, 1, 3}},
		head:   256, classes: 10}
	archMobileNetV2 = func() mbconvArch {
		a := mbconvArch{h: 224, w: 224, cin: 3, stem: 32, stemStride: 2, head: 1280, classes: 1000}
		for _, r := range [][4]int{{1, 16, 1, 1}, {6, 24, 2, 2}, {6, 32, 3, 2}, {6, 64, 4, 2}, {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}} {
			for i := 0; i < r[2]; i++ {
				s := 1
				if i == 0 {
					s = r[3]
				}
				a.blocks = append(a.blocks, [4]int{r[0], r[1], s, 3})
			}
		}
		return a
	}()
)

// layers expands the architecture with He-uniform random weights.
func (a mbconvArch) layers(rng *rand.Rand) []netLayer {
	conv := func(cin, cout, k, s, g int, act runtime.Act) netLayer {
		bound := math.Sqrt(6 / float64(cin/g*k*k))
		w := make([]float32, cout*cin/g*k*k)
		for i := range w {
			w[i] = float32((2*rng.Float64() - 1) * bound)
		}
		b := make([]float32, cout)
		for i := range b {
			b[i] = float32((2*rng.Float64() - 1) * 0.05)
		}
		return netLayer{op: "conv", cin: cin, cout: cout, k: k, stride: s, group: g, act: act, w: w, b: b}
	}
	ls := []netLayer{conv(a.cin, a.stem, 3, a.stemStride, 1, runtime.ActReLU6)}
	c := a.stem
	for _, b := range a.blocks {
		e, co, s, k := b[0], b[1], b[2], b[3]
		first := len(ls)
		mid := c * e
		if e != 1 {
			ls = append(ls, conv(c, mid, 1, 1, 1, runtime.ActReLU6))
		}
		ls = append(ls, conv(mid, mid, k, s, mid, runtime.ActReLU6))
		ls = append(ls, conv(mid, co, 1, 1, 1, runtime.ActNone))
		if s == 1 && c == co {
			ls[first].blockStart = true
			ls[len(ls)-1].residual = true
		}
		c = co
	}
	ls = append(ls, conv(c, a.head, 1, 1, 1, runtime.ActReLU6))
	ls = append(ls, netLayer{op: "gap", cin: a.head, cout: a.head})
	fc := conv(a.head, a.classes, 1, 1, 1, runtime.ActNone)
	fc.op = "fc"
	return append(ls, fc)
}

// net is a built network: operators and their tensors.
type net struct {
	in    runtime.Tensor
	steps []func(p *runtime.Pool) error
	kinds []string // per step: a conv kind, "gap", "fc" or "halo"
	desc  []string // per step: shapes and GFLOP
	out   runtime.Tensor
}

func buildNet(t testing.TB, a mbconvArch, ls []netLayer) *net {
	// Shapes first, then halos: a tensor's halo is what its consumer needs.
	type shape struct{ h, w, c int }
	shapes := []shape{{a.h, a.w, a.cin}}
	specs := make([]runtime.ConvSpec, len(ls))
	for i, l := range ls {
		s := shapes[i]
		switch l.op {
		case "conv":
			p := l.k / 2
			specs[i] = runtime.ConvSpec{Cin: l.cin, Cout: l.cout, KH: l.k, KW: l.k, StrideH: l.stride, StrideW: l.stride,
				PadT: p, PadL: p, PadB: p, PadR: p, Groups: l.group, Act: l.act}
			if i == 0 {
				specs[i].InStride = l.cin
			}
			oh, ow := specs[i].OutSize(s.h, s.w)
			shapes = append(shapes, shape{oh, ow, l.cout})
		default:
			shapes = append(shapes, shape{1, 1, l.cout})
		}
	}
	// Tensor i is read by layer i and, for a block input, by the block's
	// residual layer; buffers are shared between tensors whose lives do
	// not overlap, so the working set stays in cache.
	lastUse := make([]int, len(shapes))
	for i := range lastUse {
		lastUse[i] = i
	}
	for i, start := 0, 0; i < len(ls); i++ {
		if ls[i].blockStart {
			start = i
		}
		if ls[i].residual {
			lastUse[start] = i
		}
	}
	ts := make([]runtime.Tensor, len(shapes))
	var slots [][]float32
	slotOf := make([]int, len(shapes))
	reused := make([]bool, len(shapes))
	for i, s := range shapes {
		halo := 0
		if i < len(ls) && ls[i].op == "conv" {
			halo = specs[i].Halo()
		}
		cs := runtime.PadC(s.c)
		if i == 0 {
			cs = s.c
		}
		ts[i] = runtime.Tensor{H: s.h, W: s.w, C: s.c, CS: cs, Pad: halo}
		slotOf[i] = -1
		if i > 0 && i < len(shapes)-1 { // input and output keep their own buffers
		search:
			for k := range slots {
				for j := 0; j < i; j++ {
					if slotOf[j] == k && (j == 0 || lastUse[j] >= i-1) {
						continue search
					}
				}
				slotOf[i], reused[i] = k, true
				break
			}
		}
		if slotOf[i] < 0 {
			slotOf[i] = len(slots)
			slots = append(slots, nil)
		}
		if k := slotOf[i]; len(slots[k]) < ts[i].Len() {
			slots[k] = make([]float32, ts[i].Len())
		}
	}
	for i := range ts {
		ts[i].Data = slots[slotOf[i]][:ts[i].Len()]
		for j := range ts {
			if j != i && slotOf[j] == slotOf[i] {
				reused[i] = true // other tensors write this buffer: re-zero the halo every run
			}
		}
	}
	n := &net{in: ts[0], out: ts[len(ts)-1]}
	var blockIn int
	for i, l := range ls {
		if reused[i+1] && ts[i+1].Pad > 0 {
			o := ts[i+1]
			n.steps = append(n.steps, func(*runtime.Pool) error { o.ZeroHalo(); return nil })
			n.kinds = append(n.kinds, "halo")
			n.desc = append(n.desc, "")
		}
		{
			in, out := ts[i], ts[i+1]
			n.desc = append(n.desc, fmt.Sprintf("%dx%dx%d -> %dx%dx%d k%d s%d g%d, %.4f GFLOP",
				in.H, in.W, in.C, out.H, out.W, out.C, l.k, l.stride, l.group,
				2*float64(out.H*out.W*len(l.w))/1e9))
		}
		if l.op == "conv" {
			n.kinds = append(n.kinds, specs[i].Kind())
		} else {
			n.kinds = append(n.kinds, l.op)
		}
		in, out := ts[i], ts[i+1]
		if l.blockStart {
			blockIn = i
		}
		var res *runtime.Tensor
		if l.residual {
			res = &ts[blockIn]
		}
		switch l.op {
		case "gap":
			n.steps = append(n.steps, func(*runtime.Pool) error { return runtime.GlobalAvgPool(out, in) })
		case "fc":
			pk, err := runtime.PackLinear(1, 1, l.cin, l.cout, l.w)
			if err != nil {
				t.Fatal(err)
			}
			op, err := runtime.NewLinear(1, 1, l.cin, l.cout, pk, l.b, l.act)
			if err != nil {
				t.Fatal(err)
			}
			n.steps = append(n.steps, func(p *runtime.Pool) error { return op.Run(p, out, in) })
		default:
			op := buildConv(t, specs[i], l.w, l.b, false)
			n.steps = append(n.steps, func(p *runtime.Pool) error { return op.Run(p, out, in, res) })
		}
	}
	return n
}

// run computes the logits for a CHW input.
func (n *net) run(p *runtime.Pool, chw []float32) ([]float32, error) {
	if err := n.in.FromCHW(chw); err != nil {
		return nil, err
	}
	for _, s := range n.steps {
		if err := s(p); err != nil {
			return nil, err
		}
	}
	return n.out.ToHWC(), nil
}

// refNet is the float64 reference forward pass on a CHW input.
func refNet(a mbconvArch, ls []netLayer, chw []float32) []float64 {
	h, w, c := a.h, a.w, a.cin
	x := make([]float64, len(chw)) // HWC
	for ci := 0; ci < c; ci++ {
		for y := 0; y < h; y++ {
			for xx := 0; xx < w; xx++ {
				x[(y*w+xx)*c+ci] = float64(chw[(ci*h+y)*w+xx])
			}
		}
	}
	var blockIn []float64
	for _, l := range ls {
		if l.blockStart {
			blockIn = x
		}
		switch l.op {
		case "gap":
			y := make([]float64, c)
			for i, v := range x {
				y[i%c] += v / float64(h*w)
			}
			x, h, w = y, 1, 1
		default:
			p := l.k / 2
			if l.op == "fc" {
				p = 0
			}
			oh, ow := (h+2*p-l.k)/l.stride+1, (w+2*p-l.k)/l.stride+1
			ipg, opg := l.cin/l.group, l.cout/l.group
			y := make([]float64, oh*ow*l.cout)
			for oy := 0; oy < oh; oy++ {
				for ox := 0; ox < ow; ox++ {
					for o := 0; o < l.cout; o++ {
						s := float64(l.b[o])
						g := o / opg
						for i := 0; i < ipg; i++ {
							for ky := 0; ky < l.k; ky++ {
								iy := oy*l.stride - p + ky
								if iy < 0 || iy >= h {
									continue
								}
								for kx := 0; kx < l.k; kx++ {
									ix := ox*l.stride - p + kx
									if ix < 0 || ix >= w {
										continue
									}
									s += x[(iy*w+ix)*c+g*ipg+i] * float64(l.w[((o*ipg+i)*l.k+ky)*l.k+kx])
								}
							}
						}
						if l.residual {
							s += blockIn[(oy*ow+ox)*l.cout+o]
						}
						y[(oy*ow+ox)*l.cout+o] = actRef(l.act, s)
					}
				}
			}
			x, h, w, c = y, oh, ow, l.cout
		}
	}
	return x
}

func TestMBConvNet(t *testing.T) {
	pools := testPools(t)
	rng := rand.New(rand.NewPCG(9, 10))
	ls := archFMNIST.layers(rng)
	chw := make([]float32, 28*28)
	for i := range chw {
		chw[i] = float32(8 * rng.Float64())
	}
	want := refNet(archFMNIST, ls, chw)
	forEachSet(t, func(t *testing.T, set string) {
		n := buildNet(t, archFMNIST, ls)
		for _, p := range pools {
			got, err := n.run(p, chw)
			if err != nil {
				t.Fatal(err)
			}
			for i := range want {
				if d := math.Abs(float64(got[i]) - want[i]); d > 1e-4*(1+math.Abs(want[i])) {
					t.Fatalf("logit %d = %v, want %v", i, got[i], want[i])
				}
			}
		}
	})
}

// BenchmarkNet times batch-1 inference of whole networks (ms per image):
//
//	go test -run '^$' -bench Net ./runtime/
func BenchmarkNet(b *testing.B) {
	for _, c := range []struct {
		name string
		arch mbconvArch
	}{{"mbconv_fmnist28", archFMNIST}, {"mobilenetv2_224", archMobileNetV2}} {
		rng := rand.New(rand.NewPCG(1, 2))
		ls := c.arch.layers(rng)
		chw := make([]float32, c.arch.h*c.arch.w*c.arch.cin)
		for i := range chw {
			chw[i] = float32(rng.Float64())
		}
		for _, threads := range []int{1, 2} {
			b.Run(fmt.Sprintf("%s/t%d", c.name, threads), func(b *testing.B) {
				n := buildNet(b, c.arch, ls)
				p := runtime.NewPool(threads)
				defer p.Close()
				for b.Loop() {
					if _, err := n.run(p, chw); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1e6, "ms/img")
			})
		}
		// Time per operator kind, one thread.
		b.Run(c.name+"/kinds", func(b *testing.B) {
			n := buildNet(b, c.arch, ls)
			if err := n.in.FromCHW(chw); err != nil {
				b.Fatal(err)
			}
			per := map[string]time.Duration{}
			for b.Loop() {
				for i, s := range n.steps {
					t0 := time.Now()
					if err := s(nil); err != nil {
						b.Fatal(err)
					}
					per[n.kinds[i]] += time.Since(t0)
				}
			}
			for k, d := range per {
				b.ReportMetric(float64(d.Nanoseconds())/float64(b.N)/1e6, k+"-ms")
			}
		})
	}
}
