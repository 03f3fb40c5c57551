package shell

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"
	"unsafe"

	rt "github.com/pnasml/pnas/runtime"
)

// program is everything the generated main.go hands to run.
type program struct {
	target    string     // target the program was compiled for
	kernelSet string     // best kernel set compiled in ("go", "avx2", "avx512", "neon")
	weights   []byte     // the embedded little-endian float32 blob of every network
	nets      []*network // the compiled networks; the first is the default
}

// network describes one compiled model. Generated model files define one
// each.
type network struct {
	name        string
	id          string // content hash of the IR document and weights
	inC         int    // input channels, rows, columns (NCHW, batch 1)
	inH, inW    int
	mean, std   []float32 // per-channel input normalisation (may be empty)
	labels      []string  // class names (may be empty)
	outputs     int       // length of the output vector
	probOutput  bool      // the output is a softmax: logits are its input
	arenaFloats int       // activation arena size
	weightsOff  int       // offset of this network's weights in the blob, in floats
	weightsLen  int       // number of floats
	layers      []layer   // timed layers, in execution order
	build       func(w, arena []float32) (net, error)
}

// layer is one timed unit: the ops of one block of the search space, or
// one unannotated op.
type layer struct {
	name string
	key  string // latency-table key, empty when the model's blocks give none
	ops  []string
}

// net is an instantiated network: operators bound to weights and to
// tensors in the activation arena.
type net interface {
	input() rt.Tensor  // where the input goes
	output() rt.Tensor // the model output, a 1 x 1 x outputs tensor
	logits() rt.Tensor // the logits (the output, or the softmax's input)
	forward(p *rt.Pool, tm *timer) error
}

// instance is a network ready to run.
type instance struct {
	spec *network
	n    net
}

// instantiate decodes the network's weights from the blob into an aligned
// slice and builds its operators.
func instantiate(prog *program, spec *network) (*instance, error) {
	lo, hi := 4*spec.weightsOff, 4*(spec.weightsOff+spec.weightsLen)
	if spec.weightsOff < 0 || hi > len(prog.weights) {
		return nil, fmt.Errorf("network %s: weights [%d, %d) outside the %d-byte blob", spec.name, lo, hi, len(prog.weights))
	}
	w := alignedFloats(spec.weightsLen)
	for i := range w {
		w[i] = math.Float32frombits(binary.LittleEndian.Uint32(prog.weights[lo+4*i:]))
	}
	n, err := spec.build(w, alignedFloats(spec.arenaFloats))
	if err != nil {
		return nil, fmt.Errorf("network %s: %w", spec.name, err)
	}
	return &instance{spec: spec, n: n}, nil
}

// alignedFloats returns a zeroed slice whose first element is 64-byte
// aligned: from 1 MiB on (the weights and activation arena of the 224x224
// networks) in memory advised for huge pages where the system has them
// (hugeFloats).
func alignedFloats(n int) []float32 {
	if 4*n >= hugeFloatsFrom {
		if f := hugeFloats(n); f != nil {
			return f
		}
	}
	buf := make([]float32, n+16)
	for i := 0; i < 16; i++ {
		if addrMod64(&buf[i]) == 0 {
			return buf[i : i+n : i+n]
		}
	}
	return buf[:n:n]
}

// hugeFloatsFrom is the least size in bytes that alignedFloats asks
// hugeFloats for.
const hugeFloatsFrom = 1 << 20

func addrMod64(p *float32) uintptr { return uintptr(unsafe.Pointer(p)) & 63 }

// setInput loads a planar C x H x W sample into the input tensor; the
// whole tensor is cleared first, since its halo and channel padding share
// arena space with other tensors. It first wakes the pool's parked
// threads, so that they are back on their cores when the inference starts
// (rt.Pool.Wake).
func (in *instance) setInput(pool *rt.Pool, chw []float32) error {
	pool.Wake()
	t := in.n.input()
	clear(t.Data[:t.Len()])
	return t.FromCHW(chw)
}

// vector copies the first n channels of pixel (0, 0) of a 1 x 1 x n tensor.
func vector(t rt.Tensor, n int) []float32 {
	return append([]float32(nil), t.Data[t.Offset(0, 0):][:n]...)
}

// opError names the op whose operator failed.
func opError(op string, err error) error { return fmt.Errorf("op %s: %w", op, err) }

// flattenCHW writes the H x W x C map in as the planar vector (c, y, x)
// into the 1 x 1 x C*H*W tensor out, keeping out's channel padding zero.
func flattenCHW(out, in rt.Tensor) error {
	n := in.C * in.H * in.W
	if out.C != n || out.H != 1 || out.W != 1 {
		return fmt.Errorf("flatten: output %dx%dx%d, want 1x1x%d", out.H, out.W, out.C, n)
	}
	dst := out.Data[out.Offset(0, 0):][:out.CS]
	for y := 0; y < in.H; y++ {
		for x := 0; x < in.W; x++ {
			px := in.Data[in.Offset(y, x):][:in.C]
			for c, v := range px {
				dst[(c*in.H+y)*in.W+x] = v
			}
		}
	}
	clear(dst[n:])
	return nil
}

// softmaxVec computes the softmax of the first n channels of the 1 x 1
// tensor in into out, keeping out's channel padding zero.
func softmaxVec(out, in rt.Tensor, n int) error {
	dst := out.Data[out.Offset(0, 0):][:out.CS]
	if err := rt.Softmax(dst[:n], in.Data[in.Offset(0, 0):][:n]); err != nil {
		return err
	}
	clear(dst[n:])
	return nil
}

// timer records per-layer times of one forward pass. A nil timer records
// nothing; generated code calls it unconditionally.
type timer struct {
	start, last time.Time
	laps        []int64 // ns per layer of the current run
}

func (t *timer) begin() {
	if t == nil {
		return
	}
	t.start = time.Now()
	t.last = t.start
}

func (t *timer) lap(layer int) {
	if t == nil {
		return
	}
	now := time.Now()
	t.laps[layer] = int64(now.Sub(t.last))
	t.last = now
}

func (t *timer) total() int64 { return int64(t.last.Sub(t.start)) }
