package onnx

import (
	"encoding/json"
	"fmt"

	"github.com/pnasml/pnas/ir"
)

// ExportOpset is the ONNX operator-set version Export writes.
const ExportOpset = 13

// exportIRVersion is the ONNX IR version Export writes (IR 7 goes with
// opset 13).
const exportIRVersion = 7

type exporter struct {
	m     *ir.Model
	g     *GraphProto
	names map[string]bool // every value and initializer name written
	clip  [2]string       // names of the shared Clip bounds, once written
}

// Export writes the model as an ONNX ModelProto (opset 13, NCHW, input
// [N,C,H,W] with a symbolic batch N, output [N,F]) that ONNX Runtime can
// run. Fused epilogues are expanded: a conv2d with a residual input and an
// activation becomes Conv, Add and Relu or Clip(0,6); dense becomes
// Gemm(transB=1). Tensor names are the IR tensor names, node names the op
// names (suffixed for expanded nodes), initializers "<op>.<role>". The input
// normalization and labels, which ONNX does not model, are recorded in
// metadata_props and restored by Import. The model is verified first.
func Export(m *ir.Model) ([]byte, error) {
	shapes, err := m.InferShapes()
	if err != nil {
		return nil, fmt.Errorf("onnx: export: %w", err)
	}
	e := &exporter{m: m, g: &GraphProto{Name: m.Name}, names: map[string]bool{m.Input.Name: true}}
	for _, op := range m.Ops {
		e.names[op.Output] = true
	}
	for i := range m.Ops {
		if err := e.op(&m.Ops[i]); err != nil {
			return nil, err
		}
	}
	in := m.Input
	dims := []DimProto{{Param: "N"}}
	for _, d := range in.Shape {
		dims = append(dims, DimProto{Value: int64(d), HasValue: true})
	}
	e.g.Input = []ValueInfoProto{{Name: in.Name, Type: &TensorTypeProto{ElemType: DataFloat, Shape: dims, HasShape: true}}}
	out := shapes[m.Output]
	e.g.Output = []ValueInfoProto{{Name: m.Output, Type: &TensorTypeProto{ElemType: DataFloat, HasShape: true,
		Shape: []DimProto{{Param: "N"}, {Value: int64(out[0]), HasValue: true}}}}}

	mp := &ModelProto{IRVersion: exportIRVersion, ProducerName: "pnas", ProducerVersion: m.Producer,
		OpsetImport: []OperatorSetIDProto{{Domain: "", Version: ExportOpset}}, Graph: e.g, DocString: m.Metadata.Description}
	for _, kv := range []struct {
		key string
		v   any
		set bool
	}{{metaMean, in.Mean, len(in.Mean) > 0}, {metaStd, in.Std, len(in.Std) > 0}, {metaLabels, in.Labels, len(in.Labels) > 0}} {
		if !kv.set {
			continue
		}
		b, err := json.Marshal(kv.v)
		if err != nil {
			return nil, fmt.Errorf("onnx: export: %s: %w", kv.key, err)
		}
		mp.MetadataProps = append(mp.MetadataProps, StringStringEntryProto{Key: kv.key, Value: string(b)})
	}
	return mp.Marshal(), nil
}

// fresh returns an unused value name derived from s.
func (e *exporter) fresh(s string) string { return unique(e.names, s) }

func (e *exporter) node(opType, name string, inputs []string, output string, attrs ...AttributeProto) {
	e.g.Node = append(e.g.Node, NodeProto{OpType: opType, Name: name, Input: inputs, Output: []string{output}, Attribute: attrs})
}

func (e *exporter) param(op *ir.Op, role string) string {
	key := op.Name + "." + role
	t := e.m.Params[key]
	name := e.fresh(key) // differs from key only if a tensor has that name
	e.g.Initializer = append(e.g.Initializer, floatTensor(name, t.Shape, t.Data))
	return name
}

func intsAttr(name string, v []int) AttributeProto {
	a := AttributeProto{Name: name, Type: AttrInts, Ints: make([]int64, len(v))}
	for i, x := range v {
		a.Ints[i] = int64(x)
	}
	return a
}

// epilogue writes the residual Add and the activation that follow a node
// whose result is pre, ending in the op's output tensor.
func (e *exporter) epilogue(op *ir.Op, pre, residual string) {
	act := op.FusedActivation()
	if residual != "" {
		out := op.Output
		if act != ir.ActNone {
			out = e.fresh(op.Output + "/sum")
		}
		e.node("Add", op.Name+"/add", []string{pre, residual}, out)
		pre = out
	}
	switch act {
	case ir.ActReLU:
		e.node("Relu", op.Name+"/relu", []string{pre}, op.Output)
	case ir.ActReLU6:
		if e.clip[0] == "" {
			e.clip = [2]string{e.fresh("relu6.min"), e.fresh("relu6.max")}
			e.g.Initializer = append(e.g.Initializer, floatTensor(e.clip[0], nil, []float32{0}), floatTensor(e.clip[1], nil, []float32{6}))
		}
		e.node("Clip", op.Name+"/relu6", []string{pre, e.clip[0], e.clip[1]}, op.Output)
	}
}

// mainOut is the output name of the op's main node: the op output unless
// an epilogue follows.
func (e *exporter) mainOut(op *ir.Op, residual bool) string {
	if !residual && op.FusedActivation() == ir.ActNone {
		return op.Output
	}
	return e.fresh(op.Output + "/pre")
}

func (e *exporter) op(op *ir.Op) error {
	switch op.Type {
	case ir.OpConv2D:
		residual := ""
		if len(op.Inputs) == 2 {
			residual = op.Inputs[1]
		}
		inputs := []string{op.Inputs[0], e.param(op, "weight")}
		if op.Bias {
			inputs = append(inputs, e.param(op, "bias"))
		}
		out := e.mainOut(op, residual != "")
		e.node("Conv", op.Name, inputs, out,
			intsAttr("kernel_shape", op.Kernel), intsAttr("strides", op.Stride), intsAttr("pads", op.Pads),
			intsAttr("dilations", []int{1, 1}), AttributeProto{Name: "group", Type: AttrInt, I: int64(op.Groups)})
		e.epilogue(op, out, residual)
	case ir.OpBatchNorm:
		inputs := []string{op.Inputs[0]}
		for _, r := range []string{"scale", "bias", "mean", "var"} {
			inputs = append(inputs, e.param(op, r))
		}
		e.node("BatchNormalization", op.Name, inputs, op.Output, AttributeProto{Name: "epsilon", Type: AttrFloat, F: float32(op.Epsilon)})
	case ir.OpActivation:
		if op.FusedActivation() == ir.ActNone {
			e.node("Identity", op.Name, op.Inputs, op.Output)
			return nil
		}
		e.epilogue(op, op.Inputs[0], "")
	case ir.OpAdd:
		out := e.mainOut(op, false)
		e.node("Add", op.Name, op.Inputs, out)
		e.epilogue(op, out, "")
	case ir.OpGlobalPool:
		e.node("GlobalAveragePool", op.Name, op.Inputs, op.Output)
	case ir.OpFlatten:
		e.node("Flatten", op.Name, op.Inputs, op.Output, AttributeProto{Name: "axis", Type: AttrInt, I: 1})
	case ir.OpDense:
		inputs := []string{op.Inputs[0], e.param(op, "weight")}
		if op.Bias {
			inputs = append(inputs, e.param(op, "bias"))
		}
		out := e.mainOut(op, false)
		e.node("Gemm", op.Name, inputs, out, AttributeProto{Name: "transB", Type: AttrInt, I: 1})
		e.epilogue(op, out, "")
	case ir.OpSoftmax:
		e.node("Softmax", op.Name, op.Inputs, op.Output, AttributeProto{Name: "axis", Type: AttrInt, I: 1})
	default:
		return fmt.Errorf("onnx: export: op %q: type %q has no ONNX mapping", op.Name, op.Type)
	}
	return nil
}
