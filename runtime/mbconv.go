package runtime

import (
	"fmt"
	"unsafe"
)

// MBConv runs an inverted-residual block, expand (1x1) → depthwise →
// project (1x1), in strips of output rows, so that the expanded tensor is
// never written to memory whole: each strip expands only the input rows
// its depthwise rows read into a small buffer that stays in cache, runs the
// depthwise convolution on it and projects the result straight into the
// output. It calls the same GEMM and depthwise kernels as Pointwise and
// Depthwise and gives the same results.
//
// A block without expansion (depthwise → project, as the first block of
// MobileNetV2 and the ProxylessNAS nets) has a nil expand: the depthwise
// rows then read the input directly, which needs the halo a Depthwise
// needs, and only the depthwise output of a strip is buffered. A dense
// convolution may take the expansion's place (NewMBConvDense: a network's
// stem followed by such a block), computing the rows the depthwise rows
// read from the input rows its kernel covers.
//
// Threads take even, contiguous ranges of output rows, cut into strips
// (deterministic: the split depends only on the shapes and the thread
// count); within a range the expanded rows that two neighbouring strips
// share are moved, not recomputed. A value is not safe for concurrent Runs.
type MBConv struct {
	expand, project *Pointwise
	dense           *DenseConv // in place of expand, or nil
	dw              *Depthwise

	// per run
	out, in  Tensor
	res      *Tensor
	f        dwFunc
	mapf     dwMapFunc   // whole-map kernel for the channel split (RunChannels), or nil
	exH, exW int         // size of the expanded tensor
	strip    int         // output rows per strip
	scratch  [][]float32 // per part: expanded rows, then depthwise rows

	fixedStrip int // tests: output rows per strip, 0 for the default

	chs mbChannels // RunChannels
}

// MBConvStripBytes returns the size the driver aims at for the expanded
// rows of one strip (one thread's working set besides the depthwise rows):
// a quarter of the CPU's L2 cache per core, as Linux reports it for the
// first CPU, between 64 KiB and 1 MiB; 512 KiB where the size is unknown
// (other systems), a quarter of a 2 MiB L2. On a Zen 4 (1 MiB of L2) a
// quarter ran the networks 0.95-1.00x as long as 512 KiB (docs/perf.md).
// Strips are at least mbconvMinStrip output rows high all the same:
// shorter ones call the kernels too often for too little work
// (BenchmarkMBConv).
func MBConvStripBytes() int { return l2Quarter() }

const mbconvMinStrip = 4

// MBConvDWStripBytes is the size the driver aims at for one strip's
// depthwise output in a block without expansion: the strip is written by
// the depthwise kernel and read back at once by the projection, so it is
// kept well inside L2.
const MBConvDWStripBytes = 128 << 10

// NewMBConv fuses three operators built by NewPointwise, NewDepthwise and
// NewPointwise. The depthwise convolution must read the expansion's
// channels and the projection the depthwise output's. expand may be nil
// for a block without expansion.
func NewMBConv(expand *Pointwise, dw *Depthwise, project *Pointwise) (*MBConv, error) {
	if dw == nil || project == nil {
		return nil, fmt.Errorf("runtime: NewMBConv: nil operator")
	}
	if expand != nil {
		if e, d := expand.spec.Cout, dw.spec.Cin; e != d {
			return nil, fmt.Errorf("runtime: NewMBConv: expansion has %d channels, depthwise reads %d", e, d)
		}
	}
	if d, p := dw.spec.Cout, project.spec.Cin; d != p {
		return nil, fmt.Errorf("runtime: NewMBConv: depthwise has %d channels, projection reads %d", d, p)
	}
	if dw.spec.DilH != 1 || dw.spec.DilW != 1 {
		return nil, fmt.Errorf("runtime: NewMBConv: dilated depthwise convolution")
	}
	m := &MBConv{expand: expand, dw: dw, project: project}
	m.chs.m = m
	return m, nil
}

// NewMBConvDense fuses a dense convolution (NewDenseConv: groups 1, any
// kernel and stride, such as a network's stem), a depthwise convolution
// reading its output and a projection, in the strips of NewMBConv.
func NewMBConvDense(dense *DenseConv, dw *Depthwise, project *Pointwise) (*MBConv, error) {
	if dense == nil {
		return nil, fmt.Errorf("runtime: NewMBConvDense: nil operator")
	}
	m, err := NewMBConv(nil, dw, project)
	if err != nil {
		return nil, err
	}
	if e, d := dense.spec.Cout, dw.spec.Cin; e != d {
		return nil, fmt.Errorf("runtime: NewMBConvDense: convolution has %d channels, depthwise reads %d", e, d)
	}
	m.dense = dense
	return m, nil
}

// exSpec is the spec of the expansion (pointwise or dense), or nil for a
// block without one.
func (m *MBConv) exSpec() *ConvSpec {
	switch {
	case m.expand != nil:
		return &m.expand.spec
	case m.dense != nil:
		return &m.dense.spec
	}
	return nil
}

// overlaps reports whether two slices share memory.
func overlaps(a, b []float32) bool {
	if len(a) == 0 || len(b) == 0 {
		return false
	}
	a0, b0 := uintptr(unsafe.Pointer(&a[0])), uintptr(unsafe.Pointer(&b[0]))
	return a0 < b0+4*uintptr(len(b)) && b0 < a0+4*uintptr(len(a))
}

// Run computes out = project(depthwise(expand(in))) + res, each stage with
// its own bias and activation; res may be nil, out itself or in, and out
// must not overlap in.
func (m *MBConv) Run(p *Pool, out, in Tensor, res *Tensor) error {
	oh, ow, err := m.bind(out, in, res)
	if err != nil {
		return err
	}
	if overlaps(out.Data, in.Data) {
		return fmt.Errorf("runtime: mbconv: output overlaps the input")
	}
	d := m.dw.spec

	// Strip height: as many output rows as keep the expanded rows within
	// MBConvStripBytes() (without expansion: the depthwise rows within
	// MBConvDWStripBytes), at least mbconvMinStrip.
	work := int64(oh*ow) * int64(d.Cout*d.KH*d.KW+d.Cout*m.project.spec.Cout)
	if e := m.exSpec(); e != nil {
		cs := PadC(e.Cout)
		halo := d.Halo()
		rowBytes := 4 * (m.exW + 2*halo) * cs
		inRows := max(d.KH, MBConvStripBytes()/rowBytes)
		m.strip = min(oh, max(mbconvMinStrip, (inRows-d.KH)/d.StrideH+1))
		work += int64(m.exH*m.exW) * int64(e.Cin*e.Cout*e.KH*e.KW)
	} else {
		m.strip = min(oh, max(mbconvMinStrip, MBConvDWStripBytes/(4*ow*in.CS)))
	}
	if m.fixedStrip > 0 {
		m.strip = min(oh, m.fixedStrip)
	}
	// One part per thread at most: each part has its own strip buffer,
	// and a thread running several parts would bring each buffer into
	// its cache afresh.
	parts := min(p.Parts(oh, work), p.Threads())
	need := m.scratchLen(in.CS, ow)
	for len(m.scratch) < parts {
		m.scratch = append(m.scratch, nil)
	}
	for i := 0; i < parts; i++ {
		if len(m.scratch[i]) != need {
			m.scratch[i] = make([]float32, need) // zero: the halo columns are never written
		}
	}
	p.Run(m, parts)
	return nil
}

// bind checks the shapes of a Run and records its tensors; it returns the
// output's size.
func (m *MBConv) bind(out, in Tensor, res *Tensor) (oh, ow int, err error) {
	d := m.dw.spec
	if err := in.Check("in"); err != nil {
		return 0, 0, err
	}
	if cin := m.cin(); in.C != cin {
		return 0, 0, fmt.Errorf("runtime: mbconv: input has %d channels, want %d", in.C, cin)
	}
	m.exH, m.exW = in.H, in.W
	switch e := m.exSpec(); {
	case e == nil:
		if in.Pad < d.Halo() {
			return 0, 0, fmt.Errorf("runtime: mbconv: input halo %d, want at least %d", in.Pad, d.Halo())
		}
		if in.CS != PadC(in.C) {
			return 0, 0, fmt.Errorf("runtime: mbconv: input channel stride %d, want PadC(%d) = %d", in.CS, in.C, PadC(in.C))
		}
	case m.dense != nil:
		if in.Pad < e.Halo() {
			return 0, 0, fmt.Errorf("runtime: mbconv: input halo %d, want at least %d", in.Pad, e.Halo())
		}
		if in.CS != e.InStride {
			return 0, 0, fmt.Errorf("runtime: mbconv: input channel stride %d, weights packed for %d", in.CS, e.InStride)
		}
		m.exH, m.exW = e.OutSize(in.H, in.W)
		if m.exH <= 0 || m.exW <= 0 {
			return 0, 0, fmt.Errorf("runtime: mbconv: %dx%d input is smaller than the %dx%d kernel", in.H, in.W, e.KH, e.KW)
		}
	}
	oh, ow = d.OutSize(m.exH, m.exW)
	if oh <= 0 || ow <= 0 {
		return 0, 0, fmt.Errorf("runtime: mbconv: %dx%d input is smaller than the %dx%d kernel", m.exH, m.exW, d.KH, d.KW)
	}
	if err := checkOut("out", out, oh, ow, m.project.spec.Cout); err != nil {
		return 0, 0, err
	}
	if res != nil {
		if err := checkOut("res", *res, oh, ow, m.project.spec.Cout); err != nil {
			return 0, 0, err
		}
	}
	m.out, m.in, m.res = out, in, res
	m.f, _ = dwFor(level(), d.KH, d.KW, d.StrideH, d.StrideW)
	m.mapf = dwMapFor(level(), &d, m.exW)
	return oh, ow, nil
}

// cin is the block's input channels.
func (m *MBConv) cin() int {
	if e := m.exSpec(); e != nil {
		return e.Cin
	}
	return m.dw.spec.Cin
}

// stripShapes returns the shapes of a strip's buffers, without data: the
// expanded rows with the depthwise halo (empty without expansion), and the
// dense depthwise output rows.
func (m *MBConv) stripShapes(inCS, ow int) (ex, dwo Tensor) {
	d := m.dw.spec
	e := m.exSpec()
	if e == nil {
		return Tensor{}, Tensor{H: m.strip, W: ow, C: d.Cout, CS: inCS}
	}
	cs := PadC(e.Cout)
	rows := (m.strip-1)*d.StrideH + d.KH
	ex = Tensor{H: rows, W: m.exW, C: e.Cout, CS: cs, Pad: d.Halo()}
	dwo = Tensor{H: m.strip, W: ow, C: d.Cout, CS: cs}
	return ex, dwo
}

// stripTensors returns the strip's buffers (stripShapes) laid out in buf.
func (m *MBConv) stripTensors(buf []float32, inCS, ow int) (ex, dwo Tensor) {
	ex, dwo = m.stripShapes(inCS, ow)
	ex.Data = buf[:ex.Len()]
	dwo.Data = buf[ex.Len() : ex.Len()+dwo.Len()]
	return ex, dwo
}

// scratchLen is the floats of one part's strip buffers.
func (m *MBConv) scratchLen(inCS, ow int) int {
	ex, dwo := m.stripShapes(inCS, ow)
	return ex.Len() + dwo.Len()
}

// Do implements Task: part runs a contiguous range of output rows.
func (m *MBConv) Do(part, parts int) {
	// Each part owns an even share of the output rows and cuts it into
	// strips, so that threads get the same work whatever the strip height.
	ya, yb := span(m.out.H, part, parts)
	if ya >= yb {
		return
	}
	d := &m.dw.spec
	in, out := m.in, m.out
	ex, dwo := m.stripTensors(m.scratch[part], in.CS, out.W)
	rs := ex.RowStride()
	impl := gemmFor(level())
	e := m.exSpec()
	if e == nil {
		// The depthwise rows read the input, halo included.
		ex, rs = in, in.RowStride()
	}
	held, have0, have1 := false, 0, 0 // image rows [have0, have1) are in ex rows 0..
	// Strips of equal height (at most m.strip), not a short one at the end.
	ns := (yb - ya + m.strip - 1) / m.strip
	h := (yb - ya + ns - 1) / ns
	for y0 := ya; y0 < yb; y0 += h {
		y1 := min(yb, y0+h)
		r0 := y0*d.StrideH - d.PadT
		r1 := (y1-1)*d.StrideH - d.PadT + d.KH
		if e == nil {
			m.dwStrip(dwo, ex.Data, ex.Offset(r0, -d.PadL), rs, ex.CS, y1-y0)
			m.projectStrip(impl, dwo, y0, y1)
			continue
		}
		// Move the rows this strip shares with the previous one to the top.
		from := r0
		if held && have1 > r0 && have0 <= r0 {
			k := have1 - r0
			src := ex.Offset(r0-have0, -ex.Pad)
			dst := ex.Offset(0, -ex.Pad)
			copy(ex.Data[dst:dst+k*rs], ex.Data[src:src+k*rs])
			from = have1
		}
		// Rows outside the image are zero; the others are expanded.
		for r := from; r < r1 && r < 0; r++ {
			o := ex.Offset(r-r0, 0)
			clear(ex.Data[o : o+m.exW*ex.CS])
		}
		for r := max(from, m.exH); r < r1; r++ {
			o := ex.Offset(r-r0, 0)
			clear(ex.Data[o : o+m.exW*ex.CS])
		}
		if v0, v1 := max(from, 0), min(r1, m.exH); v0 < v1 {
			gn, gz := gemmCols(ex.CS, ex.C)
			g := gemmRun{
				impl: impl,
				c:    ex.Data, cOff: ex.Offset(v0-r0, 0), cGS: rs, ldc: ex.CS,
				n: gn, zc: gz, act: e.Act,
				groups: v1 - v0, rows: m.exW,
			}
			if m.dense != nil {
				// Expanded row r reads input rows r*StrideH-PadT on
				// (DenseConv's implicit GEMM).
				g.a, g.aOff, g.aGS, g.lda = in.Data, in.Offset(v0*e.StrideH-e.PadT, -e.PadL), e.StrideH*in.RowStride(), e.StrideW*in.CS
				g.kseg, g.nseg, g.segStride = e.KW*in.CS, e.KH, in.RowStride()
				g.b, g.bias = m.dense.packed, m.dense.bias
			} else {
				g.a, g.aOff, g.aGS, g.lda = in.Data, in.Offset(v0, 0), in.RowStride(), in.CS
				g.kseg, g.nseg = e.Cin, 1
				g.b, g.bias = m.expand.packed, m.expand.bias
			}
			g.plan(nil)
			g.do(0, 1)
		}
		held, have0, have1 = true, r0, r1

		m.dwStrip(dwo, ex.Data, ex.Offset(0, -d.PadL), rs, ex.CS, y1-y0)
		m.projectStrip(impl, dwo, y0, y1)
	}
}

// dwStrip runs the depthwise convolution of n output rows into dwo, reading
// src (the input, or the expanded rows) from float ip on, rows rs floats
// apart, channel stride cs.
func (m *MBConv) dwStrip(dwo Tensor, src []float32, ip, rs, cs, n int) {
	d := &m.dw.spec
	if m.f != nil {
		m.f(&dwo.Data[0], dwo.RowStride(), &src[ip], rs, cs, &m.dw.packed[0], &m.dw.bias[0], nil, 0,
			cs, n, m.out.W, d.StrideW, int(d.Act))
		return
	}
	for y := 0; y < n; y++ {
		dwRowsGo(d.KH, d.KW, &dwo.Data[y*dwo.RowStride()], 0, &src[ip+y*d.StrideH*rs], rs, cs,
			&m.dw.packed[0], &m.dw.bias[0], nil, 0, cs, 1, m.out.W, d.StrideW, int(d.Act))
	}
}

// projectStrip projects the depthwise rows of dwo into out rows y0..y1.
func (m *MBConv) projectStrip(impl *gemmImpl, dwo Tensor, y0, y1 int) {
	pj, out := &m.project.spec, m.out
	n := y1 - y0
	{
		gn, gz := gemmCols(out.CS, out.C)
		g := gemmRun{
			impl: impl,
			a:    dwo.Data, lda: dwo.CS,
			kseg: pj.Cin, nseg: 1, b: m.project.packed,
			c: out.Data, cOff: out.Offset(y0, 0), ldc: out.CS,
			bias: m.project.bias, n: gn, zc: gz, act: pj.Act,
		}
		if m.res != nil {
			g.r, g.rOff, g.ldr = m.res.Data, m.res.Offset(y0, 0), m.res.CS
		}
		if out.Dense() && (m.res == nil || m.res.Dense()) {
			g.groups, g.rows = 1, n*out.W
		} else {
			g.groups, g.rows = n, out.W
			g.aGS, g.cGS = dwo.RowStride(), out.RowStride()
			if m.res != nil {
				g.rGS = m.res.RowStride()
			}
		}
		g.plan(nil)
		g.do(0, 1)
	}
}
