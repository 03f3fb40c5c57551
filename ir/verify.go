package ir

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
)

// Error is a validation error that names where the problem is.
type Error struct {
	Op    string // op name, empty for model-level fields
	Field string // JSON field or weight key
	Msg   string // what is wrong: expected vs got
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.Op != "" {
		fmt.Fprintf(&b, "op %q: ", e.Op)
	}
	if e.Field != "" {
		fmt.Fprintf(&b, "%s: ", e.Field)
	}
	b.WriteString(e.Msg)
	return b.String()
}

func errf(op, field, format string, args ...any) error {
	return &Error{Op: op, Field: field, Msg: fmt.Sprintf(format, args...)}
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.:/\-]*$`)

// Shapes maps tensor names to per-sample shapes ([C,H,W] maps, [F] vectors).
type Shapes map[string][]int

// Verify checks every invariant of the model (format and version, input
// specification, op attributes, tensor wiring, weight presence, shape and
// finiteness) and returns the first problem found.
func (m *Model) Verify() error {
	_, err := m.InferShapes()
	return err
}

// InferShapes verifies the model and returns the shape of every tensor.
func (m *Model) InferShapes() (Shapes, error) {
	if m == nil {
		return nil, errf("", "", "nil model")
	}
	if m.Format != FormatName {
		return nil, errf("", "format", "expected %q, got %q", FormatName, m.Format)
	}
	if m.Version != FormatVersion {
		return nil, errf("", "version", "unsupported format version: expected %d, got %d", FormatVersion, m.Version)
	}
	in := m.Input
	if in.Name == "" || !nameRE.MatchString(in.Name) {
		return nil, errf("", "input.name", "expected a tensor name, got %q", in.Name)
	}
	if len(in.Shape) != 3 {
		return nil, errf("", "input.shape", "expected [C,H,W], got %v", in.Shape)
	}
	for i, d := range in.Shape {
		if d <= 0 || d > 1<<16 {
			return nil, errf("", fmt.Sprintf("input.shape[%d]", i), "expected a size in 1..65536, got %d", d)
		}
	}
	if in.Layout != "NCHW" {
		return nil, errf("", "input.layout", "expected \"NCHW\", got %q", in.Layout)
	}
	c := in.Shape[0]
	if len(in.Mean) != 0 && len(in.Mean) != c {
		return nil, errf("", "input.mean", "expected %d values (one per channel), got %d", c, len(in.Mean))
	}
	if len(in.Std) != 0 && len(in.Std) != c {
		return nil, errf("", "input.std", "expected %d values (one per channel), got %d", c, len(in.Std))
	}
	for i, v := range in.Mean {
		if !finite32(v) {
			return nil, errf("", fmt.Sprintf("input.mean[%d]", i), "expected a finite number, got %v", v)
		}
	}
	for i, v := range in.Std {
		if !finite32(v) || v <= 0 {
			return nil, errf("", fmt.Sprintf("input.std[%d]", i), "expected a positive finite number, got %v", v)
		}
	}
	if len(m.Ops) == 0 {
		return nil, errf("", "ops", "expected at least one op, got none")
	}

	shapes := Shapes{in.Name: append([]int(nil), in.Shape...)}
	opNames := map[string]int{}
	used := map[string]bool{}
	for i := range m.Ops {
		op := &m.Ops[i]
		if op.Name == "" || !nameRE.MatchString(op.Name) {
			return nil, errf(fmt.Sprintf("#%d", i), "name", "expected a name of letters, digits and _ . : / -, got %q", op.Name)
		}
		if j, dup := opNames[op.Name]; dup {
			return nil, errf(op.Name, "name", "expected a unique op name, got the name of op #%d again at op #%d", j, i)
		}
		opNames[op.Name] = i
		if op.Output == "" || !nameRE.MatchString(op.Output) {
			return nil, errf(op.Name, "output", "expected a tensor name, got %q", op.Output)
		}
		if _, dup := shapes[op.Output]; dup {
			return nil, errf(op.Name, "output", "tensor %q is already defined", op.Output)
		}
		ins := make([][]int, len(op.Inputs))
		for j, name := range op.Inputs {
			s, ok := shapes[name]
			if !ok {
				return nil, errf(op.Name, fmt.Sprintf("inputs[%d]", j), "tensor %q is not defined by the input or an earlier op", name)
			}
			ins[j] = s
		}
		out, err := inferOp(m, op, ins)
		if err != nil {
			return nil, err
		}
		for _, role := range paramRoles(op) {
			used[op.Name+"."+role.name] = true
		}
		shapes[op.Output] = out
	}
	for _, k := range m.ParamNames() {
		if !used[k] {
			return nil, errf("", "weights", "weight %q belongs to no op", k)
		}
	}
	out, ok := shapes[m.Output]
	if !ok {
		return nil, errf("", "output", "tensor %q is not produced by any op", m.Output)
	}
	if len(out) != 1 {
		return nil, errf("", "output", "expected a vector of class scores, tensor %q has shape %v", m.Output, out)
	}
	if len(in.Labels) != 0 && len(in.Labels) != out[0] {
		return nil, errf("", "input.labels", "expected %d labels (one per output), got %d", out[0], len(in.Labels))
	}
	return shapes, nil
}

type role struct {
	name  string
	shape []int
}

// paramRoles lists the weights an op needs with their expected shapes. The
// shapes depend on attributes and the input shape, so it is called only
// after the attributes were checked; for the role names alone the shapes
// may be nil.
func paramRoles(op *Op) []role {
	switch op.Type {
	case OpConv2D:
		r := []role{{name: "weight"}}
		if op.Bias {
			r = append(r, role{name: "bias"})
		}
		return r
	case OpDense:
		r := []role{{name: "weight"}}
		if op.Bias {
			r = append(r, role{name: "bias"})
		}
		return r
	case OpBatchNorm:
		return []role{{name: "scale"}, {name: "bias"}, {name: "mean"}, {name: "var"}}
	}
	return nil
}

// ParamRoles returns the weight role names an op reads, in canonical order.
func ParamRoles(op *Op) []string {
	var names []string
	for _, r := range paramRoles(op) {
		names = append(names, r.name)
	}
	return names
}

func checkParam(m *Model, op *Op, name string, shape []int) error {
	key := op.Name + "." + name
	t := m.Params[key]
	if t == nil {
		return errf(op.Name, "weights", "missing weight %q of shape %v", key, shape)
	}
	if !slices.Equal(t.Shape, shape) {
		return errf(op.Name, "weights", "weight %q: expected shape %v, got %v", key, shape, t.Shape)
	}
	if len(t.Data) != numel(shape) {
		return errf(op.Name, "weights", "weight %q: expected %d values, got %d", key, numel(shape), len(t.Data))
	}
	for i, v := range t.Data {
		if !finite32(v) {
			return errf(op.Name, "weights", "weight %q: value %d is %v, expected a finite number", key, i, v)
		}
	}
	return nil
}

// forbid reports attribute fields that do not belong to the op's type.
func forbid(op *Op, fields ...string) error {
	for _, f := range fields {
		set := false
		switch f {
		case "out_channels":
			set = op.OutChannels != 0
		case "kernel":
			set = op.Kernel != nil
		case "stride":
			set = op.Stride != nil
		case "pads":
			set = op.Pads != nil
		case "groups":
			set = op.Groups != 0
		case "bias":
			set = op.Bias
		case "units":
			set = op.Units != 0
		case "epsilon":
			set = op.Epsilon != 0
		case "activation":
			set = op.Activation != "" && op.Activation != ActNone
		}
		if set {
			return errf(op.Name, f, "field is not used by %s ops", op.Type)
		}
	}
	return nil
}

func wantInputs(op *Op, ins [][]int, lo, hi int) error {
	if len(ins) < lo || len(ins) > hi {
		want := fmt.Sprint(lo)
		if hi != lo {
			want = fmt.Sprintf("%d or %d", lo, hi)
		}
		return errf(op.Name, "inputs", "expected %s inputs, got %d", want, len(ins))
	}
	return nil
}

func wantRank(op *Op, j int, s []int, rank int) error {
	if len(s) != rank {
		what := "a [C,H,W] map"
		if rank == 1 {
			what = "a vector"
		}
		return errf(op.Name, fmt.Sprintf("inputs[%d]", j), "expected %s, tensor %q has shape %v", what, op.Inputs[j], s)
	}
	return nil
}

func inferOp(m *Model, op *Op, ins [][]int) ([]int, error) {
	if !op.Activation.valid() {
		return nil, errf(op.Name, "activation", "expected one of none, relu, relu6, got %q", op.Activation)
	}
	switch op.Type {
	case OpConv2D:
		if err := forbid(op, "units", "epsilon"); err != nil {
			return nil, err
		}
		if err := wantInputs(op, ins, 1, 2); err != nil {
			return nil, err
		}
		if err := wantRank(op, 0, ins[0], 3); err != nil {
			return nil, err
		}
		return inferConv(m, op, ins)
	case OpBatchNorm:
		if err := forbid(op, "out_channels", "kernel", "stride", "pads", "groups", "bias", "units", "activation"); err != nil {
			return nil, err
		}
		if err := wantInputs(op, ins, 1, 1); err != nil {
			return nil, err
		}
		if len(ins[0]) != 3 && len(ins[0]) != 1 {
			return nil, errf(op.Name, "inputs[0]", "expected a [C,H,W] map or a vector, got shape %v", ins[0])
		}
		if !(op.Epsilon > 0) || op.Epsilon > 1 || math.IsInf(op.Epsilon, 0) {
			return nil, errf(op.Name, "epsilon", "expected a value in (0, 1], got %v", op.Epsilon)
		}
		c := ins[0][0]
		for _, r := range []string{"scale", "bias", "mean"} {
			if err := checkParam(m, op, r, []int{c}); err != nil {
				return nil, err
			}
		}
		if err := checkParam(m, op, "var", []int{c}); err != nil {
			return nil, err
		}
		for i, v := range m.Param(op.Name, "var").Data {
			if v < 0 {
				return nil, errf(op.Name, "weights", "weight %q: value %d is %v, expected a variance >= 0", op.Name+".var", i, v)
			}
		}
		return append([]int(nil), ins[0]...), nil
	case OpActivation:
		if err := forbid(op, "out_channels", "kernel", "stride", "pads", "groups", "bias", "units", "epsilon"); err != nil {
			return nil, err
		}
		if err := wantInputs(op, ins, 1, 1); err != nil {
			return nil, err
		}
		if op.Activation == "" {
			return nil, errf(op.Name, "activation", "expected one of none, relu, relu6, got nothing")
		}
		return append([]int(nil), ins[0]...), nil
	case OpAdd:
		if err := forbid(op, "out_channels", "kernel", "stride", "pads", "groups", "bias", "units", "epsilon"); err != nil {
			return nil, err
		}
		if err := wantInputs(op, ins, 2, 2); err != nil {
			return nil, err
		}
		if !slices.Equal(ins[0], ins[1]) {
			return nil, errf(op.Name, "inputs", "expected equal shapes, got %v (%q) and %v (%q)", ins[0], op.Inputs[0], ins[1], op.Inputs[1])
		}
		return append([]int(nil), ins[0]...), nil
	case OpGlobalPool:
		if err := forbid(op, "out_channels", "kernel", "stride", "pads", "groups", "bias", "units", "epsilon", "activation"); err != nil {
			return nil, err
		}
		if err := wantInputs(op, ins, 1, 1); err != nil {
			return nil, err
		}
		if err := wantRank(op, 0, ins[0], 3); err != nil {
			return nil, err
		}
		return []int{ins[0][0], 1, 1}, nil
	case OpFlatten:
		if err := forbid(op, "out_channels", "kernel", "stride", "pads", "groups", "bias", "units", "epsilon", "activation"); err != nil {
			return nil, err
		}
		if err := wantInputs(op, ins, 1, 1); err != nil {
			return nil, err
		}
		return []int{numel(ins[0])}, nil
	case OpDense:
		if err := forbid(op, "out_channels", "kernel", "stride", "pads", "groups", "epsilon"); err != nil {
			return nil, err
		}
		if err := wantInputs(op, ins, 1, 1); err != nil {
			return nil, err
		}
		if err := wantRank(op, 0, ins[0], 1); err != nil {
			return nil, err
		}
		if op.Units <= 0 || op.Units > 1<<20 {
			return nil, errf(op.Name, "units", "expected a positive count, got %d", op.Units)
		}
		if err := checkParam(m, op, "weight", []int{op.Units, ins[0][0]}); err != nil {
			return nil, err
		}
		if op.Bias {
			if err := checkParam(m, op, "bias", []int{op.Units}); err != nil {
				return nil, err
			}
		}
		return []int{op.Units}, nil
	case OpSoftmax:
		if err := forbid(op, "out_channels", "kernel", "stride", "pads", "groups", "bias", "units", "epsilon", "activation"); err != nil {
			return nil, err
		}
		if err := wantInputs(op, ins, 1, 1); err != nil {
			return nil, err
		}
		if err := wantRank(op, 0, ins[0], 1); err != nil {
			return nil, err
		}
		return append([]int(nil), ins[0]...), nil
	case "":
		return nil, errf(op.Name, "type", "missing op type")
	}
	var known []string
	for _, t := range OpTypes {
		known = append(known, string(t))
	}
	return nil, errf(op.Name, "type", "unknown op type %q (expected one of %s)", op.Type, strings.Join(known, ", "))
}

func inferConv(m *Model, op *Op, ins [][]int) ([]int, error) {
	cin, h, w := ins[0][0], ins[0][1], ins[0][2]
	if len(op.Kernel) != 2 || op.Kernel[0] <= 0 || op.Kernel[1] <= 0 || op.Kernel[0] > 64 || op.Kernel[1] > 64 {
		return nil, errf(op.Name, "kernel", "expected [kh, kw] with sizes in 1..64, got %v", op.Kernel)
	}
	if len(op.Stride) != 2 || op.Stride[0] <= 0 || op.Stride[1] <= 0 || op.Stride[0] > 64 || op.Stride[1] > 64 {
		return nil, errf(op.Name, "stride", "expected [sh, sw] with strides in 1..64, got %v", op.Stride)
	}
	if len(op.Pads) != 4 {
		return nil, errf(op.Name, "pads", "expected [top, left, bottom, right], got %v", op.Pads)
	}
	for i, p := range op.Pads {
		if p < 0 || p > 64 {
			return nil, errf(op.Name, "pads", "expected paddings in 0..64, got %v at index %d", p, i)
		}
	}
	if op.OutChannels <= 0 || op.OutChannels > 1<<16 {
		return nil, errf(op.Name, "out_channels", "expected a positive count, got %d", op.OutChannels)
	}
	g := op.Groups
	if g <= 0 {
		return nil, errf(op.Name, "groups", "expected a positive group count, got %d", g)
	}
	if cin%g != 0 || op.OutChannels%g != 0 {
		return nil, errf(op.Name, "groups", "input channels %d and out_channels %d must both be divisible by groups %d", cin, op.OutChannels, g)
	}
	kh, kw := op.Kernel[0], op.Kernel[1]
	sh, sw := op.Stride[0], op.Stride[1]
	ph := h + op.Pads[0] + op.Pads[2]
	pw := w + op.Pads[1] + op.Pads[3]
	if ph < kh || pw < kw {
		return nil, errf(op.Name, "kernel", "kernel %dx%d is larger than the padded input %dx%d", kh, kw, ph, pw)
	}
	oh := (ph-kh)/sh + 1
	ow := (pw-kw)/sw + 1
	out := []int{op.OutChannels, oh, ow}
	if err := checkParam(m, op, "weight", []int{op.OutChannels, cin / g, kh, kw}); err != nil {
		return nil, err
	}
	if op.Bias {
		if err := checkParam(m, op, "bias", []int{op.OutChannels}); err != nil {
			return nil, err
		}
	}
	if len(ins) == 2 && !slices.Equal(ins[1], out) {
		return nil, errf(op.Name, "inputs[1]", "residual tensor %q has shape %v, expected the output shape %v", op.Inputs[1], ins[1], out)
	}
	return out, nil
}

// ConvOutSize returns the output size of a convolution along one axis.
func ConvOutSize(in, k, stride, padBefore, padAfter int) int {
	return (in+padBefore+padAfter-k)/stride + 1
}

func finite32(v float32) bool {
	f := float64(v)
	return !math.IsNaN(f) && !math.IsInf(f, 0)
}
