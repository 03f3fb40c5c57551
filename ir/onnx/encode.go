package onnx

import (
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// Marshal serializes the model. Field order is the field-number order and
// repeated numeric fields are packed, so the output is deterministic.
func (m *ModelProto) Marshal() []byte {
	var b []byte
	b = appendInt(b, 1, m.IRVersion)
	b = appendString(b, 2, m.ProducerName)
	b = appendString(b, 3, m.ProducerVersion)
	b = appendString(b, 4, m.Domain)
	b = appendInt(b, 5, m.ModelVersion)
	b = appendString(b, 6, m.DocString)
	if m.Graph != nil {
		b = appendMessage(b, 7, m.Graph.marshal())
	}
	for _, o := range m.OpsetImport {
		var ob []byte
		ob = appendString(ob, 1, o.Domain)
		ob = protowire.AppendTag(ob, 2, protowire.VarintType) // version is always written
		ob = protowire.AppendVarint(ob, uint64(o.Version))
		b = appendMessage(b, 8, ob)
	}
	for _, e := range m.MetadataProps {
		var eb []byte
		eb = appendString(eb, 1, e.Key)
		eb = appendString(eb, 2, e.Value)
		b = appendMessage(b, 14, eb)
	}
	return b
}

func (g *GraphProto) marshal() []byte {
	var b []byte
	for i := range g.Node {
		b = appendMessage(b, 1, g.Node[i].marshal())
	}
	b = appendString(b, 2, g.Name)
	for i := range g.Initializer {
		b = appendMessage(b, 5, g.Initializer[i].marshal())
	}
	b = appendString(b, 10, g.DocString)
	for num, list := range [][]ValueInfoProto{g.Input, g.Output, g.ValueInfo} {
		for i := range list {
			b = appendMessage(b, protowire.Number(11+num), list[i].marshal())
		}
	}
	return b
}

func (n *NodeProto) marshal() []byte {
	var b []byte
	for _, s := range n.Input {
		b = protowire.AppendTag(b, 1, protowire.BytesType) // empty names are meaningful (omitted inputs)
		b = protowire.AppendString(b, s)
	}
	for _, s := range n.Output {
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendString(b, s)
	}
	b = appendString(b, 3, n.Name)
	b = appendString(b, 4, n.OpType)
	for i := range n.Attribute {
		b = appendMessage(b, 5, n.Attribute[i].marshal())
	}
	b = appendString(b, 6, n.DocString)
	b = appendString(b, 7, n.Domain)
	return b
}

func (a *AttributeProto) marshal() []byte {
	var b []byte
	b = appendString(b, 1, a.Name)
	switch a.Type {
	case AttrFloat:
		b = protowire.AppendTag(b, 2, protowire.Fixed32Type)
		b = protowire.AppendFixed32(b, math.Float32bits(a.F))
	case AttrInt:
		b = protowire.AppendTag(b, 3, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(a.I))
	case AttrString:
		b = protowire.AppendTag(b, 4, protowire.BytesType)
		b = protowire.AppendBytes(b, a.S)
	case AttrTensor:
		if a.T != nil {
			b = appendMessage(b, 5, a.T.marshal())
		}
	case AttrFloats:
		b = appendFloats(b, 7, a.Floats)
	case AttrInts:
		b = appendInts(b, 8, a.Ints)
	}
	b = protowire.AppendTag(b, 20, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(a.Type))
	return b
}

func (t *TensorProto) marshal() []byte {
	var b []byte
	b = appendInts(b, 1, t.Dims)
	b = appendInt(b, 2, int64(t.DataType))
	b = appendFloats(b, 4, t.FloatData)
	if len(t.Int32Data) > 0 {
		var p []byte
		for _, v := range t.Int32Data {
			p = protowire.AppendVarint(p, uint64(int64(v)))
		}
		b = appendMessage(b, 5, p)
	}
	b = appendInts(b, 7, t.Int64Data)
	b = appendString(b, 8, t.Name)
	if t.RawData != nil {
		b = appendMessage(b, 9, t.RawData)
	}
	b = appendInt(b, 14, int64(t.DataLocation))
	return b
}

func (v *ValueInfoProto) marshal() []byte {
	var b []byte
	b = appendString(b, 1, v.Name)
	if v.Type != nil {
		var tt []byte
		tt = appendInt(tt, 1, int64(v.Type.ElemType))
		if v.Type.HasShape || len(v.Type.Shape) > 0 {
			var sb []byte
			for _, d := range v.Type.Shape {
				var db []byte
				if d.HasValue {
					db = protowire.AppendTag(db, 1, protowire.VarintType)
					db = protowire.AppendVarint(db, uint64(d.Value))
				} else if d.Param != "" {
					db = appendString(db, 2, d.Param)
				}
				sb = appendMessage(sb, 1, db)
			}
			tt = appendMessage(tt, 2, sb)
		}
		b = appendMessage(b, 2, appendMessage(nil, 1, tt))
	}
	return b
}

func appendInt(b []byte, num protowire.Number, v int64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, uint64(v))
}

func appendString(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func appendMessage(b []byte, num protowire.Number, m []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, m)
}

func appendInts(b []byte, num protowire.Number, v []int64) []byte {
	if len(v) == 0 {
		return b
	}
	var p []byte
	for _, x := range v {
		p = protowire.AppendVarint(p, uint64(x))
	}
	return appendMessage(b, num, p)
}

func appendFloats(b []byte, num protowire.Number, v []float32) []byte {
	if len(v) == 0 {
		return b
	}
	p := make([]byte, 0, 4*len(v))
	for _, x := range v {
		p = protowire.AppendFixed32(p, math.Float32bits(x))
	}
	return appendMessage(b, num, p)
}
