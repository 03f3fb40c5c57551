package ir

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// Builder assembles a model op by op. Weights not given explicitly are drawn
// at random from Rand (He-style normal for convolutions and dense layers,
// BN statistics near identity), which makes it the tool for test models and
// for the search's derived networks alike. Methods return the name of the
// tensor they produce. The first error sticks and is returned by Model.
type Builder struct {
	m     *Model
	Rand  *rand.Rand
	Block *Block // annotation attached to ops added from now on (nil for none)
	err   error
	n     int
}

// NewBuilder starts a model whose input tensor is named "input" with the
// per-sample shape [c,h,w].
func NewBuilder(name string, c, h, w int, rng *rand.Rand) *Builder {
	if rng == nil {
		rng = rand.New(rand.NewPCG(1, 2))
	}
	return &Builder{
		Rand: rng,
		m: &Model{
			Format: FormatName, Version: FormatVersion, Name: name, Producer: "pnas",
			Input:  Input{Name: "input", Shape: []int{c, h, w}, Layout: "NCHW"},
			Params: map[string]*Tensor{},
		},
	}
}

// Input returns the name of the input tensor.
func (b *Builder) Input() string { return b.m.Input.Name }

// Model finishes the model with out as its output, verifies it and returns it.
func (b *Builder) Model(out string) (*Model, error) {
	if b.err != nil {
		return nil, b.err
	}
	b.m.Output = out
	if err := b.m.Verify(); err != nil {
		return nil, err
	}
	return b.m, nil
}

// Raw returns the model under construction (not verified).
func (b *Builder) Raw() *Model { return b.m }

func (b *Builder) add(op Op) string {
	if op.Name == "" {
		op.Name = fmt.Sprintf("%s_%d", op.Type, b.n)
	}
	b.n++
	if op.Output == "" {
		op.Output = op.Name
	}
	if b.Block != nil {
		blk := *b.Block
		op.Block = &blk
	}
	b.m.Ops = append(b.m.Ops, op)
	return op.Output
}

// Shape returns the per-sample shape of tensor t as built so far, or nil
// when t is not defined or an earlier step failed (the error sticks and
// Model returns it).
func (b *Builder) Shape(t string) []int {
	if b.err != nil {
		return nil
	}
	saved := b.m.Output
	b.m.Output = t
	shapes, err := b.m.inferPartial()
	b.m.Output = saved
	if err != nil {
		b.err = err
		return nil
	}
	s, ok := shapes[t]
	if !ok {
		b.err = fmt.Errorf("builder: tensor %q is not defined", t)
		return nil
	}
	return s
}

// inferPartial infers shapes without the output checks.
func (m *Model) inferPartial() (Shapes, error) {
	c := *m
	if len(c.Ops) == 0 {
		return Shapes{c.Input.Name: c.Input.Shape}, nil
	}
	c.Output = c.Ops[len(c.Ops)-1].Output
	c.Input.Labels = nil
	// a partial model may end in a map: check ops only
	shapes := Shapes{c.Input.Name: append([]int(nil), c.Input.Shape...)}
	for i := range c.Ops {
		op := &c.Ops[i]
		ins := make([][]int, len(op.Inputs))
		for j, n := range op.Inputs {
			s, ok := shapes[n]
			if !ok {
				return nil, errf(op.Name, fmt.Sprintf("inputs[%d]", j), "tensor %q is not defined", n)
			}
			ins[j] = s
		}
		out, err := inferOp(&c, op, ins)
		if err != nil {
			return nil, err
		}
		shapes[op.Output] = out
	}
	return shapes, nil
}

func (b *Builder) normal(n int, std float64) []float32 {
	d := make([]float32, n)
	for i := range d {
		d[i] = float32(b.Rand.NormFloat64() * std)
	}
	return d
}

// Conv adds a bias-free convolution with "same"-style padding k/2 on every
// side (the search space's convention) and returns its output.
func (b *Builder) Conv(name, in string, out, k, stride, groups int) string {
	p := k / 2
	return b.ConvFull(name, in, out, [2]int{k, k}, [2]int{stride, stride}, [4]int{p, p, p, p}, groups, false, nil, nil)
}

// ConvFull adds a convolution with every attribute explicit. Nil weights
// are drawn at random.
func (b *Builder) ConvFull(name, in string, out int, k, stride [2]int, pads [4]int, groups int, bias bool, weight, biasData []float32) string {
	s := b.Shape(in)
	if s == nil {
		return ""
	}
	if len(s) != 3 || groups <= 0 || s[0]%groups != 0 {
		b.err = errf(name, "groups", "input shape %v does not fit groups %d", s, groups)
		return ""
	}
	cin := s[0] / groups
	if weight == nil {
		fanOut := float64(k[0] * k[1] * out / groups)
		weight = b.normal(out*cin*k[0]*k[1], math.Sqrt(2/fanOut))
	}
	op := Op{Name: name, Type: OpConv2D, Inputs: []string{in}, OutChannels: out,
		Kernel: []int{k[0], k[1]}, Stride: []int{stride[0], stride[1]}, Pads: pads[:], Groups: groups, Bias: bias}
	op.Name = b.name(op)
	b.m.SetParam(op.Name, "weight", &Tensor{Shape: []int{out, cin, k[0], k[1]}, Data: weight})
	if bias {
		if biasData == nil {
			biasData = b.normal(out, 0.1)
		}
		b.m.SetParam(op.Name, "bias", &Tensor{Shape: []int{out}, Data: biasData})
	}
	return b.add(op)
}

func (b *Builder) name(op Op) string {
	if op.Name == "" {
		return fmt.Sprintf("%s_%d", op.Type, b.n)
	}
	return op.Name
}

// BatchNorm adds a batch normalization with epsilon 1e-3. Nil statistics are
// drawn at random around identity (so tests exercise every term).
func (b *Builder) BatchNorm(name, in string, scale, bias, mean, variance []float32) string {
	s := b.Shape(in)
	if s == nil {
		return ""
	}
	c := s[0]
	rnd := func(d []float32, center, spread float64) []float32 {
		if d != nil {
			return d
		}
		d = make([]float32, c)
		for i := range d {
			d[i] = float32(center + spread*(b.Rand.Float64()*2-1))
		}
		return d
	}
	op := Op{Name: name, Type: OpBatchNorm, Inputs: []string{in}, Epsilon: 1e-3}
	op.Name = b.name(op)
	b.m.SetParam(op.Name, "scale", &Tensor{Shape: []int{c}, Data: rnd(scale, 1, 0.3)})
	b.m.SetParam(op.Name, "bias", &Tensor{Shape: []int{c}, Data: rnd(bias, 0, 0.3)})
	b.m.SetParam(op.Name, "mean", &Tensor{Shape: []int{c}, Data: rnd(mean, 0, 0.3)})
	b.m.SetParam(op.Name, "var", &Tensor{Shape: []int{c}, Data: rnd(variance, 1, 0.5)})
	return b.add(op)
}

// Act adds a standalone activation.
func (b *Builder) Act(name, in string, a Activation) string {
	return b.add(Op{Name: name, Type: OpActivation, Inputs: []string{in}, Activation: a})
}

// Add adds an element-wise sum.
func (b *Builder) Add(name, x, y string) string {
	return b.add(Op{Name: name, Type: OpAdd, Inputs: []string{x, y}})
}

// GlobalPool adds a global average pool.
func (b *Builder) GlobalPool(name, in string) string {
	return b.add(Op{Name: name, Type: OpGlobalPool, Inputs: []string{in}})
}

// Flatten adds a flatten.
func (b *Builder) Flatten(name, in string) string {
	return b.add(Op{Name: name, Type: OpFlatten, Inputs: []string{in}})
}

// Softmax adds a softmax.
func (b *Builder) Softmax(name, in string) string {
	return b.add(Op{Name: name, Type: OpSoftmax, Inputs: []string{in}})
}

// Dense adds a linear layer with bias. Nil weights are drawn at random
// (U(±1/sqrt(fan_in))).
func (b *Builder) Dense(name, in string, units int, weight, bias []float32) string {
	s := b.Shape(in)
	if s == nil {
		return ""
	}
	f := s[0]
	lim := 1 / math.Sqrt(float64(f))
	uni := func(n int) []float32 {
		d := make([]float32, n)
		for i := range d {
			d[i] = float32(lim * (b.Rand.Float64()*2 - 1))
		}
		return d
	}
	if weight == nil {
		weight = uni(units * f)
	}
	if bias == nil {
		bias = uni(units)
	}
	op := Op{Name: name, Type: OpDense, Inputs: []string{in}, Units: units, Bias: true}
	op.Name = b.name(op)
	b.m.SetParam(op.Name, "weight", &Tensor{Shape: []int{units, f}, Data: weight})
	b.m.SetParam(op.Name, "bias", &Tensor{Shape: []int{units}, Data: bias})
	return b.add(op)
}

// ConvBNAct adds conv + BN + activation (none for ActNone), with ops named
// prefix+".conv", prefix+".bn" and prefix+".act".
func (b *Builder) ConvBNAct(prefix, in string, out, k, stride, groups int, a Activation) string {
	x := b.Conv(prefix+".conv", in, out, k, stride, groups)
	x = b.BatchNorm(prefix+".bn", x, nil, nil, nil, nil)
	if a != ActNone {
		x = b.Act(prefix+".act", x, a)
	}
	return x
}
