package shell

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
	"sort"
	"strings"

	rt "github.com/pnasml/pnas/runtime"
)

// Exit statuses.
const (
	exitOK    = 0
	exitFail  = 1 // internal failure
	exitUsage = 2 // bad flags or bad input
)

// options are the parsed flags.
type options struct {
	input    string
	eval     string
	labels   string
	index    int
	k        int
	json     bool
	bench    int
	lines    bool
	warmup   int
	threads  int
	model    string
	dumpOut  string
	list     bool
	kernels  string
	progName string
}

const usageText = `Usage:
  %[1]s -input FILE [-k N] [-json] [-index N] [-threads N]
  %[1]s -bench N [-warmup N] [-json] [-threads N] [-input FILE]
  %[1]s -bench-stdin [-warmup N] [-threads N] [-input FILE]
  %[1]s -eval IMAGES [-labels LABELS] [-json] [-threads N]

Runs the compiled network %[2]q on one input and prints the top classes,
or times it.

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
  -bench-stdin  time runs as another process asks, for benchmark drivers
                that interleave this program with another engine: each
                line on stdin is a number of runs N; the program runs N
                times and prints the N run times (ns) as one JSON array
                line; it ends at the end of stdin
  -warmup N     untimed runs before timing (default 10)
  -threads N    threads (default: all %[3]d logical CPUs)
  -model NAME   which network to run, when the program holds several
  -list         list the networks of the program
  -eval IMAGES  top-1 accuracy, overall and per class, over an IDX image
                file (optionally gzipped) with -labels, or a folder with one
                sub-folder of PNG/JPEG images per class (sorted by name)
  -labels FILE  IDX label file (optionally gzipped) for -eval
`

// run is the program: it parses args and returns the exit status.
func run(args []string, stdout, stderr io.Writer, prog *program) int {
	o, code := parseFlags(args, stderr, prog)
	if code >= 0 {
		return code
	}
	if err := execute(o, stdout, stderr, prog); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", o.progName, oneLine(err))
		var ie *inputError
		if errors.As(err, &ie) {
			return exitUsage
		}
		return exitFail
	}
	return exitOK
}

func oneLine(err error) string { return strings.ReplaceAll(err.Error(), "\n", "; ") }

// parseFlags returns the options, or an exit status >= 0 when the program
// must stop (help, usage error).
func parseFlags(args []string, stderr io.Writer, prog *program) (*options, int) {
	o := &options{progName: "model"}
	fs := flag.NewFlagSet(o.progName, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.input, "input", "", "")
	fs.IntVar(&o.index, "index", 0, "")
	fs.StringVar(&o.eval, "eval", "", "")
	fs.StringVar(&o.labels, "labels", "", "")
	fs.IntVar(&o.k, "k", 5, "")
	fs.BoolVar(&o.json, "json", false, "")
	fs.IntVar(&o.bench, "bench", 0, "")
	fs.BoolVar(&o.lines, "bench-stdin", false, "")
	fs.IntVar(&o.warmup, "warmup", 10, "")
	fs.IntVar(&o.threads, "threads", goruntime.NumCPU(), "")
	fs.StringVar(&o.model, "model", "", "")
	fs.BoolVar(&o.list, "list", false, "")
	// Debugging: write the raw model output of every sample of a .bin or
	// .npy input (any number of samples) to a file as float32.
	fs.StringVar(&o.dumpOut, "dump-output", "", "")
	// Debugging: cap the kernel set ("go", "avx2", "avx512"; "go", "neon" on arm64).
	fs.StringVar(&o.kernels, "kernels", "", "")
	usage := func() { fmt.Fprintf(stderr, usageText, o.progName, prog.nets[0].name, goruntime.NumCPU()) }
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
	case o.lines && (o.bench > 0 || o.eval != "" || o.dumpOut != "" || o.json):
		return bad("-bench-stdin: give it without -bench, -eval, -dump-output or -json")
	case o.eval != "" && (o.input != "" || o.bench > 0):
		return bad("-eval: give it alone, without -input or -bench")
	case o.labels != "" && o.eval == "":
		return bad("-labels needs -eval")
	case o.bench == 0 && !o.lines && o.input == "" && o.eval == "":
		return bad("nothing to do: give -input FILE, -eval IMAGES or -bench N")
	case o.dumpOut != "" && o.input == "":
		return bad("-dump-output needs -input")
	case o.k < 1:
		return bad("-k: expected a positive number, got %d", o.k)
	case o.warmup < 0:
		return bad("-warmup: expected 0 or more, got %d", o.warmup)
	case o.threads < 1:
		return bad("-threads: expected a positive number, got %d", o.threads)
	case o.index < 0:
		return bad("-index: expected 0 or more, got %d", o.index)
	}
	return o, -1
}

func findNet(prog *program, name string) (*network, error) {
	if name == "" {
		return prog.nets[0], nil
	}
	var names []string
	for _, n := range prog.nets {
		if n.name == name {
			return n, nil
		}
		names = append(names, n.name)
	}
	return nil, badInput("-model: no network %q in this program (it has %s)", name, strings.Join(names, ", "))
}

// selectKernels caps the runtime's kernel set at the best one compiled in
// and says so when the CPU cannot run that one.
func selectKernels(prog *program, o *options, stderr io.Writer) error {
	sets := rt.AllKernelSets()
	rank := func(name string) int {
		for i, n := range sets {
			if n == name {
				return i
			}
		}
		return -1
	}
	want := prog.kernelSet
	if o.kernels != "" {
		if rank(o.kernels) < 0 {
			return badInput("-kernels: unknown kernel set %q (expected one of %s)", o.kernels, strings.Join(sets, ", "))
		}
		if rank(o.kernels) < rank(want) {
			want = o.kernels
		}
	}
	if rank(rt.KernelSet()) > rank(want) {
		if err := rt.SetKernelSet(want); err != nil {
			return err
		}
	}
	if hw := rt.KernelSets(); rank(hw[len(hw)-1]) < rank(prog.kernelSet) {
		fmt.Fprintf(stderr, "%s: this CPU cannot run the %s kernels this program was built for; using %s kernels\n",
			o.progName, prog.kernelSet, rt.KernelSet())
	}
	return nil
}

func execute(o *options, stdout, stderr io.Writer, prog *program) error {
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
	if err := selectKernels(prog, o, stderr); err != nil {
		return err
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
	in, err := instantiate(prog, spec)
	if err != nil {
		return err
	}
	pool := rt.NewPool(o.threads)
	defer pool.Close()
	switch {
	case o.eval != "":
		return evaluate(o, stdout, in, pool)
	case o.dumpOut != "":
		return dumpOutputs(o, in, pool, samples)
	case o.bench > 0 || o.lines:
		x := benchInput(spec)
		if samples != nil {
			x = samples[0]
		}
		if o.lines {
			return benchLines(o, benchStdin, stdout, in, pool, x)
		}
		return bench(o, stdout, prog, in, pool, x)
	}
	return classify(o, stdout, in, pool, samples[0])
}

// infer runs one sample and returns the model output and the logits.
func infer(in *instance, pool *rt.Pool, x []float32) (out, logits []float32, err error) {
	if err := in.setInput(pool, x); err != nil {
		return nil, nil, err
	}
	if err := in.n.forward(pool, nil); err != nil {
		return nil, nil, err
	}
	n := in.spec.outputs
	return vector(in.n.output(), n), vector(in.n.logits(), n), nil
}

func dumpOutputs(o *options, in *instance, pool *rt.Pool, samples [][]float32) error {
	var buf []byte
	for _, x := range samples {
		out, _, err := infer(in, pool, x)
		if err != nil {
			return err
		}
		for _, v := range out {
			buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(v))
		}
	}
	return os.WriteFile(o.dumpOut, buf, 0o644)
}

// topEntry is one line of the top-k list.
type topEntry struct {
	Class int     `json:"class"`
	Label string  `json:"label"`
	Prob  float64 `json:"prob"`
}

// classifyResult is the -json output of a classification.
type classifyResult struct {
	Logits []float64  `json:"logits"`
	Probs  []float64  `json:"probs"`
	Top    []topEntry `json:"top"`
}

func classify(o *options, stdout io.Writer, in *instance, pool *rt.Pool, x []float32) error {
	out, logits, err := infer(in, pool, x)
	if err != nil {
		return err
	}
	return printTop(o, stdout, in.spec, out, logits)
}

// printTop prints the top classes of one sample's output and logits, as
// text or (-json) as a classifyResult.
func printTop(o *options, stdout io.Writer, spec *network, out, logits []float32) error {
	probs := make([]float64, len(out))
	if spec.probOutput {
		for i, v := range out {
			probs[i] = float64(v)
		}
	} else {
		probs = softmax64(logits)
	}
	for i, v := range logits {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return fmt.Errorf("output %d is %v", i, v)
		}
	}
	order := make([]int, len(probs))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return probs[order[a]] > probs[order[b]] })
	k := min(o.k, len(order))
	var res classifyResult
	for _, v := range logits {
		res.Logits = append(res.Logits, float64(v))
	}
	res.Probs = probs
	for _, c := range order[:k] {
		label := ""
		if c < len(spec.labels) {
			label = spec.labels[c]
		}
		res.Top = append(res.Top, topEntry{Class: c, Label: label, Prob: probs[c]})
	}
	if o.json {
		b, err := json.Marshal(res)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(stdout, "%s\n", b)
		return err
	}
	fmt.Fprintf(stdout, "%s: top %d of %d classes\n", spec.name, k, len(probs))
	for i, t := range res.Top {
		label := t.Label
		if label == "" {
			label = "-"
		}
		fmt.Fprintf(stdout, "%2d. class %-4d %-24s %.6f\n", i+1, t.Class, label, t.Prob)
	}
	return nil
}

// softmax64 is exp(x_i - max x) / sum_j exp(x_j - max x) in float64.
func softmax64(x []float32) []float64 {
	hi := math.Inf(-1)
	for _, v := range x {
		hi = math.Max(hi, float64(v))
	}
	out := make([]float64, len(x))
	var sum float64
	for i, v := range x {
		out[i] = math.Exp(float64(v) - hi)
		sum += out[i]
	}
	for i := range out {
		out[i] /= sum
	}
	return out
}
