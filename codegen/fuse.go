package codegen

import (
	"slices"

	"github.com/pnasml/pnas/runtime"
)

// FuseMode says when an inverted-residual block (expand 1x1 → depthwise →
// project 1x1) runs as one fused rt.MBConv, computed in row strips so that
// the expanded tensor stays in cache, instead of three operators with the
// expanded tensor written to memory whole.
type FuseMode int

const (
	// FuseAuto fuses the blocks whose expanded tensor exceeds
	// FuseMBConvBytes (the rule of fuseBlocks).
	FuseAuto FuseMode = iota
	// FuseOn fuses every block that has the shape.
	FuseOn
	// FuseOff never fuses.
	FuseOff
)

// FuseMBConvBytes is the size of the expanded tensor (the expansion's
// output, channel stride PadC, without halo) above which FuseAuto fuses a
// block: 1.5 MiB. With the block's input and output next to it, such a
// tensor no longer stays in a 2 MiB L2 between the three operators, and
// they run at memory speed: the 112x112 blocks and the 56x56 ones with 144
// or more expanded channels of MobileNetV2 and the ProxylessNAS nets
// (1.8 to 7.2 MB), where the strips gain 5 to 50% (docs/perf.md, "Fused
// MBConv"). Smaller expanded tensors (56x56x96, 1.2 MB) are served from L2
// unfused, and there the strips measured no faster or slower. A block
// without expansion is measured by its depthwise output: the first blocks
// of those nets (112x112 with 32 to 48 padded channels, 1.6 to 2.4 MB),
// where the network's stem joins the strips too (docs/perf.md, "Blocks
// without expansion and the stem").
const FuseMBConvBytes = 3 << 19

// SplitMBConvRows is the most output rows of a block that FuseAuto leaves
// unfused (FuseMBConvBytes) for which the program also builds an
// rt.MBConv that it runs with MBConv.RunChannelsIn, split by hidden
// channels (its expanded maps in the arena floats of its expanded
// tensor), whenever it runs on more than one thread; on one thread such a
// block runs as its three operators. On two threads of a 7x7 map the three
// operators split the work each their own way (by rows, by channels, by
// output columns), and each reads much of what the one before wrote from
// the other core's cache; split by channels, only partial sums the size of
// the output cross cores, and these blocks ran 0.68-0.89x as long with
// AVX-512, 0.66-0.99x with AVX2 (docs/perf.md, "Small blocks split by
// channels"). Blocks with 14 output rows gained or lost a few percent
// depending on stride and kernel set: those of stride 2 split for the
// AVX-512 kernels (splitSmallS2), the others not. That was measured on
// x86: amd64 targets split, arm64 and generic ones (not measured) keep the
// three operators.
const SplitMBConvRows = 7

// splitRule says which blocks FuseAuto leaves unfused also run split by
// channels on more than one thread (SplitMBConvRows).
type splitRule int

const (
	splitNone  splitRule = iota // none (arm64, generic: not measured)
	splitSmall                  // at most SplitMBConvRows output rows (amd64, AVX2)
	// splitSmallS2 adds the blocks of stride 2 with at most twice that
	// (amd64-avx512). With the AVX-512 kernels such a block (28x28 →
	// 14x14) ran 0.65-0.90x as long split, the network 0.90x (the 28x28
	// net) to 1.00x, on two threads; with AVX2 the blocks ran 1.06-1.43x
	// and the networks 1.00-1.03x. Either way the block after one ran
	// slower (1.04-1.34x: its depthwise layer wrote arena floats that
	// the split block, which then kept its expanded maps in buffers of
	// its own, had left cold), which the AVX-512 gain outweighed. That
	// was an Intel Xeon. On an AMD Zen 4, with the maps in the arena
	// (RunChannelsIn), the four stride-2 14x14 blocks of the 224x224
	// nets ran 0.87-0.91x as long unsplit with AVX-512 (the networks
	// 0.99-1.01x, within the noise) and 1.06-1.18x as long split with
	// AVX2 (three of the four; docs/perf.md, "2026-12-06"): which way pays
	// depends on the CPU, which the compiler does not know, so the
	// rule stays as the Xeon measured it.
	splitSmallS2
)

// fusedBlock is one fused block: three consecutive conv steps, or two (a
// depthwise convolution and its projection) for a block without
// expansion, whose expand is nil.
type fusedBlock struct {
	expand, dw, project *step
}

// head is the block's first step: it runs the fused operator and reads the
// block's input.
func (b *fusedBlock) head() *step {
	if b.expand != nil {
		return b.expand
	}
	return b.dw
}

// fuseBlocks finds the blocks to fuse and marks their steps: an expansion
// (pointwise, or a dense convolution such as a network's stem; no
// residual) read only by a depthwise convolution (no residual) read only
// by a projection (pointwise, residual allowed), as three consecutive ops,
// neither intermediate tensor being the output or the logits; and, where
// no expansion precedes it, a depthwise convolution read only by its
// projection (a block without expansion, whose intermediate tensor is the
// depthwise output). FuseAuto fuses those whose first intermediate tensor
// exceeds FuseMBConvBytes; of the others, those with a pointwise expansion
// that the split rule names are split by channels on more than one thread
// (l.splits). It runs before assignBuffers, which keeps the projection of
// a fused block from writing over the block's input (the strips read the
// input after the first output rows are written).
func (l *lowered) fuseBlocks(mode FuseMode, split splitRule) {
	if mode == FuseOff {
		return
	}
	at := map[int]*step{}
	for _, st := range l.steps {
		at[st.index] = st
	}
	conv := func(st *step, kind string) bool {
		return st != nil && st.kind == stepConv && st.conv.kind == kind && st.fused == nil && st.split == nil
	}
	only := func(t, reader int) bool {
		tt := l.tensors[t]
		return len(tt.readers) == 1 && tt.readers[0] == reader && t != l.output && t != l.logits && tt.view < 0
	}
	// small: FuseAuto leaves a block whose intermediate tensor t fits.
	small := func(t int) bool {
		tt := l.tensors[t]
		return mode == FuseAuto && 4*tt.h*tt.w*runtime.PadC(tt.c) <= FuseMBConvBytes
	}
	for _, e := range l.steps {
		d, p := at[e.index+1], at[e.index+2]
		if !(conv(e, runtime.KindPointwise) || conv(e, runtime.KindDense)) || e.in2 >= 0 ||
			!conv(d, runtime.KindDepthwise) || d.in2 >= 0 || !conv(p, runtime.KindPointwise) ||
			d.in != e.out || p.in != d.out || !only(e.out, d.index) || !only(d.out, p.index) {
			continue
		}
		b := &fusedBlock{expand: e, dw: d, project: p}
		if small(e.out) {
			oh := l.tensors[p.out].h
			if e.conv.kind == runtime.KindPointwise && (split >= splitSmall && oh <= SplitMBConvRows ||
				split == splitSmallS2 && oh <= 2*SplitMBConvRows && d.conv.spec.StrideH == 2) {
				e.split, d.split, p.split = b, b, b
				l.splits = append(l.splits, b)
			}
			continue
		}
		e.fused, d.fused, p.fused = b, b, b
		l.fusions = append(l.fusions, b)
	}
	// Blocks without expansion, among the depthwise convolutions left.
	var blocks []*fusedBlock
	for _, d := range l.steps {
		p := at[d.index+1]
		if !conv(d, runtime.KindDepthwise) || d.in2 >= 0 || !conv(p, runtime.KindPointwise) || p.in != d.out ||
			!only(d.out, p.index) || small(d.out) {
			continue
		}
		b := &fusedBlock{dw: d, project: p}
		d.fused, p.fused = b, b
		blocks = append(blocks, b)
	}
	if len(blocks) > 0 {
		l.fusions = append(l.fusions, blocks...)
		slices.SortFunc(l.fusions, func(a, b *fusedBlock) int { return a.head().index - b.head().index })
	}
}

// keepInput makes the input buffer of every fused block live until the
// block's last op, so that the planner gives the block's output other
// arena floats: the fused operator reads the input while it writes the
// output. A block split by channels needs no such care: it has read its
// input before it writes the output (MBConv.RunChannels).
func (l *lowered) keepInput() {
	for _, b := range l.fusions {
		ib := l.bufOf(l.resolve(b.head().in))
		ib.last = max(ib.last, b.project.index)
	}
}
