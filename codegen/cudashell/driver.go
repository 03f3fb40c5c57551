package cudashell

import (
	"errors"
	"fmt"
	"unsafe"

	"github.com/ebitengine/purego"
)

// The CUDA driver API, loaded from libcuda.so.1 at run time with purego:
// the program is built with cgo off and needs neither the CUDA toolkit nor
// a driver to build. Every call goes through call, which turns a CUresult
// other than CUDA_SUCCESS into an error naming the function and the
// driver's name for the result.

// errNoDriver is the one line a program prints on a machine without the
// NVIDIA driver.
var errNoDriver = errors.New("no CUDA driver: libcuda.so.1 not found")

// errNoDevice is the one line a program prints when the driver finds no
// GPU.
var errNoDevice = errors.New("no CUDA device")

// CUDA constants used here (cuda.h).
const (
	cudaErrorNoDevice         = 100
	attrComputeCapabilityMajr = 75
	attrComputeCapabilityMinr = 76
	jitInfoLogBuffer          = 3
	jitInfoLogBufferSize      = 4
	jitErrorLogBuffer         = 5
	jitErrorLogBufferSize     = 6
	streamNonBlocking         = 1
	captureModeThreadLocal    = 1
)

// driverFuncs are the entry points the program uses.
var driverFuncs = []string{
	"cuInit", "cuDeviceGetCount", "cuDeviceGet", "cuDeviceGetName", "cuDeviceGetAttribute",
	"cuDevicePrimaryCtxRetain", "cuCtxSetCurrent", "cuGetErrorName",
	"cuModuleLoadDataEx", "cuModuleGetFunction",
	"cuMemAlloc_v2", "cuMemFree_v2", "cuMemcpyHtoDAsync_v2", "cuMemcpyDtoHAsync_v2",
	"cuStreamCreate", "cuStreamSynchronize", "cuLaunchKernel",
	"cuEventCreate", "cuEventRecord", "cuEventSynchronize", "cuEventElapsedTime",
	"cuStreamBeginCapture_v2", "cuStreamEndCapture", "cuGraphInstantiateWithFlags", "cuGraphLaunch",
}

// optionalFuncs are used when the driver has them: a context of the
// program's own, else the device's primary context.
var optionalFuncs = []string{"cuCtxCreate_v2", "cuCtxDestroy_v2"}

// driver is the loaded libcuda with a context on one device. Its methods
// must run on the OS thread that created it (run locks the main goroutine
// to its thread).
type driver struct {
	fn      map[string]uintptr
	dev     int32
	ctx     uintptr
	primary bool // ctx is the device's primary context (not destroyed at close)
	stream  uintptr
	name    string // the device's name
	major   int32  // compute capability
	minor   int32
}

// loader opens a shared library and looks its symbols up.
type loader struct {
	open func(name string) (uintptr, error)
	sym  func(lib uintptr, name string) (uintptr, error)
}

// system loads libraries with purego, through the system's dynamic
// loader.
var system = loader{
	open: func(name string) (uintptr, error) { return purego.Dlopen(name, purego.RTLD_NOW|purego.RTLD_GLOBAL) },
	sym:  purego.Dlsym,
}

// openDriver loads libcuda.so.1 and creates a context on device 0.
func openDriver(ld loader) (*driver, error) {
	lib, err := ld.open("libcuda.so.1")
	if err != nil {
		return nil, errNoDriver
	}
	d := &driver{fn: map[string]uintptr{}}
	for _, name := range driverFuncs {
		sym, err := ld.sym(lib, name)
		if err != nil || sym == 0 {
			return nil, fmt.Errorf("CUDA driver: libcuda.so.1 has no %s (driver too old?)", name)
		}
		d.fn[name] = sym
	}
	for _, name := range optionalFuncs {
		if sym, err := ld.sym(lib, name); err == nil && sym != 0 {
			d.fn[name] = sym
		}
	}
	if r := d.raw("cuInit", 0); r != 0 {
		if r == cudaErrorNoDevice {
			return nil, errNoDevice
		}
		return nil, d.err("cuInit", r)
	}
	var count int32
	if err := d.call("cuDeviceGetCount", uintptr(unsafe.Pointer(&count))); err != nil {
		return nil, err
	}
	if count == 0 {
		return nil, errNoDevice
	}
	if err := d.call("cuDeviceGet", uintptr(unsafe.Pointer(&d.dev)), 0); err != nil {
		return nil, err
	}
	name := make([]byte, 256)
	if err := d.call("cuDeviceGetName", uintptr(unsafe.Pointer(&name[0])), uintptr(len(name)), uintptr(d.dev)); err != nil {
		return nil, err
	}
	d.name = cString(name)
	if err := d.call("cuDeviceGetAttribute", uintptr(unsafe.Pointer(&d.major)), attrComputeCapabilityMajr, uintptr(d.dev)); err != nil {
		return nil, err
	}
	if err := d.call("cuDeviceGetAttribute", uintptr(unsafe.Pointer(&d.minor)), attrComputeCapabilityMinr, uintptr(d.dev)); err != nil {
		return nil, err
	}
	if _, ok := d.fn["cuCtxCreate_v2"]; ok {
		if err := d.call("cuCtxCreate_v2", uintptr(unsafe.Pointer(&d.ctx)), 0, uintptr(d.dev)); err != nil {
			return nil, err
		}
	} else {
		if err := d.call("cuDevicePrimaryCtxRetain", uintptr(unsafe.Pointer(&d.ctx)), uintptr(d.dev)); err != nil {
			return nil, err
		}
		if err := d.call("cuCtxSetCurrent", d.ctx); err != nil {
			return nil, err
		}
		d.primary = true
	}
	if err := d.call("cuStreamCreate", uintptr(unsafe.Pointer(&d.stream)), streamNonBlocking); err != nil {
		return nil, err
	}
	return d, nil
}

func cString(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

// raw calls a driver function and returns its CUresult.
// raw and call take pointers converted to uintptr at their call sites;
// go:uintptrescapes moves what they point to off the goroutine stack, which
// may move while the driver calls back into Go (the tests' fake driver).
//
//go:uintptrescapes
func (d *driver) raw(name string, args ...uintptr) int32 {
	r, _, _ := purego.SyscallN(d.fn[name], args...)
	return int32(r)
}

//go:uintptrescapes
func (d *driver) call(name string, args ...uintptr) error {
	if r := d.raw(name, args...); r != 0 {
		return d.err(name, r)
	}
	return nil
}

// err names a failed call and the driver's name for its result.
func (d *driver) err(name string, r int32) error {
	var s *byte
	msg := fmt.Sprintf("error %d", r)
	if d.raw("cuGetErrorName", uintptr(r), uintptr(unsafe.Pointer(&s))) == 0 && s != nil {
		msg = fmt.Sprintf("%s (%d)", goString(s), r)
	}
	return fmt.Errorf("CUDA %s: %s", name, msg)
}

// goString copies a NUL-terminated C string.
func goString(p *byte) string {
	var b []byte
	for q := unsafe.Pointer(p); *(*byte)(q) != 0; q = unsafe.Add(q, 1) {
		b = append(b, *(*byte)(q))
	}
	return string(b)
}

// loadModule compiles PTX text for the device; a JIT failure returns the
// driver's error log.
func (d *driver) loadModule(ptx string) (uintptr, error) {
	image := append([]byte(ptx), 0)
	errLog := make([]byte, 16<<10)
	infoLog := make([]byte, 16<<10)
	opts := []int32{jitErrorLogBuffer, jitErrorLogBufferSize, jitInfoLogBuffer, jitInfoLogBufferSize}
	vals := []uintptr{uintptr(unsafe.Pointer(&errLog[0])), uintptr(len(errLog)), uintptr(unsafe.Pointer(&infoLog[0])), uintptr(len(infoLog))}
	var mod uintptr
	r := d.raw("cuModuleLoadDataEx", uintptr(unsafe.Pointer(&mod)), uintptr(unsafe.Pointer(&image[0])),
		uintptr(len(opts)), uintptr(unsafe.Pointer(&opts[0])), uintptr(unsafe.Pointer(&vals[0])))
	if r != 0 {
		return 0, fmt.Errorf("%w; JIT log: %s", d.err("cuModuleLoadDataEx", r), cString(errLog))
	}
	return mod, nil
}

func (d *driver) function(mod uintptr, name string) (uintptr, error) {
	cname := append([]byte(name), 0)
	var f uintptr
	err := d.call("cuModuleGetFunction", uintptr(unsafe.Pointer(&f)), mod, uintptr(unsafe.Pointer(&cname[0])))
	return f, err
}

func (d *driver) alloc(bytes int) (uint64, error) {
	var p uint64
	err := d.call("cuMemAlloc_v2", uintptr(unsafe.Pointer(&p)), uintptr(max(bytes, 4)))
	return p, err
}

// The copies go through the program's stream, ordered with its kernels,
// and wait for it: host buffers are pageable Go memory.

func (d *driver) upload(dst uint64, src []float32) error {
	if len(src) == 0 {
		return nil
	}
	return d.uploadBytes(dst, unsafe.Slice((*byte)(unsafe.Pointer(&src[0])), 4*len(src)))
}

func (d *driver) uploadBytes(dst uint64, src []byte) error {
	if len(src) == 0 {
		return nil
	}
	if err := d.call("cuMemcpyHtoDAsync_v2", uintptr(dst), uintptr(unsafe.Pointer(&src[0])), uintptr(len(src)), d.stream); err != nil {
		return err
	}
	return d.call("cuStreamSynchronize", d.stream)
}

func (d *driver) download(dst []float32, src uint64) error {
	if len(dst) == 0 {
		return nil
	}
	if err := d.call("cuMemcpyDtoHAsync_v2", uintptr(unsafe.Pointer(&dst[0])), uintptr(src), uintptr(4*len(dst)), d.stream); err != nil {
		return err
	}
	return d.call("cuStreamSynchronize", d.stream)
}

// launch starts f on the program's stream; params points to the array of
// pointers to the argument values.
func (d *driver) launch(f uintptr, gx, gy, threads int, params *uintptr) error {
	return d.call("cuLaunchKernel", f, uintptr(gx), uintptr(gy), 1, uintptr(threads), 1, 1, 0, d.stream,
		uintptr(unsafe.Pointer(params)), 0)
}

func (d *driver) event() (uintptr, error) {
	var e uintptr
	err := d.call("cuEventCreate", uintptr(unsafe.Pointer(&e)), 0)
	return e, err
}

func (d *driver) record(e uintptr) error { return d.call("cuEventRecord", e, d.stream) }

// elapsed waits for event b and returns the time from a to b in
// nanoseconds.
func (d *driver) elapsed(a, b uintptr) (int64, error) {
	if err := d.call("cuEventSynchronize", b); err != nil {
		return 0, err
	}
	var ms float32
	if err := d.call("cuEventElapsedTime", uintptr(unsafe.Pointer(&ms)), a, b); err != nil {
		return 0, err
	}
	return int64(float64(ms) * 1e6), nil
}

func (d *driver) sync() error { return d.call("cuStreamSynchronize", d.stream) }

// capture records what run launches on the stream as a CUDA graph and
// returns the executable graph.
func (d *driver) capture(run func() error) (uintptr, error) {
	if err := d.call("cuStreamBeginCapture_v2", d.stream, captureModeThreadLocal); err != nil {
		return 0, err
	}
	runErr := run()
	var graph, exec uintptr
	if err := d.call("cuStreamEndCapture", d.stream, uintptr(unsafe.Pointer(&graph))); err != nil {
		return 0, err
	}
	if runErr != nil {
		return 0, runErr
	}
	err := d.call("cuGraphInstantiateWithFlags", uintptr(unsafe.Pointer(&exec)), graph, 0)
	return exec, err
}

func (d *driver) launchGraph(exec uintptr) error { return d.call("cuGraphLaunch", exec, d.stream) }

func (d *driver) close() {
	if d.ctx != 0 && !d.primary {
		d.raw("cuCtxDestroy_v2", d.ctx)
	}
}
