package runtime

import "fmt"

// RunChannels computes what Run computes, with the block shared among the
// pool's threads by channels of the expanded tensor rather than by rows:
// part t expands its band of hidden channels over the whole map, runs the
// depthwise convolution on them and multiplies them by the same band of
// the projection's rows, a partial sum of the output; once every part is
// done, the parts add the partial sums up, each for a range of the output
// pixels, and apply the bias, the residual and the activation.
//
// Run's row strips are for large maps; on a small map (14x14, 7x7) a
// thread's share is one or two rows, whose depthwise halo rows and weights
// each thread reads again, and the three operators one after the other
// hand the expanded tensor from core to core: each split the way that
// suits it, so a thread reads half of what the layer before wrote from the
// other core's cache. Here a part reads only the block's input (small) and
// writes its own buffers, which no other thread reads, and the data that
// crosses cores is the partial sums, the size of the output. The result
// equals Run's up to the order of the projection's sums. The block needs
// a pointwise expansion (NewMBConv with a non-nil expand).
//
// Every part has read in before any output is written, so out may share
// memory with in (unlike Run); res may be nil, in, or out itself, and must
// otherwise not overlap out. RunChannels writes zeros to out's halo (after
// the input is read), so the caller need not.
func (m *MBConv) RunChannels(p *Pool, out, in Tensor, res *Tensor) error {
	return m.RunChannelsIn(p, out, in, res, nil)
}

// RunChannelsIn is RunChannels with the parts' expanded maps in scratch
// when it holds them all (at least the length of the expanded tensor
// with the depthwise halo, as the block's three operators lay it out),
// else in buffers of the block's own. A compiled program passes the
// arena floats of the block's expanded tensor, which the layers before
// have just used: the block's own buffers are touched once an inference,
// and on a 224x224 net everything between two inferences evicts them, so
// the expansion wrote them cold (from memory) every time. scratch must
// not overlap in or res; it may overlap out, which is written only after
// every part is done with its expanded map. What scratch held is lost.
func (m *MBConv) RunChannelsIn(p *Pool, out, in Tensor, res *Tensor, scratch []float32) error {
	if m.expand == nil {
		return fmt.Errorf("runtime: mbconv: a channel split needs a pointwise expansion")
	}
	oh, ow, err := m.bind(out, in, res)
	if err != nil {
		return err
	}
	if res != nil && overlaps(res.Data, out.Data) && !sameTensor(*res, out) {
		return fmt.Errorf("runtime: mbconv: the residual overlaps the output without being it")
	}
	hid := m.expand.spec.Cout
	units := (hid + panelW - 1) / panelW
	parts := min(p.Threads(), units)
	c := &m.chs
	if c.parts != parts || len(c.dww) != parts {
		c.pack(parts)
	}
	c.oh, c.ow = oh, ow
	c.ldp, _ = gemmCols(out.CS, out.C)
	// the parts' maps side by side: a map of all the bands' channels
	exLen := Tensor{H: m.exH, W: m.exW, CS: units * panelW, Pad: m.dw.spec.Halo()}.Len()
	c.ext = nil
	if len(scratch) >= exLen {
		if overlaps(scratch[:exLen], in.Data) || res != nil && overlaps(scratch[:exLen], res.Data) {
			return fmt.Errorf("runtime: mbconv: the scratch floats overlap the input or the residual")
		}
		c.ext = scratch[:exLen]
	}
	for t := range parts {
		ex, dwo, pt := c.tensors(t, nil)
		own := ex.Len()
		if c.ext != nil {
			own = 0
		}
		if need := own + dwo.Len() + pt.Len(); len(c.buf[t]) != need {
			c.buf[t] = make([]float32, need) // zero: the halo of an own expanded map is never written
		}
		c.poff[t] = own + dwo.Len()
	}
	if parts > 1 && len(c.zero) < len(m.project.bias) {
		c.zero = make([]float32, len(m.project.bias))
	}
	c.phase = 0
	p.Run(c, parts)
	if parts > 1 {
		c.phase = 1
		p.Run(c, parts)
	}
	return nil
}

// mbChannels is the state of MBConv.RunChannels: per part, a band of the
// hidden channels [h0, h1), 16 at a time, with its depthwise weights
// repacked at the band's channel stride, and its buffers.
type mbChannels struct {
	m      *MBConv
	parts  int
	dww    [][]float32 // per part: depthwise weights, tap-major, channel stride csp
	buf    [][]float32 // per part: expanded map (with the depthwise halo), depthwise output, partial sums
	poff   []int       // per part: where in buf the partial sums start
	zero   []float32   // a zero bias for the partial sums
	oh, ow int
	ldp    int       // columns of the partial sums: the projection's computed columns
	ext    []float32 // the caller's floats for the parts' expanded maps (RunChannelsIn), or nil
	phase  int       // 0: the parts' bands, 1: the sums
}

// band returns part t's hidden channels [h0, h0+cp) and its channel
// stride csp, a multiple of 16.
func (c *mbChannels) band(t int) (h0, cp, csp int) {
	hid := c.m.expand.spec.Cout
	units := (hid + panelW - 1) / panelW
	u0, u1 := span(units, t, c.parts)
	h0 = u0 * panelW
	return h0, min(u1*panelW, hid) - h0, (u1 - u0) * panelW
}

// pack repacks the depthwise weights for parts bands.
func (c *mbChannels) pack(parts int) {
	c.parts = parts
	c.dww = make([][]float32, parts)
	c.buf = make([][]float32, parts)
	c.poff = make([]int, parts)
	d := &c.m.dw.spec
	pc := PadC(d.Cin)
	for t := range parts {
		h0, _, csp := c.band(t)
		w := make([]float32, d.KH*d.KW*csp)
		for tap := 0; tap < d.KH*d.KW; tap++ {
			copy(w[tap*csp:(tap+1)*csp], c.m.dw.packed[tap*pc+h0:tap*pc+min(pc, h0+csp)])
		}
		c.dww[t] = w
	}
}

// tensors returns part t's buffers (shapes only when buf is nil): the
// expanded map (in c.ext, at the part's band of hidden channels times the
// map's padded size, when the caller gave floats for it; else first in
// buf), the depthwise output and, with more than one part, the partial
// sums, laid out in buf.
func (c *mbChannels) tensors(t int, buf []float32) (ex, dwo, pt Tensor) {
	m := c.m
	h0, cp, csp := c.band(t)
	ex = Tensor{H: m.exH, W: m.exW, C: cp, CS: csp, Pad: m.dw.spec.Halo()}
	dwo = Tensor{H: c.oh, W: c.ow, C: cp, CS: csp}
	if c.parts > 1 {
		pt = Tensor{H: c.oh, W: c.ow, C: m.project.spec.Cout, CS: c.ldp}
	}
	if buf != nil {
		if c.ext != nil {
			off := h0 * ex.Len() / csp
			ex.Data = c.ext[off : off+ex.Len()]
		} else {
			ex.Data, buf = buf[:ex.Len()], buf[ex.Len():]
		}
		dwo.Data = buf[:dwo.Len()]
		pt.Data = buf[dwo.Len() : dwo.Len()+pt.Len()]
	}
	return ex, dwo, pt
}

// Do implements Task.
func (c *mbChannels) Do(part, parts int) {
	if c.phase == 1 {
		c.sum(part, parts)
		return
	}
	m := c.m
	impl := gemmFor(level())
	h0, cp, csp := c.band(part)
	ex, dwo, pt := c.tensors(part, c.buf[part])
	if c.ext != nil && m.mapf == nil {
		// The caller's floats hold what the arena held before; the
		// whole-map kernel reads no halo.
		ex.ZeroHalo()
	}
	in := m.in

	// Expand the band over the whole map.
	e := &m.expand.spec
	gn, gz := gemmCols(csp, cp)
	g := gemmRun{
		impl: impl,
		a:    in.Data, aOff: in.Offset(0, 0), aGS: in.RowStride(), lda: in.CS,
		kseg: e.Cin, nseg: 1,
		b: m.expand.packed[(h0/panelW)*e.Cin*panelW:], bias: m.expand.bias[h0:],
		c: ex.Data, cOff: ex.Offset(0, 0), cGS: ex.RowStride(), ldc: csp,
		n: gn, zc: gz, act: e.Act,
		groups: in.H, rows: in.W,
	}
	g.plan(nil)
	g.do(0, 1)

	// The depthwise convolution of the band: the whole map, so on a map
	// dwMapW wide the whole-map kernel, which skips the padding (the 7x7
	// blocks of the 224x224 nets, which split by channels on two
	// threads).
	d := &m.dw.spec
	ip := ex.Offset(-d.PadT, -d.PadL)
	w, bias := c.dww[part], m.dw.bias[h0:]
	if m.mapf != nil {
		m.mapf(&dwo.Data[0], dwo.RowStride(), &ex.Data[ex.Offset(0, 0)], ex.RowStride(), csp, &w[0], &bias[0], nil, 0,
			csp, c.oh, int(d.Act))
	} else if m.f != nil {
		m.f(&dwo.Data[0], dwo.RowStride(), &ex.Data[ip], ex.RowStride(), csp, &w[0], &bias[0], nil, 0,
			csp, c.oh, c.ow, d.StrideW, int(d.Act))
	} else {
		for y := 0; y < c.oh; y++ {
			dwRowsGo(d.KH, d.KW, &dwo.Data[y*dwo.RowStride()], 0, &ex.Data[ip+y*d.StrideH*ex.RowStride()], ex.RowStride(), csp,
				&w[0], &bias[0], nil, 0, csp, 1, c.ow, d.StrideW, int(d.Act))
		}
	}

	// Project: alone, straight into the output; else the band's rows of
	// the projection into the partial sums.
	if parts == 1 {
		m.out.ZeroHalo() // it may share memory with the input, read by now
		m.projectStrip(impl, dwo, 0, c.oh)
		return
	}
	pj := &m.project.spec
	g = gemmRun{
		impl: impl,
		a:    dwo.Data, lda: csp,
		kseg: cp, nseg: 1,
		b: m.project.packed[h0*panelW:], bs: pj.Cin * panelW, bias: c.zero,
		c: pt.Data, ldc: c.ldp,
		n: c.ldp, act: ActNone,
		groups: 1, rows: c.oh * c.ow,
	}
	g.plan(nil)
	g.do(0, 1)
}

// sum adds up the partial sums for part's share of the output pixels and
// applies the projection's bias, the residual and its activation.
func (c *mbChannels) sum(part, parts int) {
	m := c.m
	out, res := m.out, m.res
	act := m.project.spec.Act
	n := c.ldp
	bias := m.project.bias[:n]
	pix0, pix1 := span(c.oh*c.ow, part, parts)
	// The output's halo: the rows above by the first part, those below by
	// the last, the pixels left and right of a row with its first and last
	// pixel. (It may share memory with the input, which is read by now.)
	if pad := out.Pad; pad > 0 {
		rs := out.RowStride()
		if part == 0 {
			clear(out.Data[:pad*rs])
		}
		if part == parts-1 {
			clear(out.Data[(pad+c.oh)*rs : (2*pad+c.oh)*rs])
		}
	}
	for q := pix0; q < pix1; q++ {
		y, x := q/c.ow, q%c.ow
		if pad := out.Pad; pad > 0 {
			if x == 0 {
				clear(out.Data[out.Offset(y, -pad):out.Offset(y, 0)])
			}
			if x == c.ow-1 {
				clear(out.Data[out.Offset(y, c.ow):out.Offset(y, c.ow+pad)])
			}
		}
		o := out.Data[out.Offset(y, x):][:out.CS]
		po := o[:n]
		s0 := c.partial(0, q)
		// The residual may be the output itself: each element is read
		// before it is written.
		r := s0
		if res != nil {
			r = res.Data[res.Offset(y, x):][:n]
		}
		switch {
		case c.parts == 2 && res != nil:
			s1 := c.partial(1, q)[:n]
			r, s0 := r[:n], s0[:n]
			for i := range po {
				po[i] = r[i] + s0[i] + s1[i] + bias[i]
			}
		case c.parts == 2:
			s1 := c.partial(1, q)[:n]
			s0 := s0[:n]
			for i := range po {
				po[i] = s0[i] + s1[i] + bias[i]
			}
		default:
			r, s0 := r[:n], s0[:n]
			if res != nil {
				for i := range po {
					po[i] = r[i] + s0[i] + bias[i]
				}
			} else {
				for i := range po {
					po[i] = s0[i] + bias[i]
				}
			}
			for t := 1; t < c.parts; t++ {
				s := c.partial(t, q)
				for i := range po {
					po[i] += s[i]
				}
			}
		}
		if act != ActNone {
			for i := range po {
				po[i] = act.apply(po[i])
			}
		}
		clear(o[n:])
	}
}

// sameTensor reports whether a and b are the same elements.
func sameTensor(a, b Tensor) bool {
	return len(a.Data) == len(b.Data) && (len(a.Data) == 0 || &a.Data[0] == &b.Data[0]) &&
		a.H == b.H && a.W == b.W && a.CS == b.CS && a.Pad == b.Pad
}

// partial returns part t's partial sums for output pixel q.
func (c *mbChannels) partial(t, q int) []float32 {
	o := c.poff[t] + q*c.ldp
	return c.buf[t][o : o+c.ldp]
}
