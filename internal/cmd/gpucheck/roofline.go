package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"

	"github.com/pnasml/pnas/ir"
	"github.com/pnasml/pnas/ir/pass"
	"github.com/pnasml/pnas/targets"
)

// cost is the work of ops at a batch: float operations and the bytes they
// must move at least (every input, weight and output once).
type cost struct {
	flops, bytes float64
	ns           float64 // measured
}

// opClass names the layer class of an op of a pass-optimised model, and
// its cost at batch n.
func opClass(op *ir.Op, shapes ir.Shapes, m *ir.Model, n int) (string, cost) {
	numel := func(s []int) float64 {
		v := 1.0
		for _, d := range s {
			v *= float64(d)
		}
		return v
	}
	in, out := numel(shapes[op.Inputs[0]]), numel(shapes[op.Output])
	act := 4 * float64(n) * (in + out)
	switch op.Type {
	case ir.OpConv2D:
		cin := shapes[op.Inputs[0]][0]
		w := numel(m.Param(op.Name, "weight").Shape)
		c := cost{flops: 2 * float64(n) * out * float64(cin/op.Groups*op.Kernel[0]*op.Kernel[1]), bytes: act + 4*w}
		if len(op.Inputs) == 2 {
			c.bytes += 4 * float64(n) * out
		}
		switch {
		case op.Kernel[0] == 1 && op.Kernel[1] == 1 && op.Groups == 1:
			return "pointwise", c
		case op.Groups == cin && op.Groups == shapes[op.Output][0]:
			return fmt.Sprintf("depthwise k%d s%d", op.Kernel[0], op.Stride[0]), c
		}
		return "dense conv", c
	case ir.OpDense:
		return "classifier", cost{flops: 2 * float64(n) * in * out, bytes: act + 4*in*out}
	case ir.OpGlobalPool:
		return "pooling", cost{flops: float64(n) * in, bytes: act}
	}
	return "elementwise", cost{flops: float64(n) * out, bytes: act}
}

// roofline prints, per layer class of a net, the time measured at batch n
// (a -bench -json report), the achieved GFLOP/s and GB/s, and the share of
// the roofline that binds: min(peak flops, peak bandwidth x intensity).
func roofline(w io.Writer, dir, name string, n int, peakGFLOPS, peakGBS float64) error {
	nd := filepath.Join(dir, name)
	m, err := ir.Load(filepath.Join(nd, "model.json"))
	if err != nil {
		return err
	}
	om, err := pass.Apply(m, pass.Options{})
	if err != nil {
		return err
	}
	shapes, err := om.InferShapes()
	if err != nil {
		return err
	}
	data, err := os.ReadFile(filepath.Join(nd, fmt.Sprintf("bench-b%d.json", n)))
	if err != nil {
		return err
	}
	rep, err := targets.ParseBench(data)
	if err != nil {
		return err
	}
	byName := map[string]*ir.Op{}
	for i := range om.Ops {
		byName[om.Ops[i].Name] = &om.Ops[i]
	}
	classes := map[string]*cost{}
	for _, ly := range rep.Layers {
		// a layer's time goes to the class of its costliest op
		var best string
		var sum cost
		for _, o := range ly.Ops {
			op := byName[o]
			if op == nil {
				return fmt.Errorf("%s: report layer %q names op %q, which the model lacks", name, ly.Name, o)
			}
			if op.Type == ir.OpFlatten {
				continue
			}
			cl, c := opClass(op, shapes, om, n)
			if best == "" || c.flops > sum.flops {
				best = cl
			}
			sum.flops += c.flops
			sum.bytes += c.bytes
		}
		if best == "" {
			continue
		}
		if classes[best] == nil {
			classes[best] = &cost{}
		}
		classes[best].flops += sum.flops
		classes[best].bytes += sum.bytes
		classes[best].ns += ly.MedianNS
	}
	var names []string
	for c := range classes {
		names = append(names, c)
	}
	sort.Strings(names)
	fmt.Fprintf(w, "%s, batch %d, %s: per layer class (roofline: %.0f GFLOP/s, %.0f GB/s)\n", name, n, rep.CPU, peakGFLOPS, peakGBS)
	fmt.Fprintf(w, "  %-18s %10s %10s %9s %8s %9s\n", "class", "time (us)", "GFLOP/s", "GB/s", "flop/B", "roofline")
	for _, c := range names {
		k := classes[c]
		s := k.ns / 1e9
		bound := math.Min(peakGFLOPS, peakGBS*k.flops/k.bytes)
		fmt.Fprintf(w, "  %-18s %10.1f %10.1f %9.1f %8.2f %8.1f%%\n", c, k.ns/1e3, k.flops/s/1e9, k.bytes/s/1e9, k.flops/k.bytes, 100*k.flops/s/1e9/bound)
	}
	return nil
}
