package pnasbe

import (
	"fmt"
	"slices"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/shapeinference"
	"github.com/pnasml/pnas/runtime/kernels"
)

// Depthwise convolutions are the backend's only convolutions, in the
// searcher's layout [C, N, H, W] with kernels [C, 1, k, k], square kernels,
// equal strides and zero padding k/2. ConvGeneral recognises the three
// passes as a framework writes them:
//
//   - forward: channel groups = C, stride s, padding (p, p), p = k/2;
//   - input gradient: the output gradient dilated by s (input dilation),
//     the kernel reversed spatially, stride 1, padding (k-1-p, k-1-p+r)
//     with r = (H+2p-k) mod s (per axis); for s = 1 this is a forward
//     pass;
//   - kernel gradient: x with its channel axis as the batch, the output
//     gradient as the kernel, batch groups = C, kernel dilation s, padding
//     (p, p-r).
//
// Other convolutions answer an error.

type convKind int

const (
	convForward convKind = iota
	convBackwardData
	convBackwardFilter
)

type convAttr struct {
	kind    convKind
	c, n    int // channels, batch
	h, w    int // input spatial size of the forward pass
	k, s    int
	reverse bool // backward data: the kernel input is reversed
}

// cnhw is the [C, N, H, W] axes configuration with kernels [C, 1, k, k].
var cnhw = backends.ConvolveAxesConfig{
	InputBatch: 1, InputChannels: 0, InputSpatial: []int{2, 3},
	KernelInputChannels: 1, KernelOutputChannels: 0, KernelSpatial: []int{2, 3},
	OutputBatch: 1, OutputChannels: 0, OutputSpatial: []int{2, 3},
}

// filterAxes is the kernel-gradient configuration: the input's batch axis
// is its channel axis.
var filterAxes = backends.ConvolveAxesConfig{
	InputBatch: 0, InputChannels: 1, InputSpatial: []int{2, 3},
	KernelInputChannels: 1, KernelOutputChannels: 0, KernelSpatial: []int{2, 3},
	OutputBatch: 1, OutputChannels: 0, OutputSpatial: []int{2, 3},
}

func sameAxes(a, b backends.ConvolveAxesConfig) bool {
	return a.InputBatch == b.InputBatch && a.InputChannels == b.InputChannels && slices.Equal(a.InputSpatial, b.InputSpatial) &&
		a.KernelInputChannels == b.KernelInputChannels && a.KernelOutputChannels == b.KernelOutputChannels &&
		slices.Equal(a.KernelSpatial, b.KernelSpatial) && a.OutputBatch == b.OutputBatch &&
		a.OutputChannels == b.OutputChannels && slices.Equal(a.OutputSpatial, b.OutputSpatial)
}

func allEq(v []int, x int) bool {
	for _, e := range v {
		if e != x {
			return false
		}
	}
	return true
}

func pair(v []int) (int, bool) {
	if len(v) == 0 {
		return 1, true
	}
	return v[0], len(v) == 2 && v[0] == v[1]
}

func (b *Builder) ConvGeneral(input, kernel backends.Op, axes backends.ConvolveAxesConfig, strides []int,
	paddings [][2]int, inputDilations, kernelDilations []int, channelGroups, batchGroups int) (backends.Op, error) {
	ns, err := b.in(input, kernel)
	if err != nil {
		return nil, err
	}
	x, w := ns[0], ns[1]
	out, err := shapeinference.ConvGeneralOp(x.shape, w.shape, axes, strides, paddings, inputDilations, kernelDilations, channelGroups, batchGroups)
	if err != nil {
		return nil, err
	}
	a, err := classifyConv(x, w, out.Dimensions, axes, strides, paddings, inputDilations, kernelDilations, channelGroups, batchGroups)
	if err != nil {
		return nil, fmt.Errorf("pnas backend: ConvGeneral of %s with %s: %w", x.shape, w.shape, err)
	}
	return b.node(backends.OpTypeConvGeneral, out, a, x, w), nil
}

func classifyConv(x, w *Node, out []int, axes backends.ConvolveAxesConfig, strides []int, pads [][2]int,
	inDil, kDil []int, cg, bg int) (*convAttr, error) {
	xd, wd := x.shape.Dimensions, w.shape.Dimensions
	if len(xd) != 4 || len(pads) != 2 {
		return nil, fmt.Errorf("only 2D depthwise convolutions are implemented")
	}
	st, ok1 := pair(strides)
	id, ok2 := pair(inDil)
	kdl, ok3 := pair(kDil)
	if !ok1 || !ok2 || !ok3 {
		return nil, fmt.Errorf("strides and dilations must be equal on both axes")
	}
	switch {
	case sameAxes(axes, cnhw) && bg == 1 && cg == xd[0] && wd[0] == xd[0] && wd[1] == 1 && wd[2] == wd[3] && kdl == 1:
		c, n, k := xd[0], xd[1], wd[2]
		p := k / 2
		if id == 1 && pads[0] == [2]int{p, p} && pads[1] == [2]int{p, p} {
			return &convAttr{kind: convForward, c: c, n: n, h: xd[2], w: xd[3], k: k, s: st}, nil
		}
		// Input gradient: x is dy [C, N, ho, wo], out is [C, N, H, W].
		s := id
		if st != 1 || s < 1 || out[2] < 1 || out[3] < 1 {
			break
		}
		h, wdt := out[2], out[3]
		rh, rw := (h+2*p-k)%s, (wdt+2*p-k)%s
		if (h+2*p-k)/s+1 != xd[2] || (wdt+2*p-k)/s+1 != xd[3] || pads[0] != [2]int{k - 1 - p, k - 1 - p + rh} || pads[1] != [2]int{k - 1 - p, k - 1 - p + rw} {
			break
		}
		return &convAttr{kind: convBackwardData, c: c, n: n, h: h, w: wdt, k: k, s: s}, nil
	case sameAxes(axes, filterAxes) && cg == 1 && bg == xd[0] && wd[0] == xd[0] && wd[1] == xd[1] && st == 1 && id == 1 &&
		out[0] == xd[0] && out[1] == 1 && out[2] == out[3]:
		c, n, h, wdt, k, s := xd[0], xd[1], xd[2], xd[3], out[2], kdl
		p := k / 2
		rh, rw := (h+2*p-k)%s, (wdt+2*p-k)%s
		if (h+2*p-k)/s+1 != wd[2] || (wdt+2*p-k)/s+1 != wd[3] || pads[0] != [2]int{p, p - rh} || pads[1] != [2]int{p, p - rw} {
			break
		}
		return &convAttr{kind: convBackwardFilter, c: c, n: n, h: h, w: wdt, k: k, s: s}, nil
	}
	return nil, fmt.Errorf("not a depthwise pass in the [C, N, H, W] layout (the only convolutions this backend implements)")
}

func (b *Builder) Reverse(x backends.Op, axes ...int) (backends.Op, error) {
	n, err := b.in1(x)
	if err != nil {
		return nil, err
	}
	for _, a := range axes {
		if a < 0 || a >= n.shape.Rank() {
			return nil, fmt.Errorf("pnas backend: Reverse axis %d of %s", a, n.shape)
		}
	}
	return b.node(backends.OpTypeReverse, n.shape, slices.Clone(axes), n), nil
}

func (r *run) reverse(x *Buffer, axes []int, out *Buffer) error {
	dims := x.shape.Dimensions
	ss := rowStrides(dims)
	base := 0
	for _, a := range axes {
		base += (dims[a] - 1) * ss[a]
		ss[a] = -ss[a]
	}
	return copyBox(out.flat, 0, rowStrides(dims), x.flat, base, ss, dims, r.workers)
}

func (r *run) conv(x, w *Buffer, a *convAttr, out *Buffer) error {
	switch o := out.flat.(type) {
	case []float32:
		xf, wf := x.flat.([]float32), w.flat.([]float32)
		switch a.kind {
		case convForward:
			kernels.DepthwiseForward(xf, a.c, a.n, a.h, a.w, wf, a.k, a.s, o, r.workers)
		case convBackwardData:
			wr := make([]float32, len(wf))
			flipKernels(wr, wf, a.c, a.k)
			kernels.DepthwiseBackwardData(xf, a.c, a.n, a.h, a.w, wr, a.k, a.s, o, r.workers)
		case convBackwardFilter:
			kernels.DepthwiseBackwardFilter(xf, wf, a.c, a.n, a.h, a.w, a.k, a.s, o, r.workers)
		}
	case []float64:
		xf, wf := x.flat.([]float64), w.flat.([]float64)
		switch a.kind {
		case convForward:
			dwForward(xf, a.c, a.n, a.h, a.w, wf, a.k, a.s, o)
		case convBackwardData:
			wr := make([]float64, len(wf))
			flipKernels(wr, wf, a.c, a.k)
			dwBackwardData(xf, a.c, a.n, a.h, a.w, wr, a.k, a.s, o)
		case convBackwardFilter:
			dwBackwardFilter(xf, wf, a.c, a.n, a.h, a.w, a.k, a.s, o)
		}
	default:
		return fmt.Errorf("ConvGeneral of %s not supported", out.shape.DType)
	}
	return nil
}

// flipKernels reverses each k×k kernel of w spatially.
func flipKernels[T any](dst, w []T, c, k int) {
	kk := k * k
	for ch := 0; ch < c; ch++ {
		for i := 0; i < kk; i++ {
			dst[ch*kk+i] = w[ch*kk+kk-1-i]
		}
	}
}

func outSize(h, k, s int) int { return (h+2*(k/2)-k)/s + 1 }

// dwForward is the float64 depthwise forward pass (direct loops).
func dwForward(x []float64, c, n, h, wd int, w []float64, k, s int, y []float64) {
	ho, wo, p := outSize(h, k, s), outSize(wd, k, s), k/2
	for cn := 0; cn < c*n; cn++ {
		wk := w[(cn/n)*k*k:]
		xi, yo := x[cn*h*wd:], y[cn*ho*wo:]
		for i := 0; i < ho; i++ {
			for j := 0; j < wo; j++ {
				acc := 0.0
				for a := 0; a < k; a++ {
					for b := 0; b < k; b++ {
						if r, q := i*s+a-p, j*s+b-p; r >= 0 && r < h && q >= 0 && q < wd {
							acc += xi[r*wd+q] * wk[a*k+b]
						}
					}
				}
				yo[i*wo+j] = acc
			}
		}
	}
}

// dwBackwardData is the float64 input gradient.
func dwBackwardData(dy []float64, c, n, h, wd int, w []float64, k, s int, dx []float64) {
	ho, wo, p := outSize(h, k, s), outSize(wd, k, s), k/2
	clear(dx[:c*n*h*wd])
	for cn := 0; cn < c*n; cn++ {
		wk := w[(cn/n)*k*k:]
		dxi, dyo := dx[cn*h*wd:], dy[cn*ho*wo:]
		for i := 0; i < ho; i++ {
			for j := 0; j < wo; j++ {
				v := dyo[i*wo+j]
				for a := 0; a < k; a++ {
					for b := 0; b < k; b++ {
						if r, q := i*s+a-p, j*s+b-p; r >= 0 && r < h && q >= 0 && q < wd {
							dxi[r*wd+q] += v * wk[a*k+b]
						}
					}
				}
			}
		}
	}
}

// dwBackwardFilter is the float64 kernel gradient.
func dwBackwardFilter(x, dy []float64, c, n, h, wd int, k, s int, dw []float64) {
	ho, wo, p := outSize(h, k, s), outSize(wd, k, s), k/2
	clear(dw[:c*k*k])
	for cn := 0; cn < c*n; cn++ {
		dwk := dw[(cn/n)*k*k:]
		xi, dyo := x[cn*h*wd:], dy[cn*ho*wo:]
		for i := 0; i < ho; i++ {
			for j := 0; j < wo; j++ {
				v := dyo[i*wo+j]
				for a := 0; a < k; a++ {
					for b := 0; b < k; b++ {
						if r, q := i*s+a-p, j*s+b-p; r >= 0 && r < h && q >= 0 && q < wd {
							dwk[a*k+b] += v * xi[r*wd+q]
						}
					}
				}
			}
		}
	}
}
