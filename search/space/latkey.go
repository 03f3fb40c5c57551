package space

import (
	"fmt"
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

// The layer types of latency keys, as [KeyType] returns them.
const (
	StemType   = "Conv"          // the stem convolution
	MBConvType = "expanded_conv" // an inverted-residual block
	HeadType   = "Conv_1"        // the 1x1 head convolution
	LogitsType = "Logits"        // global pooling plus the classifier
)

// StemKey is the key of the stem convolution (conv + BN + activation).
func StemKey(in, out Shape) string {
	return StemType + "-input:" + in.String() + "-output:" + out.String()
}

// HeadKey is the key of the 1x1 feature-mix convolution before pooling.
func HeadKey(in, out Shape) string {
	return HeadType + "-input:" + in.String() + "-output:" + out.String()
}

// LogitsKey is the key of global pooling plus the classifier.
func LogitsKey(in Shape, classes int) string {
	return fmt.Sprintf("%s-input:%s-output:%d", LogitsType, in, classes)
}

// MBConvKey is the key of one inverted-residual (MBConv) block.
func MBConvKey(in, out Shape, expand, kernel, stride int, residual bool) string {
	skip := 0
	if residual {
		skip = 1
	}
	return fmt.Sprintf("%s-input:%s-output:%s-expand:%d-kernel:%d-stride:%d-idskip:%d", MBConvType, in, out, expand, kernel, stride, skip)
}

// KeyType returns the layer type of a latency key, the text before its
// first '-': [StemType], [MBConvType], [HeadType] or [LogitsType].
func KeyType(key string) string {
	if i := strings.IndexByte(key, '-'); i >= 0 {
		return key[:i]
	}
	return key
}

// StemKey returns the latency-table key of the plan's stem.
func (p *Plan) StemKey() string { return StemKey(p.Stem.In, p.Stem.Out) }

// FirstKey returns the key of the fixed first block (never a residual).
func (p *Plan) FirstKey() string {
	f := p.First
	return MBConvKey(f.In, f.Out, f.Expand, f.Kernel, f.Stride, false)
}

// HeadKey returns the key of the 1x1 head convolution.
func (p *Plan) HeadKey() string { return HeadKey(p.Head.In, p.Head.Out) }

// LogitsKey returns the key of pooling plus the classifier.
func (p *Plan) LogitsKey() string { return LogitsKey(p.Head.Out, p.Classes) }

// FixedKeys returns the keys of the parts every architecture of the plan
// has: stem, first block, head and logits.
func (p *Plan) FixedKeys() []string {
	return []string{p.StemKey(), p.FirstKey(), p.HeadKey(), p.LogitsKey()}
}

// Key returns the key of candidate c at layer l, or "" for Zero.
func (l Layer) Key(c Candidate) string {
	if c.Zero {
		return ""
	}
	return MBConvKey(l.In, l.Out, c.Expand, c.Kernel, l.Stride, l.Residual)
}
