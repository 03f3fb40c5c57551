package shell

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	goruntime "runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	rt "github.com/pnasml/pnas/runtime"
)

// benchSchema is the "schema" field of the -bench -json report.
const benchSchema = "pnas-bench/1"

// timing summarises repeated timings in nanoseconds.
type timing struct {
	MedianNS float64 `json:"median_ns"`
	P90NS    float64 `json:"p90_ns"`
	MeanNS   float64 `json:"mean_ns"`
	VarNS2   float64 `json:"var_ns2"`
}

type layerTiming struct {
	Name string   `json:"name"`
	Key  string   `json:"key"`
	Ops  []string `json:"ops"`
	timing
}

type benchReport struct {
	Schema    string        `json:"schema"`
	Model     string        `json:"model"`
	ModelID   string        `json:"model_id"`
	Target    string        `json:"target"`
	KernelSet string        `json:"kernel_set"`
	CPU       string        `json:"cpu"`
	Cores     int           `json:"cores"`
	GOOS      string        `json:"goos"`
	GOARCH    string        `json:"goarch"`
	GoVersion string        `json:"go_version"`
	Threads   int           `json:"threads"`
	Runs      int           `json:"runs"`
	Warmup    int           `json:"warmup"`
	Layers    []layerTiming `json:"layers"`
	Total     timing        `json:"total"`
}

// summarize computes median and 90th percentile (linear interpolation
// between order statistics), mean and population variance.
func summarize(samples []int64) timing {
	s := make([]float64, len(samples))
	var sum float64
	for i, v := range samples {
		s[i] = float64(v)
		sum += s[i]
	}
	sort.Float64s(s)
	mean := sum / float64(len(s))
	var ss float64
	for _, v := range s {
		ss += (v - mean) * (v - mean)
	}
	q := func(p float64) float64 {
		pos := p * float64(len(s)-1)
		lo := int(math.Floor(pos))
		hi := min(lo+1, len(s)-1)
		return s[lo] + (pos-float64(lo))*(s[hi]-s[lo])
	}
	return timing{MedianNS: q(0.5), P90NS: q(0.9), MeanNS: mean, VarNS2: ss / float64(len(s))}
}

// benchInput is a fixed pseudo-random input in [-1, 1).
func benchInput(spec *network) []float32 {
	x := make([]float32, spec.inC*spec.inH*spec.inW)
	s := uint32(2463534242)
	for i := range x {
		s ^= s << 13
		s ^= s >> 17
		s ^= s << 5
		x[i] = float32(s)/(1<<31) - 1
	}
	return x
}

// warmUp runs n untimed inferences of x, each after loading it.
func warmUp(n int, in *instance, pool *rt.Pool, x []float32) error {
	for i := 0; i < n; i++ {
		if err := in.setInput(pool, x); err != nil {
			return err
		}
		if err := in.n.forward(pool, nil); err != nil {
			return err
		}
	}
	return nil
}

// bench times o.bench runs after o.warmup untimed ones. Each run first
// loads the sample (untimed), as a deployed program does: the input
// tensor shares arena floats with later tensors, so a run would otherwise
// read what the previous one left there. The last run's output must equal
// the first one's, bit for bit.
func bench(o *options, stdout io.Writer, prog *program, in *instance, pool *rt.Pool, x []float32) error {
	spec := in.spec
	if err := warmUp(o.warmup, in, pool, x); err != nil {
		return err
	}
	tm := &timer{laps: make([]int64, len(spec.layers))}
	per := make([][]int64, len(spec.layers))
	total := make([]int64, o.bench)
	var first []float32
	for r := 0; r < o.bench; r++ {
		if err := in.setInput(pool, x); err != nil {
			return err
		}
		if err := in.n.forward(pool, tm); err != nil {
			return err
		}
		total[r] = tm.total()
		for l, v := range tm.laps {
			per[l] = append(per[l], v)
		}
		if r == 0 {
			first = vector(in.n.output(), spec.outputs)
		}
	}
	sameBits := func(a, b float32) bool { return math.Float32bits(a) == math.Float32bits(b) }
	if last := vector(in.n.output(), spec.outputs); !slices.EqualFunc(first, last, sameBits) {
		return fmt.Errorf("bench: the last of %d runs gave another output than the first on the same input", o.bench)
	}
	rep := benchReport{
		Schema: benchSchema, Model: spec.name, ModelID: spec.id, Target: prog.target, KernelSet: rt.KernelSet(),
		CPU: cpuModel(), Cores: goruntime.NumCPU(), GOOS: goruntime.GOOS, GOARCH: goruntime.GOARCH,
		GoVersion: goruntime.Version(), Threads: pool.Threads(), Runs: o.bench, Warmup: o.warmup,
		Total: summarize(total),
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
	threads := "threads"
	if rep.Threads == 1 {
		threads = "thread"
	}
	fmt.Fprintf(stdout, "%s (%s), target %s, %s kernels, %d %s, %s %s/%s, %s\n",
		rep.Model, rep.ModelID, rep.Target, rep.KernelSet, rep.Threads, threads, rep.GoVersion, rep.GOOS, rep.GOARCH, rep.CPU)
	fmt.Fprintf(stdout, "%d timed runs after %d warm-up runs; times in microseconds\n", rep.Runs, rep.Warmup)
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "layer\tmedian\tp90\tmean\tshare\tops")
	for _, ly := range rep.Layers {
		share := 0.0
		if rep.Total.MedianNS > 0 {
			share = 100 * ly.MedianNS / rep.Total.MedianNS
		}
		fmt.Fprintf(tw, "%s\t%.1f\t%.1f\t%.1f\t%.1f%%\t%s\n", ly.Name, ly.MedianNS/1e3, ly.P90NS/1e3, ly.MeanNS/1e3, share, strings.Join(ly.Ops, " "))
	}
	fmt.Fprintf(tw, "total\t%.1f\t%.1f\t%.1f\t\t\n", rep.Total.MedianNS/1e3, rep.Total.P90NS/1e3, rep.Total.MeanNS/1e3)
	return tw.Flush()
}

// benchStdin is what -bench-stdin reads (a test sets it).
var benchStdin io.Reader = os.Stdin

// maxLineRuns bounds the runs one -bench-stdin line asks for.
const maxLineRuns = 100000

// benchLines is -bench-stdin: after o.warmup untimed runs, for every line
// of stdin, a number of runs N, it times N runs, each after loading the
// sample untimed as bench does, and prints their times in nanoseconds as
// one JSON array on a line of its own. A driver that times this program
// and another engine alternately in short blocks (make bench) compares
// runs that ran within milliseconds of each other, so a machine whose
// speed changes by the second moves both alike.
func benchLines(o *options, stdin io.Reader, stdout io.Writer, in *instance, pool *rt.Pool, x []float32) error {
	if err := warmUp(o.warmup, in, pool, x); err != nil {
		return err
	}
	w := bufio.NewWriter(stdout)
	sc := bufio.NewScanner(stdin)
	var times []int64
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" {
			continue
		}
		n, err := strconv.Atoi(text)
		if err != nil || n < 1 || n > maxLineRuns {
			return badInput("-bench-stdin: line %d: expected a number of runs from 1 to %d, got %q", line, maxLineRuns, text)
		}
		times = times[:0]
		for range n {
			if err := in.setInput(pool, x); err != nil {
				return err
			}
			t0 := time.Now()
			if err := in.n.forward(pool, nil); err != nil {
				return err
			}
			times = append(times, time.Since(t0).Nanoseconds())
		}
		b, err := json.Marshal(times)
		if err != nil {
			return err
		}
		w.Write(b)
		w.WriteByte('\n')
		if err := w.Flush(); err != nil {
			return err
		}
	}
	return sc.Err()
}

// cpuModel names the processor: /proc/cpuinfo's model name on Linux (or
// the ARM core, from its implementer and part), else the architecture.
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err == nil {
		defer f.Close()
		if m := cpuModelFrom(f); m != "" {
			return m
		}
	}
	return "unknown " + goruntime.GOARCH
}

// armParts names the cores of Arm Ltd. (CPU implementer 0x41) by CPU part.
var armParts = map[string]string{
	"0xd03": "Cortex-A53", "0xd04": "Cortex-A35", "0xd05": "Cortex-A55", "0xd07": "Cortex-A57",
	"0xd08": "Cortex-A72", "0xd09": "Cortex-A73", "0xd0a": "Cortex-A75", "0xd0b": "Cortex-A76",
	"0xd0c": "Neoverse N1", "0xd0d": "Cortex-A77", "0xd40": "Neoverse V1", "0xd41": "Cortex-A78",
	"0xd44": "Cortex-X1", "0xd46": "Cortex-A510", "0xd47": "Cortex-A710", "0xd48": "Cortex-X2",
	"0xd49": "Neoverse N2", "0xd4f": "Neoverse V2",
}

// cpuModelFrom reads a /proc/cpuinfo: its model name, or for ARM cores
// without one the core's name and its implementer and part; "" if neither.
func cpuModelFrom(r io.Reader) string {
	var impl, part string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch k {
		case "model name", "Hardware", "cpu model":
			if v != "" {
				return v
			}
		case "CPU implementer":
			if impl == "" {
				impl = v
			}
		case "CPU part":
			if part == "" {
				part = v
			}
		}
	}
	if impl == "" {
		return ""
	}
	if name, ok := armParts[strings.ToLower(part)]; ok && impl == "0x41" {
		return fmt.Sprintf("Arm %s (implementer %s part %s)", name, impl, part)
	}
	return fmt.Sprintf("%s implementer %s part %s", goruntime.GOARCH, impl, part)
}
