package gpu

import (
	"fmt"
	"math"
	"sort"

	"github.com/pnasml/pnas/ir"
)

// Net is a model lowered for the GPU: one kernel launch per op (a
// flatten only reinterprets NCHW memory and launches nothing), an
// activation arena and the packed weights. [Lower] makes the launches and
// the arena's buffers, [Net.Plan] places the buffers, [Net.Pack] lays the
// weights out; the offsets of the arguments are set by the last two.
//
// Activations are batch-major NCHW. Buffer offsets and lengths are in
// floats per sample: for a batch of n the arena holds ActFloats*n floats
// and a buffer at Off spans [Off*n, (Off+Len)*n), sample s at Len*s.
type Net struct {
	Kernels    []*Kernel // one a launch, in launch order
	Launches   []Launch
	ActFloats  int       // arena floats a sample
	Weights    []float32 // every kernel's weights, each array at a multiple of Align floats
	Input      Buf       // the model input (C*H*W floats a sample)
	Output     Buf       // the model output
	Logits     Buf       // the softmax input when the model ends in softmax, else Output
	Prob       bool      // the model ends in softmax
	Buffers    int       // buffers of the arena
	Tensors    int       // IR tensors, the input included
	LowerBound int       // floats a sample of the buffers live during the busiest op
	Padding    int       // max over ops of the alignment padding of the live buffers, floats a sample

	bufs            []*buffer // the arena's buffers
	ops             int       // ops of the model
	in, out, logits int       // buffers of the input, the output and the logits
	planned, packed bool
}

// buffer is a range of the arena one or more tensors use (a flatten shares
// its input's), live from the op that writes it to the last that reads it.
type buffer struct {
	len, raw, def, last, off int
}

// Align is the alignment of arena buffers and weight arrays, in floats
// (128 bytes).
const Align = 32

// Buf is a range of the activation arena, in floats a sample.
type Buf struct{ Off, Len int }

// ArgKind says what a pointer argument points to.
type ArgKind uint8

const (
	ArgAct    ArgKind = iota // an arena buffer (Off in floats a sample)
	ArgWeight                // a weight array (Off in floats of Weights)
)

// Arg is one pointer argument of a launch.
type Arg struct {
	Kind ArgKind
	Off  int // set by Plan (ArgAct) and Pack (ArgWeight)
	Len  int // floats (a sample for ArgAct)

	buf  int       // ArgAct: the buffer
	data []float32 // ArgWeight: the values
}

// Launch is one kernel launch: kernel Kernels[i] for op Op (index into the
// model's ops) on Grid, with pointer arguments Args and the batch size as
// its one int argument.
type Launch struct {
	Op   int
	Grid Grid
	Args []Arg
}

var actOf = map[ir.Activation]Act{"": ActNone, ir.ActNone: ActNone, ir.ActReLU: ActReLU, ir.ActReLU6: ActReLU6}

// Lower lowers a verified, pass-optimised model.
func Lower(m *ir.Model) (*Net, error) {
	shapes, err := m.InferShapes()
	if err != nil {
		return nil, err
	}
	last := ir.LastUse(m)
	net := &Net{ops: len(m.Ops)}

	// Buffers: one a tensor; a flatten shares its input's.
	var bufs []*buffer
	bufOf := map[string]int{}
	newBuf := func(name string, def int) {
		raw := numel(shapes[name])
		bufs = append(bufs, &buffer{len: (raw + Align - 1) / Align * Align, raw: raw, def: def, last: last[name]})
		bufOf[name] = len(bufs) - 1
	}
	newBuf(m.Input.Name, -1)
	for i := range m.Ops {
		op := &m.Ops[i]
		if op.Type == ir.OpFlatten {
			b := bufs[bufOf[op.Inputs[0]]]
			b.last = max(b.last, last[op.Output])
			bufOf[op.Output] = bufOf[op.Inputs[0]]
			continue
		}
		newBuf(op.Output, i)
	}
	net.bufs = bufs
	act := func(name string) Arg { return Arg{Kind: ArgAct, Len: numel(shapes[name]), buf: bufOf[name]} }
	weight := func(v []float32) Arg { return Arg{Kind: ArgWeight, Len: len(v), data: v} }

	for i := range m.Ops {
		op := &m.Ops[i]
		if op.Type == ir.OpFlatten {
			continue
		}
		in, out := shapes[op.Inputs[0]], shapes[op.Output]
		name := fmt.Sprintf("op%d", i)
		a := actOf[op.FusedActivation()]
		args := []Arg{act(op.Output), act(op.Inputs[0])}
		var k *Kernel
		var g Grid
		switch op.Type {
		case ir.OpConv2D:
			s := ConvSpec{Cin: in[0], H: in[1], W: in[2], Cout: out[0], OH: out[1], OW: out[2],
				KH: op.Kernel[0], KW: op.Kernel[1], SH: op.Stride[0], SW: op.Stride[1], PT: op.Pads[0], PL: op.Pads[1],
				Groups: op.Groups, Bias: op.Bias, Residual: len(op.Inputs) == 2, Act: a}
			switch {
			case s.Pointwise() && s.Cout >= bigTileMin:
				name += "_pw64"
			case s.Pointwise():
				name += "_pw"
			case s.Depthwise():
				name += fmt.Sprintf("_dw_k%d_s%d", s.KH, s.SH)
			default:
				name += "_conv"
			}
			k, g = Conv(name, s), ConvGrid(s)
			args = append(args, weight(m.Param(op.Name, "weight").Data))
			if op.Bias {
				args = append(args, weight(m.Param(op.Name, "bias").Data))
			}
			if s.Residual {
				args = append(args, act(op.Inputs[1]))
			}
		case ir.OpBatchNorm:
			c := in[0]
			per := numel(in) / c
			sc, bi, mu, va := m.Param(op.Name, "scale").Data, m.Param(op.Name, "bias").Data, m.Param(op.Name, "mean").Data, m.Param(op.Name, "var").Data
			scale, bias := make([]float32, c), make([]float32, c)
			for ch := 0; ch < c; ch++ {
				s := float64(sc[ch]) / math.Sqrt(float64(va[ch])+op.Epsilon)
				scale[ch] = float32(s)
				bias[ch] = float32(float64(bi[ch]) - float64(mu[ch])*s)
			}
			k, g = ScaleBias(name+"_bn", c, per, a), ElemGrid(numel(in))
			args = append(args, weight(scale), weight(bias))
		case ir.OpDense:
			k, g = Linear(name+"_linear", numel(in), op.Units, op.Bias, a), ElemGrid(op.Units)
			args = append(args, weight(m.Param(op.Name, "weight").Data))
			if op.Bias {
				args = append(args, weight(m.Param(op.Name, "bias").Data))
			}
		case ir.OpGlobalPool:
			k, g = Pool(name+"_pool", in[0], in[1]*in[2]), ElemGrid(in[0])
		case ir.OpAdd:
			k, g = AddAct(name+"_add", numel(out), a), ElemGrid(numel(out))
			args = append(args, act(op.Inputs[1]))
		case ir.OpActivation:
			k, g = Activate(name+"_act", numel(out), a), ElemGrid(numel(out))
		case ir.OpSoftmax:
			k, g = Softmax(name+"_softmax", numel(out)), ElemGrid(1)
		default:
			return nil, fmt.Errorf("op %q: op type %q has no GPU kernel", op.Name, op.Type)
		}
		if err := k.Check(); err != nil {
			return nil, fmt.Errorf("op %q: %w", op.Name, err)
		}
		net.Kernels = append(net.Kernels, k)
		net.Launches = append(net.Launches, Launch{Op: i, Grid: g, Args: args})
	}
	net.in, net.out, net.logits = 0, bufOf[m.Output], bufOf[m.Output]
	net.Input = Buf{Len: numel(m.Input.Shape)}
	o := act(m.Output)
	net.Output, net.Logits = Buf{Len: o.Len}, Buf{Len: o.Len}
	if n := len(m.Ops); m.Ops[n-1].Type == ir.OpSoftmax && m.Ops[n-1].Output == m.Output {
		l := act(m.Ops[n-1].Inputs[0])
		net.logits, net.Logits, net.Prob = l.buf, Buf{Len: l.Len}, true
	}
	net.Buffers, net.Tensors = len(bufs), len(m.Ops)+1
	return net, nil
}

// Plan places the arena's buffers and sets the offsets of the activation
// arguments, the input, output and logits, ActFloats, LowerBound and
// Padding. Calling it again changes nothing.
func (net *Net) Plan() {
	if net.planned {
		return
	}
	net.planned = true
	bufs := net.bufs
	// Placement: every buffer goes into the lowest gap (or the smallest
	// sufficient one) left by the placed buffers whose lifetimes overlap
	// its own; of several orders, the smallest arena wins.
	orders := []func(a, b *buffer) bool{
		func(a, b *buffer) bool { return a.def < b.def },                                   // first use
		func(a, b *buffer) bool { return a.len > b.len },                                   // largest first
		func(a, b *buffer) bool { return a.last-a.def > b.last-b.def },                     // longest lived first
		func(a, b *buffer) bool { return a.len*(a.last-a.def+1) > b.len*(b.last-b.def+1) }, // largest area first
	}
	best := -1
	var bestOffs []int
	for _, less := range orders {
		order := make([]int, len(bufs))
		for i := range order {
			order[i] = i
		}
		sort.SliceStable(order, func(x, y int) bool { return less(bufs[order[x]], bufs[order[y]]) })
		for _, bestFit := range []bool{false, true} {
			offs := make([]int, len(bufs))
			size := 0
			for k, i := range order {
				b := bufs[i]
				var busy [][2]int
				for _, j := range order[:k] {
					if p := bufs[j]; p.def <= b.last && b.def <= p.last {
						busy = append(busy, [2]int{offs[j], offs[j] + p.len})
					}
				}
				sort.Slice(busy, func(x, y int) bool { return busy[x][0] < busy[y][0] })
				at, fit, gap := 0, -1, 0
				for _, r := range busy {
					if r[0]-at >= b.len && (fit < 0 || r[0]-at < gap) {
						fit, gap = at, r[0]-at
						if !bestFit {
							break
						}
					}
					at = max(at, r[1])
				}
				if fit >= 0 {
					at = fit
				}
				offs[i] = at
				size = max(size, at+b.len)
			}
			if best < 0 || size < best {
				best, bestOffs = size, offs
			}
		}
	}
	for i, b := range bufs {
		b.off = bestOffs[i]
	}
	net.ActFloats = best
	for op := -1; op <= net.ops; op++ {
		live, pad := 0, 0
		for _, b := range bufs {
			if b.def <= op && op <= b.last {
				live += b.len
				pad += b.len - b.raw
			}
		}
		net.LowerBound = max(net.LowerBound, live)
		net.Padding = max(net.Padding, pad)
	}
	for _, l := range net.Launches {
		for i, a := range l.Args {
			if a.Kind == ArgAct {
				l.Args[i].Off = bufs[a.buf].off
			}
		}
	}
	net.Input.Off, net.Output.Off, net.Logits.Off = bufs[net.in].off, bufs[net.out].off, bufs[net.logits].off
}

// Pack lays every weight array out in Weights, each at a multiple of Align
// floats, and sets the offsets of the weight arguments. Calling it again
// changes nothing.
func (net *Net) Pack() {
	if net.packed {
		return
	}
	net.packed = true
	align := func() {
		for len(net.Weights)%Align != 0 {
			net.Weights = append(net.Weights, 0)
		}
	}
	for _, l := range net.Launches {
		for i, a := range l.Args {
			if a.Kind == ArgWeight {
				align()
				l.Args[i].Off = len(net.Weights)
				net.Weights = append(net.Weights, a.data...)
			}
		}
	}
	align()
}

func numel(s []int) int {
	n := 1
	for _, d := range s {
		n *= d
	}
	return n
}

// Emulate runs the net on a batch of n samples (input NCHW) in the
// emulator and returns the output, n times Output.Len floats. It plans and
// packs the net first where that was not done.
func (net *Net) Emulate(input []float32, n int) ([]float32, error) {
	net.Plan()
	net.Pack()
	if n < 1 || len(input) != n*net.Input.Len {
		return nil, fmt.Errorf("gpu: expected %d samples of %d floats, got %d floats", n, net.Input.Len, len(input))
	}
	arena := make([]float32, net.ActFloats*n)
	// Stale values make missed writes visible.
	for i := range arena {
		arena[i] = float32(math.NaN())
	}
	copy(arena[net.Input.Off*n:], input)
	for li, l := range net.Launches {
		k := net.Kernels[li]
		var ptrs [][]float32
		for _, a := range l.Args {
			if a.Kind == ArgAct {
				ptrs = append(ptrs, arena[a.Off*n:(a.Off+a.Len)*n])
			} else {
				ptrs = append(ptrs, net.Weights[a.Off:a.Off+a.Len])
			}
		}
		gx, gy := l.Grid.Blocks(n)
		if err := Run(k, gx, gy, ptrs, []int32{int32(n)}); err != nil {
			return nil, err
		}
	}
	return append([]float32(nil), arena[net.Output.Off*n:(net.Output.Off+net.Output.Len)*n]...), nil
}
