package search

import (
	"fmt"

	"github.com/pnasml/pnas/ir"
	"github.com/pnasml/pnas/search/space"
)

// DeriveOptions describe the model Derive writes.
type DeriveOptions struct {
	Name   string    // model name; default "<space>-searched"
	Mean   []float32 // input normalization recorded in the model
	Std    []float32
	Labels []string // class names
	Target string   // target tag the latency table was measured on
}

// Derive keeps the most probable candidate of every searchable layer
// (argmax of alpha), drops the layers where Zero wins (their identity
// residual remains) and returns the network as an *ir.Model carrying the
// trained supernet weights of the kept candidates, BN running statistics
// included. Op names follow the supernet's weight names without the
// candidate: "stem.conv", "first.dw.bn", "s2.l0.expand.conv", "head.act",
// "classifier"; every op carries its block annotation.
func (s *Searcher) Derive(opt DeriveOptions) (*ir.Model, error) {
	return s.DeriveChoice(s.Argmax(), opt)
}

// DeriveChoice is Derive for an explicit choice of candidate per layer.
func (s *Searcher) DeriveChoice(choice []int, opt DeriveOptions) (*ir.Model, error) {
	p := s.plan
	if len(choice) != len(p.Layers) {
		return nil, fmt.Errorf("search: derive: expected %d choices, got %d", len(p.Layers), len(choice))
	}
	for l, j := range choice {
		if j < 0 || j >= len(p.Layers[l].Candidates) {
			return nil, fmt.Errorf("search: derive: choice[%d]: expected 0..%d, got %d", l, len(p.Layers[l].Candidates)-1, j)
		}
	}
	name := opt.Name
	if name == "" {
		name = p.Space.Name + "-searched"
	}
	in := p.Stem.In
	b := ir.NewBuilder(name, in.C, in.H, in.W, nil)
	b.Raw().Producer = "pnas search"
	b.Raw().Input.Mean = append([]float32(nil), opt.Mean...)
	b.Raw().Input.Std = append([]float32(nil), opt.Std...)
	b.Raw().Input.Labels = append([]string(nil), opt.Labels...)
	w := func(n string) []float32 { return append([]float32(nil), s.params.get(n).w...) }
	conv := func(op, src, param string, out, k, stride, groups int) string {
		pd := k / 2
		return b.ConvFull(op, src, out, [2]int{k, k}, [2]int{stride, stride}, [4]int{pd, pd, pd, pd}, groups, false, w(param), nil)
	}
	bn := func(op, src, prefix string) string {
		sc, bi, mn, vr := bnNames(prefix)
		return b.BatchNorm(op, src, w(sc), w(bi), w(mn), w(vr))
	}
	// convBNAct adds prefix.conv, prefix.bn and (if act) prefix.act; the
	// weights come from wprefix (the supernet's name for the same part).
	convBNAct := func(prefix, wprefix, src string, out, k, stride, groups int, act bool) string {
		x := conv(prefix+".conv", src, convName(wprefix), out, k, stride, groups)
		x = bn(prefix+".bn", x, wprefix)
		if act {
			x = b.Act(prefix+".act", x, ir.ActReLU6)
		}
		return x
	}
	mbconv := func(prefix, wprefix, src string, cin, cout, k, e, stride int, residual bool) string {
		x := src
		mid := cin
		if e != 1 {
			mid = space.MidChannels(cin, e)
			x = convBNAct(prefix+".expand", wprefix+".expand", x, mid, 1, 1, 1, true)
		}
		x = convBNAct(prefix+".dw", wprefix+".dw", x, mid, k, stride, mid, true)
		x = convBNAct(prefix+".project", wprefix+".project", x, cout, 1, 1, 1, false)
		if residual {
			x = b.Add(prefix+".add", x, src)
		}
		return x
	}
	b.Block = &ir.Block{Stage: 0, Layer: 0, Candidate: "stem"}
	x := convBNAct("stem", "stem", b.Input(), p.Stem.Out.C, p.Stem.Kernel, p.Stem.Stride, 1, true)
	f := p.First
	b.Block = &ir.Block{Stage: 0, Layer: 1, Candidate: irCandidate(f.Kernel, f.Expand)}
	x = mbconv("first", "first", x, f.In.C, f.Out.C, f.Kernel, f.Expand, f.Stride, false)
	for l, layer := range p.Layers {
		c := layer.Candidates[choice[l]]
		if c.Zero {
			continue
		}
		b.Block = &ir.Block{Stage: layer.Stage, Layer: layer.Pos, Candidate: irCandidate(c.Kernel, c.Expand)}
		x = mbconv(layerPrefix(layer), candPrefix(layer, c), x, layer.In.C, layer.Out.C, c.Kernel, c.Expand, layer.Stride, layer.Residual)
	}
	b.Block = &ir.Block{Stage: -1, Layer: 0, Candidate: "head"}
	x = convBNAct("head", "head", x, p.Head.Out.C, 1, 1, 1, true)
	b.Block = &ir.Block{Stage: -1, Layer: 1, Candidate: "classifier"}
	x = b.GlobalPool("pool", x)
	x = b.Flatten("flatten", x)
	x = b.Dense("classifier", x, p.Classes, w("classifier.weight"), w("classifier.bias"))
	m, err := b.Model(x)
	if err != nil {
		return nil, fmt.Errorf("search: derive: %w", err)
	}
	info := &ir.SearchInfo{
		Space:    p.Space.Name,
		Target:   opt.Target,
		Seed:     s.cfg.Seed,
		GateMode: s.cfg.GateMode,
		Alpha:    s.Alpha(),
		Steps:    int(s.pos.WeightSteps),
	}
	for _, c := range p.Candidates {
		info.Candidates = append(info.Candidates, irCandidateOf(c))
	}
	for l, j := range choice {
		info.Choices = append(info.Choices, irCandidateOf(p.Layers[l].Candidates[j]))
	}
	if s.lat != nil {
		info.LatencyTable = s.lat.TableID
		info.ExpectedLatencyUS = s.lat.Of(choice)
		m.Metadata.LatencyTable = s.lat.TableID
	}
	m.Metadata.Search = info
	return m, nil
}

// irCandidate formats an MBConv the way ir block annotations do.
func irCandidate(k, e int) string { return fmt.Sprintf("mbconv k%d e%d", k, e) }

func irCandidateOf(c space.Candidate) string {
	if c.Zero {
		return space.ZeroName
	}
	return irCandidate(c.Kernel, c.Expand)
}
