package cudashell

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	goruntime "runtime"
	"strings"
	"text/tabwriter"
	"unsafe"
)

// program is everything the generated main.go hands to run.
type program struct {
	target    string            // target the program was compiled for
	kernelSet string            // "cuda"
	weights   []byte            // the embedded little-endian float32 blob of every network
	ptx       map[string]string // PTX module by architecture ("sm_80", "sm_90")
	nets      []*network        // the compiled networks; the first is the default
}

// network describes one compiled model. Generated model files define one
// each. Activations are batch-major NCHW in one device arena; offsets and
// sizes are in floats a sample (times the batch size on the device).
type network struct {
	name        string
	id          string // content hash of the IR document and weights
	inC         int    // input channels, rows, columns
	inH, inW    int
	mean, std   []float32 // per-channel input normalisation (may be empty)
	labels      []string  // class names (may be empty)
	outputs     int       // length of the output vector
	probOutput  bool      // the output is a softmax: logits are its input
	arenaFloats int       // activation arena, floats a sample
	weightsOff  int       // offset of this network's weights in the blob, in floats
	weightsLen  int       // number of floats
	input       int       // arena offset of the input
	output      int       // arena offset of the output
	logits      int       // arena offset of the logits
	layers      []layer   // timed layers, in execution order
	launches    []launch  // kernel launches, in order
}

// layer is one timed unit: the launches [first, end) of one block of the
// search space or of one unannotated op.
type layer struct {
	name       string
	key        string // latency-table key, empty when the model's blocks give none
	ops        []string
	first, end int
}

// launch is one kernel launch: grid x = ceil(batch*xPer/xDiv) blocks by
// y, threads a block; its pointer arguments, then the batch size.
type launch struct {
	kernel        string
	xPer, xDiv, y int
	threads       int
	args          []arg
}

// arg is a pointer argument: a weight array (offset in the network's
// weights) or an arena buffer (offset in floats a sample).
type arg struct {
	weight bool
	off    int
}

// options are the parsed flags.
type options struct {
	input    string
	index    int
	k        int
	json     bool
	bench    int
	warmup   int
	threads  int
	batch    int
	graph    bool
	model    string
	dumpOut  string
	list     bool
	progName string
}

const usageText = `Usage:
  %[1]s -input FILE [-k N] [-json] [-index N] [-batch N]
  %[1]s -bench N [-warmup N] [-json] [-batch N] [-input FILE]

Runs the compiled network %[2]q on an NVIDIA GPU (compute capability 8.0
or later, through the CUDA driver libcuda.so.1) on one input and prints
the top classes, or times it.

Input files: PNG or JPEG images (converted to the model's channels,
resized bilinearly, normalised as the model's input spec says), IDX image
files (optionally gzipped; -index picks the image), raw little-endian
float32 .bin files and float32 .npy arrays in the model's input shape
(NCHW, batch 1; used as they are).

Flags:
  -input FILE   the input to classify
  -index N      image index in an IDX file (default 0)
  -k N          number of top classes to print (default 5)
  -json         print JSON instead of text
  -bench N      time N runs after the warm-up; per-layer and total latency
  -warmup N     untimed runs before timing (default 10)
  -batch N      samples a run (the input repeated; default 1)
  -graph        run the forward as one CUDA graph (default true)
  -threads N    accepted for compatibility with the CPU programs; ignored
  -model NAME   which network to run, when the program holds several
  -list         list the networks of the program
`

// run is the program: it parses args and returns the exit status.
func run(args []string, stdout, stderr io.Writer, prog *program) int {
	// The CUDA context is current on the thread that creates it.
	goruntime.LockOSThread()
	defer goruntime.UnlockOSThread()
	o, code := parseFlags(args, stderr, prog)
	if code >= 0 {
		return code
	}
	if err := execute(o, stdout, stderr, prog, system); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", o.progName, oneLine(err))
		var ie *inputError
		if errors.As(err, &ie) {
			return exitUsage
		}
		return exitFail
	}
	return exitOK
}

func parseFlags(args []string, stderr io.Writer, prog *program) (*options, int) {
	o := &options{progName: "model"}
	fs := flag.NewFlagSet(o.progName, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.input, "input", "", "")
	fs.IntVar(&o.index, "index", 0, "")
	fs.IntVar(&o.k, "k", 5, "")
	fs.BoolVar(&o.json, "json", false, "")
	fs.IntVar(&o.bench, "bench", 0, "")
	fs.IntVar(&o.warmup, "warmup", 10, "")
	fs.IntVar(&o.threads, "threads", 1, "")
	fs.IntVar(&o.batch, "batch", 1, "")
	fs.BoolVar(&o.graph, "graph", true, "")
	fs.StringVar(&o.model, "model", "", "")
	fs.BoolVar(&o.list, "list", false, "")
	fs.StringVar(&o.dumpOut, "dump-output", "", "")
	usage := func() { fmt.Fprintf(stderr, usageText, o.progName, prog.nets[0].name) }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage()
			return nil, exitOK
		}
		fmt.Fprintf(stderr, "%s: %v (run with -h for usage)\n", o.progName, err)
		return nil, exitUsage
	}
	bad := func(format string, a ...any) (*options, int) {
		fmt.Fprintf(stderr, "%s: %s (run with -h for usage)\n", o.progName, fmt.Sprintf(format, a...))
		return nil, exitUsage
	}
	switch {
	case fs.NArg() > 0:
		return bad("unexpected argument %q", fs.Arg(0))
	case o.list:
	case o.bench < 0:
		return bad("-bench: expected a positive number of runs, got %d", o.bench)
	case o.bench == 0 && o.input == "":
		return bad("nothing to do: give -input FILE or -bench N")
	case o.dumpOut != "" && o.input == "":
		return bad("-dump-output needs -input")
	case o.k < 1:
		return bad("-k: expected a positive number, got %d", o.k)
	case o.warmup < 0:
		return bad("-warmup: expected 0 or more, got %d", o.warmup)
	case o.batch < 1 || o.batch > 1<<16:
		return bad("-batch: expected 1 to 65536, got %d", o.batch)
	case o.index < 0:
		return bad("-index: expected 0 or more, got %d", o.index)
	}
	return o, -1
}

func execute(o *options, stdout, stderr io.Writer, prog *program, ld loader) error {
	if o.list {
		for _, n := range prog.nets {
			fmt.Fprintf(stdout, "%s\t%s\t%dx%dx%d -> %d\n", n.name, n.id, n.inC, n.inH, n.inW, n.outputs)
		}
		return nil
	}
	spec, err := findNet(prog, o.model)
	if err != nil {
		return err
	}
	if int64(o.batch)*int64(spec.arenaFloats) >= 1<<31 {
		return badInput("-batch %d: the activations of %d samples of %s exceed the 2^31 floats the kernels index", o.batch, o.batch, spec.name)
	}
	var samples [][]float32
	if o.input != "" {
		data, err := os.ReadFile(o.input)
		if err != nil {
			return badInput("%v", err)
		}
		samples, err = loadSamples(o.input, data, o.index, spec, o.dumpOut != "", stderr)
		if err != nil {
			return err
		}
	}
	d, err := openDriver(ld)
	if err != nil {
		return err
	}
	defer d.close()
	in, err := instantiate(d, prog, spec, o.batch)
	if err != nil {
		return err
	}
	switch {
	case o.dumpOut != "":
		return dumpOutputs(o, in, samples)
	case o.bench > 0:
		x := benchInput(spec)
		if samples != nil {
			x = samples[0]
		}
		return bench(o, stdout, stderr, prog, in, x)
	}
	return classify(o, stdout, in, samples[0])
}

// instance is a network on the device: weights uploaded once, an arena
// for a batch, every launch's arguments resolved.
type instance struct {
	d      *driver
	spec   *network
	batch  int
	arena  uint64
	funcs  []uintptr
	params [][]uintptr // per launch: pointers to the argument values
	values [][]uint64  // the argument values the pointers point to
	graph  uintptr     // the forward as a CUDA graph, once captured
}

// arch picks the PTX module for the device.
func arch(d *driver, prog *program) (string, error) {
	want := "sm_80"
	if d.major >= 9 {
		want = "sm_90"
	}
	if d.major < 8 {
		return "", fmt.Errorf("%s has compute capability %d.%d; the kernels need 8.0 or later", d.name, d.major, d.minor)
	}
	ptx, ok := prog.ptx[want]
	if !ok {
		return "", fmt.Errorf("the program has no %s kernels", want)
	}
	return ptx, nil
}

func instantiate(d *driver, prog *program, spec *network, batch int) (*instance, error) {
	lo, hi := 4*spec.weightsOff, 4*(spec.weightsOff+spec.weightsLen)
	if spec.weightsOff < 0 || hi > len(prog.weights) {
		return nil, fmt.Errorf("network %s: weights [%d, %d) outside the %d-byte blob", spec.name, lo, hi, len(prog.weights))
	}
	ptx, err := arch(d, prog)
	if err != nil {
		return nil, err
	}
	mod, err := d.loadModule(ptx)
	if err != nil {
		return nil, err
	}
	w, err := d.alloc(hi - lo)
	if err != nil {
		return nil, err
	}
	if err := d.uploadBytes(w, prog.weights[lo:hi]); err != nil {
		return nil, err
	}
	in := &instance{d: d, spec: spec, batch: batch}
	if in.arena, err = d.alloc(4 * spec.arenaFloats * batch); err != nil {
		return nil, err
	}
	byName := map[string]uintptr{}
	for _, l := range spec.launches {
		f, ok := byName[l.kernel]
		if !ok {
			if f, err = d.function(mod, l.kernel); err != nil {
				return nil, err
			}
			byName[l.kernel] = f
		}
		vals := make([]uint64, len(l.args)+1)
		ptrs := make([]uintptr, len(vals))
		for i, a := range l.args {
			if a.weight {
				vals[i] = w + uint64(4*a.off)
			} else {
				vals[i] = in.arena + uint64(4*a.off*batch)
			}
		}
		vals[len(l.args)] = uint64(batch) // the int32 n, little-endian
		for i := range vals {
			ptrs[i] = uintptr(unsafe.Pointer(&vals[i]))
		}
		in.funcs = append(in.funcs, f)
		in.values = append(in.values, vals)
		in.params = append(in.params, ptrs)
	}
	return in, nil
}

// launchRange launches spec.launches[first:end].
func (in *instance) launchRange(first, end int) error {
	for i := first; i < end; i++ {
		l := in.spec.launches[i]
		gx := (in.batch*l.xPer + l.xDiv - 1) / l.xDiv
		if err := in.d.launch(in.funcs[i], gx, l.y, l.threads, &in.params[i][0]); err != nil {
			return fmt.Errorf("kernel %s: %w", l.kernel, err)
		}
	}
	return nil
}

// forward launches the network; with events (one more than layers) it
// records one at each layer boundary.
func (in *instance) forward(events []uintptr) error {
	if events == nil && in.graph != 0 {
		return in.d.launchGraph(in.graph)
	}
	for k, ly := range in.spec.layers {
		if events != nil {
			if err := in.d.record(events[k]); err != nil {
				return err
			}
		}
		if err := in.launchRange(ly.first, ly.end); err != nil {
			return err
		}
	}
	if events != nil {
		return in.d.record(events[len(in.spec.layers)])
	}
	return nil
}

// useGraph captures the forward as a CUDA graph that later forwards
// launch at once.
func (in *instance) useGraph() error {
	g, err := in.d.capture(func() error { return in.forward(nil) })
	if err != nil {
		return err
	}
	in.graph = g
	return nil
}

// setInput copies the sample into every slot of the batch.
func (in *instance) setInput(xs [][]float32) error {
	per := in.spec.inC * in.spec.inH * in.spec.inW
	buf := make([]float32, per*in.batch)
	for s := 0; s < in.batch; s++ {
		copy(buf[s*per:(s+1)*per], xs[min(s, len(xs)-1)])
	}
	return in.d.upload(in.arena+uint64(4*in.spec.input*in.batch), buf)
}

// read copies the first samples of the arena buffer at off.
func (in *instance) read(off, samples int) ([]float32, error) {
	out := make([]float32, in.spec.outputs*samples)
	err := in.d.download(out, in.arena+uint64(4*off*in.batch))
	return out, err
}

func infer(in *instance, xs [][]float32) (out, logits []float32, err error) {
	if err := in.setInput(xs); err != nil {
		return nil, nil, err
	}
	if err := in.forward(nil); err != nil {
		return nil, nil, err
	}
	if out, err = in.read(in.spec.output, len(xs)); err != nil {
		return nil, nil, err
	}
	logits, err = in.read(in.spec.logits, len(xs))
	return out, logits, err
}

func dumpOutputs(o *options, in *instance, samples [][]float32) error {
	var buf []byte
	for s := 0; s < len(samples); s += in.batch {
		out, _, err := infer(in, samples[s:min(s+in.batch, len(samples))])
		if err != nil {
			return err
		}
		for _, v := range out {
			buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(v))
		}
	}
	return os.WriteFile(o.dumpOut, buf, 0o644)
}

func classify(o *options, stdout io.Writer, in *instance, x []float32) error {
	if o.graph {
		if err := in.useGraph(); err != nil {
			return err
		}
	}
	out, logits, err := infer(in, [][]float32{x})
	if err != nil {
		return err
	}
	return printTop(o, stdout, in.spec, out, logits)
}

// bench times the layers with events around eager launches, then the
// whole forward (as a CUDA graph with -graph) with events around it.
func bench(o *options, stdout, stderr io.Writer, prog *program, in *instance, x []float32) error {
	spec := in.spec
	if err := in.setInput([][]float32{x}); err != nil {
		return err
	}
	events := make([]uintptr, len(spec.layers)+1)
	for i := range events {
		e, err := in.d.event()
		if err != nil {
			return err
		}
		events[i] = e
	}
	for i := 0; i < o.warmup; i++ {
		if err := in.forward(events); err != nil {
			return err
		}
	}
	per := make([][]int64, len(spec.layers))
	eager := make([]int64, o.bench)
	for r := 0; r < o.bench; r++ {
		if err := in.forward(events); err != nil {
			return err
		}
		for l := range spec.layers {
			ns, err := in.d.elapsed(events[l], events[l+1])
			if err != nil {
				return err
			}
			per[l] = append(per[l], ns)
		}
		ns, err := in.d.elapsed(events[0], events[len(spec.layers)])
		if err != nil {
			return err
		}
		eager[r] = ns
	}
	total := eager
	how := "eager launches"
	if o.graph {
		if err := in.useGraph(); err != nil {
			return err
		}
		total = make([]int64, o.bench)
		for r := -o.warmup; r < o.bench; r++ {
			if err := in.d.record(events[0]); err != nil {
				return err
			}
			if err := in.forward(nil); err != nil {
				return err
			}
			if err := in.d.record(events[1]); err != nil {
				return err
			}
			ns, err := in.d.elapsed(events[0], events[1])
			if err != nil {
				return err
			}
			if r >= 0 {
				total[r] = ns
			}
		}
		how = "one CUDA graph"
	}
	rep := benchReport{
		Schema: benchSchema, Model: spec.name, ModelID: spec.id, Target: prog.target, KernelSet: prog.kernelSet,
		CPU: fmt.Sprintf("%s (sm_%d%d)", in.d.name, in.d.major, in.d.minor), Cores: goruntime.NumCPU(),
		GOOS: goruntime.GOOS, GOARCH: goruntime.GOARCH, GoVersion: goruntime.Version(), Threads: 1,
		Runs: o.bench, Warmup: o.warmup, Total: summarize(total),
	}
	for l, ly := range spec.layers {
		rep.Layers = append(rep.Layers, layerTiming{Name: ly.name, Key: ly.key, Ops: ly.ops, timing: summarize(per[l])})
	}
	if o.json {
		b, err := json.Marshal(rep)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(stdout, "%s\n", b)
		return err
	}
	fmt.Fprintf(stdout, "%s (%s), target %s, %s kernels, batch %d, %s\n", rep.Model, rep.ModelID, rep.Target, rep.KernelSet, in.batch, rep.CPU)
	fmt.Fprintf(stdout, "%d timed runs after %d warm-up runs; times in microseconds; layers from eager launches, total from %s\n", rep.Runs, rep.Warmup, how)
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "layer\tmedian\tp90\tmean\tops")
	for _, ly := range rep.Layers {
		fmt.Fprintf(tw, "%s\t%.1f\t%.1f\t%.1f\t%s\n", ly.Name, ly.MedianNS/1e3, ly.P90NS/1e3, ly.MeanNS/1e3, strings.Join(ly.Ops, " "))
	}
	e := summarize(eager)
	fmt.Fprintf(tw, "total (eager)\t%.1f\t%.1f\t%.1f\t\n", e.MedianNS/1e3, e.P90NS/1e3, e.MeanNS/1e3)
	fmt.Fprintf(tw, "total\t%.1f\t%.1f\t%.1f\t%s\n", rep.Total.MedianNS/1e3, rep.Total.P90NS/1e3, rep.Total.MeanNS/1e3, how)
	return tw.Flush()
}
