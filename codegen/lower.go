package codegen

import (
	"fmt"
	"math"

	"github.com/pnasml/pnas/ir"
	"github.com/pnasml/pnas/runtime"
)

// Lowering maps every op of a pass-optimised model onto one runtime
// operator call (a step) and gives every tensor its runtime layout:
// channels-last, channel stride PadC(C), and the zero halo its readers
// need. Tensors that need no storage of their own (a flatten that only
// reinterprets, an output written over a dead input) share a buffer with
// another tensor; a buffer is one rt.Tensor in the generated program.

// stepKind is the runtime operator family a step calls.
type stepKind int

const (
	stepConv    stepKind = iota // conv2d and batchnorm: rt.Pointwise, Depthwise, DenseConv, GroupedConv
	stepLinear                  // dense: rt.Linear
	stepPool                    // global_avg_pool: rt.GlobalAvgPoolOn
	stepAdd                     // add: rt.Add
	stepAct                     // activation: rt.Activate
	stepSoftmax                 // softmax: rt.Softmax
	stepFlatten                 // flatten of an H x W map read by other than dense: planar copy
)

// tensor is one IR tensor and its runtime layout.
type tensor struct {
	name    string
	shape   []int // IR per-sample shape
	h, w, c int   // runtime geometry (a vector is 1 x 1 x F)
	def     int   // producing op index, -1 for the model input
	last    int   // index of the last reading op (len(ops) for the model output)
	view    int   // tensor whose storage this one reinterprets, or -1
	buf     int   // buffer index
	readers []int // op indices reading this tensor
}

// buffer is one rt.Tensor of the generated program: storage shared by one
// or more tensors with identical geometry.
type buffer struct {
	h, w, c, cs, pad int
	def, last        int   // live interval in op indices, inclusive
	tensors          []int // member tensors
	off              int   // arena offset in floats (set by the planner)
	floats           int   // arena floats reserved: Len rounded up to arenaAlign
	raw              int   // bytes of the largest member in the IR (4 * numel)
	zeroHalo         bool  // halo may be dirty: clear it before the first write
	dirty            bool  // shares arena bytes with another buffer
	// virtual: an intermediate tensor of a fused block, computed in the
	// block's row strips and never written whole; it takes no arena floats
	// and the program declares no tensor for it.
	virtual bool
}

// tensorLen is the number of floats of the runtime tensor.
func (b *buffer) tensorLen() int { return (b.h + 2*b.pad) * (b.w + 2*b.pad) * b.cs }

// step is one runtime operator call. Exactly the field of its kind is
// set among conv and lin; the other kinds need no parameters.
type step struct {
	op      *ir.Op
	index   int // op index
	kind    stepKind
	in, in2 int // input tensors (in2: residual or second addend, -1 for none)
	out     int
	act     runtime.Act
	conv    *convStep   // stepConv
	lin     *linearStep // stepLinear
	desc    string      // one-line description for the generated code
	fused   *fusedBlock // the fused block this step belongs to, or nil
	split   *fusedBlock // the block split by channels this step belongs to, or nil
}

// convStep is a convolution (a batchnorm lowers to a depthwise 1x1 one)
// with its weights in IR layout.
type convStep struct {
	spec    runtime.ConvSpec
	kind    string // runtime.Kind*
	weights []float32
	bias    []float32
}

// linearStep is a dense layer reading an h x w x c input (a vector: 1 x 1
// x c) with its weights in IR layout.
type linearStep struct {
	h, w, c, units int
	weights        []float32
	bias           []float32
}

// params returns the weights and bias of a step in IR layout (nil for the
// kinds without parameters).
func (st *step) params() (weights, bias []float32) {
	switch {
	case st.conv != nil:
		return st.conv.weights, st.conv.bias
	case st.lin != nil:
		return st.lin.weights, st.lin.bias
	}
	return nil, nil
}

// lowered is a model ready for emission.
type lowered struct {
	m       *ir.Model
	tensors []*tensor
	byName  map[string]int
	bufs    []*buffer
	steps   []*step
	input   int // tensor index of the model input
	output  int // tensor index of the model output
	logits  int // tensor holding the logits: the softmax input when the model ends in softmax
	prob    bool
	fusions []*fusedBlock // fused inverted-residual blocks, in op order
	splits  []*fusedBlock // blocks split by channels on more than one thread, in op order
}

// resolve follows views to the tensor that owns the storage.
func (l *lowered) resolve(t int) int {
	for l.tensors[t].view >= 0 {
		t = l.tensors[t].view
	}
	return t
}

func (l *lowered) bufOf(t int) *buffer { return l.bufs[l.tensors[t].buf] }

var actOf = map[ir.Activation]runtime.Act{"": runtime.ActNone, ir.ActNone: runtime.ActNone, ir.ActReLU: runtime.ActReLU, ir.ActReLU6: runtime.ActReLU6}

// lower lowers a verified model; fuse says which inverted-residual blocks
// run fused, and split which of the small ones run split by channels on
// more than one thread (fuseBlocks).
func lower(m *ir.Model, fuse FuseMode, split splitRule) (*lowered, error) {
	shapes, err := m.InferShapes()
	if err != nil {
		return nil, err
	}
	l := &lowered{m: m, byName: map[string]int{}}
	last := ir.LastUse(m)
	addTensor := func(name string, def int) int {
		s := shapes[name]
		t := &tensor{name: name, shape: s, def: def, last: last[name], view: -1, buf: -1}
		if len(s) == 3 {
			t.c, t.h, t.w = s[0], s[1], s[2]
		} else {
			t.c, t.h, t.w = s[0], 1, 1
		}
		l.tensors = append(l.tensors, t)
		l.byName[name] = len(l.tensors) - 1
		return len(l.tensors) - 1
	}
	l.input = addTensor(m.Input.Name, -1)
	for i := range m.Ops {
		addTensor(m.Ops[i].Output, i)
	}
	for i := range m.Ops {
		for _, in := range m.Ops[i].Inputs {
			t := l.tensors[l.byName[in]]
			t.readers = append(t.readers, i)
		}
	}

	// Flatten views: a flatten of a vector or of a 1 x 1 map keeps the
	// layout; a flatten of a larger map read only by dense ops is folded
	// into their packed weights.
	isView := make([]bool, len(m.Ops))
	for i := range m.Ops {
		op := &m.Ops[i]
		if op.Type != ir.OpFlatten {
			continue
		}
		src := l.tensors[l.byName[op.Inputs[0]]]
		out := l.tensors[l.byName[op.Output]]
		ok := src.h == 1 && src.w == 1
		if !ok && out.name != m.Output && len(out.readers) > 0 {
			ok = true
			for _, r := range out.readers {
				if m.Ops[r].Type != ir.OpDense {
					ok = false
				}
			}
		}
		if ok {
			out.view = l.byName[op.Inputs[0]]
			isView[i] = true
		}
	}

	// Steps.
	for i := range m.Ops {
		if isView[i] {
			continue
		}
		st, err := l.lowerOp(i, shapes)
		if err != nil {
			return nil, err
		}
		l.steps = append(l.steps, st)
	}

	l.output = l.byName[m.Output]
	l.logits = l.output
	if n := len(m.Ops); m.Ops[n-1].Type == ir.OpSoftmax && m.Ops[n-1].Output == m.Output {
		l.logits = l.byName[m.Ops[n-1].Inputs[0]]
		l.prob = true
	}
	l.fuseBlocks(fuse, split)
	l.assignBuffers()
	l.markVirtual()
	l.keepInput()
	return l, nil
}

func opDesc(op *ir.Op, shapes ir.Shapes) string {
	return fmt.Sprintf("%s %q%s: %s -> %s", op.Type, op.Name, opDetail(op), dims(shapes[op.Inputs[0]]), dims(shapes[op.Output]))
}

// opDetail is what a description says of an op after its type and name:
// the kernel, stride, groups and residual of a convolution, and the fused
// activation.
func opDetail(op *ir.Op) string {
	s := ""
	if op.Type == ir.OpConv2D {
		s = fmt.Sprintf(" %dx%d/%d", op.Kernel[0], op.Kernel[1], op.Stride[0])
		if op.Groups > 1 {
			s += fmt.Sprintf(" g%d", op.Groups)
		}
		if len(op.Inputs) == 2 {
			s += " +residual"
		}
	}
	if a := op.FusedActivation(); a != ir.ActNone {
		s += " " + string(a)
	}
	return s
}

func dims(s []int) string {
	out := ""
	for i, d := range s {
		if i > 0 {
			out += "x"
		}
		out += fmt.Sprint(d)
	}
	return out
}

// lowerOp makes the step of op i with its weights in IR layout; they are
// packed after planning (packWeights), once the channel strides of the
// inputs are known.
func (l *lowered) lowerOp(i int, shapes ir.Shapes) (*step, error) {
	m := l.m
	op := &m.Ops[i]
	st := &step{op: op, index: i, in: l.byName[op.Inputs[0]], in2: -1, out: l.byName[op.Output],
		act: actOf[op.Activation], desc: opDesc(op, shapes)}
	if len(op.Inputs) == 2 {
		st.in2 = l.byName[op.Inputs[1]]
	}
	in := l.tensors[st.in]
	switch op.Type {
	case ir.OpConv2D:
		st.kind = stepConv
		cs := &convStep{spec: runtime.ConvSpec{
			Cin: in.c, Cout: op.OutChannels, KH: op.Kernel[0], KW: op.Kernel[1],
			StrideH: op.Stride[0], StrideW: op.Stride[1],
			PadT: op.Pads[0], PadL: op.Pads[1], PadB: op.Pads[2], PadR: op.Pads[3],
			DilH: 1, DilW: 1, Groups: op.Groups, Act: st.act,
		}}
		cs.weights = m.Param(op.Name, "weight").Data
		if op.Bias {
			cs.bias = m.Param(op.Name, "bias").Data
		}
		st.conv = cs
	case ir.OpBatchNorm:
		// y = s*x + (b - mean*s), s = scale/sqrt(var+eps): a 1x1 conv with
		// one filter per channel.
		st.kind = stepConv
		c := in.c
		cs := &convStep{spec: runtime.ConvSpec{Cin: c, Cout: c, KH: 1, KW: 1, StrideH: 1, StrideW: 1, DilH: 1, DilW: 1, Groups: c}}
		sc, bi, mu, va := m.Param(op.Name, "scale").Data, m.Param(op.Name, "bias").Data, m.Param(op.Name, "mean").Data, m.Param(op.Name, "var").Data
		cs.weights = make([]float32, c)
		cs.bias = make([]float32, c)
		for ch := 0; ch < c; ch++ {
			s := float64(sc[ch]) / math.Sqrt(float64(va[ch])+op.Epsilon)
			cs.weights[ch] = float32(s)
			cs.bias[ch] = float32(float64(bi[ch]) - float64(mu[ch])*s)
		}
		st.conv = cs
	case ir.OpDense:
		st.kind = stepLinear
		src := l.tensors[l.resolve(st.in)]
		ls := &linearStep{h: src.h, w: src.w, c: src.c, units: op.Units}
		if len(src.shape) == 1 {
			ls.h, ls.w = 1, 1
		}
		ls.weights = m.Param(op.Name, "weight").Data
		if op.Bias {
			ls.bias = m.Param(op.Name, "bias").Data
		}
		st.lin = ls
	case ir.OpGlobalPool:
		st.kind = stepPool
	case ir.OpAdd:
		st.kind = stepAdd
	case ir.OpActivation:
		st.kind = stepAct
	case ir.OpSoftmax:
		st.kind = stepSoftmax
	case ir.OpFlatten:
		st.kind = stepFlatten
	default:
		return nil, fmt.Errorf("op %q: op type %q has no runtime operator", op.Name, op.Type)
	}
	if st.conv != nil {
		if err := st.conv.spec.Validate(); err != nil {
			return nil, fmt.Errorf("op %q: %w", op.Name, err)
		}
		st.conv.kind = st.conv.spec.Kind()
	}
	return st, nil
}

// inPlace reports whether step st may write its output over tensor t (its
// residual, addend or input): t dies at this step, has the output's
// geometry and the standard channel stride, and the operator allows it.
func (l *lowered) inPlace(st *step, t int) bool {
	if t < 0 {
		return false
	}
	t = l.resolve(t)
	if t == l.resolve(l.logits) {
		return false // the logits outlive the final softmax
	}
	b := l.bufOf(t)
	out := l.tensors[st.out]
	if b.last != st.index || t == l.input || b.h != out.h || b.w != out.w || b.c != out.c {
		return false
	}
	// the operator's primary input must not be the buffer being overwritten,
	// except for the elementwise operators, which allow out == in.
	if st.kind == stepConv && l.tensors[l.resolve(st.in)].buf == l.tensors[t].buf {
		return false
	}
	// nor, for a fused block's projection, the block's input.
	if f := st.fused; f != nil && l.tensors[l.resolve(f.head().in)].buf == l.tensors[t].buf {
		return false
	}
	return true
}

// markVirtual marks the buffers that hold only intermediate tensors of
// fused blocks (the expansion's and the depthwise convolution's outputs):
// the blocks compute them strip by strip in their own scratch, so they
// need no arena floats. Left in the arena, MobileNetV2's were 5 of its 7
// MB and pushed the tensors that are written to offsets far apart.
func (l *lowered) markVirtual() {
	inner := map[int]bool{}
	for _, b := range l.fusions {
		if b.expand != nil {
			inner[b.expand.out] = true
		}
		inner[b.dw.out] = true
	}
	for _, b := range l.bufs {
		all := len(b.tensors) > 0
		for _, t := range b.tensors {
			all = all && inner[t]
		}
		b.virtual = all
	}
}

// assignBuffers groups tensors into buffers (views and in-place outputs
// share), decides each buffer's channel stride and halo, and repacks the
// dense convolutions for their input's channel stride.
func (l *lowered) assignBuffers() {
	newBuf := func(t int) {
		tt := l.tensors[t]
		b := &buffer{h: tt.h, w: tt.w, c: tt.c, def: tt.def, last: tt.last, tensors: []int{t}, raw: 4 * numel(tt.shape)}
		l.bufs = append(l.bufs, b)
		tt.buf = len(l.bufs) - 1
	}
	join := func(t, into int) {
		tt := l.tensors[t]
		b := l.bufOf(into)
		tt.buf = l.tensors[into].buf
		b.tensors = append(b.tensors, t)
		b.def = min(b.def, tt.def)
		b.last = max(b.last, tt.last)
		b.raw = max(b.raw, 4*numel(tt.shape))
	}
	newBuf(l.input)
	stepAt := map[int]*step{}
	for _, st := range l.steps {
		stepAt[st.index] = st
	}
	for i := range l.m.Ops {
		out := l.byName[l.m.Ops[i].Output]
		if v := l.tensors[out].view; v >= 0 {
			join(out, l.resolve(v))
			continue
		}
		st := stepAt[i]
		var cands []int
		switch st.kind {
		case stepConv:
			cands = []int{st.in2}
		case stepAdd:
			cands = []int{st.in, st.in2}
		case stepAct, stepSoftmax:
			cands = []int{st.in}
		}
		done := false
		for _, c := range cands {
			if l.inPlace(st, c) {
				join(out, l.resolve(c))
				done = true
				break
			}
		}
		if !done {
			newBuf(out)
		}
	}

	// Channel strides: PadC everywhere except a model input read only as
	// the primary input of dense or pointwise convolutions (an RGB image
	// then stays 3 floats a pixel).
	for _, b := range l.bufs {
		b.cs = runtime.PadC(b.c)
	}
	inBuf := l.bufOf(l.input)
	narrow := len(inBuf.tensors) == 1
	for _, r := range l.tensors[l.input].readers {
		st := stepAt[r]
		if st == nil || st.kind != stepConv || st.in != l.input || st.in2 == l.input ||
			(st.conv.kind != runtime.KindDense && st.conv.kind != runtime.KindPointwise) {
			narrow = false
		}
	}
	if narrow {
		inBuf.cs = inBuf.c
	}
	// Halos: the largest any convolution reading the buffer needs.
	for _, st := range l.steps {
		if st.kind == stepConv {
			b := l.bufOf(l.resolve(st.in))
			b.pad = max(b.pad, st.conv.spec.Halo())
			st.conv.spec.InStride = b.cs
		}
	}
}

func numel(s []int) int {
	n := 1
	for _, d := range s {
		n *= d
	}
	return n
}
