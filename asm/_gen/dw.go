package main

import (
	"fmt"

	"github.com/mmcloughlin/avo/attr"
	"github.com/mmcloughlin/avo/build"
	"github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// dwSig is the Go signature of every depthwise kernel; it must match
// runtime.dwFunc.
const dwSig = "func(out *float32, outRow int, in *float32, inRow, cs int, w, bias, res *float32, resRow, c, oh, ow, stride, act int)"

// dwSizes are the square kernel sizes that get vector kernels.
var dwSizes = []int{3, 5, 7}

// dwStrides are the strides with vector kernels; other strides run the
// portable Go kernel.
var dwStrides = []int{1, 2}

// dwGroup is the number of output pixels computed together. 7 and 14
// divide the widths of MobileNet-style nets (7, 14, 28, 56, 112).
func dwGroup(s isa) int {
	if s.vw == 16 {
		return 14
	}
	return 7
}

func dwName(s isa, k, stride int) string { return fmt.Sprintf("dwK%dS%d%s", k, stride, s.name) }

// genDW adds the depthwise kernels of one instruction set.
func genDW(s isa) func(ctx *build.Context) {
	return func(ctx *build.Context) {
		for _, k := range dwSizes {
			for _, st := range dwStrides {
				dwKernel(ctx, s, k, st)
			}
		}
		genDWMap(s, ctx)
	}
}

// dwGen holds the state shared by the parts of one depthwise kernel.
type dwGen struct {
	ctx    *build.Context
	s      isa
	k      int
	stride int
	name   string

	locW, locBias operand.Mem
	cpb           reg.GPVirtual // channel stride in bytes
	c3            reg.GPVirtual // 3*cpb
	step          reg.GPVirtual // stride*cpb: from one output's input to the next
	ipx, opx, rpx reg.GPVirtual // current output group: input, output, residual

	spreadPF bool // single-vector groups prefetch the next vector's weights tap by tap
}

func (g *dwGen) lbl(l string) string { return g.name + "_" + l }

// dwLocals are the stack slots of a depthwise kernel's channel loop: the
// channels left and the current chunk's input, output and residual.
type dwLocals struct{ c, in, out, res operand.Mem }

// chunkLocals allocates the channel loop's slots, g.locW and g.locBias
// included.
func (g *dwGen) chunkLocals() dwLocals {
	ctx := g.ctx
	var l dwLocals
	l.c = ctx.AllocLocal(8)
	l.in = ctx.AllocLocal(8)
	l.out = ctx.AllocLocal(8)
	l.res = ctx.AllocLocal(8)
	g.locW = ctx.AllocLocal(8)
	g.locBias = ctx.AllocLocal(8)
	return l
}

// chunkStart fills the channel loop's slots from the arguments and emits
// the loop's head, label "chunk", with masks K1 = the lanes of the chunk:
// all, or the low c of them. It returns a scratch register.
func (g *dwGen) chunkStart(l dwLocals) reg.GPVirtual {
	ctx, s := g.ctx, g.s
	t := ctx.GP64()
	for _, p := range []struct {
		name string
		loc  operand.Mem
	}{{"c", l.c}, {"in", l.in}, {"out", l.out}, {"res", l.res}, {"w", g.locW}, {"bias", g.locBias}} {
		ctx.Load(ctx.Param(p.name), t)
		ctx.MOVQ(t, p.loc)
	}
	ctx.Label(g.lbl("chunk"))
	if s.mask {
		n, m := ctx.GP64(), ctx.GP64()
		ctx.MOVQ(l.c, n)
		ctx.MOVQ(operand.U32(0xffff), m)
		ctx.CMPQ(n, imm(s.vw))
		ctx.JGE(operand.LabelRef(g.lbl("full")))
		ctx.MOVQ(operand.I32(1), m)
		ctx.SHLXQ(n, m, m)
		ctx.DECQ(m)
		ctx.Label(g.lbl("full"))
		ctx.KMOVW(m.As32(), reg.K1)
	}
	return t
}

// nextVec moves the chunk on by one channel vector; the flags are those
// of the channels left.
func (g *dwGen) nextVec(l dwLocals, sfx string) {
	ctx, vb := g.ctx, g.s.vw*4
	for _, m := range []operand.Mem{l.in, l.out, g.locW, g.locBias} {
		ctx.ADDQ(imm(vb), m)
	}
	r := ctx.GP64()
	ctx.MOVQ(l.res, r)
	ctx.TESTQ(r, r)
	ctx.JZ(operand.LabelRef(g.lbl("nores" + sfx)))
	ctx.ADDQ(imm(vb), l.res)
	ctx.Label(g.lbl("nores" + sfx))
	ctx.SUBQ(imm(g.s.vw), l.c)
}

// load moves a vector from memory, masked by K1 on AVX-512.
func (g *dwGen) load(m operand.Mem, v reg.VecVirtual) {
	if g.s.mask {
		g.ctx.VMOVUPS_Z(m, reg.K1, v)
	} else {
		g.ctx.VMOVUPS(m, v)
	}
}

// dwKernel emits the kernel for a k x k depthwise convolution. Loops:
// channel vectors outermost (the k input rows an output row reads stay in
// L1 for the next output rows), then output rows, then groups of output
// pixels, then kernel rows (a run-time loop). Each kernel row is
// register-blocked: its k weight vectors sit in registers and each input
// vector is loaded once and used by every output of the group whose
// window covers it.
//
// The AVX2 3x3 kernels run two channel vectors per group, 4 outputs of
// each, while at least two vectors are left: their vectors are half a
// cache line, and a group of one vector read half of every line it
// brought in (each input pixel is a line of its own once the channels
// fill one), the other half waiting for the next vector's pass. Alone,
// 3x3 stride-2 layers took 0.63-0.89x as long with pairs, stride 1
// 0.68-1.06x; in MobileNetV2's fused first blocks the depthwise stages of
// blocks 1 and 3 (stride 2) went from 155 to 85-87 µs and from 45 to 32
// µs on a Zen 4 (docs/perf.md). The 5x5 and 7x7 kernels would have too
// few registers left for accumulators.
func dwKernel(ctx *build.Context, s isa, k, stride int) {
	g := &dwGen{ctx: ctx, s: s, k: k, stride: stride, name: dwName(s, k, stride)}
	ctx.Function(g.name)
	ctx.Attributes(attr.NOSPLIT)
	ctx.SignatureExpr(dwSig)
	ctx.Doc(fmt.Sprintf("%s is dwRowsGo with kh = kw = %d and stride = %d; c is a multiple of %d or the end of the channels.",
		g.name, k, stride, s.vw))
	ctx.Pragma("noescape")
	vb := s.vw * 4
	// The AVX2 3x3 kernels take pairs of channel vectors (a whole cache
	// line of each pixel) while at least two are left (blockPair).
	pairPath := s.vw == 8 && k == 3

	l := g.chunkLocals()
	locIn, locOut, locRes := l.in, l.out, l.res
	locRows := ctx.AllocLocal(8)  // output rows left in this chunk
	locRowIn := ctx.AllocLocal(8) // row pointers
	locRowOut := ctx.AllocLocal(8)
	locRowRes := ctx.AllocLocal(8)

	t := g.chunkStart(l)
	for _, m := range [][2]operand.Mem{{locIn, locRowIn}, {locOut, locRowOut}, {locRes, locRowRes}} {
		ctx.MOVQ(m[0], t)
		ctx.MOVQ(t, m[1])
	}
	ctx.Load(ctx.Param("oh"), t)
	ctx.MOVQ(t, locRows)
	// The next channel vector's k*k weight vectors are prefetched. They
	// are a channel stride apart, a stride the hardware prefetchers do
	// not follow, so each would otherwise be a miss of its own, to L3
	// when the layer starts (ProxylessNAS GPU, 7x7x1536 k7, one thread:
	// 0.86x the time with AVX2, 0.87-0.92x with AVX-512). Single-vector
	// groups prefetch each tap's next weight as they load the tap's own
	// (taps): all k*k at once when a vector starts held up the loads
	// behind them (ProxylessNAS GPU, one thread, the depthwise layers
	// 638 → 589 µs with AVX-512, 758 → 735 µs with AVX2). The pairs of
	// vectors (below) prefetch the next pair's at once, as before.
	g.spreadPF = !pairPath
	if pairPath {
		pw, cpb := ctx.GP64(), ctx.GP64()
		ctx.Load(ctx.Param("cs"), cpb)
		ctx.SHLQ(imm(2), cpb)
		ctx.MOVQ(g.locW, pw)
		ctx.ADDQ(imm(2*vb), pw)
		for i := 0; i < k*k; i++ {
			ctx.PREFETCHT0(operand.Mem{Base: pw})
			if i < k*k-1 {
				ctx.ADDQ(cpb, pw)
			}
		}
	}

	rowSetup := func() reg.GPVirtual {
		g.cpb, g.step = ctx.GP64(), ctx.GP64()
		ctx.Load(ctx.Param("cs"), g.cpb)
		ctx.SHLQ(imm(2), g.cpb)
		g.c3 = ctx.GP64()
		ctx.LEAQ(operand.Mem{Base: g.cpb, Index: g.cpb, Scale: 2}, g.c3)
		ctx.MOVQ(g.cpb, g.step)
		if stride > 1 {
			ctx.SHLQ(imm(log2(stride)), g.step)
		}
		g.ipx, g.opx, g.rpx = ctx.GP64(), ctx.GP64(), ctx.GP64()
		n := ctx.GP64()
		ctx.MOVQ(locRowIn, g.ipx)
		ctx.MOVQ(locRowOut, g.opx)
		ctx.MOVQ(locRowRes, g.rpx)
		ctx.Load(ctx.Param("ow"), n)
		return n
	}
	// groups runs a row's outputs in groups of G (blk), then one
	// remainder group, then goes to label pre+"nextrow".
	groups := func(pre string, n reg.GPVirtual, G int, blk func(n int, next string)) {
		lbl := func(x string) string { return g.lbl(pre + x) }
		ctx.Label(lbl("groups"))
		ctx.CMPQ(n, imm(G))
		ctx.JL(operand.LabelRef(lbl("rem")))
		ctx.SUBQ(imm(G), n)
		blk(G, lbl("groups"))
		ctx.Label(lbl("rem"))
		for r := 1; r < G; r++ {
			ctx.CMPQ(n, imm(r))
			ctx.JE(operand.LabelRef(lbl(fmt.Sprintf("r%d", r))))
		}
		ctx.JMP(operand.LabelRef(lbl("nextrow")))
		for r := 1; r < G; r++ {
			ctx.Label(lbl(fmt.Sprintf("r%d", r)))
			blk(r, lbl("nextrow"))
		}
	}
	// nextRow moves the row pointers on (in += stride*inRow, out +=
	// outRow, res += resRow) and loops to label row while rows are left.
	nextRow := func(pre, row string) {
		ctx.Label(g.lbl(pre + "nextrow"))
		d := ctx.GP64()
		ctx.Load(ctx.Param("inRow"), d)
		ctx.IMULQ(paramMem(ctx, "stride"), d)
		ctx.SHLQ(imm(2), d)
		ctx.ADDQ(d, locRowIn)
		ctx.Load(ctx.Param("outRow"), d)
		ctx.SHLQ(imm(2), d)
		ctx.ADDQ(d, locRowOut)
		rr := ctx.GP64()
		ctx.MOVQ(locRowRes, rr)
		ctx.TESTQ(rr, rr)
		ctx.JZ(operand.LabelRef(g.lbl(pre + "rowdone")))
		ctx.Load(ctx.Param("resRow"), d)
		ctx.SHLQ(imm(2), d)
		ctx.ADDQ(d, locRowRes)
		ctx.Label(g.lbl(pre + "rowdone"))
		ctx.DECQ(locRows)
		ctx.JNZ(operand.LabelRef(g.lbl(row)))
	}
	nextVec := func(sfx string) { g.nextVec(l, sfx) }
	if pairPath {
		ctx.CMPQ(l.c, imm(2*s.vw))
		ctx.JL(operand.LabelRef(g.lbl("row")))
		ctx.Label(g.lbl("prow"))
		groups("p", rowSetup(), 4, g.blockPair)
		nextRow("p", "prow")
		nextVec("p1")
		nextVec("p2")
		ctx.JG(operand.LabelRef(g.lbl("chunk")))
		ctx.JMP(operand.LabelRef(g.lbl("end")))
	}

	ctx.Label(g.lbl("row"))
	groups("", rowSetup(), dwGroup(s), g.block)
	nextRow("", "row")
	nextVec("")
	ctx.JG(operand.LabelRef(g.lbl("chunk")))
	ctx.Label(g.lbl("end"))
	ctx.VZEROUPPER()
	ctx.RET()
}

// block emits the code for a group of n output pixels, then jumps to next.
func (g *dwGen) block(n int, next string) {
	ctx, s, k := g.ctx, g.s, g.k
	acc := make([]reg.VecVirtual, n)
	bp := ctx.GP64()
	ctx.MOVQ(g.locBias, bp)
	for i := range acc {
		acc[i] = s.vec(ctx)
		g.load(operand.Mem{Base: bp}, acc[i])
	}
	rowB := ctx.GP64()
	ctx.Load(ctx.Param("inRow"), rowB)
	ctx.SHLQ(imm(2), rowB)
	wq, rows := ctx.GP64(), ctx.GP64()
	ctx.MOVQ(g.locW, wq)
	ctx.MOVQ(operand.I32(int32(k)), rows)
	rowLbl := g.lbl(fmt.Sprintf("g%drow", n))
	g.taps(acc, wq, rows, rowB, rowLbl)
	g.epilogue("g", acc)
	g.nextGroup(n, next)
}

// blockPair is block for two channel vectors at once, vb bytes apart (a
// whole cache line of each pixel with AVX2): the k*2 weight vectors of a
// kernel row in registers, each input line's two halves loaded one after
// the other.
func (g *dwGen) blockPair(n int, next string) {
	ctx, s, k, st := g.ctx, g.s, g.k, g.stride
	half := int32(s.vw * 4)
	var acc [2][]reg.VecVirtual
	bp := ctx.GP64()
	ctx.MOVQ(g.locBias, bp)
	for h := range acc {
		acc[h] = make([]reg.VecVirtual, n)
		for i := range acc[h] {
			acc[h][i] = s.vec(ctx)
			ctx.VMOVUPS(operand.Mem{Base: bp, Disp: int(half) * h}, acc[h][i])
		}
	}
	rowB := ctx.GP64()
	ctx.Load(ctx.Param("inRow"), rowB)
	ctx.SHLQ(imm(2), rowB)
	wq, rows := ctx.GP64(), ctx.GP64()
	ctx.MOVQ(g.locW, wq)
	ctx.MOVQ(operand.I32(int32(k)), rows)
	var w [2][]reg.VecVirtual
	for h := range w {
		w[h] = make([]reg.VecVirtual, k)
		for j := range w[h] {
			w[h][j] = s.vec(ctx)
		}
	}
	tmp := []reg.VecVirtual{s.vec(ctx), s.vec(ctx)}
	rb, p := ctx.GP64(), ctx.GP64()
	ctx.MOVQ(g.ipx, rb)
	rowLbl := g.lbl(fmt.Sprintf("p%drow", n))
	ctx.Label(rowLbl)
	for j := 0; j < k; j++ {
		for h := 0; h < 2; h++ {
			m := g.tap(wq, j)
			m.Disp = int(half) * h
			ctx.VMOVUPS(m, w[h][j])
		}
	}
	g.advance(wq, k)
	ctx.MOVQ(rb, p)
	last := (n-1)*st + k - 1
	for x := 0; x <= last; x++ {
		if x > 0 && x%5 == 0 {
			g.advance(p, 5)
		}
		for h := 0; h < 2; h++ {
			m := g.tap(p, x%5)
			m.Disp = int(half) * h
			ctx.VMOVUPS(m, tmp[h])
			for o := 0; o < n; o++ {
				if j := x - o*st; j >= 0 && j < k {
					ctx.VFMADD231PS(w[h][j], tmp[h], acc[h][o])
				}
			}
		}
	}
	ctx.ADDQ(rowB, rb)
	ctx.DECQ(rows)
	ctx.JNZ(operand.LabelRef(rowLbl))

	g.epilogue("p", acc[0], acc[1])
	g.nextGroup(n, next)
}

// taps accumulates the k x k window of a group of outputs: per kernel
// row, k weight registers and one load per input vector.
func (g *dwGen) taps(acc []reg.VecVirtual, wq, rows, rowB reg.GPVirtual, rowLbl string) {
	ctx, s, k, st := g.ctx, g.s, g.k, g.stride
	n := len(acc)
	w := make([]reg.VecVirtual, k)
	for j := range w {
		w[j] = s.vec(ctx)
	}
	tmp := []reg.VecVirtual{s.vec(ctx), s.vec(ctx)}
	rb, p := ctx.GP64(), ctx.GP64()
	ctx.MOVQ(g.ipx, rb)
	ctx.Label(rowLbl)
	// Tap x of a kernel row is x*cpb bytes from its first one: pointers
	// move in steps of 5 taps, and the taps in between are addressed by
	// index (0, cpb, 2*cpb, 3*cpb, 4*cpb), so the loads cost no adds.
	for j := 0; j < k; j++ {
		if j > 0 && j%5 == 0 {
			g.advance(wq, 5)
		}
		g.load(g.tap(wq, j%5), w[j])
		if g.spreadPF {
			pf := g.tap(wq, j%5)
			pf.Disp += s.vw * 4
			ctx.PREFETCHT0(pf)
		}
	}
	g.advance(wq, k-(k-1)/5*5)
	ctx.MOVQ(rb, p)
	last := (n-1)*st + k - 1
	for x := 0; x <= last; x++ {
		t := tmp[x%2]
		if x > 0 && x%5 == 0 {
			g.advance(p, 5)
		}
		g.load(g.tap(p, x%5), t)
		for o := 0; o < n; o++ {
			if j := x - o*st; j >= 0 && j < k {
				ctx.VFMADD231PS(w[j], t, acc[o])
			}
		}
	}
	ctx.ADDQ(rowB, rb)
	ctx.DECQ(rows)
	ctx.JNZ(operand.LabelRef(rowLbl))
}

// tap is the address i (0..4) channel strides past p.
func (g *dwGen) tap(p reg.GPVirtual, i int) operand.Mem {
	switch i {
	case 0:
		return operand.Mem{Base: p}
	case 3:
		return operand.Mem{Base: p, Index: g.c3, Scale: 1}
	default:
		return operand.Mem{Base: p, Index: g.cpb, Scale: uint8(i)}
	}
}

// advance moves p by m (0..8) channel strides.
func (g *dwGen) advance(p reg.GPVirtual, m int) {
	for m > 0 {
		switch {
		case m >= 4:
			g.ctx.LEAQ(operand.Mem{Base: p, Index: g.cpb, Scale: 4}, p)
			m -= 4
		case m == 3:
			g.ctx.ADDQ(g.c3, p)
			m = 0
		default:
			g.ctx.LEAQ(operand.Mem{Base: p, Index: g.cpb, Scale: uint8(m)}, p)
			m = 0
		}
	}
}

// epilogue adds the residual, applies the activation and stores the group.
func (g *dwGen) epilogue(pre string, acc ...[]reg.VecVirtual) {
	ctx, s := g.ctx, g.s
	n := len(acc[0])
	half := s.vw * 4 // acc[h] is h vectors on in each pixel
	mem := func(p reg.GPVirtual, h int) operand.Mem { return operand.Mem{Base: p, Disp: half * h} }
	noRes := g.lbl(fmt.Sprintf("%s%dact", pre, n))
	ctx.TESTQ(g.rpx, g.rpx)
	ctx.JZ(operand.LabelRef(noRes))
	for i := 0; i < n; i++ {
		for h := range acc {
			if s.mask {
				ctx.VADDPS(mem(g.rpx, h), acc[h][i], reg.K1, acc[h][i])
			} else {
				ctx.VADDPS(mem(g.rpx, h), acc[h][i], acc[h][i])
			}
		}
		ctx.ADDQ(g.cpb, g.rpx)
	}
	ctx.Label(noRes)
	act := ctx.GP64()
	ctx.Load(ctx.Param("act"), act)
	store := g.lbl(fmt.Sprintf("%s%dstore", pre, n))
	ctx.TESTQ(act, act)
	ctx.JZ(operand.LabelRef(store))
	zero := s.vec(ctx)
	ctx.VXORPS(zero, zero, zero)
	for h := range acc {
		for i := 0; i < n; i++ {
			ctx.VMAXPS(zero, acc[h][i], acc[h][i])
		}
	}
	ctx.CMPQ(act, imm(2))
	ctx.JNE(operand.LabelRef(store))
	six := s.vec(ctx)
	broadcastSix(ctx, s, six)
	for h := range acc {
		for i := 0; i < n; i++ {
			ctx.VMINPS(six, acc[h][i], acc[h][i])
		}
	}
	ctx.Label(store)
	for i := 0; i < n; i++ {
		for h := range acc {
			if s.mask {
				ctx.VMOVUPS(acc[h][i], reg.K1, mem(g.opx, h))
			} else {
				ctx.VMOVUPS(acc[h][i], mem(g.opx, h))
			}
		}
		ctx.ADDQ(g.cpb, g.opx)
	}
}

// nextGroup moves the input pointer past a group of n outputs and jumps
// to next.
func (g *dwGen) nextGroup(n int, next string) {
	ctx := g.ctx
	adv := ctx.GP64()
	if n&(n-1) == 0 {
		ctx.MOVQ(g.step, adv)
		if n > 1 {
			ctx.SHLQ(imm(log2(n)), adv)
		}
	} else {
		ctx.IMUL3Q(imm(n), g.step, adv)
	}
	ctx.ADDQ(adv, g.ipx)
	ctx.JMP(operand.LabelRef(next))
}

func log2(g int) int {
	l := 0
	for 1<<(l+1) <= g {
		l++
	}
	return l
}

// paramMem is the stack slot of an argument, for use as a memory operand.
func paramMem(ctx *build.Context, name string) operand.Mem {
	b, err := ctx.Param(name).Resolve()
	if err != nil {
		panic(err)
	}
	return b.Addr
}
