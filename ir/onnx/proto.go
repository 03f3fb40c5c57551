package onnx

import (
	"fmt"
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// The ONNX protobuf subset. Field numbers follow onnx.proto of the ONNX
// specification; fields outside the subset are skipped when reading and
// never written.

// ModelProto is the top-level ONNX container.
type ModelProto struct {
	IRVersion       int64                    // field 1
	ProducerName    string                   // field 2
	ProducerVersion string                   // field 3
	Domain          string                   // field 4
	ModelVersion    int64                    // field 5
	DocString       string                   // field 6
	Graph           *GraphProto              // field 7
	OpsetImport     []OperatorSetIDProto     // field 8
	MetadataProps   []StringStringEntryProto // field 14
}

// OperatorSetIDProto names an operator set and its version.
type OperatorSetIDProto struct {
	Domain  string // field 1; "" and "ai.onnx" are the default ONNX domain
	Version int64  // field 2
}

// StringStringEntryProto is one key/value metadata pair.
type StringStringEntryProto struct {
	Key   string // field 1
	Value string // field 2
}

// GraphProto is a graph: nodes in topological order, constant tensors and
// the typed inputs and outputs.
type GraphProto struct {
	Node        []NodeProto      // field 1
	Name        string           // field 2
	Initializer []TensorProto    // field 5
	DocString   string           // field 10
	Input       []ValueInfoProto // field 11
	Output      []ValueInfoProto // field 12
	ValueInfo   []ValueInfoProto // field 13
}

// NodeProto is one operator application.
type NodeProto struct {
	Input     []string         // field 1 ("" marks an omitted optional input)
	Output    []string         // field 2
	Name      string           // field 3
	OpType    string           // field 4
	Attribute []AttributeProto // field 5
	DocString string           // field 6
	Domain    string           // field 7
}

// AttributeType is AttributeProto.type.
type AttributeType int32

// The attribute types of the subset (the others are recognised by number
// only, so that errors can name them).
const (
	AttrUndefined AttributeType = 0
	AttrFloat     AttributeType = 1
	AttrInt       AttributeType = 2
	AttrString    AttributeType = 3
	AttrTensor    AttributeType = 4
	AttrGraph     AttributeType = 5
	AttrFloats    AttributeType = 6
	AttrInts      AttributeType = 7
	AttrStrings   AttributeType = 8
)

func (t AttributeType) String() string {
	names := map[AttributeType]string{AttrUndefined: "UNDEFINED", AttrFloat: "FLOAT", AttrInt: "INT",
		AttrString: "STRING", AttrTensor: "TENSOR", AttrGraph: "GRAPH", AttrFloats: "FLOATS", AttrInts: "INTS",
		AttrStrings: "STRINGS", 9: "TENSORS", 10: "GRAPHS", 11: "SPARSE_TENSOR", 12: "SPARSE_TENSORS",
		13: "TYPE_PROTO", 14: "TYPE_PROTOS"}
	if s, ok := names[t]; ok {
		return s
	}
	return fmt.Sprintf("type %d", int32(t))
}

// AttributeProto is a named attribute of a node.
type AttributeProto struct {
	Name   string        // field 1
	F      float32       // field 2
	I      int64         // field 3
	S      []byte        // field 4
	T      *TensorProto  // field 5
	Floats []float32     // field 7
	Ints   []int64       // field 8
	Type   AttributeType // field 20
}

// DataType is TensorProto.data_type.
type DataType int32

// Tensor element types. pnas reads FLOAT weights and INT64 shape constants.
const (
	DataUndefined DataType = 0
	DataFloat     DataType = 1
	DataInt32     DataType = 6
	DataInt64     DataType = 7
	DataDouble    DataType = 11
)

func (t DataType) String() string {
	names := []string{"UNDEFINED", "FLOAT", "UINT8", "INT8", "UINT16", "INT16", "INT32", "INT64", "STRING",
		"BOOL", "FLOAT16", "DOUBLE", "UINT32", "UINT64", "COMPLEX64", "COMPLEX128", "BFLOAT16"}
	if t >= 0 && int(t) < len(names) {
		return names[t]
	}
	return fmt.Sprintf("data type %d", int32(t))
}

// TensorProto is a serialized tensor. Slices read by DecodeModel alias the
// input buffer (RawData) or are fresh (FloatData, Int64Data).
type TensorProto struct {
	Dims         []int64   // field 1
	DataType     DataType  // field 2
	FloatData    []float32 // field 4
	Int32Data    []int32   // field 5
	Int64Data    []int64   // field 7
	Name         string    // field 8
	RawData      []byte    // field 9 (little-endian, fixed width)
	HasSegment   bool      // field 3 present (chunked tensors are not supported)
	DataLocation int32     // field 14; 1 = EXTERNAL (not supported)
}

// ValueInfoProto is a named, typed value. Only tensor types are read.
type ValueInfoProto struct {
	Name string // field 1
	// Type is TypeProto.tensor_type (field 2 -> field 1); nil when absent
	// or not a tensor type.
	Type *TensorTypeProto
}

// TensorTypeProto is TypeProto.Tensor: element type and optional shape.
type TensorTypeProto struct {
	ElemType DataType   // field 1
	Shape    []DimProto // field 2 (TensorShapeProto.dim)
	HasShape bool       // a shape was given (possibly of rank 0)
}

// DimProto is one dimension: a value, a symbolic parameter, or neither.
type DimProto struct {
	Value    int64  // field 1 dim_value
	Param    string // field 2 dim_param
	HasValue bool
}

// DecodeError is a malformed-protobuf error: where it happened (byte
// offset into the whole model and the field path) and what was wrong.
type DecodeError struct {
	Offset int    // byte offset in the input
	Path   string // field path, e.g. "graph.node[3].attribute[0].ints"
	Msg    string
}

func (e *DecodeError) Error() string {
	if e.Path == "" {
		return fmt.Sprintf("onnx: byte %d: %s", e.Offset, e.Msg)
	}
	return fmt.Sprintf("onnx: byte %d: %s: %s", e.Offset, e.Path, e.Msg)
}

// field is one decoded field: its number, wire type, value and the byte
// offset of the value in the whole input.
type field struct {
	num  protowire.Number
	typ  protowire.Type
	u    uint64 // varint, fixed32 or fixed64 value
	b    []byte // bytes value
	off  int    // offset of the value (of the payload, for length-delimited fields)
	tag  int    // offset of the tag
	path string
}

func (f *field) errf(format string, args ...any) error {
	return &DecodeError{Offset: f.off, Path: f.path, Msg: fmt.Sprintf(format, args...)}
}

// tagErrf reports a problem with the field as a whole, at its tag.
func (f *field) tagErrf(format string, args ...any) error {
	return &DecodeError{Offset: f.tag, Path: f.path, Msg: fmt.Sprintf(format, args...)}
}

var wireNames = map[protowire.Type]string{protowire.VarintType: "varint", protowire.Fixed32Type: "fixed32",
	protowire.Fixed64Type: "fixed64", protowire.BytesType: "length-delimited", protowire.StartGroupType: "group"}

func (f *field) want(t protowire.Type) error {
	if f.typ != t {
		return f.tagErrf("expected wire type %s, got %s", wireNames[t], wireNames[f.typ])
	}
	return nil
}

// walk decodes the fields of one message b that starts at byte base of the
// input and calls fn for each, with path+"."+name(num) as the field path.
func walk(b []byte, base int, path string, names map[protowire.Number]string, fn func(f *field) error) error {
	for i := 0; i < len(b); {
		num, typ, n := protowire.ConsumeTag(b[i:])
		if n < 0 {
			return &DecodeError{Offset: base + i, Path: path, Msg: fmt.Sprintf("bad field tag: %v", protowire.ParseError(n))}
		}
		f := field{num: num, typ: typ, off: base + i + n, tag: base + i}
		name, known := names[num]
		if !known {
			name = fmt.Sprintf("field %d", num)
		}
		f.path = name
		if path != "" {
			f.path = path + "." + name
		}
		i += n
		rest := b[i:]
		switch typ {
		case protowire.VarintType:
			f.u, n = protowire.ConsumeVarint(rest)
		case protowire.Fixed32Type:
			var v uint32
			v, n = protowire.ConsumeFixed32(rest)
			f.u = uint64(v)
		case protowire.Fixed64Type:
			f.u, n = protowire.ConsumeFixed64(rest)
		case protowire.BytesType:
			f.b, n = protowire.ConsumeBytes(rest)
			if n > 0 {
				f.off += n - len(f.b)
			}
		default: // groups (deprecated) and invalid wire types
			n = protowire.ConsumeFieldValue(num, typ, rest)
		}
		if n < 0 {
			return &DecodeError{Offset: base + i, Path: f.path, Msg: fmt.Sprintf("bad %s value: %v", wireNames[typ], protowire.ParseError(n))}
		}
		i += n
		if !known {
			continue
		}
		if err := fn(&f); err != nil {
			return err
		}
	}
	return nil
}

func (f *field) str(dst *string) error {
	if err := f.want(protowire.BytesType); err != nil {
		return err
	}
	*dst = string(f.b)
	return nil
}

func (f *field) int64(dst *int64) error {
	if err := f.want(protowire.VarintType); err != nil {
		return err
	}
	*dst = int64(f.u)
	return nil
}

func (f *field) int32(dst *int32) error {
	if err := f.want(protowire.VarintType); err != nil {
		return err
	}
	*dst = int32(f.u)
	return nil
}

// int64s appends a repeated int64 field, packed or not.
func (f *field) int64s(dst *[]int64) error {
	switch f.typ {
	case protowire.VarintType:
		*dst = append(*dst, int64(f.u))
		return nil
	case protowire.BytesType:
		for i := 0; i < len(f.b); {
			v, n := protowire.ConsumeVarint(f.b[i:])
			if n < 0 {
				return &DecodeError{Offset: f.off + i, Path: f.path, Msg: fmt.Sprintf("bad packed varint: %v", protowire.ParseError(n))}
			}
			*dst = append(*dst, int64(v))
			i += n
		}
		return nil
	}
	return f.tagErrf("expected a varint or packed varints, got wire type %s", wireNames[f.typ])
}

// float32s appends a repeated float field, packed or not.
func (f *field) float32s(dst *[]float32) error {
	switch f.typ {
	case protowire.Fixed32Type:
		*dst = append(*dst, math.Float32frombits(uint32(f.u)))
		return nil
	case protowire.BytesType:
		if len(f.b)%4 != 0 {
			return f.errf("packed floats: %d bytes is not a multiple of 4", len(f.b))
		}
		if *dst == nil {
			*dst = make([]float32, 0, len(f.b)/4)
		}
		for i := 0; i < len(f.b); i += 4 {
			v, _ := protowire.ConsumeFixed32(f.b[i:])
			*dst = append(*dst, math.Float32frombits(v))
		}
		return nil
	}
	return f.tagErrf("expected a fixed32 or packed fixed32s, got wire type %s", wireNames[f.typ])
}

func idx(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }

// DecodeModel parses a serialized ModelProto. Malformed input gives a
// *DecodeError with the byte offset and field path; it never panics.
func DecodeModel(b []byte) (*ModelProto, error) {
	m := &ModelProto{}
	names := map[protowire.Number]string{1: "ir_version", 2: "producer_name", 3: "producer_version", 4: "domain",
		5: "model_version", 6: "doc_string", 7: "graph", 8: "opset_import", 14: "metadata_props"}
	err := walk(b, 0, "", names, func(f *field) error {
		switch f.num {
		case 1:
			return f.int64(&m.IRVersion)
		case 2:
			return f.str(&m.ProducerName)
		case 3:
			return f.str(&m.ProducerVersion)
		case 4:
			return f.str(&m.Domain)
		case 5:
			return f.int64(&m.ModelVersion)
		case 6:
			return f.str(&m.DocString)
		case 7:
			if err := f.want(protowire.BytesType); err != nil {
				return err
			}
			if m.Graph == nil {
				m.Graph = &GraphProto{}
			}
			return decodeGraph(f.b, f.off, f.path, m.Graph)
		case 8:
			if err := f.want(protowire.BytesType); err != nil {
				return err
			}
			var o OperatorSetIDProto
			if err := decodeOpset(f.b, f.off, idx(f.path, len(m.OpsetImport)), &o); err != nil {
				return err
			}
			m.OpsetImport = append(m.OpsetImport, o)
		case 14:
			if err := f.want(protowire.BytesType); err != nil {
				return err
			}
			var e StringStringEntryProto
			if err := decodeEntry(f.b, f.off, idx(f.path, len(m.MetadataProps)), &e); err != nil {
				return err
			}
			m.MetadataProps = append(m.MetadataProps, e)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

func decodeOpset(b []byte, base int, path string, o *OperatorSetIDProto) error {
	return walk(b, base, path, map[protowire.Number]string{1: "domain", 2: "version"}, func(f *field) error {
		if f.num == 1 {
			return f.str(&o.Domain)
		}
		return f.int64(&o.Version)
	})
}

func decodeEntry(b []byte, base int, path string, e *StringStringEntryProto) error {
	return walk(b, base, path, map[protowire.Number]string{1: "key", 2: "value"}, func(f *field) error {
		if f.num == 1 {
			return f.str(&e.Key)
		}
		return f.str(&e.Value)
	})
}

func decodeGraph(b []byte, base int, path string, g *GraphProto) error {
	names := map[protowire.Number]string{1: "node", 2: "name", 5: "initializer", 10: "doc_string",
		11: "input", 12: "output", 13: "value_info"}
	return walk(b, base, path, names, func(f *field) error {
		switch f.num {
		case 2:
			return f.str(&g.Name)
		case 10:
			return f.str(&g.DocString)
		}
		if err := f.want(protowire.BytesType); err != nil {
			return err
		}
		switch f.num {
		case 1:
			var n NodeProto
			if err := decodeNode(f.b, f.off, idx(f.path, len(g.Node)), &n); err != nil {
				return err
			}
			g.Node = append(g.Node, n)
		case 5:
			var t TensorProto
			if err := decodeTensor(f.b, f.off, idx(f.path, len(g.Initializer)), &t); err != nil {
				return err
			}
			g.Initializer = append(g.Initializer, t)
		case 11, 12, 13:
			list := map[protowire.Number]*[]ValueInfoProto{11: &g.Input, 12: &g.Output, 13: &g.ValueInfo}[f.num]
			var v ValueInfoProto
			if err := decodeValueInfo(f.b, f.off, idx(f.path, len(*list)), &v); err != nil {
				return err
			}
			*list = append(*list, v)
		}
		return nil
	})
}

func decodeNode(b []byte, base int, path string, n *NodeProto) error {
	names := map[protowire.Number]string{1: "input", 2: "output", 3: "name", 4: "op_type", 5: "attribute",
		6: "doc_string", 7: "domain"}
	return walk(b, base, path, names, func(f *field) error {
		var s string
		switch f.num {
		case 1, 2:
			if err := f.str(&s); err != nil {
				return err
			}
			if f.num == 1 {
				n.Input = append(n.Input, s)
			} else {
				n.Output = append(n.Output, s)
			}
		case 3:
			return f.str(&n.Name)
		case 4:
			return f.str(&n.OpType)
		case 5:
			if err := f.want(protowire.BytesType); err != nil {
				return err
			}
			var a AttributeProto
			if err := decodeAttribute(f.b, f.off, idx(f.path, len(n.Attribute)), &a); err != nil {
				return err
			}
			n.Attribute = append(n.Attribute, a)
		case 6:
			return f.str(&n.DocString)
		case 7:
			return f.str(&n.Domain)
		}
		return nil
	})
}

func decodeAttribute(b []byte, base int, path string, a *AttributeProto) error {
	names := map[protowire.Number]string{1: "name", 2: "f", 3: "i", 4: "s", 5: "t", 7: "floats", 8: "ints", 20: "type"}
	return walk(b, base, path, names, func(f *field) error {
		switch f.num {
		case 1:
			return f.str(&a.Name)
		case 2:
			if err := f.want(protowire.Fixed32Type); err != nil {
				return err
			}
			a.F = math.Float32frombits(uint32(f.u))
		case 3:
			return f.int64(&a.I)
		case 4:
			if err := f.want(protowire.BytesType); err != nil {
				return err
			}
			a.S = f.b
		case 5:
			if err := f.want(protowire.BytesType); err != nil {
				return err
			}
			a.T = &TensorProto{}
			return decodeTensor(f.b, f.off, f.path, a.T)
		case 7:
			return f.float32s(&a.Floats)
		case 8:
			return f.int64s(&a.Ints)
		case 20:
			var t int32
			if err := f.int32(&t); err != nil {
				return err
			}
			a.Type = AttributeType(t)
		}
		return nil
	})
}

func decodeTensor(b []byte, base int, path string, t *TensorProto) error {
	names := map[protowire.Number]string{1: "dims", 2: "data_type", 3: "segment", 4: "float_data", 5: "int32_data",
		7: "int64_data", 8: "name", 9: "raw_data", 14: "data_location"}
	return walk(b, base, path, names, func(f *field) error {
		switch f.num {
		case 1:
			return f.int64s(&t.Dims)
		case 2:
			var v int32
			if err := f.int32(&v); err != nil {
				return err
			}
			t.DataType = DataType(v)
		case 3:
			if err := f.want(protowire.BytesType); err != nil {
				return err
			}
			t.HasSegment = true
		case 4:
			return f.float32s(&t.FloatData)
		case 5:
			var v []int64
			if err := f.int64s(&v); err != nil {
				return err
			}
			for _, x := range v {
				t.Int32Data = append(t.Int32Data, int32(x))
			}
		case 7:
			return f.int64s(&t.Int64Data)
		case 8:
			return f.str(&t.Name)
		case 9:
			if err := f.want(protowire.BytesType); err != nil {
				return err
			}
			t.RawData = f.b
		case 14:
			return f.int32(&t.DataLocation)
		}
		return nil
	})
}

func decodeValueInfo(b []byte, base int, path string, v *ValueInfoProto) error {
	return walk(b, base, path, map[protowire.Number]string{1: "name", 2: "type"}, func(f *field) error {
		if f.num == 1 {
			return f.str(&v.Name)
		}
		if err := f.want(protowire.BytesType); err != nil {
			return err
		}
		// TypeProto: only tensor_type (1) is read.
		return walk(f.b, f.off, f.path, map[protowire.Number]string{1: "tensor_type"}, func(f *field) error {
			if err := f.want(protowire.BytesType); err != nil {
				return err
			}
			tt := &TensorTypeProto{}
			v.Type = tt
			return walk(f.b, f.off, f.path, map[protowire.Number]string{1: "elem_type", 2: "shape"}, func(f *field) error {
				if f.num == 1 {
					var e int32
					if err := f.int32(&e); err != nil {
						return err
					}
					tt.ElemType = DataType(e)
					return nil
				}
				if err := f.want(protowire.BytesType); err != nil {
					return err
				}
				tt.HasShape = true
				return walk(f.b, f.off, f.path, map[protowire.Number]string{1: "dim"}, func(f *field) error {
					if err := f.want(protowire.BytesType); err != nil {
						return err
					}
					var d DimProto
					err := walk(f.b, f.off, idx(f.path, len(tt.Shape)), map[protowire.Number]string{1: "dim_value", 2: "dim_param"}, func(f *field) error {
						if f.num == 1 {
							d.HasValue = true
							return f.int64(&d.Value)
						}
						return f.str(&d.Param)
					})
					if err != nil {
						return err
					}
					tt.Shape = append(tt.Shape, d)
					return nil
				})
			})
		})
	})
}
