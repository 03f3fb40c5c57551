// Command perfcmp compares compiled pnas programs with ONNX Runtime on the
// same models and weights, interleaved in one run so that the shared
// machine's drift hits both engines alike. It is what `make bench` runs.
//
// It imports each reference ONNX model that bench/ort/build_models.js
// writes (`pnas import`), compiles it once per target (`pnas compile
// --target`), checks each program's logits against ONNX Runtime's saved
// reference output and against the reference interpreter (ir/interp) on the
// same input, then for several passes times ONNX Runtime (node bench.js) and
// every target's program at batch 1 for each thread count, and prints the
// medians over passes as a markdown table, followed by where the time goes
// per layer kind (one thread). By default (-interleave blocks, blocks.go)
// the engines run side by side as servers and take turns in blocks of
// about 100 ms; -interleave passes runs each engine's process in turn for
// about a second (bench.js, -bench) in every pass. With -baseline, each
// target is also compiled by a second pnas binary (an earlier build) and its
// programs are timed in the same passes, labelled "<target> (baseline)".
//
// With -ort-avx2 (a build of bench/ort/avx2only.c, which hides AVX-512 from
// CPUID), ONNX Runtime is also timed with its AVX2 kernels, and the rows of
// the AVX2 target are compared with that: like for like, as on a CPU
// without AVX-512. Those rows also show the ratio to ONNX Runtime with
// AVX-512.
package main

import (
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/pnasml/pnas/ir"
	"github.com/pnasml/pnas/ir/interp"
)

// peakPerCore is the register-only FP32 FMA peak of one core for each
// kernel set, in GFLOP/s; -peak sets it from a measurement of this machine
// (scripts/bench.sh runs bench/ort/peak.c).
var peakPerCore = map[string]float64{}

type ortResult struct {
	Results []struct {
		Model    string  `json:"model"`
		Threads  int     `json:"threads"`
		Batch    int     `json:"batch"`
		MedianMS float64 `json:"median_ms"`
		MACs     float64 `json:"macs_per_image"`
	} `json:"results"`
}

type benchReport struct {
	KernelSet string `json:"kernel_set"`
	CPU       string `json:"cpu"`
	Threads   int    `json:"threads"`
	Layers    []struct {
		Name     string   `json:"name"`
		Ops      []string `json:"ops"`
		MedianNS float64  `json:"median_ns"`
	} `json:"layers"`
	Total struct {
		MedianNS float64 `json:"median_ns"`
	} `json:"total"`
}

type row struct {
	Model     string    `json:"model"`
	Target    string    `json:"target"`
	MACs      float64   `json:"macs"`
	Threads   int       `json:"threads"`
	KernelSet string    `json:"kernel_set"`
	CPU       string    `json:"cpu"`
	PnasMS    []float64 `json:"pnas_ms"`
	OrtMS     []float64 `json:"ort_ms"`
	// OrtKernels says which of ONNX Runtime's kernels OrtMS timed:
	// "native" (whatever it picks on this CPU) or "avx2" (AVX-512 hidden
	// from CPUID, -ort-avx2). OrtNativeMS, on an "avx2" row, holds the
	// native timings of the same passes.
	OrtKernels  string             `json:"ort_kernels,omitempty"`
	OrtNativeMS []float64          `json:"ort_native_ms,omitempty"`
	VsORT       float64            `json:"max_rel_err_vs_ort"` // -1 on -extra rows: ONNX Runtime does not run that model
	VsInterp    float64            `json:"max_rel_err_vs_interp"`
	ByKind      map[string]float64 `json:"ms_by_layer_kind,omitempty"` // last pass, or one run after the passes (blocks)
	// Interleave is how the passes ran: "blocks" or "passes" (-interleave).
	Interleave string `json:"interleave,omitempty"`
	// VsModel, on a row of an -extra pnas model, names the reference model
	// whose ONNX Runtime time the row's pnas time is compared with.
	VsModel string `json:"vs_model,omitempty"`
}

// ortModel is the model whose ONNX Runtime timing the row is compared with.
func (r *row) ortModel() string {
	if r.VsModel != "" {
		return r.VsModel
	}
	return r.Model
}

func main() {
	harness := flag.String("harness", "bench/ort", "ONNX Runtime harness directory (bench.js and node_modules)")
	modelsDir := flag.String("models-dir", "out/bench/models", "directory of the reference models (build_models.js and bench.js --ref output)")
	pnas := flag.String("pnas", "bin/pnas", "pnas binary")
	baseline := flag.String("baseline", "", "a second pnas binary whose programs are timed alongside, for before/after figures")
	work := flag.String("work", "out/bench", "work directory")
	models := flag.String("models", "mbconv_fmnist28,mobilenetv2_224,proxyless_mobile,proxyless_gpu,proxyless_cpu", "models to compare")
	targets := flag.String("targets", "amd64", "pnas targets to compile for and compare (comma separated)")
	threads := flag.String("threads", "1,2", "thread counts")
	passes := flag.Int("passes", 3, "interleaved passes")
	interleave := flag.String("interleave", "blocks", "blocks: the engines run side by side as servers and take turns in blocks of about 100 ms; passes: each pass runs every engine's process in turn, about a second each")
	runs := flag.Int("runs", 0, "pnas timed runs per pass (0: about one second's worth)")
	jsonOut := flag.String("json", "", "also write the raw results here")
	peak := flag.String("peak", "", "measured per-core peak GFLOP/s per kernel set, e.g. avx512=116,avx2=116,go=14.5")
	from := flag.String("from", "", "print the tables of an earlier run's -json file (with this run's -peak) instead of measuring")
	ortAVX2 := flag.String("ort-avx2", "", "LD_PRELOAD library that hides AVX-512 from CPUID (bench/ort/avx2only.c): also time ONNX Runtime's AVX2 kernels and compare the AVX2 target with them")
	extra := flag.String("extra", "", "pnas models timed in the same passes, compared with ONNX Runtime on the first of -models: NAME=MODEL.json, comma separated")
	flag.Parse()
	for _, kv := range strings.Split(*peak, ",") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			var f float64
			fmt.Sscan(v, &f)
			peakPerCore[k] = f
		}
	}
	if *from != "" {
		if err := reprint(*from); err != nil {
			fmt.Fprintln(os.Stderr, "perfcmp:", err)
			os.Exit(1)
		}
		return
	}
	if *interleave != "blocks" && *interleave != "passes" {
		fmt.Fprintf(os.Stderr, "perfcmp: -interleave: expected blocks or passes, got %q\n", *interleave)
		os.Exit(2)
	}
	c := &cmp{harness: *harness, models: *modelsDir, pnas: *pnas, baseline: *baseline, work: *work, runs: *runs, ortAVX2: *ortAVX2, interleave: *interleave}
	for _, e := range split(*extra) {
		name, path, ok := strings.Cut(e, "=")
		if !ok || name == "" || path == "" {
			fmt.Fprintf(os.Stderr, "perfcmp: -extra: expected NAME=MODEL.json, got %q\n", e)
			os.Exit(2)
		}
		c.extra = append(c.extra, [2]string{name, path})
	}
	if err := c.run(split(*models), split(*targets), ints(*threads), *passes, *jsonOut); err != nil {
		fmt.Fprintln(os.Stderr, "perfcmp:", err)
		os.Exit(1)
	}
}

func split(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func ints(s string) []int {
	var out []int
	for _, f := range split(s) {
		var v int
		fmt.Sscan(f, &v)
		out = append(out, v)
	}
	return out
}

func sh(name string, args ...string) ([]byte, error) {
	cmd := exec.Command(name, args...)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	return out, nil
}

func readFloats(path string) ([]float32, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	v := make([]float32, len(b)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v, nil
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s) == 0 {
		return math.NaN()
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// passRatios returns the lowest and highest pnas[i] / ort[i]: the ratio
// within each pass, whose two timings ran one right after the other.
func passRatios(pnas, ort []float64) (lo, hi float64, ok bool) {
	if len(pnas) == 0 || len(pnas) != len(ort) {
		return 0, 0, false
	}
	lo, hi = math.Inf(1), math.Inf(-1)
	for i := range pnas {
		q := pnas[i] / ort[i]
		lo, hi = min(lo, q), max(hi, q)
	}
	return lo, hi, true
}

// relErr is max |got-want| / max |want|.
func relErr(got, want []float32) float64 {
	var maxAbs, maxRef float64
	for i := range got {
		maxAbs = math.Max(maxAbs, math.Abs(float64(got[i]-want[i])))
		maxRef = math.Max(maxRef, math.Abs(float64(want[i])))
	}
	return maxAbs / maxRef
}

// layerKind names the kind of a model op for the per-layer picture.
func layerKind(op *ir.Op) string {
	switch {
	case op == nil:
		return "other"
	case op.Type == ir.OpConv2D && op.Groups > 1:
		return "depthwise"
	case op.Type == ir.OpConv2D && len(op.Kernel) == 2 && op.Kernel[0] == 1 && op.Kernel[1] == 1:
		return "1x1"
	case op.Type == ir.OpConv2D:
		return "full conv"
	case op.Type == ir.OpDense:
		return "dense"
	}
	return "other"
}

const baselineSuffix = " (baseline)"

var kinds = []string{"1x1", "depthwise", "full conv", "dense", "other"}

type cmp struct {
	harness, models, pnas, work string
	baseline                    string
	ortAVX2                     string // -ort-avx2
	runs                        int
	interleave                  string                       // -interleave: "blocks" or "passes"
	ops                         map[string]map[string]*ir.Op // model -> op name -> op
	extra                       [][2]string                  // -extra: name, model file
	extraMACs                   map[string]float64
}

// compileRun compiles model for target into dir with the pnas binary pnas,
// runs the program on the raw float32 input file and returns the program
// and its logits.
func compileRun(pnas, model, target, dir, input string) (bin string, logits []float32, err error) {
	out, err := sh(pnas, "compile", model, "--target", target, "-o", dir)
	if err != nil {
		return "", nil, err
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	bin = lines[len(lines)-1]
	dump := filepath.Join(dir, "out.bin")
	if _, err := sh(bin, "-input", input, "-dump-output", dump); err != nil {
		return "", nil, err
	}
	logits, err = readFloats(dump)
	return bin, logits, err
}

// indexOps records model's ops under name for the per-layer picture.
func (c *cmp) indexOps(name string, model *ir.Model) {
	c.ops[name] = map[string]*ir.Op{}
	for i := range model.Ops {
		c.ops[name][model.Ops[i].Name] = &model.Ops[i]
	}
}

// prepareExtra compiles a pnas model for every target and checks each
// program's logits against the interpreter on one reference input.
func (c *cmp) prepareExtra(name, path string, targets []string) (map[string]string, map[string]float64, error) {
	model, err := ir.Load(path)
	if err != nil {
		return nil, nil, err
	}
	c.indexOps(name, model)
	st, err := model.Stats()
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", name, err)
	}
	if c.extraMACs == nil {
		c.extraMACs = map[string]float64{}
	}
	c.extraMACs[name] = float64(st.MACs)
	n := 1
	for _, d := range model.Input.Shape {
		n *= d
	}
	input := make([]float32, n)
	for i := range input {
		input[i] = float32(i%251) / 250
	}
	ref, err := interp.Run(model, input, 1)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: interpreter: %w", name, err)
	}
	in := filepath.Join(c.work, name+".input.bin")
	b := make([]byte, 4*len(input))
	for i, v := range input {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	if err := os.WriteFile(in, b, 0o644); err != nil {
		return nil, nil, err
	}
	bins, vsInterp := map[string]string{}, map[string]float64{}
	for _, t := range targets {
		bin, got, err := compileRun(c.pnas, path, t, filepath.Join(c.work, name+"-"+t), in)
		if err != nil {
			return nil, nil, err
		}
		if len(got) != len(ref) {
			return nil, nil, fmt.Errorf("%s (%s): %d logits, the interpreter gives %d", name, t, len(got), len(ref))
		}
		bins[t], vsInterp[t] = bin, relErr(got, ref)
		fmt.Fprintf(os.Stderr, "%s (%s): logits vs interpreter %.2e\n", name, t, vsInterp[t])
		if vsInterp[t] > 1e-4 {
			return nil, nil, fmt.Errorf("%s (%s): logits differ by %.2e from the interpreter (limit 1e-4)", name, t, vsInterp[t])
		}
	}
	return bins, vsInterp, nil
}

// prepare imports model m, compiles it for target t and checks its logits
// against ONNX Runtime's and the interpreter's; it returns the program.
func (c *cmp) prepare(m string, targets []string) (bins map[string]string, vsORT, vsInterp map[string]float64, err error) {
	onnxPath := filepath.Join(c.models, m+".onnx")
	js := filepath.Join(c.work, m+".json")
	if _, err := sh(c.pnas, "import", onnxPath, "-o", js); err != nil {
		return nil, nil, nil, err
	}
	model, err := ir.Load(js)
	if err != nil {
		return nil, nil, nil, err
	}
	c.indexOps(m, model)
	input, err := readFloats(filepath.Join(c.models, m+".ref_input.bin"))
	if err != nil {
		return nil, nil, nil, err
	}
	want, err := readFloats(filepath.Join(c.models, m+".ref_output.bin"))
	if err != nil {
		return nil, nil, nil, err
	}
	ref, err := interp.Run(model, input, 1)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%s: interpreter: %w", m, err)
	}
	if len(ref) != len(want) {
		return nil, nil, nil, fmt.Errorf("%s: the interpreter gives %d logits, ONNX Runtime %d", m, len(ref), len(want))
	}
	fmt.Fprintf(os.Stderr, "%s: interpreter vs ONNX Runtime: %.2e\n", m, relErr(ref, want))
	bins, vsORT, vsInterp = map[string]string{}, map[string]float64{}, map[string]float64{}
	type build struct{ pnas, target, label, dir string }
	var builds []build
	for _, t := range targets {
		builds = append(builds, build{c.pnas, t, t, filepath.Join(c.work, m+"-"+t)})
		if c.baseline != "" {
			builds = append(builds, build{c.baseline, t, t + baselineSuffix, filepath.Join(c.work, m+"-"+t+"-baseline")})
		}
	}
	for _, b := range builds {
		t := b.label
		bin, got, err := compileRun(b.pnas, js, b.target, b.dir, filepath.Join(c.models, m+".ref_input.bin"))
		if err != nil {
			return nil, nil, nil, err
		}
		if len(got) != len(want) {
			return nil, nil, nil, fmt.Errorf("%s (%s): %d logits, ONNX Runtime has %d", m, t, len(got), len(want))
		}
		bins[t], vsORT[t], vsInterp[t] = bin, relErr(got, want), relErr(got, ref)
		fmt.Fprintf(os.Stderr, "%s (%s): logits vs ONNX Runtime %.2e, vs interpreter %.2e (max |diff| / max |ref|)\n", m, t, vsORT[t], vsInterp[t])
		if vsORT[t] > 1e-4 || vsInterp[t] > 1e-4 {
			return nil, nil, nil, fmt.Errorf("%s (%s): logits differ by %.2e from ONNX Runtime and %.2e from the interpreter (limit 1e-4)", m, t, vsORT[t], vsInterp[t])
		}
	}
	return bins, vsORT, vsInterp, nil
}

// hidesAVX512 says whether a target's rows compare with ONNX Runtime's
// AVX2 kernels when -ort-avx2 is given: the AVX2 target's (and its
// baseline's).
func hidesAVX512(target string) bool {
	return strings.TrimSuffix(target, baselineSuffix) == "amd64"
}

// checkORTAVX2 runs model m once on ONNX Runtime with -ort-avx2 loaded and
// compares its logits with the saved reference output (bench.js
// --check-ref, limit 1e-4), so that the AVX2 timings are of a correct run.
func (c *cmp) checkORTAVX2(m string) error {
	if c.ortAVX2 == "" {
		return nil
	}
	out, err := c.benchJS(c.ortAVX2, "--models", m, "--check-ref", "--threads", "1",
		"--batches", "1", "--runs", "1", "--min-time", "0", "--warmup", "0", "--quiet-wait", "0", "--attempts", "1")
	if err != nil {
		return err
	}
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "check-ref:") {
			fmt.Fprintf(os.Stderr, "%s (ONNX Runtime, AVX-512 hidden)\n", l)
		}
	}
	return nil
}

// benchJS runs the harness's bench.js on the reference models with args,
// with preload (when not empty) loaded into it (LD_PRELOAD), and returns
// its output.
func (c *cmp) benchJS(preload string, args ...string) ([]byte, error) {
	models, err := filepath.Abs(c.models)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("node", append([]string{"bench.js", "--dir", models}, args...)...)
	cmd.Dir = c.harness
	if preload != "" {
		cmd.Env = append(os.Environ(), "LD_PRELOAD="+preload)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		name := "node bench.js"
		if preload != "" {
			name += " with " + preload
		}
		return out, fmt.Errorf("%s: %v\n%s", name, err, out)
	}
	return out, nil
}

// ort times model m on ONNX Runtime; preload, when not empty, is loaded
// into it (LD_PRELOAD), as -ort-avx2 does.
func (c *cmp) ort(m string, threads int, preload string) (ms, macs float64, err error) {
	tmp, err := filepath.Abs(filepath.Join(c.work, "ort.json"))
	if err != nil {
		return 0, 0, err
	}
	if _, err := c.benchJS(preload, "--models", m, "--threads", fmt.Sprint(threads),
		"--batches", "1", "--json", tmp, "--quiet-wait", "3", "--attempts", "1"); err != nil {
		return 0, 0, err
	}
	var or ortResult
	b, err := os.ReadFile(tmp)
	if err != nil {
		return 0, 0, err
	}
	if err := json.Unmarshal(b, &or); err != nil {
		return 0, 0, err
	}
	for _, x := range or.Results {
		if x.Model == m && x.Threads == threads && x.Batch == 1 {
			return x.MedianMS, x.MACs, nil
		}
	}
	return 0, 0, fmt.Errorf("node bench.js: no result for %s, %d threads", m, threads)
}

func (c *cmp) run(models, targets []string, threads []int, passes int, jsonOut string) error {
	if err := os.MkdirAll(c.work, 0o755); err != nil {
		return err
	}
	c.ops = map[string]map[string]*ir.Op{}
	bins := map[string]map[string]string{}
	var rows []*row
	extraInterp := map[string]map[string]float64{}
	for _, e := range c.extra {
		b, vi, err := c.prepareExtra(e[0], e[1], targets)
		if err != nil {
			return err
		}
		bins[e[0]], extraInterp[e[0]] = b, vi
	}
	for mi, m := range models {
		b, vsORT, vsInterp, err := c.prepare(m, targets)
		if err != nil {
			return err
		}
		if err := c.checkORTAVX2(m); err != nil {
			return err
		}
		bins[m] = b
		for _, t := range threads {
			for _, tg := range targets {
				rows = append(rows, &row{Model: m, Target: tg, Threads: t, VsORT: vsORT[tg], VsInterp: vsInterp[tg]})
				if c.baseline != "" {
					tb := tg + baselineSuffix
					rows = append(rows, &row{Model: m, Target: tb, Threads: t, VsORT: vsORT[tb], VsInterp: vsInterp[tb]})
				}
			}
			if mi > 0 {
				continue
			}
			// the -extra models, timed right after the first model's
			// ONNX Runtime timing and compared with it
			for _, e := range c.extra {
				for _, tg := range targets {
					rows = append(rows, &row{Model: e[0], VsModel: m, Target: tg, Threads: t, MACs: c.extraMACs[e[0]], VsORT: -1, VsInterp: extraInterp[e[0]][tg]})
				}
			}
		}
	}
	for _, r := range rows {
		r.Interleave = c.interleave
	}
	if c.interleave == "blocks" {
		for i := 0; i < len(rows); {
			m, t := rows[i].ortModel(), rows[i].Threads
			j := i
			for j < len(rows) && rows[j].ortModel() == m && rows[j].Threads == t {
				j++
			}
			fmt.Fprintf(os.Stderr, "%s threads %d\n", m, t)
			if err := c.blockGroup(rows[i:j], bins, m, t, passes); err != nil {
				return err
			}
			macs, err := c.modelMACs(m)
			if err != nil {
				return err
			}
			// the layers, from one -bench run of each program
			for _, r := range rows[i:j] {
				if r.VsModel == "" {
					r.MACs = macs
				}
				if err := c.layers(r, bins[r.Model][r.Target], t); err != nil {
					return err
				}
			}
			i = j
		}
		passes = 0
	}
	for p := 0; p < passes; p++ {
		for i := 0; i < len(rows); {
			// one ONNX Runtime timing per model and thread count, then
			// every target's program right after it
			m, t := rows[i].Model, rows[i].Threads
			fmt.Fprintf(os.Stderr, "pass %d/%d: %s threads %d\n", p+1, passes, m, t)
			ms, macs, err := c.ort(m, t, "")
			if err != nil {
				return err
			}
			var avx2MS float64
			if c.ortAVX2 != "" {
				if avx2MS, _, err = c.ort(m, t, c.ortAVX2); err != nil {
					return err
				}
			}
			for ; i < len(rows) && rows[i].ortModel() == m && rows[i].Threads == t; i++ {
				r := rows[i]
				if c.ortAVX2 != "" && hidesAVX512(r.Target) {
					r.OrtKernels = "avx2"
					r.OrtMS = append(r.OrtMS, avx2MS)
					r.OrtNativeMS = append(r.OrtNativeMS, ms)
				} else {
					r.OrtKernels = "native"
					r.OrtMS = append(r.OrtMS, ms)
				}
				if r.VsModel == "" {
					r.MACs = macs
				}
				n := c.runs
				if n == 0 {
					n = defaultRuns(r.MACs)
				}
				total, err := c.bench(r, bins[r.Model][r.Target], t, n)
				if err != nil {
					return err
				}
				r.PnasMS = append(r.PnasMS, total)
			}
		}
	}
	printTables(rows)
	if jsonOut != "" {
		b, err := json.MarshalIndent(rows, "", " ")
		if err != nil {
			return err
		}
		return os.WriteFile(jsonOut, b, 0o644)
	}
	return nil
}

// bench runs a program's -bench with n runs on the given threads, fills
// in the row's kernel set, CPU and time per layer kind, and returns the
// median total in ms.
func (c *cmp) bench(r *row, bin string, threads, n int) (float64, error) {
	out, err := sh(bin, "-bench", fmt.Sprint(n), "-json", "-threads", fmt.Sprint(threads))
	if err != nil {
		return 0, err
	}
	var br benchReport
	if err := json.Unmarshal(out, &br); err != nil {
		return 0, fmt.Errorf("%s -bench output: %v", bin, err)
	}
	r.KernelSet, r.CPU = br.KernelSet, br.CPU
	r.ByKind = map[string]float64{}
	for _, l := range br.Layers {
		var op *ir.Op
		if len(l.Ops) > 0 {
			op = c.ops[r.Model][l.Ops[0]]
		}
		r.ByKind[layerKind(op)] += l.MedianNS / 1e6
	}
	return br.Total.MedianNS / 1e6, nil
}

// layers is bench for -interleave blocks, whose passes time whole runs
// only: about a second of runs for the time per layer kind.
func (c *cmp) layers(r *row, bin string, threads int) error {
	_, err := c.bench(r, bin, threads, defaultRuns(r.MACs))
	return err
}

// defaultRuns is the number of -bench runs of a model of macs
// multiply-adds: about a second's worth.
func defaultRuns(macs float64) int {
	if macs > 1e8 {
		return 100
	}
	return 200
}

// reprint prints the tables of a -json file.
func reprint(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var rows []*row
	if err := json.Unmarshal(b, &rows); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	printTables(rows)
	return nil
}

// printTables prints the comparison and where the time goes.
func printTables(rows []*row) {
	fmt.Println("| model | MACs | threads | target | kernels | pnas ms | ONNX Runtime ms | ORT kernels | pnas / ORT | per pass | pnas GFLOP/s | of peak | pnas / ORT with AVX-512 |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range rows {
		pm, om := median(r.PnasMS), median(r.OrtMS)
		gf := 2 * r.MACs / (pm * 1e-3) / 1e9
		ofPeak := "n/a"
		if p := peakPerCore[r.KernelSet] * float64(r.Threads); p > 0 {
			ofPeak = fmt.Sprintf("%.0f%%", 100*gf/p)
		}
		name := r.Model
		if r.VsModel != "" {
			name = fmt.Sprintf("%s (pnas model; ORT column: %s)", r.Model, r.VsModel)
		}
		ortKernels, vsNative := r.OrtKernels, ""
		if ortKernels == "" {
			ortKernels = "native"
		}
		if ortKernels == "avx2" {
			ortKernels = "avx2 (AVX-512 hidden)"
		}
		if len(r.OrtNativeMS) > 0 {
			vsNative = fmt.Sprintf("%.2fx", pm/median(r.OrtNativeMS))
		}
		perPass := "n/a"
		if lo, hi, ok := passRatios(r.PnasMS, r.OrtMS); ok {
			perPass = fmt.Sprintf("%.2f-%.2f", lo, hi)
		}
		fmt.Printf("| %s | %.1f M | %d | %s | %s | %.3f | %.3f | %s | %.2fx | %s | %.1f | %s | %s |\n",
			name, r.MACs/1e6, r.Threads, r.Target, r.KernelSet, pm, om, ortKernels, pm/om, perPass, gf, ofPeak, vsNative)
	}
	cpu := ""
	if len(rows) > 0 {
		cpu = rows[0].CPU
	}
	passes := 0
	if len(rows) > 0 {
		passes = len(rows[0].PnasMS)
	}
	blocks := len(rows) > 0 && rows[0].Interleave == "blocks"
	if blocks {
		fmt.Printf("\n%s; medians of %d passes, in each of which ONNX Runtime and the programs, running side by side, took turns in blocks of about 100 ms, 100 ms apart (the first 3 runs of each block left out); pnas / ORT < 1 means pnas is faster (\"per pass\": the lowest and highest ratio of one pass's medians: how much the machine moved); peak per core (GFLOP/s): %v\n", cpu, passes, peakPerCore)
	} else {
		fmt.Printf("\n%s; medians of %d interleaved passes; pnas / ORT < 1 means pnas is faster (\"per pass\": the lowest and highest ratio of one pass's pnas and ONNX Runtime times, which ran one right after the other: how much the machine moved); peak per core (GFLOP/s): %v\n", cpu, passes, peakPerCore)
	}
	for _, r := range rows {
		if r.OrtKernels == "avx2" {
			fmt.Printf("\nORT kernels \"avx2 (AVX-512 hidden)\": ONNX Runtime ran with AVX-512 hidden from CPUID (bench/ort/avx2only.c), so it used its AVX2 kernels, as on a CPU without AVX-512; the last column compares the same pnas time with ONNX Runtime using AVX-512.\n")
			break
		}
	}
	if blocks {
		fmt.Printf("\nwhere the time goes, 1 thread, one -bench run after the passes (ms, sum of per-layer medians):\n\n")
	} else {
		fmt.Printf("\nwhere the time goes, 1 thread, last pass (ms, sum of per-layer medians):\n\n")
	}
	fmt.Printf("| model | target | %s |\n|---|---|%s\n", strings.Join(kinds, " | "), strings.Repeat("---|", len(kinds)))
	for _, r := range rows {
		if r.Threads != 1 {
			continue
		}
		var cells []string
		for _, k := range kinds {
			cells = append(cells, fmt.Sprintf("%.3f", r.ByKind[k]))
		}
		fmt.Printf("| %s | %s | %s |\n", r.Model, r.Target, strings.Join(cells, " | "))
	}
	var pairs [][2]*row
	for _, b := range rows {
		if base, ok := strings.CutSuffix(b.Target, baselineSuffix); ok {
			for _, r := range rows {
				if r.Model == b.Model && r.Threads == b.Threads && r.Target == base {
					pairs = append(pairs, [2]*row{b, r})
				}
			}
		}
	}
	if len(pairs) > 0 {
		fmt.Printf("\nbaseline vs this build (medians; the same passes):\n\n")
		fmt.Println("| model | threads | target | baseline ms | ms | ratio | baseline / ORT | / ORT |")
		fmt.Println("|---|---|---|---|---|---|---|---|")
		for _, p := range pairs {
			b, r := median(p[0].PnasMS), median(p[1].PnasMS)
			fmt.Printf("| %s | %d | %s | %.3f | %.3f | %.2fx | %.2fx | %.2fx |\n", p[1].Model, p[1].Threads, p[1].Target,
				b, r, r/b, b/median(p[0].OrtMS), r/median(p[1].OrtMS))
		}
	}
}
