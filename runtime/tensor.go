package runtime

import "fmt"

// ChannelAlign is the multiple to which PadC rounds channel counts. Every
// tensor an operator writes stores its channels with a stride of
// PadC(C), so that vector kernels never need a channel tail.
const ChannelAlign = 8

// PadC is the channel stride of a tensor of c channels: c rounded up to a
// multiple of ChannelAlign, plus 16 floats (one AVX-512 vector, a cache
// line) when that is at least 512 and a multiple of 128.
//
// The extra line keeps a pixel's stride from being a multiple of 8 cache
// lines. With such a stride (1536 channels: 96 lines) the pixels a
// depthwise kernel reads for one channel vector, and its weights (laid out
// with the same stride), all fall into a few of L1's 64 sets (2 sets for
// 1536 channels) and evict each other. Measured on the Intel Xeon, in
// the ProxylessNAS GPU net: its 7x7x1536 and 14x14x768 depthwise layers
// ran 12-22% faster with the extra line on one AVX-512 thread, 20-36%
// with AVX2 (docs/perf.md). A GEMM writing such a tensor computes only
// alignC(c) columns and stores zeros in the line (gemmCols), and the
// 1x1 layers read only their C channels, so the line costs them a store
// a pixel (a classifier reads it, with zero weights: 1.25% more weights
// for MobileNetV2's 1280 features). Smaller counts are left alone: a
// line more is a larger share of them, and their strides already spread
// over enough sets.
func PadC(c int) int {
	cs := alignC(c)
	if cs >= 512 && cs%128 == 0 {
		cs += 16
	}
	return cs
}

// alignC rounds a channel count up to a multiple of ChannelAlign.
func alignC(c int) int { return (c + ChannelAlign - 1) &^ (ChannelAlign - 1) }

// Tensor is a batch-1 activation in channels-last (HWC) layout with a zero
// halo of Pad pixels on every side.
//
// Element (y, x, c), for 0 <= y < H, 0 <= x < W, 0 <= c < C, lives at
// Data[((y+Pad)*(W+2*Pad) + x+Pad)*CS + c]. Channels C..CS-1 of every pixel
// and every halo pixel hold zero; operators rely on that and preserve it.
type Tensor struct {
	Data    []float32
	H, W, C int
	CS      int // channel stride: floats from one pixel to the next, >= C
	Pad     int // zero halo width in pixels
}

// NewTensor allocates a zeroed H x W x C tensor with channel stride PadC(c)
// and a halo of pad pixels.
func NewTensor(h, w, c, pad int) Tensor {
	return NewTensorCS(h, w, c, PadC(c), pad)
}

// NewTensorCS allocates a zeroed tensor with an explicit channel stride cs
// (cs >= c). Only a network's input tensor needs a stride other than PadC(c),
// for example cs = 3 for an RGB image read by a dense stem convolution.
func NewTensorCS(h, w, c, cs, pad int) Tensor {
	t := Tensor{H: h, W: w, C: c, CS: cs, Pad: pad}
	t.Data = make([]float32, t.Len())
	return t
}

// Len is the number of floats the tensor's buffer needs, halo included.
func (t Tensor) Len() int { return (t.H + 2*t.Pad) * (t.W + 2*t.Pad) * t.CS }

// RowStride is the number of floats from one pixel row to the next.
func (t Tensor) RowStride() int { return (t.W + 2*t.Pad) * t.CS }

// Offset is the index in Data of channel 0 of pixel (y, x). y and x may be
// negative or past the edge by up to Pad pixels (the halo).
func (t Tensor) Offset(y, x int) int {
	return ((y+t.Pad)*(t.W+2*t.Pad) + x + t.Pad) * t.CS
}

// At returns element (y, x, c).
func (t Tensor) At(y, x, c int) float32 { return t.Data[t.Offset(y, x)+c] }

// Set stores element (y, x, c).
func (t Tensor) Set(y, x, c int, v float32) { t.Data[t.Offset(y, x)+c] = v }

// Dense reports whether pixels are stored back to back (no halo), so that
// the H*W pixels form one matrix of H*W rows with row stride CS.
func (t Tensor) Dense() bool { return t.Pad == 0 }

// Check reports whether the tensor's fields are consistent with its buffer.
// name identifies the tensor in the error.
func (t Tensor) Check(name string) error {
	switch {
	case t.H <= 0 || t.W <= 0 || t.C <= 0:
		return fmt.Errorf("runtime: tensor %s: shape %dx%dx%d must be positive", name, t.H, t.W, t.C)
	case t.CS < t.C:
		return fmt.Errorf("runtime: tensor %s: channel stride %d < channels %d", name, t.CS, t.C)
	case t.Pad < 0:
		return fmt.Errorf("runtime: tensor %s: negative halo %d", name, t.Pad)
	case len(t.Data) < t.Len():
		return fmt.Errorf("runtime: tensor %s: buffer has %d floats, shape %dx%dx%d (stride %d, halo %d) needs %d",
			name, len(t.Data), t.H, t.W, t.C, t.CS, t.Pad, t.Len())
	}
	return nil
}

// checkOut validates a tensor an operator writes: it must have the standard
// channel stride PadC(C).
func checkOut(name string, t Tensor, h, w, c int) error {
	if err := t.Check(name); err != nil {
		return err
	}
	if t.H != h || t.W != w || t.C != c {
		return fmt.Errorf("runtime: tensor %s: shape %dx%dx%d, want %dx%dx%d", name, t.H, t.W, t.C, h, w, c)
	}
	if t.CS != PadC(c) {
		return fmt.Errorf("runtime: tensor %s: channel stride %d, want PadC(%d) = %d", name, t.CS, c, PadC(c))
	}
	return nil
}

// ZeroHalo writes zero to the tensor's halo and to the channel padding of
// its interior pixels. A buffer reused for a tensor of another shape
// (memory planning) needs it once after each reuse before an operator that
// reads the halo; operators themselves never write the halo and always
// write zeros to the channel padding.
func (t Tensor) ZeroHalo() { t.zeroHaloRows(-t.Pad, t.H+t.Pad) }

// ZeroHaloOn is ZeroHalo run on p's threads: the rows are split the way
// operators split their output rows, so each thread clears the halo next
// to the rows it is about to write, in its own cache, rather than one
// thread clearing lines that the other cores hold. It allocates nothing.
func (t Tensor) ZeroHaloOn(p *Pool) {
	if p.Threads() == 1 {
		t.ZeroHalo()
		return
	}
	// work in multiply-add equivalents: clearing a float costs about what
	// four multiply-adds of a SIMD kernel do
	halo := int64(t.RowStride())*int64(2*t.Pad) + int64(t.H)*int64(2*t.Pad*t.CS+t.W*(t.CS-t.C))
	p.halo.t = t
	p.Run(&p.halo, p.Parts(t.H, 4*halo))
	p.halo.t = Tensor{}
}

// haloTask is ZeroHaloOn's task; a Pool holds one so that Run allocates
// nothing.
type haloTask struct{ t Tensor }

// Do clears the halo of part of the rows; the first and last parts also
// take the halo rows above and below.
func (h *haloTask) Do(part, parts int) {
	t := h.t
	y0, y1 := span(t.H, part, parts)
	if part == 0 {
		y0 = -t.Pad
	}
	if part == parts-1 {
		y1 = t.H + t.Pad
	}
	t.zeroHaloRows(y0, y1)
}

// zeroHaloRows clears the halo and channel padding of rows [y0, y1), y
// counted from the first interior row (the halo rows are negative and
// from H on).
func (t Tensor) zeroHaloRows(y0, y1 int) {
	rs := t.RowStride()
	for y := y0; y < y1; y++ {
		row := t.Data[(y+t.Pad)*rs:][:rs]
		if y < 0 || y >= t.H {
			clear(row)
			continue
		}
		clear(row[:t.Pad*t.CS])
		clear(row[(t.W+t.Pad)*t.CS:])
		if t.CS > t.C {
			for x := 0; x < t.W; x++ {
				clear(row[(x+t.Pad)*t.CS+t.C : (x+t.Pad+1)*t.CS])
			}
		}
	}
}

// FromHWC copies an unpadded H x W x C array (channel fastest) into t's
// interior. It is how a program loads its input image.
func (t Tensor) FromHWC(src []float32) error {
	if len(src) != t.H*t.W*t.C {
		return fmt.Errorf("runtime: FromHWC: got %d floats, want %d (%dx%dx%d)", len(src), t.H*t.W*t.C, t.H, t.W, t.C)
	}
	for y := 0; y < t.H; y++ {
		for x := 0; x < t.W; x++ {
			copy(t.Data[t.Offset(y, x):][:t.C], src[(y*t.W+x)*t.C:][:t.C])
		}
	}
	return nil
}

// FromCHW copies a planar C x H x W array (the ONNX / PyTorch order for
// batch 1) into t's interior.
func (t Tensor) FromCHW(src []float32) error {
	if len(src) != t.H*t.W*t.C {
		return fmt.Errorf("runtime: FromCHW: got %d floats, want %d (%dx%dx%d)", len(src), t.H*t.W*t.C, t.C, t.H, t.W)
	}
	for y := 0; y < t.H; y++ {
		for x := 0; x < t.W; x++ {
			o := t.Offset(y, x)
			for c := 0; c < t.C; c++ {
				t.Data[o+c] = src[(c*t.H+y)*t.W+x]
			}
		}
	}
	return nil
}

// ToHWC returns t's interior as an unpadded H x W x C array.
func (t Tensor) ToHWC() []float32 {
	dst := make([]float32, t.H*t.W*t.C)
	for y := 0; y < t.H; y++ {
		for x := 0; x < t.W; x++ {
			copy(dst[(y*t.W+x)*t.C:][:t.C], t.Data[t.Offset(y, x):][:t.C])
		}
	}
	return dst
}

// Act is the activation applied at the end of an operator's epilogue.
type Act int

// Activations. The values are part of the assembly kernels' ABI.
const (
	ActNone  Act = 0
	ActReLU  Act = 1
	ActReLU6 Act = 2
)

// String returns "none", "relu" or "relu6".
func (a Act) String() string {
	switch a {
	case ActNone:
		return "none"
	case ActReLU:
		return "relu"
	case ActReLU6:
		return "relu6"
	}
	return fmt.Sprintf("Act(%d)", int(a))
}

func (a Act) valid() bool { return a >= ActNone && a <= ActReLU6 }

// apply is the scalar activation.
func (a Act) apply(v float32) float32 {
	switch a {
	case ActReLU:
		if v < 0 {
			return 0
		}
	case ActReLU6:
		if v < 0 {
			return 0
		}
		if v > 6 {
			return 6
		}
	}
	return v
}
