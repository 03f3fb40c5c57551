package pnasbe

import (
	"fmt"
	"reflect"
	"runtime"
	"strconv"
	"strings"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/pnasml/pnas/runtime/kernels"
)

// BackendName is the name the backend is registered under.
const BackendName = "pnas"

func init() {
	backends.Register(BackendName, func(config string) (backends.Backend, error) { return New(config) })
}

// Backend is the pnas GoMLX backend. It is safe for concurrent use:
// executables may run side by side, each with its own buffers.
type Backend struct {
	workers   int
	finalized bool
	keep      keep // buffers freed by executions, for the next ones
}

var _ backends.Backend = (*Backend)(nil)

// New returns a backend. config is a comma-separated list of options:
// "parallelism=N" runs each op with up to N goroutines (default
// GOMAXPROCS; 0 or less means the default).
func New(config string) (*Backend, error) {
	b := &Backend{workers: runtime.GOMAXPROCS(0)}
	for _, opt := range strings.Split(config, ",") {
		opt = strings.TrimSpace(opt)
		if opt == "" {
			continue
		}
		k, v, _ := strings.Cut(opt, "=")
		switch k {
		case "parallelism":
			n, err := strconv.Atoi(v)
			if err != nil {
				return nil, fmt.Errorf("pnas backend: option %q: want parallelism=N with an integer N", opt)
			}
			if n > 0 {
				b.workers = n
			}
		default:
			return nil, fmt.Errorf("pnas backend: unknown option %q (known: parallelism=N)", opt)
		}
	}
	return b, nil
}

// Workers returns the number of goroutines an op may use.
func (b *Backend) Workers() int { return b.workers }

func (b *Backend) Name() string   { return BackendName }
func (b *Backend) String() string { return BackendName }
func (b *Backend) Description() string {
	return fmt.Sprintf("pnas CPU backend (%d workers, kernel set %s)", b.workers, kernels.KernelSet())
}
func (b *Backend) NumDevices() int                             { return 1 }
func (b *Backend) DeviceDescription(backends.DeviceNum) string { return "CPU" }
func (b *Backend) Capabilities() backends.Capabilities {
	c := backends.Capabilities{Operations: map[backends.OpType]bool{}, DTypes: map[dtypes.DType]bool{}}
	for op := range supported {
		c.Operations[op] = true
	}
	for _, d := range []dtypes.DType{dtypes.Float32, dtypes.Float64, dtypes.Int32, dtypes.Int64, dtypes.Bool} {
		c.DTypes[d] = true
	}
	return c
}
func (b *Backend) Builder(name string) backends.Builder { return newBuilder(b, name) }
func (b *Backend) Finalize() {
	b.finalized = true
	b.keep.clear()
}
func (b *Backend) IsFinalized() bool { return b.finalized }

// Buffer is a tensor in Go memory: flat is a slice of the dtype's Go type.
type Buffer struct {
	shape shapes.Shape
	flat  any
	st    *storage // pooled storage of an intermediate value; nil otherwise
}

func (b *Backend) buf(x backends.Buffer) (*Buffer, error) {
	bb, ok := x.(*Buffer)
	if !ok || bb == nil {
		return nil, fmt.Errorf("pnas backend: buffer %T is not a pnas buffer", x)
	}
	return bb, nil
}

// makeFlat allocates a zeroed slice for a dtype.
func makeFlat(dt dtypes.DType, n int) any {
	switch dt {
	case dtypes.Float32:
		return make([]float32, n)
	case dtypes.Float64:
		return make([]float64, n)
	case dtypes.Int32:
		return make([]int32, n)
	case dtypes.Int64:
		return make([]int64, n)
	case dtypes.Bool:
		return make([]bool, n)
	}
	return reflect.MakeSlice(reflect.SliceOf(dt.GoType()), n, n).Interface()
}

func (b *Backend) BufferFinalize(x backends.Buffer) error {
	bb, err := b.buf(x)
	if err != nil {
		return err
	}
	bb.flat = nil
	return nil
}

func (b *Backend) BufferShape(x backends.Buffer) (shapes.Shape, error) {
	bb, err := b.buf(x)
	if err != nil {
		return shapes.Invalid(), err
	}
	return bb.shape, nil
}

func (b *Backend) BufferDeviceNum(x backends.Buffer) (backends.DeviceNum, error) {
	_, err := b.buf(x)
	return 0, err
}

func (b *Backend) BufferToFlatData(x backends.Buffer, flat any) error {
	bb, err := b.buf(x)
	if err != nil {
		return err
	}
	if bb.flat == nil {
		return fmt.Errorf("pnas backend: buffer used after finalization")
	}
	dst, src := reflect.ValueOf(flat), reflect.ValueOf(bb.flat)
	if dst.Kind() != reflect.Slice || dst.Type() != src.Type() || dst.Len() != src.Len() {
		return fmt.Errorf("pnas backend: BufferToFlatData: got %T of length %d, want %T of length %d",
			flat, dst.Len(), bb.flat, src.Len())
	}
	reflect.Copy(dst, src)
	return nil
}

func (b *Backend) BufferFromFlatData(_ backends.DeviceNum, flat any, shape shapes.Shape) (backends.Buffer, error) {
	src := reflect.ValueOf(flat)
	if src.Kind() != reflect.Slice || src.Type().Elem() != shape.DType.GoType() || src.Len() != shape.Size() {
		return nil, fmt.Errorf("pnas backend: BufferFromFlatData: got %T of length %d for shape %s", flat, src.Len(), shape)
	}
	out := makeFlat(shape.DType, shape.Size())
	reflect.Copy(reflect.ValueOf(out), src)
	return &Buffer{shape: shape.Clone(), flat: out}, nil
}

func (b *Backend) HasSharedBuffers() bool { return true }

func (b *Backend) NewSharedBuffer(_ backends.DeviceNum, shape shapes.Shape) (backends.Buffer, any, error) {
	flat := makeFlat(shape.DType, shape.Size())
	return &Buffer{shape: shape.Clone(), flat: flat}, flat, nil
}

func (b *Backend) BufferData(x backends.Buffer) (any, error) {
	bb, err := b.buf(x)
	if err != nil {
		return nil, err
	}
	return bb.flat, nil
}

func (b *Backend) BufferCopyToDevice(x backends.Buffer, _ backends.DeviceNum) (backends.Buffer, error) {
	bb, err := b.buf(x)
	if err != nil {
		return nil, err
	}
	return b.BufferFromFlatData(0, bb.flat, bb.shape)
}
