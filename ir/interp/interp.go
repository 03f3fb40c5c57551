package interp

import (
	"fmt"
	"math"

	"github.com/pnasml/pnas/ir"
)

// Run executes a verified model on n samples (input NCHW float32, already
// preprocessed) and returns the output [n, F].
func Run(m *ir.Model, input []float32, n int) ([]float32, error) {
	all, err := RunTensors(m, input, n)
	if err != nil {
		return nil, err
	}
	return all[m.Output], nil
}

// RunTensors executes the model like [Run] and returns every tensor (the
// input and each op output), batch-major ([n, per-sample shape...]), keyed
// by tensor name.
func RunTensors(m *ir.Model, input []float32, n int) (map[string][]float32, error) {
	if m == nil {
		return nil, fmt.Errorf("interp: nil model")
	}
	shapes, err := m.InferShapes()
	if err != nil {
		return nil, fmt.Errorf("interp: model %q does not verify: %w", m.Name, err)
	}
	if n <= 0 {
		return nil, fmt.Errorf("interp: expected a positive number of samples, got %d", n)
	}
	per := numel(m.Input.Shape)
	if len(input) != n*per {
		return nil, fmt.Errorf("interp: input %q: expected %d values (%d samples of %v), got %d",
			m.Input.Name, n*per, n, m.Input.Shape, len(input))
	}

	all := map[string][]float32{m.Input.Name: append([]float32(nil), input...)}
	for _, op := range m.Ops {
		all[op.Output] = make([]float32, n*numel(shapes[op.Output]))
	}
	for s := 0; s < n; s++ {
		// vals holds the tensors of sample s.
		vals := map[string][]float32{m.Input.Name: input[s*per : (s+1)*per]}
		for i := range m.Ops {
			op := &m.Ops[i]
			y, err := runOp(m, op, shapes, vals)
			if err != nil {
				return nil, fmt.Errorf("interp: op %q: %w", op.Name, err)
			}
			vals[op.Output] = y
			size := len(y)
			copy(all[op.Output][s*size:(s+1)*size], y)
		}
	}
	return all, nil
}

// runOp computes the output of one op for one sample.
func runOp(m *ir.Model, op *ir.Op, shapes ir.Shapes, vals map[string][]float32) ([]float32, error) {
	x := vals[op.Inputs[0]]
	inShape := shapes[op.Inputs[0]]
	act := op.FusedActivation()
	switch op.Type {
	case ir.OpConv2D:
		var residual []float32
		if len(op.Inputs) == 2 {
			residual = vals[op.Inputs[1]]
		}
		var bias *ir.Tensor
		if op.Bias {
			bias = m.Param(op.Name, "bias")
		}
		return conv2d(op, m.Param(op.Name, "weight"), bias, x, inShape, residual, shapes[op.Output]), nil
	case ir.OpBatchNorm:
		return batchNorm(op, m.Param(op.Name, "scale"), m.Param(op.Name, "bias"),
			m.Param(op.Name, "mean"), m.Param(op.Name, "var"), x, inShape), nil
	case ir.OpActivation:
		y := make([]float32, len(x))
		for i, v := range x {
			y[i] = float32(act.Apply(float64(v)))
		}
		return y, nil
	case ir.OpAdd:
		z := vals[op.Inputs[1]]
		y := make([]float32, len(x))
		for i := range x {
			y[i] = float32(act.Apply(float64(x[i]) + float64(z[i])))
		}
		return y, nil
	case ir.OpGlobalPool:
		c, hw := inShape[0], inShape[1]*inShape[2]
		y := make([]float32, c)
		for ch := 0; ch < c; ch++ {
			sum := 0.0
			for _, v := range x[ch*hw : (ch+1)*hw] {
				sum += float64(v)
			}
			y[ch] = float32(sum / float64(hw))
		}
		return y, nil
	case ir.OpFlatten:
		// Tensors are stored in CHW order already.
		return append([]float32(nil), x...), nil
	case ir.OpDense:
		var bias *ir.Tensor
		if op.Bias {
			bias = m.Param(op.Name, "bias")
		}
		return dense(op, m.Param(op.Name, "weight"), bias, x), nil
	case ir.OpSoftmax:
		return softmax(x), nil
	}
	return nil, fmt.Errorf("type: unsupported op type %q", op.Type)
}

// conv2d is the direct convolution (cross-correlation, as in every deep
// learning framework):
//
//	y[o,oy,ox] = act( sum_{i in group(o), ky, kx} w[o, i-first(group), ky, kx] * x[i, oy*sh+ky-top, ox*sw+kx-left]
//	                  + bias[o] + residual[o,oy,ox] )
//
// where positions outside the input read as zero (the padding) and output
// channel o belongs to group o / (O/groups), which reads the input channels
// group*(C/groups) ... (group+1)*(C/groups)-1.
func conv2d(op *ir.Op, w, bias *ir.Tensor, x []float32, in []int, residual []float32, out []int) []float32 {
	cin, h, wd := in[0], in[1], in[2]
	cout, oh, ow := out[0], out[1], out[2]
	kh, kw := op.Kernel[0], op.Kernel[1]
	sh, sw := op.Stride[0], op.Stride[1]
	top, left := op.Pads[0], op.Pads[1]
	inPerGroup := cin / op.Groups
	outPerGroup := cout / op.Groups
	act := op.FusedActivation()
	y := make([]float32, cout*oh*ow)
	for o := 0; o < cout; o++ {
		group := o / outPerGroup
		for oy := 0; oy < oh; oy++ {
			for ox := 0; ox < ow; ox++ {
				sum := 0.0
				for i := 0; i < inPerGroup; i++ {
					c := group*inPerGroup + i
					for ky := 0; ky < kh; ky++ {
						iy := oy*sh + ky - top
						if iy < 0 || iy >= h {
							continue
						}
						for kx := 0; kx < kw; kx++ {
							ix := ox*sw + kx - left
							if ix < 0 || ix >= wd {
								continue
							}
							wv := w.Data[((o*inPerGroup+i)*kh+ky)*kw+kx]
							sum += float64(wv) * float64(x[(c*h+iy)*wd+ix])
						}
					}
				}
				if bias != nil {
					sum += float64(bias.Data[o])
				}
				at := (o*oh+oy)*ow + ox
				if residual != nil {
					sum += float64(residual[at])
				}
				y[at] = float32(act.Apply(sum))
			}
		}
	}
	return y
}

// batchNorm is y = scale*(x-mean)/sqrt(var+eps) + bias per channel, where
// the channel is the first axis of a [C,H,W] map or the index of a [C]
// vector.
func batchNorm(op *ir.Op, scale, bias, mean, variance *ir.Tensor, x []float32, in []int) []float32 {
	c := in[0]
	per := len(x) / c
	y := make([]float32, len(x))
	for ch := 0; ch < c; ch++ {
		sd := math.Sqrt(float64(variance.Data[ch]) + op.Epsilon)
		s, b, mu := float64(scale.Data[ch]), float64(bias.Data[ch]), float64(mean.Data[ch])
		for i := ch * per; i < (ch+1)*per; i++ {
			y[i] = float32(s*(float64(x[i])-mu)/sd + b)
		}
	}
	return y
}

// dense is y[u] = act( sum_f w[u,f]*x[f] + bias[u] ).
func dense(op *ir.Op, w, bias *ir.Tensor, x []float32) []float32 {
	f := len(x)
	act := op.FusedActivation()
	y := make([]float32, op.Units)
	for u := range y {
		sum := 0.0
		for j, v := range x {
			sum += float64(w.Data[u*f+j]) * float64(v)
		}
		if bias != nil {
			sum += float64(bias.Data[u])
		}
		y[u] = float32(act.Apply(sum))
	}
	return y
}

// softmax is y[i] = exp(x[i]-max x) / sum_j exp(x[j]-max x); subtracting
// the maximum keeps exp from overflowing without changing the result.
func softmax(x []float32) []float32 {
	hi := math.Inf(-1)
	for _, v := range x {
		hi = math.Max(hi, float64(v))
	}
	e := make([]float64, len(x))
	sum := 0.0
	for i, v := range x {
		e[i] = math.Exp(float64(v) - hi)
		sum += e[i]
	}
	y := make([]float32, len(x))
	for i := range e {
		y[i] = float32(e[i] / sum)
	}
	return y
}

func numel(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}
