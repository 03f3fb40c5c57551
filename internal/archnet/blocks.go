package archnet

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/pnasml/pnas/ir"
	"github.com/pnasml/pnas/search/space"
)

// The candidate annotations of the parts of a network that are not
// inverted-residual blocks (see ir.Block).
const (
	StemBlock       = "stem"       // stem convolution + BN + ReLU6
	HeadBlock       = "head"       // 1x1 head convolution + BN + ReLU6
	ClassifierBlock = "classifier" // global pooling, flatten and the linear classifier
)

// Annotation returns the candidate annotation of c as IR files carry it in
// block annotations and search metadata: "mbconv k5 e6", or "zero".
func Annotation(c space.Candidate) string {
	if c.Zero {
		return space.ZeroName
	}
	return fmt.Sprintf("mbconv k%d e%d", c.Kernel, c.Expand)
}

// ParseAnnotation reads an MBConv annotation such as "mbconv k5 e6" (any
// positive kernel and expansion), the inverse of [Annotation].
func ParseAnnotation(s string) (space.Candidate, error) {
	f := strings.Fields(s)
	if len(f) != 3 || f[0] != "mbconv" || !strings.HasPrefix(f[1], "k") || !strings.HasPrefix(f[2], "e") {
		return space.Candidate{}, fmt.Errorf("candidate %q: expected \"mbconv kK eE\"", s)
	}
	kernel, err1 := strconv.Atoi(f[1][1:])
	expand, err2 := strconv.Atoi(f[2][1:])
	if err1 != nil || err2 != nil || kernel <= 0 || expand <= 0 {
		return space.Candidate{}, fmt.Errorf("candidate %q: expected positive kernel and expansion", s)
	}
	return space.Candidate{Kernel: kernel, Expand: expand}, nil
}

// Part is what a block of a network is.
type Part int

// The parts of a network, in the order they appear.
const (
	Stem       Part = iota // the stem convolution
	MBConv                 // an inverted-residual block (the fixed first block or a searchable layer)
	Head                   // the 1x1 head convolution
	Classifier             // pooling and the classifier
)

// BlockRef is one annotated block of a model with its latency-table key.
type BlockRef struct {
	Block     ir.Block
	Part      Part
	Candidate space.Candidate // the block's kernel and expansion, for MBConv blocks
	Key       string
	Ops       []string // op names in execution order
	In, Out   space.Shape
	Residual  bool
}

// Blocks groups the ops of a model by their block annotation (consecutive
// ops with equal annotations form one block) and derives each block's
// latency-table key from its candidate annotation: [StemBlock] gives a
// stem key, [HeadBlock] a head key, [ClassifierBlock] a logits key and an
// MBConv annotation (see [ParseAnnotation]) an MBConv key. Ops without
// annotation are reported as an error, since their latency cannot be
// looked up.
func Blocks(m *ir.Model) ([]BlockRef, error) {
	shapes, err := m.InferShapes()
	if err != nil {
		return nil, err
	}
	shape := func(name string) space.Shape {
		s := shapes[name]
		if len(s) == 3 {
			return space.Shape{H: s[1], W: s[2], C: s[0]}
		}
		return space.Shape{H: 1, W: 1, C: s[0]}
	}
	var out []BlockRef
	for i := 0; i < len(m.Ops); {
		op := &m.Ops[i]
		if op.Block == nil {
			return nil, &ir.Error{Op: op.Name, Field: "block", Msg: "op has no block annotation; latency keys need one on every op"}
		}
		ref := BlockRef{Block: *op.Block}
		j := i
		stride := 1
		for ; j < len(m.Ops) && m.Ops[j].Block != nil && *m.Ops[j].Block == *op.Block; j++ {
			o := &m.Ops[j]
			ref.Ops = append(ref.Ops, o.Name)
			if o.Type == ir.OpConv2D {
				stride *= o.Stride[0]
				if len(o.Inputs) == 2 {
					ref.Residual = true
				}
			}
			if o.Type == ir.OpAdd {
				ref.Residual = true
			}
		}
		ref.In = shape(m.Ops[i].Inputs[0])
		ref.Out = shape(m.Ops[j-1].Output)
		switch c := op.Block.Candidate; c {
		case StemBlock:
			ref.Part, ref.Key = Stem, space.StemKey(ref.In, ref.Out)
		case HeadBlock:
			ref.Part, ref.Key = Head, space.HeadKey(ref.In, ref.Out)
		case ClassifierBlock:
			ref.Part, ref.Key = Classifier, space.LogitsKey(ref.In, ref.Out.C)
		default:
			cand, err := ParseAnnotation(c)
			if err != nil {
				return nil, &ir.Error{Op: op.Name, Field: "block.candidate", Msg: err.Error()}
			}
			ref.Part, ref.Candidate = MBConv, cand
			ref.Key = space.MBConvKey(ref.In, ref.Out, cand.Expand, cand.Kernel, stride, ref.Residual)
		}
		out = append(out, ref)
		i = j
	}
	return out, nil
}
