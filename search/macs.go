package search

import (
	"fmt"

	"github.com/pnasml/pnas/search/space"
)

// MBConvMACs counts the multiply-accumulates of one MBConv block.
func MBConvMACs(in, out space.Shape, k, e int) int64 {
	mid := in.C
	var m int64
	if e != 1 {
		mid = space.MidChannels(in.C, e)
		m += int64(in.H * in.W * in.C * mid)
	}
	m += int64(out.H * out.W * mid * k * k)
	m += int64(out.H * out.W * mid * out.C)
	return m
}

// StemMACs counts the stem convolution's multiply-accumulates.
func StemMACs(p *space.Plan) int64 {
	s := p.Stem
	return int64(s.Out.H * s.Out.W * s.Out.C * s.In.C * s.Kernel * s.Kernel)
}

// FixedMACs counts stem, first block, head and classifier.
func FixedMACs(p *space.Plan) int64 {
	f := p.First
	h := p.Head
	return StemMACs(p) + MBConvMACs(f.In, f.Out, f.Kernel, f.Expand) +
		int64(h.In.H*h.In.W*h.In.C*h.Out.C) + int64(h.Out.C*p.Classes)
}

// LayerMACs counts candidate c at layer l (0 for Zero).
func LayerMACs(l space.Layer, c space.Candidate) int64 {
	if c.Zero {
		return 0
	}
	return MBConvMACs(l.In, l.Out, c.Kernel, c.Expand)
}

// ArchMACs counts the network that picks candidate choice[l] at layer l.
func ArchMACs(p *space.Plan, choice []int) int64 {
	m := FixedMACs(p)
	for l, j := range choice {
		m += LayerMACs(p.Layers[l], p.Layers[l].Candidates[j])
	}
	return m
}

// MACTable returns a latency table for the plan in which every entry costs
// usPerMMAC microseconds per million multiply-accumulates: the FLOPs proxy
// of ProxylessNAS, and a fixture for tests.
func MACTable(p *space.Plan, usPerMMAC float64) *MapTable {
	t := &MapTable{Name: fmt.Sprintf("macs:%s:%gus/MMAC", p.Space.Name, usPerMMAC), Entries: map[string]float64{}}
	us := func(m int64) float64 { return float64(m) * usPerMMAC / 1e6 }
	f, h := p.First, p.Head
	t.Entries[p.StemKey()] = us(StemMACs(p))
	t.Entries[p.FirstKey()] = us(MBConvMACs(f.In, f.Out, f.Kernel, f.Expand))
	t.Entries[p.HeadKey()] = us(int64(h.In.H * h.In.W * h.In.C * h.Out.C))
	t.Entries[p.LogitsKey()] = us(int64(h.Out.C * p.Classes))
	for _, l := range p.Layers {
		for _, c := range l.Candidates {
			if !c.Zero {
				t.Entries[l.Key(c)] = us(LayerMACs(l, c))
			}
		}
	}
	return t
}
