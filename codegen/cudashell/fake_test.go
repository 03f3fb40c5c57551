package cudashell

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unsafe"

	"github.com/ebitengine/purego"

	"github.com/pnasml/pnas/codegen/gpu"
	"github.com/pnasml/pnas/internal/testnet"
	"github.com/pnasml/pnas/ir"
	"github.com/pnasml/pnas/ir/interp"
	"github.com/pnasml/pnas/ir/pass"
)

// fakeCUDA is a CUDA driver in Go behind C function pointers (purego
// callbacks): device memory is Go memory, and a kernel launch runs the
// kernel's description in the emulator of package codegen/gpu. It lets
// the tests run the program's real driver calls without a GPU.
type fakeCUDA struct {
	t         *testing.T
	kernels   map[string]*gpu.Kernel
	funcs     []*gpu.Kernel
	slabs     [][]float32
	ptx       string
	capturing bool
	graph     []fakeLaunch
	clock     int64
	events    map[uintptr]int64
	launches  int
	errName   []byte
}

type fakeLaunch struct {
	k      *gpu.Kernel
	gx, gy int
	ptrs   []uint64
	ints   []int32
}

// ptr turns an address the program passed into a pointer.
func ptr(a uintptr) unsafe.Pointer { return *(*unsafe.Pointer)(unsafe.Pointer(&a)) }

func put[T any](a uintptr, v T) { *(*T)(ptr(a)) = v }

// device returns the device memory from address a to the end of its
// allocation.
func (f *fakeCUDA) device(a uint64) ([]float32, error) {
	for _, s := range f.slabs {
		base := uint64(uintptr(unsafe.Pointer(&s[0])))
		if a >= base && a < base+4*uint64(len(s)) {
			return s[(a-base)/4:], nil
		}
	}
	return nil, fmt.Errorf("address %#x is not device memory", a)
}

func (f *fakeCUDA) run(l fakeLaunch) uintptr {
	var mem [][]float32
	for _, p := range l.ptrs {
		m, err := f.device(p)
		if err != nil {
			f.t.Errorf("kernel %s: %v", l.k.Name, err)
			return 1
		}
		mem = append(mem, m)
	}
	if err := gpu.Run(l.k, l.gx, l.gy, mem, l.ints); err != nil {
		f.t.Errorf("launch: %v", err)
		return 1
	}
	f.launches++
	return 0
}

func (f *fakeCUDA) loader() loader {
	fns := map[string]any{
		"cuInit":           func(uintptr) uintptr { return 0 },
		"cuDeviceGetCount": func(n uintptr) uintptr { put(n, int32(1)); return 0 },
		"cuDeviceGet":      func(d, ord uintptr) uintptr { put(d, int32(0)); return 0 },
		"cuDeviceGetName": func(buf, n, dev uintptr) uintptr {
			copy(unsafe.Slice((*byte)(ptr(buf)), n), "Fake GPU\x00")
			return 0
		},
		"cuDeviceGetAttribute": func(v, attr, dev uintptr) uintptr {
			put(v, map[uintptr]int32{attrComputeCapabilityMajr: 9, attrComputeCapabilityMinr: 0}[attr])
			return 0
		},
		"cuDevicePrimaryCtxRetain": func(c, dev uintptr) uintptr { put(c, uintptr(1)); return 0 },
		"cuCtxSetCurrent":          func(c uintptr) uintptr { return 0 },
		"cuGetErrorName": func(r, s uintptr) uintptr {
			put(s, uintptr(unsafe.Pointer(&f.errName[0])))
			return 0
		},
		"cuModuleLoadDataEx": func(m, image, n, opts, vals uintptr) uintptr {
			var b []byte
			for p := image; *(*byte)(ptr(p)) != 0; p++ {
				b = append(b, *(*byte)(ptr(p)))
			}
			f.ptx = string(b)
			put(m, uintptr(1))
			return 0
		},
		"cuModuleGetFunction": func(fn, mod, name uintptr) uintptr {
			var b []byte
			for p := name; *(*byte)(ptr(p)) != 0; p++ {
				b = append(b, *(*byte)(ptr(p)))
			}
			k, ok := f.kernels[string(b)]
			if !ok {
				return 500 // CUDA_ERROR_NOT_FOUND
			}
			f.funcs = append(f.funcs, k)
			put(fn, uintptr(len(f.funcs)))
			return 0
		},
		"cuMemAlloc_v2": func(p, size uintptr) uintptr {
			s := make([]float32, (size+3)/4)
			for i := range s {
				s[i] = float32(math.NaN())
			}
			f.slabs = append(f.slabs, s)
			put(p, uint64(uintptr(unsafe.Pointer(&s[0]))))
			return 0
		},
		"cuMemFree_v2": func(uintptr) uintptr { return 0 },
		"cuMemcpyHtoDAsync_v2": func(dst, src, n, stream uintptr) uintptr {
			if _, err := f.device(uint64(dst + n - 1)); err != nil {
				f.t.Errorf("copy to the device: %v", err)
				return 1
			}
			copy(unsafe.Slice((*byte)(ptr(dst)), n), unsafe.Slice((*byte)(ptr(src)), n))
			return 0
		},
		"cuMemcpyDtoHAsync_v2": func(dst, src, n, stream uintptr) uintptr {
			if _, err := f.device(uint64(src + n - 1)); err != nil {
				f.t.Errorf("copy from the device: %v", err)
				return 1
			}
			copy(unsafe.Slice((*byte)(ptr(dst)), n), unsafe.Slice((*byte)(ptr(src)), n))
			return 0
		},
		"cuStreamCreate":      func(s, flags uintptr) uintptr { put(s, uintptr(7)); return 0 },
		"cuStreamSynchronize": func(uintptr) uintptr { return 0 },
		"cuLaunchKernel": func(fn, gx, gy, gz, bx, by, bz, shm, stream, params, extra uintptr) uintptr {
			k := f.funcs[fn-1]
			if bx != uintptr(k.Threads) || by != 1 || bz != 1 || gz != 1 || stream != 7 {
				f.t.Errorf("kernel %s: block %dx%dx%d, grid z %d, stream %d", k.Name, bx, by, bz, gz, stream)
				return 1
			}
			args := unsafe.Slice((*uintptr)(ptr(params)), len(k.Ptrs)+len(k.Ints))
			l := fakeLaunch{k: k, gx: int(gx), gy: int(gy)}
			for i := range k.Ptrs {
				l.ptrs = append(l.ptrs, *(*uint64)(ptr(args[i])))
			}
			for i := range k.Ints {
				l.ints = append(l.ints, *(*int32)(ptr(args[len(k.Ptrs)+i])))
			}
			if f.capturing {
				f.graph = append(f.graph, l)
				return 0
			}
			return f.run(l)
		},
		"cuEventCreate": func(e, flags uintptr) uintptr {
			put(e, uintptr(100+len(f.events)))
			f.events[100+uintptr(len(f.events))] = 0
			return 0
		},
		"cuEventRecord":      func(e, s uintptr) uintptr { f.clock += 1000; f.events[e] = f.clock; return 0 },
		"cuEventSynchronize": func(uintptr) uintptr { return 0 },
		"cuEventElapsedTime": func(ms, a, b uintptr) uintptr {
			put(ms, float32(f.events[b]-f.events[a])/1e6)
			return 0
		},
		"cuStreamBeginCapture_v2": func(s, mode uintptr) uintptr { f.capturing, f.graph = true, nil; return 0 },
		"cuStreamEndCapture":      func(s, g uintptr) uintptr { f.capturing = false; put(g, uintptr(1)); return 0 },
		"cuGraphInstantiateWithFlags": func(e, g, flags uintptr) uintptr {
			put(e, uintptr(1))
			return 0
		},
		"cuGraphLaunch": func(e, s uintptr) uintptr {
			for _, l := range f.graph {
				if r := f.run(l); r != 0 {
					return r
				}
			}
			return 0
		},
	}
	syms := map[string]uintptr{}
	for name, fn := range fns {
		syms[name] = purego.NewCallback(fn)
	}
	return loader{
		open: func(string) (uintptr, error) { return 1, nil },
		sym: func(_ uintptr, name string) (uintptr, error) {
			if s, ok := syms[name]; ok {
				return s, nil
			}
			return 0, fmt.Errorf("no %s", name)
		},
	}
}

// fakeProgram lowers a model for the GPU and describes it as the CUDA
// back end's model.go does: one timed layer a launch.
func fakeProgram(t *testing.T, m *ir.Model) (*program, map[string]*gpu.Kernel) {
	om, err := pass.Apply(m, pass.Options{})
	if err != nil {
		t.Fatal(err)
	}
	net, err := gpu.Lower(om)
	if err != nil {
		t.Fatal(err)
	}
	net.Plan()
	net.Pack()
	ptx, err := gpu.PTX(gpu.SM90, net.Kernels)
	if err != nil {
		t.Fatal(err)
	}
	s := m.Input.Shape
	spec := &network{name: m.Name, id: "fake", inC: s[0], inH: s[1], inW: s[2], outputs: net.Output.Len, probOutput: net.Prob,
		arenaFloats: net.ActFloats, weightsLen: len(net.Weights), input: net.Input.Off, output: net.Output.Off, logits: net.Logits.Off}
	kernels := map[string]*gpu.Kernel{}
	for i, l := range net.Launches {
		k := net.Kernels[i]
		kernels[k.Name] = k
		var args []arg
		for _, a := range l.Args {
			args = append(args, arg{weight: a.Kind == gpu.ArgWeight, off: a.Off})
		}
		spec.launches = append(spec.launches, launch{kernel: k.Name, xPer: l.Grid.XPer, xDiv: l.Grid.XDiv, y: l.Grid.Y, threads: k.Threads, args: args})
		spec.layers = append(spec.layers, layer{name: k.Name, ops: []string{om.Ops[l.Op].Name}, first: i, end: i + 1})
	}
	var w []byte
	for _, v := range net.Weights {
		w = binary.LittleEndian.AppendUint32(w, math.Float32bits(v))
	}
	return &program{target: "cuda", kernelSet: "cuda", weights: w, ptx: map[string]string{"sm_80": "", "sm_90": ptx}, nets: []*network{spec}}, kernels
}

// TestFakeDriver runs the program against the fake driver: outputs of a
// batch split over several runs (-dump-output), a classification through
// a CUDA graph, and a bench report, against the interpreter.
func TestFakeDriver(t *testing.T) {
	b := ir.NewBuilder("fake", 3, 9, 9, rand.New(rand.NewPCG(1, 1)))
	x := b.ConvBNAct("stem", b.Input(), 16, 3, 2, 1, ir.ActReLU6)
	x = testnet.MBConv(b, "b1", x, 16, 3, 3, 1)
	x = b.ConvBNAct("head", x, 64, 1, 1, 1, ir.ActReLU6)
	x = b.GlobalPool("pool", x)
	x = b.Flatten("flat", x)
	x = b.Dense("fc", x, 5, nil, nil)
	x = b.Softmax("prob", x)
	m, err := b.Model(x)
	if err != nil {
		t.Fatal(err)
	}
	prog, kernels := fakeProgram(t, m)
	f := &fakeCUDA{t: t, kernels: kernels, events: map[uintptr]int64{}, errName: []byte("CUDA_ERROR_FAKE\x00")}
	ld := f.loader()

	const n = 5
	in := make([]float32, n*3*9*9)
	rng := rand.New(rand.NewPCG(2, 2))
	for i := range in {
		in[i] = float32(rng.NormFloat64())
	}
	want, err := interp.Run(m, in, n)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var raw []byte
	for _, v := range in {
		raw = binary.LittleEndian.AppendUint32(raw, math.Float32bits(v))
	}
	inPath, outPath := filepath.Join(dir, "x.bin"), filepath.Join(dir, "y.bin")
	if err := os.WriteFile(inPath, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	o := &options{input: inPath, dumpOut: outPath, batch: 2, k: 3, progName: "model"}
	if err := execute(o, &bytes.Buffer{}, &bytes.Buffer{}, prog, ld); err != nil {
		t.Fatal(err)
	}
	outRaw, err := os.ReadFile(outPath)
	if err != nil {
		t.Fatal(err)
	}
	if len(outRaw) != 4*len(want) {
		t.Fatalf("dumped %d bytes, expected %d", len(outRaw), 4*len(want))
	}
	for i, w := range want {
		got := math.Float32frombits(binary.LittleEndian.Uint32(outRaw[4*i:]))
		if math.Abs(float64(got-w)) > 1e-4*math.Max(1, math.Abs(float64(w))) {
			t.Fatalf("output %d: %v, interpreter %v", i, got, w)
		}
	}
	if !strings.Contains(f.ptx, ".target sm_90\n") {
		t.Error("the program did not load the sm_90 module on a compute capability 9.0 device")
	}

	// classification of the first sample through a CUDA graph, batch 3
	first := filepath.Join(dir, "first.bin")
	if err := os.WriteFile(first, raw[:4*3*9*9], 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	o = &options{input: first, batch: 3, k: 3, json: true, graph: true, progName: "model"}
	f.launches = 0
	if err := execute(o, &out, &bytes.Buffer{}, prog, ld); err != nil {
		t.Fatal(err)
	}
	if f.launches != len(prog.nets[0].launches) || len(f.graph) != len(prog.nets[0].launches) {
		t.Errorf("%d launches, %d in the graph; expected the %d of one forward as one graph", f.launches, len(f.graph), len(prog.nets[0].launches))
	}
	var res classifyResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	for i := range 5 {
		if math.Abs(res.Probs[i]-float64(want[i])) > 1e-4 {
			t.Errorf("probability %d: %v, interpreter %v", i, res.Probs[i], want[i])
		}
	}
	if len(res.Top) != 3 {
		t.Errorf("top: %+v", res.Top)
	}

	// a bench report
	out.Reset()
	o = &options{bench: 3, warmup: 1, batch: 2, json: true, graph: true, progName: "model"}
	if err := execute(o, &out, &bytes.Buffer{}, prog, ld); err != nil {
		t.Fatal(err)
	}
	var rep benchReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	if rep.Schema != benchSchema || rep.CPU != "Fake GPU (sm_90)" || rep.KernelSet != "cuda" || rep.Threads != 1 ||
		len(rep.Layers) != len(prog.nets[0].layers) || rep.Runs != 3 || !(rep.Total.MedianNS > 0) {
		t.Errorf("bench report: %s", out.String())
	}
}
