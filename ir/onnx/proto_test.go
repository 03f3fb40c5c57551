package onnx

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/encoding/protowire"
)

// fullModel sets every field of the subset.
func fullModel() *ModelProto {
	return &ModelProto{
		IRVersion: 8, ProducerName: "p", ProducerVersion: "1.2", Domain: "org.test", ModelVersion: 3, DocString: "doc",
		OpsetImport:   []OperatorSetIDProto{{Version: 13}, {Domain: "com.example", Version: 1}},
		MetadataProps: []StringStringEntryProto{{Key: "k", Value: "v"}},
		Graph: &GraphProto{
			Name: "g", DocString: "graph doc",
			Node: []NodeProto{{
				Input: []string{"x", "", "w"}, Output: []string{"y"}, Name: "n0", OpType: "Op", Domain: "d", DocString: "nd",
				Attribute: []AttributeProto{
					aFloat("f", -1.5), aInt("i", -7), aStr("s", "SAME_UPPER"), aInts("ints", 1, -2, 1<<40),
					{Name: "floats", Type: AttrFloats, Floats: []float32{0.5, float32(math.Inf(1))}},
					{Name: "t", Type: AttrTensor, T: &TensorProto{Dims: []int64{2}, DataType: DataInt64, Int64Data: []int64{-1, 4}}},
					aInt("zero", 0),
				},
			}},
			Initializer: []TensorProto{
				ftensor("a", []int64{2, 1}, []float32{1, -2}),
				floatTensor("b", []int{3}, []float32{1, 2, 3}),
				{Name: "c", Dims: []int64{2}, DataType: DataInt32, Int32Data: []int32{-3, 5}},
				{Name: "e", Dims: []int64{1}, DataType: DataFloat, RawData: []byte{0, 0, 0, 0}, DataLocation: 1},
			},
			Input:     []ValueInfoProto{vinfo("x", "N", 3, 224, 224)},
			Output:    []ValueInfoProto{vinfo("y", "batch", 1000)},
			ValueInfo: []ValueInfoProto{vinfo("mid", 0), {Name: "untyped"}, {Name: "scalar", Type: &TensorTypeProto{ElemType: DataFloat, HasShape: true}}},
		},
	}
}

func TestMarshalDecodeRoundTrip(t *testing.T) {
	want := fullModel()
	b := want.Marshal()
	got, err := DecodeModel(b)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("decoded model differs (-want +got):\n%s", d)
	}
	if b2 := got.Marshal(); string(b2) != string(b) {
		t.Fatalf("re-encoding is not byte-identical: %d vs %d bytes", len(b2), len(b))
	}
}

// Repeated numeric fields may be unpacked; unknown fields and groups are
// skipped.
func TestDecodeUnpackedAndUnknown(t *testing.T) {
	var attr []byte
	attr = protowire.AppendTag(attr, 1, protowire.BytesType)
	attr = protowire.AppendString(attr, "pads")
	for _, v := range []int64{1, -1} {
		attr = protowire.AppendTag(attr, 8, protowire.VarintType)
		attr = protowire.AppendVarint(attr, uint64(v))
	}
	for _, v := range []float32{2.5, -3} {
		attr = protowire.AppendTag(attr, 7, protowire.Fixed32Type)
		attr = protowire.AppendFixed32(attr, math.Float32bits(v))
	}
	attr = protowire.AppendTag(attr, 99, protowire.Fixed64Type) // unknown field
	attr = protowire.AppendFixed64(attr, 1)
	attr = protowire.AppendTag(attr, 20, protowire.VarintType)
	attr = protowire.AppendVarint(attr, uint64(AttrInts))
	var n []byte
	n = protowire.AppendTag(n, 5, protowire.BytesType)
	n = protowire.AppendBytes(n, attr)
	n = protowire.AppendTag(n, 50, protowire.StartGroupType) // unknown group
	n = protowire.AppendTag(n, 1, protowire.VarintType)
	n = protowire.AppendVarint(n, 5)
	n = protowire.AppendTag(n, 50, protowire.EndGroupType)
	var g []byte
	g = protowire.AppendTag(g, 1, protowire.BytesType)
	g = protowire.AppendBytes(g, n)
	var m []byte
	m = protowire.AppendTag(m, 7, protowire.BytesType)
	m = protowire.AppendBytes(m, g)
	got, err := DecodeModel(m)
	if err != nil {
		t.Fatal(err)
	}
	a := got.Graph.Node[0].Attribute[0]
	if a.Name != "pads" || a.Type != AttrInts || !cmp.Equal(a.Ints, []int64{1, -1}) || !cmp.Equal(a.Floats, []float32{2.5, -3}) {
		t.Fatalf("got attribute %+v", a)
	}
}

func TestDecodeErrors(t *testing.T) {
	// A node with a packed-ints attribute whose last varint is cut.
	var attr []byte
	attr = protowire.AppendTag(attr, 8, protowire.BytesType)
	attr = protowire.AppendBytes(attr, []byte{0x01, 0x80}) // second varint has no end
	var n []byte
	n = protowire.AppendTag(n, 5, protowire.BytesType)
	n = protowire.AppendBytes(n, attr)
	var g []byte
	g = protowire.AppendTag(g, 1, protowire.BytesType)
	g = protowire.AppendBytes(g, n)
	var packed []byte
	packed = protowire.AppendTag(packed, 7, protowire.BytesType)
	packed = protowire.AppendBytes(packed, g)
	// offsets: model tag 1, len 1, graph tag 1, len 1, node tag 1, len 1,
	// attr tag 1, len 1 -> packed bytes begin at 8; the bad varint at 9.

	wrongType := protowire.AppendTag(nil, 1, protowire.BytesType) // ir_version as bytes
	wrongType = protowire.AppendString(wrongType, "7")

	good := fullModel().Marshal()
	cases := []struct {
		name   string
		in     []byte
		offset int
		want   string
	}{
		{"bad tag", []byte{0x00}, 0, "bad field tag"},
		{"truncated length", []byte{0x3a, 0x05, 0x0a}, 1, "graph: bad length-delimited value"},
		{"truncated varint", []byte{0x08, 0x80}, 1, "ir_version: bad varint value"},
		{"packed varint", packed, 9, "graph.node[0].attribute[0].ints: bad packed varint"},
		{"wrong wire type", wrongType, 0, "ir_version: expected wire type varint, got length-delimited"},
		{"odd packed floats", append(protowire.AppendTag(nil, 7, protowire.BytesType), 7, 0x2a, 5, 0x22, 3, 1, 2, 3), 6,
			"graph.initializer[0].float_data: packed floats: 3 bytes is not a multiple of 4"},
		{"cut model", good[:len(good)-3], -1, "byte"},
	}
	for _, c := range cases {
		_, err := DecodeModel(c.in)
		var de *DecodeError
		if !errors.As(err, &de) {
			t.Errorf("%s: got %v, want a *DecodeError", c.name, err)
			continue
		}
		if c.offset >= 0 && de.Offset != c.offset {
			t.Errorf("%s: offset %d, want %d (%v)", c.name, de.Offset, c.offset, err)
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %q does not contain %q", c.name, err, c.want)
		}
	}
}

// Every truncation of a model either decodes (cut at a field boundary) or
// fails with an offset inside the input; nothing panics, and Import rejects
// all of them cleanly.
func TestDecodeEveryPrefix(t *testing.T) {
	b, err := Export(tinyNet(t))
	if err != nil {
		t.Fatal(err)
	}
	// weights dominate the size: cut the initializers' raw data short so
	// that every prefix stays cheap
	mp, err := DecodeModel(b)
	if err != nil {
		t.Fatal(err)
	}
	for i := range mp.Graph.Initializer {
		in := &mp.Graph.Initializer[i]
		in.RawData = in.RawData[:min(len(in.RawData), 8)]
	}
	b = mp.Marshal()
	failed := 0
	for n := 0; n < len(b); n++ {
		_, err := DecodeModel(b[:n])
		if err != nil {
			failed++
			var de *DecodeError
			if !errors.As(err, &de) || de.Offset < 0 || de.Offset > n {
				t.Fatalf("prefix %d: %v", n, err)
			}
		}
		if _, err := Import(b[:n], Options{}); err == nil {
			t.Fatalf("prefix %d of a model with cut weights imported without error", n)
		}
	}
	if failed < len(b)/2 {
		t.Fatalf("only %d of %d prefixes failed to decode", failed, len(b))
	}
}

func FuzzDecode(f *testing.F) {
	tiny, err := Export(tinyNet(f))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(tiny)
	f.Add(fullModel().Marshal())
	for _, v := range variantModels() {
		f.Add(v.proto.Marshal())
	}
	f.Add([]byte{})
	f.Add([]byte{0x3a, 0x05, 0x0a})
	f.Add([]byte{0x3a, 0x02, 0x0a, 0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeModel(b)
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) || de.Offset < 0 || de.Offset > len(b) {
				t.Fatalf("bad error %v", err)
			}
			return
		}
		if _, err := DecodeModel(m.Marshal()); err != nil {
			t.Fatalf("re-encoded model does not decode: %v", err)
		}
		if im, err := Import(b, Options{}); err == nil {
			if err := im.Verify(); err != nil {
				t.Fatalf("Import returned a model that does not verify: %v", err)
			}
		}
	})
}
