package targets

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
)

// BenchSchema is the "schema" value of a bench report.
const BenchSchema = "pnas-bench/1"

// Timing summarises repeated timings of one layer or of the whole network,
// in nanoseconds.
type Timing struct {
	MedianNS float64 `json:"median_ns"` // median over the runs
	P90NS    float64 `json:"p90_ns"`    // 90th percentile over the runs
	MeanNS   float64 `json:"mean_ns"`   // mean over the runs
	VarNS2   float64 `json:"var_ns2"`   // variance over the runs, ns²
}

// LayerTiming is the timing of one layer (a block of ops, or one op) of a
// compiled program.
type LayerTiming struct {
	Name string   `json:"name"` // block or op name, unique in the report
	Key  string   `json:"key"`  // latency-table key; empty when the layer has none
	Ops  []string `json:"ops"`  // the IR ops the layer executes, in order
	Timing
}

// BenchReport is the JSON a compiled program prints with `-bench N -json`:
// per-layer and total timings of N runs after the warm-up runs. Field names
// are a contract between the code generator and this package; see
// docs/latency.md.
type BenchReport struct {
	Schema    string        `json:"schema"`     // BenchSchema
	Model     string        `json:"model"`      // model name
	ModelID   string        `json:"model_id"`   // content hash of the model
	Target    string        `json:"target"`     // target the program was compiled for
	KernelSet string        `json:"kernel_set"` // kernel set the program ran with
	CPU       string        `json:"cpu"`        // CPU model name of the machine
	Cores     int           `json:"cores"`      // logical CPUs of the machine
	GOOS      string        `json:"goos"`       // runtime.GOOS
	GOARCH    string        `json:"goarch"`     // runtime.GOARCH
	GoVersion string        `json:"go_version"` // runtime.Version() of the program
	Threads   int           `json:"threads"`    // threads the program ran with
	Runs      int           `json:"runs"`       // timed runs
	Warmup    int           `json:"warmup"`     // untimed runs before them
	Layers    []LayerTiming `json:"layers"`     // in execution order
	Total     Timing        `json:"total"`      // whole inference, one image
}

var (
	benchKeys  = []string{"schema", "model", "model_id", "target", "kernel_set", "cpu", "cores", "goos", "goarch", "go_version", "threads", "runs", "warmup", "layers", "total"}
	timingKeys = []string{"median_ns", "p90_ns", "mean_ns", "var_ns2"}
	layerKeys  = append([]string{"name", "key", "ops"}, timingKeys...)
)

// ParseBench decodes and validates a bench report. The schema, every field's
// presence and type, unknown fields and the values are checked; errors name
// the field and say what was expected and what was found.
func ParseBench(data []byte) (*BenchReport, error) {
	if err := checkSchema(data, BenchSchema); err != nil {
		return nil, err
	}
	if err := requireKeys(data, "", benchKeys...); err != nil {
		return nil, err
	}
	var raw struct {
		Layers []json.RawMessage `json:"layers"`
		Total  json.RawMessage   `json:"total"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, describeJSON(data, err)
	}
	for i, ly := range raw.Layers {
		f := fmt.Sprintf("layers[%d]", i)
		if err := requireKeys(ly, f, layerKeys...); err != nil {
			return nil, err
		}
		if err := decodeStrict(ly, &LayerTiming{}); err != nil {
			return nil, prefixField(err, f)
		}
	}
	if err := requireKeys(raw.Total, "total", timingKeys...); err != nil {
		return nil, err
	}
	r := &BenchReport{}
	if err := decodeStrict(data, r); err != nil {
		return nil, err
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return r, nil
}

// Validate checks the report's values.
func (r *BenchReport) Validate() error {
	nonEmpty := func(field, what, v string) error {
		if v == "" {
			return fieldErr(field, "expected %s, got \"\"", what)
		}
		return nil
	}
	for _, c := range []struct{ field, what, v string }{
		{"model", "the model name", r.Model},
		{"model_id", "the model's content hash", r.ModelID},
		{"kernel_set", "a kernel set name", r.KernelSet},
		{"cpu", "the CPU model name", r.CPU},
		{"goos", "runtime.GOOS", r.GOOS},
		{"goarch", "runtime.GOARCH", r.GOARCH},
		{"go_version", "runtime.Version()", r.GoVersion},
	} {
		if err := nonEmpty(c.field, c.what, c.v); err != nil {
			return err
		}
	}
	switch {
	case r.Schema != BenchSchema:
		return fieldErr("schema", "expected %q, got %q", BenchSchema, r.Schema)
	case hasSpace(r.ModelID):
		return fieldErr("model_id", "expected a hash without spaces, got %q", r.ModelID)
	case !targetNameRE.MatchString(r.Target):
		return fieldErr("target", "expected a target name, got %q", r.Target)
	case r.Cores < 1:
		return fieldErr("cores", "expected a positive integer, got %d", r.Cores)
	case r.Threads < 1:
		return fieldErr("threads", "expected a positive integer, got %d", r.Threads)
	case r.Runs < 1:
		return fieldErr("runs", "expected a positive integer, got %d", r.Runs)
	case r.Warmup < 0:
		return fieldErr("warmup", "expected an integer >= 0, got %d", r.Warmup)
	case len(r.Layers) == 0:
		return fieldErr("layers", "expected at least one layer, got none")
	}
	names := map[string]int{}
	for i, ly := range r.Layers {
		f := fmt.Sprintf("layers[%d]", i)
		if ly.Name == "" {
			return fieldErr(f+".name", "expected a layer name, got \"\"")
		}
		if j, dup := names[ly.Name]; dup {
			return fieldErr(f+".name", "expected a unique name, got %q (also layers[%d])", ly.Name, j)
		}
		names[ly.Name] = i
		if hasSpace(ly.Key) {
			return fieldErr(f+".key", "expected a latency key without spaces or \"\", got %q", ly.Key)
		}
		if len(ly.Ops) == 0 {
			return fieldErr(f+".ops", "expected at least one op name, got none")
		}
		for j, op := range ly.Ops {
			if op == "" {
				return fieldErr(fmt.Sprintf("%s.ops[%d]", f, j), "expected an op name, got \"\"")
			}
		}
		if err := ly.Timing.validate(false); err != nil {
			return prefixField(err, f)
		}
	}
	if err := r.Total.validate(true); err != nil {
		return prefixField(err, "total")
	}
	return nil
}

func (t Timing) validate(positive bool) error {
	for _, c := range []struct {
		name string
		v    float64
	}{{"median_ns", t.MedianNS}, {"p90_ns", t.P90NS}, {"mean_ns", t.MeanNS}, {"var_ns2", t.VarNS2}} {
		if err := finiteNonNeg(c.name, c.v); err != nil {
			return err
		}
	}
	if positive && t.MedianNS <= 0 {
		return fieldErr("median_ns", "expected a positive time, got %v", t.MedianNS)
	}
	if t.P90NS < t.MedianNS {
		return fieldErr("p90_ns", "expected >= median_ns (%v), got %v", t.MedianNS, t.P90NS)
	}
	return nil
}

// TotalUS returns the median whole-network time in microseconds.
func (r *BenchReport) TotalUS() float64 { return r.Total.MedianNS / 1e3 }

// Keys returns the latency keys of the report's layers, in order, skipping
// layers without a key.
func (r *BenchReport) Keys() []string {
	var keys []string
	for _, ly := range r.Layers {
		if ly.Key != "" {
			keys = append(keys, ly.Key)
		}
	}
	return keys
}

// Summarize computes a Timing from raw samples in nanoseconds: median and
// 90th percentile by linear interpolation between order statistics, mean,
// and the population variance. It is what compiled programs compute.
func Summarize(samplesNS []float64) Timing {
	if len(samplesNS) == 0 {
		return Timing{}
	}
	s := append([]float64(nil), samplesNS...)
	sort.Float64s(s)
	var sum float64
	for _, v := range s {
		sum += v
	}
	mean := sum / float64(len(s))
	var ss float64
	for _, v := range s {
		ss += (v - mean) * (v - mean)
	}
	return Timing{MedianNS: quantile(s, 0.5), P90NS: quantile(s, 0.9), MeanNS: mean, VarNS2: ss / float64(len(s))}
}

// quantile of sorted s, interpolating linearly between order statistics.
func quantile(s []float64, q float64) float64 {
	pos := q * float64(len(s)-1)
	lo := int(math.Floor(pos))
	hi := min(lo+1, len(s)-1)
	return s[lo] + (pos-float64(lo))*(s[hi]-s[lo])
}
