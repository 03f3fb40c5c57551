package search

import (
	"fmt"
	"runtime/debug"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/pnasml/pnas/search/internal/gx"
)

type node = graph.Node

// bnStat is the batch statistics output of one batch normalization.
type bnStat struct {
	prefix      string
	mean, vari  *node
	count       int // elements per channel
	meanO, varO int // output indices
}

// gbuilder builds one GoMLX graph of the supernet over explicit inputs.
type gbuilder struct {
	s      *Searcher
	g      *graph.Graph
	inputs []*node
	feed   []any
	pidx   map[string]int // weight name -> index in weights
	wnames []string       // weights used, in creation order
	wnodes []*node
	vnodes map[string]*node // views (ShareNested), cut from their base's input
	bn     []bnStat
	outs   []*node
	raw    map[int]bool // outputs kept as float32 (runResult.f32)
	infer  bool         // BN uses running statistics instead of batch statistics
	noGrad bool         // no gradient is taken: forward-only ops (gx.DepthwiseForward, gx.BatchNormForward)
}

func (s *Searcher) newBuilder(name string) *gbuilder {
	return &gbuilder{s: s, g: graph.NewGraph(s.backend, name), pidx: map[string]int{}}
}

// input adds a graph input of the searcher's dtype holding data.
func (b *gbuilder) input(name string, data []float32, dims ...int) *node {
	n := graph.Parameter(b.g, name, shapes.Make(b.s.dtype, dims...))
	b.inputs = append(b.inputs, n)
	if b.s.dtype == dtypes.Float64 {
		d := make([]float64, len(data))
		for i, v := range data {
			d[i] = float64(v)
		}
		b.feed = append(b.feed, tensors.FromFlatDataAndDimensions(d, dims...))
	} else {
		b.feed = append(b.feed, tensors.FromFlatDataAndDimensions(data, dims...))
	}
	return n
}

// input64 adds a graph input from float64 values.
func (b *gbuilder) input64(name string, data []float64, dims ...int) *node {
	if b.s.dtype == dtypes.Float64 {
		n := graph.Parameter(b.g, name, shapes.Make(b.s.dtype, dims...))
		b.inputs = append(b.inputs, n)
		b.feed = append(b.feed, tensors.FromFlatDataAndDimensions(append([]float64(nil), data...), dims...))
		return n
	}
	return b.input(name, f32(data), dims...)
}

// w returns the graph input holding weight name, creating it on first use.
func (b *gbuilder) w(name string) *node {
	if v, ok := b.s.params.views[name]; ok {
		if n, ok := b.vnodes[name]; ok {
			return n
		}
		base := b.s.params.get(v.base)
		n := b.w(v.base)
		if v.out < base.shape[0] {
			n = gx.SliceAxis(n, 0, 0, v.out, 1)
		}
		if v.in < base.shape[1] {
			n = gx.SliceAxis(n, 1, 0, v.in, 1)
		}
		if off := v.crop(base); off > 0 {
			n = gx.SliceAxis(gx.SliceAxis(n, 2, off, off+v.k, 1), 3, off, off+v.k, 1)
		}
		if b.vnodes == nil {
			b.vnodes = map[string]*node{}
		}
		b.vnodes[name] = n
		return n
	}
	if i, ok := b.pidx[name]; ok {
		return b.wnodes[i]
	}
	p := b.s.params.get(name)
	n := b.input(name, append([]float32(nil), p.w...), p.shape...)
	b.pidx[name] = len(b.wnodes)
	b.wnames = append(b.wnames, name)
	b.wnodes = append(b.wnodes, n)
	return n
}

func (b *gbuilder) out(n *node) int {
	b.outs = append(b.outs, n)
	return len(b.outs) - 1
}

// markRaw keeps output i as float32 in float32 graphs (runResult.f32).
func (b *gbuilder) markRaw(i int) {
	if b.raw == nil {
		b.raw = map[int]bool{}
	}
	b.raw[i] = true
}

// inputTap adds a graph input holding a tapped tensor: float32 data when
// the tap came from a float32 graph, float64 data otherwise.
func (b *gbuilder) inputTap(name string, d32 []float32, d64 []float64, dims ...int) *node {
	if d32 != nil {
		return b.input(name, d32, dims...)
	}
	return b.input64(name, d64, dims...)
}

func (b *gbuilder) bnorm(prefix string, x *node, act bool) *node {
	sc, bi, mn, vr := bnNames(prefix)
	if b.infer {
		y := gx.BatchNormInfer(x, b.w(sc), b.w(bi), b.w(mn), b.w(vr), b.s.cfg.BNEps)
		if act {
			y = gx.ReLU6(y)
		}
		return y
	}
	var y, m, v *node
	switch {
	case b.noGrad:
		y, m, v = gx.BatchNormForward(x, b.w(sc), b.w(bi), b.s.cfg.BNEps, act)
	case act:
		y, m, v = gx.BatchNormReLU6Train(x, b.w(sc), b.w(bi), b.s.cfg.BNEps)
	default:
		y, m, v = gx.BatchNormTrain(x, b.w(sc), b.w(bi), b.s.cfg.BNEps)
	}
	d := x.Shape().Dimensions
	b.bn = append(b.bn, bnStat{prefix: prefix, mean: m, vari: v, count: d[1] * d[2] * d[3]})
	return y
}

func (b *gbuilder) convBN(prefix string, x *node, k, stride int, dw, act bool) *node {
	wt := b.w(convName(prefix))
	var y *node
	switch {
	case dw && b.noGrad:
		y = gx.DepthwiseForward(x, wt, stride)
	case dw:
		y = gx.Depthwise(x, wt, stride)
	default:
		y = gx.Conv(x, wt, stride)
	}
	return b.bnorm(prefix, y, act)
}

// mbconv is 1x1 expand + BN + ReLU6 (skipped when e is 1), k x k depthwise
// + BN + ReLU6, 1x1 projection + BN; the residual is the caller's.
func (b *gbuilder) mbconv(prefix string, x *node, k, e, stride int) *node {
	h := x
	if e != 1 {
		h = b.convBN(prefix+".expand", h, 1, 1, false, true)
	}
	h = b.convBN(prefix+".dw", h, k, stride, true, true)
	return b.convBN(prefix+".project", h, 1, 1, false, false)
}

// layerChoice says how one searchable layer is built.
type layerChoice struct {
	active int     // candidate forming the output; -1 with coef: weighted sum
	coef   *node   // all mode: [K] weights of the candidates
	tap    bool    // record the layer input and active output
	x, o   *node   // recorded input and active (or weighted) output
	outs   []*node // all mode: each candidate's output, nil for Zero
}

// forward builds stem, first block, the searchable layers as chosen,
// head and classifier over images x [N,C,H,W]; it returns logits [N,K].
func (b *gbuilder) forward(x *node, layers []layerChoice) *node {
	p := b.s.plan
	d := x.Shape().Dimensions
	if d[1] == 1 {
		x = graph.Reshape(x, 1, d[0], d[2], d[3])
	} else {
		x = graph.TransposeAllAxes(x, 1, 0, 2, 3)
	}
	h := b.convBN("stem", x, p.Stem.Kernel, p.Stem.Stride, false, true)
	h = b.mbconv("first", h, p.First.Kernel, p.First.Expand, p.First.Stride)
	for li := range p.Layers {
		h = b.layer(li, h, &layers[li])
	}
	h = b.convBN("head", h, 1, 1, false, true)
	f := gx.GlobalAvgPool(h)
	return gx.Dense(f, b.w("classifier.weight"), b.w("classifier.bias"))
}

func (b *gbuilder) layer(li int, x *node, lc *layerChoice) *node {
	l := b.s.plan.Layers[li]
	lc.x = x
	var o *node
	if lc.coef != nil {
		lc.outs = make([]*node, len(l.Candidates))
		for j, c := range l.Candidates {
			if c.Zero {
				continue
			}
			oj := b.mbconv(candPrefix(l, c), x, c.Kernel, c.Expand, l.Stride)
			lc.outs[j] = oj
			t := graph.Mul(oj, graph.Reshape(gx.SliceAxis(lc.coef, 0, j, j+1, 1)))
			if o == nil {
				o = t
			} else {
				o = graph.Add(o, t)
			}
		}
	} else {
		c := l.Candidates[lc.active]
		if c.Zero {
			return x // the block is skipped; only the identity remains
		}
		o = b.mbconv(candPrefix(l, c), x, c.Kernel, c.Expand, l.Stride)
	}
	lc.o = o
	if l.Residual {
		return graph.Add(x, o)
	}
	return o
}

// runResult holds a graph's outputs copied to Go memory: as float64 in
// vals, except the outputs marked raw of a float32 graph, kept as float32
// in f32 (layer activations and gradients, which are large and go back
// into another graph).
type runResult struct {
	vals [][]float64
	f32  [][]float32
}

// run compiles and runs the graph; it always finalizes it.
func (b *gbuilder) run() (res runResult, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("search: graph %s: %v\n%s", b.g.Name(), r, debug.Stack())
		}
		gx.Release(b.g)
		b.g.Finalize()
	}()
	gx.Release(b.g)
	if b.s.onCompile != nil {
		if err := b.s.onCompile(b.g, b.outs); err != nil {
			return res, err
		}
	}
	// The inputs count twice: the Go data they come from and the graph's
	// copy.
	plan := gx.PlanMemory(b.g, b.outs)
	b.s.budget(plan.Peak + 2*plan.Inputs)
	b.g.Compile(b.outs...)
	outs := b.g.Run(b.feed...)
	res.vals = make([][]float64, len(outs))
	res.f32 = make([][]float32, len(outs))
	for i, t := range outs {
		switch {
		case t.DType() == dtypes.Float64:
			res.vals[i] = tensors.MustCopyFlatData[float64](t)
		case b.raw[i]:
			res.f32[i] = tensors.MustCopyFlatData[float32](t)
		default:
			v := tensors.MustCopyFlatData[float32](t)
			res.vals[i] = make([]float64, len(v))
			for j, x := range v {
				res.vals[i][j] = float64(x)
			}
		}
		t.FinalizeAll()
	}
	for _, f := range b.feed {
		if t, ok := f.(*tensors.Tensor); ok {
			t.FinalizeAll()
		}
	}
	return res, nil
}

// bnOutputs registers every BN's batch statistics as outputs.
func (b *gbuilder) bnOutputs() {
	for i := range b.bn {
		b.bn[i].meanO = b.out(b.bn[i].mean)
		b.bn[i].varO = b.out(b.bn[i].vari)
	}
}

// updateRunningStats applies the batch statistics of a run to the BN
// running mean and (unbiased) variance, PyTorch style.
func (s *Searcher) updateRunningStats(bn []bnStat, res runResult) {
	m := float32(s.cfg.BNMomentum)
	for _, st := range bn {
		_, _, mn, vr := bnNames(st.prefix)
		rm, rv := s.params.get(mn).w, s.params.get(vr).w
		bm, bv := res.vals[st.meanO], res.vals[st.varO]
		unbias := float32(1)
		if st.count > 1 {
			unbias = float32(st.count) / float32(st.count-1)
		}
		for c := range rm {
			rm[c] = (1-m)*rm[c] + m*float32(bm[c])
			rv[c] = (1-m)*rv[c] + m*float32(bv[c])*unbias
		}
	}
}

// targets returns label-smoothed one-hot targets [N,K].
func targets(labels []int, k int, smoothing float64) []float32 {
	t := make([]float32, len(labels)*k)
	off := float32(smoothing / float64(k))
	on := float32(1-smoothing) + off
	for n, l := range labels {
		row := t[n*k : (n+1)*k]
		for i := range row {
			row[i] = off
		}
		row[l] = on
	}
	return t
}

// validateBatch checks images and labels against the plan.
func (s *Searcher) validateBatch(x []float32, labels []int) error {
	in := s.plan.Stem.In
	per := in.C * in.H * in.W
	if len(labels) < 2 {
		return fmt.Errorf("search: batch: expected at least 2 images (batch statistics), got %d", len(labels))
	}
	if len(x) != len(labels)*per {
		return fmt.Errorf("search: batch: expected %d values (%d images of %dx%dx%d), got %d", len(labels)*per, len(labels), in.C, in.H, in.W, len(x))
	}
	for i, l := range labels {
		if l < 0 || l >= s.plan.Classes {
			return fmt.Errorf("search: batch: label %d: expected 0..%d, got %d", i, s.plan.Classes-1, l)
		}
	}
	return nil
}

func (s *Searcher) imagesInput(b *gbuilder, x []float32, n int) *node {
	in := s.plan.Stem.In
	return b.input("images", x, n, in.C, in.H, in.W)
}
