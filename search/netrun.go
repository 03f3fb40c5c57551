package search

import (
	"fmt"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/pnasml/pnas/search/internal/gx"
)

// netRun describes one forward (and backward) pass of the supernet.
type netRun struct {
	choice      []int       // binarized path: active candidate per layer
	coefs       [][]float64 // instead of choice: every candidate weighted (all mode)
	smoothing   float64     // label smoothing of the cross entropy
	weightGrads bool        // gradients of the loss for every trainable weight used
	coefGrads   bool        // gradients for coefs
	taps        bool        // per non-skipped layer: input, dLoss/d(output) and <output, dLoss/d(output)>
	bnInference bool        // BN with running statistics (no batch statistics returned)
}

// layerTap is what a tapped layer gives back.
type layerTap struct {
	x, dy          []float64 // layer input and gradient of the loss at the active output (float64 graphs)
	x32, dy32      []float32 // the same from float32 graphs
	xDims, oDims   []int
	gate           float64 // <o_active, dLoss/do>
	xO, dyO, gateO int
}

// netOut is the result of a netRun.
type netOut struct {
	loss      float64
	logits    []float64
	grads     []paramGrad
	coefGrads [][]float64
	taps      map[int]*layerTap
	bn        []bnStat
	res       runResult
}

type paramGrad struct {
	p *param
	g []float64
}

// runNet builds, runs and releases the graph of r over the batch.
func (s *Searcher) runNet(x []float32, labels []int, r netRun) (*netOut, error) {
	n, k := len(labels), s.plan.Classes
	b := s.newBuilder("supernet")
	b.infer = r.bnInference
	b.noGrad = !r.weightGrads && !r.coefGrads && !r.taps
	xi := s.imagesInput(b, x, n)
	tgt := b.input("target", targets(labels, k, r.smoothing), n, k)
	lcs := make([]layerChoice, len(s.plan.Layers))
	var coefs []*node
	for l := range lcs {
		if r.coefs != nil {
			c := b.input64(fmt.Sprintf("coef.%d", l), r.coefs[l], len(r.coefs[l]))
			lcs[l].coef = c
			coefs = append(coefs, c)
		} else {
			lcs[l].active = r.choice[l]
		}
	}
	logits := b.forward(xi, lcs)
	loss := gx.SoftmaxCrossEntropy(logits, tgt)
	out := &netOut{taps: map[int]*layerTap{}}
	var wrt []*node
	var tp []*param
	if r.weightGrads {
		for i, name := range b.wnames {
			if p := s.params.get(name); p.trainable {
				wrt = append(wrt, b.wnodes[i])
				tp = append(tp, p)
			}
		}
	}
	nw := len(wrt)
	if r.coefGrads {
		wrt = append(wrt, coefs...)
	}
	var tapLayers []int
	if r.taps {
		for l := range lcs {
			if lcs[l].o != nil {
				tapLayers = append(tapLayers, l)
				wrt = append(wrt, lcs[l].o)
			}
		}
	}
	var grads []*node
	if len(wrt) > 0 {
		grads = graph.Gradient(loss, wrt...)
	}
	lossO := b.out(loss)
	logitsO := b.out(logits)
	gradO := len(b.outs)
	for _, g := range grads {
		b.out(g)
	}
	for i, l := range tapLayers {
		o, dy := lcs[l].o, grads[len(grads)-len(tapLayers)+i]
		t := &layerTap{xDims: lcs[l].x.Shape().Dimensions, oDims: o.Shape().Dimensions}
		t.gateO = b.out(gx.Inner(o, dy))
		t.xO = b.out(lcs[l].x)
		t.dyO = gradO + len(grads) - len(tapLayers) + i
		b.markRaw(t.xO)
		b.markRaw(t.dyO)
		out.taps[l] = t
	}
	b.bnOutputs()
	res, err := b.run()
	if err != nil {
		return nil, err
	}
	out.res, out.bn = res, b.bn
	out.loss = res.vals[lossO][0]
	out.logits = res.vals[logitsO]
	for i, p := range tp {
		out.grads = append(out.grads, paramGrad{p: p, g: res.vals[gradO+i]})
	}
	if r.coefGrads {
		for l := range coefs {
			out.coefGrads = append(out.coefGrads, res.vals[gradO+nw+l])
		}
	}
	for _, t := range out.taps {
		t.gate = res.vals[t.gateO][0]
		t.x, t.x32 = res.vals[t.xO], res.f32[t.xO]
		t.dy, t.dy32 = res.vals[t.dyO], res.f32[t.dyO]
	}
	return out, nil
}
