package ir

import (
	"fmt"
	"strconv"
	"strings"
)

// Latency-table keys follow the reference ProxylessNAS lookup table: a layer
// type, the input and output sizes as HxWxC, and for inverted-residual
// blocks the expansion, kernel, stride and whether the identity skip is
// present. Examples:
//
//	Conv-input:28x28x1-output:28x28x16
//	expanded_conv-input:14x14x40-output:14x14x40-expand:6-kernel:5-stride:1-idskip:1
//	Conv_1-input:7x7x96-output:7x7x256
//	Logits-input:7x7x256-output:10

// HWC is a feature-map size.
type HWC struct{ H, W, C int }

func (s HWC) String() string { return fmt.Sprintf("%dx%dx%d", s.H, s.W, s.C) }

// StemKey is the key of the stem convolution (conv + BN + activation).
func StemKey(in, out HWC) string { return "Conv-input:" + in.String() + "-output:" + out.String() }

// HeadKey is the key of the 1x1 feature-mix convolution before pooling.
func HeadKey(in, out HWC) string { return "Conv_1-input:" + in.String() + "-output:" + out.String() }

// LogitsKey is the key of global pooling plus the classifier.
func LogitsKey(in HWC, classes int) string {
	return fmt.Sprintf("Logits-input:%s-output:%d", in, classes)
}

// MBConvKey is the key of one inverted-residual (MBConv) block.
func MBConvKey(in, out HWC, expand, kernel, stride int, residual bool) string {
	skip := 0
	if residual {
		skip = 1
	}
	return fmt.Sprintf("expanded_conv-input:%s-output:%s-expand:%d-kernel:%d-stride:%d-idskip:%d", in, out, expand, kernel, stride, skip)
}

// ParseCandidate reads a block candidate such as "mbconv k5 e6" and returns
// its kernel size and expansion.
func ParseCandidate(c string) (kernel, expand int, err error) {
	f := strings.Fields(c)
	if len(f) != 3 || f[0] != "mbconv" || !strings.HasPrefix(f[1], "k") || !strings.HasPrefix(f[2], "e") {
		return 0, 0, fmt.Errorf("candidate %q: expected \"mbconv kK eE\"", c)
	}
	kernel, err1 := strconv.Atoi(f[1][1:])
	expand, err2 := strconv.Atoi(f[2][1:])
	if err1 != nil || err2 != nil || kernel <= 0 || expand <= 0 {
		return 0, 0, fmt.Errorf("candidate %q: expected positive kernel and expansion", c)
	}
	return kernel, expand, nil
}

// BlockRef is one annotated block of a model with its latency-table key.
type BlockRef struct {
	Block    Block
	Key      string
	Ops      []string // op names in execution order
	In, Out  HWC
	Residual bool
}

// Blocks groups the ops of a model by their block annotation (consecutive
// ops with equal annotations form one block) and derives each block's
// latency-table key. A "head" block followed by a "classifier" block gives
// a Conv_1 key and a Logits key. Ops without annotation are reported as an
// error, since their latency cannot be looked up.
func Blocks(m *Model) ([]BlockRef, error) {
	shapes, err := m.InferShapes()
	if err != nil {
		return nil, err
	}
	hwc := func(name string) HWC {
		s := shapes[name]
		if len(s) == 3 {
			return HWC{H: s[1], W: s[2], C: s[0]}
		}
		return HWC{H: 1, W: 1, C: s[0]}
	}
	var out []BlockRef
	for i := 0; i < len(m.Ops); {
		op := &m.Ops[i]
		if op.Block == nil {
			return nil, errf(op.Name, "block", "op has no block annotation; latency keys need one on every op")
		}
		ref := BlockRef{Block: *op.Block}
		j := i
		stride := 1
		for ; j < len(m.Ops) && m.Ops[j].Block != nil && *m.Ops[j].Block == *op.Block; j++ {
			o := &m.Ops[j]
			ref.Ops = append(ref.Ops, o.Name)
			if o.Type == OpConv2D {
				stride *= o.Stride[0]
				if len(o.Inputs) == 2 {
					ref.Residual = true
				}
			}
			if o.Type == OpAdd {
				ref.Residual = true
			}
		}
		ref.In = hwc(m.Ops[i].Inputs[0])
		last := m.Ops[j-1].Output
		ref.Out = hwc(last)
		switch c := op.Block.Candidate; {
		case c == "stem":
			ref.Key = StemKey(ref.In, ref.Out)
		case c == "head":
			ref.Key = HeadKey(ref.In, ref.Out)
		case c == "classifier":
			ref.Key = LogitsKey(ref.In, ref.Out.C)
		default:
			k, e, err := ParseCandidate(c)
			if err != nil {
				return nil, errf(op.Name, "block.candidate", "%v", err)
			}
			ref.Key = MBConvKey(ref.In, ref.Out, e, k, stride, ref.Residual)
		}
		out = append(out, ref)
		i = j
	}
	return out, nil
}
