package onnx

import (
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/pnasml/pnas/ir"
)

// The variant networks: x [N,2,6,6] -> Conv 3x3/s2 (4 ch, bias) -> ReLU6
// -> GlobalAveragePool -> flatten -> dense 4->3 (bias) [-> Softmax], each
// spelled with a different ONNX op form.

type variantWeights struct {
	convW, convB, fcW, fcB []float32 // fcW is [3,4] (units, features)
}

func newVariantWeights() variantWeights {
	rng := rand.New(rand.NewPCG(3, 4))
	return variantWeights{convW: randn(rng, 4*2*3*3, 0.5), convB: randn(rng, 4, 0.3),
		fcW: randn(rng, 3*4, 0.5), fcB: randn(rng, 3, 0.3)}
}

type variant struct {
	name    string
	proto   *ModelProto
	softmax bool
	ops     []string // expected IR op types
}

func convNode(name, in, out string) NodeProto {
	return node("Conv", name, []string{in, "conv.W", "conv.B"}, []string{out},
		aInts("kernel_shape", 3, 3), aInts("strides", 2, 2), aInts("pads", 1, 1, 1, 1), aInts("dilations", 1, 1), aInt("group", 1))
}

func variantModels() []variant {
	w := newVariantWeights()
	wt := make([]float32, 12) // [4,3] for MatMul and Gemm transB=0
	for u := 0; u < 3; u++ {
		for f := 0; f < 4; f++ {
			wt[f*3+u] = w.fcW[u*4+f]
		}
	}
	inits := func(extra ...TensorProto) []TensorProto {
		return append([]TensorProto{floatTensor("conv.W", []int{4, 2, 3, 3}, w.convW), ftensor("conv.B", []int64{4}, w.convB)}, extra...)
	}
	in := vinfo("x", "N", 2, 6, 6)
	base := []string{"conv2d", "activation:relu6", "global_avg_pool", "flatten", "dense"}
	scalar := func(name string, v float32) TensorProto { return floatTensor(name, nil, []float32{v}) }
	return []variant{{
		name: "opset13 Clip inputs, Flatten, Gemm transB=1",
		ops:  base,
		proto: graphModel(13, in, "logits", []NodeProto{
			convNode("conv", "x", "c"),
			node("Clip", "clip", []string{"c", "lo", "hi"}, []string{"r"}),
			node("GlobalAveragePool", "gap", []string{"r"}, []string{"p"}),
			node("Flatten", "flat", []string{"p"}, []string{"f"}, aInt("axis", 1)),
			node("Gemm", "fc", []string{"f", "fc.W", "fc.B"}, []string{"logits"}, aFloat("alpha", 1), aFloat("beta", 1), aInt("transB", 1)),
		}, inits(scalar("lo", 0), scalar("hi", 6), floatTensor("fc.W", []int{3, 4}, w.fcW), floatTensor("fc.B", []int{3}, w.fcB))),
	}, {
		name: "opset4 Clip attributes, Reshape attribute, Gemm transB=0",
		ops:  base,
		proto: graphModel(4, in, "logits", []NodeProto{
			convNode("conv", "x", "c"),
			node("Clip", "clip", []string{"c"}, []string{"r"}, aFloat("min", 0), aFloat("max", 6)),
			node("GlobalAveragePool", "gap", []string{"r"}, []string{"p"}),
			node("Reshape", "reshape", []string{"p"}, []string{"f"}, aInts("shape", 0, -1)),
			node("Gemm", "fc", []string{"f", "fc.W", "fc.B"}, []string{"logits"}, aInt("broadcast", 1)),
		}, inits(floatTensor("fc.W", []int{4, 3}, wt), ftensor("fc.B", []int64{1, 3}, w.fcB))),
	}, {
		name:    "opset13 Constant nodes, Reshape input, MatMul+Add, Softmax",
		ops:     append(append([]string{}, base...), "softmax"),
		softmax: true,
		proto: graphModel(13, in, "prob", []NodeProto{
			node("Constant", "k0", nil, []string{"lo"}, AttributeProto{Name: "value", Type: AttrTensor, T: &TensorProto{DataType: DataFloat, FloatData: []float32{0}}}),
			node("Constant", "k6", nil, []string{"hi"}, AttributeProto{Name: "value", Type: AttrTensor, T: ptr(scalar("", 6))}),
			node("Constant", "kshape", nil, []string{"shape"}, AttributeProto{Name: "value", Type: AttrTensor, T: ptr(itensor("", -1, 4))}),
			convNode("conv", "x", "c"),
			node("Clip", "clip", []string{"c", "lo", "hi"}, []string{"r"}),
			node("GlobalAveragePool", "gap", []string{"r"}, []string{"p"}),
			node("Reshape", "reshape", []string{"p", "shape"}, []string{"f"}),
			node("MatMul", "mm", []string{"f", "fc.W"}, []string{"mm_out"}),
			node("Add", "bias", []string{"fc.B", "mm_out"}, []string{"logits"}),
			node("Softmax", "softmax", []string{"logits"}, []string{"prob"}),
		}, inits(floatTensor("fc.W", []int{4, 3}, wt), floatTensor("fc.B", []int{3}, w.fcB))),
	}, {
		name:    "opset10 Identity, Dropout, Reshape [1,-1], Gemm without C, Add bias, Softmax axis 1",
		ops:     append(append([]string{}, base...), "softmax"),
		softmax: true,
		proto: graphModel(10, in, "prob", []NodeProto{
			convNode("conv", "x", "c"),
			node("Identity", "id", []string{"c"}, []string{"c2"}),
			node("Clip", "clip", []string{"c2"}, []string{"r"}, aFloat("min", 0), aFloat("max", 6)),
			node("GlobalAveragePool", "gap", []string{"r"}, []string{"p"}),
			node("Dropout", "drop", []string{"p"}, []string{"pd", ""}, aFloat("ratio", 0.5)),
			node("Reshape", "reshape", []string{"pd", "shape"}, []string{"f"}),
			node("Gemm", "fc", []string{"f", "fc.W"}, []string{"g"}, aInt("transB", 1)),
			node("Add", "bias", []string{"g", "fc.B"}, []string{"logits"}),
			node("Softmax", "softmax", []string{"logits"}, []string{"prob"}, aInt("axis", 1)),
		}, inits(itensor("shape", 1, -1), floatTensor("fc.W", []int{3, 4}, w.fcW), floatTensor("fc.B", []int{3}, w.fcB))),
	}}
}

func ptr[T any](v T) *T { return &v }

// variantReference builds the variant network with the IR builder.
func variantReference(t *testing.T, softmax bool) *ir.Model {
	w := newVariantWeights()
	b := ir.NewBuilder("ref", 2, 6, 6, nil)
	x := b.ConvFull("conv", b.Input(), 4, [2]int{3, 3}, [2]int{2, 2}, [4]int{1, 1, 1, 1}, 1, true, w.convW, w.convB)
	x = b.Act("clip", x, ir.ActReLU6)
	x = b.GlobalPool("gap", x)
	x = b.Flatten("flat", x)
	x = b.Dense("fc", x, 3, w.fcW, w.fcB)
	if softmax {
		x = b.Softmax("softmax", x)
	}
	m, err := b.Model(x)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestImportVariants(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	x := randn(rng, 3*2*6*6, 2) // large enough that both ReLU6 bounds are hit
	for _, v := range variantModels() {
		m, err := Import(v.proto.Marshal(), Options{})
		if err != nil {
			t.Errorf("%s: %v", v.name, err)
			continue
		}
		if d := cmp.Diff(v.ops, opTypes(m)); d != "" {
			t.Errorf("%s: op types (-want +got):\n%s", v.name, d)
		}
		want := run(t, variantReference(t, v.softmax), x, 3)
		got := run(t, m, x, 3)
		if r := relDiff(t, got, want); r > 1e-6 {
			t.Errorf("%s: output differs from the reference by %.3g (relative)\ngot  %v\nwant %v", v.name, r, got, want)
		}
	}
}

// blockModel is an inverted-residual block: 1x1 conv + BN + Relu, 3x3
// depthwise (auto_pad SAME_UPPER) + BN + Clip(0,6), 1x1 projection with
// bias, residual Add with the graph input, pool, Flatten, Gemm.
func blockModel(rng *rand.Rand) (*ModelProto, map[string][]float32) {
	w := map[string][]float32{"e.W": randn(rng, 6*3, 0.6), "dw.W": randn(rng, 6*9, 0.6), "p.W": randn(rng, 3*6, 0.5),
		"p.B": randn(rng, 3, 0.2), "fc.W": randn(rng, 5*3, 0.5), "fc.B": randn(rng, 5, 0.2)}
	for _, bn := range []string{"bn1", "bn2"} {
		w[bn+".s"] = randn(rng, 6, 0.3)
		w[bn+".b"] = randn(rng, 6, 0.3)
		w[bn+".m"] = randn(rng, 6, 0.3)
		v := randn(rng, 6, 0.3)
		for i := range v {
			v[i] = 0.5 + v[i]*v[i]
		}
		w[bn+".v"] = v
	}
	dims := map[string][]int{"e.W": {6, 3, 1, 1}, "dw.W": {6, 1, 3, 3}, "p.W": {3, 6, 1, 1}, "p.B": {3}, "fc.W": {5, 3}, "fc.B": {5}}
	var inits []TensorProto
	for _, k := range []string{"e.W", "dw.W", "p.W", "p.B", "fc.W", "fc.B", "bn1.s", "bn1.b", "bn1.m", "bn1.v", "bn2.s", "bn2.b", "bn2.m", "bn2.v"} {
		d := dims[k]
		if d == nil {
			d = []int{6}
		}
		inits = append(inits, floatTensor(k, d, w[k]))
	}
	inits = append(inits, floatTensor("six", nil, []float32{6}), floatTensor("zero", []int{1}, []float32{0}))
	bn := func(name, in, out string) NodeProto {
		return node("BatchNormalization", name, []string{in, name + ".s", name + ".b", name + ".m", name + ".v"}, []string{out},
			aFloat("epsilon", 1e-3), aFloat("momentum", 0.9))
	}
	nodes := []NodeProto{
		node("Conv", "expand", []string{"x", "e.W"}, []string{"e"}),
		bn("bn1", "e", "e_bn"),
		node("Relu", "relu", []string{"e_bn"}, []string{"e_r"}),
		node("Conv", "dw", []string{"e_r", "dw.W"}, []string{"d"}, aInt("group", 6), aStr("auto_pad", "SAME_UPPER")),
		bn("bn2", "d", "d_bn"),
		node("Clip", "relu6", []string{"d_bn", "zero", "six"}, []string{"d_r"}),
		node("Conv", "project", []string{"d_r", "p.W", "p.B"}, []string{"pr"}, aInts("kernel_shape", 1, 1)),
		node("Add", "residual", []string{"x", "pr"}, []string{"sum"}),
		node("GlobalAveragePool", "gap", []string{"sum"}, []string{"g"}),
		node("Flatten", "flat", []string{"g"}, []string{"f"}),
		node("Gemm", "fc", []string{"f", "fc.W", "fc.B"}, []string{"logits"}, aInt("transB", 1)),
	}
	return graphModel(14, vinfo("x", 1, 3, 5, 5), "logits", nodes, inits), w
}

func TestImportBlock(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 9))
	mp, w := blockModel(rng)
	m, err := Import(mp.Marshal(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	b := ir.NewBuilder("ref", 3, 5, 5, nil)
	x := b.ConvFull("e", b.Input(), 6, [2]int{1, 1}, [2]int{1, 1}, [4]int{}, 1, false, w["e.W"], nil)
	x = b.BatchNorm("bn1", x, w["bn1.s"], w["bn1.b"], w["bn1.m"], w["bn1.v"])
	x = b.Act("relu", x, ir.ActReLU)
	x = b.ConvFull("dw", x, 6, [2]int{3, 3}, [2]int{1, 1}, [4]int{1, 1, 1, 1}, 6, false, w["dw.W"], nil)
	x = b.BatchNorm("bn2", x, w["bn2.s"], w["bn2.b"], w["bn2.m"], w["bn2.v"])
	x = b.Act("relu6", x, ir.ActReLU6)
	x = b.ConvFull("p", x, 3, [2]int{1, 1}, [2]int{1, 1}, [4]int{}, 1, true, w["p.W"], w["p.B"])
	x = b.Add("res", b.Input(), x)
	x = b.GlobalPool("gap", x)
	x = b.Flatten("flat", x)
	x = b.Dense("fc", x, 5, w["fc.W"], w["fc.B"])
	ref, err := b.Model(x)
	if err != nil {
		t.Fatal(err)
	}
	in := randn(rng, 2*3*5*5, 2)
	if r := relDiff(t, run(t, m, in, 2), run(t, ref, in, 2)); r > 1e-6 {
		t.Fatalf("block differs from the reference by %.3g", r)
	}
	for _, op := range m.Ops {
		if op.Type == ir.OpBatchNorm && op.Epsilon != float64(float32(1e-3)) {
			t.Errorf("%s: epsilon %v", op.Name, op.Epsilon)
		}
	}
}

func TestAutoPad(t *testing.T) {
	w := make([]float32, 2*2*3*3)
	for _, c := range []struct {
		mode string
		in   int
		want []int
	}{
		{"SAME_UPPER", 6, []int{0, 0, 1, 1}},
		{"SAME_LOWER", 6, []int{1, 1, 0, 0}},
		{"SAME_UPPER", 5, []int{1, 1, 1, 1}},
		{"VALID", 6, []int{0, 0, 0, 0}},
		{"NOTSET", 6, []int{0, 0, 0, 0}},
	} {
		mp := graphModel(13, vinfo("x", "N", 2, c.in, c.in), "o", []NodeProto{
			node("Conv", "conv", []string{"x", "w"}, []string{"c"}, aInts("strides", 2, 2), aStr("auto_pad", c.mode)),
			node("GlobalAveragePool", "gap", []string{"c"}, []string{"g"}),
			node("Flatten", "f", []string{"g"}, []string{"o"}),
		}, []TensorProto{floatTensor("w", []int{2, 2, 3, 3}, w)})
		m, err := Import(mp.Marshal(), Options{})
		if err != nil {
			t.Fatalf("%s: %v", c.mode, err)
		}
		if got := m.Ops[0].Pads; !cmp.Equal(got, c.want) {
			t.Errorf("%s on %d: pads %v, want %v", c.mode, c.in, got, c.want)
		}
	}
}

func TestImportNamesAndOptions(t *testing.T) {
	w := make([]float32, 2*2)
	mp := graphModel(13, vinfo(".input:0", "batch", 2, 3, 3), "out put", []NodeProto{
		node("Conv", "/features/0/Conv", []string{".input:0", "w"}, []string{"/features/0/Conv_output_0"}),
		node("Relu", "", []string{"/features/0/Conv_output_0"}, []string{"r#1"}),
		node("Relu", "dup", []string{"r#1"}, []string{"dup"}),
		node("Relu", "dup", []string{"dup"}, []string{"dup_2"}),
		node("GlobalAveragePool", "dup", []string{"dup_2"}, []string{"g"}),
		node("Flatten", "", []string{"g"}, []string{""}),
	}, []TensorProto{floatTensor("w", []int{2, 2, 1, 1}, w)})
	mp.Graph.Node[5].Output = []string{"out put"}
	mp.Graph.Name = "graph name"
	m, err := Import(mp.Marshal(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	var names, outs []string
	for _, op := range m.Ops {
		names = append(names, op.Name)
		outs = append(outs, op.Output)
	}
	if d := cmp.Diff([]string{"features/0/Conv", "r_1", "dup", "dup_2", "dup_3", "out_put"}, names); d != "" {
		t.Errorf("op names (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"features/0/Conv_output_0", "r_1", "dup", "dup_2", "g", "out_put"}, outs); d != "" {
		t.Errorf("tensor names (-want +got):\n%s", d)
	}
	if m.Input.Name != "input:0" || m.Output != "out_put" || m.Name != "graph name" {
		t.Errorf("input %q output %q name %q", m.Input.Name, m.Output, m.Name)
	}
	if m.Input.Mean != nil || m.Input.Std != nil || m.Input.Labels != nil {
		t.Errorf("input spec without options: %+v", m.Input)
	}
	opts := Options{Name: "net", Mean: []float32{0.5, 0.4}, Std: []float32{0.2, 0.3}, Labels: []string{"a", "b"}}
	m, err = Import(mp.Marshal(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if m.Name != "net" || !cmp.Equal(m.Input.Mean, opts.Mean) || !cmp.Equal(m.Input.Std, opts.Std) || !cmp.Equal(m.Input.Labels, opts.Labels) {
		t.Errorf("options not applied: name %q input %+v", m.Name, m.Input)
	}
	if _, err := Import(mp.Marshal(), Options{Labels: []string{"only one"}}); err == nil || !strings.Contains(err.Error(), "labels") {
		t.Errorf("wrong label count: got %v", err)
	}
}

func TestImportErrors(t *testing.T) {
	variant0 := func() *ModelProto { return variantModels()[0].proto }
	block := func() *ModelProto { mp, _ := blockModel(rand.New(rand.NewPCG(1, 1))); return mp }
	nodeNamed := func(mp *ModelProto, name string) *NodeProto {
		for i := range mp.Graph.Node {
			if mp.Graph.Node[i].Name == name {
				return &mp.Graph.Node[i]
			}
		}
		panic(name)
	}
	initNamed := func(mp *ModelProto, name string) *TensorProto {
		for i := range mp.Graph.Initializer {
			if mp.Graph.Initializer[i].Name == name {
				return &mp.Graph.Initializer[i]
			}
		}
		panic(name)
	}
	setAttr := func(n *NodeProto, a AttributeProto) {
		for i := range n.Attribute {
			if n.Attribute[i].Name == a.Name {
				n.Attribute[i] = a
				return
			}
		}
		n.Attribute = append(n.Attribute, a)
	}
	cases := []struct {
		name string
		base func() *ModelProto
		edit func(mp *ModelProto)
		want string
	}{
		{"unsupported op", variant0, func(mp *ModelProto) { nodeNamed(mp, "gap").OpType = "MaxPool" },
			`node "gap" (MaxPool): unsupported op "MaxPool"`},
		{"dilation", variant0, func(mp *ModelProto) { setAttr(nodeNamed(mp, "conv"), aInts("dilations", 2, 2)) },
			`node "conv" (Conv): attribute "dilations": [2 2], only dilation 1 is supported`},
		{"unknown attribute", variant0, func(mp *ModelProto) { setAttr(nodeNamed(mp, "gap"), aInt("foo", 1)) },
			`node "gap" (GlobalAveragePool): attribute "foo" is not supported`},
		{"clip bounds", variant0, func(mp *ModelProto) { *initNamed(mp, "hi") = floatTensor("hi", nil, []float32{5}) },
			`node "clip" (Clip): bounds min=0 max=5`},
		{"clip attribute in opset 13", variant0, func(mp *ModelProto) { setAttr(nodeNamed(mp, "clip"), aFloat("max", 6)) },
			`node "clip" (Clip): attribute "max" is not supported (in opset 13 the bounds are inputs)`},
		{"gemm alpha", variant0, func(mp *ModelProto) { setAttr(nodeNamed(mp, "fc"), aFloat("alpha", 2)) },
			`node "fc" (Gemm): attribute "alpha": 2, only 1 is supported`},
		{"gemm transA", variant0, func(mp *ModelProto) { setAttr(nodeNamed(mp, "fc"), aInt("transA", 1)) },
			`node "fc" (Gemm): attribute "transA": 1`},
		{"attribute type", variant0, func(mp *ModelProto) { setAttr(nodeNamed(mp, "fc"), aFloat("transB", 1)) },
			`node "fc" (Gemm): attribute "transB": expected type INT, got FLOAT`},
		{"gemm weight dims", variant0, func(mp *ModelProto) { setAttr(nodeNamed(mp, "fc"), aInt("transB", 0)) },
			`node "fc" (Gemm): weight "fc.W": dims [3 4], expected [4, units] (transB=0)`},
		{"double weights", variant0, func(mp *ModelProto) { initNamed(mp, "conv.W").DataType = DataDouble },
			`node "conv" (Conv): input 1 "conv.W": data type DOUBLE (11) is not supported here (expected FLOAT)`},
		{"raw_data size", variant0, func(mp *ModelProto) { t := initNamed(mp, "conv.W"); t.RawData = t.RawData[:8] },
			`input 1 "conv.W": raw_data has 8 bytes, dims [4 2 3 3] need 288`},
		{"external data", variant0, func(mp *ModelProto) { initNamed(mp, "conv.W").DataLocation = 1 },
			`external file`},
		{"flatten axis", variant0, func(mp *ModelProto) { setAttr(nodeNamed(mp, "flat"), aInt("axis", 2)) },
			`node "flat" (Flatten): attribute "axis": 2`},
		{"reshape target", func() *ModelProto { return variantModels()[3].proto },
			func(mp *ModelProto) { *initNamed(mp, "shape") = itensor("shape", 1, 2, 2) },
			`node "reshape" (Reshape): target shape [1 2 2]: only flattening [N,4,1,1] to [N,4] is supported`},
		{"dropout training", func() *ModelProto { return variantModels()[3].proto }, func(mp *ModelProto) {
			n := nodeNamed(mp, "drop")
			n.Input = []string{"p", "", "on"}
			mp.Graph.Initializer = append(mp.Graph.Initializer, TensorProto{Name: "on", DataType: 9, RawData: []byte{1}})
		}, `node "drop" (Dropout): input 2 "on": training_mode is true`},
		{"dropout mask used", func() *ModelProto { return variantModels()[3].proto }, func(mp *ModelProto) {
			nodeNamed(mp, "drop").Output = []string{"pd", "mask"}
			nodeNamed(mp, "reshape").Input[0] = "mask"
		}, `node "drop" (Dropout): output 1 "mask" is used, but only the first output is supported`},
		{"bias of a shared MatMul", func() *ModelProto { return variantModels()[2].proto }, func(mp *ModelProto) {
			n := nodeNamed(mp, "bias")
			n.Input = []string{"fc.B", "mm_id"}
			mp.Graph.Node = append(mp.Graph.Node, node("Identity", "id", []string{"mm_out"}, []string{"mm_id"}),
				node("Relu", "other", []string{"mm_out"}, []string{"other"}))
			// keep the nodes in order: Identity right after MatMul
			g := mp.Graph.Node
			var order []NodeProto
			for _, x := range g[:len(g)-2] {
				order = append(order, x)
				if x.Name == "mm" {
					order = append(order, g[len(g)-2], g[len(g)-1])
				}
			}
			mp.Graph.Node = order
		}, `node "bias" (Add): adding constant "fc.B" is supported only as the bias of a MatMul or bias-free Gemm whose output feeds nothing else`},
		{"bn training", block, func(mp *ModelProto) { setAttr(nodeNamed(mp, "bn1"), aInt("training_mode", 1)) },
			`node "bn1" (BatchNormalization): attribute "training_mode": 1, only inference (0) is supported`},
		{"bn stats dims", block, func(mp *ModelProto) { nodeNamed(mp, "bn1").Input[3] = "p.B" },
			`node "bn1" (BatchNormalization): input 3 "p.B": dims [3], expected [6]`},
		{"auto_pad and pads", block, func(mp *ModelProto) { setAttr(nodeNamed(mp, "dw"), aInts("pads", 1, 1, 1, 1)) },
			`node "dw" (Conv): attribute "auto_pad" "SAME_UPPER" cannot be combined with explicit pads`},
		{"kernel_shape", block, func(mp *ModelProto) { setAttr(nodeNamed(mp, "project"), aInts("kernel_shape", 3, 3)) },
			`node "project" (Conv): attribute "kernel_shape": [3 3] disagrees with the weight dims [3 6 1 1]`},
		{"group", block, func(mp *ModelProto) { setAttr(nodeNamed(mp, "dw"), aInt("group", 4)) },
			`node "dw" (Conv): attribute "group": 4 does not divide the 6 input channels`},
		{"broadcast add", block, func(mp *ModelProto) { nodeNamed(mp, "residual").Input = []string{"x", "e"} },
			`node "residual" (Add): inputs "x" [3 5 5] and "e" [6 5 5]: broadcasting is not supported`},
		{"constant add", block, func(mp *ModelProto) { nodeNamed(mp, "residual").Input = []string{"pr", "p.B"} },
			`node "residual" (Add): adding constant "p.B" is supported only as the bias of a MatMul`},
		{"computed weight", block, func(mp *ModelProto) { nodeNamed(mp, "project").Input[1] = "d" },
			`node "project" (Conv): input 1 "d" must be a constant (initializer or Constant node), got a computed tensor`},
		{"undefined input", block, func(mp *ModelProto) { nodeNamed(mp, "relu").Input[0] = "nope" },
			`node "relu" (Relu): input 0 "nope" is not defined by the graph input, an initializer or an earlier node`},
		{"domain", block, func(mp *ModelProto) { nodeNamed(mp, "relu").Domain = "com.microsoft" },
			`node "relu" (Relu): operator domain "com.microsoft" is not supported`},
		{"batch size", block, func(mp *ModelProto) { mp.Graph.Input[0] = vinfo("x", 4, 3, 5, 5) },
			`input "x": batch dimension is 4, expected a symbolic size or 1`},
		{"symbolic size", block, func(mp *ModelProto) { mp.Graph.Input[0] = vinfo("x", "N", 3, "H", 5) },
			`input "x": dimension 2 is symbolic "H", expected a fixed size`},
		{"two outputs", block, func(mp *ModelProto) {
			mp.Graph.Output = append(mp.Graph.Output, ValueInfoProto{Name: "f"})
		}, `graph has 2 outputs, expected 1`},
		{"two inputs", block, func(mp *ModelProto) { mp.Graph.Input = append(mp.Graph.Input, vinfo("y", 1, 1, 1, 1)) },
			`graph has inputs "x" and "y", expected one image input`},
		{"no opset", block, func(mp *ModelProto) { mp.OpsetImport = []OperatorSetIDProto{{Domain: "ai.onnx.ml", Version: 2}} },
			`opset_import has no entry for the default ONNX domain`},
		{"no graph", block, func(mp *ModelProto) { mp.Graph = nil }, `model has no graph`},
		{"redefined output", block, func(mp *ModelProto) { nodeNamed(mp, "relu").Output[0] = "e" },
			`node "relu" (Relu): output "e" is already defined`},
	}
	for _, c := range cases {
		mp := c.base()
		c.edit(mp)
		_, err := Import(mp.Marshal(), Options{})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got error %v\nwant it to contain %s", c.name, err, c.want)
		}
	}
}

// TestSupportedOpsDocumented checks that the package documentation and
// docs/onnx.md list exactly the operators of the converter table.
func TestSupportedOpsDocumented(t *testing.T) {
	doc, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	inList := false
	for _, l := range strings.Split(string(doc), "\n") {
		if strings.HasPrefix(l, "//\t") {
			inList = true
			for _, op := range strings.Split(strings.TrimPrefix(l, "//\t"), ",") {
				if op = strings.TrimSpace(op); op != "" {
					listed = append(listed, op)
				}
			}
		} else if inList {
			break
		}
	}
	if !slices.Equal(listed, SupportedOps) {
		t.Errorf("doc.go lists %v, the converter table has %v", listed, SupportedOps)
	}
	md, err := os.ReadFile("../../docs/onnx.md")
	if err != nil {
		t.Fatal(err)
	}
	var rows []string
	_, table, ok := strings.Cut(string(md), "| ONNX op | IR | accepted |\n")
	if !ok {
		t.Fatal("docs/onnx.md has no import table (| ONNX op | IR | accepted |)")
	}
	for _, l := range strings.Split(table, "\n") {
		if !strings.HasPrefix(l, "|") {
			break
		}
		if !strings.HasPrefix(l, "| `") {
			continue
		}
		cell := strings.Split(l, "|")[1]
		for _, f := range strings.Split(cell, ",") {
			if op, _, ok := strings.Cut(strings.TrimPrefix(strings.TrimSpace(f), "`"), "`"); ok && !slices.Contains(rows, op) {
				rows = append(rows, op)
			}
		}
	}
	slices.Sort(rows)
	if !slices.Equal(rows, SupportedOps) {
		t.Errorf("docs/onnx.md's import table lists %v, the converter table has %v", rows, SupportedOps)
	}
}
