package main

import (
	"fmt"

	"github.com/mmcloughlin/avo/attr"
	"github.com/mmcloughlin/avo/build"
	"github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// dwMapSig is the Go signature of the whole-map depthwise kernels; it must
// match runtime.dwMapFunc.
const dwMapSig = "func(out *float32, outRow int, in *float32, inRow, cs int, w, bias, res *float32, resRow, c, h, act int)"

// dwMapSizes are the kernel sizes with whole-map kernels, and dwMapW the
// map width they are for: the 7x7 maps of the 224x224 nets' last stage,
// whose 5x5 and 7x7 windows are more than half padding (a 7x7 window over
// a 7x7 map covers 1369 of its 2401 taps).
var dwMapSizes = []int{5, 7}

const dwMapW = 7

func dwMapName(s isa, k int) string { return fmt.Sprintf("dwMapK%dW%d%s", k, dwMapW, s.name) }

// genDWMap adds the whole-map depthwise kernels of one instruction set.
func genDWMap(s isa, ctx *build.Context) {
	for _, k := range dwMapSizes {
		dwMapKernel(ctx, s, k)
	}
}

// dwMapKernel emits the kernel for a k x k depthwise convolution with
// stride 1 and (k-1)/2 padding over a map dwMapW pixels wide and h high,
// which never reads the padding: per output row only the kernel rows over
// the map run (a run-time count), and per kernel row only the products of
// input pixels inside the map (unrolled, the row being one group). Loops:
// channel vectors outermost, then output rows, then kernel rows; each
// kernel row's k weight vectors sit in registers and each input vector is
// loaded once. Each weight load prefetches the next vector's (as the row
// kernels' single-vector groups do).
func dwMapKernel(ctx *build.Context, s isa, k int) {
	const W = dwMapW
	g := &dwGen{ctx: ctx, s: s, k: k, stride: 1, name: dwMapName(s, k)}
	ctx.Function(g.name)
	ctx.Attributes(attr.NOSPLIT)
	ctx.SignatureExpr(dwMapSig)
	ctx.Doc(fmt.Sprintf("%s is dwMapGo with k = %d and w = %d; c is a multiple of %d or the end of the channels.",
		g.name, k, W, s.vw))
	ctx.Pragma("noescape")
	vb := s.vw * 4
	pad := (k - 1) / 2

	l := g.chunkLocals()
	locY := ctx.AllocLocal(8) // output row
	locRowOut := ctx.AllocLocal(8)
	locRowRes := ctx.AllocLocal(8)

	t := g.chunkStart(l)
	ctx.MOVQ(l.out, t)
	ctx.MOVQ(t, locRowOut)
	ctx.MOVQ(l.res, t)
	ctx.MOVQ(t, locRowRes)
	ctx.MOVQ(operand.I32(0), locY)

	ctx.Label(g.lbl("row"))
	g.cpb = ctx.GP64()
	ctx.Load(ctx.Param("cs"), g.cpb)
	ctx.SHLQ(imm(2), g.cpb)
	g.c3 = ctx.GP64()
	ctx.LEAQ(operand.Mem{Base: g.cpb, Index: g.cpb, Scale: 2}, g.c3)

	// Kernel rows i0 = max(0, pad-y) .. i1 = min(k, h+pad-y); the first
	// reads input row y+i0-pad.
	y, i0, rows := ctx.GP64(), ctx.GP64(), ctx.GP64()
	ctx.MOVQ(locY, y)
	zero := ctx.GP64()
	ctx.XORQ(zero, zero)
	ctx.MOVQ(operand.I32(int32(pad)), i0)
	ctx.SUBQ(y, i0)
	ctx.CMPQ(i0, imm(0))
	ctx.CMOVQLT(zero, i0)
	ctx.Load(ctx.Param("h"), rows)
	ctx.ADDQ(imm(pad), rows)
	ctx.SUBQ(y, rows)
	kk := ctx.GP64()
	ctx.MOVQ(operand.I32(int32(k)), kk)
	ctx.CMPQ(rows, kk)
	ctx.CMOVQGT(kk, rows)
	ctx.SUBQ(i0, rows)

	rb, wq, rowB := ctx.GP64(), ctx.GP64(), ctx.GP64()
	ctx.Load(ctx.Param("inRow"), rowB)
	ctx.SHLQ(imm(2), rowB)
	// rb = in + (y+i0-pad)*inRow
	ctx.LEAQ(operand.Mem{Base: y, Index: i0, Scale: 1, Disp: -pad}, rb)
	ctx.IMULQ(rowB, rb)
	ctx.ADDQ(l.in, rb)
	// wq = w + i0*k*cpb
	ctx.IMUL3Q(imm(k), i0, wq)
	ctx.IMULQ(g.cpb, wq)
	ctx.ADDQ(g.locW, wq)

	acc := make([]reg.VecVirtual, W)
	bp := ctx.GP64()
	ctx.MOVQ(g.locBias, bp)
	for i := range acc {
		acc[i] = s.vec(ctx)
		g.load(operand.Mem{Base: bp}, acc[i])
	}
	w := make([]reg.VecVirtual, k)
	for j := range w {
		w[j] = s.vec(ctx)
	}
	tmp := []reg.VecVirtual{s.vec(ctx), s.vec(ctx)}
	p := ctx.GP64()
	ctx.Label(g.lbl("krow"))
	for j := 0; j < k; j++ {
		if j > 0 && j%5 == 0 {
			g.advance(wq, 5)
		}
		g.load(g.tap(wq, j%5), w[j])
		// The next channel vector's weight of this tap, spread over the
		// kernel rows: 49 prefetches at once when a vector starts held
		// up the loads behind them (ProxylessNAS GPU's 7x7 k7 layers,
		// one thread: 95 → 53 µs with AVX-512, 75 → 66 µs with AVX2).
		pf := g.tap(wq, j%5)
		pf.Disp += vb
		ctx.PREFETCHT0(pf)
	}
	g.advance(wq, k-(k-1)/5*5)
	ctx.MOVQ(rb, p)
	for x := 0; x < W; x++ {
		tv := tmp[x%2]
		if x > 0 && x%5 == 0 {
			g.advance(p, 5)
		}
		g.load(g.tap(p, x%5), tv)
		for o := 0; o < W; o++ {
			if j := x - o + pad; j >= 0 && j < k {
				ctx.VFMADD231PS(w[j], tv, acc[o])
			}
		}
	}
	ctx.ADDQ(rowB, rb)
	ctx.DECQ(rows)
	ctx.JNZ(operand.LabelRef(g.lbl("krow")))

	g.opx, g.rpx = ctx.GP64(), ctx.GP64()
	ctx.MOVQ(locRowOut, g.opx)
	ctx.MOVQ(locRowRes, g.rpx)
	g.epilogue("m", acc)

	// Next output row.
	d := ctx.GP64()
	ctx.Load(ctx.Param("outRow"), d)
	ctx.SHLQ(imm(2), d)
	ctx.ADDQ(d, locRowOut)
	rr := ctx.GP64()
	ctx.MOVQ(locRowRes, rr)
	ctx.TESTQ(rr, rr)
	ctx.JZ(operand.LabelRef(g.lbl("rowdone")))
	ctx.Load(ctx.Param("resRow"), d)
	ctx.SHLQ(imm(2), d)
	ctx.ADDQ(d, locRowRes)
	ctx.Label(g.lbl("rowdone"))
	yy := ctx.GP64()
	ctx.MOVQ(locY, yy)
	ctx.INCQ(yy)
	ctx.MOVQ(yy, locY)
	ctx.CMPQ(yy, paramMem(ctx, "h"))
	ctx.JL(operand.LabelRef(g.lbl("row")))

	// Next channel vector.
	g.nextVec(l, "")
	ctx.JG(operand.LabelRef(g.lbl("chunk")))
	ctx.VZEROUPPER()
	ctx.RET()
}
