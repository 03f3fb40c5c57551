package onnx

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/pnasml/pnas/ir"
)

// fusedNet uses every fused epilogue the IR has: conv2d with bias, residual
// and ReLU6; conv2d with ReLU; add with ReLU6; dense with ReLU; batchnorm
// and an identity activation on a vector.
func fusedNet(t testing.TB) *ir.Model {
	t.Helper()
	b := ir.NewBuilder("fused", 3, 7, 7, rand.New(rand.NewPCG(11, 12)))
	x := b.ConvFull("stem", b.Input(), 8, [2]int{3, 3}, [2]int{2, 2}, [4]int{1, 0, 1, 1}, 1, true, nil, nil) // 8x4x3
	y := b.ConvFull("dw", x, 8, [2]int{3, 3}, [2]int{1, 1}, [4]int{1, 1, 1, 1}, 8, true, nil, nil)
	z := b.ConvFull("pw", y, 8, [2]int{1, 1}, [2]int{1, 1}, [4]int{}, 1, false, nil, nil)
	s := b.Add("sum", z, x)
	p := b.GlobalPool("pool", s)
	f := b.Flatten("flatten", p)
	f = b.BatchNorm("bn_vec", f, nil, nil, nil, nil)
	f = b.Act("noop", f, ir.ActNone)
	h := b.Dense("hidden", f, 6, nil, nil)
	o := b.Dense("fc", h, 4, nil, nil)
	raw := b.Raw()
	for i := range raw.Ops {
		op := &raw.Ops[i]
		switch op.Name {
		case "stem":
			op.Activation = ir.ActReLU
		case "pw":
			op.Inputs = append(op.Inputs, y) // residual
			op.Activation = ir.ActReLU6
		case "sum":
			op.Activation = ir.ActReLU6
		case "hidden":
			op.Activation = ir.ActReLU
		}
	}
	m, err := b.Model(o)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestExportRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, m := range []*ir.Model{tinyNet(t), fusedNet(t)} {
		b, err := Export(m)
		if err != nil {
			t.Fatalf("%s: %v", m.Name, err)
		}
		b2, err := Export(m)
		if err != nil || !bytes.Equal(b, b2) {
			t.Fatalf("%s: export is not deterministic (%v)", m.Name, err)
		}
		back, err := Import(b, Options{})
		if err != nil {
			t.Fatalf("%s: %v", m.Name, err)
		}
		x := randn(rng, 3*numel(m.Input.Shape), 2)
		want := run(t, m, x, 3)
		got := run(t, back, x, 3)
		if r := relDiff(t, got, want); r > 1e-6 {
			t.Errorf("%s: round trip differs by %.3g (relative)\ngot  %v\nwant %v", m.Name, r, got, want)
		}
		if back.Name != m.Name || back.Input.Name != m.Input.Name || back.Output != m.Output {
			t.Errorf("%s: names: model %q input %q output %q", m.Name, back.Name, back.Input.Name, back.Output)
		}
	}
}

// The expansion of fused epilogues into ONNX nodes.
func TestExportNodes(t *testing.T) {
	b, err := Export(fusedNet(t))
	if err != nil {
		t.Fatal(err)
	}
	mp, err := DecodeModel(b)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, n := range mp.Graph.Node {
		got = append(got, n.OpType+" "+n.Name+" "+strings.Join(n.Input, ",")+" -> "+strings.Join(n.Output, ","))
	}
	want := []string{
		"Conv stem input,stem.weight,stem.bias -> stem/pre",
		"Relu stem/relu stem/pre -> stem",
		"Conv dw stem,dw.weight,dw.bias -> dw",
		"Conv pw dw,pw.weight -> pw/pre",
		"Add pw/add pw/pre,dw -> pw/sum",
		"Clip pw/relu6 pw/sum,relu6.min,relu6.max -> pw",
		"Add sum pw,stem -> sum/pre",
		"Clip sum/relu6 sum/pre,relu6.min,relu6.max -> sum",
		"GlobalAveragePool pool sum -> pool",
		"Flatten flatten pool -> flatten",
		"BatchNormalization bn_vec flatten,bn_vec.scale,bn_vec.bias,bn_vec.mean,bn_vec.var -> bn_vec",
		"Identity noop bn_vec -> noop",
		"Gemm hidden noop,hidden.weight,hidden.bias -> hidden/pre",
		"Relu hidden/relu hidden/pre -> hidden",
		"Gemm fc hidden,fc.weight,fc.bias -> fc",
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("nodes (-want +got):\n%s", d)
	}
	if len(mp.OpsetImport) != 1 || mp.OpsetImport[0].Version != ExportOpset || mp.IRVersion != 7 {
		t.Errorf("opset %+v ir_version %d", mp.OpsetImport, mp.IRVersion)
	}
	in := mp.Graph.Input[0].Type
	if d := cmp.Diff([]DimProto{{Param: "N"}, {Value: 3, HasValue: true}, {Value: 7, HasValue: true}, {Value: 7, HasValue: true}}, in.Shape); d != "" {
		t.Errorf("input shape (-want +got):\n%s", d)
	}
}

func TestExportInputSpec(t *testing.T) {
	m := tinyNet(t)
	m.Input.Mean = []float32{0.25, 0.5}
	m.Input.Std = []float32{0.125, 2}
	m.Input.Labels = strings.Split("a b c d e f g h i j", " ")
	b, err := Export(m)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Import(b, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(m.Input, back.Input); d != "" {
		t.Errorf("input spec (-want +got):\n%s", d)
	}
	back, err = Import(b, Options{Labels: m.Input.Labels})
	if err != nil {
		t.Fatal(err)
	}
	if back.Input.Mean != nil {
		t.Errorf("options must replace the recorded spec, got mean %v", back.Input.Mean)
	}
}

func TestExportErrors(t *testing.T) {
	m := tinyNet(t)
	m.Ops[0].Stride = nil
	if _, err := Export(m); err == nil || !strings.Contains(err.Error(), `op "stem.conv": stride`) {
		t.Errorf("unverified model: got %v", err)
	}
	// a tensor named like a weight key does not clash with the initializer
	m = tinyNet(t)
	m.Ops[0].Output = "stem.conv.weight"
	m.Ops[1].Inputs[0] = "stem.conv.weight"
	b, err := Export(m)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Import(b, Options{})
	if err != nil {
		t.Fatal(err)
	}
	x := randn(rand.New(rand.NewPCG(1, 1)), numel(m.Input.Shape), 1)
	if r := relDiff(t, run(t, back, x, 1), run(t, m, x, 1)); r > 1e-6 {
		t.Errorf("renamed initializer: differs by %.3g", r)
	}
}
