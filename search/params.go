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

// paramSet holds the supernet's tensors in creation order.
type paramSet struct {
	list  []*param
	index map[string]int
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
	mid := cin
	if e != 1 {
		mid = space.MidChannels(cin, e)
		in.convBN(prefix+".expand", mid, cin, 1)
	}
	in.convBN(prefix+".dw", mid, 1, k)
	in.convBN(prefix+".project", cout, mid, 1)
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

// newSupernetParams creates and initializes every tensor of the supernet.
func newSupernetParams(p *space.Plan, rng *rand.Rand) *paramSet {
	ps := &paramSet{}
	in := &initializer{ps: ps, rng: rng}
	in.convBN("stem", p.Stem.Out.C, p.Stem.In.C, p.Stem.Kernel)
	in.mbconv("first", p.First.In.C, p.First.Out.C, p.First.Kernel, p.First.Expand)
	for _, l := range p.Layers {
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
