package search

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/pnasml/pnas/search/space"
)

// param is one weight tensor of the supernet with its SGD momentum buffer.
type param struct {
	name      string
	shape     []int
	w         []float32
	buf       []float32 // momentum buffer; nil until the first update (PyTorch semantics)
	trainable bool      // false for BN running statistics
}

// paramSet holds the supernet's tensors in creation order, and, with
// nested sharing, the candidates' convolution weights as views of the
// layers' shared tensors.
type paramSet struct {
	list  []*param
	index map[string]int
	views map[string]view
}

// view is a candidate's convolution weight [O, I, k, k] cut out of a
// shared tensor [O', I', K, K]: the first out output and in input channels
// and the centre k x k.
type view struct {
	base       string
	out, in, k int
}

// crop is the offset of the view's k x k inside the base's K x K.
func (v view) crop(base *param) int { return (base.shape[2] - v.k) / 2 }

// extract copies the view's elements out of the base tensor.
func (v view) extract(base *param) []float32 {
	bi, bk := base.shape[1], base.shape[2]
	off := v.crop(base)
	out := make([]float32, 0, v.out*v.in*v.k*v.k)
	for o := 0; o < v.out; o++ {
		for i := 0; i < v.in; i++ {
			for y := 0; y < v.k; y++ {
				row := ((o*bi+i)*bk+off+y)*bk + off
				out = append(out, base.w[row:row+v.k]...)
			}
		}
	}
	return out
}

// data returns a copy of tensor name, a parameter or a view.
func (ps *paramSet) data(name string) []float32 {
	if v, ok := ps.views[name]; ok {
		return v.extract(ps.get(v.base))
	}
	return append([]float32(nil), ps.get(name).w...)
}

func (ps *paramSet) add(name string, trainable bool, shape ...int) *param {
	if ps.index == nil {
		ps.index = map[string]int{}
	}
	if _, dup := ps.index[name]; dup {
		panic("search: duplicate parameter " + name)
	}
	n := 1
	for _, d := range shape {
		n *= d
	}
	p := &param{name: name, shape: shape, w: make([]float32, n), trainable: trainable}
	ps.index[name] = len(ps.list)
	ps.list = append(ps.list, p)
	return p
}

func (ps *paramSet) get(name string) *param {
	i, ok := ps.index[name]
	if !ok {
		panic("search: unknown parameter " + name)
	}
	return ps.list[i]
}

// Names of the parameters of one part of the network.
func convName(prefix string) string { return prefix + ".conv.weight" }

func bnNames(prefix string) (scale, bias, mean, variance string) {
	return prefix + ".bn.scale", prefix + ".bn.bias", prefix + ".bn.mean", prefix + ".bn.var"
}

// candPrefix names candidate c of searchable layer l: "s2.l0.k5e6".
func candPrefix(l space.Layer, c space.Candidate) string {
	return fmt.Sprintf("s%d.l%d.%s", l.Stage, l.Pos, c.Name())
}

// layerPrefix names searchable layer l in a derived network: "s2.l0".
func layerPrefix(l space.Layer) string { return fmt.Sprintf("s%d.l%d", l.Stage, l.Pos) }

// initializer draws the ProxylessNAS initialization: convolutions
// N(0, 2/(k*k*cout)) (He, fan-out), BN scale 1 and bias 0, running mean 0
// and variance 1, linear weight and bias U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
type initializer struct {
	ps  *paramSet
	rng *rand.Rand
}

func (in *initializer) conv(prefix string, cout, cinPerGroup, k int) {
	p := in.ps.add(convName(prefix), true, cout, cinPerGroup, k, k)
	std := math.Sqrt(2 / float64(k*k*cout))
	for i := range p.w {
		p.w[i] = float32(in.rng.NormFloat64() * std)
	}
}

func (in *initializer) bn(prefix string, c int) {
	s, b, m, v := bnNames(prefix)
	sc := in.ps.add(s, true, c)
	in.ps.add(b, true, c)
	in.ps.add(m, false, c)
	vr := in.ps.add(v, false, c)
	for i := 0; i < c; i++ {
		sc.w[i] = 1
		vr.w[i] = 1
	}
}

func (in *initializer) convBN(prefix string, cout, cinPerGroup, k int) {
	in.conv(prefix, cout, cinPerGroup, k)
	in.bn(prefix, cout)
}

func (in *initializer) mbconv(prefix string, cin, cout, k, e int) {
	mid := midOf(cin, e)
	if e != 1 {
		in.convBN(prefix+".expand", mid, cin, 1)
	}
	in.convBN(prefix+".dw", mid, 1, k)
	in.convBN(prefix+".project", cout, mid, 1)
}

// nested creates layer l's shared convolution weights (sized for its
// widest expansion and largest kernel, initialized as that candidate's
// would be), every candidate's own BN, and the views that cut each
// candidate's convolutions out of the shared ones.
func (in *initializer) nested(l space.Layer) {
	cin, cout := l.In.C, l.Out.C
	mid, k, expand := 0, 0, false
	for _, c := range l.Candidates {
		if c.Zero {
			continue
		}
		mid = max(mid, midOf(cin, c.Expand))
		k = max(k, c.Kernel)
		expand = expand || c.Expand != 1
	}
	if mid == 0 {
		return
	}
	shared := layerPrefix(l) + ".shared"
	if expand {
		in.conv(shared+".expand", mid, cin, 1)
	}
	in.conv(shared+".dw", mid, 1, k)
	in.conv(shared+".project", cout, mid, 1)
	if in.ps.views == nil {
		in.ps.views = map[string]view{}
	}
	for _, c := range l.Candidates {
		if c.Zero {
			continue
		}
		prefix, m := candPrefix(l, c), midOf(cin, c.Expand)
		if c.Expand != 1 {
			in.ps.views[convName(prefix+".expand")] = view{base: convName(shared + ".expand"), out: m, in: cin, k: 1}
			in.bn(prefix+".expand", m)
		}
		in.ps.views[convName(prefix+".dw")] = view{base: convName(shared + ".dw"), out: m, in: 1, k: c.Kernel}
		in.bn(prefix+".dw", m)
		in.ps.views[convName(prefix+".project")] = view{base: convName(shared + ".project"), out: cout, in: m, k: 1}
		in.bn(prefix+".project", cout)
	}
}

// midOf is an MBConv's expanded width: cin itself without an expansion.
func midOf(cin, e int) int {
	if e == 1 {
		return cin
	}
	return space.MidChannels(cin, e)
}

func (in *initializer) dense(prefix string, units, fanIn int) {
	w := in.ps.add(prefix+".weight", true, units, fanIn)
	b := in.ps.add(prefix+".bias", true, units)
	lim := 1 / math.Sqrt(float64(fanIn))
	for i := range w.w {
		w.w[i] = float32(lim * (2*in.rng.Float64() - 1))
	}
	for i := range b.w {
		b.w[i] = float32(lim * (2*in.rng.Float64() - 1))
	}
}

// newSupernetParams creates and initializes every tensor of the supernet;
// with nested, the candidates of a layer share their convolution weights
// (ShareNested).
func newSupernetParams(p *space.Plan, rng *rand.Rand, nested bool) *paramSet {
	ps := &paramSet{}
	in := &initializer{ps: ps, rng: rng}
	in.convBN("stem", p.Stem.Out.C, p.Stem.In.C, p.Stem.Kernel)
	in.mbconv("first", p.First.In.C, p.First.Out.C, p.First.Kernel, p.First.Expand)
	for _, l := range p.Layers {
		if nested {
			in.nested(l)
			continue
		}
		for _, c := range l.Candidates {
			if c.Zero {
				continue
			}
			in.mbconv(candPrefix(l, c), l.In.C, l.Out.C, c.Kernel, c.Expand)
		}
	}
	in.convBN("head", p.Head.Out.C, p.Head.In.C, 1)
	in.dense("classifier", p.Classes, p.Head.Out.C)
	return ps
}
