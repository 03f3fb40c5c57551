package onnx

import (
	"encoding/binary"
	"go/parser"
	"go/token"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/pnasml/pnas/internal/testnet"
	"github.com/pnasml/pnas/ir"
	"github.com/pnasml/pnas/ir/interp"
)

// Builders of hand-made ONNX graphs.

func vinfo(name string, dims ...any) ValueInfoProto {
	tt := &TensorTypeProto{ElemType: DataFloat, HasShape: true}
	for _, d := range dims {
		switch d := d.(type) {
		case int:
			tt.Shape = append(tt.Shape, DimProto{Value: int64(d), HasValue: true})
		case string:
			tt.Shape = append(tt.Shape, DimProto{Param: d})
		}
	}
	return ValueInfoProto{Name: name, Type: tt}
}

func node(op, name string, ins, outs []string, attrs ...AttributeProto) NodeProto {
	return NodeProto{OpType: op, Name: name, Input: ins, Output: outs, Attribute: attrs}
}

func aInt(name string, v int64) AttributeProto {
	return AttributeProto{Name: name, Type: AttrInt, I: v}
}

func aFloat(name string, v float32) AttributeProto {
	return AttributeProto{Name: name, Type: AttrFloat, F: v}
}

func aInts(name string, v ...int64) AttributeProto {
	return AttributeProto{Name: name, Type: AttrInts, Ints: v}
}

func aStr(name, v string) AttributeProto {
	return AttributeProto{Name: name, Type: AttrString, S: []byte(v)}
}

// ftensor is a FLOAT tensor in float_data (floatTensor uses raw_data).
func ftensor(name string, dims []int64, data []float32) TensorProto {
	return TensorProto{Name: name, Dims: dims, DataType: DataFloat, FloatData: data}
}

func itensor(name string, data ...int64) TensorProto {
	return TensorProto{Name: name, Dims: []int64{int64(len(data))}, DataType: DataInt64, Int64Data: data}
}

func graphModel(opset int64, in ValueInfoProto, out string, nodes []NodeProto, inits []TensorProto) *ModelProto {
	return &ModelProto{IRVersion: 7, ProducerName: "test", OpsetImport: []OperatorSetIDProto{{Version: opset}},
		Graph: &GraphProto{Name: "g", Node: nodes, Initializer: inits, Input: []ValueInfoProto{in},
			Output: []ValueInfoProto{{Name: out}}}}
}

func randn(rng *rand.Rand, n int, std float64) []float32 {
	d := make([]float32, n)
	for i := range d {
		d[i] = float32(rng.NormFloat64() * std)
	}
	return d
}

// run executes m with the reference interpreter.
func run(t testing.TB, m *ir.Model, x []float32, n int) []float32 {
	t.Helper()
	y, err := interp.Run(m, x, n)
	if err != nil {
		t.Fatal(err)
	}
	return y
}

// relDiff is max|a-b| / max|b|.
func relDiff(t testing.TB, a, b []float32) float64 {
	t.Helper()
	if len(a) != len(b) {
		t.Fatalf("lengths differ: %d vs %d", len(a), len(b))
	}
	var d, m float64
	for i := range a {
		d = max(d, math.Abs(float64(a[i])-float64(b[i])))
		m = max(m, math.Abs(float64(b[i])))
	}
	if m == 0 {
		return d
	}
	return d / m
}

func readF32(t testing.TB, path string) []float32 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b)%4 != 0 {
		t.Fatalf("%s: %d bytes is not a whole number of float32 values", path, len(b))
	}
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}

func writeF32(t testing.TB, path string, v []float32) {
	t.Helper()
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func opTypes(m *ir.Model) []string {
	var s []string
	for _, op := range m.Ops {
		t := string(op.Type)
		if op.Type == ir.OpActivation {
			t += ":" + string(op.Activation)
		}
		s = append(s, t)
	}
	return s
}

// tinyNet is a small MBConv network built with the IR builder.
func tinyNet(t testing.TB) *ir.Model {
	t.Helper()
	b := ir.NewBuilder("tiny", 2, 9, 9, rand.New(rand.NewPCG(7, 7)))
	x := b.ConvBNAct("stem", b.Input(), 8, 3, 1, 1, ir.ActReLU6)
	x = testnet.MBConv(b, "s1.l0", x, 12, 3, 3, 2)
	x = testnet.MBConv(b, "s1.l1", x, 12, 5, 6, 1)
	x = b.ConvBNAct("head", x, 16, 1, 1, 1, ir.ActReLU)
	x = b.GlobalPool("pool", x)
	x = b.Flatten("flatten", x)
	x = b.Dense("fc", x, 10, nil, nil)
	x = b.Softmax("prob", x)
	m, err := b.Model(x)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// The package imports only the standard library, protowire and ir.
func TestImports(t *testing.T) {
	fset := token.NewFileSet()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	allowed := map[string]bool{"google.golang.org/protobuf/encoding/protowire": true, "github.com/pnasml/pnas/ir": true}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, im := range af.Imports {
			p, _ := strconv.Unquote(im.Path.Value)
			if !allowed[p] && strings.Contains(strings.SplitN(p, "/", 2)[0], ".") {
				t.Errorf("%s imports %s", f, p)
			}
		}
	}
}
