package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/mmcloughlin/avo/attr"
	"github.com/mmcloughlin/avo/build"
	"github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/printer"
	"github.com/mmcloughlin/avo/reg"
)

// This file writes the kernels of package runtime/kernels (training and
// inference): GEMM micro-kernels over packed panels, depthwise row and
// filter-gradient kernels, and element-wise kernels. Their Go twins and
// exact semantics are in runtime/kernels.

// kernUnits are the generated file pairs of runtime/kernels.
var kernUnits = []unit{
	{"sgemm", genKernSgemm},
	{"dwk", genKernDW},
	{"elem", genKernElem},
	{"dot", genKernDot},
	{"pack", genKernPack},
	{"peak", genKernPeak},
}

// writeKernels renders kernUnits into out/kernels, exiting on failure.
func writeKernels(out string) {
	cfg := printer.Config{Argv: argv(os.Args[1:]), Pkg: "kernels"}
	dir := filepath.Join(out, "kernels")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "_gen:", err)
		os.Exit(1)
	}
	for _, u := range kernUnits {
		asm, stubs, err := render(u, cfg)
		if err != nil {
			fmt.Fprintf(os.Stderr, "_gen: kernels/%s: %v\n", u.name, err)
			os.Exit(1)
		}
		base := filepath.Join(dir, "z"+u.name+"_amd64")
		for _, f := range []struct {
			path string
			data []byte
		}{{base + ".s", asm}, {base + ".go", stubs}} {
			if err := os.WriteFile(f.path, f.data, 0o644); err != nil {
				fmt.Fprintln(os.Stderr, "_gen:", err)
				os.Exit(1)
			}
		}
	}
}

// kernGemmShapes are the micro-kernel tiles: rows and vectors per row.
var kernGemmShapes = []struct {
	s      isa
	mr, nv int
}{{avx2, 6, 2}, {avx512, 12, 2}}

func genKernSgemm(ctx *build.Context) {
	for _, sh := range kernGemmShapes {
		kernGemm(ctx, sh.s, sh.mr, sh.nv)
	}
}

// kernGemm emits sgemm<ISA>m<mr>n<nr>: one mr×nr tile of C from packed
// panels (see sgemmTileGo). Each A element is broadcast once into a
// register and used by the nv FMAs of its row.
func kernGemm(ctx *build.Context, s isa, mr, nv int) {
	nr := nv * s.vw
	name := fmt.Sprintf("sgemm%sm%dn%d", s.name, mr, nr)
	ctx.Function(name)
	ctx.Attributes(attr.NOSPLIT)
	ctx.SignatureExpr("func(kc int, a, b *float32, ldb int, c *float32, ldc, load int)")
	ctx.Doc(fmt.Sprintf("%s is sgemmTileGo with mr = %d, nr = %d; load != 0 adds to C.", name, mr, nr))
	ctx.Pragma("noescape")
	lbl := func(l string) string { return name + "_" + l }
	vb := s.vw * 4

	cp, ldc := ctx.GP64(), ctx.GP64()
	ctx.Load(ctx.Param("c"), cp)
	ctx.Load(ctx.Param("ldc"), ldc)
	ctx.SHLQ(imm(2), ldc)
	// Prefetch the C tile while the products run.
	pc := ctx.GP64()
	ctx.MOVQ(cp, pc)
	for r := 0; r < mr; r++ {
		ctx.PREFETCHT0(operand.Mem{Base: pc})
		ctx.PREFETCHT0(operand.Mem{Base: pc, Disp: nr*4 - 4})
		ctx.ADDQ(ldc, pc)
	}
	acc := make([][]reg.VecVirtual, mr)
	for r := range acc {
		acc[r] = make([]reg.VecVirtual, nv)
		for v := range acc[r] {
			acc[r][v] = s.vec(ctx)
			ctx.VXORPS(acc[r][v], acc[r][v], acc[r][v])
		}
	}
	bv := make([]reg.VecVirtual, nv)
	for v := range bv {
		bv[v] = s.vec(ctx)
	}
	tmp := []reg.VecVirtual{s.vec(ctx), s.vec(ctx)}
	ap, bp, kc := ctx.GP64(), ctx.GP64(), ctx.GP64()
	ctx.Load(ctx.Param("a"), ap)
	ctx.Load(ctx.Param("b"), bp)
	ctx.Load(ctx.Param("kc"), kc)
	// B rows are ldb floats apart: nr for a packed panel, the matrix's row
	// stride when B is read in place. Row u of an unrolled step is at
	// bp + {0, ldb, 2*ldb, ldb3}[u].
	ldb, ldb3 := ctx.GP64(), ctx.GP64()
	ctx.Load(ctx.Param("ldb"), ldb)
	ctx.SHLQ(imm(2), ldb)
	ctx.LEAQ(operand.Mem{Base: ldb, Index: ldb, Scale: 2}, ldb3)
	brow := func(u, disp int) operand.Mem {
		m := operand.Mem{Base: bp, Disp: disp}
		switch u {
		case 1:
			m.Index, m.Scale = ldb, 1
		case 2:
			m.Index, m.Scale = ldb, 2
		case 3:
			m.Index, m.Scale = ldb3, 1
		}
		return m
	}
	step := func(u int) {
		for v := 0; v < nv; v++ {
			ctx.VMOVUPS(brow(u, v*s.vw*4), bv[v])
		}
		for r := 0; r < mr; r++ {
			x := tmp[r%2]
			ctx.VBROADCASTSS(operand.Mem{Base: ap, Disp: (u*mr + r) * 4}, x)
			for v := 0; v < nv; v++ {
				ctx.VFMADD231PS(bv[v], x, acc[r][v])
			}
		}
	}
	const unroll = 4
	ctx.CMPQ(kc, imm(unroll))
	ctx.JL(operand.LabelRef(lbl("k1")))
	ctx.Label(lbl("k4"))
	for u := 0; u < unroll; u++ {
		step(u)
	}
	ctx.ADDQ(imm(unroll*mr*4), ap)
	ctx.LEAQ(operand.Mem{Base: bp, Index: ldb, Scale: 4}, bp)
	ctx.SUBQ(imm(unroll), kc)
	ctx.CMPQ(kc, imm(unroll))
	ctx.JGE(operand.LabelRef(lbl("k4")))
	ctx.Label(lbl("k1"))
	ctx.TESTQ(kc, kc)
	ctx.JZ(operand.LabelRef(lbl("done")))
	step(0)
	ctx.ADDQ(imm(mr*4), ap)
	ctx.ADDQ(ldb, bp)
	ctx.DECQ(kc)
	ctx.JMP(operand.LabelRef(lbl("k1")))

	ctx.Label(lbl("done"))
	ld := ctx.GP64()
	ctx.Load(ctx.Param("load"), ld)
	ctx.TESTQ(ld, ld)
	ctx.JZ(operand.LabelRef(lbl("store")))
	q := ctx.GP64()
	ctx.MOVQ(cp, q)
	for r := 0; r < mr; r++ {
		for v := 0; v < nv; v++ {
			ctx.VADDPS(operand.Mem{Base: q, Disp: v * vb}, acc[r][v], acc[r][v])
		}
		ctx.ADDQ(ldc, q)
	}
	ctx.Label(lbl("store"))
	for r := 0; r < mr; r++ {
		for v := 0; v < nv; v++ {
			ctx.VMOVUPS(acc[r][v], operand.Mem{Base: cp, Disp: v * vb})
		}
		ctx.ADDQ(ldc, cp)
	}
	ctx.VZEROUPPER()
	ctx.RET()
}

// kernDWGroup is the number of output vectors a depthwise row kernel
// accumulates together.
const kernDWGroup = 4

func genKernDW(ctx *build.Context) {
	for _, s := range []isa{avx2, avx512} {
		for _, k := range dwSizes {
			for _, st := range dwStrides {
				kernDWRows(ctx, s, k, st)
				kernDWFilt(ctx, s, k, st)
			}
		}
	}
}

// kernDWRows emits dwRowsK<k>S<s><ISA> (see dwRowsGo; ldx = s*hoff). The
// input is addressed as virtual rows hoff apart: tap (i, j) of output row r
// reads virtual row (r*s+i)*s + j%s at column j/s. Output vectors are taken
// kernDWGroup at a time; each tap broadcasts its weight once and feeds
// one FMA per vector with the input as a memory operand.
func kernDWRows(ctx *build.Context, s isa, k, st int) {
	name := fmt.Sprintf("dwRowsK%dS%d%s", k, st, s.name)
	ctx.Function(name)
	ctx.Attributes(attr.NOSPLIT)
	ctx.SignatureExpr("func(y *float32, ldy int, x *float32, ldx, hoff int, w *float32, rows, nv int)")
	ctx.Doc(fmt.Sprintf("%s is dwRowsGo with k = %d, s = %d, cols = nv*%d and ldx = s*hoff.", name, k, st, s.vw))
	ctx.Pragma("noescape")
	lbl := func(l string) string { return name + "_" + l }
	vb := s.vw * 4

	locRows, locX, locY := ctx.AllocLocal(8), ctx.AllocLocal(8), ctx.AllocLocal(8)
	t := ctx.GP64()
	ctx.Load(ctx.Param("rows"), t)
	ctx.TESTQ(t, t)
	ctx.JZ(operand.LabelRef(lbl("end")))
	ctx.MOVQ(t, locRows)
	ctx.Load(ctx.Param("x"), t)
	ctx.MOVQ(t, locX)
	ctx.Load(ctx.Param("y"), t)
	ctx.MOVQ(t, locY)

	ctx.Label(lbl("row"))
	hoff := ctx.GP64()
	ctx.Load(ctx.Param("hoff"), hoff)
	ctx.SHLQ(imm(2), hoff)
	rw := newRows(ctx, k*st, hoff)
	xc := ctx.GP64()
	ctx.MOVQ(locX, xc)
	rw.setup(ctx, xc)
	yc, nvc, wp := ctx.GP64(), ctx.GP64(), ctx.GP64()
	ctx.MOVQ(locY, yc)
	ctx.Load(ctx.Param("nv"), nvc)
	ctx.Load(ctx.Param("w"), wp)

	block := func(g int) {
		acc := make([]reg.VecVirtual, g)
		for i := range acc {
			acc[i] = s.vec(ctx)
			ctx.VXORPS(acc[i], acc[i], acc[i])
		}
		wt := []reg.VecVirtual{s.vec(ctx), s.vec(ctx)}
		for i := 0; i < k; i++ {
			for j := 0; j < k; j++ {
				tap := i*k + j
				x := wt[tap%2]
				ctx.VBROADCASTSS(operand.Mem{Base: wp, Disp: tap * 4}, x)
				for v := 0; v < g; v++ {
					ctx.VFMADD231PS(rw.addr(i*st+j%st, (j/st)*4+v*vb), x, acc[v])
				}
			}
		}
		for v := 0; v < g; v++ {
			ctx.VMOVUPS(acc[v], operand.Mem{Base: yc, Disp: v * vb})
		}
		rw.advance(ctx, g*vb)
		ctx.ADDQ(imm(g*vb), yc)
	}
	ctx.Label(lbl("g4"))
	ctx.CMPQ(nvc, imm(kernDWGroup))
	ctx.JL(operand.LabelRef(lbl("g1")))
	block(kernDWGroup)
	ctx.SUBQ(imm(kernDWGroup), nvc)
	ctx.JMP(operand.LabelRef(lbl("g4")))
	ctx.Label(lbl("g1"))
	ctx.TESTQ(nvc, nvc)
	ctx.JZ(operand.LabelRef(lbl("next")))
	block(1)
	ctx.DECQ(nvc)
	ctx.JMP(operand.LabelRef(lbl("g1")))

	ctx.Label(lbl("next"))
	// Next output row: x advances s input rows (s*s virtual rows), y one row.
	d := ctx.GP64()
	ctx.Load(ctx.Param("hoff"), d)
	ctx.IMUL3Q(imm(4*st*st), d, d)
	ctx.ADDQ(d, locX)
	ctx.Load(ctx.Param("ldy"), d)
	ctx.SHLQ(imm(2), d)
	ctx.ADDQ(d, locY)
	ctx.DECQ(locRows)
	ctx.JNZ(operand.LabelRef(lbl("row")))
	ctx.Label(lbl("end"))
	ctx.VZEROUPPER()
	ctx.RET()
}

// kernDWFilt emits dwFiltK<k>S<s><ISA> (see dwFiltGo; ldx = s*hoff): for
// each kernel row i, the k accumulator vectors of that row stay in
// registers over all rows and vectors of dy.
func kernDWFilt(ctx *build.Context, s isa, k, st int) {
	name := fmt.Sprintf("dwFiltK%dS%d%s", k, st, s.name)
	ctx.Function(name)
	ctx.Attributes(attr.NOSPLIT)
	ctx.SignatureExpr("func(acc, dy *float32, ldd int, x *float32, ldx, hoff int, rows, nv int)")
	ctx.Doc(fmt.Sprintf("%s is dwFiltGo with k = %d, s = %d, vw = %d and ldx = s*hoff.", name, k, st, s.vw))
	ctx.Pragma("noescape")
	lbl := func(l string) string { return name + "_" + l }
	vb := s.vw * 4

	t := ctx.GP64()
	ctx.Load(ctx.Param("rows"), t)
	ctx.TESTQ(t, t)
	ctx.JZ(operand.LabelRef(lbl("end")))
	ctx.Load(ctx.Param("nv"), t)
	ctx.TESTQ(t, t)
	ctx.JZ(operand.LabelRef(lbl("end")))
	for i := 0; i < k; i++ {
		li := func(l string) string { return lbl(fmt.Sprintf("%s%d", l, i)) }
		ap := ctx.GP64()
		ctx.Load(ctx.Param("acc"), ap)
		a := make([]reg.VecVirtual, k)
		for j := range a {
			a[j] = s.vec(ctx)
			ctx.VMOVUPS(operand.Mem{Base: ap, Disp: (i*k + j) * vb}, a[j])
		}
		hoff, ldd, dp, xr, rows := ctx.GP64(), ctx.GP64(), ctx.GP64(), ctx.GP64(), ctx.GP64()
		ctx.Load(ctx.Param("hoff"), hoff)
		ctx.SHLQ(imm(2), hoff)
		ctx.Load(ctx.Param("ldd"), ldd)
		ctx.SHLQ(imm(2), ldd)
		ctx.Load(ctx.Param("dy"), dp)
		ctx.Load(ctx.Param("x"), xr)
		if i*st > 0 {
			// Virtual row i*s of output row 0.
			o := ctx.GP64()
			ctx.IMUL3Q(imm(i*st), hoff, o)
			ctx.ADDQ(o, xr)
		}
		ctx.Load(ctx.Param("rows"), rows)
		ctx.Label(li("row"))
		nvc, dc, xc := ctx.GP64(), ctx.GP64(), ctx.GP64()
		ctx.Load(ctx.Param("nv"), nvc)
		ctx.MOVQ(dp, dc)
		ctx.MOVQ(xr, xc)
		ctx.Label(li("vec"))
		d := s.vec(ctx)
		ctx.VMOVUPS(operand.Mem{Base: dc}, d)
		for j := 0; j < k; j++ {
			m := operand.Mem{Base: xc, Disp: (j / st) * 4}
			if j%st == 1 {
				m.Index, m.Scale = hoff, 1
			}
			ctx.VFMADD231PS(m, d, a[j])
		}
		ctx.ADDQ(imm(vb), dc)
		ctx.ADDQ(imm(vb), xc)
		ctx.DECQ(nvc)
		ctx.JNZ(operand.LabelRef(li("vec")))
		ctx.ADDQ(ldd, dp)
		o := ctx.GP64()
		ctx.IMUL3Q(imm(st*st), hoff, o)
		ctx.ADDQ(o, xr)
		ctx.DECQ(rows)
		ctx.JNZ(operand.LabelRef(li("row")))
		for j := range a {
			ctx.VMOVUPS(a[j], operand.Mem{Base: ap, Disp: (i*k + j) * vb})
		}
	}
	ctx.Label(lbl("end"))
	ctx.VZEROUPPER()
	ctx.RET()
}

// genKernElem emits the element-wise kernels. They are AVX2 only: they
// stream memory, where wider vectors gain little, and serve the AVX-512 set
// too. Each handles n floats, n a multiple of 8; the callers do the rest in
// Go.
func genKernElem(ctx *build.Context) {
	s := avx2
	elemFn(ctx, "elemAxpyAVX2", "func(alpha float32, x, y *float32, n int)", "axpyGo: y[i] += alpha*x[i]",
		[]string{"x", "y"}, func() []reg.VecVirtual { return []reg.VecVirtual{elemBroadcast(ctx, "alpha")} },
		func(c []reg.VecVirtual, p []reg.GPVirtual, disp int) {
			t := s.vec(ctx)
			ctx.VMOVUPS(operand.Mem{Base: p[1], Disp: disp}, t)
			ctx.VFMADD231PS(operand.Mem{Base: p[0], Disp: disp}, c[0], t)
			ctx.VMOVUPS(t, operand.Mem{Base: p[1], Disp: disp})
		})
	elemFn(ctx, "elemScaleAVX2", "func(alpha float32, x *float32, n int)", "scaleGo: x[i] *= alpha",
		[]string{"x"}, func() []reg.VecVirtual { return []reg.VecVirtual{elemBroadcast(ctx, "alpha")} },
		func(c []reg.VecVirtual, p []reg.GPVirtual, disp int) {
			t := s.vec(ctx)
			ctx.VMULPS(operand.Mem{Base: p[0], Disp: disp}, c[0], t)
			ctx.VMOVUPS(t, operand.Mem{Base: p[0], Disp: disp})
		})
	for _, op := range []struct {
		name string
		f    func(ops ...operand.Op)
	}{{"Add", ctx.VADDPS}, {"Mul", ctx.VMULPS}, {"Sub", ctx.VSUBPS}} {
		elemFn(ctx, "elem"+op.name+"AVX2", "func(dst, a, b *float32, n int)", strings.ToLower(op.name)+"Go",
			[]string{"dst", "a", "b"}, nil,
			func(c []reg.VecVirtual, p []reg.GPVirtual, disp int) {
				t := s.vec(ctx)
				ctx.VMOVUPS(operand.Mem{Base: p[1], Disp: disp}, t)
				op.f(operand.Mem{Base: p[2], Disp: disp}, t, t)
				ctx.VMOVUPS(t, operand.Mem{Base: p[0], Disp: disp})
			})
	}
	// The same with a constant second operand.
	for _, op := range []struct {
		name string
		f    func(ops ...operand.Op)
	}{{"Add", ctx.VADDPS}, {"Mul", ctx.VMULPS}} {
		elemFn(ctx, "elem"+op.name+"ConstAVX2", "func(dst, x *float32, c float32, n int)", strings.ToLower(op.name)+"ConstGo",
			[]string{"dst", "x"}, func() []reg.VecVirtual { return []reg.VecVirtual{elemBroadcast(ctx, "c")} },
			func(c []reg.VecVirtual, p []reg.GPVirtual, disp int) {
				t := s.vec(ctx)
				op.f(operand.Mem{Base: p[1], Disp: disp}, c[0], t)
				ctx.VMOVUPS(t, operand.Mem{Base: p[0], Disp: disp})
			})
	}
	consts := func() []reg.VecVirtual {
		zero, six := s.vec(ctx), s.vec(ctx)
		ctx.VXORPS(zero, zero, zero)
		// 6.0 in every lane; VMOVD, not the legacy-SSE MOVD.
		g, x := ctx.GP32(), ctx.XMM()
		ctx.MOVL(operand.U32(0x40c00000), g)
		ctx.VMOVD(g, x)
		ctx.VBROADCASTSS(x, six)
		return []reg.VecVirtual{zero, six}
	}
	elemFn(ctx, "elemReLU6AVX2", "func(dst, x *float32, n int)", "relu6Go",
		[]string{"dst", "x"}, consts,
		func(c []reg.VecVirtual, p []reg.GPVirtual, disp int) {
			t := s.vec(ctx)
			ctx.VMAXPS(operand.Mem{Base: p[1], Disp: disp}, c[0], t)
			ctx.VMINPS(c[1], t, t)
			ctx.VMOVUPS(t, operand.Mem{Base: p[0], Disp: disp})
		})
	const ltOQ = 0x11
	elemFn(ctx, "elemReLU6GradAVX2", "func(dx, x, dy *float32, n int)", "relu6GradGo",
		[]string{"dx", "x", "dy"}, consts,
		func(c []reg.VecVirtual, p []reg.GPVirtual, disp int) {
			x, m1, m2 := s.vec(ctx), s.vec(ctx), s.vec(ctx)
			ctx.VMOVUPS(operand.Mem{Base: p[1], Disp: disp}, x)
			ctx.VCMPPS(operand.U8(ltOQ), x, c[0], m1) // 0 < x
			ctx.VCMPPS(operand.U8(ltOQ), c[1], x, m2) // x < 6
			ctx.VANDPS(m2, m1, m1)
			ctx.VANDPS(operand.Mem{Base: p[2], Disp: disp}, m1, m1)
			ctx.VMOVUPS(m1, operand.Mem{Base: p[0], Disp: disp})
		})
	elemSum(ctx)
}

// elemBroadcast loads the float32 parameter name into every lane.
func elemBroadcast(ctx *build.Context, name string) reg.VecVirtual {
	x, y := ctx.XMM(), ctx.YMM()
	ctx.Load(ctx.Param(name), x)
	ctx.VBROADCASTSS(x, y)
	return y
}

// elemFn emits a streaming kernel over the pointer parameters ptrs: body
// handles one vector at byte offset disp, four per iteration while at least
// 32 floats remain, then one.
func elemFn(ctx *build.Context, name, sig, twin string, ptrs []string, setup func() []reg.VecVirtual,
	body func(c []reg.VecVirtual, p []reg.GPVirtual, disp int)) {
	ctx.Function(name)
	ctx.Attributes(attr.NOSPLIT)
	ctx.SignatureExpr(sig)
	ctx.Doc(fmt.Sprintf("%s is %s over n floats, n a multiple of 8.", name, twin))
	ctx.Pragma("noescape")
	lbl := func(l string) string { return name + "_" + l }
	var c []reg.VecVirtual
	if setup != nil {
		c = setup()
	}
	p := make([]reg.GPVirtual, len(ptrs))
	for i, nm := range ptrs {
		p[i] = ctx.GP64()
		ctx.Load(ctx.Param(nm), p[i])
	}
	n := ctx.GP64()
	ctx.Load(ctx.Param("n"), n)
	ctx.Label(lbl("u4"))
	ctx.CMPQ(n, imm(32))
	ctx.JL(operand.LabelRef(lbl("u1")))
	for u := 0; u < 4; u++ {
		body(c, p, u*32)
	}
	for _, r := range p {
		ctx.ADDQ(imm(128), r)
	}
	ctx.SUBQ(imm(32), n)
	ctx.JMP(operand.LabelRef(lbl("u4")))
	ctx.Label(lbl("u1"))
	ctx.CMPQ(n, imm(8))
	ctx.JL(operand.LabelRef(lbl("done")))
	body(c, p, 0)
	for _, r := range p {
		ctx.ADDQ(imm(32), r)
	}
	ctx.SUBQ(imm(8), n)
	ctx.JMP(operand.LabelRef(lbl("u1")))
	ctx.Label(lbl("done"))
	ctx.VZEROUPPER()
	ctx.RET()
}

// elemSum emits elemSumAVX2 (see sumLanesGo) and elemDotAVX2 (see
// dotLanesGo): four accumulators of 8 lanes over n floats, n a multiple of
// 32, folded as (a0+a1)+(a2+a3), then upper and lower 128 bits, then lanes
// {0,1}+{2,3}, then lane 0 + lane 1.
func elemSum(ctx *build.Context) {
	elemReduce(ctx, false)
	elemReduce(ctx, true)
}

func elemReduce(ctx *build.Context, dot bool) {
	name, sig, twin := "elemSumAVX2", "func(x *float32, n int) float32", "sumLanesGo"
	if dot {
		name, sig, twin = "elemDotAVX2", "func(x, y *float32, n int) float32", "dotLanesGo"
	}
	ctx.Function(name)
	ctx.Attributes(attr.NOSPLIT)
	ctx.SignatureExpr(sig)
	ctx.Doc(name + " is " + twin + " over n floats, n a multiple of 32.")
	ctx.Pragma("noescape")
	lbl := func(l string) string { return name + "_" + l }
	a := make([]reg.VecVirtual, 4)
	for i := range a {
		a[i] = ctx.YMM()
		ctx.VXORPS(a[i], a[i], a[i])
	}
	p, q, n := ctx.GP64(), ctx.GP64(), ctx.GP64()
	ctx.Load(ctx.Param("x"), p)
	if dot {
		ctx.Load(ctx.Param("y"), q)
	}
	ctx.Load(ctx.Param("n"), n)
	ctx.Label(lbl("loop"))
	ctx.CMPQ(n, imm(32))
	ctx.JL(operand.LabelRef(lbl("fold")))
	for i := range a {
		if dot {
			t := ctx.YMM()
			ctx.VMOVUPS(operand.Mem{Base: p, Disp: i * 32}, t)
			ctx.VFMADD231PS(operand.Mem{Base: q, Disp: i * 32}, t, a[i])
		} else {
			ctx.VADDPS(operand.Mem{Base: p, Disp: i * 32}, a[i], a[i])
		}
	}
	ctx.ADDQ(imm(128), p)
	if dot {
		ctx.ADDQ(imm(128), q)
	}
	ctx.SUBQ(imm(32), n)
	ctx.JMP(operand.LabelRef(lbl("loop")))
	ctx.Label(lbl("fold"))
	ctx.VADDPS(a[1], a[0], a[0])
	ctx.VADDPS(a[3], a[2], a[2])
	ctx.VADDPS(a[2], a[0], a[0])
	hi := ctx.XMM()
	ctx.VEXTRACTF128(operand.U8(1), a[0], hi)
	lo := a[0].AsX()
	ctx.VADDPS(hi, lo, lo)
	ctx.VMOVHLPS(lo, lo, hi)
	ctx.VADDPS(hi, lo, lo)
	ctx.VMOVSHDUP(lo, hi)
	ctx.VADDSS(hi, lo, lo)
	ctx.VZEROUPPER()
	ctx.Store(lo, ctx.ReturnIndex(0))
	ctx.RET()
}

// genKernPeak emits register-only FMA loops that measure the CPU's float32
// peak in the benchmarks: iters iterations of nacc independent FMAs, enough
// accumulators to cover the FMA latency on every port.
func genKernPeak(ctx *build.Context) {
	for _, p := range []struct {
		s    isa
		nacc int
	}{{avx2, 12}, {avx512, 24}} {
		name := "peakFMA" + p.s.name
		ctx.Function(name)
		ctx.Attributes(attr.NOSPLIT)
		ctx.SignatureExpr("func(iters int)")
		ctx.Doc(fmt.Sprintf("%s runs iters iterations of %d independent %d-lane FMAs (%d flops each).", name, p.nacc, p.s.vw, 2*p.nacc*p.s.vw))
		acc := make([]reg.VecVirtual, p.nacc)
		for i := range acc {
			acc[i] = p.s.vec(ctx)
			ctx.VXORPS(acc[i], acc[i], acc[i])
		}
		m := p.s.vec(ctx)
		ctx.VXORPS(m, m, m)
		n := ctx.GP64()
		ctx.Load(ctx.Param("iters"), n)
		ctx.TESTQ(n, n)
		ctx.JZ(operand.LabelRef(name + "_done"))
		ctx.Label(name + "_loop")
		for i := range acc {
			ctx.VFMADD231PS(m, m, acc[i])
		}
		ctx.DECQ(n)
		ctx.JNZ(operand.LabelRef(name + "_loop"))
		ctx.Label(name + "_done")
		ctx.VZEROUPPER()
		ctx.RET()
	}
}

// kernDotShapes are the largest tiles of the dot-product GEMM kernels, for
// C = A·Bᵀ with both operands contiguous along k: rows of A by rows of B.
var kernDotShapes = []struct {
	s      isa
	mr, nr int
}{{avx2, 4, 3}, {avx512, 6, 4}}

func genKernDot(ctx *build.Context) {
	for _, sh := range kernDotShapes {
		for r := 1; r <= sh.mr; r++ {
			for c := 1; c <= sh.nr; c++ {
				kernDot(ctx, sh.s, r, c)
			}
		}
	}
}

// kernDot emits sdot<ISA>m<r>n<c> (see sdotTileGo): r×c accumulators
// summed lane-wise along k, each A and B vector loaded once per step, then
// every accumulator folded to one float (upper half of the lanes onto the
// lower half, down to one lane) and stored to t[i*c+j].
func kernDot(ctx *build.Context, s isa, r, c int) {
	name := fmt.Sprintf("sdot%sm%dn%d", s.name, r, c)
	ctx.Function(name)
	ctx.Attributes(attr.NOSPLIT)
	ctx.SignatureExpr("func(k int, a *float32, lda int, b *float32, ldb int, t *float32)")
	ctx.Doc(fmt.Sprintf("%s is sdotTileGo with mr = %d, nr = %d, vw = %d; k is a multiple of %d.", name, r, c, s.vw, s.vw))
	ctx.Pragma("noescape")
	lbl := func(l string) string { return name + "_" + l }
	vb := s.vw * 4

	acc := make([][]reg.VecVirtual, r)
	for i := range acc {
		acc[i] = make([]reg.VecVirtual, c)
		for j := range acc[i] {
			acc[i][j] = s.vec(ctx)
			ctx.VXORPS(acc[i][j], acc[i][j], acc[i][j])
		}
	}
	lda, ldb := ctx.GP64(), ctx.GP64()
	ctx.Load(ctx.Param("lda"), lda)
	ctx.SHLQ(imm(2), lda)
	ctx.Load(ctx.Param("ldb"), ldb)
	ctx.SHLQ(imm(2), ldb)
	ra, rb := newRows(ctx, r, lda), newRows(ctx, c, ldb)
	ap, bp := ctx.GP64(), ctx.GP64()
	ctx.Load(ctx.Param("a"), ap)
	ctx.Load(ctx.Param("b"), bp)
	ra.setup(ctx, ap)
	rb.setup(ctx, bp)
	bv := make([]reg.VecVirtual, c)
	for j := range bv {
		bv[j] = s.vec(ctx)
	}
	av := s.vec(ctx)
	n := ctx.GP64()
	ctx.Load(ctx.Param("k"), n)
	ctx.SHRQ(imm(map[int]int{8: 3, 16: 4}[s.vw]), n)
	ctx.JZ(operand.LabelRef(lbl("fold")))
	ctx.Label(lbl("loop"))
	for j := 0; j < c; j++ {
		ctx.VMOVUPS(rb.addr(j, 0), bv[j])
	}
	for i := 0; i < r; i++ {
		ctx.VMOVUPS(ra.addr(i, 0), av)
		for j := 0; j < c; j++ {
			ctx.VFMADD231PS(bv[j], av, acc[i][j])
		}
	}
	ra.advance(ctx, vb)
	rb.advance(ctx, vb)
	ctx.DECQ(n)
	ctx.JNZ(operand.LabelRef(lbl("loop")))

	ctx.Label(lbl("fold"))
	tp := ctx.GP64()
	ctx.Load(ctx.Param("t"), tp)
	for i := 0; i < r; i++ {
		for j := 0; j < c; j++ {
			v := acc[i][j]
			var y reg.VecVirtual
			if s.vw == 16 {
				h := ctx.YMM()
				ctx.VEXTRACTF64X4(operand.U8(1), v, h)
				y = v.(interface{ AsY() reg.Register }).AsY().(reg.VecVirtual)
				ctx.VADDPS(h, y, y)
			} else {
				y = v
			}
			hx := ctx.XMM()
			if s.vw == 16 {
				ctx.VEXTRACTF32X4(operand.U8(1), y, hx) // EVEX: y may be Y16-Y31
			} else {
				ctx.VEXTRACTF128(operand.U8(1), y, hx)
			}
			x := y.(interface{ AsX() reg.Register }).AsX().(reg.VecVirtual)
			ctx.VADDPS(hx, x, x)
			ctx.VMOVHLPS(x, x, hx)
			ctx.VADDPS(hx, x, x)
			ctx.VMOVSHDUP(x, hx)
			ctx.VADDSS(hx, x, x)
			ctx.VMOVSS(x, operand.Mem{Base: tp, Disp: (i*c + j) * 4})
		}
	}
	ctx.VZEROUPPER()
	ctx.RET()
}

// genKernPack emits the depthwise packing kernels: row copies (stride 1)
// and row de-interleaves (stride 2) into the padded scratch plane, whole
// vectors with masked ends, so that narrow rows cost a few instructions.
func genKernPack(ctx *build.Context) {
	for _, s := range []isa{avx2, avx512} {
		kernPack(ctx, s, 1)
		kernPack(ctx, s, 2)
	}
	genKernUnpack(ctx)
}

// kernPack emits dwPackS<st><ISA> (see dwPackGo). tab points at the lane
// table dwPackTab: lanes 0..15, then the even and the odd lanes 0..30 and
// 1..31, then the interleaves 0,16,1,17,..,7,23 and 8,24,..,15,31. AVX-512 masks come from counts in K registers; AVX2 masks are
// lane < count comparisons against the table.
func kernPack(ctx *build.Context, s isa, st int) {
	name := fmt.Sprintf("dwPackS%d%s", st, s.name)
	ctx.Function(name)
	ctx.Attributes(attr.NOSPLIT)
	ctx.SignatureExpr("func(d0, d1 *float32, ldd int, src *float32, lds, rows, wd int, tab *int32)")
	ctx.Doc(fmt.Sprintf("%s is dwPackGo with s = %d.", name, st))
	ctx.Pragma("noescape")
	lbl := func(l string) string { return name + "_" + l }
	vb := s.vw * 4
	chunk := s.vw * st // input floats per step

	rows := ctx.GP64()
	ctx.Load(ctx.Param("rows"), rows)
	ctx.TESTQ(rows, rows)
	ctx.JZ(operand.LabelRef(lbl("end")))
	tab := ctx.GP64()
	ctx.Load(ctx.Param("tab"), tab)
	var lanes, idxE, idxO reg.VecVirtual
	if s.mask {
		if st == 2 {
			idxE, idxO = s.vec(ctx), s.vec(ctx)
			ctx.VMOVDQU32(operand.Mem{Base: tab, Disp: 64}, idxE)
			ctx.VMOVDQU32(operand.Mem{Base: tab, Disp: 128}, idxO)
		}
	} else {
		lanes = s.vec(ctx)
		ctx.VMOVDQU(operand.Mem{Base: tab}, lanes)
	}
	ldd, lds, src, d0, d1, wd := ctx.GP64(), ctx.GP64(), ctx.GP64(), ctx.GP64(), ctx.GP64(), ctx.GP64()
	ctx.Load(ctx.Param("ldd"), ldd)
	ctx.SHLQ(imm(2), ldd)
	ctx.Load(ctx.Param("lds"), lds)
	ctx.SHLQ(imm(2), lds)
	ctx.Load(ctx.Param("src"), src)
	ctx.Load(ctx.Param("d0"), d0)
	ctx.Load(ctx.Param("d1"), d1)
	ctx.Load(ctx.Param("wd"), wd)

	// clamp sets dst = min(max(n, 0), s.vw).
	clamp := func(n, dst reg.GPVirtual) {
		lim := ctx.GP64()
		ctx.MOVQ(n, dst)
		ctx.XORQ(lim, lim)
		ctx.CMPQ(dst, lim)
		ctx.CMOVQLT(lim, dst)
		ctx.MOVQ(operand.U32(s.vw), lim)
		ctx.CMPQ(dst, lim)
		ctx.CMOVQGT(lim, dst)
	}
	// maskOf returns the mask of the low n lanes (0 <= n <= vw): a K
	// register on AVX-512, a vector on AVX2.
	type mask struct {
		k reg.Register
		v reg.VecVirtual
	}
	maskOf := func(n reg.GPVirtual, k reg.Register) mask {
		if s.mask {
			one := ctx.GP64()
			ctx.MOVQ(operand.U32(1), one)
			ctx.SHLXQ(n, one, one)
			ctx.DECQ(one)
			ctx.KMOVW(one.As32(), k)
			return mask{k: k}
		}
		x, v := ctx.XMM(), s.vec(ctx)
		ctx.VMOVQ(n, x)
		ctx.VPBROADCASTD(x, v)
		ctx.VPCMPGTD(lanes, v, v) // n > lane
		return mask{v: v}
	}
	loadM := func(m operand.Mem, mk mask, dst reg.VecVirtual) {
		if s.mask {
			ctx.VMOVUPS_Z(m, mk.k, dst)
		} else {
			ctx.VMASKMOVPS(m, mk.v, dst)
		}
	}
	storeM := func(v reg.VecVirtual, mk mask, m operand.Mem) {
		if s.mask {
			ctx.VMOVUPS(v, mk.k, m)
		} else {
			ctx.VMASKMOVPS(v, mk.v, m)
		}
	}

	ctx.Label(lbl("row"))
	rem, sp, p0, p1 := ctx.GP64(), ctx.GP64(), ctx.GP64(), ctx.GP64()
	ctx.MOVQ(wd, rem)
	ctx.MOVQ(src, sp)
	ctx.MOVQ(d0, p0)
	ctx.MOVQ(d1, p1)
	ctx.Label(lbl("chunk"))
	n := ctx.GP64()
	if st == 1 {
		clamp(rem, n)
		mk := maskOf(n, reg.K1)
		v := s.vec(ctx)
		loadM(operand.Mem{Base: sp}, mk, v)
		storeM(v, mk, operand.Mem{Base: p0})
	} else {
		// Inputs: lanes 0..vw-1 from sp, vw..2vw-1 from sp+vb.
		a, b := s.vec(ctx), s.vec(ctx)
		clamp(rem, n)
		ma := maskOf(n, reg.K1)
		loadM(operand.Mem{Base: sp}, ma, a)
		n2 := ctx.GP64()
		ctx.LEAQ(operand.Mem{Base: rem, Disp: -s.vw}, n2)
		clamp(n2, n)
		mb := maskOf(n, reg.K2)
		loadM(operand.Mem{Base: sp, Disp: vb}, mb, b)
		e, o := s.vec(ctx), s.vec(ctx)
		if s.mask {
			ctx.VMOVAPS(idxE, e)
			ctx.VPERMI2PS(b, a, e)
			ctx.VMOVAPS(idxO, o)
			ctx.VPERMI2PS(b, a, o)
		} else {
			ctx.VSHUFPS(operand.U8(0x88), b, a, e)
			ctx.VPERMPD(operand.U8(0xd8), e, e)
			ctx.VSHUFPS(operand.U8(0xdd), b, a, o)
			ctx.VPERMPD(operand.U8(0xd8), o, o)
		}
		// ceil(rem/2) evens, floor(rem/2) odds, at most vw each.
		ne := ctx.GP64()
		ctx.LEAQ(operand.Mem{Base: rem, Disp: 1}, ne)
		ctx.SHRQ(imm(1), ne)
		clamp(ne, n)
		me := maskOf(n, reg.K1)
		storeM(e, me, operand.Mem{Base: p0})
		ctx.MOVQ(rem, ne)
		ctx.SHRQ(imm(1), ne)
		clamp(ne, n)
		mo := maskOf(n, reg.K2)
		storeM(o, mo, operand.Mem{Base: p1})
		ctx.ADDQ(imm(vb), p1)
	}
	ctx.ADDQ(imm(chunk*4), sp)
	ctx.ADDQ(imm(vb), p0)
	ctx.SUBQ(imm(chunk), rem)
	ctx.JG(operand.LabelRef(lbl("chunk")))

	ctx.ADDQ(ldd, d0)
	ctx.ADDQ(ldd, d1)
	ctx.ADDQ(lds, src)
	ctx.DECQ(rows)
	ctx.JNZ(operand.LabelRef(lbl("row")))
	ctx.Label(lbl("end"))
	ctx.VZEROUPPER()
	ctx.RET()
}

// genKernUnpack emits dwUnpackS2<ISA> (see dwUnpackGo): the inverse of
// the stride-2 de-interleave, merging an even and an odd row into one.
func genKernUnpack(ctx *build.Context) {
	for _, s := range []isa{avx2, avx512} {
		name := "dwUnpackS2" + s.name
		ctx.Function(name)
		ctx.Attributes(attr.NOSPLIT)
		ctx.SignatureExpr("func(dst *float32, ldd int, e, o *float32, lds, rows, wd int, tab *int32)")
		ctx.Doc(name + " is dwUnpackGo.")
		ctx.Pragma("noescape")
		lbl := func(l string) string { return name + "_" + l }
		vb := s.vw * 4
		rows := ctx.GP64()
		ctx.Load(ctx.Param("rows"), rows)
		ctx.TESTQ(rows, rows)
		ctx.JZ(operand.LabelRef(lbl("end")))
		tab := ctx.GP64()
		ctx.Load(ctx.Param("tab"), tab)
		var lanes, idxLo, idxHi reg.VecVirtual
		if s.mask {
			idxLo, idxHi = s.vec(ctx), s.vec(ctx)
			ctx.VMOVDQU32(operand.Mem{Base: tab, Disp: 192}, idxLo)
			ctx.VMOVDQU32(operand.Mem{Base: tab, Disp: 256}, idxHi)
		} else {
			lanes = s.vec(ctx)
			ctx.VMOVDQU(operand.Mem{Base: tab}, lanes)
		}
		ldd, lds, dst, ep, op, wd := ctx.GP64(), ctx.GP64(), ctx.GP64(), ctx.GP64(), ctx.GP64(), ctx.GP64()
		ctx.Load(ctx.Param("ldd"), ldd)
		ctx.SHLQ(imm(2), ldd)
		ctx.Load(ctx.Param("lds"), lds)
		ctx.SHLQ(imm(2), lds)
		ctx.Load(ctx.Param("dst"), dst)
		ctx.Load(ctx.Param("e"), ep)
		ctx.Load(ctx.Param("o"), op)
		ctx.Load(ctx.Param("wd"), wd)
		clamp := func(n, out reg.GPVirtual) {
			lim := ctx.GP64()
			ctx.MOVQ(n, out)
			ctx.XORQ(lim, lim)
			ctx.CMPQ(out, lim)
			ctx.CMOVQLT(lim, out)
			ctx.MOVQ(operand.U32(s.vw), lim)
			ctx.CMPQ(out, lim)
			ctx.CMOVQGT(lim, out)
		}
		type mask struct {
			k reg.Register
			v reg.VecVirtual
		}
		maskOf := func(n reg.GPVirtual, k reg.Register) mask {
			if s.mask {
				one := ctx.GP64()
				ctx.MOVQ(operand.U32(1), one)
				ctx.SHLXQ(n, one, one)
				ctx.DECQ(one)
				ctx.KMOVW(one.As32(), k)
				return mask{k: k}
			}
			x, v := ctx.XMM(), s.vec(ctx)
			ctx.VMOVQ(n, x)
			ctx.VPBROADCASTD(x, v)
			ctx.VPCMPGTD(lanes, v, v)
			return mask{v: v}
		}
		loadM := func(m operand.Mem, mk mask, v reg.VecVirtual) {
			if s.mask {
				ctx.VMOVUPS_Z(m, mk.k, v)
			} else {
				ctx.VMASKMOVPS(m, mk.v, v)
			}
		}
		storeM := func(v reg.VecVirtual, mk mask, m operand.Mem) {
			if s.mask {
				ctx.VMOVUPS(v, mk.k, m)
			} else {
				ctx.VMASKMOVPS(v, mk.v, m)
			}
		}
		ctx.Label(lbl("row"))
		rem, dp, e0, o0 := ctx.GP64(), ctx.GP64(), ctx.GP64(), ctx.GP64()
		ctx.MOVQ(wd, rem)
		ctx.MOVQ(dst, dp)
		ctx.MOVQ(ep, e0)
		ctx.MOVQ(op, o0)
		ctx.Label(lbl("chunk"))
		n, t := ctx.GP64(), ctx.GP64()
		ev, ov := s.vec(ctx), s.vec(ctx)
		ctx.LEAQ(operand.Mem{Base: rem, Disp: 1}, t)
		ctx.SHRQ(imm(1), t)
		clamp(t, n)
		loadM(operand.Mem{Base: e0}, maskOf(n, reg.K1), ev)
		ctx.MOVQ(rem, t)
		ctx.SHRQ(imm(1), t)
		clamp(t, n)
		loadM(operand.Mem{Base: o0}, maskOf(n, reg.K2), ov)
		lo, hi := s.vec(ctx), s.vec(ctx)
		if s.mask {
			ctx.VMOVAPS(idxLo, lo)
			ctx.VPERMI2PS(ov, ev, lo)
			ctx.VMOVAPS(idxHi, hi)
			ctx.VPERMI2PS(ov, ev, hi)
		} else {
			ul, uh := s.vec(ctx), s.vec(ctx)
			ctx.VUNPCKLPS(ov, ev, ul) // e0 o0 e1 o1 | e4 o4 e5 o5
			ctx.VUNPCKHPS(ov, ev, uh) // e2 o2 e3 o3 | e6 o6 e7 o7
			ctx.VPERM2F128(operand.U8(0x20), uh, ul, lo)
			ctx.VPERM2F128(operand.U8(0x31), uh, ul, hi)
		}
		clamp(rem, n)
		storeM(lo, maskOf(n, reg.K1), operand.Mem{Base: dp})
		ctx.LEAQ(operand.Mem{Base: rem, Disp: -s.vw}, t)
		clamp(t, n)
		storeM(hi, maskOf(n, reg.K2), operand.Mem{Base: dp, Disp: vb})
		ctx.ADDQ(imm(2*vb), dp)
		ctx.ADDQ(imm(vb), e0)
		ctx.ADDQ(imm(vb), o0)
		ctx.SUBQ(imm(2*s.vw), rem)
		ctx.JG(operand.LabelRef(lbl("chunk")))
		ctx.ADDQ(ldd, dst)
		ctx.ADDQ(lds, ep)
		ctx.ADDQ(lds, op)
		ctx.DECQ(rows)
		ctx.JNZ(operand.LabelRef(lbl("row")))
		ctx.Label(lbl("end"))
		ctx.VZEROUPPER()
		ctx.RET()
	}
}
