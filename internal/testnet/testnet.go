// Package testnet builds the small networks that the tests of several
// packages share (ir, ir/pass, ir/interp, ir/onnx, targets, codegen and
// cmd/pnas), so that each fixture is written once.
//
// Inverted-residual blocks come from internal/archnet, the builder of the
// search's networks; block annotations use its vocabulary.
package testnet

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/pnasml/pnas/internal/archnet"
	"github.com/pnasml/pnas/ir"
	"github.com/pnasml/pnas/search/space"
)

// MBConv adds archnet's inverted-residual block with kernel k and expansion
// e from tensor in to out channels, with weights drawn by b and an identity
// residual when stride is 1 and the widths match. It returns "" (and b
// keeps the error) when in is not defined.
func MBConv(b *ir.Builder, prefix, in string, out, k, e, stride int) string {
	s := b.Shape(in)
	if s == nil {
		return ""
	}
	cin := s[0]
	return archnet.AddMBConv(b, prefix, in, cin, out, space.Candidate{Kernel: k, Expand: e}, stride, stride == 1 && cin == out)
}

// Tiny returns a small network annotated like a searched model: a 9x9x1
// input; a 3x3 stem to 8 channels with ReLU6; "mbconv k3 e3" with stride 2
// to 12 channels; "mbconv k5 e6" at 12 channels (residual); then one
// 12-channel residual layer per extra candidate; a 1x1 head to 16 channels
// with ReLU6; global pooling and a 10-class classifier. Weights are drawn
// from a fixed seed, so the network is the same on every call.
func Tiny(t testing.TB, extra ...space.Candidate) *ir.Model {
	t.Helper()
	b := ir.NewBuilder("tiny", 1, 9, 9, rand.New(rand.NewPCG(7, 7)))
	b.Block = &ir.Block{Stage: 0, Layer: 0, Candidate: archnet.StemBlock}
	x := b.ConvBNAct("stem", b.Input(), 8, 3, 1, 1, ir.ActReLU6)
	layers := append([]space.Candidate{{Kernel: 3, Expand: 3}, {Kernel: 5, Expand: 6}}, extra...)
	for l, c := range layers {
		stride := 1
		if l == 0 {
			stride = 2
		}
		b.Block = &ir.Block{Stage: 1, Layer: l, Candidate: archnet.Annotation(c)}
		x = MBConv(b, fmt.Sprintf("s1.l%d", l), x, 12, c.Kernel, c.Expand, stride)
	}
	b.Block = &ir.Block{Stage: -1, Layer: 0, Candidate: archnet.HeadBlock}
	x = b.ConvBNAct("head", x, 16, 1, 1, 1, ir.ActReLU6)
	b.Block = &ir.Block{Stage: -1, Layer: 1, Candidate: archnet.ClassifierBlock}
	x = b.GlobalPool("pool", x)
	x = b.Flatten("flatten", x)
	x = b.Dense("fc", x, 10, nil, nil)
	m, err := b.Model(x)
	if err != nil {
		t.Fatal(err)
	}
	return m
}
