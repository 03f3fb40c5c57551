package runtime

import (
	"unsafe"
)

// This file is the GEMM family's driver: C = act(A·B + bias + R) over
// micro-tiles, shared by pointwise, dense (linear) and dense kxk
// convolutions. B is always packed into 16-column panels (see PackGEMM).

// panelW is the width of a packed B panel in columns.
const panelW = 16

// tileFunc computes ntiles consecutive tiles of a fixed number of rows
// (mr, part of the function's identity) and up to nr columns. All strides
// are in floats. See gemmTileGo for the exact semantics.
type tileFunc func(a *float32, lda, kseg, nseg, segStride int, b *float32, bstride int,
	c *float32, ldc int, bias, res *float32, ldr, ntiles, ncols, act int)

// wrapFunc computes ntiles full tiles (mr rows) whose C and R rows run in
// groups of rpg rows with a gap between groups; see gemmWrapGo.
type wrapFunc func(a *float32, lda, kseg, nseg, segStride int, b *float32, bstride int,
	c *float32, ldc int, bias, res *float32, ldr, ntiles, ncols, act, rpg, left, cskip, rskip int)

// gemmImpl is one level's set of GEMM micro-kernels.
type gemmImpl struct {
	mr    int          // rows of a full tile
	vw    int          // floats per vector; tiles are nv*vw columns wide
	maxNV int          // vectors per full-width tile
	tiles [][]tileFunc // tiles[nv-1][mr-1]
	wrap  []wrapFunc   // wrap[nv-1]: full tiles across row groups; nil: none
	// prefetchNext: the kernels prefetch the next call's B panels over a
	// call's tiles (the amd64 kernels), so calls of many tiles pay.
	prefetchNext bool
	// tail, when set, computes the last 24 columns of a GEMM whose width
	// is 8 past a multiple of 16 (24, 40, 72, 120 channels), in tiles of
	// tail.mr rows by 24 columns (tail.tiles[2], tail.wrap[2]), instead of
	// a last group of one (AVX2) or two (AVX-512) full vectors; the groups
	// before it are nr columns wide, the last of them perhaps narrower.
	tail *gemmImpl
}

// tailCols is the width of the tail column group.
const tailCols = 24

// nr is the width of a full tile in columns.
func (g *gemmImpl) nr() int { return g.vw * g.maxNV }

var gemmImpls [numLevels]*gemmImpl

func init() {
	const mr = 4
	g := &gemmImpl{mr: mr, vw: panelW, maxNV: 1, tiles: [][]tileFunc{make([]tileFunc, mr)}}
	for r := 1; r <= mr; r++ {
		g.tiles[0][r-1] = func(a *float32, lda, kseg, nseg, segStride int, b *float32, bstride int,
			c *float32, ldc int, bias, res *float32, ldr, ntiles, ncols, act int) {
			gemmTileGo(r, a, lda, kseg, nseg, segStride, b, bstride, c, ldc, bias, res, ldr, ntiles, ncols, act)
		}
	}
	g.wrap = []wrapFunc{func(a *float32, lda, kseg, nseg, segStride int, b *float32, bstride int,
		c *float32, ldc int, bias, res *float32, ldr, ntiles, ncols, act, rpg, left, cskip, rskip int) {
		gemmWrapGo(mr, a, lda, kseg, nseg, segStride, b, bstride, c, ldc, bias, res, ldr, ntiles, ncols, act, rpg, left, cskip, rskip)
	}}
	t := &gemmImpl{mr: mr, vw: 8, maxNV: 3, tiles: [][]tileFunc{nil, nil, make([]tileFunc, mr)}}
	for r := 1; r <= mr; r++ {
		t.tiles[2][r-1] = g.tiles[0][r-1]
	}
	t.wrap = []wrapFunc{nil, nil, g.wrap[0]}
	g.tail = t
	gemmImpls[levelGo] = g
}

// gemmFor returns the GEMM kernels of the highest level <= l.
func gemmFor(l int) *gemmImpl {
	for ; l > 0; l-- {
		if gemmImpls[l] != nil {
			return gemmImpls[l]
		}
	}
	return gemmImpls[levelGo]
}

// gemmForShape returns the kernels a GEMM of depth k and n columns runs
// with im, the kernels of the active level: im itself, but the AVX2
// kernels for GEMMs of depth at most 32 or at most 24 columns in an
// AVX-512 program on a CPU whose AVX-512 units have the AVX2 rate
// (halfWidth512). The AVX-512 tiles of 14x32 gain nothing there, and they
// ran such layers 3-10% slower than the AVX2 tiles of 6x16 on a Zen 4
// (56x56, 144 to 24 channels: 99.6 against 110.8 GFLOP/s; 28x28, 32 to
// 192: 104.7 against 111.8); MobileNetV2's first blocks and 28x28
// expansions 0.94-0.97x, the network 0.97x (docs/perf.md). With deeper
// GEMMs the two ran alike. Both read the same packed panels.
func gemmForShape(im *gemmImpl, k, n int) *gemmImpl {
	if halfWidth512 && im == gemmImpls[levelAVX512] && (k <= 32 || n <= 24) {
		if a := gemmImpls[levelAVX2]; a != nil {
			return a
		}
	}
	return im
}

// gemmTileGo is the reference for every GEMM micro-kernel. For each of the
// ntiles tiles t, rows r < mr, columns n < ncols, with m = t*mr + r and
// K = kseg*nseg:
//
//	s := float32(0)
//	for g := 0; g < nseg; g++ {
//		for k := 0; k < kseg; k++ {
//			s += A[m*lda+g*segStride+k] * B[(n/16)*bstride+(g*kseg+k)*16+n%16]
//		}
//	}
//	s += bias[n]
//	if res != nil {
//		s += R[m*ldr+n]
//	}
//	C[m*ldc+n] = act(s)
//
// B is a packed matrix of 16-column panels, bstride floats apart, each
// holding K rows of 16 floats. A row of A is nseg segments of kseg
// contiguous floats, segStride apart: one segment per kernel row of a
// convolution, or a single segment for a plain matrix.
func gemmTileGo(mr int, a *float32, lda, kseg, nseg, segStride int, b *float32, bstride int,
	c *float32, ldc int, bias, res *float32, ldr, ntiles, ncols, act int) {
	K := kseg * nseg
	npan := (ncols + panelW - 1) / panelW
	B := unsafe.Slice(b, (npan-1)*bstride+K*panelW)
	bs := unsafe.Slice(bias, ncols)
	ac := Act(act)
	var acc [panelW]float32
	for m := 0; m < ntiles*mr; m++ {
		arow := unsafe.Slice((*float32)(unsafe.Add(unsafe.Pointer(a), 4*m*lda)), (nseg-1)*segStride+kseg)
		crow := unsafe.Slice((*float32)(unsafe.Add(unsafe.Pointer(c), 4*m*ldc)), ncols)
		var rrow []float32
		if res != nil {
			rrow = unsafe.Slice((*float32)(unsafe.Add(unsafe.Pointer(res), 4*m*ldr)), ncols)
		}
		for p := 0; p < npan; p++ {
			acc = [panelW]float32{}
			bp := B[p*bstride:]
			for g := 0; g < nseg; g++ {
				as := arow[g*segStride : g*segStride+kseg]
				bg := bp[g*kseg*panelW:]
				for k, av := range as {
					bk := bg[k*panelW : k*panelW+panelW]
					for j := range acc {
						acc[j] += av * bk[j]
					}
				}
			}
			for j := 0; j < panelW && p*panelW+j < ncols; j++ {
				n := p*panelW + j
				s := acc[j] + bs[n]
				if rrow != nil {
					s += rrow[n]
				}
				crow[n] = ac.apply(s)
			}
		}
	}
}

// gemmWrapGo is the reference for the row-wrapping GEMM micro-kernels: it
// computes what gemmTileGo does for ntiles tiles of mr rows, with rows of
// A evenly spaced (lda) but rows of C and R in groups of rpg rows, the
// first group holding only left rows (1 <= left <= rpg): row m+1 of C is
// ldc floats after row m, plus cskip more when row m is the last row of
// a group; likewise R with ldr and rskip. This is a map with a halo (a
// group per map row) computed from a dense A in tiles that cross rows.
func gemmWrapGo(mr int, a *float32, lda, kseg, nseg, segStride int, b *float32, bstride int,
	c *float32, ldc int, bias, res *float32, ldr, ntiles, ncols, act, rpg, left, cskip, rskip int) {
	co, ro := 0, 0
	for m := 0; m < ntiles*mr; m++ {
		var rp *float32
		if res != nil {
			rp = (*float32)(unsafe.Add(unsafe.Pointer(res), 4*ro))
		}
		gemmTileGo(1, (*float32)(unsafe.Add(unsafe.Pointer(a), 4*m*lda)), lda, kseg, nseg, segStride, b, bstride,
			(*float32)(unsafe.Add(unsafe.Pointer(c), 4*co)), ldc, bias, rp, ldr, 1, ncols, act)
		co += ldc
		ro += ldr
		if left--; left == 0 {
			left = rpg
			co += cskip
			ro += rskip
		}
	}
}

// gemmRun describes one GEMM call in row groups: group g's row i has A at
// a[aOff + g*aGS + i*lda], C at c[cOff + g*cGS + i*ldc], R likewise. A
// dense tensor is one group; a tensor with a halo is one group per pixel
// row; a convolution is one group per output row.
type gemmRun struct {
	impl *gemmImpl

	a          []float32
	aOff, aGS  int
	lda        int
	kseg, nseg int
	segStride  int

	b  []float32 // packed panels of K = kseg*nseg rows
	bs int       // floats from one panel to the next; 0: K*panelW (b holds only those K rows)

	c         []float32
	cOff, cGS int
	ldc       int

	r         []float32 // nil: no residual
	rOff, rGS int
	ldr       int

	bias []float32 // padded to a multiple of 32
	n    int       // columns to compute (and store)
	zc   int       // columns after n to store zeros in (gemmCols)
	act  Act

	groups, rows int // row groups and rows per group

	// derived by plan
	wrap   bool // tiles run across groups (A's groups are contiguous)
	tail   bool // the last column group is impl.tail's, 24 columns
	tpg    int  // tiles per group
	base   int  // rows of a group's tiles from extra on (mr: a group is full tiles and a partial one)
	extra  int  // tiles of base+1 rows at the start of a group (0 with base = mr)
	tiles  int  // groups*tpg
	ngrp   int  // column groups of nr columns
	splitN bool // threads split columns instead of tiles
	chunk  int  // full tiles per call, bounding the A block kept in L2
}

// plan derives the tiling for the pool's threads and returns the number
// of parts to run.
func (g *gemmRun) plan(p *Pool) int {
	g.impl = gemmForShape(g.impl, g.kseg*g.nseg, g.n)
	im := g.impl
	// Rows of A that run on from one group into the next need not be cut
	// at group ends: full tiles cross them with the wrap kernels, which
	// step C's and R's row pointers over the gaps. That pays when a group
	// does not fill whole tiles (a map row of 28 pixels is 4 tiles and 4
	// rows of 6-row tiles, two kernel calls per row and column group), and
	// also when it does: a call then writes its column group's lines of
	// many map rows in one evenly strided stream, which the hardware
	// prefetcher follows, instead of those of one map row. With the
	// AVX-512 tiles of 14 rows, whose maps of 112, 56, 28 and 14 columns
	// fill whole tiles, writing an output not in cache (as in a network)
	// took 0.84-0.98x as long that way on a Zen 4 (BenchmarkColdPointwise),
	// the networks 0.97-0.99x (docs/perf.md).
	g.wrap = im.wrap != nil && g.groups > 1 && g.aGS == g.rows*g.lda
	if g.wrap {
		g.tpg = (g.groups*g.rows + im.mr - 1) / im.mr
		g.tiles = g.tpg
	} else {
		g.tpg = (g.rows + im.mr - 1) / im.mr
		g.tiles = g.groups * g.tpg
		// A last tile of one to three rows has too few accumulators to
		// keep the FMA units busy (one row of 16 columns: two chains,
		// half the rate of four), and takes as long as a tile of four:
		// then the group's rows are shared evenly by its tiles instead
		// (a 7x7 map, 49 rows: four tiles of 6 and five of 5, 49 row
		// times per k step for 52).
		g.base, g.extra = im.mr, 0
		if r := g.rows % im.mr; r > 0 && r < 4 && g.tpg > 1 {
			g.base, g.extra = g.rows/g.tpg, g.rows%g.tpg
		}
	}
	nr := im.nr()
	g.ngrp = (g.n + nr - 1) / nr
	g.tail = im.tail != nil && g.n >= tailCols && g.n%panelW == tailCols%panelW
	if g.tail {
		g.ngrp = (g.n-tailCols+nr-1)/nr + 1
	}
	K := g.kseg * g.nseg
	// A call's tiles read a block of A that stays in L2 while the call
	// streams its column group's B panels: 96 KiB, or a quarter of L2
	// (as for the MBConv strips) with kernels that prefetch the next
	// call's panels over a call's tiles. The 7x7 layers of the 224x224
	// nets (K = 960-1536) ran calls of one or two tiles with 96 KiB, too
	// few to prefetch over: from weights not in cache they took
	// 1.18-1.25x as long as from cache on a Zen 4 with AVX2, with both
	// changes 1.02-1.06x (BenchmarkColdWidePointwise, docs/perf.md).
	chunkBytes := 96 << 10
	if im.prefetchNext {
		chunkBytes = max(chunkBytes, l2Quarter())
	}
	g.chunk = max(1, chunkBytes/(4*im.mr*K))
	// Split columns when there are too few row tiles to share, or when B
	// (K x n) is much larger than A (rows x K), so that each thread streams
	// only its part of the weights.
	n := p.Threads()
	g.splitN = n > 1 && g.ngrp >= n && (g.tiles < 2*n || g.n > 2*g.groups*g.rows)
	work := int64(g.groups*g.rows) * int64(K) * int64(g.n)
	if g.splitN {
		parts := p.Parts(g.ngrp, work)
		if p != nil {
			p.colSplit = parts > 1
		}
		return parts
	}
	if p != nil {
		p.colSplit = false
	}
	return p.Parts(g.tiles, work)
}

// do runs part of the GEMM.
func (g *gemmRun) do(part, parts int) {
	t0, t1 := 0, g.tiles
	n0, n1 := 0, g.ngrp
	if g.splitN {
		n0, n1 = span(g.ngrp, part, parts)
	} else {
		t0, t1 = span(g.tiles, part, parts)
	}
	if t0 >= t1 || n0 >= n1 {
		return
	}
	if g.zc > 0 && n1 == g.ngrp {
		// the part that stores the last columns also clears the padding
		// after them, for the same rows
		defer g.zeroPad(t0, t1)
	}
	if g.wrap {
		g.doWrap(t0, t1, n0, n1)
		return
	}
	for t := t0; t < t1; {
		grp, ti := t/g.tpg, t%g.tpg
		// Tiles of this group in [t, t1) of one height, at most chunk of
		// them.
		row, rows, cnt := g.tileRows(ti)
		cnt = min(cnt, t1-t, g.chunk)
		g.rowTiles(grp, row, rows, cnt, n0, n1)
		t += cnt
	}
}

// rowTiles runs cnt tiles of rows rows each (rows <= mr), from row i of
// group grp on, for column groups [n0, n1).
func (g *gemmRun) rowTiles(grp, i, rows, cnt, n0, n1 int) {
	im := g.impl
	nr := im.nr()
	bstride := g.bstride()
	ao := g.aOff + grp*g.aGS + i*g.lda
	co := g.cOff + grp*g.cGS + i*g.ldc
	var rp *float32
	for ng := n0; ng < n1; ng++ {
		if g.tail && ng == g.ngrp-1 {
			g.tailRows(grp, i, cnt*rows)
			continue
		}
		col := ng * nr
		ncols := min(nr, g.bodyCols()-col)
		nv := (ncols + im.vw - 1) / im.vw
		if g.r != nil {
			rp = &g.r[g.rOff+grp*g.rGS+i*g.ldr+col]
		}
		im.tiles[nv-1][rows-1](&g.a[ao], g.lda, g.kseg, g.nseg, g.segStride,
			&g.b[(col/panelW)*bstride], bstride, &g.c[co+col], g.ldc,
			&g.bias[col], rp, g.ldr, cnt, ncols, int(g.act))
	}
}

// bstride is the distance in floats from one B panel to the next: K rows
// of 16, or more when the GEMM multiplies by a band of rows of a taller
// packed matrix (a part of K, MBConv.RunChannels).
func (g *gemmRun) bstride() int {
	if g.bs > 0 {
		return g.bs
	}
	return g.kseg * g.nseg * panelW
}

// gemmCols returns the columns a GEMM writing an output of channel
// stride cs with c channels computes, n (c rounded up to ChannelAlign),
// and the padding columns after them that it stores zeros in, zc: PadC's
// extra line costs a store, not a column panel of multiply-adds.
func gemmCols(cs, c int) (n, zc int) {
	n = min(cs, alignC(c))
	return n, cs - n
}

// zeroPad stores zeros in columns [n, n+zc) of the rows of tiles [t0, t1).
func (g *gemmRun) zeroPad(t0, t1 int) {
	mr := g.impl.mr
	clearRow := func(grp, i int) {
		o := g.cOff + grp*g.cGS + i*g.ldc + g.n
		clear(g.c[o : o+g.zc])
	}
	if g.wrap {
		for r := t0 * mr; r < min(t1*mr, g.groups*g.rows); r++ {
			clearRow(r/g.rows, r%g.rows)
		}
		return
	}
	for t := t0; t < t1; t++ {
		grp, ti := t/g.tpg, t%g.tpg
		row, rows, _ := g.tileRows(ti)
		for i := row; i < row+rows; i++ {
			clearRow(grp, i)
		}
	}
}

// tileRows returns the first row and the rows of tile ti of a group (not
// in wrap mode), and how many tiles from ti on have that height.
func (g *gemmRun) tileRows(ti int) (row, rows, same int) {
	if g.extra > 0 || g.base != g.impl.mr {
		row = ti*g.base + min(ti, g.extra)
		if ti < g.extra {
			return row, g.base + 1, g.extra - ti
		}
		return row, g.base, g.tpg - ti
	}
	mr := g.impl.mr
	if full := g.rows / mr; ti < full {
		return ti * mr, mr, full - ti
	}
	return ti * mr, g.rows - ti*mr, 1
}

// doWrap runs tiles [t0, t1) and column groups [n0, n1) of a GEMM whose
// tiles run across groups: tile t holds rows t*mr.. of the groups laid end
// to end. Full tiles go to the wrap kernels; the last, partial tile is cut
// at group ends.
func (g *gemmRun) doWrap(t0, t1, n0, n1 int) {
	im := g.impl
	mr := im.mr
	nr := im.nr()
	bstride := g.bstride()
	m := g.groups * g.rows
	full := m / mr
	if r := m % mr; r > 0 && r < 4 && full > 0 {
		// A partial tile of one to three rows runs below the FMA rate
		// (plan): the last full tile's rows join it, in tiles of even
		// height (a 7x7 map: 7 wrap tiles, then its last row as 4 + 3).
		full--
	}
	for t := t0; t < t1; {
		row := t * mr
		grp, i := row/g.rows, row%g.rows
		ao := g.aOff + row*g.lda
		co := g.cOff + grp*g.cGS + i*g.ldc
		ro := g.rOff + grp*g.rGS + i*g.ldr
		if t < full {
			cnt := min(full-t, t1-t, g.chunk)
			var rp *float32
			for ng := n0; ng < n1; ng++ {
				if g.tail && ng == g.ngrp-1 {
					g.tailWrap(row, cnt*mr)
					continue
				}
				col := ng * nr
				ncols := min(nr, g.bodyCols()-col)
				nv := (ncols + im.vw - 1) / im.vw
				if g.r != nil {
					rp = &g.r[ro+col]
				}
				im.wrap[nv-1](&g.a[ao], g.lda, g.kseg, g.nseg, g.segStride,
					&g.b[(col/panelW)*bstride], bstride, &g.c[co+col], g.ldc,
					&g.bias[col], rp, g.ldr, cnt, ncols, int(g.act),
					g.rows, g.rows-i, g.cGS-g.rows*g.ldc, g.rGS-g.rows*g.ldr)
			}
			t += cnt
			continue
		}
		// The rows left of this part's tiles (the partial tile, with the
		// full one before it, above): cut at group ends, each piece in
		// tiles of even height.
		// (A's groups are contiguous in wrap mode: row i of group grp is
		// A's row grp*rows + i, as rowTiles addresses it.)
		end := min(t1*mr, m)
		for row < end {
			piece := min(end-row, g.rows-i)
			nt := (piece + mr - 1) / mr
			for k := 0; k < nt; k++ {
				rows := piece / nt
				if k < piece%nt {
					rows++
				}
				g.rowTiles(grp, i, rows, 1, n0, n1)
				row, i = row+rows, i+rows
			}
			grp, i = grp+1, 0
		}
		return
	}
}

// bodyCols is the number of columns before the tail column group (all of
// them without one): the other groups end there.
func (g *gemmRun) bodyCols() int {
	if g.tail {
		return g.n - tailCols
	}
	return g.n
}

// tailRows computes the tail column group for rows [row, row+n) of group
// grp: full tiles of the tail's rows, then one partial tile.
func (g *gemmRun) tailRows(grp, row, n int) {
	tm := g.impl.tail
	col := g.n - tailCols
	bstride := g.bstride()
	for n > 0 {
		rows, cnt := tm.mr, n/tm.mr
		if cnt == 0 {
			rows, cnt = n, 1
		}
		var rp *float32
		if g.r != nil {
			rp = &g.r[g.rOff+grp*g.rGS+row*g.ldr+col]
		}
		tm.tiles[2][rows-1](&g.a[g.aOff+grp*g.aGS+row*g.lda], g.lda, g.kseg, g.nseg, g.segStride,
			&g.b[(col/panelW)*bstride], bstride, &g.c[g.cOff+grp*g.cGS+row*g.ldc+col], g.ldc,
			&g.bias[col], rp, g.ldr, cnt, tailCols, int(g.act))
		row += rows * cnt
		n -= rows * cnt
	}
}

// tailWrap computes the tail column group for rows [row, row+n) of the
// groups laid end to end (wrap mode): full tiles with the tail's wrap
// kernel, the rest cut at group ends.
func (g *gemmRun) tailWrap(row, n int) {
	tm := g.impl.tail
	col := g.n - tailCols
	bstride := g.bstride()
	if cnt := n / tm.mr; cnt > 0 {
		grp, i := row/g.rows, row%g.rows
		var rp *float32
		if g.r != nil {
			rp = &g.r[g.rOff+grp*g.rGS+i*g.ldr+col]
		}
		tm.wrap[2](&g.a[g.aOff+row*g.lda], g.lda, g.kseg, g.nseg, g.segStride,
			&g.b[(col/panelW)*bstride], bstride, &g.c[g.cOff+grp*g.cGS+i*g.ldc+col], g.ldc,
			&g.bias[col], rp, g.ldr, cnt, tailCols, int(g.act),
			g.rows, g.rows-i, g.cGS-g.rows*g.ldc, g.rGS-g.rows*g.ldr)
		row += cnt * tm.mr
		n -= cnt * tm.mr
	}
	for n > 0 {
		grp, i := row/g.rows, row%g.rows
		rows := min(n, g.rows-i)
		g.tailRows(grp, i, rows)
		row += rows
		n -= rows
	}
}

// PackGEMM packs a row-major n x k weight matrix w (w[j*k+i] is the weight
// from input i to output j, the layout of an OIHW 1x1 kernel or of a linear
// layer's weight) into 16-column panels: panel p holds, for each i < k,
// the 16 floats w[(16p+0..15)*k + i], zero past n. The result has
// ceil(n/16)*16*k floats.
func PackGEMM(w []float32, n, k int) []float32 {
	np := (n + panelW - 1) / panelW
	out := make([]float32, np*panelW*k)
	for j := 0; j < n; j++ {
		p, jj := j/panelW, j%panelW
		for i := 0; i < k; i++ {
			out[(p*k+i)*panelW+jj] = w[j*k+i]
		}
	}
	return out
}
