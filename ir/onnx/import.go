package onnx

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/pnasml/pnas/ir"
)

// Options completes what an ONNX model does not carry.
type Options struct {
	// Name is the model name; default the graph name, else "onnx".
	Name string
	// Mean and Std are the per-channel input normalization of the IR input
	// specification, Labels the class names. When all three are empty they
	// are read from the metadata_props that Export writes, if present;
	// otherwise the input specification has none.
	Mean, Std []float32
	Labels    []string
}

// Metadata keys under which Export records the input specification.
const (
	metaMean   = "pnas.input.mean"
	metaStd    = "pnas.input.std"
	metaLabels = "pnas.input.labels"
)

// SupportedOps lists the ONNX operators Import maps, in sorted order: the
// operators of the converter table.
var SupportedOps = supportedOps()

// An opSpec is one row of the converter table: an ONNX operator (in a
// range of opset versions), the attributes and the number of inputs it
// accepts, the rank of the activation its converter receives and the
// converter. Import checks the attributes, the inputs and the rank before it
// calls the converter.
type opSpec struct {
	op       string
	opsets   [2]int64 // first and last default-domain opset of the row, 0 for no bound
	attrs    []string // the attributes accepted; any other is an error
	attrHint func(opset int64) string
	inputs   [2]int // the least and the most inputs (trailing empty names not counted)
	rank     int    // IR rank of input 0 given to convert: mapRank, vecRank, anyRank, or ownInputs
	convert  func(c *nodeCtx, x *value) error
}

// Ranks of the activation input a converter receives.
const (
	ownInputs = -1 // the converter reads its inputs itself (x is nil)
	anyRank   = 0  // a computed tensor of any rank
	vecRank   = 1  // an [N,F] matrix, per sample [F]
	mapRank   = 3  // an [N,C,H,W] map, per sample [C,H,W]
)

// converters is the table of every ONNX operator Import maps.
var converters = []opSpec{
	{op: "Conv", attrs: []string{"auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"}, inputs: [2]int{2, 3}, rank: mapRank, convert: (*nodeCtx).conv},
	{op: "BatchNormalization", attrs: []string{"epsilon", "momentum", "spatial", "training_mode", "is_test", "consumed_inputs"}, inputs: [2]int{5, 5}, rank: anyRank, convert: (*nodeCtx).batchNorm},
	{op: "Relu", attrs: []string{"consumed_inputs"}, inputs: [2]int{1, 1}, rank: anyRank, convert: (*nodeCtx).relu},
	{op: "Clip", opsets: [2]int64{0, 10}, attrs: []string{"min", "max", "consumed_inputs"}, inputs: [2]int{1, 1}, rank: ownInputs, convert: (*nodeCtx).clipAttrs},
	{op: "Clip", opsets: [2]int64{11, 0}, attrHint: func(opset int64) string { return fmt.Sprintf("in opset %d the bounds are inputs", opset) },
		inputs: [2]int{1, 3}, rank: ownInputs, convert: (*nodeCtx).clipInputs},
	{op: "Add", attrs: []string{"consumed_inputs"}, inputs: [2]int{2, 2}, rank: ownInputs, convert: (*nodeCtx).add},
	{op: "GlobalAveragePool", inputs: [2]int{1, 1}, rank: mapRank, convert: (*nodeCtx).globalPool},
	{op: "Flatten", attrs: []string{"axis"}, inputs: [2]int{1, 1}, rank: anyRank, convert: (*nodeCtx).flatten},
	{op: "Gemm", attrs: []string{"alpha", "beta", "transA", "transB", "broadcast"}, inputs: [2]int{2, 3}, rank: ownInputs, convert: (*nodeCtx).gemm},
	{op: "MatMul", inputs: [2]int{2, 2}, rank: vecRank, convert: (*nodeCtx).matmul},
	{op: "Reshape", opsets: [2]int64{0, 4}, attrs: []string{"shape", "consumed_inputs"}, inputs: [2]int{1, 1}, rank: ownInputs, convert: (*nodeCtx).reshapeAttr},
	{op: "Reshape", opsets: [2]int64{5, 0}, attrs: []string{"allowzero"}, inputs: [2]int{2, 2}, rank: ownInputs, convert: (*nodeCtx).reshapeInput},
	{op: "Identity", inputs: [2]int{1, 1}, rank: ownInputs, convert: (*nodeCtx).passThrough},
	{op: "Dropout", attrs: []string{"ratio", "seed", "is_test", "consumed_inputs"}, inputs: [2]int{1, 3}, rank: ownInputs, convert: (*nodeCtx).dropout},
	{op: "Softmax", attrs: []string{"axis"}, inputs: [2]int{1, 1}, rank: vecRank, convert: (*nodeCtx).softmax},
	{op: "Constant", attrs: []string{"value"}, attrHint: func(int64) string { return `only a tensor "value" is supported` },
		inputs: [2]int{0, 0}, rank: ownInputs, convert: (*nodeCtx).constantNode},
}

// converter returns the table row for op in the given opset.
func converter(op string, opset int64) *opSpec {
	for i := range converters {
		s := &converters[i]
		if s.op == op && (s.opsets[0] == 0 || opset >= s.opsets[0]) && (s.opsets[1] == 0 || opset <= s.opsets[1]) {
			return s
		}
	}
	return nil
}

func supportedOps() []string {
	var ops []string
	for _, s := range converters {
		if !slices.Contains(ops, s.op) {
			ops = append(ops, s.op)
		}
	}
	slices.Sort(ops)
	return ops
}

// value is an activation tensor of the ONNX graph mapped into the IR.
type value struct {
	name  string // IR tensor name
	shape []int  // per-sample IR shape: [C,H,W] or [F]
	op    int    // index of the producing op in the IR model, -1 for the input
}

type importer struct {
	opset  int64
	consts map[string]*TensorProto
	vals   map[string]*value
	uses   map[string]int
	m      *ir.Model
	ops    map[string]bool // IR op names taken
	tens   map[string]bool // IR tensor names taken
}

// Import maps a serialized ONNX ModelProto of the MobileNet family into an
// IR model with its weights; the operators it maps are [SupportedOps] (the
// package documentation and docs/onnx.md say what each accepts). The graph
// must have one image input [N,C,H,W] (N symbolic or 1) and one output. Any
// other operator,
// attribute value or data type is an error naming the node, the op and the
// attribute. Ops are kept one to one (activations are not fused), named
// after the ONNX nodes with names sanitized to the IR rules.
func Import(r []byte, opts Options) (*ir.Model, error) {
	mp, err := DecodeModel(r)
	if err != nil {
		return nil, err
	}
	if mp.Graph == nil {
		return nil, fmt.Errorf("onnx: model has no graph (field 7)")
	}
	g := mp.Graph
	im := &importer{consts: map[string]*TensorProto{}, vals: map[string]*value{}, uses: map[string]int{},
		ops: map[string]bool{}, tens: map[string]bool{}}
	found := false
	for _, o := range mp.OpsetImport {
		if o.Domain == "" || o.Domain == "ai.onnx" {
			im.opset, found = o.Version, true
		}
	}
	if !found {
		return nil, fmt.Errorf("onnx: opset_import has no entry for the default ONNX domain")
	}
	if im.opset < 1 {
		return nil, fmt.Errorf("onnx: opset_import: default-domain version %d, expected >= 1", im.opset)
	}

	name := opts.Name
	if name == "" {
		name = g.Name
	}
	if name == "" {
		name = "onnx"
	}
	extra := map[string]string{"onnx.opset": strconv.FormatInt(im.opset, 10), "onnx.ir_version": strconv.FormatInt(mp.IRVersion, 10)}
	if mp.ProducerName != "" {
		extra["onnx.producer"] = strings.TrimSpace(mp.ProducerName + " " + mp.ProducerVersion)
	}
	im.m = &ir.Model{Format: ir.FormatName, Version: ir.FormatVersion, Name: name, Producer: "pnas onnx import",
		Params:   map[string]*ir.Tensor{},
		Metadata: ir.Metadata{Description: "imported from ONNX", Extra: extra}}

	for i := range g.Initializer {
		t := &g.Initializer[i]
		if t.Name == "" {
			return nil, fmt.Errorf("onnx: graph.initializer[%d] has no name", i)
		}
		im.consts[t.Name] = t
	}
	if err := im.input(g); err != nil {
		return nil, err
	}
	if err := im.inputSpec(mp, opts); err != nil {
		return nil, err
	}
	for i := range g.Node {
		for _, s := range g.Node[i].Input {
			im.uses[s]++
		}
	}
	for _, o := range g.Output {
		im.uses[o.Name]++
	}
	for i := range g.Node {
		if err := im.node(i, &g.Node[i]); err != nil {
			return nil, err
		}
	}
	if len(g.Output) != 1 {
		return nil, fmt.Errorf("onnx: graph has %d outputs, expected 1 (the class scores)", len(g.Output))
	}
	out, ok := im.vals[g.Output[0].Name]
	if !ok {
		return nil, fmt.Errorf("onnx: graph output %q is not computed by any node", g.Output[0].Name)
	}
	if out.op < 0 {
		return nil, fmt.Errorf("onnx: graph output %q is the graph input itself", g.Output[0].Name)
	}
	im.m.Output = out.name
	if err := im.m.Verify(); err != nil {
		return nil, fmt.Errorf("onnx: imported model does not verify: %w", err)
	}
	return im.m, nil
}

// input finds the one graph input that is not an initializer.
func (im *importer) input(g *GraphProto) error {
	var in *ValueInfoProto
	for i := range g.Input {
		if _, isConst := im.consts[g.Input[i].Name]; isConst {
			continue
		}
		if in != nil {
			return fmt.Errorf("onnx: graph has inputs %q and %q, expected one image input", in.Name, g.Input[i].Name)
		}
		in = &g.Input[i]
	}
	if in == nil {
		return fmt.Errorf("onnx: graph has no input (every graph.input is an initializer)")
	}
	tt := in.Type
	if tt == nil {
		return fmt.Errorf("onnx: input %q: no tensor type", in.Name)
	}
	if tt.ElemType != DataFloat {
		return fmt.Errorf("onnx: input %q: element type %s, expected FLOAT", in.Name, tt.ElemType)
	}
	if len(tt.Shape) != 4 {
		return fmt.Errorf("onnx: input %q: shape of rank %d, expected [N,C,H,W]", in.Name, len(tt.Shape))
	}
	if d := tt.Shape[0]; d.HasValue && d.Value != 1 {
		return fmt.Errorf("onnx: input %q: batch dimension is %d, expected a symbolic size or 1", in.Name, d.Value)
	}
	shape := make([]int, 3)
	for i, d := range tt.Shape[1:] {
		if !d.HasValue || d.Value <= 0 || d.Value > 1<<16 {
			what := fmt.Sprint(d.Value)
			if !d.HasValue {
				what = fmt.Sprintf("symbolic %q", d.Param)
			}
			return fmt.Errorf("onnx: input %q: dimension %d is %s, expected a fixed size in 1..65536", in.Name, i+1, what)
		}
		shape[i] = int(d.Value)
	}
	name := im.tensorName(in.Name, "input")
	im.m.Input = ir.Input{Name: name, Shape: shape, Layout: "NCHW"}
	im.vals[in.Name] = &value{name: name, shape: shape, op: -1}
	return nil
}

func (im *importer) inputSpec(mp *ModelProto, opts Options) error {
	in := &im.m.Input
	if len(opts.Mean) > 0 || len(opts.Std) > 0 || len(opts.Labels) > 0 {
		in.Mean = append([]float32(nil), opts.Mean...)
		in.Std = append([]float32(nil), opts.Std...)
		in.Labels = append([]string(nil), opts.Labels...)
		return nil
	}
	for _, e := range mp.MetadataProps {
		var dst any
		switch e.Key {
		case metaMean:
			dst = &in.Mean
		case metaStd:
			dst = &in.Std
		case metaLabels:
			dst = &in.Labels
		default:
			continue
		}
		if err := json.Unmarshal([]byte(e.Value), dst); err != nil {
			return fmt.Errorf("onnx: metadata_props %q: %v", e.Key, err)
		}
	}
	return nil
}

// sanitize maps an ONNX name to the IR name rules: letters, digits and
// _ . : / -, not starting with . : / or -.
func sanitize(s, fallback string) string {
	b := []byte(s)
	for i, c := range b {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("_.:/-", c) >= 0
		if !ok {
			b[i] = '_'
		}
	}
	s = strings.TrimLeft(string(b), ".:/-")
	if s == "" {
		return fallback
	}
	return s
}

func unique(taken map[string]bool, s string) string {
	name := s
	for k := 2; taken[name]; k++ {
		name = fmt.Sprintf("%s_%d", s, k)
	}
	taken[name] = true
	return name
}

func (im *importer) tensorName(s, fallback string) string {
	return unique(im.tens, sanitize(s, fallback))
}

// nodeError is an import error that names the node and its op.
type nodeError struct {
	node string
	op   string
	msg  string
}

func (e *nodeError) Error() string { return fmt.Sprintf("onnx: node %q (%s): %s", e.node, e.op, e.msg) }

type nodeCtx struct {
	im    *importer
	n     *NodeProto
	label string
	attrs map[string]*AttributeProto
}

func (c *nodeCtx) errf(format string, args ...any) error {
	return &nodeError{node: c.label, op: c.n.OpType, msg: fmt.Sprintf(format, args...)}
}

// allow rejects attributes outside the list.
func (c *nodeCtx) allow(names ...string) error {
	for _, a := range c.n.Attribute {
		ok := false
		for _, n := range names {
			ok = ok || a.Name == n
		}
		if !ok {
			return c.errf("attribute %q is not supported", a.Name)
		}
	}
	return nil
}

func (c *nodeCtx) attr(name string, typ AttributeType) (*AttributeProto, error) {
	a := c.attrs[name]
	if a == nil {
		return nil, nil
	}
	if a.Type != typ {
		return nil, c.errf("attribute %q: expected type %s, got %s", name, typ, a.Type)
	}
	return a, nil
}

func (c *nodeCtx) intAttr(name string, def int64) (int64, error) {
	a, err := c.attr(name, AttrInt)
	if a == nil || err != nil {
		return def, err
	}
	return a.I, nil
}

func (c *nodeCtx) floatAttr(name string, def float32) (float32, bool, error) {
	a, err := c.attr(name, AttrFloat)
	if a == nil || err != nil {
		return def, false, err
	}
	return a.F, true, nil
}

func (c *nodeCtx) intsAttr(name string, n int, def []int64) ([]int64, error) {
	a, err := c.attr(name, AttrInts)
	if a == nil || err != nil {
		return def, err
	}
	if len(a.Ints) != n {
		return nil, c.errf("attribute %q: expected %d values, got %v", name, n, a.Ints)
	}
	return a.Ints, nil
}

// in returns input j, "" when absent.
func (c *nodeCtx) in(j int) string {
	if j < len(c.n.Input) {
		return c.n.Input[j]
	}
	return ""
}

func (c *nodeCtx) wantInputs(lo, hi int) error {
	n := len(c.n.Input)
	for n > 0 && c.n.Input[n-1] == "" {
		n--
	}
	if n < lo || n > hi {
		want := fmt.Sprint(lo)
		if hi != lo {
			want = fmt.Sprintf("%d to %d", lo, hi)
		}
		return c.errf("expected %s inputs, got %d", want, n)
	}
	if len(c.n.Output) < 1 || c.n.Output[0] == "" {
		return c.errf("has no output")
	}
	for j, o := range c.n.Output[1:] {
		if o != "" && c.im.uses[o] > 0 {
			return c.errf("output %d %q is used, but only the first output is supported", j+1, o)
		}
	}
	return nil
}

// act returns input j as an activation tensor of the given IR rank
// (mapRank, vecRank or anyRank).
func (c *nodeCtx) act(j, rank int) (*value, error) {
	s := c.in(j)
	v, ok := c.im.vals[s]
	if !ok {
		if _, isConst := c.im.consts[s]; isConst {
			return nil, c.errf("input %d %q is a constant; a computed tensor is expected here", j, s)
		}
		return nil, c.errf("input %d %q is not defined by the graph input, an initializer or an earlier node", j, s)
	}
	if rank != anyRank && len(v.shape) != rank {
		want := "a [N,C,H,W] map"
		if rank == vecRank {
			want = "an [N,F] matrix"
		}
		return nil, c.errf("input %d %q: expected %s, got per-sample shape %v", j, s, want, v.shape)
	}
	return v, nil
}

// constant returns input j as a constant tensor.
func (c *nodeCtx) constant(j int) (*TensorProto, error) {
	s := c.in(j)
	t, ok := c.im.consts[s]
	if !ok {
		if _, isAct := c.im.vals[s]; isAct {
			return nil, c.errf("input %d %q must be a constant (initializer or Constant node), got a computed tensor", j, s)
		}
		return nil, c.errf("input %d %q is not defined by an initializer or an earlier node", j, s)
	}
	return t, nil
}

func (c *nodeCtx) floats(j int) ([]float32, []int64, error) {
	t, err := c.constant(j)
	if err != nil {
		return nil, nil, err
	}
	d, err := t.Floats()
	if err != nil {
		return nil, nil, c.errf("input %d %q: %v", j, c.in(j), err)
	}
	return d, t.Dims, nil
}

// emit adds an IR op for the node's first output.
func (c *nodeCtx) emit(op ir.Op, shape []int) *value {
	im := c.im
	op.Name = unique(im.ops, sanitize(c.n.Name, sanitize(c.n.Output[0], strings.ToLower(c.n.OpType))))
	op.Output = im.tensorName(c.n.Output[0], op.Name)
	im.m.Ops = append(im.m.Ops, op)
	v := &value{name: op.Output, shape: shape, op: len(im.m.Ops) - 1}
	im.vals[c.n.Output[0]] = v
	return v
}

// alias makes the node's first output another name for v.
func (c *nodeCtx) alias(v *value) { c.im.vals[c.n.Output[0]] = v }

func (im *importer) node(i int, n *NodeProto) error {
	label := n.Name
	if label == "" {
		label = fmt.Sprintf("#%d", i)
	}
	c := &nodeCtx{im: im, n: n, label: label, attrs: map[string]*AttributeProto{}}
	if n.Domain != "" && n.Domain != "ai.onnx" {
		return c.errf("operator domain %q is not supported (only the default ONNX domain)", n.Domain)
	}
	for k := range n.Attribute {
		a := &n.Attribute[k]
		if c.attrs[a.Name] != nil {
			return c.errf("attribute %q is given twice", a.Name)
		}
		c.attrs[a.Name] = a
	}
	for _, o := range n.Output {
		if o == "" {
			continue
		}
		_, isVal := im.vals[o]
		_, isConst := im.consts[o]
		if isVal || isConst {
			return c.errf("output %q is already defined", o)
		}
	}
	spec := converter(n.OpType, im.opset)
	if spec == nil {
		return c.errf("unsupported op %q (supported: %s)", n.OpType, strings.Join(SupportedOps, ", "))
	}
	if err := c.allow(spec.attrs...); err != nil {
		if spec.attrHint != nil {
			return fmt.Errorf("%w (%s)", err, spec.attrHint(im.opset))
		}
		return err
	}
	if err := c.wantInputs(spec.inputs[0], spec.inputs[1]); err != nil {
		return err
	}
	var x *value
	if spec.rank != ownInputs {
		var err error
		if x, err = c.act(0, spec.rank); err != nil {
			return err
		}
	}
	return spec.convert(c, x)
}

func toInts(v []int64) []int {
	out := make([]int, len(v))
	for i, x := range v {
		out[i] = int(x)
	}
	return out
}

func (c *nodeCtx) conv(x *value) error {
	w, wd, err := c.floats(1)
	if err != nil {
		return err
	}
	group, err := c.intAttr("group", 1)
	if err != nil {
		return err
	}
	cin := x.shape[0]
	if group < 1 || group > int64(cin) || int64(cin)%group != 0 {
		return c.errf("attribute \"group\": %d does not divide the %d input channels", group, cin)
	}
	if len(wd) != 4 || wd[0] < 1 || wd[0] > 1<<16 || wd[1] != int64(cin)/group || wd[2] < 1 || wd[3] < 1 || wd[2] > 64 || wd[3] > 64 {
		return c.errf("weight %q: dims %v, expected [M, %d, kh, kw] (M <= 65536, kernel <= 64)", c.in(1), wd, int64(cin)/group)
	}
	if wd[0]%group != 0 {
		return c.errf("attribute \"group\": %d does not divide the %d output channels", group, wd[0])
	}
	k := []int64{wd[2], wd[3]}
	if ks, err := c.intsAttr("kernel_shape", 2, k); err != nil {
		return err
	} else if ks[0] != k[0] || ks[1] != k[1] {
		return c.errf("attribute \"kernel_shape\": %v disagrees with the weight dims %v", ks, wd)
	}
	strides, err := c.intsAttr("strides", 2, []int64{1, 1})
	if err != nil {
		return err
	}
	for _, s := range strides {
		if s < 1 || s > 64 {
			return c.errf("attribute \"strides\": %v, expected values in 1..64", strides)
		}
	}
	dil, err := c.intsAttr("dilations", 2, []int64{1, 1})
	if err != nil {
		return err
	}
	if dil[0] != 1 || dil[1] != 1 {
		return c.errf("attribute \"dilations\": %v, only dilation 1 is supported", dil)
	}
	pads, err := c.intsAttr("pads", 4, []int64{0, 0, 0, 0})
	if err != nil {
		return err
	}
	for _, p := range pads {
		if p < 0 || p > 64 {
			return c.errf("attribute \"pads\": %v, expected values in 0..64", pads)
		}
	}
	autoPad := "NOTSET"
	if a, err := c.attr("auto_pad", AttrString); err != nil {
		return err
	} else if a != nil {
		autoPad = string(a.S)
	}
	switch autoPad {
	case "NOTSET", "":
	case "VALID", "SAME_UPPER", "SAME_LOWER":
		if _, given := c.attrs["pads"]; given {
			return c.errf("attribute \"auto_pad\" %q cannot be combined with explicit pads", autoPad)
		}
		pads = []int64{0, 0, 0, 0}
		if autoPad != "VALID" {
			for ax, in := range []int{x.shape[1], x.shape[2]} {
				s := int(strides[ax])
				total := max(((in+s-1)/s-1)*s+int(k[ax])-in, 0)
				lo := total / 2
				if autoPad == "SAME_LOWER" {
					lo = total - total/2
				}
				pads[ax], pads[ax+2] = int64(lo), int64(total-lo)
			}
		}
	default:
		return c.errf("attribute \"auto_pad\": %q, expected NOTSET, VALID, SAME_UPPER or SAME_LOWER", autoPad)
	}
	oh := ir.ConvOutSize(x.shape[1], int(k[0]), int(strides[0]), int(pads[0]), int(pads[2]))
	ow := ir.ConvOutSize(x.shape[2], int(k[1]), int(strides[1]), int(pads[1]), int(pads[3]))
	if x.shape[1]+int(pads[0]+pads[2]) < int(k[0]) || x.shape[2]+int(pads[1]+pads[3]) < int(k[1]) {
		return c.errf("kernel %v is larger than the padded input %dx%d", k, x.shape[1], x.shape[2])
	}
	op := ir.Op{Type: ir.OpConv2D, Inputs: []string{x.name}, OutChannels: int(wd[0]), Kernel: toInts(k),
		Stride: toInts(strides), Pads: toInts(pads), Groups: int(group)}
	var bias []float32
	if c.in(2) != "" {
		var bd []int64
		if bias, bd, err = c.floats(2); err != nil {
			return err
		}
		if len(bias) != int(wd[0]) || len(bd) != 1 {
			return c.errf("bias %q: dims %v, expected [%d]", c.in(2), bd, wd[0])
		}
		op.Bias = true
	}
	v := c.emit(op, []int{int(wd[0]), oh, ow})
	name := c.im.m.Ops[v.op].Name
	c.im.m.SetParam(name, "weight", &ir.Tensor{Shape: toInts(wd), Data: w})
	if bias != nil {
		c.im.m.SetParam(name, "bias", &ir.Tensor{Shape: []int{len(bias)}, Data: bias})
	}
	return nil
}

func (c *nodeCtx) batchNorm(x *value) error {
	if tm, err := c.intAttr("training_mode", 0); err != nil {
		return err
	} else if tm != 0 {
		return c.errf("attribute \"training_mode\": %d, only inference (0) is supported", tm)
	}
	if sp, err := c.intAttr("spatial", 1); err != nil {
		return err
	} else if sp != 1 {
		return c.errf("attribute \"spatial\": %d, only 1 is supported", sp)
	}
	eps, _, err := c.floatAttr("epsilon", 1e-5)
	if err != nil {
		return err
	}
	ch := x.shape[0]
	var stats [4][]float32
	for j := range stats {
		d, dims, err := c.floats(j + 1)
		if err != nil {
			return err
		}
		if len(d) != ch || len(dims) != 1 {
			return c.errf("input %d %q: dims %v, expected [%d]", j+1, c.in(j+1), dims, ch)
		}
		stats[j] = d
	}
	v := c.emit(ir.Op{Type: ir.OpBatchNorm, Inputs: []string{x.name}, Epsilon: float64(eps)}, x.shape)
	name := c.im.m.Ops[v.op].Name
	for j, role := range []string{"scale", "bias", "mean", "var"} {
		c.im.m.SetParam(name, role, &ir.Tensor{Shape: []int{ch}, Data: stats[j]})
	}
	return nil
}

func (c *nodeCtx) activation(x *value, a ir.Activation) {
	c.emit(ir.Op{Type: ir.OpActivation, Inputs: []string{x.name}, Activation: a}, x.shape)
}

func (c *nodeCtx) relu(x *value) error {
	c.activation(x, ir.ActReLU)
	return nil
}

// clipAttrs reads the bounds of a Clip from its attributes (opset < 11).
func (c *nodeCtx) clipAttrs(*value) error {
	lo, hi := float32(math.Inf(-1)), float32(math.Inf(1))
	var err error
	if lo, _, err = c.floatAttr("min", lo); err != nil {
		return err
	}
	if hi, _, err = c.floatAttr("max", hi); err != nil {
		return err
	}
	return c.clip(lo, hi)
}

// clipInputs reads the bounds of a Clip from its constant inputs 1 and 2
// (opset >= 11).
func (c *nodeCtx) clipInputs(*value) error {
	lo, hi := float32(math.Inf(-1)), float32(math.Inf(1))
	for j, dst := range []*float32{&lo, &hi} {
		if c.in(j+1) == "" {
			continue
		}
		d, _, err := c.floats(j + 1)
		if err != nil {
			return err
		}
		if len(d) != 1 {
			return c.errf("input %d %q: expected a scalar bound, got %d values", j+1, c.in(j+1), len(d))
		}
		*dst = d[0]
	}
	return c.clip(lo, hi)
}

// clip maps Clip(lo, hi) to ReLU6 or ReLU.
func (c *nodeCtx) clip(lo, hi float32) error {
	var a ir.Activation
	switch {
	case lo == 0 && hi == 6:
		a = ir.ActReLU6
	case lo == 0 && math.IsInf(float64(hi), 1):
		a = ir.ActReLU
	default:
		return c.errf("bounds min=%g max=%g: only Clip(0, 6) (ReLU6) and Clip(0, inf) (ReLU) are supported", lo, hi)
	}
	x, err := c.act(0, anyRank)
	if err != nil {
		return err
	}
	c.activation(x, a)
	return nil
}

func (c *nodeCtx) add(*value) error {
	_, c0 := c.im.consts[c.in(0)]
	_, c1 := c.im.consts[c.in(1)]
	if c0 || c1 {
		xj, bj := 0, 1
		if c0 {
			xj, bj = 1, 0
		}
		return c.addBias(xj, bj)
	}
	x, err := c.act(0, anyRank)
	if err != nil {
		return err
	}
	y, err := c.act(1, anyRank)
	if err != nil {
		return err
	}
	if !slices.Equal(x.shape, y.shape) {
		return c.errf("inputs %q %v and %q %v: broadcasting is not supported, expected equal shapes", c.in(0), x.shape, c.in(1), y.shape)
	}
	c.emit(ir.Op{Type: ir.OpAdd, Inputs: []string{x.name, y.name}}, x.shape)
	return nil
}

// addBias folds Add(MatMul(x, W), b) into the dense op's bias.
func (c *nodeCtx) addBias(xj, bj int) error {
	x, err := c.act(xj, anyRank)
	if err != nil {
		return err
	}
	im := c.im
	uses := 0 // consumers of the dense output under any of its ONNX names
	for name, v := range im.vals {
		if v == x {
			uses += im.uses[name]
		}
	}
	if x.op < 0 || im.m.Ops[x.op].Type != ir.OpDense || im.m.Ops[x.op].Bias || uses != 1 || len(x.shape) != 1 {
		return c.errf("adding constant %q is supported only as the bias of a MatMul or bias-free Gemm whose output feeds nothing else", c.in(bj))
	}
	b, dims, err := c.floats(bj)
	if err != nil {
		return err
	}
	units := x.shape[0]
	if len(b) != units || len(dims) > 2 || (len(dims) == 2 && dims[0] != 1) {
		return c.errf("bias %q: dims %v, expected [%d] or [1,%d]", c.in(bj), dims, units, units)
	}
	op := &im.m.Ops[x.op]
	op.Bias = true
	im.m.SetParam(op.Name, "bias", &ir.Tensor{Shape: []int{units}, Data: b})
	c.alias(x)
	return nil
}

func (c *nodeCtx) globalPool(x *value) error {
	c.emit(ir.Op{Type: ir.OpGlobalPool, Inputs: []string{x.name}}, []int{x.shape[0], 1, 1})
	return nil
}

func (c *nodeCtx) flatten(x *value) error {
	axis, err := c.intAttr("axis", 1)
	if err != nil {
		return err
	}
	if axis < 0 {
		axis += int64(len(x.shape) + 1)
	}
	if axis != 1 {
		return c.errf("attribute \"axis\": %d, only flattening after the batch dimension (axis 1) is supported", axis)
	}
	return c.flattenTo(x)
}

func (c *nodeCtx) flattenTo(x *value) error {
	if len(x.shape) == 1 {
		c.alias(x)
		return nil
	}
	c.emit(ir.Op{Type: ir.OpFlatten, Inputs: []string{x.name}}, []int{numel(x.shape)})
	return nil
}

// dense emits a dense op from weight w of shape [U,F].
func (c *nodeCtx) dense(x *value, w []float32, units int, bias []float32) {
	op := ir.Op{Type: ir.OpDense, Inputs: []string{x.name}, Units: units, Bias: bias != nil}
	v := c.emit(op, []int{units})
	name := c.im.m.Ops[v.op].Name
	c.im.m.SetParam(name, "weight", &ir.Tensor{Shape: []int{units, x.shape[0]}, Data: w})
	if bias != nil {
		c.im.m.SetParam(name, "bias", &ir.Tensor{Shape: []int{units}, Data: bias})
	}
}

func transpose(w []float32, rows, cols int) []float32 {
	out := make([]float32, len(w))
	for r := 0; r < rows; r++ {
		for k := 0; k < cols; k++ {
			out[k*rows+r] = w[r*cols+k]
		}
	}
	return out
}

func (c *nodeCtx) gemm(*value) error {
	for _, a := range []string{"alpha", "beta"} {
		if v, _, err := c.floatAttr(a, 1); err != nil {
			return err
		} else if v != 1 {
			return c.errf("attribute %q: %g, only 1 is supported", a, v)
		}
	}
	if ta, err := c.intAttr("transA", 0); err != nil {
		return err
	} else if ta != 0 {
		return c.errf("attribute \"transA\": %d, only 0 is supported", ta)
	}
	tb, err := c.intAttr("transB", 0)
	if err != nil {
		return err
	}
	if tb != 0 && tb != 1 {
		return c.errf("attribute \"transB\": %d, expected 0 or 1", tb)
	}
	x, err := c.act(0, vecRank)
	if err != nil {
		return err
	}
	w, wd, err := c.floats(1)
	if err != nil {
		return err
	}
	f := int64(x.shape[0])
	if len(wd) != 2 || (tb == 1 && wd[1] != f) || (tb == 0 && wd[0] != f) {
		want := fmt.Sprintf("[%d, units]", f)
		if tb == 1 {
			want = fmt.Sprintf("[units, %d]", f)
		}
		return c.errf("weight %q: dims %v, expected %s (transB=%d)", c.in(1), wd, want, tb)
	}
	units := int(wd[0])
	if tb == 0 {
		units = int(wd[1])
		w = transpose(w, int(f), units)
	}
	if units < 1 {
		return c.errf("weight %q: dims %v give no output units", c.in(1), wd)
	}
	var bias []float32
	if c.in(2) != "" {
		b, bd, err := c.floats(2)
		if err != nil {
			return err
		}
		switch {
		case len(b) == units && (len(bd) == 1 || len(bd) == 2 && bd[0] == 1):
			bias = b
		case len(b) == 1 && len(bd) <= 2:
			bias = make([]float32, units)
			for i := range bias {
				bias[i] = b[0]
			}
		default:
			return c.errf("input 2 %q: dims %v, expected [%d], [1,%d] or a scalar", c.in(2), bd, units, units)
		}
	}
	c.dense(x, w, units, bias)
	return nil
}

func (c *nodeCtx) matmul(x *value) error {
	w, wd, err := c.floats(1)
	if err != nil {
		return err
	}
	f := int64(x.shape[0])
	if len(wd) != 2 || wd[0] != f || wd[1] < 1 {
		return c.errf("weight %q: dims %v, expected [%d, units]", c.in(1), wd, f)
	}
	units := int(wd[1])
	c.dense(x, transpose(w, int(f), units), units, nil)
	return nil
}

// reshapeAttr reads the target shape of a Reshape from its attribute
// (opset < 5).
func (c *nodeCtx) reshapeAttr(*value) error {
	a, err := c.attr("shape", AttrInts)
	if err != nil {
		return err
	}
	if a == nil {
		return c.errf("attribute \"shape\" is missing")
	}
	return c.reshape(a.Ints)
}

// reshapeInput reads the target shape of a Reshape from its constant input 1
// (opset >= 5).
func (c *nodeCtx) reshapeInput(*value) error {
	t, err := c.constant(1)
	if err != nil {
		return err
	}
	target, err := t.Int64s()
	if err != nil {
		return c.errf("input 1 %q: %v", c.in(1), err)
	}
	return c.reshape(target)
}

// reshape maps a Reshape to the target shape to a flatten.
func (c *nodeCtx) reshape(target []int64) error {
	allowZero, err := c.intAttr("allowzero", 0)
	if err != nil {
		return err
	}
	x, err := c.act(0, anyRank)
	if err != nil {
		return err
	}
	f := int64(numel(x.shape))
	ok := len(target) == 2
	if ok {
		batchOK := target[0] == -1 || target[0] == 1 || (target[0] == 0 && allowZero == 0)
		featOK := target[1] == f || (target[1] == -1 && target[0] != -1)
		ok = batchOK && featOK
	}
	if !ok {
		return c.errf("target shape %v: only flattening [N,%s] to [N,%d] is supported", target, joinInts(x.shape), f)
	}
	return c.flattenTo(x)
}

func joinInts(s []int) string {
	parts := make([]string, len(s))
	for i, v := range s {
		parts[i] = strconv.Itoa(v)
	}
	return strings.Join(parts, ",")
}

// dropout checks that a Dropout runs in inference mode and passes its input
// through.
func (c *nodeCtx) dropout(x *value) error {
	if s := c.in(2); s != "" {
		t, err := c.constant(2)
		if err != nil {
			return err
		}
		if on, err := t.boolValue(); err != nil {
			return c.errf("input 2 %q (training_mode): %v", s, err)
		} else if on {
			return c.errf("input 2 %q: training_mode is true, only inference is supported", s)
		}
	}
	return c.passThrough(x)
}

// passThrough makes the node's output another name for its input, constant
// or computed.
func (c *nodeCtx) passThrough(*value) error {
	if t, isConst := c.im.consts[c.in(0)]; isConst {
		c.im.consts[c.n.Output[0]] = t
		return nil
	}
	x, err := c.act(0, anyRank)
	if err != nil {
		return err
	}
	c.alias(x)
	return nil
}

// boolValue reads a scalar BOOL tensor.
func (t *TensorProto) boolValue() (bool, error) {
	if t.DataType != 9 {
		return false, fmt.Errorf("data type %s, expected BOOL", t.DataType)
	}
	switch {
	case len(t.RawData) == 1:
		return t.RawData[0] != 0, nil
	case t.RawData == nil && len(t.Int32Data) == 1:
		return t.Int32Data[0] != 0, nil
	}
	return false, fmt.Errorf("expected one BOOL value")
}

func (c *nodeCtx) softmax(x *value) error {
	def := int64(1)
	if c.im.opset >= 13 {
		def = -1
	}
	axis, err := c.intAttr("axis", def)
	if err != nil {
		return err
	}
	if axis != 1 && axis != -1 {
		return c.errf("attribute \"axis\": %d, only the class axis (1 or -1) of [N,F] is supported", axis)
	}
	c.emit(ir.Op{Type: ir.OpSoftmax, Inputs: []string{x.name}}, x.shape)
	return nil
}

func (c *nodeCtx) constantNode(*value) error {
	a, err := c.attr("value", AttrTensor)
	if err != nil {
		return err
	}
	if a == nil || a.T == nil {
		return c.errf("attribute \"value\" is missing")
	}
	c.im.consts[c.n.Output[0]] = a.T
	return nil
}

func numel(s []int) int {
	n := 1
	for _, d := range s {
		n *= d
	}
	return n
}
