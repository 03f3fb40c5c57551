package codegen

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"

	"github.com/pnasml/pnas/ir"
	"github.com/pnasml/pnas/runtime"
	"github.com/pnasml/pnas/targets"
)

// blob is the weights file of a generated program: float32 arrays in
// little-endian order, each starting at a multiple of arenaAlign floats.
type blob struct {
	data []byte
}

// span is a range of the blob relative to a model's first float.
type span struct{ lo, hi int }

func (b *blob) floats() int { return len(b.data) / 4 }

// align pads the blob to a multiple of arenaAlign floats.
func (b *blob) align() {
	for b.floats()%arenaAlign != 0 {
		b.data = append(b.data, 0, 0, 0, 0)
	}
}

// add appends v and returns its range relative to base (in floats).
func (b *blob) add(v []float32, base int) span {
	b.align()
	lo := b.floats() - base
	for _, f := range v {
		b.data = binary.LittleEndian.AppendUint32(b.data, math.Float32bits(f))
	}
	return span{lo, lo + len(v)}
}

// packedWeights is where one model's packed weights lie in the blob.
type packedWeights struct {
	base   int // first float of the model in the blob
	floats int // floats of the model, padded to arenaAlign
	w, b   map[*step]span
}

// packWeights packs every step's weights and bias in its operator's layout
// and appends them to the blob, the model's part padded to arenaAlign
// floats.
func packWeights(l *lowered, bl *blob) (*packedWeights, error) {
	p := &packedWeights{base: bl.floats(), w: map[*step]span{}, b: map[*step]span{}}
	for _, st := range l.steps {
		packed, err := packStep(st)
		if err != nil {
			return nil, fmt.Errorf("op %q: packing weights: %w", st.op.Name, err)
		}
		if packed != nil {
			p.w[st] = bl.add(packed, p.base)
		}
		if _, bias := st.params(); bias != nil {
			p.b[st] = bl.add(bias, p.base)
		}
	}
	bl.align()
	p.floats = bl.floats() - p.base
	return p, nil
}

// packStep packs a step's weights in its operator's layout.
func packStep(st *step) ([]float32, error) {
	switch st.kind {
	case stepLinear:
		return runtime.PackLinear(st.lin.h, st.lin.w, st.lin.c, st.lin.units, st.lin.weights)
	case stepConv:
		switch st.conv.kind {
		case runtime.KindPointwise:
			return runtime.PackPointwise(st.conv.spec, st.conv.weights)
		case runtime.KindDepthwise:
			return runtime.PackDepthwise(st.conv.spec, st.conv.weights)
		case runtime.KindDense:
			return runtime.PackDense(st.conv.spec, st.conv.weights)
		default:
			return runtime.PackGrouped(st.conv.spec, st.conv.weights)
		}
	}
	return nil, nil
}

// ModelID is the content hash of a model: the first 16 hex digits of the
// SHA-256 of its JSON document (without the weights file name) followed by
// every weight (name, shape, little-endian float32 values) in name order.
// Compiled programs report it so that measurements can be matched to the
// exact model they were made with.
func ModelID(m *ir.Model) (string, error) {
	c := *m
	c.Weights = ""
	doc, err := ir.Encode(&c)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	h.Write(doc)
	var buf []byte
	for _, name := range m.ParamNames() {
		t := m.Params[name]
		buf = append(buf[:0], name...)
		buf = append(buf, 0)
		for _, d := range t.Shape {
			buf = binary.LittleEndian.AppendUint64(buf, uint64(d))
		}
		for _, v := range t.Data {
			buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(v))
		}
		h.Write(buf)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// layerInfo is one timed layer of a generated program.
type layerInfo struct {
	name  string
	key   string
	ops   []string
	first int // first op index
	end   int // one past the last op index
}

// layers groups ops into timed layers: consecutive ops with equal block
// annotations form one layer, named "stage.layer candidate"; an op without
// annotation is a layer of its own, named after the op. Keys come from
// targets.ModelKeys when every op is annotated.
func layers(m *ir.Model) []layerInfo {
	var out []layerInfo
	seen := map[string]int{}
	for i := 0; i < len(m.Ops); {
		op := &m.Ops[i]
		j := i + 1
		name := op.Name
		if op.Block != nil {
			for j < len(m.Ops) && m.Ops[j].Block != nil && *m.Ops[j].Block == *op.Block {
				j++
			}
			name = fmt.Sprintf("%d.%d %s", op.Block.Stage, op.Block.Layer, op.Block.Candidate)
		}
		seen[name]++
		if n := seen[name]; n > 1 {
			name = fmt.Sprintf("%s #%d", name, n)
		}
		li := layerInfo{name: name, first: i, end: j}
		for k := i; k < j; k++ {
			li.ops = append(li.ops, m.Ops[k].Name)
		}
		out = append(out, li)
		i = j
	}
	if keys, err := targets.ModelKeys(m); err == nil && len(keys) == len(out) {
		for i := range out {
			out[i].key = keys[i]
		}
	}
	return out
}
