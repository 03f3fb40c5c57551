package main

import (
	"fmt"

	"github.com/mmcloughlin/avo/attr"
	"github.com/mmcloughlin/avo/build"
	"github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// isa describes a vector instruction set for the kernels.
type isa struct {
	name  string // AVX2 or AVX512, part of function names
	vw    int    // float32 lanes per vector
	vec   func(ctx *build.Context) reg.VecVirtual
	mask  bool // stores of the last vector are masked by K1
	maxMR int  // rows of a full GEMM tile
	maxNV int  // vectors per full GEMM tile row
	nregs int  // vector registers
	// A second tile shape for the last column group of a GEMM whose width
	// is 8 past a multiple of 16 (0: none): tailMR rows by tailNV vectors.
	tailMR, tailNV int
	// halfTail: that tile is instead maxMR rows by one full vector and one
	// of half width (a ZMM and a YMM register: 24 columns, no mask). On
	// CPUs that run a ZMM operation as two YMM halves (Zen 4) it takes
	// three quarters of the time of two masked ZMM vectors.
	halfTail bool
}

var (
	avx2   = isa{name: "AVX2", vw: 8, vec: (*build.Context).YMM, maxMR: 6, maxNV: 2, nregs: 16, tailMR: 4, tailNV: 3}
	avx512 = isa{name: "AVX512", vw: 16, vec: (*build.Context).ZMM, mask: true, maxMR: 14, maxNV: 2, nregs: 32, halfTail: true}
)

// gemmSig is the Go signature of every GEMM micro-kernel; it must match
// runtime.tileFunc.
const gemmSig = "func(a *float32, lda, kseg, nseg, segStride int, b *float32, bstride int, c *float32, ldc int, bias, res *float32, ldr, ntiles, ncols, act int)"

// gemmWrapSig is the Go signature of the row-wrapping GEMM micro-kernels;
// it must match runtime.wrapFunc.
const gemmWrapSig = "func(a *float32, lda, kseg, nseg, segStride int, b *float32, bstride int, c *float32, ldc int, bias, res *float32, ldr, ntiles, ncols, act, rpg, left, cskip, rskip int)"

// gemmName is the name of the micro-kernel with mr rows and nv vectors.
func gemmName(s isa, mr, nv int) string { return fmt.Sprintf("gemm%sm%dn%d", s.name, mr, nv) }

// gemmTailName is the name of the half-width tail micro-kernel with mr
// rows (isa.halfTail), or of its row-wrapping form with wrap.
func gemmTailName(s isa, mr int, wrap bool) string {
	if wrap {
		return fmt.Sprintf("gemm%sWrapt24", s.name)
	}
	return fmt.Sprintf("gemm%sm%dt24", s.name, mr)
}

// gemmWrapName is the name of the row-wrapping micro-kernel with nv
// vectors (and the full tile's rows).
func gemmWrapName(s isa, nv int) string { return fmt.Sprintf("gemm%sWrapn%d", s.name, nv) }

// genGEMM adds the GEMM micro-kernels of one instruction set.
func genGEMM(s isa) func(ctx *build.Context) {
	return func(ctx *build.Context) {
		for nv := 1; nv <= s.maxNV; nv++ {
			for mr := 1; mr <= s.maxMR; mr++ {
				gemmKernel(ctx, s, mr, nv, false)
			}
		}
		for nv := 1; nv <= s.maxNV; nv++ {
			gemmKernel(ctx, s, s.maxMR, nv, true)
		}
		if s.tailNV > 0 {
			for mr := 1; mr <= s.tailMR; mr++ {
				gemmKernel(ctx, s, mr, s.tailNV, false)
			}
			gemmKernel(ctx, s, s.tailMR, s.tailNV, true)
		}
		if s.halfTail {
			for mr := 1; mr <= s.maxMR; mr++ {
				gemmKernel(ctx, s, mr, -2, false)
			}
			gemmKernel(ctx, s, s.maxMR, -2, true)
		}
	}
}

// rows addresses the rows of an A tile: row r is at bases[r/4] plus
// {0, lda, 2*lda, lda3}[r%4].
type rows struct {
	bases     []reg.GPVirtual
	lda, lda3 reg.GPVirtual
}

func newRows(ctx *build.Context, mr int, lda reg.GPVirtual) rows {
	rw := rows{lda: lda}
	for i := 0; i < (mr+3)/4; i++ {
		rw.bases = append(rw.bases, ctx.GP64())
	}
	if mr%4 == 0 || mr > 3 {
		rw.lda3 = ctx.GP64()
	}
	return rw
}

// setup points the bases at start and computes lda3.
func (rw rows) setup(ctx *build.Context, start reg.GPVirtual) {
	if rw.lda3 != nil {
		ctx.LEAQ(operand.Mem{Base: rw.lda, Index: rw.lda, Scale: 2}, rw.lda3)
	}
	ctx.MOVQ(start, rw.bases[0])
	for i := 1; i < len(rw.bases); i++ {
		ctx.LEAQ(operand.Mem{Base: rw.bases[i-1], Index: rw.lda, Scale: 4}, rw.bases[i])
	}
}

func (rw rows) addr(r, disp int) operand.Mem {
	m := operand.Mem{Base: rw.bases[r/4], Disp: disp}
	switch r % 4 {
	case 1:
		m.Index, m.Scale = rw.lda, 1
	case 2:
		m.Index, m.Scale = rw.lda, 2
	case 3:
		m.Index, m.Scale = rw.lda3, 1
	}
	return m
}

func (rw rows) advance(ctx *build.Context, bytes int) {
	for _, b := range rw.bases {
		ctx.ADDQ(imm(bytes), b)
	}
}

// kLoop emits the k loop of a segment: kc steps, unrolled by 4; labels
// carry the suffix sfx. group, when set, is emitted once per unrolled
// group of steps.
func kLoop(ctx *build.Context, sfx string, lbl func(string) string, kc reg.GPVirtual, rw rows, bp []reg.GPVirtual, step func(u int), group func()) {
	const unroll = 4
	ctx.CMPQ(kc, imm(unroll))
	ctx.JL(operand.LabelRef(lbl("k1" + sfx)))
	ctx.Label(lbl("k4" + sfx))
	for u := 0; u < unroll; u++ {
		step(u)
	}
	if group != nil {
		group()
	}
	rw.advance(ctx, 4*unroll)
	for i := range bp {
		ctx.ADDQ(imm(64*unroll), bp[i])
	}
	ctx.SUBQ(imm(unroll), kc)
	ctx.CMPQ(kc, imm(unroll))
	ctx.JGE(operand.LabelRef(lbl("k4" + sfx)))
	ctx.Label(lbl("k1" + sfx))
	ctx.TESTQ(kc, kc)
	ctx.JZ(operand.LabelRef(lbl("segdone")))
	step(0)
	rw.advance(ctx, 4)
	for i := range bp {
		ctx.ADDQ(imm(64), bp[i])
	}
	ctx.DECQ(kc)
	ctx.JMP(operand.LabelRef(lbl("k1" + sfx)))
}

// bPrefetch is how far ahead of the B row in use the k loop prefetches,
// in bytes: 64 rows of a 16-column panel (one 4 KiB page), past the end
// of a panel into the next one. Each 64-byte row is loaded by one tile
// after another; only the first tile of a panel finds it outside L1, and
// the hardware prefetchers stop at page ends, which the large weight
// matrices of 7x7 layers cross every 64 rows. On MobileNetV2-224's 7x7
// layers 4 KiB ahead ran faster than 1 KiB and than 8 KiB.
const bPrefetch = 64 * 64

// nextPrefetch is the number of 64-byte lines of the next call's B
// panels that each unrolled group of 4 k steps of a tile of mr rows by
// lanes columns prefetches: one per 384 multiply-adds of the group (24
// cycles of two 8-lane FMA units; one line per group of the 6x16 AVX2
// tile, five of the 14x32 AVX-512 tile), none for tiles under 48 lanes
// in all. A faster rate (two lines per AVX2 group) ran slower from
// memory: the prefetches wait for the line fill buffers and hold up the
// loads behind them.
func nextPrefetch(mr, lanes int) int {
	return (mr*lanes + 48) / 96
}

// gemmKernel emits one micro-kernel: ntiles tiles of mr rows by nv vectors.
// nv = -2 is the half-width tail (isa.halfTail): two vectors, the second a
// YMM register of 8 columns, 24 columns in all and no mask. With wrap, the
// rows of C and R are not evenly spaced: they run in groups of rpg rows (a
// map row of a tensor with a halo), and the step from the last row of a
// group to the first of the next adds cskip (rskip) floats; the first
// group has left rows (see gemmWrapGo).
func gemmKernel(ctx *build.Context, s isa, mr, nv int, wrap bool) {
	half := nv == -2
	if half {
		nv = 2
	}
	name := gemmName(s, mr, nv)
	sig := gemmSig
	doc := fmt.Sprintf("%s is gemmTileGo with mr = %d for tiles of up to %d columns (%d vectors of %d lanes), ncols > %d.",
		name, mr, nv*s.vw, nv, s.vw, (nv-1)*s.vw)
	if wrap {
		name = gemmWrapName(s, nv)
		sig = gemmWrapSig
		doc = fmt.Sprintf("%s is gemmWrapGo with mr = %d for tiles of up to %d columns (%d vectors of %d lanes), ncols > %d.",
			name, mr, nv*s.vw, nv, s.vw, (nv-1)*s.vw)
	}
	if half {
		name = gemmTailName(s, mr, wrap)
		twin := "gemmTileGo"
		if wrap {
			twin = "gemmWrapGo"
		}
		doc = fmt.Sprintf("%s is %s with mr = %d for tiles of exactly %d columns (a vector of %d lanes and one of %d), ncols = %d.",
			name, twin, mr, s.vw+s.vw/2, s.vw, s.vw/2, s.vw+s.vw/2)
	}
	// vec allocates the register of vector v of a row; hv converts a full
	// vector register (a broadcast, zero, six) to vector v's width.
	isHalf := func(v int) bool { return half && v == nv-1 }
	vec := func(v int) reg.VecVirtual {
		if isHalf(v) {
			return ctx.YMM()
		}
		return s.vec(ctx)
	}
	hv := func(x reg.VecVirtual, v int) operand.Op {
		if isHalf(v) {
			return x.AsY()
		}
		return x
	}
	ctx.Function(name)
	ctx.Attributes(attr.NOSPLIT)
	ctx.SignatureExpr(sig)
	ctx.Doc(doc)
	ctx.Pragma("noescape")
	lbl := func(l string) string { return name + "_" + l }
	vb := s.vw * 4 // bytes per vector

	// Locals carried across tiles and segments.
	locTile := ctx.AllocLocal(8)  // current A tile start
	locC := ctx.AllocLocal(8)     // current C tile start
	locR := ctx.AllocLocal(8)     // current residual tile start
	locTiles := ctx.AllocLocal(8) // tiles left
	locSeg := ctx.AllocLocal(8)   // segments left
	locPf := ctx.AllocLocal(8)    // next-call prefetch pointer
	locPfEnd := ctx.AllocLocal(8) // its end
	var locLeft operand.Mem       // rows left in the current group (wrap)
	if wrap {
		locLeft = ctx.AllocLocal(8)
	}

	t := ctx.GP64()
	ctx.Load(ctx.Param("a"), t)
	ctx.MOVQ(t, locTile)
	ctx.Load(ctx.Param("c"), t)
	ctx.MOVQ(t, locC)
	ctx.Load(ctx.Param("res"), t)
	ctx.MOVQ(t, locR)
	ctx.Load(ctx.Param("ntiles"), t)
	ctx.MOVQ(t, locTiles)
	if wrap {
		ctx.Load(ctx.Param("left"), t)
		ctx.MOVQ(t, locLeft)
	}

	if s.mask && !half {
		// K1 masks the last vector: bits = ncols - vw*(nv-1), in 1..vw.
		n, one := ctx.GP64(), ctx.GP64()
		ctx.Load(ctx.Param("ncols"), n)
		if nv > 1 {
			ctx.SUBQ(imm(s.vw*(nv-1)), n)
		}
		ctx.MOVQ(operand.I32(1), one)
		ctx.SHLXQ(n, one, one)
		ctx.DECQ(one)
		ctx.KMOVW(one.As32(), reg.K1)
	}

	// Next-call prefetch: the B panels after this call's (those of the
	// next column group, which the driver computes next) are prefetched
	// over this call's tiles, nextPrefetch lines per unrolled k group, up
	// to their end. Otherwise the first tile of each call would load its
	// panels at the FMA rate, above what one core gets from memory when
	// the weights are not in cache (the 7x7 layers of the 224x224 nets);
	// spread over the call, the prefetches hide that.
	// B panels a call reads: AVX-512 vectors come from separate 16-column
	// panels; AVX2 vectors are the halves of panel rows, two per panel.
	nb := (nv + 1) / 2
	if s.vw == 16 {
		nb = nv
	}
	{
		bs, pf := ctx.GP64(), ctx.GP64()
		ctx.Load(ctx.Param("bstride"), bs)
		ctx.SHLQ(imm(2), bs)
		ctx.Load(ctx.Param("b"), pf)
		if nb > 1 {
			ctx.IMUL3Q(imm(nb), bs, bs)
		}
		ctx.ADDQ(bs, pf)
		ctx.MOVQ(pf, locPf)
		ctx.ADDQ(bs, pf)
		ctx.MOVQ(pf, locPfEnd)
	}

	// Accumulators start from the bias.
	ctx.Label(lbl("tile"))
	bias := ctx.GP64()
	ctx.Load(ctx.Param("bias"), bias)
	acc := make([][]reg.VecVirtual, mr)
	for r := range acc {
		acc[r] = make([]reg.VecVirtual, nv)
		for v := range acc[r] {
			acc[r][v] = vec(v)
			ctx.VMOVUPS(operand.Mem{Base: bias, Disp: v * vb}, acc[r][v])
		}
	}
	bvec := make([]reg.VecVirtual, nv)
	for v := range bvec {
		bvec[v] = vec(v)
	}

	lda := ctx.GP64()
	ctx.Load(ctx.Param("lda"), lda)
	ctx.SHLQ(imm(2), lda)
	rw := newRows(ctx, mr, lda)
	sp := ctx.GP64() // segment start
	ctx.MOVQ(locTile, sp)
	// B pointers, one per panel.
	bp := make([]reg.GPVirtual, nb)
	for i := range bp {
		bp[i] = ctx.GP64()
	}
	ctx.Load(ctx.Param("b"), bp[0])
	if nb > 1 {
		bs := ctx.GP64()
		ctx.Load(ctx.Param("bstride"), bs)
		ctx.SHLQ(imm(2), bs)
		for i := 1; i < nb; i++ {
			ctx.LEAQ(operand.Mem{Base: bp[i-1], Index: bs, Scale: 1}, bp[i])
		}
	}
	bmem := func(v, disp int) operand.Mem {
		if s.vw == 16 {
			return operand.Mem{Base: bp[v], Disp: disp}
		}
		return operand.Mem{Base: bp[v/2], Disp: disp + v%2*vb}
	}
	ctx.Load(ctx.Param("nseg"), t)
	ctx.MOVQ(t, locSeg)

	// One k step at byte offset u*4 in A rows and u*64 in B.
	// Each A element is broadcast once into a register and reused for the
	// nv FMAs of its row. (A broadcast memory operand per FMA would load
	// it nv times and saturate the load ports on AVX-512.)
	embedded := s.mask && nv == 1
	var tmp []reg.VecVirtual
	if !embedded {
		// Two broadcast registers, or one when the accumulators and B
		// vectors leave only one (the register renamer keeps successive
		// broadcasts apart).
		tmp = []reg.VecVirtual{s.vec(ctx)}
		if mr*nv+nv+2 <= s.nregs {
			tmp = append(tmp, s.vec(ctx))
		}
	}
	step := func(u int, prefetch bool) {
		for v := 0; v < nv; v++ {
			ctx.VMOVUPS(bmem(v, u*64), bvec[v])
		}
		if prefetch {
			for i := 0; i < nb; i++ {
				ctx.PREFETCHT0(operand.Mem{Base: bp[i], Disp: u*64 + bPrefetch})
			}
		}
		for r := 0; r < mr; r++ {
			if embedded {
				ctx.VFMADD231PS_BCST(rw.addr(r, u*4), bvec[0], acc[r][0])
				continue
			}
			x := tmp[r%len(tmp)]
			ctx.VBROADCASTSS(rw.addr(r, u*4), x)
			for v := 0; v < nv; v++ {
				ctx.VFMADD231PS(bvec[v], hv(x, v), acc[r][v])
			}
		}
	}

	kc := ctx.GP64()
	ctx.Label(lbl("seg"))
	rw.setup(ctx, sp)
	ctx.Load(ctx.Param("kseg"), kc)
	// Every tile prefetches its share of the next call's panels (see
	// above), through pf.
	pf := ctx.GP64()
	ctx.MOVQ(locPf, pf)
	npf := nextPrefetch(mr, nv*s.vw)
	if half {
		npf = nextPrefetch(mr, nv*s.vw-s.vw/2)
	}
	next := func(sfx string) func() {
		if npf == 0 {
			return nil
		}
		return func() {
			ctx.CMPQ(pf, locPfEnd)
			ctx.JAE(operand.LabelRef(lbl("pfdone" + sfx)))
			for i := 0; i < npf; i++ {
				ctx.PREFETCHT0(operand.Mem{Base: pf, Disp: 64 * i})
			}
			ctx.ADDQ(imm(64*npf), pf)
			ctx.MOVQ(pf, locPf)
			ctx.Label(lbl("pfdone" + sfx))
		}
	}
	// The first tile of a call brings the B panel into L1 and prefetches
	// ahead of it; the others find it there.
	first := ctx.GP64()
	ctx.Load(ctx.Param("ntiles"), first)
	ctx.CMPQ(first, locTiles)
	ctx.JNE(operand.LabelRef(lbl("kloop")))
	kLoop(ctx, "p", lbl, kc, rw, bp, func(u int) { step(u, true) }, next("p"))
	ctx.JMP(operand.LabelRef(lbl("segdone")))
	ctx.Label(lbl("kloop"))
	kLoop(ctx, "", lbl, kc, rw, bp, func(u int) { step(u, false) }, next(""))
	ctx.Label(lbl("segdone"))
	ss := ctx.GP64()
	ctx.Load(ctx.Param("segStride"), ss)
	ctx.LEAQ(operand.Mem{Base: sp, Index: ss, Scale: 4}, sp)
	ctx.DECQ(locSeg)
	ctx.JNZ(operand.LabelRef(lbl("seg")))

	// Epilogue: residual, activation, store.
	last := func(v int) bool { return s.mask && !half && v == nv-1 }
	rp := ctx.GP64()
	ctx.MOVQ(locR, rp)
	ctx.TESTQ(rp, rp)
	ctx.JZ(operand.LabelRef(lbl("act")))
	ldr := ctx.GP64()
	ctx.Load(ctx.Param("ldr"), ldr)
	ctx.SHLQ(imm(2), ldr)
	rstep := newRowStep(ctx, wrap, locLeft, "rskip", lbl("rrow"))
	for r := 0; r < mr; r++ {
		for v := 0; v < nv; v++ {
			m := operand.Mem{Base: rp, Disp: v * vb}
			if last(v) {
				ctx.VADDPS(m, acc[r][v], reg.K1, acc[r][v])
			} else {
				ctx.VADDPS(m, acc[r][v], acc[r][v])
			}
		}
		rstep.next(ctx, rp, ldr, r)
	}
	ctx.MOVQ(rp, locR)
	ctx.Label(lbl("act"))
	act := ctx.GP64()
	ctx.Load(ctx.Param("act"), act)
	ctx.TESTQ(act, act)
	ctx.JZ(operand.LabelRef(lbl("store")))
	zero := bvec[0]
	ctx.VXORPS(zero, zero, zero)
	for r := 0; r < mr; r++ {
		for v := 0; v < nv; v++ {
			ctx.VMAXPS(hv(zero, v), acc[r][v], acc[r][v])
		}
	}
	ctx.CMPQ(act, imm(2))
	ctx.JNE(operand.LabelRef(lbl("store")))
	six := s.vec(ctx)
	broadcastSix(ctx, s, six)
	for r := 0; r < mr; r++ {
		for v := 0; v < nv; v++ {
			ctx.VMINPS(hv(six, v), acc[r][v], acc[r][v])
		}
	}
	ctx.Label(lbl("store"))
	cp, ldc := ctx.GP64(), ctx.GP64()
	ctx.MOVQ(locC, cp)
	ctx.Load(ctx.Param("ldc"), ldc)
	ctx.SHLQ(imm(2), ldc)
	cstep := newRowStep(ctx, wrap, locLeft, "cskip", lbl("crow"))
	for r := 0; r < mr; r++ {
		for v := 0; v < nv; v++ {
			m := operand.Mem{Base: cp, Disp: v * vb}
			if last(v) {
				ctx.VMOVUPS(acc[r][v], reg.K1, m)
			} else {
				ctx.VMOVUPS(acc[r][v], m)
			}
		}
		cstep.next(ctx, cp, ldc, r)
	}
	ctx.MOVQ(cp, locC)
	if wrap {
		ctx.MOVQ(cstep.left, locLeft)
	}

	// Next tile: A advances by mr rows.
	ta := ctx.GP64()
	ctx.Load(ctx.Param("lda"), ta)
	ctx.IMUL3Q(imm(4*mr), ta, ta)
	ctx.ADDQ(ta, locTile)
	ctx.DECQ(locTiles)
	ctx.JNZ(operand.LabelRef(lbl("tile")))
	ctx.VZEROUPPER()
	ctx.RET()
}

// rowStep moves a C or R row pointer to the next row. Without wrap that is
// one add of the row stride; with wrap a counter of the rows left in the
// current group (loaded from the kernel's local) runs down, and when it
// reaches zero the pointer also skips the gap to the next group and the
// counter restarts at rpg.
type rowStep struct {
	wrap      bool
	left      reg.GPVirtual
	rpg, skip reg.GPVirtual
	labelStem string
}

func newRowStep(ctx *build.Context, wrap bool, locLeft operand.Mem, skipParam, labelStem string) rowStep {
	st := rowStep{wrap: wrap, labelStem: labelStem}
	if !wrap {
		return st
	}
	st.left, st.rpg, st.skip = ctx.GP64(), ctx.GP64(), ctx.GP64()
	ctx.MOVQ(locLeft, st.left)
	ctx.Load(ctx.Param("rpg"), st.rpg)
	ctx.Load(ctx.Param(skipParam), st.skip)
	ctx.SHLQ(imm(2), st.skip)
	return st
}

// next advances p past row r by stride bytes, and the group gap if row r
// ends a group.
func (st rowStep) next(ctx *build.Context, p, stride reg.GPVirtual, r int) {
	ctx.ADDQ(stride, p)
	if !st.wrap {
		return
	}
	l := fmt.Sprintf("%s%d", st.labelStem, r)
	ctx.DECQ(st.left)
	ctx.JNZ(operand.LabelRef(l))
	ctx.MOVQ(st.rpg, st.left)
	ctx.ADDQ(st.skip, p)
	ctx.Label(l)
}

// broadcastSix fills v with 6.0 in every lane.
func broadcastSix(ctx *build.Context, s isa, v reg.VecVirtual) {
	g := ctx.GP32()
	ctx.MOVL(operand.U32(0x40c00000), g)
	if s.mask {
		ctx.VPBROADCASTD(g, v)
		return
	}
	// VMOVD, not MOVD: a legacy-SSE instruction while the upper halves of
	// the vector registers are dirty costs Intel cores a state transition
	// or a merge on every call.
	x := ctx.XMM()
	ctx.VMOVD(g, x)
	ctx.VBROADCASTSS(x, v)
}

// imm is an immediate operand: 8-bit when it fits, else 32-bit.
func imm(v int) operand.Op {
	if v >= -128 && v <= 127 {
		return operand.I8(int8(v))
	}
	return operand.I32(int32(v))
}
