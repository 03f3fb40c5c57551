// Package archnet is the bridge between a search space and the IR: it
// builds the IR network of one architecture of a space (the stem, the fixed
// first block, the chosen candidate of every searchable layer with Zero
// layers dropped, the head and the classifier) and reads the blocks of an
// IR model back.
//
// Every op it builds carries an ir.Block annotation whose candidate is
// [StemBlock], [HeadBlock], [ClassifierBlock] or an MBConv [Annotation]
// ("mbconv k5 e6"); [Blocks] groups a model's ops by those annotations and
// derives each block's latency-table key with the key formats of package
// search/space. The searcher's derivation, the latency profiler and the
// latency predictor of package targets all go through this package. The
// searcher's latency model computes its keys from the space's plan instead
// (space.Plan.StemKey, space.Layer.Key, ...); a test checks that the keys
// of the profiling networks are exactly those.
package archnet

import (
	"fmt"
	"math/rand/v2"
	"sort"

	"github.com/pnasml/pnas/ir"
	"github.com/pnasml/pnas/search/space"
)

// Weights returns the weights stored under a supernet parameter name
// ("stem.conv.weight", "s2.l0.k5e6.dw.bn.var", "classifier.bias"), or nil to
// draw them at random.
type Weights func(name string) []float32

// LayerPrefix names searchable layer l in a network: "s2.l0".
func LayerPrefix(l space.Layer) string { return fmt.Sprintf("s%d.l%d", l.Stage, l.Pos) }

// CandPrefix names candidate c of searchable layer l in the supernet: "s2.l0.k5e6".
func CandPrefix(l space.Layer, c space.Candidate) string {
	return fmt.Sprintf("s%d.l%d.%s", l.Stage, l.Pos, c.Name())
}

// Build returns the network choosing candidate choice[l] at every layer.
// Weights come from w (nil, or a nil result, draws them from rng).
func Build(p *space.Plan, choice []int, name string, w Weights, rng *rand.Rand) (*ir.Model, error) {
	if len(choice) != len(p.Layers) {
		return nil, fmt.Errorf("archnet: expected %d choices, got %d", len(p.Layers), len(choice))
	}
	for l, j := range choice {
		if j < 0 || j >= len(p.Layers[l].Candidates) {
			return nil, fmt.Errorf("archnet: choice[%d]: expected 0..%d, got %d", l, len(p.Layers[l].Candidates)-1, j)
		}
	}
	if rng == nil {
		rng = rand.New(rand.NewPCG(1, 2))
	}
	in := p.Stem.In
	b := builder{ir.NewBuilder(name, in.C, in.H, in.W, rng), w}
	b.Block = &ir.Block{Stage: 0, Layer: 0, Candidate: StemBlock}
	x := b.convBNAct("stem", "stem", b.Input(), p.Stem.Out.C, p.Stem.Kernel, p.Stem.Stride, 1, true)
	f := p.First
	first := space.Candidate{Kernel: f.Kernel, Expand: f.Expand}
	b.Block = &ir.Block{Stage: 0, Layer: 1, Candidate: Annotation(first)}
	x = b.mbconv("first", "first", x, f.In.C, f.Out.C, first, f.Stride, false)
	for l, layer := range p.Layers {
		c := layer.Candidates[choice[l]]
		if c.Zero {
			continue
		}
		b.Block = &ir.Block{Stage: layer.Stage, Layer: layer.Pos, Candidate: Annotation(c)}
		x = b.mbconv(LayerPrefix(layer), CandPrefix(layer, c), x, layer.In.C, layer.Out.C, c, layer.Stride, layer.Residual)
	}
	b.Block = &ir.Block{Stage: -1, Layer: 0, Candidate: HeadBlock}
	x = b.convBNAct("head", "head", x, p.Head.Out.C, 1, 1, 1, true)
	b.Block = &ir.Block{Stage: -1, Layer: 1, Candidate: ClassifierBlock}
	x = b.GlobalPool("pool", x)
	x = b.Flatten("flatten", x)
	x = b.Dense("classifier", x, p.Classes, b.get("classifier.weight"), b.get("classifier.bias"))
	m, err := b.Model(x)
	if err != nil {
		return nil, fmt.Errorf("archnet: %w", err)
	}
	return m, nil
}

// builder adds archnet's layers to an ir.Builder, with weights from w
// under supernet parameter names (drawn by the ir.Builder where w is nil or
// returns nil).
type builder struct {
	*ir.Builder
	w Weights
}

func (b builder) get(name string) []float32 {
	if b.w == nil {
		return nil
	}
	return b.w(name)
}

// convBNAct adds a "same"-padded bias-free convolution, a batchnorm and,
// when act is set, a ReLU6; ops are named prefix+".conv" ..., weights are
// looked up under wprefix+".conv.weight" ....
func (b builder) convBNAct(prefix, wprefix, src string, out, k, stride, groups int, act bool) string {
	pd := k / 2
	x := b.ConvFull(prefix+".conv", src, out, [2]int{k, k}, [2]int{stride, stride}, [4]int{pd, pd, pd, pd}, groups, false, b.get(wprefix+".conv.weight"), nil)
	x = b.BatchNorm(prefix+".bn", x, b.get(wprefix+".bn.scale"), b.get(wprefix+".bn.bias"), b.get(wprefix+".bn.mean"), b.get(wprefix+".bn.var"))
	if act {
		x = b.Act(prefix+".act", x, ir.ActReLU6)
	}
	return x
}

// mbconv adds an inverted-residual block: a 1x1 expansion to
// space.MidChannels(cin, e) channels (none when e is 1), the kxk depthwise
// convolution with the stride, the linear 1x1 projection and, when
// residual, the identity shortcut.
func (b builder) mbconv(prefix, wprefix, src string, cin, cout int, c space.Candidate, stride int, residual bool) string {
	x := src
	mid := cin
	if c.Expand != 1 {
		mid = space.MidChannels(cin, c.Expand)
		x = b.convBNAct(prefix+".expand", wprefix+".expand", x, mid, 1, 1, 1, true)
	}
	x = b.convBNAct(prefix+".dw", wprefix+".dw", x, mid, c.Kernel, stride, mid, true)
	x = b.convBNAct(prefix+".project", wprefix+".project", x, cout, 1, 1, 1, false)
	if residual {
		x = b.Add(prefix+".add", x, src)
	}
	return x
}

// AddMBConv adds to b the inverted-residual block Build builds for candidate
// c, from in (cin channels) to cout channels, ops named after prefix and
// weights drawn by b.
func AddMBConv(b *ir.Builder, prefix, in string, cin, cout int, c space.Candidate, stride int, residual bool) string {
	return builder{Builder: b}.mbconv(prefix, prefix, in, cin, cout, c, stride, residual)
}

// Uniform returns the choice that takes candidate name at every layer that
// offers it (-1 entries where a layer does not), and whether every layer
// offers it.
func Uniform(p *space.Plan, name string) ([]int, bool) {
	choice := make([]int, len(p.Layers))
	all := true
	for l, layer := range p.Layers {
		choice[l] = -1
		for j, c := range layer.Candidates {
			if c.Name() == name {
				choice[l] = j
			}
		}
		if choice[l] < 0 {
			all = false
		}
	}
	return choice, all
}

// Random draws a choice uniformly over every layer's candidates.
func Random(p *space.Plan, rng *rand.Rand) []int {
	choice := make([]int, len(p.Layers))
	RandomInto(choice, p, rng)
	return choice
}

// RandomInto is Random writing into choice (len(p.Layers) long), for
// callers that draw many and keep few.
func RandomInto(choice []int, p *space.Plan, rng *rand.Rand) {
	for l, layer := range p.Layers {
		choice[l] = rng.IntN(len(layer.Candidates))
	}
}

// Keys lists the latency-table keys of every distinct position and
// candidate of the space (Zero excluded), plus the stem, first block, head
// and classifier, sorted.
func Keys(p *space.Plan) ([]string, error) {
	seen := map[string]bool{}
	for _, c := range candidateNames(p) {
		choice, _ := Uniform(p, c)
		for l := range choice {
			if choice[l] < 0 {
				choice[l] = 0
			}
		}
		m, err := Build(p, fix(p, choice, c), "keys", nil, nil)
		if err != nil {
			return nil, err
		}
		blocks, err := Blocks(m)
		if err != nil {
			return nil, err
		}
		for _, b := range blocks {
			seen[b.Key] = true
		}
	}
	var keys []string
	for k := range seen {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys, nil
}

// ProfileNets returns one network per non-Zero candidate of the space,
// taking that candidate at every layer that offers it (and the layer's
// first non-Zero candidate elsewhere). Together they contain every key of
// Keys.
func ProfileNets(p *space.Plan, prefix string, rng *rand.Rand) ([]*ir.Model, error) {
	var out []*ir.Model
	for _, c := range candidateNames(p) {
		choice, _ := Uniform(p, c)
		m, err := Build(p, fix(p, choice, c), prefix+"-"+c, nil, rng)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

// fix replaces -1 entries by the layer's first non-Zero candidate.
func fix(p *space.Plan, choice []int, _ string) []int {
	out := append([]int(nil), choice...)
	for l := range out {
		if out[l] >= 0 {
			continue
		}
		for j, c := range p.Layers[l].Candidates {
			if !c.Zero {
				out[l] = j
				break
			}
		}
	}
	return out
}

func candidateNames(p *space.Plan) []string {
	var names []string
	seen := map[string]bool{}
	for _, layer := range p.Layers {
		for _, c := range layer.Candidates {
			if !c.Zero && !seen[c.Name()] {
				seen[c.Name()] = true
				names = append(names, c.Name())
			}
		}
	}
	return names
}
