package pass

import (
	"fmt"
	"math"

	"github.com/pnasml/pnas/ir"
)

// DeadOps removes the ops whose outputs do not reach the model output,
// and their weights.
func DeadOps(m *ir.Model) error {
	live := map[string]bool{m.Output: true}
	keep := make([]bool, len(m.Ops))
	for i := len(m.Ops) - 1; i >= 0; i-- {
		op := &m.Ops[i]
		if !live[op.Output] {
			continue
		}
		keep[i] = true
		for _, in := range op.Inputs {
			live[in] = true
		}
	}
	ops := m.Ops[:0]
	for i := range m.Ops {
		if keep[i] {
			ops = append(ops, m.Ops[i])
		} else {
			deleteParams(m, &m.Ops[i])
		}
	}
	m.Ops = ops
	return nil
}

// FoldBN folds a batchnorm into the conv2d or dense op producing its input
// when that op has no fused activation, no residual input and no other
// reader. With s = scale/sqrt(var+eps) per output channel o, the weights
// become w[o,...]*s[o] and the bias (b[o]-mean[o])*s[o] + bn_bias[o], b
// being the old bias or zero; the op gains a bias. The batchnorm and its
// weights are removed and its readers read the folded op instead.
func FoldBN(m *ir.Model) error {
	for i := 0; i < len(m.Ops); i++ {
		bn := &m.Ops[i]
		if bn.Type != ir.OpBatchNorm || len(bn.Inputs) != 1 {
			continue
		}
		p, ok := producers(m)[bn.Inputs[0]]
		if !ok {
			continue
		}
		prod := &m.Ops[p]
		linear := (prod.Type == ir.OpConv2D && len(prod.Inputs) == 1) || prod.Type == ir.OpDense
		if !linear || prod.FusedActivation() != ir.ActNone || readers(m)[prod.Output] != 1 {
			continue
		}
		if err := foldInto(m, prod, bn); err != nil {
			return err
		}
		deleteParams(m, bn)
		redirect(m, p, bn.Output)
		deleteOp(m, i)
		i--
	}
	return nil
}

// foldInto rewrites the weight and bias of prod (conv2d or dense, output
// channels first in its weight) to include the batchnorm bn.
func foldInto(m *ir.Model, prod, bn *ir.Op) error {
	get := func(op *ir.Op, role string) (*ir.Tensor, error) {
		t := m.Param(op.Name, role)
		if t == nil {
			return nil, fmt.Errorf("op %q: missing weight %q", op.Name, op.Name+"."+role)
		}
		return t, nil
	}
	w, err := get(prod, "weight")
	if err != nil {
		return err
	}
	var stats [4]*ir.Tensor
	for k, role := range []string{"scale", "bias", "mean", "var"} {
		if stats[k], err = get(bn, role); err != nil {
			return err
		}
	}
	scale, beta, mean, variance := stats[0].Data, stats[1].Data, stats[2].Data, stats[3].Data
	c := len(scale)
	if len(w.Shape) == 0 || w.Shape[0] != c || len(w.Data)%c != 0 || len(beta) != c || len(mean) != c || len(variance) != c {
		return fmt.Errorf("op %q: weight shape %v does not match the %d channels of batchnorm %q", prod.Name, w.Shape, c, bn.Name)
	}
	old := make([]float32, c)
	if prod.Bias {
		b, err := get(prod, "bias")
		if err != nil {
			return err
		}
		if len(b.Data) != c {
			return fmt.Errorf("op %q: bias has %d values, expected %d", prod.Name, len(b.Data), c)
		}
		copy(old, b.Data)
	}
	per := len(w.Data) / c
	nw := w.Clone()
	nb := ir.NewTensor(c)
	for o := 0; o < c; o++ {
		s := float64(scale[o]) / math.Sqrt(float64(variance[o])+bn.Epsilon)
		for k := o * per; k < (o+1)*per; k++ {
			nw.Data[k] = float32(float64(w.Data[k]) * s)
		}
		nb.Data[o] = float32((float64(old[o])-float64(mean[o]))*s + float64(beta[o]))
	}
	m.SetParam(prod.Name, "weight", nw)
	m.SetParam(prod.Name, "bias", nb)
	prod.Bias = true
	return nil
}

// FuseResidual turns add(y, r), where y is produced by a conv2d with one
// input, no fused activation and no other reader, into that conv2d with r
// as its residual input and the add's activation as its fused activation
// (the residual is added before the activation, exactly as the add did).
// The conv2d takes the add's place in the op order, so r is always
// defined before it. When both inputs qualify, the later conv is fused.
func FuseResidual(m *ir.Model) error {
	for i := 0; i < len(m.Ops); i++ {
		add := &m.Ops[i]
		if add.Type != ir.OpAdd || len(add.Inputs) != 2 {
			continue
		}
		prods, uses := producers(m), readers(m)
		best, side := -1, 0
		for j, in := range add.Inputs {
			p, ok := prods[in]
			if !ok {
				continue
			}
			c := &m.Ops[p]
			if c.Type == ir.OpConv2D && len(c.Inputs) == 1 && c.FusedActivation() == ir.ActNone && uses[c.Output] == 1 && p > best {
				best, side = p, j
			}
		}
		if best < 0 {
			continue
		}
		conv := m.Ops[best].Clone()
		conv.Inputs = append(conv.Inputs, add.Inputs[1-side])
		conv.Activation = add.Activation
		gone := add.Output
		m.Ops[i] = conv
		redirect(m, i, gone)
		deleteOp(m, best)
		i--
	}
	return nil
}

// FuseActivation folds an activation op into the conv2d, dense or add
// producing its input when that op has no fused activation yet and no
// other reader. The activation op is removed and its readers read the
// producer instead.
func FuseActivation(m *ir.Model) error {
	for i := 0; i < len(m.Ops); i++ {
		act := &m.Ops[i]
		if act.Type != ir.OpActivation || len(act.Inputs) != 1 {
			continue
		}
		p, ok := producers(m)[act.Inputs[0]]
		if !ok {
			continue
		}
		prod := &m.Ops[p]
		fusable := prod.Type == ir.OpConv2D || prod.Type == ir.OpDense || prod.Type == ir.OpAdd
		if !fusable || prod.FusedActivation() != ir.ActNone || readers(m)[prod.Output] != 1 {
			continue
		}
		if act.FusedActivation() != ir.ActNone {
			prod.Activation = act.Activation
		}
		redirect(m, p, act.Output)
		deleteOp(m, i)
		i--
	}
	return nil
}

// producers maps each op output to the index of its op.
func producers(m *ir.Model) map[string]int {
	at := make(map[string]int, len(m.Ops))
	for i, op := range m.Ops {
		at[op.Output] = i
	}
	return at
}

// readers counts the reads of each tensor: one per op input naming it,
// plus one for the model output.
func readers(m *ir.Model) map[string]int {
	n := map[string]int{m.Output: 1}
	for _, op := range m.Ops {
		for _, in := range op.Inputs {
			n[in]++
		}
	}
	return n
}

// redirect prepares the removal of the op producing tensor gone, whose
// value op p now computes: every reader of gone reads p's output instead.
// If gone is the model output, p's output is renamed to gone, so that the
// model's interface is unchanged (p's old output must then have no reader
// but the op being removed).
func redirect(m *ir.Model, p int, gone string) {
	if m.Output == gone {
		m.Ops[p].Output = gone
		return
	}
	to := m.Ops[p].Output
	for i := range m.Ops {
		for j, in := range m.Ops[i].Inputs {
			if in == gone {
				m.Ops[i].Inputs[j] = to
			}
		}
	}
}

func deleteOp(m *ir.Model, i int) {
	m.Ops = append(m.Ops[:i], m.Ops[i+1:]...)
}

func deleteParams(m *ir.Model, op *ir.Op) {
	for _, role := range ir.ParamRoles(op) {
		delete(m.Params, op.Name+"."+role)
	}
}
