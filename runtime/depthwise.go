package runtime

import (
	"fmt"
	"unsafe"
)

// dwFunc computes a block of output rows of a depthwise convolution for a
// fixed square kernel; see dwRowsGo for the semantics.
type dwFunc func(out *float32, outRow int, in *float32, inRow, cs int, w, bias, res *float32, resRow, c, oh, ow, stride, act int)

// dwMapFunc computes a whole depthwise convolution with a fixed square
// kernel over a map of fixed width (dwMapW), stride 1 and "same" padding;
// see dwMapGo for the semantics.
type dwMapFunc func(out *float32, outRow int, in *float32, inRow, cs int, w, bias, res *float32, resRow, c, h, act int)

// dwMapW is the map width of the whole-map kernels: the 7x7 maps of the
// 224x224 nets' last stage, whose 5x5 and 7x7 windows are mostly padding
// (a 7x7 window over a 7x7 map: 1369 of 2401 taps inside it). The kernels
// skip the padding; the row kernels multiply it by the zero halo.
const dwMapW = 7

// dwImpl is one level's set of depthwise kernels.
type dwImpl struct {
	vw      int               // floats per vector: channel blocks are multiples of it
	kernels map[[2]int]dwFunc // by {k, stride} for k x k kernels
	maps    map[int]dwMapFunc // by k: whole-map kernels (dwMapW wide, stride 1, same padding)
}

var dwImpls [numLevels]*dwImpl

func init() {
	// The portable set runs the whole-map twin for the sizes the vector
	// sets have, so that it is tested as they are.
	dwImpls[levelGo] = &dwImpl{vw: 16, maps: map[int]dwMapFunc{}}
	for _, k := range []int{5, 7} {
		dwImpls[levelGo].maps[k] = func(out *float32, outRow int, in *float32, inRow, cs int, w, bias, res *float32, resRow, c, h, act int) {
			dwMapGo(k, dwMapW, out, outRow, in, inRow, cs, w, bias, res, resRow, c, h, act)
		}
	}
}

// dwMapFor returns the whole-map kernel of level l (not of a lower one) for
// a depthwise convolution with spec s over a map w pixels wide, or nil.
func dwMapFor(l int, s *ConvSpec, w int) dwMapFunc {
	d := dwImpls[l]
	k := s.KH
	p := (k - 1) / 2
	if d == nil || w != dwMapW || s.KW != k || s.StrideH != 1 || s.StrideW != 1 || s.DilH != 1 || s.DilW != 1 ||
		s.PadT != p || s.PadL != p || s.PadB != p || s.PadR != p {
		return nil
	}
	return d.maps[k]
}

// dwMapGo is the reference for every whole-map kernel: dwRowsGo with
// kh = kw = k and stride 1 over a map of h rows and mw columns padded by
// p = (k-1)/2 on every side, except that in points at pixel (0, 0) and
// the padding is never read: for output rows oy < h, pixels ox < mw and
// channels ch < c,
//
//	s := float32(0)
//	for i := max(0, p-oy); i < min(k, h+p-oy); i++ {
//		for j := max(0, p-ox); j < min(k, mw+p-ox); j++ {
//			s += in[(oy+i-p)*inRow+(ox+j-p)*cs+ch] * w[(i*k+j)*cs+ch]
//		}
//	}
//	s += bias[ch]
//	if res != nil {
//		s += res[oy*resRow+ox*cs+ch]
//	}
//	out[oy*outRow+ox*cs+ch] = act(s)
//
// The products it skips are those of dwRowsGo with the zero halo, which
// add exact zeros: the two give the same floats, as do the vector row and
// whole-map kernels (which start from the bias), so a fused block
// (MBConv, which runs the row kernels) matches its unfused layers.
func dwMapGo(k, mw int, out *float32, outRow int, in *float32, inRow, cs int, w, bias, res *float32, resRow, c, h, act int) {
	p := (k - 1) / 2
	I := unsafe.Slice(in, (h-1)*inRow+(mw-1)*cs+c)
	W := unsafe.Slice(w, (k*k-1)*cs+c)
	O := unsafe.Slice(out, (h-1)*outRow+(mw-1)*cs+c)
	B := unsafe.Slice(bias, c)
	var R []float32
	if res != nil {
		R = unsafe.Slice(res, (h-1)*resRow+(mw-1)*cs+c)
	}
	ac := Act(act)
	var acc [64]float32
	for oy := 0; oy < h; oy++ {
		for c0 := 0; c0 < c; c0 += len(acc) {
			n := min(len(acc), c-c0)
			for ox := 0; ox < mw; ox++ {
				a := acc[:n]
				clear(a)
				for i := max(0, p-oy); i < min(k, h+p-oy); i++ {
					for j := max(0, p-ox); j < min(k, mw+p-ox); j++ {
						ip := I[(oy+i-p)*inRow+(ox+j-p)*cs+c0:][:n]
						wp := W[(i*k+j)*cs+c0:][:n]
						for ch := range a {
							a[ch] += ip[ch] * wp[ch]
						}
					}
				}
				var r []float32
				if R != nil {
					r = R[oy*resRow+ox*cs+c0:][:n]
				}
				dwStoreGo(O[oy*outRow+ox*cs+c0:][:n], a, B[c0:c0+n], r, ac)
			}
		}
	}
}

// dwFor returns the kernel for a kh x kw kernel with strides sh, sw at the
// highest level <= l that has one, and its vector width; or nil, and
// dwRowsGo runs.
func dwFor(l, kh, kw, sh, sw int) (dwFunc, int) {
	if kh == kw && sh == sw {
		for ; l > 0; l-- {
			if d := dwImpls[l]; d != nil {
				if f := d.kernels[[2]int{kh, sh}]; f != nil {
					return f, d.vw
				}
			}
		}
	}
	return nil, 16
}

// dwRowsGo is the reference for every depthwise kernel. For output rows
// oy < oh, pixels ox < ow and channels ch < c:
//
//	s := float32(0)
//	for i := 0; i < kh; i++ {
//		for j := 0; j < kw; j++ {
//			s += in[(oy*stride+i)*inRow+(ox*stride+j)*cs+ch] * w[(i*kw+j)*cs+ch]
//		}
//	}
//	s += bias[ch]
//	if res != nil {
//		s += res[oy*resRow+ox*cs+ch]
//	}
//	out[oy*outRow+ox*cs+ch] = act(s)
//
// in points at tap (0, 0) of output pixel (0, 0), inside a zero halo, so
// no bounds are checked; cs is the channel stride of in, out, res and the
// packed weights; the vertical stride equals the horizontal one.
func dwRowsGo(kh, kw int, out *float32, outRow int, in *float32, inRow, cs int, w, bias, res *float32, resRow, c, oh, ow, stride, act int) {
	I := unsafe.Slice(in, ((oh-1)*stride+kh-1)*inRow+((ow-1)*stride+kw-1)*cs+c)
	W := unsafe.Slice(w, (kh*kw-1)*cs+c)
	O := unsafe.Slice(out, (oh-1)*outRow+(ow-1)*cs+c)
	B := unsafe.Slice(bias, c)
	var R []float32
	if res != nil {
		R = unsafe.Slice(res, (oh-1)*resRow+(ow-1)*cs+c)
	}
	ac := Act(act)
	var acc [64]float32
	for oy := 0; oy < oh; oy++ {
		for c0 := 0; c0 < c; c0 += len(acc) {
			n := min(len(acc), c-c0)
			for ox := 0; ox < ow; ox++ {
				a := acc[:n]
				clear(a)
				for i := 0; i < kh; i++ {
					for j := 0; j < kw; j++ {
						ip := I[(oy*stride+i)*inRow+(ox*stride+j)*cs+c0:][:n]
						wp := W[(i*kw+j)*cs+c0:][:n]
						for ch := range a {
							a[ch] += ip[ch] * wp[ch]
						}
					}
				}
				var r []float32
				if R != nil {
					r = R[oy*resRow+ox*cs+c0:][:n]
				}
				dwStoreGo(O[oy*outRow+ox*cs+c0:][:n], a, B[c0:c0+n], r, ac)
			}
		}
	}
}

// dwStoreGo writes act(a + bias + res) to o, res nil for none: the
// end of every output pixel of the reference kernels.
func dwStoreGo(o, a, bias, res []float32, ac Act) {
	for ch := range a {
		s := a[ch] + bias[ch]
		if res != nil {
			s += res[ch]
		}
		o[ch] = ac.apply(s)
	}
}

// dwStripBytes bounds the input rows one depthwise kernel call reads
// (stride rows per output row) when the rows are cut into strips;
// dwStripMin is the input size above which they are. Measured on
// MobileNetV2-224's depthwise layers: strips of 128 KiB ran faster than
// strips of 64 KiB, and with AVX-512 vectors (a cache line) maps of up to
// 400 KB ran 0-6% slower in strips.
var (
	dwStripBytes = 128 << 10
	dwStripMin   = 512 << 10
	// dwPassBytes bounds the lines of input one channel vector's pass
	// over a strip reads (64 bytes per pixel, whatever the vector width),
	// kept in L1 for the next vector when vectors are half a line.
	dwPassBytes = 24 << 10
)

// Depthwise is a depthwise convolution (KindDepthwise): each of the C
// channels is convolved with its own KH x KW filter. The input needs a zero
// halo of Spec().Halo() pixels. Square kernels of size 3, 5 and 7 have
// vector kernels; other sizes run portable Go. A value is not safe for
// concurrent Runs.
type Depthwise struct {
	spec   ConvSpec
	packed []float32
	bias   []float32

	// per run
	out, in Tensor
	res     *Tensor
	f       dwFunc
	mapf    dwMapFunc // whole-map kernel, or nil
	nblk    int       // blocks of channel vectors
	nrb     int       // blocks of output rows
	vw      int
}

// PackDepthwise packs OIHW weights (C x 1 x KH x KW) tap-major with
// channels fastest: packed[(y*KW+x)*PadC(C)+c] = w[(c*KH+y)*KW+x], zero for
// c >= C.
func PackDepthwise(s ConvSpec, w []float32) ([]float32, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if k := s.Kind(); k != KindDepthwise {
		return nil, fmt.Errorf("runtime: PackDepthwise: spec is %s, not %s", k, KindDepthwise)
	}
	if err := s.checkWeights(w, nil); err != nil {
		return nil, err
	}
	cp := PadC(s.Cin)
	out := make([]float32, s.KH*s.KW*cp)
	for c := 0; c < s.Cin; c++ {
		for t := 0; t < s.KH*s.KW; t++ {
			out[t*cp+c] = w[c*s.KH*s.KW+t]
		}
	}
	return out, nil
}

// NewDepthwise builds the operator from weights packed by PackDepthwise and
// a bias of C floats (nil for none).
func NewDepthwise(s ConvSpec, packed, bias []float32) (*Depthwise, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if k := s.Kind(); k != KindDepthwise {
		return nil, fmt.Errorf("runtime: NewDepthwise: spec is %s, not %s", k, KindDepthwise)
	}
	if want := s.KH * s.KW * PadC(s.Cin); len(packed) != want {
		return nil, fmt.Errorf("runtime: NewDepthwise: packed weights have %d floats, want %d", len(packed), want)
	}
	if bias != nil && len(bias) != s.Cout {
		return nil, fmt.Errorf("runtime: NewDepthwise: bias has %d floats, want %d", len(bias), s.Cout)
	}
	return &Depthwise{spec: s.norm(), packed: packed, bias: padBias(bias, s.Cout)}, nil
}

// Spec returns the convolution's spec.
func (l *Depthwise) Spec() ConvSpec { return l.spec }

// Run computes out = act(dwconv(in) + bias + res). in needs a halo of at
// least Spec().Halo(); res may be nil or out itself; in must not overlap
// out.
func (l *Depthwise) Run(p *Pool, out, in Tensor, res *Tensor) error {
	s := l.spec
	if err := s.checkRun(out, in, res, s.Halo()); err != nil {
		return err
	}
	if in.CS != out.CS {
		return fmt.Errorf("runtime: conv depthwise: input channel stride %d, want %d", in.CS, out.CS)
	}
	l.out, l.in, l.res = out, in, res
	l.f, l.vw = dwFor(level(), s.KH, s.KW, s.StrideH, s.StrideW)
	l.mapf = dwMapFor(level(), &l.spec, in.W)
	// Threads take blocks of output rows when there are enough: a thread
	// then works on the same region of the map as in the layers before and
	// after (Pool), and reads the input rows that it wrote itself, from
	// its own cache. Maps of fewer than 4 rows per thread are split by
	// blocks of channel vectors: parts of one or two rows would each read
	// the kernel's halo rows and all the weights again (on two threads a
	// 7x7x1536 k7 layer ran 1.1x faster than on one split by rows, 1.7x
	// split by channels; BenchmarkSmallDepthwise).
	nv := (out.CS + l.vw - 1) / l.vw
	l.nblk, l.nrb = 1, 1
	// A depthwise multiply-add costs about two of a GEMM's (on the 28x28
	// net the depthwise kernels run at 35-47 GMAC/s, the 1x1 ones at
	// 50-80), so work counts each twice.
	work := 2 * int64(out.H*out.W) * int64(s.Cout*s.KH*s.KW)
	if n := p.Threads(); n > 1 && out.H < 4*n && nv >= 2*n {
		l.nblk = p.Parts(nv, work)
		if p.colSplit {
			// The GEMM before split its columns, the channels this
			// layer reads: split the same way whatever the size, so
			// each thread reads what it wrote rather than half of it
			// from the other core's cache (MobileNetV2's 7x7x960 k3
			// layers on 2 threads: 50 µs on the caller, 31 µs split;
			// 11.6 µs on one thread).
			l.nblk = p.split(nv, work)
		}
	} else {
		l.nrb = p.Parts(out.H, work)
	}
	p.Run(l, l.nblk*l.nrb)
	return nil
}

// Do implements Task: part = channel block * nrb + row block.
func (l *Depthwise) Do(part, parts int) {
	s := &l.spec
	cs := l.out.CS
	nv := (cs + l.vw - 1) / l.vw
	b, r := part/l.nrb, part%l.nrb
	y0, y1 := span(l.out.H, r, l.nrb)
	v0, v1 := span(nv, b, l.nblk)
	c0, c1 := v0*l.vw, min(v1*l.vw, cs)
	if c0 >= c1 || y0 >= y1 {
		return
	}
	var rp *float32
	resRow := 0
	if l.res != nil {
		resRow = l.res.RowStride()
	}
	if l.mapf != nil && y0 == 0 && y1 == l.out.H {
		// The whole map of these channels in one call, without the
		// padding (dwMapW wide maps).
		if l.res != nil {
			rp = &l.res.Data[l.res.Offset(0, 0)+c0]
		}
		l.mapf(&l.out.Data[l.out.Offset(0, 0)+c0], l.out.RowStride(), &l.in.Data[l.in.Offset(0, 0)+c0], l.in.RowStride(), cs,
			&l.packed[c0], &l.bias[c0], rp, resRow, c1-c0, l.out.H, int(s.Act))
		return
	}
	if l.f != nil {
		// The kernel runs channel vectors outermost, each over all its
		// rows. Strips of output rows whose input rows fit dwStripBytes
		// keep what one channel vector's pass reads in cache for the
		// next: when vectors are narrower than a cache line (the next
		// pass reads the rest of each line), or when the part's input is
		// too large for L2. A part reads only its channels c0..c1 of each
		// input pixel, so those are what count: a part of a 7x7x1536 map
		// split by channel blocks on two threads reads 0.3 MB, not the
		// map's 1 MB, and runs unstriped (its k7 layers 89-92 → 73-75
		// µs on two AVX-512 threads, in the ProxylessNAS GPU net).
		strip := y1 - y0
		rowBytes := 4 * (l.in.W + 2*l.in.Pad) * (c1 - c0)
		if 4*l.vw < 64 || rowBytes*((y1-y0-1)*s.StrideH+s.KH) > dwStripMin {
			strip = max(1, dwStripBytes/(rowBytes*s.StrideH))
			// But one channel vector's pass over a strip touches only a
			// line of each input pixel it reads; on a small map with
			// many channels that is a few KiB for the whole map, while
			// strips of few rows read the kernel's overlapping rows
			// again from L2, for every vector: a 7x7x1536 k7 map ran in
			// strips of one row, reading its input 7 times. Strips are
			// as high as keep a pass within dwPassBytes of lines
			// (ProxylessNAS GPU, AVX2: the depthwise layers 1068 → 938
			// µs, its 7x7 k7 layers 0.8x; AVX-512 0.97x; docs/perf.md).
			lineRow := 64 * (l.in.W + 2*l.in.Pad)
			if r := dwPassBytes / lineRow; r >= s.KH {
				strip = min(y1-y0, max(strip, (r-s.KH)/s.StrideH+1))
			}
		}
		for ; y0 < y1; y0 += strip {
			n := min(strip, y1-y0)
			ip := &l.in.Data[l.in.Offset(y0*s.StrideH-s.PadT, -s.PadL)+c0]
			op := &l.out.Data[l.out.Offset(y0, 0)+c0]
			if l.res != nil {
				rp = &l.res.Data[l.res.Offset(y0, 0)+c0]
			}
			l.f(op, l.out.RowStride(), ip, l.in.RowStride(), cs, &l.packed[c0], &l.bias[c0], rp, resRow,
				c1-c0, n, l.out.W, s.StrideW, int(s.Act))
		}
		return
	}
	// Portable path, one row at a time (it also covers unequal strides).
	for y := y0; y < y1; y++ {
		ip := &l.in.Data[l.in.Offset(y*s.StrideH-s.PadT, -s.PadL)+c0]
		op := &l.out.Data[l.out.Offset(y, 0)+c0]
		if l.res != nil {
			rp = &l.res.Data[l.res.Offset(y, 0)+c0]
		}
		dwRowsGo(s.KH, s.KW, op, 0, ip, l.in.RowStride(), cs, &l.packed[c0], &l.bias[c0], rp, 0,
			c1-c0, 1, l.out.W, s.StrideW, int(s.Act))
	}
}
