package gpu

import "fmt"

// Act is an activation fused into a kernel's epilogue.
type Act uint8

const (
	ActNone Act = iota
	ActReLU
	ActReLU6
)

// Expression helpers.
func add(a, b Expr) Expr { return Bin{Add, a, b} }
func mul(a, b Expr) Expr { return Bin{Mul, a, b} }
func div(a, b Expr) Expr { return Bin{Div, a, b} }
func rem(a, b Expr) Expr { return Bin{Rem, a, b} }
func lt(a, b Expr) Expr  { return Bin{Lt, a, b} }
func ge(a, b Expr) Expr  { return Bin{Ge, a, b} }
func and(a, b Expr) Expr { return Bin{And, a, b} }

// Block sizes.
const (
	elemThreads = 256 // one output element a thread
	tile        = 16  // GEMM tile: tile x tile outputs a block of tile*tile threads
)

func activate(v Expr, a Act) Expr {
	switch a {
	case ActReLU:
		return Bin{Max, v, Float(0)}
	case ActReLU6:
		return Bin{Min, Bin{Max, v, Float(0)}, Float(6)}
	}
	return v
}

// elementwise builds a kernel with one thread per element of n*per
// outputs: body gets the register holding the element index (within the
// n*per) and returns the statements computing it. The int parameter 0 is
// the batch size n.
func elementwise(name string, per int, ptrs []string, body func(k *Kernel, idx *Var) []Stmt) *Kernel {
	k := &Kernel{Name: name, Threads: elemThreads, Ptrs: ptrs, Ints: []string{"n"}}
	idx := k.Var("idx", I32)
	k.Body = []Stmt{
		Set{idx, add(mul(Sreg{BidX}, Int(elemThreads)), Sreg{TidX})},
		If{lt(idx, mul(Param{0}, Int(int32(per)))), body(k, idx)},
	}
	return k
}

// ConvSpec is a convolution on NCHW tensors: out[n, co, oy, ox] =
// act(sum w[co, ci', ky, kx] * in[n, g*Cin/G+ci', oy*S+ky-PT, ox*S+kx-PL] +
// bias[co] + res[n, co, oy, ox]), weights in OIHW layout.
type ConvSpec struct {
	Cin, H, W, Cout, OH, OW int
	KH, KW, SH, SW, PT, PL  int
	Groups                  int
	Bias, Residual          bool
	Act                     Act
}

// Pointwise reports whether the convolution is a 1x1, stride 1, unpadded,
// ungrouped one: a GEMM per sample.
func (s ConvSpec) Pointwise() bool {
	return s.KH == 1 && s.KW == 1 && s.SH == 1 && s.SW == 1 && s.PT == 0 && s.PL == 0 && s.Groups == 1 && s.OH == s.H && s.OW == s.W
}

// Depthwise reports whether every output channel reads one input channel.
func (s ConvSpec) Depthwise() bool { return s.Groups == s.Cin && s.Cout == s.Cin }

func (s ConvSpec) ptrs() []string {
	p := []string{"out", "in", "w"}
	if s.Bias {
		p = append(p, "bias")
	}
	if s.Residual {
		p = append(p, "res")
	}
	return p
}

// epilogue adds bias and residual to acc, activates and stores out[at].
func (s ConvSpec) epilogue(acc Expr, co, at Expr) []Stmt {
	v := acc
	p := 3
	if s.Bias {
		v = Bin{Add, v, Load{p, co, true}}
		p++
	}
	if s.Residual {
		v = Bin{Add, v, Load{p, at, false}}
	}
	return []Stmt{Store{0, at, activate(v, s.Act)}}
}

// Conv builds the kernel of a convolution: a tiled GEMM with shared memory
// for pointwise ones (register-tiled 64x64 blocks when the layer has at
// least bigTileMin output channels, 16x16 blocks otherwise), a direct
// convolution (one output a thread, loops of constant trip count over the
// window) otherwise. ConvGrid is its launch shape.
func Conv(name string, s ConvSpec) *Kernel {
	switch {
	case s.Pointwise() && s.Cout >= bigTileMin:
		return pointwise64(name, s)
	case s.Pointwise():
		return pointwise(name, s)
	}
	return direct(name, s)
}

// The register-tiled GEMM: a block of 256 threads computes a big x big
// output tile (output channels x pixel columns), each thread a sub x sub
// patch held in registers, staging bigK-deep slices of both operands in
// shared memory.
const (
	big        = 64
	bigK       = 16
	sub        = 4
	bigTileMin = 48
)

// pointwise64 is the GEMM of pointwise with register tiling: per bigK
// slice every thread loads 4 weights and 4 inputs into shared memory
// (coalesced: the weights along the input channels, the inputs along the
// pixels), then accumulates its 4x4 patch from 4+4 shared loads a step.
func pointwise64(name string, s ConvSpec) *Kernel {
	hw := s.H * s.W
	c := func(v int) Expr { return Int(int32(v)) }
	const threads = (big / sub) * (big / sub)
	k := &Kernel{Name: name, Threads: threads, Ptrs: s.ptrs(), Ints: []string{"n"}, Shared: []int{bigK * big, bigK * big}}
	tx, ty, m0, n0, k0, kk := k.Var("tx", I32), k.Var("ty", I32), k.Var("m0", I32), k.Var("n0", I32), k.Var("k0", I32), k.Var("kk", I32)
	e, lm, lk, col := k.Var("e", I32), k.Var("lm", I32), k.Var("lk", I32), k.Var("col", I32)
	var acc [sub][sub]*Var
	var a, b [sub]*Var
	for i := 0; i < sub; i++ {
		a[i], b[i] = k.Var(fmt.Sprintf("a%d", i), F32), k.Var(fmt.Sprintf("b%d", i), F32)
		for j := 0; j < sub; j++ {
			acc[i][j] = k.Var(fmt.Sprintf("acc%d%d", i, j), F32)
		}
	}
	cols := mul(Param{0}, c(hw))
	body := []Stmt{
		Set{tx, rem(Sreg{TidX}, c(big/sub))},
		Set{ty, div(Sreg{TidX}, c(big/sub))},
		Set{m0, mul(Sreg{BidY}, c(big))},
		Set{n0, mul(Sreg{BidX}, c(big))},
	}
	for i := 0; i < sub; i++ {
		for j := 0; j < sub; j++ {
			body = append(body, Set{acc[i][j], Float(0)})
		}
	}
	var slice []Stmt
	for r := 0; r < bigK*big/threads; r++ {
		// weights: element e = tid + r*threads of the big x bigK tile,
		// row lm = e / bigK, channel lk = e % bigK; stored As[lk][lm]
		inW := and(lt(add(m0, lm), c(s.Cout)), lt(add(k0, lk), c(s.Cin)))
		slice = append(slice,
			Set{e, add(Sreg{TidX}, c(r*threads))},
			Set{lm, div(e, c(bigK))},
			Set{lk, rem(e, c(bigK))},
			StoreShared{0, add(mul(lk, c(big)), lm), Sel{inW,
				Load{2, Sel{inW, add(mul(add(m0, lm), c(s.Cin)), add(k0, lk)), c(0)}, true}, Float(0)}},
		)
		// inputs: element e of the bigK x big tile, channel lk = e / big,
		// column lm = e % big; stored Bs[lk][lm]
		inB := and(lt(col, cols), lt(add(k0, lk), c(s.Cin)))
		bAt := add(mul(add(mul(div(col, c(hw)), c(s.Cin)), add(k0, lk)), c(hw)), rem(col, c(hw)))
		slice = append(slice,
			Set{lk, div(e, c(big))},
			Set{lm, rem(e, c(big))},
			Set{col, add(n0, lm)},
			StoreShared{1, add(mul(lk, c(big)), lm), Sel{inB, Load{1, Sel{inB, bAt, c(0)}, false}, Float(0)}},
		)
	}
	slice = append(slice, Barrier{})
	var step []Stmt
	for i := 0; i < sub; i++ {
		step = append(step,
			Set{a[i], LoadShared{0, add(mul(kk, c(big)), add(mul(ty, c(sub)), c(i)))}},
			Set{b[i], LoadShared{1, add(mul(kk, c(big)), add(mul(tx, c(sub)), c(i)))}})
	}
	for i := 0; i < sub; i++ {
		for j := 0; j < sub; j++ {
			step = append(step, Set{acc[i][j], FMA{a[i], b[j], acc[i][j]}})
		}
	}
	slice = append(slice, For{kk, c(0), c(bigK), 1, step}, Barrier{})
	body = append(body, For{k0, c(0), c(s.Cin), bigK, slice})
	row := k.Var("row", I32)
	for i := 0; i < sub; i++ {
		body = append(body, Set{row, add(add(m0, mul(ty, c(sub))), c(i))})
		for j := 0; j < sub; j++ {
			outAt := add(mul(add(mul(div(col, c(hw)), c(s.Cout)), row), c(hw)), rem(col, c(hw)))
			body = append(body,
				Set{col, add(add(n0, mul(tx, c(sub))), c(j))},
				If{and(lt(col, cols), lt(row, c(s.Cout))), s.epilogue(acc[i][j], row, outAt)})
		}
	}
	k.Body = body
	return k
}

func direct(name string, s ConvSpec) *Kernel {
	per := s.Cout * s.OH * s.OW
	inPG, outPG := s.Cin/s.Groups, s.Cout/s.Groups
	return elementwise(name, per, s.ptrs(), func(k *Kernel, idx *Var) []Stmt {
		n, co, oy, ox := k.Var("n", I32), k.Var("co", I32), k.Var("oy", I32), k.Var("ox", I32)
		ci, ky, kx, iy, ix := k.Var("ci", I32), k.Var("ky", I32), k.Var("kx", I32), k.Var("iy", I32), k.Var("ix", I32)
		acc := k.Var("acc", F32)
		c := func(v int) Expr { return Int(int32(v)) }
		inside := and(and(ge(iy, c(0)), lt(iy, c(s.H))), and(ge(ix, c(0)), lt(ix, c(s.W))))
		// input channel of the group: co / outPG * inPG + ci
		ich := add(mul(div(co, c(outPG)), c(inPG)), ci)
		inAt := add(mul(add(mul(add(mul(n, c(s.Cin)), ich), c(s.H)), iy), c(s.W)), ix)
		wAt := add(mul(add(mul(add(mul(co, c(inPG)), ci), c(s.KH)), ky), c(s.KW)), kx)
		body := []Stmt{
			Set{n, div(idx, c(per))},
			Set{co, rem(div(idx, c(s.OH*s.OW)), c(s.Cout))},
			Set{oy, rem(div(idx, c(s.OW)), c(s.OH))},
			Set{ox, rem(idx, c(s.OW))},
			Set{acc, Float(0)},
			For{ci, c(0), c(inPG), 1, []Stmt{
				For{ky, c(0), c(s.KH), 1, []Stmt{
					Set{iy, add(add(mul(oy, c(s.SH)), ky), c(-s.PT))},
					For{kx, c(0), c(s.KW), 1, []Stmt{
						Set{ix, add(add(mul(ox, c(s.SW)), kx), c(-s.PL))},
						If{inside, []Stmt{Set{acc, FMA{Load{2, wAt, true}, Load{1, inAt, false}, acc}}}},
					}},
				}},
			}},
		}
		return append(body, s.epilogue(acc, co, idx)...)
	})
}

// pointwise is out[n, co, p] = sum_ci w[co, ci] in[n, ci, p]: with the
// pixels of every sample as the columns P = n*HW + p, a (Cout x Cin) x
// (Cin x N*HW) GEMM. A block of tile x tile threads computes a tile x tile
// output tile, staging tile-wide slices of both operands in shared memory.
func pointwise(name string, s ConvSpec) *Kernel {
	hw := s.H * s.W
	c := func(v int) Expr { return Int(int32(v)) }
	k := &Kernel{Name: name, Threads: tile * tile, Ptrs: s.ptrs(), Ints: []string{"n"}, Shared: []int{tile * tile, tile * tile}}
	tx, ty, col, row, k0, kk, acc := k.Var("tx", I32), k.Var("ty", I32), k.Var("col", I32), k.Var("row", I32), k.Var("k0", I32), k.Var("kk", I32), k.Var("acc", F32)
	lcol, lrow := k.Var("lcol", I32), k.Var("lrow", I32)
	cols := mul(Param{0}, c(hw))
	// B (input) tile element (ty, tx): channel k0+ty of column col.
	bAt := add(mul(add(mul(div(col, c(hw)), c(s.Cin)), add(k0, ty)), c(hw)), rem(col, c(hw)))
	outAt := add(mul(add(mul(div(col, c(hw)), c(s.Cout)), row), c(hw)), rem(col, c(hw)))
	k.Body = []Stmt{
		Set{tx, rem(Sreg{TidX}, c(tile))},
		Set{ty, div(Sreg{TidX}, c(tile))},
		Set{col, add(mul(Sreg{BidX}, c(tile)), tx)},
		Set{row, add(mul(Sreg{BidY}, c(tile)), ty)},
		// Thread (ty, tx) stages A[ty][tx] = w[row0+tx, k0+ty] (the
		// weights tile transposed, read through the read-only cache) and
		// B[ty][tx] = in[channel k0+ty, column col] (coalesced along tx).
		Set{lrow, add(mul(Sreg{BidY}, c(tile)), tx)},
		Set{lcol, Int(0)},
		Set{acc, Float(0)},
		For{k0, c(0), c(s.Cin), tile, []Stmt{
			Set{lcol, add(k0, ty)},
			StoreShared{0, add(mul(ty, c(tile)), tx), Sel{and(lt(lrow, c(s.Cout)), lt(lcol, c(s.Cin))),
				Load{2, add(mul(Sel{lt(lrow, c(s.Cout)), lrow, c(0)}, c(s.Cin)), Sel{lt(lcol, c(s.Cin)), lcol, c(0)}), true}, Float(0)}},
			StoreShared{1, add(mul(ty, c(tile)), tx), Sel{and(lt(col, cols), lt(lcol, c(s.Cin))),
				Load{1, Sel{and(lt(col, cols), lt(lcol, c(s.Cin))), bAt, c(0)}, false}, Float(0)}},
			Barrier{},
			For{kk, c(0), c(tile), 1, []Stmt{
				// A[kk][ty] holds w[row, k0+kk]; B[kk][tx] holds in[k0+kk, col].
				Set{acc, FMA{LoadShared{0, add(mul(kk, c(tile)), ty)}, LoadShared{1, add(mul(kk, c(tile)), tx)}, acc}},
			}},
			Barrier{},
		}},
		If{and(lt(col, cols), lt(row, c(s.Cout))), s.epilogue(acc, row, outAt)},
	}
	return k
}

// Grid is a launch shape for batch n: X blocks = ceil(n*XPer/XDiv), Y
// blocks.
type Grid struct{ XPer, XDiv, Y int }

// Blocks returns the grid for batch n.
func (g Grid) Blocks(n int) (x, y int) { return (n*g.XPer + g.XDiv - 1) / g.XDiv, g.Y }

// ConvGrid is the launch shape of Conv(s).
func ConvGrid(s ConvSpec) Grid {
	switch {
	case s.Pointwise() && s.Cout >= bigTileMin:
		return Grid{s.H * s.W, big, (s.Cout + big - 1) / big}
	case s.Pointwise():
		return Grid{s.H * s.W, tile, (s.Cout + tile - 1) / tile}
	}
	return Grid{s.Cout * s.OH * s.OW, elemThreads, 1}
}

// ElemGrid is the launch shape of a kernel with per outputs a sample, one
// a thread.
func ElemGrid(per int) Grid { return Grid{per, elemThreads, 1} }

// Pool is the global average pool of C x HW maps: out[n, c].
func Pool(name string, c, hw int) *Kernel {
	return elementwise(name, c, []string{"out", "in"}, func(k *Kernel, idx *Var) []Stmt {
		i, acc := k.Var("i", I32), k.Var("acc", F32)
		return []Stmt{
			Set{acc, Float(0)},
			For{i, Int(0), Int(int32(hw)), 1, []Stmt{Set{acc, Bin{Add, acc, Load{1, add(mul(idx, Int(int32(hw))), i), false}}}}},
			Store{0, idx, Bin{Mul, acc, Float(float32(1) / float32(hw))}},
		}
	})
}

// Linear is out[n, u] = act(sum_f w[u, f] in[n, f] + bias[u]).
func Linear(name string, features, units int, bias bool, a Act) *Kernel {
	ptrs := []string{"out", "in", "w"}
	if bias {
		ptrs = append(ptrs, "bias")
	}
	return elementwise(name, units, ptrs, func(k *Kernel, idx *Var) []Stmt {
		n, u, f, acc := k.Var("n", I32), k.Var("u", I32), k.Var("f", I32), k.Var("acc", F32)
		F := Int(int32(features))
		var v Expr = acc
		if bias {
			v = Bin{Add, acc, Load{3, u, true}}
		}
		return []Stmt{
			Set{n, div(idx, Int(int32(units)))},
			Set{u, rem(idx, Int(int32(units)))},
			Set{acc, Float(0)},
			For{f, Int(0), F, 1, []Stmt{Set{acc, FMA{Load{2, add(mul(u, F), f), true}, Load{1, add(mul(n, F), f), false}, acc}}}},
			Store{0, idx, activate(v, a)},
		}
	})
}

// ScaleBias is out[n, c, i] = act(in[n, c, i]*scale[c] + bias[c]) on C x
// per maps (a batchnorm).
func ScaleBias(name string, c, per int, a Act) *Kernel {
	return elementwise(name, c*per, []string{"out", "in", "scale", "bias"}, func(k *Kernel, idx *Var) []Stmt {
		ch := k.Var("c", I32)
		return []Stmt{
			Set{ch, rem(div(idx, Int(int32(per))), Int(int32(c)))},
			Store{0, idx, activate(FMA{Load{1, idx, false}, Load{2, ch, true}, Load{3, ch, true}}, a)},
		}
	})
}

// AddAct is out = act(a + b) over per floats a sample.
func AddAct(name string, per int, a Act) *Kernel {
	return elementwise(name, per, []string{"out", "a", "b"}, func(k *Kernel, idx *Var) []Stmt {
		return []Stmt{Store{0, idx, activate(Bin{Add, Load{1, idx, false}, Load{2, idx, false}}, a)}}
	})
}

// Activate is out = act(in) over per floats a sample.
func Activate(name string, per int, a Act) *Kernel {
	return elementwise(name, per, []string{"out", "in"}, func(k *Kernel, idx *Var) []Stmt {
		return []Stmt{Store{0, idx, activate(Load{1, idx, false}, a)}}
	})
}

// Softmax is out[n, :] = softmax(in[n, :]) over f values, one thread a
// sample: exp(x) as 2^(x*log2(e)), as the device computes it.
func Softmax(name string, f int) *Kernel {
	return elementwise(name, 1, []string{"out", "in"}, func(k *Kernel, n *Var) []Stmt {
		i, hi, sum := k.Var("i", I32), k.Var("hi", F32), k.Var("sum", F32)
		at := add(mul(n, Int(int32(f))), i)
		const log2e = 1.4426950408889634
		e := Exp2{Bin{Mul, Bin{Sub, Load{1, at, false}, hi}, Float(log2e)}}
		return []Stmt{
			Set{hi, Load{1, mul(n, Int(int32(f))), false}},
			For{i, Int(1), Int(int32(f)), 1, []Stmt{Set{hi, Bin{Max, hi, Load{1, at, false}}}}},
			Set{sum, Float(0)},
			For{i, Int(0), Int(int32(f)), 1, []Stmt{Set{sum, Bin{Add, sum, e}}}},
			Set{sum, Rcp{sum}},
			For{i, Int(0), Int(int32(f)), 1, []Stmt{Store{0, at, Bin{Mul, e, sum}}}},
		}
	})
}
