// Command perfcmp compares compiled pnas programs with ONNX Runtime on the
// same models and weights, interleaved in one run so that the shared
// machine's drift hits both engines alike. It is what `make bench` runs.
//
// It imports each reference ONNX model built by the ortanchor harness
// (`pnas import`), compiles it (`pnas compile`), checks the program's logits
// against ONNX Runtime's saved reference output, then for several passes
// times ONNX Runtime (node bench.js) and the pnas program (-bench) at batch 1
// for each thread count, and prints the medians over passes as a markdown
// table.
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
)

// peakPerCore is the register-only FP32 FMA peak of one core for each
// kernel set, in GFLOP/s; -peak sets it from a measurement of this machine
// (scripts/bench.sh runs the harness's peak.c).
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
	Threads   int    `json:"threads"`
	Total     struct {
		MedianNS float64 `json:"median_ns"`
	} `json:"total"`
}

type row struct {
	Model     string    `json:"model"`
	MACs      float64   `json:"macs"`
	Threads   int       `json:"threads"`
	KernelSet string    `json:"kernel_set"`
	PnasMS    []float64 `json:"pnas_ms"`
	OrtMS     []float64 `json:"ort_ms"`
	MaxRelErr float64   `json:"max_rel_err"`
}

func main() {
	ortDir := flag.String("ort", ".cache/ortanchor", "ortanchor harness directory (node_modules and models/)")
	pnas := flag.String("pnas", "bin/pnas", "pnas binary")
	work := flag.String("work", "out/bench", "work directory")
	models := flag.String("models", "mbconv_fmnist28,mobilenetv2_224", "models to compare")
	threads := flag.String("threads", "1,2", "thread counts")
	passes := flag.Int("passes", 3, "interleaved passes")
	runs := flag.Int("runs", 0, "pnas timed runs per pass (0: about one second's worth)")
	jsonOut := flag.String("json", "", "also write the raw results here")
	peak := flag.String("peak", "", "measured per-core peak GFLOP/s per kernel set, e.g. avx512=116,avx2=116,go=14.5")
	flag.Parse()
	for _, kv := range strings.Split(*peak, ",") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			var f float64
			fmt.Sscan(v, &f)
			peakPerCore[k] = f
		}
	}
	if err := run(*ortDir, *pnas, *work, strings.Split(*models, ","), ints(*threads), *passes, *runs, *jsonOut); err != nil {
		fmt.Fprintln(os.Stderr, "perfcmp:", err)
		os.Exit(1)
	}
}

func ints(s string) []int {
	var out []int
	for _, f := range strings.Split(s, ",") {
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

func run(ortDir, pnas, work string, models []string, threads []int, passes, runs int, jsonOut string) error {
	if err := os.MkdirAll(work, 0o755); err != nil {
		return err
	}
	bins := map[string]string{}
	var rows []*row
	for _, m := range models {
		onnxPath := filepath.Join(ortDir, "models", m+".onnx")
		js := filepath.Join(work, m+".json")
		if _, err := sh(pnas, "import", onnxPath, "-o", js); err != nil {
			return err
		}
		out, err := sh(pnas, "compile", js, "-o", filepath.Join(work, m))
		if err != nil {
			return err
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		bins[m] = lines[len(lines)-1]
		// numerics against ONNX Runtime's saved output
		dump := filepath.Join(work, m+".out.bin")
		if _, err := sh(bins[m], "-input", filepath.Join(ortDir, "models", m+".ref_input.bin"), "-dump-output", dump); err != nil {
			return err
		}
		got, err := readFloats(dump)
		if err != nil {
			return err
		}
		want, err := readFloats(filepath.Join(ortDir, "models", m+".ref_output.bin"))
		if err != nil {
			return err
		}
		if len(got) != len(want) {
			return fmt.Errorf("%s: %d logits, ONNX Runtime has %d", m, len(got), len(want))
		}
		var maxAbs, maxRef float64
		for i := range got {
			maxAbs = math.Max(maxAbs, math.Abs(float64(got[i]-want[i])))
			maxRef = math.Max(maxRef, math.Abs(float64(want[i])))
		}
		rel := maxAbs / maxRef
		fmt.Fprintf(os.Stderr, "%s: logits vs ONNX Runtime: max |diff| / max |ref| = %.2e\n", m, rel)
		if rel > 1e-4 {
			return fmt.Errorf("%s: logits differ from ONNX Runtime by %.2e relative (limit 1e-4)", m, rel)
		}
		for _, t := range threads {
			rows = append(rows, &row{Model: m, Threads: t, MaxRelErr: rel})
		}
	}
	for p := 0; p < passes; p++ {
		for _, r := range rows {
			fmt.Fprintf(os.Stderr, "pass %d/%d: %s threads %d\n", p+1, passes, r.Model, r.Threads)
			tmp := filepath.Join(work, "ort.json")
			abs, _ := filepath.Abs(tmp)
			cmd := exec.Command("node", "bench.js", "--models", r.Model, "--threads", fmt.Sprint(r.Threads),
				"--batches", "1", "--json", abs, "--quiet-wait", "3", "--attempts", "1")
			cmd.Dir = ortDir
			if out, err := cmd.CombinedOutput(); err != nil {
				return fmt.Errorf("node bench.js: %v\n%s", err, out)
			}
			var or ortResult
			b, err := os.ReadFile(tmp)
			if err != nil {
				return err
			}
			if err := json.Unmarshal(b, &or); err != nil {
				return err
			}
			for _, x := range or.Results {
				if x.Model == r.Model && x.Threads == r.Threads && x.Batch == 1 {
					r.OrtMS = append(r.OrtMS, x.MedianMS)
					r.MACs = x.MACs
				}
			}
			n := runs
			if n == 0 {
				n = 200
				if r.MACs > 1e8 {
					n = 100
				}
			}
			out, err := sh(bins[r.Model], "-bench", fmt.Sprint(n), "-json", "-threads", fmt.Sprint(r.Threads))
			if err != nil {
				return err
			}
			var br benchReport
			if err := json.Unmarshal(out, &br); err != nil {
				return fmt.Errorf("%s -bench output: %v", r.Model, err)
			}
			r.KernelSet = br.KernelSet
			r.PnasMS = append(r.PnasMS, br.Total.MedianNS/1e6)
		}
	}
	fmt.Println("| model | MACs | threads | kernels | pnas ms | ONNX Runtime ms | pnas / ORT | pnas GFLOP/s | of peak |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|")
	for _, r := range rows {
		pm, om := median(r.PnasMS), median(r.OrtMS)
		gf := 2 * r.MACs / (pm * 1e-3) / 1e9
		ofPeak := "n/a"
		if p := peakPerCore[r.KernelSet] * float64(r.Threads); p > 0 {
			ofPeak = fmt.Sprintf("%.0f%%", 100*gf/p)
		}
		fmt.Printf("| %s | %.1f M | %d | %s | %.3f | %.3f | %.2fx | %.1f | %s |\n",
			r.Model, r.MACs/1e6, r.Threads, r.KernelSet, pm, om, pm/om, gf, ofPeak)
	}
	fmt.Printf("\nmedians of %d interleaved passes; pnas / ORT < 1 means pnas is faster; peak per core (GFLOP/s): %v\n", passes, peakPerCore)
	if jsonOut != "" {
		b, _ := json.MarshalIndent(rows, "", " ")
		return os.WriteFile(jsonOut, b, 0o644)
	}
	return nil
}
